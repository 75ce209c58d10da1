"""Plain DBAPI connections (sqlite3, psycopg, PyMySQL), without SQLAlchemy.

The migration lock and every read of the version tables use these, so a
no-op start never pays for importing SQLAlchemy. Connection failures are
one-line DatabaseUnavailable errors that name the database, never a password.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from llm_proxy.config import Settings


def connect(
    settings: Settings,
    *,
    autocommit: bool = True,
    create: bool = False,
    timeout: float | None = None,
) -> Any:
    """A DBAPI connection to the configured database. `create` (SQLite): make the
    file (and its directory) when missing instead of refusing. `timeout`: connect
    and read within about that many seconds (health checks; see the dialects)."""
    return settings.dialect.connect(settings, autocommit=autocommit, create=create, timeout=timeout)


def rows(connection: Any, sql: str) -> list[tuple[Any, ...]]:
    """Run one statement; its rows (none for a statement that returns none)."""
    cursor = connection.cursor()
    try:
        cursor.execute(sql)
        return list(cursor.fetchall()) if cursor.description else []
    finally:
        cursor.close()


def executor(connection: Any) -> Callable[[str], list[tuple[Any, ...]]]:
    """`execute(sql) -> rows` over a DBAPI connection."""
    return lambda sql: rows(connection, sql)


def statement_runner(connection: Any) -> Callable[[str], None]:
    """`run(sql)` over a DBAPI connection: executes, fetches nothing (a migration's
    SELECT is run for its effect, as goose runs it). A string holding several
    statements has a result per statement: each is stepped through, so that an
    error in a later one is raised here, for this string, not by the next call."""

    def run(sql: str) -> None:
        cursor = connection.cursor()
        try:
            cursor.execute(sql)
            next_result = getattr(cursor, "nextset", None)  # sqlite3 has none
            while next_result is not None and next_result():
                pass
        finally:
            cursor.close()

    return run


def close_quietly(connection: Any) -> None:
    """Close a connection that may already be dead."""
    with contextlib.suppress(Exception):  # a session the server cut is closed already
        connection.close()


@contextmanager
def connection(settings: Settings, *, create: bool = False) -> Iterator[Any]:
    """A fresh autocommit connection, closed afterwards."""
    opened = connect(settings, create=create)
    try:
        yield opened
    finally:
        close_quietly(opened)


def set_autocommit(connection: Any, value: bool) -> None:
    """Switch a psycopg or PyMySQL connection in or out of autocommit."""
    # psycopg has a property, PyMySQL a method.
    if callable(getattr(connection, "autocommit", None)):
        connection.autocommit(value)
    else:
        connection.autocommit = value
