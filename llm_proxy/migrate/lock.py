"""The cross-process migration lock, one kind per database.

No kind outlives its holder, so a crash never leaves the database locked:
SQLite uses an flock on a file beside the database (via the filelock
library), dropped by the kernel when the process dies; PostgreSQL a session
advisory lock (the key the Go llm-proxy used) and MySQL a named GET_LOCK
(scoped to the database), both held on the migration's own session when the
caller passes it, so they last exactly as long as the work on the server
does. Waiting is reported once and ends with a clear error after the timeout.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from llm_proxy import drivers
from llm_proxy.config import Settings
from llm_proxy.errors import LockTimeout

POSTGRES_LOCK_KEY = 3141592653
MYSQL_LOCK_NAME = "llm-proxy-migrations"
POLL_SECONDS = 0.1
WAITING_MESSAGE = "waiting for migration lock held by another process..."


def _timeout_error(settings: Settings) -> LockTimeout:
    return LockTimeout(
        f"timed out after {settings.lock_timeout:g}s waiting for the migration lock on "
        f"{drivers.describe_server(settings)}; another migration may be stuck "
        "(raise --lock-timeout, or find the process holding it)"
    )


def mysql_lock_name(settings: Settings) -> str:
    """GET_LOCK names are server-wide, unlike PostgreSQL advisory locks (which are
    per database): the database name is part of the name, so migrations of two
    databases on one server do not wait for each other. MariaDB caps names at
    64 characters; a longer one keeps a digest of the database name instead."""
    database = drivers.database_name(settings) or ""
    name = f"{MYSQL_LOCK_NAME}:{database}"
    if len(name) <= 64:
        return name
    digest = hashlib.sha256(database.encode("utf-8")).hexdigest()[:32]
    return f"{MYSQL_LOCK_NAME}:{digest}"


def sqlite_lock_path(settings: Settings) -> str:
    assert settings.sqlite_path is not None
    return f"{settings.sqlite_path}.migrate-lock"


# Runs one statement on a database session, outside any transaction, and
# returns the first column of its first row.
SessionQuery = Callable[[str], Any]


@contextmanager
def migration_lock(
    settings: Settings,
    on_wait: Callable[[str], None] | None = None,
    session: SessionQuery | None = None,
) -> Iterator[None]:
    """Hold the migration lock for the duration of the block.

    On PostgreSQL and MySQL, `session` puts the lock on the migration's own
    session. That matters when a migrator is killed mid-statement: the server
    keeps running the statement (and the session, and so the lock) until it
    ends, so the next migrator cannot run the same file next to it. Without
    `session` the lock gets a connection of its own.
    """
    if settings.dialect == "sqlite":
        if settings.sqlite_path is None:  # in-memory: one process by definition
            yield
            return
        with _sqlite_lock(settings, on_wait):
            yield
    elif session is not None:
        with _held(session, settings, on_wait):
            yield
    else:
        with _server_lock(settings, on_wait):
            yield


@contextmanager
def _sqlite_lock(settings: Settings, on_wait: Callable[[str], None] | None) -> Iterator[None]:
    from filelock import FileLock, Timeout

    assert settings.sqlite_path is not None
    settings.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(sqlite_lock_path(settings), is_singleton=False)
    try:
        try:
            lock.acquire(timeout=0)
        except Timeout:  # a TimeoutError, hence an OSError: test it first
            if on_wait:
                on_wait(WAITING_MESSAGE)
            try:
                lock.acquire(timeout=settings.lock_timeout, poll_interval=POLL_SECONDS)
            except Timeout:
                raise _timeout_error(settings) from None
    except OSError as exc:
        if isinstance(exc, Timeout):
            raise
        raise drivers.DatabaseUnavailable(
            f"SQLite database {settings.sqlite_path} is not writable: "
            f"cannot create its lock file ({exc.strerror or exc})"
        ) from None
    try:
        yield
    finally:
        lock.release()


def _lock_statements(settings: Settings) -> tuple[str, str]:
    """(try to take the lock without waiting, release it) for a server dialect."""
    if settings.dialect == "postgresql":
        return (
            f"SELECT pg_try_advisory_lock({POSTGRES_LOCK_KEY})",
            f"SELECT pg_advisory_unlock({POSTGRES_LOCK_KEY})",
        )
    name = mysql_lock_name(settings).replace("\\", "\\\\").replace("'", "''")
    return f"SELECT GET_LOCK('{name}', 0)", f"SELECT RELEASE_LOCK('{name}')"


@contextmanager
def _server_lock(settings: Settings, on_wait: Callable[[str], None] | None) -> Iterator[None]:
    # A connection of its own, in autocommit: the lock dies with the process.
    connection = drivers.connect(settings, autocommit=True)
    try:

        def query(sql: str) -> Any:
            found = drivers.rows(connection, sql)
            return found[0][0] if found else None

        with _held(query, settings, on_wait):
            yield
    finally:
        connection.close()


@contextmanager
def _held(
    query: SessionQuery, settings: Settings, on_wait: Callable[[str], None] | None
) -> Iterator[None]:
    try_sql, release_sql = _lock_statements(settings)
    _acquire_polling(query, try_sql, settings, on_wait)
    try:
        yield
    finally:
        # Session locks survive commits and rollbacks; if releasing fails (a lost
        # connection), the session's end releases the lock anyway.
        with contextlib.suppress(Exception):
            query(release_sql)


def _acquire_polling(
    query: SessionQuery, try_sql: str, settings: Settings, on_wait: Callable[[str], None] | None
) -> None:
    deadline = time.monotonic() + settings.lock_timeout
    reported = False
    while True:
        if query(try_sql) in (True, 1):
            return
        if not reported and on_wait:
            on_wait(WAITING_MESSAGE)
            reported = True
        if time.monotonic() >= deadline:
            raise _timeout_error(settings)
        time.sleep(POLL_SECONDS)


@contextmanager
def held_for_migration(
    settings: Settings, on_wait: Callable[[str], None] | None = None
) -> Iterator[Any]:
    """The migration lock, taken with the plain driver before anything imports
    SQLAlchemy or Alembic: a crowd of instances starting together then waits
    here, re-checks, and finds nothing to do without paying for those imports.

    Yields the DBAPI connection that holds the lock on PostgreSQL and MySQL (the
    migration must run on it, so a killed migrator's running statement keeps
    the lock, see `migration_lock`), None on SQLite. Inside the block the
    connection is in transaction mode, ready to be handed to SQLAlchemy.
    """
    if settings.dialect == "sqlite":
        with migration_lock(settings, on_wait):
            yield None
        return
    connection = drivers.connect(settings, autocommit=True)
    try:

        def query(sql: str) -> Any:
            found = drivers.rows(connection, sql)
            return found[0][0] if found else None

        with _held(query, settings, on_wait):
            _set_autocommit(connection, False)
            try:
                yield connection
            finally:
                # Back to autocommit so that the release statement runs on its own.
                with contextlib.suppress(Exception):
                    connection.rollback()
                    _set_autocommit(connection, True)
    finally:
        with contextlib.suppress(Exception):  # a session the server cut is closed already
            connection.close()


def _set_autocommit(connection: Any, value: bool) -> None:
    # psycopg has a property, PyMySQL a method.
    if callable(getattr(connection, "autocommit", None)):
        connection.autocommit(value)
    else:
        connection.autocommit = value
