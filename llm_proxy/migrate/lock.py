"""The cross-process migration lock, one kind per database.

Each kind dies with the process that holds it, so a crash never leaves the
database locked: SQLite uses an flock on a file beside the database (via the
filelock library), PostgreSQL a session advisory lock (the key the Go
llm-proxy used), MySQL a named GET_LOCK. Waiting is reported once and ends
with a clear error after the timeout.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from llm_proxy import drivers
from llm_proxy.config import Settings

POSTGRES_LOCK_KEY = 3141592653
MYSQL_LOCK_NAME = "llm-proxy-migrations"
POLL_SECONDS = 0.1
WAITING_MESSAGE = "waiting for migration lock held by another process..."


class LockTimeout(RuntimeError):
    pass


def _timeout_error(settings: Settings) -> LockTimeout:
    return LockTimeout(
        f"timed out after {settings.lock_timeout:g}s waiting for the migration lock on "
        f"{drivers.describe_server(settings)}; another migration may be stuck "
        "(raise --lock-timeout, or find the process holding it)"
    )


def sqlite_lock_path(settings: Settings) -> str:
    assert settings.sqlite_path is not None
    return f"{settings.sqlite_path}.migrate-lock"


@contextmanager
def migration_lock(
    settings: Settings, on_wait: Callable[[str], None] | None = None
) -> Iterator[None]:
    if settings.dialect == "sqlite":
        if settings.sqlite_path is None:  # in-memory: one process by definition
            yield
            return
        with _sqlite_lock(settings, on_wait):
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
        lock.acquire(timeout=0)
    except OSError as exc:
        raise drivers.DatabaseUnavailable(
            f"SQLite database {settings.sqlite_path} is not writable: "
            f"cannot create its lock file ({exc.strerror})"
        ) from None
    except Timeout:
        if on_wait:
            on_wait(WAITING_MESSAGE)
        try:
            lock.acquire(timeout=settings.lock_timeout, poll_interval=POLL_SECONDS)
        except Timeout:
            raise _timeout_error(settings) from None
    try:
        yield
    finally:
        lock.release()


@contextmanager
def _server_lock(settings: Settings, on_wait: Callable[[str], None] | None) -> Iterator[None]:
    # A connection of its own: the lock outlives any transaction or autocommit
    # switch on the migration connection, and dies with the process.
    connection = drivers.connect(settings, autocommit=True)
    try:
        if settings.dialect == "postgresql":
            try_sql = f"SELECT pg_try_advisory_lock({POSTGRES_LOCK_KEY})"
            release_sql = f"SELECT pg_advisory_unlock({POSTGRES_LOCK_KEY})"
        else:
            try_sql = f"SELECT GET_LOCK('{MYSQL_LOCK_NAME}', 0)"
            release_sql = f"SELECT RELEASE_LOCK('{MYSQL_LOCK_NAME}')"
        _acquire_polling(connection, try_sql, settings, on_wait)
        try:
            yield
        finally:
            # Closing the session releases the lock anyway if this fails.
            with contextlib.suppress(Exception):
                drivers.rows(connection, release_sql)
    finally:
        connection.close()


def _acquire_polling(
    connection: Any, try_sql: str, settings: Settings, on_wait: Callable[[str], None] | None
) -> None:
    deadline = time.monotonic() + settings.lock_timeout
    reported = False
    while True:
        row = drivers.rows(connection, try_sql)
        if row and row[0][0] in (True, 1):
            return
        if not reported and on_wait:
            on_wait(WAITING_MESSAGE)
            reported = True
        if time.monotonic() >= deadline:
            raise _timeout_error(settings)
        time.sleep(POLL_SECONDS)
