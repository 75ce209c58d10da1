"""Helpers for tests of the stock Alembic door: a copy of the project's Alembic
layout, the `alembic` executable, and what a database (any dialect, by
SQLAlchemy URL) holds."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, SETTINGS_ENV, SQL_DIR

from llm_proxy import dialects

ALEMBIC = str(Path(sys.executable).parent / "alembic")
DIALECT_NAMES = ("sqlite", "postgresql", "mysql")


def copy_project(root: Path) -> Path:
    """alembic.ini, alembic/ and sql/ of the repository, copied under `root`."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "alembic.ini", root / "alembic.ini")
    shutil.copytree(
        REPO / "alembic", root / "alembic", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copytree(SQL_DIR, root / "sql")
    return root


def run_alembic(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The stock `alembic` command, with only the settings variables `env` names."""
    full_env = {k: v for k, v in os.environ.items() if k not in SETTINGS_ENV}
    full_env.update(env or {})
    return subprocess.run(
        [ALEMBIC, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=180
    )


def sqlalchemy_url(url: str) -> str:
    """The SQLAlchemy URL llm-proxy uses for a goose-style URL."""
    return dialects.from_url(url)[1]


def empty_database(request: pytest.FixtureRequest, name: str, tmp_path: Path) -> str:
    """The SQLAlchemy URL of a new empty database of dialect `name` (servers skip
    when unreachable, as the conftest fixtures do)."""
    if name == "sqlite":
        return f"sqlite:///{tmp_path / 'target.db'}"
    fixture = "postgres_url" if name == "postgresql" else "mysql_url"
    return sqlalchemy_url(request.getfixturevalue(fixture))


@contextmanager
def connected(url: str) -> Iterator[Any]:
    import sqlalchemy

    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


def table_names(url: str) -> set[str]:
    import sqlalchemy

    with connected(url) as connection:
        return set(sqlalchemy.inspect(connection).get_table_names())


def goose_versions(url: str) -> list[int]:
    with connected(url) as connection:
        rows = connection.exec_driver_sql("SELECT version_id FROM goose_db_version ORDER BY id")
        return [int(r[0]) for r in rows]


def alembic_heads(url: str) -> list[str]:
    with connected(url) as connection:
        return sorted(r[0] for r in connection.exec_driver_sql("SELECT * FROM alembic_version"))


def sqlite_file(path: Path) -> list[tuple[str, str]]:
    """The schema of a SQLite file (name and SQL of every object), bookkeeping included."""
    import sqlite3

    connection = sqlite3.connect(path)
    try:
        return connection.execute(
            "SELECT name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name"
        ).fetchall()
    finally:
        connection.close()


def catalog(url: str, schema: str | None = None) -> dict[str, dict[str, Any]]:
    """Every table of the database (or `schema`) as SQLAlchemy reflects it:
    columns, primary key, indexes, foreign keys, unique and CHECK constraints.
    llm-proxy's own tables (checksums, partial-run markers) are left out: an
    offline script leaves them to the next llm-proxy command."""
    import sqlalchemy

    def plain(items: list[dict[str, Any]]) -> list[str]:
        return sorted(repr(sorted((k, repr(v)) for k, v in item.items())) for item in items)

    with connected(url) as connection:
        inspector = sqlalchemy.inspect(connection)
        found: dict[str, dict[str, Any]] = {}
        for table in sorted(inspector.get_table_names(schema=schema)):
            if table.startswith("llm_proxy_"):
                continue
            found[table] = {
                "columns": [
                    (c["name"], str(c["type"]), c["nullable"], c.get("default"))
                    for c in inspector.get_columns(table, schema=schema)
                ],
                "primary_key": inspector.get_pk_constraint(table, schema=schema),
                "indexes": plain(inspector.get_indexes(table, schema=schema)),
                "foreign_keys": plain(inspector.get_foreign_keys(table, schema=schema)),
                "unique": plain(inspector.get_unique_constraints(table, schema=schema)),
                "checks": plain(inspector.get_check_constraints(table, schema=schema)),
            }
        return found


def run_script(url: str, script: str) -> subprocess.CompletedProcess[str]:
    """Feed an SQL script to the database's own command-line client, stopping at
    the first error: sqlite3, psql or mysql (skips when the client is missing)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        command = ["sqlite3", "-bail", str(parsed.database)]
    elif backend == "postgresql":
        conninfo = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
        command = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", conninfo]
    else:
        command = ["mysql", "-h", str(parsed.host), "-P", str(parsed.port or 3306)]
        command += ["-u", str(parsed.username), str(parsed.database)]
    if shutil.which(command[0]) is None:
        pytest.skip(f"the {command[0]} client is not installed")
    return subprocess.run(command, input=script, capture_output=True, text=True, timeout=120)
