"""A connection the caller passes in ``attributes["connection"]`` (Alembic's
cookbook), for any number of commands.

- an ``Engine``: a connection of its own is opened for the command and closed;
- a ``Connection`` outside a transaction: each migration commits in its own
  transaction, as with ``llm-proxy migrate up``, and the connection is left
  outside a transaction;
- a ``Connection`` inside the caller's transaction: the migrations and their
  version rows join that transaction and are committed or rolled back with it,
  and the migration lock lasts until it ends (``db.locks.hold_on``). A NO
  TRANSACTION file cannot run there (refused), nor can anything on MySQL,
  which commits each DDL statement (refused before anything runs).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from llm_proxy.config import Settings
from llm_proxy.db import locks

from .run import Run


@contextmanager
def connection_for(given: Any, settings: Settings, run: Run) -> Iterator[Any]:
    """The Connection to migrate on, locked; afterwards left as the caller had it."""
    from sqlalchemy.engine import Engine

    if isinstance(given, Engine):
        with given.connect() as connection, _locked(connection, settings, run):
            yield connection
        return
    with _locked(given, settings, run):
        yield given


@contextmanager
def _locked(connection: Any, settings: Settings, run: Run) -> Iterator[None]:
    from alembic.util import CommandError

    in_transaction = connection.in_transaction()
    dialect = settings.dialect
    if in_transaction and not dialect.transactional_ddl:
        raise CommandError(
            f"{dialect.label} commits each DDL statement, so migrations cannot run inside "
            "the transaction of the connection you passed (nor be rolled back with it): "
            "pass a Connection outside a transaction, or the Engine"
        )
    run.caller_transaction = in_transaction
    query = _query(connection, commit=not in_transaction)
    raw = connection.connection.driver_connection
    with locks.hold_on(settings, query, in_transaction=in_transaction, on_wait=run.report, raw=raw):
        restore = dialect.prepare_connection(connection)
        try:
            yield
            if not in_transaction and connection.in_transaction():
                connection.commit()  # what Alembic read after the last migration
        except BaseException:
            if not in_transaction and connection.in_transaction():
                connection.rollback()  # so the lock's release can run
            raise
        finally:
            restore()


def _query(connection: Any, *, commit: bool) -> Callable[[str], Any]:
    """One lock statement on the caller's connection: its first column. Outside the
    caller's transaction each is committed, so the connection stays outside one
    (session locks survive commits)."""

    def run(sql: str) -> Any:
        value = connection.exec_driver_sql(sql).scalar()
        if commit:
            connection.commit()
        return value

    return run
