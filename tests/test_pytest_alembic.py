"""pytest-alembic's built-in tests, on the project's own history (goose files
and Python revisions), on SQLite and PostgreSQL.

pytest-alembic hands env.py an Engine in ``attributes["connection"]`` and
reads the script directory from the Config before it does, so the Config names
the same database (``sqlalchemy.url``) for the plugin to pick that dialect's
goose files. Its own collector (``--test-alembic``) is switched off in
pyproject.toml; importing the tests here runs them with the fixtures below.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from stock_alembic import copy_project, empty_database

pytest.importorskip("pytest_alembic")

from pytest_alembic.tests import (  # noqa: E402  (after the importorskip)
    test_model_definitions_match_ddl,
    test_single_head_revision,
    test_up_down_consistency,
    test_upgrade,
)

__all__ = [
    "test_model_definitions_match_ddl",
    "test_single_head_revision",
    "test_up_down_consistency",
    "test_upgrade",
]


@pytest.fixture(params=["sqlite", "postgresql"])
def alembic_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A new empty database per test."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(empty_database(request, request.param, tmp_path))
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def alembic_config(alembic_engine: Any, tmp_path: Path) -> Any:
    from alembic.config import Config

    project = copy_project(tmp_path / "project")
    config = Config(str(project / "alembic.ini"))
    config.set_main_option(
        "sqlalchemy.url", alembic_engine.url.render_as_string(hide_password=False)
    )
    return config
