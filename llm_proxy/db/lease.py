"""The lease lock: a committed row that names the migration lock's holder.

Where a session lock means nothing, a row still does: behind a connection
pooler in transaction pooling (the session that took an advisory lock is handed
to another client after each transaction) and on a multi-primary Galera cluster
(GET_LOCK holds on one node, rows are certified on every node). The row in
``llm_proxy_migration_lock`` says who holds the lock, since when, and until when:

- taking it is one short transaction: read the row with ``FOR UPDATE NOWAIT``,
  insert it when there is none, take it over when its lease has expired. Two
  claimants conflict on the primary key (a duplicate key, a locked row, a
  deadlock, Galera's certification failure): the loser waits and tries again;
- the holder renews it at the start of every migration, in the migration's
  own transaction (on PostgreSQL that row lock keeps every claimant out until
  the migration commits, however long it runs), and between the statements of
  a NO TRANSACTION file; a renewal that finds the row gone or someone else's
  stops the run (``LockLost``);
- a killed holder renews nothing: the others take over when the lease ends.

Every time is the database's clock, never a process's. The holder uses one
connection for the lock and its work: behind a pooler with a small pool, a
second one could wait in the pooler's queue behind the waiters.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from llm_proxy.config import Settings
from llm_proxy.errors import LockTimeout, MigrateError

from . import drivers

LEASE_TABLE = "llm_proxy_migration_lock"
LOCK_NAME = "migrate"  # one row: one lock per database (schema)
POLL_SECONDS = 0.25  # between tries of a lease; spread with jitter
WAITING_MESSAGE = "waiting for migration lock held by another process..."

OnWait = Callable[[str], None] | None


class LockLost(MigrateError):
    """The lease ran out and another process took the lock over."""


@dataclass(frozen=True)
class Holder:
    """Who holds a lease, as its row says."""

    holder: str
    acquired_at: datetime
    expires_at: datetime
    expired: bool

    def describe(self) -> str:
        return (
            f"{self.holder} since {shown_utc(self.acquired_at)} (lease until "
            f"{shown_utc(self.expires_at)})"
        )


def shown_utc(moment: datetime) -> str:
    """A lease time for people: the database's clock, in UTC (MySQL's DATETIME
    columns hold UTC already)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def holder_identity() -> str:
    """host:pid:random: unique per run, readable by whoever looks at the row."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"[:255]


def table_name(settings: Settings) -> str:
    return settings.dialect.qualify(LEASE_TABLE, settings.schema)


def current_holder(settings: Settings, connection: Any) -> Holder | None:
    """The lease's row, read on an autocommit connection; None when there is none
    (or no table yet)."""
    dialect = settings.dialect
    try:
        found = drivers.rows(
            connection,
            f"SELECT holder, acquired_at, expires_at, expires_at < {dialect.now_sql()} "
            f"FROM {table_name(settings)} WHERE lock_name = {dialect.literal(LOCK_NAME)}",
        )
    except Exception:
        if _in_transaction(connection):
            connection.rollback()
        return None  # no table: nobody ever took a lease here
    if not found:
        return None
    holder, acquired, expires, expired = found[0]
    return Holder(str(holder), _utc(acquired), _utc(expires), bool(expired))


def _utc(moment: datetime) -> datetime:
    """MySQL's DATETIME columns hold UTC without saying so (UTC_TIMESTAMP)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _in_transaction(connection: Any) -> bool:
    status = getattr(getattr(connection, "info", None), "transaction_status", None)
    return status is not None and int(status) != 0  # psycopg: 0 = idle


class Lease:
    """One process's claim on the lease row."""

    def __init__(self, settings: Settings, identity: str | None = None) -> None:
        self.settings = settings
        self.identity = identity or holder_identity()
        self.table = table_name(settings)
        self._renewed = 0.0  # time.monotonic() of the last renewal
        # Where renewals run when not on the migration's connection (a caller's
        # connection, whose transactions must not hold our row).
        self.renew_on: Any = None

    # ------------------------------------------------------------ SQL

    def _where_mine(self) -> str:
        literal = self.settings.dialect.literal
        return f"lock_name = {literal(LOCK_NAME)} AND holder = {literal(self.identity)}"

    def renew_sql(self) -> str:
        dialect = self.settings.dialect
        return (
            f"UPDATE {self.table} SET renewed_at = {dialect.now_sql()}, "
            f"expires_at = {dialect.later_sql(self.settings.lock_lease)} WHERE {self._where_mine()}"
        )

    def release_sql(self) -> str:
        return f"DELETE FROM {self.table} WHERE {self._where_mine()}"

    # ------------------------------------------------------------ taking it

    def ensure_table(self, connection: Any) -> None:
        """Create the table once (autocommit). Many processes may try at once, and
        PostgreSQL's IF NOT EXISTS does not cover a race (a duplicate type, or a
        duplicate key in its catalog): whoever loses it finds the table made."""
        sql = self.settings.dialect.lease_table_sql(self.table)
        try:
            drivers.rows(connection, sql)
        except Exception as create_error:
            if _in_transaction(connection):
                connection.rollback()
            try:
                drivers.rows(connection, f"SELECT 1 FROM {self.table} WHERE 1 = 0")
            except Exception:
                if _in_transaction(connection):
                    connection.rollback()
                raise create_error from None  # not there: the CREATE's error says why

    def try_take(self, connection: Any) -> Holder | None:
        """One try, in one transaction on an autocommit connection: None when the
        lease is now ours, else who holds it."""
        dialect = self.settings.dialect
        now, until = dialect.now_sql(), dialect.later_sql(self.settings.lock_lease)
        name, me = dialect.literal(LOCK_NAME), dialect.literal(self.identity)
        drivers.set_autocommit(connection, False)
        contended = False
        try:
            found = drivers.rows(
                connection,
                f"SELECT holder, acquired_at, expires_at, expires_at < {now} FROM {self.table} "
                f"WHERE lock_name = {name} {dialect.lock_row_nowait_sql()}",
            )
            if found and not found[0][3]:
                holder, acquired, expires, _ = found[0]
                return Holder(str(holder), _utc(acquired), _utc(expires), False)
            if found:  # its holder stopped renewing: take it over
                drivers.rows(
                    connection,
                    f"UPDATE {self.table} SET holder = {me}, acquired_at = {now}, "
                    f"renewed_at = {now}, expires_at = {until} WHERE lock_name = {name}",
                )
            else:
                drivers.rows(
                    connection,
                    f"INSERT INTO {self.table} (lock_name, holder, acquired_at, renewed_at, "
                    f"expires_at) VALUES ({name}, {me}, {now}, {now}, {until})",
                )
            connection.commit()  # Galera certifies here: a conflict loses now
        except Exception as exc:
            if not dialect.is_contention_error(exc):
                raise
            contended = True
        finally:
            with contextlib.suppress(Exception):
                connection.rollback()  # nothing after a commit; the read or a loss otherwise
            drivers.set_autocommit(connection, True)
        if contended:
            return current_holder_or_unknown(self.settings, connection)
        self._renewed = time.monotonic()
        return None

    def take(self, connection: Any, on_wait: OnWait = None) -> None:
        """Wait for the lease until --lock-timeout, trying every POLL_SECONDS or so."""
        settings = self.settings
        self.ensure_table(connection)
        deadline = time.monotonic() + settings.lock_timeout
        reported = False
        pause = POLL_SECONDS
        jitter = _jitter()
        while True:
            holder = self.try_take(connection)
            if holder is None:
                return
            if not reported and on_wait:
                on_wait(WAITING_MESSAGE)
                reported = True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LockTimeout(
                    f"timed out after {settings.lock_timeout:g}s waiting for the migration lock "
                    f"on {settings.where}, held by {holder.describe()}; raise --lock-timeout, "
                    "or stop that process (its lease ends unless it renews it)"
                )
            time.sleep(min(remaining, pause * jitter()))

    # ------------------------------------------------------------ holding it

    def renew(self, connection: Any) -> None:
        """Extend the lease on `connection`, in whatever transaction it is in.
        LockLost when the row is gone or someone else's."""
        cursor = connection.cursor()
        try:
            cursor.execute(self.renew_sql())
            renewed = cursor.rowcount
        finally:
            cursor.close()
        if renewed != 1:
            taken = current_holder(self.settings, connection)
            by = f", now held by {taken.holder}" if taken is not None else ""
            raise LockLost(
                f"lost the migration lock on {self.settings.where}: its lease of "
                f"{self.settings.lock_lease:g}s ran out{by}; raise --lock-lease above the "
                "longest statement that runs outside a transaction"
            )
        self._renewed = time.monotonic()

    def renew_if_due(self, connection: Any) -> None:
        """Renew when a quarter of the lease has passed since the last renewal (between
        statements that commit one by one: no write per statement)."""
        if time.monotonic() - self._renewed >= self.settings.lock_lease / 4:
            self.renew(connection)

    def release(self, connection: Any) -> None:
        """Delete our row (autocommit connection); a lost connection is left to the
        lease's end."""
        with contextlib.suppress(Exception):
            if _in_transaction(connection):
                connection.rollback()
            drivers.rows(connection, self.release_sql())


def current_holder_or_unknown(settings: Settings, connection: Any) -> Holder:
    found = current_holder(settings, connection)
    if found is not None:
        return found
    now = datetime.now()
    # The row was taken and released between our two reads: try again at once.
    return Holder("another process", now, now, True)


def _jitter() -> Callable[[], float]:
    """0.5-1.5, so that many waiters do not all try at the same instant."""
    import random

    rng = random.Random()
    return lambda: 0.5 + rng.random()


@contextmanager
def held(settings: Settings, connection: Any, on_wait: OnWait = None) -> Iterator[Lease]:
    """The lease on an autocommit `connection`, released at the end."""
    lease = Lease(settings)
    lease.take(connection, on_wait)
    try:
        yield lease
    finally:
        lease.release(connection)
