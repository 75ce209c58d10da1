"""SQLAlchemy engines for the configured database."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llm_proxy import urls
from llm_proxy.config import Settings
from llm_proxy.dialects.sqlite import make_directory

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


def create_engine(settings: Settings, session: Any = None) -> Engine:
    """An engine for the configured database.

    `session`: a DBAPI connection from `drivers` to use as the engine's only
    connection (it holds the migration lock); the caller owns and closes it.
    The dialect adjusts the engine (SQLite takes over transaction control so
    that a failing migration's DDL rolls back).
    """
    import sqlalchemy
    from sqlalchemy.pool import NullPool, StaticPool

    dialect = settings.dialect
    # The engine's URL is shown by SQLAlchemy and Alembic (`alembic current -v`): it
    # carries no secret query parameter; the driver gets those as connect arguments.
    url, secrets = urls.split_secret_parameters(settings.url)
    if session is not None:
        engine = sqlalchemy.create_engine(url, creator=lambda: session, poolclass=StaticPool)
    else:
        if settings.sqlite_path is not None:
            make_directory(settings.sqlite_path)
        engine = sqlalchemy.create_engine(
            url,
            poolclass=NullPool,
            connect_args={**dialect.engine_connect_args(settings), **secrets},
        )
    dialect.prepare_engine(engine)
    return engine
