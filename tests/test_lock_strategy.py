"""The migration lock's strategies on a direct connection: the session advisory
lock (auto's choice there), the lease row (`--lock-strategy table`) and the
advisory lock held on a separate direct connection (`--lock-url`).

Real processes on real servers; every wait is for an event (a line, a lock
seen from outside), never a duration. Pooled and clustered servers are in
tests/test_pgbouncer.py and tests/test_galera.py.
"""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli, write_migration
from crowd import mysql_rows, pg_rows
from fault_helpers import Proc

LEASE_TABLE = "llm_proxy_migration_lock"
HELD = "Migration lock: held by"


# ---------------------------------------------------------------- databases


class Server:
    """One test database: its URL and a way to query it directly."""

    def __init__(self, dialect: str, url: str) -> None:
        self.dialect = dialect
        self.url = url

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        read = pg_rows if self.dialect == "postgresql" else mysql_rows
        return read(self.url, sql)

    def has_table(self, name: str) -> bool:
        if self.dialect == "postgresql":
            sql = f"SELECT to_regclass('{name}') IS NOT NULL"
            return bool(self.rows(sql)[0][0])
        return bool(self.rows(f"SHOW TABLES LIKE '{name}'"))

    def sleep(self, seconds: float) -> str:
        if self.dialect == "postgresql":
            return f"SELECT pg_sleep({seconds});"
        return f"DO SLEEP({seconds});"

    def runs(self) -> dict[int, int]:
        """How many times each migration's body ran (the counter table)."""
        return {int(v): int(n) for v, n in self.rows(_COUNT_RUNS)}


_COUNT_RUNS = "SELECT version, COUNT(*) FROM migration_runs GROUP BY version ORDER BY version"


@pytest.fixture(params=["postgresql", "mysql"])
def server(request: pytest.FixtureRequest) -> Server:
    fixture = "postgres_url" if request.param == "postgresql" else "mysql_url"
    return Server(request.param, request.getfixturevalue(fixture))


def _history(directory: Path, server: Server, slow: float, *, no_transaction: bool = False) -> Path:
    """1: the counter table; 2: counts itself, then runs `slow` seconds; 3: quick."""
    directory.mkdir()
    write_migration(
        directory,
        "00001_runs.sql",
        "CREATE TABLE migration_runs (version INT);\nINSERT INTO migration_runs VALUES (1);",
        "DROP TABLE migration_runs;",
    )
    extra = "-- +goose NO TRANSACTION\n" if no_transaction else ""
    body = (
        f"{server.sleep(slow)}\nINSERT INTO migration_runs VALUES (2);"
        if no_transaction
        else f"INSERT INTO migration_runs VALUES (2);\n{server.sleep(slow)}"
    )
    write_migration(directory, "00002_slow.sql", body, "SELECT 1;", extra=extra)
    write_migration(directory, "00003_after.sql", "INSERT INTO migration_runs VALUES (3);", "")
    return directory


def _migrate(server: Server, migrations: Path, *extra: str) -> Proc:
    return Proc(
        "migrate", "up", "--migrations-dir", str(migrations), "--database-url", server.url, *extra
    )


def _holder_then_waiter(
    server: Server, migrations: Path, flags: tuple[str, ...]
) -> tuple[Proc, Proc]:
    """A run that holds the lock (its first migration done, the slow one running),
    then a second run started while it does."""
    first = _migrate(server, migrations, *flags)
    assert first.wait_for_line("stdout", "00001_runs.sql", timeout=120), first.output()
    return first, _migrate(server, migrations, *flags)


def _status(server: Server, migrations: Path) -> dict[str, Any]:
    result = run_cli(
        "migrate", "status", "--json", "--migrations-dir", str(migrations),
        "--database-url", server.url,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _wait_for(condition: Callable[[], bool], proc: Proc) -> None:
    assert proc.wait_until(condition, timeout=120) is not None, proc.output()


def _one_error_line(proc: Proc) -> str:
    errors = [line for _, line in proc.stderr_lines if line.startswith("Error:")]
    assert len(errors) == 1, proc.output()
    assert "Traceback" not in proc.stderr, proc.output()
    return errors[0]


# ---------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--db", "x.db", "--lock-strategy", "table"], "SQLite is locked by a file"),
        (["--db", "x.db", "--lock-url", "postgres://h/db"], "SQLite needs no separate lock"),
        (["--database-url", "postgres://h/d", "--lock-lease", "0"], "--lock-lease must be longer"),
        (["--database-url", "postgres://h/d", "--lock-lease", "soon"], "--lock-lease"),
        (
            ["--database-url", "postgres://h/d", "--lock-url", "mysql://h/d"],
            "--lock-url is a MySQL URL but the database is PostgreSQL",
        ),
        (
            ["--database-url", "postgres://h/d", "--lock-url", "postgres://h/d"]
            + ["--lock-strategy", "table"],
            "needs none: drop one of them",
        ),
    ],
)
def test_lock_settings_are_checked_before_anything_runs(
    tmp_path: Path, args: list[str], expected: str
) -> None:
    result = run_cli("migrate", "up", *args, cwd=tmp_path)
    assert result.returncode != 0
    assert expected in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "x.db").exists()


def test_lock_strategy_from_the_environment_is_checked(tmp_path: Path) -> None:
    result = run_cli(
        "migrate", "up", "--database-url", "postgres://nowhere.invalid/d",
        env={"LLM_PROXY_LOCK_STRATEGY": "sometimes"},
    )  # fmt: skip
    assert result.returncode == 1
    assert "LLM_PROXY_LOCK_STRATEGY='sometimes': choose one of auto, advisory, table" in (
        result.stderr
    )


# ---------------------------------------------------------------- which lock, who holds it


def test_auto_takes_the_session_lock_on_a_direct_connection(tmp_path: Path, server: Server) -> None:
    migrations = _history(tmp_path / "m", server, 3)
    holder = _migrate(server, migrations)
    try:
        _wait_for(lambda: _status(server, migrations)["lock"] is not None, holder)
        lock = _status(server, migrations)["lock"]
        assert lock["strategy"] == "advisory"
        assert not server.has_table(LEASE_TABLE)
    finally:
        assert holder.finish(timeout=120) == 0, holder.output()
    assert _status(server, migrations)["lock"] is None
    assert server.runs() == {1: 1, 2: 1, 3: 1}


def test_table_strategy_names_the_holder_and_removes_its_row(
    tmp_path: Path, server: Server
) -> None:
    migrations = _history(tmp_path / "m", server, 3)
    holder = _migrate(server, migrations, "--lock-strategy", "table")
    try:
        _wait_for(lambda: _status(server, migrations)["lock"] is not None, holder)
        lock = _status(server, migrations)["lock"]
        assert lock["strategy"] == "table"
        assert lock["holder"].startswith(f"{socket.gethostname()}:{holder.popen.pid}:")
        assert lock["since"] < lock["lease_expires"]
        assert not lock["lease_ran_out"]
        text = run_cli(
            "migrate", "status", "--migrations-dir", str(migrations), "--database-url", server.url
        ).stdout
        assert f"{HELD} {lock['holder']} since " in text
        assert "[table lock]" in text
    finally:
        assert holder.finish(timeout=120) == 0, holder.output()
    assert _status(server, migrations)["lock"] is None
    assert server.rows(f"SELECT COUNT(*) FROM {LEASE_TABLE}")[0][0] == 0
    assert server.runs() == {1: 1, 2: 1, 3: 1}


def test_a_crowd_on_the_lease_runs_each_migration_once(tmp_path: Path, server: Server) -> None:
    migrations = _history(tmp_path / "m", server, 0.3)
    crowd = [_migrate(server, migrations, "--lock-strategy", "table") for _ in range(8)]
    codes = [proc.finish(timeout=180) for proc in crowd]
    assert codes == [0] * 8, "\n".join(p.output() for p in crowd)
    assert server.runs() == {1: 1, 2: 1, 3: 1}
    applied = sorted(name for proc in crowd for name in proc.reported_ok())
    assert applied == ["00001_runs.sql", "00002_slow.sql", "00003_after.sql"]
    assert server.rows("SELECT COUNT(*) FROM goose_db_version WHERE version_id > 0")[0][0] == 3


# ---------------------------------------------------------------- a holder that dies


def test_a_killed_lease_holder_is_taken_over_and_nothing_is_half_applied(
    tmp_path: Path, server: Server
) -> None:
    migrations = _history(tmp_path / "m", server, 4)
    lease = ("--lock-strategy", "table", "--lock-lease", "2s")
    first = _migrate(server, migrations, *lease)
    assert first.wait_for_line("stdout", "00001_runs.sql", timeout=120), first.output()
    # Inside 00002 (its row counted, not committed): killed.
    assert first.kill(), first.output()
    second = _migrate(server, migrations, *lease)
    assert second.finish(timeout=180) == 0, second.output()
    assert second.reported_ok() == ["00002_slow.sql", "00003_after.sql"]
    assert server.runs() == {1: 1, 2: 1, 3: 1}  # the killed run's row was rolled back
    assert _status(server, migrations)["lock"] is None


def test_a_lease_that_ran_out_stops_its_old_holder(tmp_path: Path, postgres_url: str) -> None:
    """A NO TRANSACTION statement outlasting the lease: the next process takes over,
    and the old holder stops at its next renewal with one line, before its next
    statement."""
    server = Server("postgresql", postgres_url)
    migrations = _history(tmp_path / "m", server, 4, no_transaction=True)
    lease = ("--lock-strategy", "table", "--lock-lease", "1s")
    first, second = _holder_then_waiter(server, migrations, lease)
    assert second.finish(timeout=180) == 0, second.output()
    assert first.finish(timeout=180) == 1, first.output()
    assert "lost the migration lock" in _one_error_line(first)
    assert "--lock-lease" in _one_error_line(first)
    assert second.reported_ok() == ["00002_slow.sql", "00003_after.sql"]
    assert server.runs() == {1: 1, 2: 1, 3: 1}


def test_a_long_migration_keeps_its_lease_on_postgres(tmp_path: Path, postgres_url: str) -> None:
    """In a transaction the holder's renewal keeps the lease row locked until the
    migration commits: a lease shorter than the migration is not taken over."""
    server = Server("postgresql", postgres_url)
    migrations = _history(tmp_path / "m", server, 4)
    lease = ("--lock-strategy", "table", "--lock-lease", "1s")
    first, second = _holder_then_waiter(server, migrations, lease)
    assert first.finish(timeout=180) == 0, first.output()
    assert second.finish(timeout=180) == 0, second.output()
    assert first.reported_ok() == ["00001_runs.sql", "00002_slow.sql", "00003_after.sql"]
    assert second.reported_ok() == []
    assert server.runs() == {1: 1, 2: 1, 3: 1}


# ---------------------------------------------------------------- --lock-url


def test_lock_url_holds_the_advisory_lock_on_its_own_connection(
    tmp_path: Path, postgres_url: str
) -> None:
    server = Server("postgresql", postgres_url)
    migrations = _history(tmp_path / "m", server, 3)
    holder = _migrate(server, migrations, "--lock-url", postgres_url)

    def sleeping_backend() -> list[tuple[Any, ...]]:
        return server.rows(
            "SELECT pid FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%' "
            "AND pid <> pg_backend_pid()"
        )

    try:
        _wait_for(lambda: bool(sleeping_backend()), holder)
        locker = server.rows(
            "SELECT pid, application_name FROM pg_locks JOIN pg_stat_activity USING (pid) "
            "WHERE locktype = 'advisory' AND granted"
        )
        assert len(locker) == 1
        assert locker[0][1].startswith("llm-proxy since ")
        assert locker[0][0] not in {pid for (pid,) in sleeping_backend()}
    finally:
        assert holder.finish(timeout=120) == 0, holder.output()
    assert server.runs() == {1: 1, 2: 1, 3: 1}
    assert not server.has_table(LEASE_TABLE)


def test_lock_url_on_another_database_is_refused(
    tmp_path: Path, postgres_url: str, request: pytest.FixtureRequest
) -> None:
    server = Server("postgresql", postgres_url)
    migrations = _history(tmp_path / "m", server, 0)
    other = postgres_url.rsplit("/", 1)[0] + "/postgres"
    proc = _migrate(server, migrations, "--lock-url", other)
    assert proc.finish(timeout=120) == 1, proc.output()
    line = _one_error_line(proc)
    assert "--lock-url reaches database 'postgres'" in line
    assert not server.has_table("goose_db_version")


# ---------------------------------------------------------------- SQLite


def test_status_names_a_process_holding_the_sqlite_lock_file(tmp_path: Path) -> None:
    import subprocess

    db = tmp_path / "app.db"
    run = run_cli("migrate", "up", "--db", str(db))
    assert run.returncode == 0, run.stderr
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import filelock, sys, time; lock = filelock.FileLock(sys.argv[1]); "
            "lock.acquire(); print('held', flush=True); time.sleep(600)",
            f"{db}.migrate-lock",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        shown = run_cli("migrate", "status", "--db", str(db))
        assert f"{HELD} a process on this machine" in shown.stdout
        assert "[file lock]" in shown.stdout
    finally:
        holder.kill()
        holder.wait()
    assert HELD not in run_cli("migrate", "status", "--db", str(db)).stdout
