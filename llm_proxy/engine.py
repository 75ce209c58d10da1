"""SQLAlchemy engines for the configured database.

SQLite needs one fix to be safe for migrations: Python's sqlite3 module does
not open a transaction before DDL, so a failing migration would leave its
CREATE/ALTER statements committed. We take over transaction control (the
driver in autocommit, BEGIN emitted by SQLAlchemy's begin event), which makes
every migration's DDL and its version rows one atomic unit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config import Settings

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


def create_engine(settings: Settings, session: Any = None) -> Engine:
    """An engine for the configured database. `session` (PostgreSQL/MySQL): a DBAPI
    connection from llm_proxy.drivers to use as the engine's only connection; the
    caller owns it (it holds the migration lock) and closes it."""
    import sqlalchemy
    from sqlalchemy import event
    from sqlalchemy.pool import NullPool, StaticPool

    if session is not None and settings.dialect != "sqlite":
        return sqlalchemy.create_engine(settings.url, creator=lambda: session, poolclass=StaticPool)

    if settings.dialect == "sqlite":
        if settings.sqlite_path is not None:
            settings.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        # The busy timeout makes a writer wait for another process's write
        # transaction instead of failing at once; the lock timeout bounds it.
        engine = sqlalchemy.create_engine(
            settings.url,
            poolclass=NullPool,
            connect_args={"timeout": max(settings.lock_timeout, 1.0)},
        )

        @event.listens_for(engine, "connect")
        def _driver_autocommit(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin(connection: Any) -> None:
            if connection.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
                connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine

    from .drivers import postgres_options

    connect_args: dict[str, Any] = {"connect_timeout": 10}
    if settings.dialect == "postgresql":
        options = postgres_options(settings)
        if options:
            connect_args["options"] = options
    return sqlalchemy.create_engine(settings.url, poolclass=NullPool, connect_args=connect_args)
