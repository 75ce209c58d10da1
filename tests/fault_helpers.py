"""Fault-injection helpers: migrator processes to kill, histories to run, states to judge.

A trial spawns a real `python -m llm_proxy migrate ...`, lets it run for a
seeded random delay after it took the migration lock, and SIGKILLs it; the
database is then read directly (sqlite3, psycopg) and judged against the
states a clean run passes through after each migration (`prefix_states`,
produced with `migrate up-to`). Reading and judging use nothing from llm_proxy.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conftest import SETTINGS_ENV

WAITING = "waiting for migration lock held by another process..."
DEFAULT_SEED = 20240917
# Rows of the slow data migration, sized so it takes ~150 ms on a laptop-class CPU.
BULK_ROWS = {"sqlite": 200_000, "postgresql": 50_000}

# Tables that record migrations rather than hold application data.
VERSION_TABLES = ("goose_db_version", "alembic_version")
JOURNAL_TABLE = "llm_proxy_migrations"

_CHILD_ENV_DROP = SETTINGS_ENV


# ------------------------------------------------------------------ seeds and counts


def fault_seed() -> int:
    return int(os.environ.get("FAULT_SEED", str(DEFAULT_SEED)))


def trial_count(variable: str, default: int) -> int:
    return int(os.environ.get(variable, str(default)))


def trial_random(seed: int, label: str, trial: int) -> random.Random:
    # Seeded from a string: the same seed gives the same delays whatever ran before.
    return random.Random(f"{seed}:{label}:{trial}")


@dataclass(frozen=True)
class Window:
    """Where kills are aimed, in seconds after the migrator took its migration lock:
    from that moment to a little past the end of a typical run (measured). Timing
    from the lock rather than from spawn keeps interpreter start-up and imports,
    whose length varies most between machines, out of the aim."""

    end: float

    def at(self, fraction: float) -> float:
        return fraction * self.end

    def __str__(self) -> str:
        return f"0-{self.end * 1000:.0f}ms after the lock"


def measure_window(run_once: Callable[[], float], runs: int = 3) -> Window:
    """run_once returns the seconds one clean run spent from lock to exit."""
    return Window(end=1.1 * statistics.median(run_once() for _ in range(runs)))


def sqlite_lock_taken(db: Path) -> Callable[[], bool]:
    """True once a file other than the database and its journals appears beside
    it: the migration lock file (the trial directory starts without one)."""
    own = {db.name, f"{db.name}-wal", f"{db.name}-shm", f"{db.name}-journal"}
    return lambda: any(name not in own for name in os.listdir(db.parent))


def postgres_lock_taken(admin: Any, database: str) -> Callable[[], bool]:
    """True while some session holds an advisory lock in the database."""

    def taken() -> bool:
        row = admin.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
            "WHERE l.locktype = 'advisory' AND l.granted AND d.datname = %s",
            (database,),
        ).fetchone()
        return bool(row and row[0])

    return taken


# ------------------------------------------------------------------ processes


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _CHILD_ENV_DROP}
    env.update(extra or {})
    return env


class Proc:
    """A real `python -m llm_proxy` process whose output lines are collected
    as they arrive, with the moment each arrived."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.args = args
        self.started = time.monotonic()
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "llm_proxy", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env(env),
        )
        self.stdout_lines: list[tuple[float, str]] = []
        self.stderr_lines: list[tuple[float, str]] = []
        self.ended: float | None = None
        self.killed_at: float | None = None
        self._changed = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read, args=(self.popen.stdout, self.stdout_lines)),
            threading.Thread(target=self._read, args=(self.popen.stderr, self.stderr_lines)),
        ]
        for reader in self._readers:
            reader.daemon = True
            reader.start()

    def _read(self, pipe: Any, lines: list[tuple[float, str]]) -> None:
        for line in pipe:
            with self._changed:
                lines.append((time.monotonic(), line.rstrip("\n")))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def stdout(self) -> str:
        return "\n".join(line for _, line in self.stdout_lines)

    @property
    def stderr(self) -> str:
        return "\n".join(line for _, line in self.stderr_lines)

    def output(self) -> str:
        return f"stdout:\n{self.stdout}\nstderr:\n{self.stderr}"

    def running(self) -> bool:
        return self.popen.poll() is None

    def wait_for_line(self, stream: str, text: str, timeout: float) -> float | None:
        """The moment a line containing `text` arrived on stdout/stderr, or None
        if the process ended or the timeout passed first."""
        lines = self.stdout_lines if stream == "stdout" else self.stderr_lines
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for moment, line in lines:
                    if text in line:
                        return moment
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not any(r.is_alive() for r in self._readers):
                    return None
                self._changed.wait(min(remaining, 0.05))

    def kill(self) -> bool:
        """SIGKILL now; True if the process was still running (the kill landed)."""
        landed = self.popen.poll() is None
        if landed:
            self.popen.send_signal(signal.SIGKILL)
            self.killed_at = time.monotonic()
        self.finish(timeout=30)
        return landed

    def wait_until(self, ready: Callable[[], bool], timeout: float = 60) -> float | None:
        """The moment ready() first held (polled every 2 ms); None if the process
        ended or the timeout passed first."""
        deadline = time.monotonic() + timeout
        while self.running() and time.monotonic() < deadline:
            if ready():
                return time.monotonic()
            time.sleep(0.002)
        return None

    def kill_at(self, moment: float) -> bool:
        """SIGKILL at `moment` (time.monotonic()), unless the process ends first."""
        remaining = moment - time.monotonic()
        if remaining > 0:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=remaining)
        return self.kill()

    def finish(self, timeout: float) -> int:
        try:
            code = self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
            raise AssertionError(
                f"{' '.join(self.args)} still running after {timeout}s\n{self.output()}"
            ) from None
        if self.ended is None:
            self.ended = time.monotonic()
        for reader in self._readers:
            reader.join(timeout=10)
        return code

    def reported_ok(self) -> list[str]:
        """File names the process reported as applied (`OK   <file> (..ms)`)."""
        return [line.split()[1] for _, line in self.stdout_lines if line.startswith("OK ")]


def hold_sqlite_write_lock(path: Path, statement: str) -> subprocess.Popen[str]:
    """Another real process with an open write transaction (BEGIN IMMEDIATE plus
    one uncommitted write) on the file; it rolls back when its stdin closes."""
    code = (
        "import sqlite3, sys\n"
        f"c = sqlite3.connect({str(path)!r}, isolation_level=None)\n"
        "c.execute('BEGIN IMMEDIATE')\n"
        f"c.execute({statement!r})\n"
        "print('locked', flush=True)\n"
        "sys.stdin.read()\n"
        "c.execute('ROLLBACK')\n"
        "c.close()\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    line = holder.stdout.readline()
    if line.strip() != "locked":
        holder.kill()
        raise AssertionError(f"lock holder did not start: {line!r} {holder.stderr.read()!r}")
    return holder


def release(holder: subprocess.Popen[str]) -> None:
    assert holder.stdin is not None
    holder.stdin.close()
    holder.wait(timeout=30)


# ------------------------------------------------------------------ histories


@dataclass(frozen=True)
class History:
    directory: Path
    names: tuple[str, ...]

    @property
    def versions(self) -> tuple[str, ...]:
        return tuple(name.split("_", 1)[0] for name in self.names)


def write_history(directory: Path, files: dict[str, str]) -> History:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return History(directory, tuple(sorted(files)))


def _seq(n: int, select: str) -> str:
    return (
        f"WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < {n})\n"
        f"{select} FROM seq;"
    )


def kill_history_files(dialect: str) -> dict[str, str]:
    """Five migrations: multi-statement DDL with data, one slow bulk insert,
    a table rebuild (SQLite) or ALTERs (PostgreSQL), and a trigger block."""
    sqlite = dialect == "sqlite"
    entry = "printf('entry-%08d', n)" if sqlite else "'entry-' || lpad(n::text, 8, '0')"
    files = {
        "00001_accounts_and_events.sql": (
            "-- +goose Up\n"
            "CREATE TABLE f_accounts (\n"
            "    id INTEGER PRIMARY KEY,\n"
            "    name TEXT NOT NULL\n"
            ");\n"
            "CREATE UNIQUE INDEX idx_f_accounts_name ON f_accounts(name);\n"
            "INSERT INTO f_accounts (id, name) VALUES (1, 'alpha'), (2, 'beta'), (3, 'gamma');\n"
            "CREATE TABLE f_events (\n"
            "    id INTEGER PRIMARY KEY,\n"
            "    account_id INTEGER NOT NULL REFERENCES f_accounts(id),\n"
            "    kind TEXT NOT NULL\n"
            ");\n"
            "INSERT INTO f_events (id, account_id, kind)\n"
            "VALUES (1, 1, 'created'), (2, 2, 'created'), (3, 3, 'created');\n"
            "\n-- +goose Down\n"
            "DROP TABLE f_events;\n"
            "DROP TABLE f_accounts;\n"
        ),
        "00002_bulk_ledger.sql": (
            "-- +goose Up\n"
            "CREATE TABLE f_ledger (\n"
            "    n INTEGER PRIMARY KEY,\n"
            "    account_id INTEGER NOT NULL,\n"
            "    entry TEXT NOT NULL\n"
            ");\n"
            "INSERT INTO f_ledger (n, account_id, entry)\n"
            + _seq(BULK_ROWS[dialect], f"SELECT n, n % 3 + 1, {entry}")
            + "\n"
            "CREATE INDEX idx_f_ledger_account ON f_ledger(account_id);\n"
            "UPDATE f_accounts SET name = name || '-ledger';\n"
            "\n-- +goose Down\n"
            "UPDATE f_accounts SET name = replace(name, '-ledger', '');\n"
            "DROP TABLE f_ledger;\n"
        ),
        "00003_account_status.sql": (
            "-- +goose Up\n"
            "ALTER TABLE f_accounts ADD COLUMN status TEXT NOT NULL DEFAULT 'active';\n"
            "UPDATE f_accounts SET status = 'closed' WHERE id = 3;\n"
            "CREATE TABLE f_notes (\n"
            "    id INTEGER PRIMARY KEY,\n"
            "    account_id INTEGER NOT NULL,\n"
            "    body TEXT NOT NULL\n"
            ");\n"
            "INSERT INTO f_notes (id, account_id, body)\n"
            "SELECT id, id, 'note for ' || name FROM f_accounts;\n"
            "\n-- +goose Down\n"
            "DROP TABLE f_notes;\n"
            "ALTER TABLE f_accounts DROP COLUMN status;\n"
        ),
    }
    if sqlite:
        files["00004_rebuild_events.sql"] = (
            "-- +goose Up\n"
            "CREATE TABLE f_events_new (\n"
            "    id INTEGER PRIMARY KEY,\n"
            "    account_id INTEGER NOT NULL REFERENCES f_accounts(id),\n"
            "    kind TEXT NOT NULL CHECK (kind IN ('created', 'updated', 'closed')),\n"
            "    weight INTEGER NOT NULL DEFAULT 1\n"
            ");\n"
            "INSERT INTO f_events_new (id, account_id, kind)\n"
            "SELECT id, account_id, kind FROM f_events;\n"
            "DROP TABLE f_events;\n"
            "ALTER TABLE f_events_new RENAME TO f_events;\n"
            "CREATE INDEX idx_f_events_account ON f_events(account_id);\n"
            "\n-- +goose Down\n"
            "DROP INDEX idx_f_events_account;\n"
            "ALTER TABLE f_events DROP COLUMN weight;\n"
        )
        files["00005_close_trigger.sql"] = (
            "-- +goose Up\n"
            "-- +goose StatementBegin\n"
            "CREATE TRIGGER f_account_closed AFTER UPDATE OF status ON f_accounts\n"
            "WHEN NEW.status = 'closed'\n"
            "BEGIN\n"
            "    INSERT INTO f_events (account_id, kind) VALUES (NEW.id, 'closed');\n"
            "END;\n"
            "-- +goose StatementEnd\n"
            "CREATE VIEW f_open_accounts AS\n"
            "SELECT id, name FROM f_accounts WHERE status = 'active';\n"
            "\n-- +goose Down\n"
            "DROP VIEW f_open_accounts;\n"
            "DROP TRIGGER f_account_closed;\n"
        )
    else:
        files["00004_event_constraints.sql"] = (
            "-- +goose Up\n"
            "ALTER TABLE f_events ADD CONSTRAINT f_events_kind\n"
            "    CHECK (kind IN ('created', 'updated', 'closed'));\n"
            "ALTER TABLE f_events ADD COLUMN weight INTEGER NOT NULL DEFAULT 1;\n"
            "CREATE INDEX idx_f_events_account ON f_events(account_id);\n"
            "\n-- +goose Down\n"
            "DROP INDEX idx_f_events_account;\n"
            "ALTER TABLE f_events DROP COLUMN weight;\n"
            "ALTER TABLE f_events DROP CONSTRAINT f_events_kind;\n"
        )
        files["00005_close_trigger.sql"] = (
            "-- +goose Up\n"
            "-- +goose StatementBegin\n"
            "CREATE FUNCTION f_account_closed() RETURNS trigger AS $$\n"
            "BEGIN\n"
            "    INSERT INTO f_events (id, account_id, kind)\n"
            "    VALUES ((SELECT max(id) + 1 FROM f_events), NEW.id, 'closed');\n"
            "    RETURN NEW;\n"
            "END;\n"
            "$$ LANGUAGE plpgsql;\n"
            "-- +goose StatementEnd\n"
            "CREATE TRIGGER f_account_closed AFTER UPDATE OF status ON f_accounts\n"
            "FOR EACH ROW WHEN (NEW.status = 'closed') EXECUTE FUNCTION f_account_closed();\n"
            "CREATE VIEW f_open_accounts AS\n"
            "SELECT id, name FROM f_accounts WHERE status = 'active';\n"
            "\n-- +goose Down\n"
            "DROP VIEW f_open_accounts;\n"
            "DROP TRIGGER f_account_closed ON f_accounts;\n"
            "DROP FUNCTION f_account_closed();\n"
        )
    return files


# ------------------------------------------------------------------ reading a database


def _is_bookkeeping(name: str) -> bool:
    return name in VERSION_TABLES or name == "sqlite_sequence" or name.startswith("llm_proxy_")


SMALL_TABLE = 1000  # rows compared one by one below this; larger tables by aggregates


@dataclass
class Observed:
    """What a database holds after a fault: version rows and application state."""

    goose_rows: list[tuple[int, bool]] | None  # (version_id, is_applied) by id; None: no table
    alembic_heads: list[str] | None  # None: no table
    journal: list[str] | None  # revisions in llm_proxy_migrations; None: no table
    fingerprint: dict[str, Any] = field(default_factory=dict)


def _sqlite_fingerprint(connection: sqlite3.Connection) -> dict[str, Any]:
    objects = connection.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
    ).fetchall()
    result: dict[str, Any] = {}
    for kind, name, table, sql in objects:
        if _is_bookkeeping(table) or name.startswith("sqlite_"):
            continue
        result[f"{kind} {name}"] = sql
        if kind == "table":
            result[f"rows {name}"] = _table_rows(connection.execute, name)
    return result


def _table_rows(execute: Callable[[str], Any], table: str) -> Any:
    (count,) = execute(f"SELECT count(*) FROM {table}").fetchone()
    if count > SMALL_TABLE:
        # A big table is written by one statement: its size and bounds tell whole from partial.
        first = execute(f"SELECT * FROM {table} LIMIT 1").fetchone()
        return ("count", count, len(first))
    return sorted(tuple(str(v) for v in row) for row in execute(f"SELECT * FROM {table}"))


def observe_sqlite(path: Path) -> Observed:
    connection = sqlite3.connect(f"file:{path}?mode=rw", uri=True)
    try:
        names = {r[0] for r in connection.execute("SELECT name FROM sqlite_master")}
        goose = None
        if "goose_db_version" in names:
            goose = [
                (int(v), bool(a))
                for v, a in connection.execute(
                    "SELECT version_id, is_applied FROM goose_db_version ORDER BY id"
                )
            ]
        alembic = None
        if "alembic_version" in names:
            alembic = sorted(
                r[0] for r in connection.execute("SELECT version_num FROM alembic_version")
            )
        journal = None
        if JOURNAL_TABLE in names:
            journal = sorted(
                r[0] for r in connection.execute(f"SELECT revision FROM {JOURNAL_TABLE}")
            )
        return Observed(goose, alembic, journal, _sqlite_fingerprint(connection))
    finally:
        connection.close()


def sqlite_integrity(path: Path) -> str:
    connection = sqlite3.connect(f"file:{path}?mode=rw", uri=True)
    try:
        return ", ".join(r[0] for r in connection.execute("PRAGMA integrity_check"))
    finally:
        connection.close()


def sqlite_journal_mode(path: Path) -> str:
    connection = sqlite3.connect(f"file:{path}?mode=rw", uri=True)
    try:
        return connection.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        connection.close()


def _pg_fingerprint(connection: Any) -> dict[str, Any]:
    def rows(sql: str) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in connection.execute(sql).fetchall()]

    result: dict[str, Any] = {}
    for table, column, kind, nullable, default in rows(
        "SELECT table_name, column_name, data_type, is_nullable, column_default "
        "FROM information_schema.columns WHERE table_schema = 'public'"
    ):
        if not _is_bookkeeping(table):
            result[f"column {table}.{column}"] = (kind, nullable, default)
    for table, name, definition in rows(
        "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
    ):
        if not _is_bookkeeping(table):
            result[f"index {name}"] = definition
    for table, name, definition in rows(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
        "FROM pg_constraint WHERE connamespace = 'public'::regnamespace"
    ):
        if not _is_bookkeeping(table):
            result[f"constraint {table}.{name}"] = definition
    for name, definition in rows(
        "SELECT table_name, view_definition FROM information_schema.views "
        "WHERE table_schema = 'public'"
    ):
        result[f"view {name}"] = definition
    for name, source in rows(
        "SELECT proname, prosrc FROM pg_proc WHERE pronamespace = 'public'::regnamespace"
    ):
        result[f"function {name}"] = source
    for name, table, event, action in rows(
        "SELECT trigger_name, event_object_table, event_manipulation, action_statement "
        "FROM information_schema.triggers WHERE trigger_schema = 'public'"
    ):
        result[f"trigger {name} {event}"] = (table, action)
    for (table,) in rows(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
    ):
        if not _is_bookkeeping(table):
            result[f"rows {table}"] = _table_rows(connection.execute, table)
    return result


def observe_postgres(url: str) -> Observed:
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:

        def exists(table: str) -> bool:
            row = connection.execute("SELECT to_regclass(%s)", (f"public.{table}",)).fetchone()
            return row is not None and row[0] is not None

        goose = None
        if exists("goose_db_version"):
            goose = [
                (int(v), bool(a))
                for v, a in connection.execute(
                    "SELECT version_id, is_applied FROM goose_db_version ORDER BY id"
                )
            ]
        alembic = None
        if exists("alembic_version"):
            alembic = sorted(
                r[0] for r in connection.execute("SELECT version_num FROM alembic_version")
            )
        journal = None
        if exists(JOURNAL_TABLE):
            journal = sorted(
                r[0] for r in connection.execute(f"SELECT revision FROM {JOURNAL_TABLE}")
            )
        return Observed(goose, alembic, journal, _pg_fingerprint(connection))


def postgres_backends(admin: Any, database: str) -> list[tuple[int, str, str]]:
    """Other sessions on the database: (pid, state, query)."""
    return [
        (pid, state or "", query or "")
        for pid, state, query in admin.execute(
            "SELECT pid, state, query FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchall()
    ]


def wait_for_postgres_backends_gone(admin: Any, database: str, timeout: float = 15) -> None:
    """A killed client's backends end once their statement finishes; wait for that."""
    deadline = time.monotonic() + timeout
    while postgres_backends(admin, database):
        if time.monotonic() > deadline:
            raise AssertionError(
                f"backends of a killed migrator still alive after {timeout}s: "
                f"{postgres_backends(admin, database)}"
            )
        time.sleep(0.01)


def reset_postgres_schema(admin: Any, database: str) -> None:
    """Drop everything a trial created (all trials of one test share a database)."""
    wait_for_postgres_backends_gone(admin, database)
    admin.execute("DROP SCHEMA public CASCADE")
    admin.execute("CREATE SCHEMA public")


# ------------------------------------------------------------------ judging a state


def describe_difference(expected: dict[str, Any], actual: dict[str, Any], limit: int = 6) -> str:
    parts = []
    for key in sorted(set(expected) | set(actual)):
        if expected.get(key) != actual.get(key):
            if key not in actual:
                parts.append(f"missing {key}")
            elif key not in expected:
                parts.append(f"unexpected {key}")
            else:
                parts.append(f"{key}: expected {expected[key]!r:.80}, found {actual[key]!r:.80}")
    more = f" (+{len(parts) - limit} more)" if len(parts) > limit else ""
    return "; ".join(parts[:limit]) + more


def applied_count(observed: Observed, history: History, states: Sequence[dict[str, Any]]) -> int:
    """How many migrations the database holds, after checking that each one is
    either whole (its objects and rows, one goose row) or absent (neither), that
    alembic_version names the highest applied goose revision (or nothing), and
    that our journal, if present, lists exactly the applied revisions.
    Raises AssertionError describing the first inconsistency."""
    versions = history.versions
    rows = observed.goose_rows
    if rows is None:
        applied = 0
    else:
        if not rows or rows[0] != (0, True):
            raise AssertionError(f"goose_db_version lacks its initial (0, applied) row: {rows}")
        recorded = rows[1:]
        applied = len(recorded)
        wanted = [(int(v), True) for v in versions[:applied]]
        if recorded != wanted:
            raise AssertionError(
                f"goose_db_version rows are not one applied row per migration, in order: {recorded}"
            )
    expected_heads = [versions[applied - 1]] if applied else []
    if observed.alembic_heads is not None and observed.alembic_heads != expected_heads:
        raise AssertionError(
            f"alembic_version holds {observed.alembic_heads} while goose_db_version has "
            f"{applied} migrations applied (expected {expected_heads})"
        )
    if applied and observed.alembic_heads is None:
        raise AssertionError("alembic_version is missing although goose_db_version has rows")
    if observed.journal is not None and observed.journal != sorted(versions[:applied]):
        raise AssertionError(
            f"{JOURNAL_TABLE} lists {observed.journal}, applied are {list(versions[:applied])}"
        )
    if observed.fingerprint != states[applied]:
        partial = history.names[applied] if applied < len(history.names) else "(none pending)"
        raise AssertionError(
            f"schema/data do not match the state after {applied} migrations "
            f"(goose rows say so); {partial} is partly applied or an applied one is partly "
            f"undone: {describe_difference(states[applied], observed.fingerprint)}"
        )
    return applied


def prefix_states(
    versions_to_apply: Iterable[str],
    up_to: Callable[[str], None],
    observe: Callable[[], Observed],
) -> list[dict[str, Any]]:
    """The application state after 0, 1, ... n migrations of a clean run."""
    states = [observe().fingerprint]
    for version in versions_to_apply:
        up_to(version)
        states.append(observe().fingerprint)
    return states
