"""Crash and fault safety, proven by injecting real faults into real processes.

SIGKILL at seeded random moments, a lock holder that dies, a PostgreSQL
connection cut mid-migration, NO TRANSACTION migrations stopped part-way, and
a SQLite file locked by another writer. Every kill trial's failure message
carries the seed (FAULT_SEED) and the moment of the kill, so it can be re-run.
Trial counts: FAULT_TRIALS_SQLITE (per journal mode), FAULT_TRIALS_PG.
docs/recovery.md is the operator's side of what these tests establish.
"""

from __future__ import annotations

import collections
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import cli, sqlite_dump
from fault_helpers import (
    WAITING,
    History,
    Observed,
    Proc,
    Window,
    applied_count,
    fault_seed,
    hold_sqlite_write_lock,
    kill_history_files,
    measure_window,
    observe_postgres,
    observe_sqlite,
    postgres_backends,
    postgres_lock_taken,
    prefix_states,
    release,
    reset_postgres_schema,
    sqlite_integrity,
    sqlite_journal_mode,
    sqlite_lock_taken,
    trial_count,
    trial_random,
    wait_for_postgres_backends_gone,
    write_history,
)

# ~2 s of pure CPU on SQLite, no writes: a migration the test can catch in the act.
SLOW_SQLITE_SELECT = (
    "SELECT count(*) FROM (WITH RECURSIVE c(x) AS "
    "(SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 15000000) SELECT x FROM c);"
)
# PostgreSQL sleeps only while the test says so: a per-database setting new sessions read.
PG_SLEEP_SETTING = "llmproxy.fault_sleep"
PG_SLEEP = f"SELECT pg_sleep(current_setting('{PG_SLEEP_SETTING}', true)::float8);"
ALL_APPLIED = [(0, True), (1, True), (2, True), (3, True)]


# ---------------------------------------------------------------- helpers


def _sqlite_args(db: Path, history: History, lock_timeout: str = "5") -> tuple[str, ...]:
    return (
        "--db",
        str(db),
        "--migrations-dir",
        str(history.directory),
        "--lock-timeout",
        lock_timeout,
    )


def _pg_args(url: str, history: History, lock_timeout: str = "5") -> tuple[str, ...]:
    return (
        "--database-url",
        url,
        "--migrations-dir",
        str(history.directory),
        "--lock-timeout",
        lock_timeout,
    )


def _fresh_sqlite(path: Path, journal_mode: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if journal_mode == "wal":
        connection = sqlite3.connect(path)
        try:
            assert connection.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
        finally:
            connection.close()
    return path


def _remove_tree(directory: Path) -> None:
    for child in directory.iterdir():
        child.unlink()
    directory.rmdir()


def _ok(result: Any) -> None:
    assert result.exit_code == 0, result.output


def _one_error_line(stderr: str) -> str:
    # A "warning:" line (a partial NO TRANSACTION run being retried) may come first.
    lines = [
        line for line in stderr.splitlines() if line.strip() and not line.startswith("warning:")
    ]
    assert len(lines) == 1, f"expected one error line, got {lines}"
    assert lines[0].startswith("Error: "), lines
    return lines[0]


def require(condition: object, message: str) -> None:
    """A precondition of an xfail test: it raises RuntimeError, not AssertionError,
    so that a broken set-up fails the test instead of passing as the expected failure."""
    if not condition:
        raise RuntimeError(message)


def _goose_versions(db: Path) -> list[int]:
    connection = sqlite3.connect(db)
    try:
        return [r[0] for r in connection.execute("SELECT version_id FROM goose_db_version")]
    except sqlite3.OperationalError:
        return []
    finally:
        connection.close()


def _sqlite_tables(db: Path) -> set[str]:
    connection = sqlite3.connect(db)
    try:
        return {r[0] for r in connection.execute("SELECT name FROM sqlite_master")}
    finally:
        connection.close()


def _postgres_tables(admin: Any) -> set[str]:
    return {
        r[0]
        for r in admin.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        )
    }


def _wait_for(check: Callable[[], bool], proc: Proc, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        require(proc.running(), f"migrator ended before {what}\n{proc.output()}")
        require(time.monotonic() < deadline, f"no {what} after {timeout}s\n{proc.output()}")
        time.sleep(0.01)


@pytest.fixture
def pg_admin(postgres_url: str) -> Iterator[Any]:
    """An autocommit session on the test database, for resetting and inspecting it."""
    import psycopg

    connection = psycopg.connect(postgres_url, autocommit=True)
    try:
        yield connection
    finally:
        connection.close()


def _database(url: str) -> str:
    return url.rsplit("/", 1)[1]


@contextmanager
def _pg_sleeping(admin: Any, database: str, seconds: int) -> Iterator[None]:
    admin.execute(f"ALTER DATABASE \"{database}\" SET {PG_SLEEP_SETTING} = '{seconds}'")
    try:
        yield
    finally:
        admin.execute(f'ALTER DATABASE "{database}" RESET {PG_SLEEP_SETTING}')


def _three(directory: Path, middle_name: str, middle: str) -> History:
    """A quick migration, the one under test, and a quick one after it."""
    return write_history(
        directory,
        {
            "00001_first.sql": "-- +goose Up\nCREATE TABLE f_first (id INTEGER PRIMARY KEY);\n"
            "\n-- +goose Down\nDROP TABLE f_first;\n",
            middle_name: middle,
            "00003_last.sql": "-- +goose Up\nCREATE TABLE f_last (id INTEGER PRIMARY KEY);\n"
            "\n-- +goose Down\nDROP TABLE f_last;\n",
        },
    )


def _slow_history(directory: Path, slow_statement: str) -> History:
    return _three(
        directory,
        "00002_slow.sql",
        "-- +goose Up\nCREATE TABLE f_slow (id INTEGER PRIMARY KEY);\n"
        f"{slow_statement}\nINSERT INTO f_slow (id) VALUES (1);\n"
        "\n-- +goose Down\nDROP TABLE f_slow;\n",
    )


# ---------------------------------------------------------------- 1 + 5: SIGKILL at random


@contextmanager
def _trial(where: str) -> Iterator[None]:
    """Any failure inside a trial names the seed and the moment of the kill."""
    try:
        yield
    except AssertionError as exc:
        raise AssertionError(f"{where}: {exc}") from None
    except Exception as exc:
        raise AssertionError(f"{where}: {type(exc).__name__}: {exc}") from exc


def _aim(seed: int, label: str, trial: int, window: Window) -> tuple[float, str]:
    fraction = trial_random(seed, label, trial).random()
    delay = window.at(fraction)
    where = (
        f"FAULT_SEED={seed} {label} trial {trial}: SIGKILL {delay * 1000:.0f}ms after the "
        f"migration lock was taken (fraction {fraction:.4f} of {window})"
    )
    return delay, where


def _judge_kill(
    observed: Observed, history: History, states: list[dict[str, Any]], proc: Proc, landed: bool
) -> int:
    try:
        applied = applied_count(observed, history, states)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{proc.output()}") from None
    reported = proc.reported_ok()
    # A later OK line means the earlier migration committed; only the last may be in flight.
    assert set(reported[:-1]) <= set(history.names[:applied]), (
        f"reported {reported} but only {applied} migrations are applied"
    )
    if not landed:
        assert applied == len(history.names), f"a finished run left {applied} applied"
    return applied


def _summary(label: str, seed: int, window: Window, outcomes: list[int | None]) -> str:
    counts = collections.Counter(k for k in outcomes if k is not None)
    spread = ", ".join(f"{k}: {counts[k]}" for k in sorted(counts))
    return (
        f"{label}: FAULT_SEED={seed}, {len(outcomes)} trials, kill window {window}; "
        f"kills by migrations applied at the kill: {{{spread}}}; "
        f"run already over: {outcomes.count(None)}"
    )


@pytest.mark.parametrize("journal_mode", ["delete", "wal"])
def test_sigkill_during_up_leaves_each_sqlite_migration_whole_or_absent(
    tmp_path: Path, journal_mode: str
) -> None:
    seed = fault_seed()
    trials = trial_count("FAULT_TRIALS_SQLITE", 50)
    history = write_history(tmp_path / "migrations", kill_history_files("sqlite"))
    reference = _fresh_sqlite(tmp_path / "reference" / "ref.db", journal_mode)
    states = prefix_states(
        history.versions,
        lambda v: _ok(cli("migrate", "up-to", v, *_sqlite_args(reference, history))),
        lambda: observe_sqlite(reference) if reference.exists() else Observed(None, None, None),
    )

    def run_once() -> float:
        db = _fresh_sqlite(tmp_path / "calibration" / "c.db", journal_mode)
        proc = Proc("migrate", "up", *_sqlite_args(db, history))
        locked = proc.wait_until(sqlite_lock_taken(db))
        assert proc.finish(timeout=60) == 0, proc.output()
        assert locked is not None and proc.ended is not None, proc.output()
        _remove_tree(db.parent)
        return proc.ended - locked

    window = measure_window(run_once)
    label = f"sqlite-{journal_mode}"
    outcomes: list[int | None] = []
    for trial in range(trials):
        delay, where = _aim(seed, label, trial, window)
        db = _fresh_sqlite(tmp_path / f"trial{trial}" / "fault.db", journal_mode)
        with _trial(where):
            proc = Proc("migrate", "up", *_sqlite_args(db, history))
            locked = proc.wait_until(sqlite_lock_taken(db))
            assert locked is not None, f"the lock was never taken\n{proc.output()}"
            landed = proc.kill_at(locked + delay)
            applied = 0
            if db.exists():  # killed before creating it: nothing to judge
                assert sqlite_integrity(db) == "ok"
                applied = _judge_kill(observe_sqlite(db), history, states, proc, landed)
            outcomes.append(applied if landed else None)

            # The next run completes, without waiting for a lock the dead process held.
            again = cli("migrate", "up", *_sqlite_args(db, history, lock_timeout="5"))
            assert again.exit_code == 0, f"next migrate up failed: {again.output}"
            assert WAITING not in again.stderr, "a migration lock was left behind"
            assert applied_count(observe_sqlite(db), history, states) == len(history.names)
            assert sqlite_integrity(db) == "ok"
            assert sqlite_journal_mode(db) == journal_mode
        _remove_tree(db.parent)
    print(_summary(label, seed, window, outcomes))


def test_sigkill_during_up_leaves_each_postgres_migration_whole_or_absent(
    tmp_path: Path, postgres_url: str, pg_admin: Any
) -> None:
    seed = fault_seed()
    trials = trial_count("FAULT_TRIALS_PG", 20)
    history = write_history(tmp_path / "migrations", kill_history_files("postgresql"))
    database = _database(postgres_url)
    args = _pg_args(postgres_url, history)
    states = prefix_states(
        history.versions,
        lambda v: _ok(cli("migrate", "up-to", v, *args)),
        lambda: observe_postgres(postgres_url),
    )
    lock_taken = postgres_lock_taken(pg_admin, database)

    def run_once() -> float:
        reset_postgres_schema(pg_admin, database)
        proc = Proc("migrate", "up", *args)
        locked = proc.wait_until(lock_taken)
        assert proc.finish(timeout=60) == 0, proc.output()
        assert locked is not None and proc.ended is not None, proc.output()
        return proc.ended - locked

    window = measure_window(run_once)
    outcomes: list[int | None] = []
    for trial in range(trials):
        delay, where = _aim(seed, "postgresql", trial, window)
        with _trial(where):
            reset_postgres_schema(pg_admin, database)
            proc = Proc("migrate", "up", *args)
            locked = proc.wait_until(lock_taken)
            assert locked is not None, f"the lock was never taken\n{proc.output()}"
            landed = proc.kill_at(locked + delay)
            # The dead client's server session ends when its statement does; judge after.
            wait_for_postgres_backends_gone(pg_admin, database)
            applied = _judge_kill(observe_postgres(postgres_url), history, states, proc, landed)
            outcomes.append(applied if landed else None)

            again = cli("migrate", "up", *args)
            assert again.exit_code == 0, f"next migrate up failed: {again.output}"
            assert WAITING not in again.stderr, "a migration lock was left behind"
            final = observe_postgres(postgres_url)
            assert applied_count(final, history, states) == len(history.names)
    print(_summary("postgresql", seed, window, outcomes))


def test_ok_line_is_printed_only_after_the_migration_commits(tmp_path: Path) -> None:
    history = _slow_history(tmp_path / "migrations", SLOW_SQLITE_SELECT)
    db = tmp_path / "db" / "ok.db"
    proc = Proc("migrate", "up", *_sqlite_args(db, history, lock_timeout="60"))
    reader = None
    try:
        _wait_for(lambda: db.exists() and _goose_versions(db)[1:] == [1], proc, "00001 commit")
        # 00002 is in its slow statement. A reader's SHARED lock (rollback-journal
        # mode) now holds its COMMIT back: while it waits, it must not claim OK.
        reader = sqlite3.connect(db, isolation_level=None)
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM goose_db_version").fetchone()
        early = proc.wait_for_line("stdout", "OK   00002_slow.sql", timeout=3)
        assert early is None, f"OK printed before the commit\n{proc.output()}"
        assert 2 not in _goose_versions(db)
        reader.execute("ROLLBACK")
        reader.close()
        reader = None
        assert proc.finish(timeout=60) == 0, proc.output()
    finally:
        if proc.running():
            proc.kill()
        if reader is not None:
            reader.execute("ROLLBACK")
            reader.close()
    assert "OK   00002_slow.sql" in proc.stdout
    assert 2 in _goose_versions(db)


# ---------------------------------------------------------------- 2: the lock holder dies


def _holder_dies_waiter_proceeds(args: tuple[str, ...]) -> Proc:
    """The holder is killed inside its slow migration while the waiter waits; the
    waiter must then take the lock and finish the job. Ordering and outcome only:
    a waiter that was not released by the holder's death gives up after its lock
    timeout and exits 1, however fast or slow the machine (the time the hand-over
    takes is measured by bench/lock_handover.py, not asserted here)."""
    holder = Proc("migrate", "up", *args)
    try:
        # After the first OK line the holder is inside the slow migration, lock held.
        assert holder.wait_for_line("stdout", "OK   00001_first.sql", timeout=300), holder.output()
        waiter = Proc("migrate", "up", *args)
        assert waiter.wait_for_line("stderr", WAITING, timeout=300), waiter.output()
        assert holder.kill(), f"holder finished before it could be killed\n{holder.output()}"
    finally:
        if holder.running():
            holder.kill()
    code = waiter.finish(timeout=600)
    assert code == 0, waiter.output()
    assert waiter.ended is not None and holder.killed_at is not None
    assert waiter.ended > holder.killed_at  # it finished only once the holder was gone
    return waiter


def test_sqlite_waiter_proceeds_when_the_lock_holder_is_killed(tmp_path: Path) -> None:
    history = _slow_history(tmp_path / "migrations", SLOW_SQLITE_SELECT)
    db = tmp_path / "db" / "lock.db"
    waiter = _holder_dies_waiter_proceeds(_sqlite_args(db, history, "300"))
    assert "OK   00002_slow.sql" in waiter.stdout  # it ran the holder's migration itself
    observed = observe_sqlite(db)
    assert observed.goose_rows == ALL_APPLIED
    assert observed.alembic_heads == ["00003"]


def test_postgres_waiter_proceeds_when_the_lock_holder_is_killed(
    tmp_path: Path, postgres_url: str, pg_admin: Any
) -> None:
    history = _slow_history(tmp_path / "migrations", "SELECT pg_sleep(3);")
    waiter = _holder_dies_waiter_proceeds(_pg_args(postgres_url, history, "300"))
    assert "OK   00002_slow.sql" in waiter.stdout
    observed = observe_postgres(postgres_url)
    assert observed.goose_rows == ALL_APPLIED
    assert observed.alembic_heads == ["00003"]
    assert pg_admin.execute("SELECT count(*) FROM f_slow").fetchone()[0] == 1


# ---------------------------------------------------------------- 3: connection cut (PG)


def _cut_history(directory: Path) -> History:
    return _three(
        directory,
        "00002_cut_here.sql",
        "-- +goose Up\nCREATE TABLE f_cut (id INTEGER PRIMARY KEY);\n"
        f"INSERT INTO f_cut (id) VALUES (1), (2);\n{PG_SLEEP}\n"
        "CREATE INDEX idx_f_cut ON f_cut(id);\n"
        "\n-- +goose Down\nDROP TABLE f_cut;\n",
    )


def _cut_mid_migration(url: str, admin: Any, history: History) -> Proc:
    """Run `migrate up`; pg_terminate_backend the session running 00002's pg_sleep."""
    database = _database(url)
    victims: list[int] = []

    def sleeping() -> bool:
        victims[:] = [
            pid
            for pid, state, query in postgres_backends(admin, database)
            if state == "active" and "pg_sleep" in query
        ]
        return bool(victims)

    with _pg_sleeping(admin, database, 60):
        proc = Proc("migrate", "up", *_pg_args(url, history, "60"))
        try:
            _wait_for(sleeping, proc, "session in pg_sleep")
            require(len(victims) == 1, f"several sessions in pg_sleep: {victims}")
            admin.execute("SELECT pg_terminate_backend(%s)", (victims[0],))
            proc.finish(timeout=60)
        finally:
            if proc.running():
                proc.kill()
    return proc


def test_postgres_connection_cut_mid_migration_fails_cleanly_and_retry_succeeds(
    tmp_path: Path, postgres_url: str, pg_admin: Any
) -> None:
    history = _cut_history(tmp_path / "migrations")
    proc = _cut_mid_migration(postgres_url, pg_admin, history)

    assert proc.popen.returncode == 1, proc.output()
    _one_error_line(proc.stderr)
    observed = observe_postgres(postgres_url)
    assert observed.goose_rows == [(0, True), (1, True)]
    assert observed.alembic_heads == ["00001"]
    assert not [key for key in observed.fingerprint if "f_cut" in key], observed.fingerprint

    retry = cli("migrate", "up", *_pg_args(postgres_url, history))
    assert retry.exit_code == 0, retry.output
    observed = observe_postgres(postgres_url)
    assert observed.goose_rows == ALL_APPLIED
    assert observed.alembic_heads == ["00003"]
    assert pg_admin.execute("SELECT count(*) FROM f_cut").fetchone()[0] == 2


def test_postgres_connection_cut_error_names_the_migration(
    tmp_path: Path, postgres_url: str, pg_admin: Any
) -> None:
    proc = _cut_mid_migration(postgres_url, pg_admin, _cut_history(tmp_path / "migrations"))
    require(proc.popen.returncode == 1, proc.output())
    message = _one_error_line(proc.stderr)
    assert "00002_cut_here.sql" in message, message


# ---------------------------------------------------------------- 4: NO TRANSACTION

BROKEN = "INSERT INTO f_nowhere VALUES (1);"
FIXED = "INSERT INTO f_nt_first VALUES (1);"


def _no_tx_history(directory: Path, middle: str, *, idempotent: bool = False) -> History:
    maybe = "IF NOT EXISTS " if idempotent else ""
    return _three(
        directory,
        "00002_outside_tx.sql",
        "-- +goose NO TRANSACTION\n-- +goose Up\n"
        f"CREATE TABLE {maybe}f_nt_first (id INTEGER PRIMARY KEY);\n"
        f"{middle}\n"
        f"CREATE TABLE {maybe}f_nt_second (id INTEGER PRIMARY KEY);\n"
        "\n-- +goose Down\nDROP TABLE f_nt_second;\nDROP TABLE f_nt_first;\n",
    )


def _status_line(args: tuple[str, ...], name: str) -> str:
    result = cli("migrate", "status", *args)
    assert result.exit_code == 0, result.output
    (line,) = [line for line in result.stdout.splitlines() if line.endswith(name)]
    return line


def _assert_half_run(observed: Observed, tables: set[str]) -> None:
    assert "f_nt_first" in tables and "f_nt_second" not in tables, tables
    assert observed.goose_rows == [(0, True), (1, True)], observed.goose_rows
    assert observed.alembic_heads == ["00001"], observed.alembic_heads


@pytest.mark.parametrize("recovery", ["undo", "finish"])
def test_failed_no_transaction_migration_is_partial_and_unrecorded(
    tmp_path: Path, recovery: str
) -> None:
    """Today's behaviour, and the two recoveries docs/recovery.md describes."""
    history = _no_tx_history(tmp_path / "migrations", BROKEN)
    db = tmp_path / "db" / "nt.db"
    args = _sqlite_args(db, history)

    result = cli("migrate", "up", *args)
    assert result.exit_code == 1
    message = _one_error_line(result.stderr)
    assert "00002_outside_tx.sql" in message and "statement 2" in message, message
    # Statement 1 stayed committed, statement 3 never ran, goose recorded nothing.
    _assert_half_run(observe_sqlite(db), _sqlite_tables(db))
    assert "pending" in _status_line(args, "00002_outside_tx.sql").lower()

    # A plain retry runs statement 1 again and stops there, still naming the file.
    retry = cli("migrate", "up", *args)
    assert retry.exit_code == 1
    message = _one_error_line(retry.stderr)
    assert "00002_outside_tx.sql" in message and "already exists" in message, message

    # Recovery: fix the file, then either undo what ran or finish it by hand.
    edited = history.directory / "00002_outside_tx.sql"
    edited.write_text(edited.read_text().replace(BROKEN, FIXED))
    connection = sqlite3.connect(db, isolation_level=None)
    try:
        if recovery == "undo":
            connection.execute("DROP TABLE f_nt_first")
        else:
            # Run the statements that did not run, then record the version as goose does.
            connection.execute(FIXED)
            connection.execute("CREATE TABLE f_nt_second (id INTEGER PRIMARY KEY)")
            connection.execute(
                "INSERT INTO goose_db_version (version_id, is_applied) VALUES (2, 1)"
            )
    finally:
        connection.close()
    done = cli("migrate", "up", *args)
    assert done.exit_code == 0, done.output
    observed = observe_sqlite(db)
    assert observed.goose_rows == ALL_APPLIED
    assert observed.alembic_heads == ["00003"]
    assert observed.fingerprint["rows f_nt_first"] == [("1",)]
    # Our own journal, if the core keeps one, adopts the hand-recorded version too.
    assert observed.journal in (None, ["00001", "00002", "00003"]), observed.journal
    assert {"f_nt_second", "f_last"} <= _sqlite_tables(db)


def test_status_flags_a_no_transaction_migration_that_stopped_part_way(tmp_path: Path) -> None:
    history = _no_tx_history(tmp_path / "migrations", BROKEN)
    args = _sqlite_args(tmp_path / "db" / "nt.db", history)
    require(cli("migrate", "up", *args).exit_code == 1, "the migration did not fail")
    line = _status_line(args, "00002_outside_tx.sql")
    # BROKEN's first statement committed on its own before the second failed.
    assert line == "    Pending (partial 1/3)    -- 00002_outside_tx.sql", line
    data = json.loads(cli("migrate", "status", "--json", *args).stdout)
    (entry,) = [m for m in data["migrations"] if m["name"] == "00002_outside_tx.sql"]
    assert entry["state"] == "partial"
    assert entry["partial"] == {"direction": "up", "statements_done": 1, "statements_total": 3}
    again = cli("migrate", "up", *args)
    assert "warning: 00002_outside_tx.sql stopped after 1 of 3 statements" in again.stderr


def test_sigkill_inside_no_transaction_migration_sqlite(tmp_path: Path) -> None:
    history = _no_tx_history(tmp_path / "migrations", SLOW_SQLITE_SELECT, idempotent=True)
    db = tmp_path / "db" / "nt.db"
    proc = Proc("migrate", "up", *_sqlite_args(db, history, "60"))
    try:
        # Statement 1 commits on its own; once it shows, the slow statement 2 is running.
        _wait_for(lambda: db.exists() and "f_nt_first" in _sqlite_tables(db), proc, "f_nt_first")
        assert proc.kill(), f"migrator finished before the kill\n{proc.output()}"
    finally:
        if proc.running():
            proc.kill()
    _assert_half_run(observe_sqlite(db), _sqlite_tables(db))
    assert sqlite_integrity(db) == "ok"
    # Written idempotently (IF NOT EXISTS), the migration simply runs again.
    again = cli("migrate", "up", *_sqlite_args(db, history))
    assert again.exit_code == 0, again.output
    assert observe_sqlite(db).goose_rows == ALL_APPLIED


def test_sigkill_inside_no_transaction_migration_postgres(
    tmp_path: Path, postgres_url: str, pg_admin: Any
) -> None:
    database = _database(postgres_url)
    history = _no_tx_history(tmp_path / "migrations", PG_SLEEP, idempotent=True)
    with _pg_sleeping(pg_admin, database, 2):
        proc = Proc("migrate", "up", *_pg_args(postgres_url, history, "60"))
        try:
            _wait_for(
                lambda: any("pg_sleep" in q for _, _, q in postgres_backends(pg_admin, database)),
                proc,
                "session in pg_sleep",
            )
            assert proc.kill(), f"migrator finished before the kill\n{proc.output()}"
        finally:
            if proc.running():
                proc.kill()
        wait_for_postgres_backends_gone(pg_admin, database)
    _assert_half_run(observe_postgres(postgres_url), _postgres_tables(pg_admin))
    again = cli("migrate", "up", *_pg_args(postgres_url, history))
    assert again.exit_code == 0, again.output
    assert observe_postgres(postgres_url).goose_rows == ALL_APPLIED


def test_postgres_next_migrator_waits_for_a_killed_no_transaction_statement(
    tmp_path: Path, postgres_url: str, pg_admin: Any
) -> None:
    """A killed client's server session finishes its statement, which in a NO
    TRANSACTION migration then commits. The waiting migrator must not start the
    same file until that session is gone (the lock lives on it), or its own
    `CREATE TABLE IF NOT EXISTS` collides with the orphan's."""
    database = _database(postgres_url)
    orphan = (
        "CREATE TABLE IF NOT EXISTS f_orphan AS SELECT 1 AS x FROM "
        f"pg_sleep(current_setting('{PG_SLEEP_SETTING}', true)::float8);"
    )
    history = _no_tx_history(tmp_path / "migrations", orphan, idempotent=True)
    args = _pg_args(postgres_url, history, "60")
    with _pg_sleeping(pg_admin, database, 2):
        holder = Proc("migrate", "up", *args)
        try:
            _wait_for(
                lambda: any("f_orphan" in q for _, _, q in postgres_backends(pg_admin, database)),
                holder,
                "session creating f_orphan",
            )
            waiter = Proc("migrate", "up", *args)
            assert waiter.wait_for_line("stderr", WAITING, timeout=60), waiter.output()
            assert holder.kill(), "the holder finished before the kill"
            code = waiter.finish(timeout=60)
        finally:
            if holder.running():
                holder.kill()
    # Every statement of the file is idempotent: run after the killed one ended, it passes.
    assert code == 0, waiter.output()
    assert observe_postgres(postgres_url).goose_rows == ALL_APPLIED


# ---------------------------------------------------------------- 5: file locked by a writer


def _locked_by_writer(
    tmp_path: Path, journal_mode: str, lock_timeout: str
) -> tuple[Path, History, str, Proc]:
    """`migrate up` against a file another process holds a write transaction on;
    returns the database's dump from before, to compare with."""
    history = write_history(tmp_path / "migrations", kill_history_files("sqlite"))
    db = _fresh_sqlite(tmp_path / "db" / "locked.db", journal_mode)
    _ok(cli("migrate", "up-to", "00001", *_sqlite_args(db, history)))
    before = sqlite_dump(db)
    holder = hold_sqlite_write_lock(db, "INSERT INTO f_accounts (id, name) VALUES (99, 'held')")
    try:
        proc = Proc("migrate", "up", *_sqlite_args(db, history, lock_timeout))
        proc.finish(timeout=60)
    finally:
        release(holder)
    return db, history, before, proc


@pytest.mark.parametrize("journal_mode", ["delete", "wal"])
def test_sqlite_file_locked_by_another_writer_times_out_cleanly(
    tmp_path: Path, journal_mode: str
) -> None:
    db, history, before, proc = _locked_by_writer(tmp_path, journal_mode, lock_timeout="2")
    assert proc.ended is not None
    elapsed = proc.ended - proc.started

    assert proc.popen.returncode == 1, proc.output()
    message = _one_error_line(proc.stderr)
    assert "locked" in message, message
    # It waited for the writer (at least the 2 s lock timeout) and then gave up on
    # that timeout, not the 300 s default: the message names it. No upper bound
    # on the time: that depends on the machine.
    assert elapsed >= 2.0, f"{elapsed:.1f}s\n{proc.output()}"
    assert "after 2s" in message, message
    assert sqlite_integrity(db) == "ok"
    assert sqlite_dump(db) == before
    assert sqlite_journal_mode(db) == journal_mode

    # Once the writer is gone, the same command goes through.
    done = cli("migrate", "up", *_sqlite_args(db, history))
    assert done.exit_code == 0, done.output


def test_sqlite_locked_file_error_names_the_database(tmp_path: Path) -> None:
    db, _, _, proc = _locked_by_writer(tmp_path, "delete", lock_timeout="1")
    require(proc.popen.returncode == 1, proc.output())
    message = _one_error_line(proc.stderr)
    assert str(db) in message, message
