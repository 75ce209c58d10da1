"""A connection the caller passes to Alembic (`config.attributes["connection"]`,
Alembic's cookbook): a Connection in or out of a transaction, or an Engine,
for any number of commands."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import settings_for, write_migration
from stock_alembic import DIALECT_NAMES, copy_project, empty_database, goose_versions, table_names

SHIPPED = [0, 1, 2, 3, 4, 5, 6]
TRANSACTIONAL_DDL = ("sqlite", "postgresql")  # MySQL commits each DDL statement


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return copy_project(tmp_path / "project")


@pytest.fixture(params=DIALECT_NAMES)
def dialect_name(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def url(request: pytest.FixtureRequest, dialect_name: str, tmp_path: Path) -> str:
    return empty_database(request, dialect_name, tmp_path)


@contextmanager
def engine_of(url: str) -> Iterator[Any]:
    """The caller's own engine, made as an application makes it."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def engine(url: str) -> Iterator[Any]:
    with engine_of(url) as engine:
        yield engine


@pytest.fixture(params=TRANSACTIONAL_DDL)
def transactional_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database whose DDL a caller's transaction can hold (not MySQL)."""
    return empty_database(request, request.param, tmp_path)


@pytest.fixture
def transactional_engine(transactional_url: str) -> Iterator[Any]:
    with engine_of(transactional_url) as engine:
        yield engine


@pytest.fixture
def config(project: Path) -> Any:
    from alembic.config import Config

    return Config(str(project / "alembic.ini"))


def upgrade(config: Any, target: str = "head") -> None:
    from alembic import command

    command.upgrade(config, target)


def downgrade(config: Any, target: str) -> None:
    from alembic import command

    command.downgrade(config, target)


def test_connection_in_a_transaction(
    config: Any, transactional_engine: Any, transactional_url: str
) -> None:
    url = transactional_url
    with transactional_engine.begin() as connection:
        config.attributes["connection"] = connection
        upgrade(config, "00003")
        upgrade(config)
        assert connection.in_transaction()  # still the caller's, not committed by us
    assert goose_versions(url) == SHIPPED


def test_a_callers_rollback_undoes_the_migrations(
    config: Any, transactional_engine: Any, transactional_url: str
) -> None:
    url = transactional_url
    with transactional_engine.connect() as connection:
        transaction = connection.begin()
        config.attributes["connection"] = connection
        upgrade(config)
        rows = connection.exec_driver_sql("SELECT count(*) FROM goose_db_version").scalar()
        assert rows == len(SHIPPED)
        transaction.rollback()
    assert table_names(url) == set()


def test_mysql_refuses_a_connection_in_a_transaction(
    request: pytest.FixtureRequest, config: Any, tmp_path: Path
) -> None:
    import sqlalchemy
    from alembic.util import CommandError

    url = empty_database(request, "mysql", tmp_path)
    engine = sqlalchemy.create_engine(url)
    try:
        with pytest.raises(CommandError) as refused, engine.begin() as connection:
            config.attributes["connection"] = connection
            upgrade(config)
    finally:
        engine.dispose()
    message = str(refused.value)
    assert "\n" not in message and "transaction" in message, message
    assert table_names(url) == set()


def test_connection_outside_a_transaction(config: Any, engine: Any, url: str) -> None:
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        upgrade(config, "00002")
        upgrade(config)
        upgrade(config)  # nothing to do
        downgrade(config, "00004")
        upgrade(config)
        assert not connection.in_transaction()  # every migration committed, as with `up`
        assert goose_versions(url) == SHIPPED  # seen from another connection


def test_engine(config: Any, engine: Any, url: str) -> None:
    config.attributes["connection"] = engine
    upgrade(config, "00003")
    downgrade(config, "00001")
    upgrade(config)
    assert goose_versions(url) == [0, 1, 2, 3, 4, 5, 6]


def test_lock_is_held_until_the_callers_transaction_ends(
    config: Any, transactional_engine: Any, transactional_url: str
) -> None:
    """Another migrator must not start from goose rows the caller has not yet
    committed: it waits (here: times out) until the caller's transaction ends."""
    from llm_proxy import migrate

    url, engine = transactional_url, transactional_engine
    from llm_proxy.errors import LockTimeout

    other = settings_for(database_url=url.replace("+psycopg", ""), lock_timeout=0.5)
    with engine.connect() as connection:
        transaction = connection.begin()
        config.attributes["connection"] = connection
        upgrade(config)
        with pytest.raises(LockTimeout):
            migrate.up(other)
        transaction.commit()
    assert migrate.up(other).applied == []
    assert goose_versions(url) == SHIPPED


def test_no_transaction_file_inside_a_callers_transaction_is_refused(
    config: Any, transactional_engine: Any, transactional_url: str, project: Path
) -> None:
    from alembic.util import CommandError

    url, engine = transactional_url, transactional_engine
    directory = project / "sql" if url.startswith("sqlite") else project / "sql" / "postgres"
    write_migration(
        directory,
        "00007_vacuum.sql",
        "CREATE INDEX idx_projects_name ON projects (name);",
        "DROP INDEX idx_projects_name;",
        extra="-- +goose NO TRANSACTION\n",
    )
    with pytest.raises((CommandError, Exception)) as refused, engine.begin() as connection:
        config.attributes["connection"] = connection
        upgrade(config)
    message = str(refused.value)
    assert "00007_vacuum.sql" in message and "\n" not in message, message
    assert table_names(url) == set()


def test_sqlite_engine_that_manages_its_own_transactions(config: Any, tmp_path: Path) -> None:
    """SQLAlchemy's recipe for SQLite (driver in autocommit, BEGIN on each begin)
    is left to do its work: migrations still roll back with the caller."""
    from sqlalchemy import event

    url = f"sqlite:///{tmp_path / 'recipe.db'}"
    with engine_of(url) as engine:

        @event.listens_for(engine, "connect")
        def _autocommit(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin(connection: Any) -> None:
            connection.exec_driver_sql("BEGIN")

        with engine.connect() as connection:
            transaction = connection.begin()
            config.attributes["connection"] = connection
            upgrade(config)
            transaction.rollback()
        assert table_names(url) == set()
        config.attributes["connection"] = engine
        upgrade(config)
    assert goose_versions(url) == SHIPPED
