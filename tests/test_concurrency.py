"""Many real `llm-proxy migrate up` processes against one fresh database.

For each dialect: 16 processes started together must all succeed, run every
migration exactly once and leave one goose_db_version row per version. The
migration lock is also held from outside (as another instance would hold it):
waiters say so on stderr, proceed when the holder dies, and give up with one
clear line after --lock-timeout.
"""

from __future__ import annotations

import collections
import functools
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from conftest import run_cli, write_migration
from crowd import wait_until

PROCESSES = 16
WAITING = "waiting for migration lock held by another process..."
PG_LOCK_KEY = 3141592653
MYSQL_LOCK_PREFIX = "llm-proxy-migrations:"  # + database name: GET_LOCK names are server-wide


# ---------------------------------------------------------------- targets


@dataclass
class Target:
    dialect: str
    args: list[str]  # how the CLI names the database
    rows: Callable[[str], list[tuple]]  # run a query against it
    lock_target: str  # what the lock holder needs: lock file, URL
    describe: str  # how the timeout error names the database
    exists: Callable[[], bool]  # anything created at all?


def _sqlite_target(tmp_path: Path) -> Target:
    import sqlite3

    path = tmp_path / "db" / "llm-proxy.db"

    def rows(sql: str) -> list[tuple]:
        connection = sqlite3.connect(path)
        try:
            return connection.execute(sql).fetchall()
        finally:
            connection.close()

    return Target(
        dialect="sqlite",
        args=["--db", str(path)],
        rows=rows,
        lock_target=f"{path}.migrate-lock",
        describe=str(path),
        exists=path.exists,
    )


def _postgres_target(url: str) -> Target:
    import psycopg

    def rows(sql: str) -> list[tuple]:
        with psycopg.connect(url, autocommit=True) as connection:
            cursor = connection.execute(sql)
            return cursor.fetchall() if cursor.description else []

    parts = urlsplit(url)
    return Target(
        dialect="postgresql",
        args=["--database-url", url],
        rows=rows,
        lock_target=url,
        describe=f"{parts.hostname}:{parts.port or 5432}{parts.path}",
        exists=lambda: bool(rows("SELECT 1 FROM pg_tables WHERE schemaname = 'public'")),
    )


def _mysql_target(url: str) -> Target:
    import pymysql

    parts = urlsplit(url)

    def rows(sql: str) -> list[tuple]:
        connection = pymysql.connect(
            host=parts.hostname,
            port=parts.port or 3306,
            user=parts.username or "root",
            password=parts.password or "",
            database=parts.path.lstrip("/"),
            autocommit=True,
        )
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql)
                return list(cursor.fetchall()) if cursor.description else []
        finally:
            connection.close()

    return Target(
        dialect="mysql",
        args=["--database-url", url],
        rows=rows,
        lock_target=url,
        describe=f"{parts.hostname}:{parts.port or 3306}{parts.path}",
        exists=lambda: bool(rows("SHOW TABLES")),
    )


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    if request.param == "sqlite":
        return _sqlite_target(tmp_path)
    if request.param == "postgresql":
        return _postgres_target(request.getfixturevalue("postgres_url"))
    return _mysql_target(request.getfixturevalue("mysql_url"))


# ---------------------------------------------------------------- migrations


# A statement that takes a while inside the first migration, so that the other
# processes arrive while it holds the lock instead of after it is done.
_SLOW = {
    "sqlite": (
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000) "
        "SELECT count(*) FROM c;"
    ),
    "postgresql": "SELECT pg_sleep(0.5);",
    "mysql": "DO SLEEP(0.5);",
}
_INDEX = {
    # PostgreSQL builds it without blocking writes: only possible outside a transaction.
    "postgresql": "CREATE INDEX CONCURRENTLY idx_items_name ON items (name);",
    "sqlite": "CREATE INDEX idx_items_name ON items (name);",
    "mysql": "CREATE INDEX idx_items_name ON items (name);",
}
_DROP_INDEX = {
    "postgresql": "DROP INDEX CONCURRENTLY idx_items_name;",
    "sqlite": "DROP INDEX idx_items_name;",
    "mysql": "DROP INDEX idx_items_name ON items;",
}
MIGRATIONS = ["00001_runs.sql", "00002_items.sql", "00003_items_index.sql"]


def counter_migrations(directory: Path, dialect: str) -> Path:
    """Three migrations that each add a row to `runs`: a migration run twice shows
    up as a second row. The third is NO TRANSACTION."""
    directory.mkdir(exist_ok=True)
    write_migration(
        directory,
        MIGRATIONS[0],
        "CREATE TABLE runs (version INTEGER NOT NULL);\n"
        f"INSERT INTO runs (version) VALUES (1);\n{_SLOW[dialect]}",
        "DROP TABLE runs;",
    )
    write_migration(
        directory,
        MIGRATIONS[1],
        "INSERT INTO runs (version) VALUES (2);\n"
        "CREATE TABLE items (id INTEGER NOT NULL, name VARCHAR(100));",
        "DROP TABLE items;\nDELETE FROM runs WHERE version = 2;",
    )
    write_migration(
        directory,
        MIGRATIONS[2],
        f"INSERT INTO runs (version) VALUES (3);\n{_INDEX[dialect]}",
        f"{_DROP_INDEX[dialect]}\nDELETE FROM runs WHERE version = 3;",
        extra="-- +goose NO TRANSACTION\n",
    )
    return directory


# ---------------------------------------------------------------- processes


# Each launcher announces itself, waits for the starting signal, then becomes
# `python -m llm_proxy ...`: the interpreters are already up, so all start at once.
_LAUNCHER = (
    "import os, sys, time\n"
    "ready, go = sys.argv[1], sys.argv[2]\n"
    "open(ready, 'w').close()\n"
    "while not os.path.exists(go):\n"
    "    time.sleep(0.002)\n"
    "os.execv(sys.executable, [sys.executable, '-m', 'llm_proxy', *sys.argv[3:]])\n"
)


@dataclass
class Finished:
    returncode: int
    stdout: str
    stderr: str


class Crowd:
    """N processes started together, their output in files."""

    def __init__(self, workdir: Path, count: int, args: list[str]) -> None:
        self.workdir = workdir
        self.go = workdir / "go"
        self.processes: list[subprocess.Popen[bytes]] = []
        workdir.mkdir()
        for n in range(count):
            out = open(workdir / f"{n}.out", "wb")  # noqa: SIM115 - closed once Popen has it
            err = open(workdir / f"{n}.err", "wb")  # noqa: SIM115
            launcher = [sys.executable, "-c", _LAUNCHER, str(workdir / f"{n}.ready")]
            process = subprocess.Popen(
                [*launcher, str(self.go), *args], cwd=workdir, stdout=out, stderr=err
            )
            out.close()
            err.close()
            self.processes.append(process)
        wait_for(
            lambda: all((workdir / f"{n}.ready").exists() for n in range(count)),
            "launchers to start",
        )

    def start(self) -> None:
        self.go.touch()

    def stderr(self, n: int) -> str:
        return (self.workdir / f"{n}.err").read_text()

    def finish(self, timeout: float = 180) -> list[Finished]:
        results = []
        for n, process in enumerate(self.processes):
            process.wait(timeout=timeout)
            results.append(
                Finished(
                    process.returncode, (self.workdir / f"{n}.out").read_text(), self.stderr(n)
                )
            )
        return results

    def state(self) -> str:
        """Which processes have exited, and what they said: for failure messages."""
        return "; ".join(
            f"#{n} rc={p.poll()} stderr={self.stderr(n)!r}" for n, p in enumerate(self.processes)
        )

    def kill(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()


# Generous: 16 interpreters importing SQLAlchemy and Alembic on a small, busy
# machine take a while. The test asserts order, never speed.
wait_for = functools.partial(wait_until, timeout=240)


@contextmanager
def crowd(workdir: Path, count: int, args: list[str]) -> Iterator[Crowd]:
    group = Crowd(workdir, count, args)
    try:
        yield group
    finally:
        group.kill()


# ---------------------------------------------------------------- lock holders

_HOLDER = """
import sys, time
from urllib.parse import urlsplit
dialect, target = sys.argv[1], sys.argv[2]
if dialect == "sqlite":
    from filelock import FileLock
    held = FileLock(target, is_singleton=False)
    held.acquire()
elif dialect == "postgresql":
    import psycopg
    held = psycopg.connect(target, autocommit=True)
    held.execute("SELECT pg_advisory_lock(%s)" % sys.argv[3])
else:
    import pymysql
    parts = urlsplit(target)
    held = pymysql.connect(host=parts.hostname, port=parts.port or 3306,
                           user=parts.username or "root", password=parts.password or "",
                           database=parts.path.lstrip("/"))
    with held.cursor() as cursor:
        # MariaDB takes no negative (endless) timeout; NULL would mean an error.
        cursor.execute("SELECT GET_LOCK(%s, 60)", (sys.argv[3],))
        assert cursor.fetchone() == (1,)
print("locked", flush=True)
time.sleep(600)
"""


def mysql_lock_name(url: str) -> str:
    return MYSQL_LOCK_PREFIX + urlsplit(url).path.lstrip("/")


@contextmanager
def lock_held_by_another_process(target: Target) -> Iterator[subprocess.Popen[str]]:
    """A separate process holding the migration lock until it is killed."""
    extra = {
        "sqlite": [],
        "postgresql": [str(PG_LOCK_KEY)],
        "mysql": [mysql_lock_name(target.lock_target)],
    }[target.dialect]
    if target.dialect == "sqlite":
        Path(target.lock_target).parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, target.dialect, target.lock_target, *extra],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "locked\n"
        yield holder
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait()


@contextmanager
def lock_held_here(target: Target) -> Iterator[None]:
    """The lock held through a connection of the test itself (server dialects)."""
    if target.dialect == "postgresql":
        import psycopg

        with psycopg.connect(target.lock_target, autocommit=True) as connection:
            connection.execute("SELECT pg_advisory_lock(%s)", (PG_LOCK_KEY,))
            yield
            connection.execute("SELECT pg_advisory_unlock(%s)", (PG_LOCK_KEY,))
        return
    import pymysql

    parts = urlsplit(target.lock_target)
    connection = pymysql.connect(
        host=parts.hostname,
        port=parts.port or 3306,
        user=parts.username or "root",
        password=parts.password or "",
        database=parts.path.lstrip("/"),
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT GET_LOCK(%s, 10)", (mysql_lock_name(target.lock_target),))
            assert cursor.fetchone() == (1,)
        yield
    finally:
        connection.close()


# ---------------------------------------------------------------- checks


def assert_migrated_exactly_once(target: Target, results: list[Finished]) -> None:
    failures = [(n, r.returncode, r.stderr) for n, r in enumerate(results) if r.returncode != 0]
    assert failures == []
    for result in results:
        assert set(result.stderr.splitlines()) <= {WAITING}, result.stderr
    reported = collections.Counter(
        line.split()[1]
        for result in results
        for line in result.stdout.splitlines()
        if line.startswith("OK   ")
    )
    assert reported == dict.fromkeys(MIGRATIONS, 1)
    # A process that ran nothing says so, rather than claiming the others' work.
    for result in results:
        ran_something = any(line.startswith("OK   ") for line in result.stdout.splitlines())
        said_nothing_to_do = "goose: no migrations to run" in result.stdout
        assert ran_something != said_nothing_to_do, result.stdout
    runs = target.rows("SELECT version, COUNT(*) FROM runs GROUP BY version ORDER BY version")
    assert [tuple(r) for r in runs] == [(1, 1), (2, 1), (3, 1)]
    goose = target.rows(
        "SELECT version_id, COUNT(*) FROM goose_db_version GROUP BY version_id ORDER BY version_id"
    )
    assert [tuple(r) for r in goose] == [(0, 1), (1, 1), (2, 1), (3, 1)]
    assert [r[0] for r in target.rows("SELECT version_num FROM alembic_version")] == ["00003"]


# ---------------------------------------------------------------- tests


def test_many_processes_started_together_migrate_once(target: Target, tmp_path: Path) -> None:
    migrations = counter_migrations(tmp_path / "migrations", target.dialect)
    args = ["migrate", "up", *target.args, "--migrations-dir", str(migrations)]
    with crowd(tmp_path / "crowd", PROCESSES, args) as group:
        group.start()
        results = group.finish()
    assert_migrated_exactly_once(target, results)
    if target.dialect == "postgresql":
        valid = target.rows(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'idx_items_name'::regclass"
        )
        assert valid == [(True,)]


def test_waiters_report_and_proceed_when_the_holder_dies(target: Target, tmp_path: Path) -> None:
    # Every process finds the database fresh and the lock taken, so all of them
    # wait, then race for the lock when its holder is killed (a crash: nothing
    # releases the lock but the holder's death).
    migrations = counter_migrations(tmp_path / "migrations", target.dialect)
    args = ["migrate", "up", *target.args, "--migrations-dir", str(migrations)]
    with (
        lock_held_by_another_process(target) as holder,
        crowd(tmp_path / "crowd", PROCESSES, args) as group,
    ):
        group.start()
        wait_for(
            lambda: all(WAITING in group.stderr(n) for n in range(PROCESSES)),
            "every process to report waiting",
            explain=group.state,
        )
        assert not target.exists()  # nothing is written before the lock is held
        os.kill(holder.pid, signal.SIGKILL)
        results = group.finish()
    for result in results:
        assert result.stderr.splitlines()[0] == WAITING
    assert_migrated_exactly_once(target, results)


def test_lock_timeout_is_one_clear_line_and_changes_nothing(target: Target, tmp_path: Path) -> None:
    migrations = counter_migrations(tmp_path / "migrations", target.dialect)
    args = ["migrate", "up", *target.args, "--migrations-dir", str(migrations)]
    holder = (
        lock_held_by_another_process(target)
        if target.dialect == "sqlite"
        else lock_held_here(target)
    )
    with holder:
        result = run_cli(*args, "--lock-timeout", "1", cwd=tmp_path)
        assert result.returncode == 1
        assert result.stdout == ""
        lines = result.stderr.splitlines()
        assert lines[0] == WAITING
        assert len(lines) == 2
        assert lines[1].startswith(
            f"Error: timed out after 1s waiting for the migration lock on {target.describe}"
        )
        assert not target.exists()
    # Once the lock is free the same command goes through.
    result = run_cli(*args, "--lock-timeout", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert [line.split()[1] for line in result.stdout.splitlines()[:-1]] == MIGRATIONS


def test_mysql_lock_is_per_database(mysql_url: str, tmp_path: Path) -> None:
    import pymysql

    parts = urlsplit(mysql_url)
    other = f"llmproxy_test_{uuid.uuid4().hex[:12]}"
    admin: Any = pymysql.connect(
        host=parts.hostname, port=parts.port or 3306, user="root", autocommit=True
    )
    try:
        with admin.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{other}`")
        other_url = mysql_url.rsplit("/", 1)[0] + "/" + other
        with lock_held_here(_mysql_target(other_url)):
            result = run_cli(
                "migrate", "up-to", "1", "--database-url", mysql_url, "--lock-timeout", "5"
            )
        assert result.returncode == 0, result.stderr
        assert WAITING not in result.stderr
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{other}`")
        admin.close()
