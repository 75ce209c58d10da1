"""The cross-process migration lock: one class per way of locking.

No lock outlives its holder, so a crash never leaves the database locked:

- ``FileLock`` (SQLite): an flock on a file beside the database (the
  filelock library), dropped by the kernel when the process dies;
- ``SessionLock`` (PostgreSQL advisory lock, MySQL ``GET_LOCK``): held on
  the migration's own session, so it lasts exactly as long as the work on
  the server does, even when a killed migrator's statement still runs there;
  with ``--lock-url``, on a direct connection of its own (past a pooler);
- ``LeaseLock`` (``--lock-strategy table``, db/lease.py): a committed row with
  a lease, for where a session lock means nothing; a killed holder's lease
  runs out.

``for_database`` chooses from the settings; with ``auto`` (the default) the
connection decides: a pooler or a Galera cluster gets the lease. ``hold``
yields the DBAPI connection the migration must run on, already locked; the
lock's ``lease`` (None for the others) is what the run renews. Waiting is
reported once and ends with a clear error after the timeout.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from llm_proxy.config import Settings
from llm_proxy.dialects.sqlite import make_directory
from llm_proxy.errors import ConfigError, DatabaseUnavailable, LockTimeout, MigrateError

from . import drivers
from . import lease as leases

POLL_SECONDS = 0.1
WAITING_MESSAGE = "waiting for migration lock held by another process..."

OnWait = Callable[[str], None] | None
# Runs one statement on a database session, outside any transaction, and
# returns the first column of its first row.
SessionQuery = Callable[[str], Any]


def timeout_error(settings: Settings) -> LockTimeout:
    """The error for a lock not granted within --lock-timeout."""
    return LockTimeout(
        f"timed out after {settings.lock_timeout:g}s waiting for the migration lock on "
        f"{settings.where}; another migration may be stuck "
        "(raise --lock-timeout, or find the process holding it)"
    )


class FileLock:
    """SQLite: `<database>.migrate-lock`, flocked. The file itself stays (empty)."""

    lease: leases.Lease | None = None

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    def path(self) -> str:
        return f"{self.settings.sqlite_path}.migrate-lock"

    @contextmanager
    def held(self, on_wait: OnWait = None) -> Iterator[None]:
        """The lock alone (a file lock needs no session)."""
        if self.settings.sqlite_path is None:  # in-memory: one process by definition
            yield
            return
        from filelock import FileLock as _Flock
        from filelock import Timeout

        make_directory(self.settings.sqlite_path)
        lock = _Flock(self.path, is_singleton=False)
        try:
            try:
                lock.acquire(timeout=0)
            except Timeout:  # a TimeoutError, hence an OSError: test it first
                if on_wait:
                    on_wait(WAITING_MESSAGE)
                try:
                    lock.acquire(timeout=self.settings.lock_timeout, poll_interval=POLL_SECONDS)
                except Timeout:
                    raise timeout_error(self.settings) from None
        except OSError as exc:
            if isinstance(exc, Timeout):
                raise
            raise self._unusable(self.settings.sqlite_path, exc) from None
        try:
            yield
        finally:
            lock.release()

    def _unusable(self, database: Path, error: OSError) -> DatabaseUnavailable:
        """Why the lock file cannot be opened: the database (or its directory) is not
        writable, or only the lock file is not (another user made it)."""
        why = error.strerror or str(error)
        writable = os.access(database if database.exists() else database.parent, os.W_OK)
        if writable and os.path.exists(self.path):
            return DatabaseUnavailable(
                f"cannot open the migration lock file {self.path} ({why}), although the "
                "database is writable: give this user write access to it, or remove it "
                "while no migration runs"
            )
        return DatabaseUnavailable(
            f"SQLite database {database} is not writable: cannot create its lock file "
            f"{self.path} ({why})"
        )

    @contextmanager
    def hold(self, on_wait: OnWait = None) -> Iterator[Any]:
        """The lock, then a connection (the file is created if missing: waiting
        for the lock creates nothing)."""
        with self.held(on_wait):
            connection = drivers.connect(self.settings, create=True)
            try:
                yield connection
            finally:
                drivers.close_quietly(connection)


class SessionLock:
    """A lock held by a database session: try without waiting, poll until the
    timeout. Session locks survive commits and rollbacks."""

    def __init__(self, settings: Settings, try_sql: str, release_sql: str | None) -> None:
        self.settings = settings
        self.try_sql = try_sql
        self.release_sql = release_sql  # None: the lock ends with the transaction
        self.lease: leases.Lease | None = None  # a session lock needs no renewing

    @contextmanager
    def held_by(
        self, query: SessionQuery, on_wait: OnWait = None, *, label: bool = False
    ) -> Iterator[None]:
        """The lock on the session `query` runs on; `label` (our own sessions only):
        make the session say who holds the lock since when, where the database
        shows such a thing (PostgreSQL's application_name)."""
        deadline = time.monotonic() + self.settings.lock_timeout
        reported = False
        while query(self.try_sql) not in (True, 1):
            if not reported and on_wait:
                on_wait(WAITING_MESSAGE)
                reported = True
            if time.monotonic() >= deadline:
                raise timeout_error(self.settings)
            time.sleep(POLL_SECONDS)
        if label:
            label_sql = self.settings.dialect.session_lock_label_sql(leases.holder_identity())
            if label_sql is not None:
                query(label_sql)
        try:
            yield
        finally:
            # If releasing fails (a lost connection), the session's end releases it.
            if self.release_sql is not None:
                with contextlib.suppress(Exception):
                    query(self.release_sql)

    @contextmanager
    def hold(self, on_wait: OnWait = None, connection: Any = None) -> Iterator[Any]:
        """The lock on a new connection (or `connection`, autocommit, which is then
        this lock's to close), which is then in transaction mode, ready to be handed
        to SQLAlchemy. With --lock-url the lock is held on a direct connection of
        its own, taken before the migration's connection is opened."""
        if self.settings.lock_url is not None and connection is None:
            # The direct lock first: waiting for it takes no pooled connection.
            with (
                self._held_directly(on_wait) as locked_database,
                _in_transaction_mode(drivers.connect(self.settings)) as migrating,
            ):
                _check_same_database(self.settings, locked_database, migrating)
                yield migrating
            return
        connection = connection or drivers.connect(self.settings, autocommit=True)
        try:
            query = _first_value(connection)
            with (
                self.held_by(query, on_wait, label=True),
                _in_transaction_mode(connection, close=False) as migrating,
            ):
                yield migrating
        finally:
            drivers.close_quietly(connection)

    @contextmanager
    def _held_directly(self, on_wait: OnWait) -> Iterator[str | None]:
        """The lock on the --lock-url connection; yields the database it reached."""
        from dataclasses import replace

        assert self.settings.lock_url is not None
        direct = drivers.connect(replace(self.settings, url=self.settings.lock_url))
        try:
            pooler = self.settings.dialect.pooler_between(direct)
            if pooler is not None:
                raise ConfigError(
                    f"--lock-url must reach the database server directly, but {pooler}: "
                    "a session lock through a pooler may protect nothing"
                )
            query = _first_value(direct)
            name_sql = self.settings.dialect.current_database_sql()
            reached = query(name_sql) if name_sql else None
            with self.held_by(query, on_wait, label=True):
                yield reached
        finally:
            drivers.close_quietly(direct)


class LeaseLock:
    """The lease row (db/lease.py), taken and renewed on the migration's own
    connection."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.lease: leases.Lease | None = leases.Lease(settings)

    @contextmanager
    def hold(self, on_wait: OnWait = None, connection: Any = None) -> Iterator[Any]:
        connection = connection or drivers.connect(self.settings, autocommit=True)
        lease = self.lease
        assert lease is not None
        try:
            lease.take(connection, on_wait)
            try:
                with _in_transaction_mode(connection, close=False) as migrating:
                    yield migrating
            finally:
                lease.release(connection)
        finally:
            drivers.close_quietly(connection)

    @contextmanager
    def held(self, on_wait: OnWait = None) -> Iterator[None]:
        """The lease on a connection of its own, which also renews it (for a
        caller's connection, whose transactions are the caller's)."""
        lease = self.lease
        assert lease is not None
        with drivers.connection(self.settings) as own:
            lease.take(own, on_wait)
            lease.renew_on = own
            try:
                yield
            finally:
                lease.release(own)


class AutoLock:
    """`--lock-strategy auto`: the session lock, unless the connection shows that
    it would not keep other migrators out (dialect.session_lock_unsound)."""

    def __init__(self, settings: Settings, statements: tuple[str, str]) -> None:
        self.settings = settings
        self.statements = statements
        self.lease: leases.Lease | None = None
        self.why_lease: str | None = None  # what the connection showed

    def choose(self, connection: Any) -> SessionLock | LeaseLock:
        self.why_lease = self.settings.dialect.session_lock_unsound(connection)
        if self.why_lease is None:
            return SessionLock(self.settings, *self.statements)
        chosen = LeaseLock(self.settings)
        self.lease = chosen.lease
        return chosen

    @contextmanager
    def hold(self, on_wait: OnWait = None) -> Iterator[Any]:
        connection = drivers.connect(self.settings, autocommit=True)
        try:
            chosen = self.choose(connection)
        except BaseException:
            drivers.close_quietly(connection)
            raise
        with chosen.hold(on_wait, connection) as migrating:
            yield migrating


def _check_same_database(settings: Settings, locked: str | None, connection: Any) -> None:
    """A lock on another database than the one migrated excludes nobody: refused."""
    name_sql = settings.dialect.current_database_sql()
    if locked is None or name_sql is None:
        return
    migrated = drivers.rows(connection, name_sql)[0][0]
    connection.rollback()
    if migrated != locked:
        raise ConfigError(
            f"--lock-url reaches database {locked!r} but the migrations run on "
            f"{migrated!r}: the lock must be taken on the database being migrated"
        )


def _first_value(connection: Any) -> SessionQuery:
    def query(sql: str) -> Any:
        found = drivers.rows(connection, sql)
        return found[0][0] if found else None

    return query


@contextmanager
def _in_transaction_mode(connection: Any, *, close: bool = True) -> Iterator[Any]:
    """`connection` out of autocommit for the migration, back in afterwards (so a
    release statement runs on its own)."""
    try:
        drivers.set_autocommit(connection, False)
        try:
            yield connection
        finally:
            with contextlib.suppress(Exception):
                connection.rollback()
                drivers.set_autocommit(connection, True)
    finally:
        if close:
            drivers.close_quietly(connection)


MigrationLock = FileLock | SessionLock | LeaseLock | AutoLock


def for_database(settings: Settings) -> MigrationLock:
    """The lock this database uses, as --lock-strategy and --lock-url say."""
    statements = settings.dialect.lock_statements(settings)
    if statements is None:
        return FileLock(settings)
    if settings.lock_strategy == "table":
        return LeaseLock(settings)
    if settings.lock_strategy == "advisory" or settings.lock_url is not None:
        return SessionLock(settings, *statements)
    return AutoLock(settings, statements)


@contextmanager
def hold_on(
    settings: Settings,
    query: SessionQuery,
    *,
    in_transaction: bool,
    on_wait: OnWait = None,
    raw: Any = None,
) -> Iterator[leases.Lease | None]:
    """The migration lock for a connection the caller opened, which `query` runs
    statements on.

    Outside a transaction the lock is held for the command, as for our own
    connections: the lock file (SQLite), or the session lock on the caller's own
    session. Inside the caller's transaction it must outlast the command, until
    that transaction ends: another migrator must not start from goose rows that
    are not committed yet. PostgreSQL takes a transaction-level advisory lock
    (the caller's COMMIT or ROLLBACK releases it). On SQLite the caller's write
    transaction itself keeps every other writer, migrators included, waiting
    until it ends; the lock file only covers the command. A database with
    neither (MySQL) cannot do this: refused. A lease (--lock-strategy table, or
    auto on `raw`, the caller's DBAPI connection, behind a pooler or on Galera)
    lives on a connection of its own instead."""
    lock = for_database(settings)
    if isinstance(lock, FileLock):
        with lock.held(on_wait):
            yield None
        return
    if isinstance(lock, AutoLock):
        # Without the DBAPI connection there is nothing to look at: the session lock.
        lock = lock.choose(raw) if raw is not None else SessionLock(settings, *lock.statements)
    if isinstance(lock, LeaseLock):
        # A committed row: taken, renewed and released on a connection of our own, so
        # nothing of it joins (or waits for) the caller's transaction.
        with lock.held(on_wait):
            yield lock.lease
        return
    if not in_transaction:
        with lock.held_by(query, on_wait):
            yield None
        return
    try_sql = settings.dialect.transaction_lock_sql(settings)
    if try_sql is None:
        raise MigrateError(
            f"{settings.dialect.label} has no migration lock that lasts until a "
            "transaction ends: pass a connection outside a transaction"
        )
    with SessionLock(settings, try_sql, None).held_by(query, on_wait):
        yield None


@dataclass(frozen=True)
class LockHolder:
    """Who holds the migration lock, for `status`."""

    strategy: str  # "file", "advisory" or "table"
    holder: str
    since: datetime | None = None
    lease_expires: datetime | None = None
    expired: bool = False  # a lease nobody renewed: the next migrator takes it over

    def describe(self) -> str:
        text = f"held by {self.holder}"
        if self.since is not None:
            text += f" since {leases.shown_utc(self.since)}"
        if self.lease_expires is not None:
            ends = "ran out" if self.expired else "until"
            text += f" (lease {ends} {leases.shown_utc(self.lease_expires)})"
        return text + f" [{self.strategy} lock]"


def current_holder(settings: Settings) -> LockHolder | None:
    """Who holds the migration lock now, read without taking it, writing or creating
    anything: a lease row, the session holding the advisory lock, or a process
    holding the SQLite lock file."""
    statements = settings.dialect.lock_statements(settings)
    if statements is None:
        return _file_holder(settings)
    with drivers.connection(settings) as connection:
        found = leases.current_holder(settings, connection)
        if found is not None:
            return LockHolder(
                "table", found.holder, found.acquired_at, found.expires_at, found.expired
            )
        sql = settings.dialect.session_lock_holder_sql(settings)
        rows = drivers.rows(connection, sql) if sql else []
    if rows:
        return LockHolder("advisory", str(rows[0][0]), rows[0][1])
    return None


def _file_holder(settings: Settings) -> LockHolder | None:
    path = FileLock(settings).path if settings.sqlite_path is not None else None
    if path is None or not os.path.exists(path):
        return None
    import fcntl

    # Read-only open: asking for the flock creates and writes nothing.
    descriptor = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return LockHolder("file", f"a process on this machine ({path})")
        fcntl.flock(descriptor, fcntl.LOCK_UN)
        return None
    finally:
        os.close(descriptor)
