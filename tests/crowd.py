"""Crowds of real `llm-proxy` processes released together, and what to assert after.

Each child is a small launcher that announces itself, waits for one `go` file,
sleeps its own small jitter and then becomes `python -m llm_proxy ...`: the
interpreters are already up, so the barrier releases them all at once. The
spawn order and the jitters come from a seeded random.Random, so one seed is
one reproducible round. Output goes to files (no pipe can fill up).

The migrations written here count their own runs: each inserts its version into
`migration_runs`, so a file applied twice leaves two rows.
"""

from __future__ import annotations

import contextlib
import http.client
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from conftest import write_migration
from fault_helpers import child_env

SEEDS = (1901, 1902, 1903)
LISTENING = re.compile(r"llm-proxy listening on http://127\.0\.0\.1:(\d+)")
WAIT_TIMEOUT = 300.0
MAX_JITTER = 0.05
# A server that is neither ready nor gone after this long is stuck (the failure
# names it); the crowd's own work takes a few seconds.
SERVER_TIMEOUT = 120.0

_LAUNCHER = (
    "import os, sys, time\n"
    "ready, go, jitter = sys.argv[1], sys.argv[2], float(sys.argv[3])\n"
    "open(ready, 'w').close()\n"
    "while not os.path.exists(go):\n"
    "    time.sleep(0.002)\n"
    "time.sleep(jitter)\n"
    "os.execv(sys.executable, [sys.executable, '-m', 'llm_proxy', *sys.argv[4:]])\n"
)


# ---------------------------------------------------------------- migrations

VERSIONS = (1, 2, 3, 4, 5)
HEAD = "00005"
_SLEEP = {"postgresql": "SELECT pg_sleep({s});", "mysql": "DO SLEEP({s});"}


def crowd_migrations(
    directory: Path, dialect: str, sleep: float = 0.3, slow: dict[int, float] | None = None
) -> Path:
    """Five goose files; each inserts its version into migration_runs (file 1 creates
    it), sleeps `sleep` seconds (or slow[version]) and creates table tN. File 3 is
    NO TRANSACTION; file 4 mixes DDL and a data change."""
    slow = slow or {}
    directory.mkdir(parents=True, exist_ok=True)

    def pause(version: int) -> str:
        return _SLEEP[dialect].format(s=slow.get(version, sleep))

    write_migration(
        directory,
        "00001_migration_runs.sql",
        "CREATE TABLE migration_runs (version INTEGER NOT NULL);\n"
        f"INSERT INTO migration_runs (version) VALUES (1);\n{pause(1)}\n"
        "CREATE TABLE t1 (id INTEGER NOT NULL);",
        "DROP TABLE t1;\nDROP TABLE migration_runs;",
    )
    write_migration(
        directory,
        "00002_t2.sql",
        f"INSERT INTO migration_runs (version) VALUES (2);\n{pause(2)}\n"
        "CREATE TABLE t2 (id INTEGER NOT NULL);",
        "DROP TABLE t2;\nDELETE FROM migration_runs WHERE version = 2;",
    )
    write_migration(
        directory,
        "00003_t3_no_transaction.sql",
        f"INSERT INTO migration_runs (version) VALUES (3);\n{pause(3)}\n"
        # Run again from its first statement when cut off (as goose does): written so
        # that this is harmless, as a NO TRANSACTION file must be.
        "CREATE TABLE IF NOT EXISTS t3 (id INTEGER NOT NULL);",
        "DROP TABLE t3;\nDELETE FROM migration_runs WHERE version = 3;",
        extra="-- +goose NO TRANSACTION\n",
    )
    write_migration(
        directory,
        "00004_t4_ddl_and_data.sql",
        "CREATE TABLE t4 (id INTEGER NOT NULL, name VARCHAR(20));\n"
        "INSERT INTO t4 (id, name) VALUES (1, 'one'), (2, 'two');\n"
        f"INSERT INTO migration_runs (version) VALUES (4);\n{pause(4)}\n"
        "UPDATE t4 SET name = 'ONE' WHERE id = 1;",
        "DROP TABLE t4;\nDELETE FROM migration_runs WHERE version = 4;",
    )
    write_migration(
        directory,
        "00005_t5.sql",
        f"INSERT INTO migration_runs (version) VALUES (5);\n{pause(5)}\n"
        "CREATE TABLE t5 (id INTEGER NOT NULL);",
        "DROP TABLE t5;\nDELETE FROM migration_runs WHERE version = 5;",
    )
    return directory


# ---------------------------------------------------------------- reading a database


def pg_rows(url: str, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(url, autocommit=True, prepare_threshold=None) as connection:
        cursor = connection.execute(sql, params or None)  # none: % is literal
        return [tuple(r) for r in cursor.fetchall()] if cursor.description else []


def mysql_rows(url: str, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    import pymysql

    parts = urlsplit(url)
    connection = pymysql.connect(
        host=parts.hostname,
        port=parts.port or 3306,
        user=parts.username or "root",
        password=parts.password or "",
        database=parts.path.lstrip("/") or None,
        autocommit=True,
        connect_timeout=5,
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, params or None)
            return [tuple(r) for r in cursor.fetchall()] if cursor.description else []
    finally:
        connection.close()


Rows = Callable[[str], list[tuple[Any, ...]]]


def pg_reader(url: str) -> Rows:
    return lambda sql: pg_rows(url, sql)


def mysql_reader(url: str) -> Rows:
    return lambda sql: mysql_rows(url, sql)


# ---------------------------------------------------------------- processes


@dataclass
class Result:
    index: int
    returncode: int | None
    stdout: str
    stderr: str
    args: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return f"#{self.index} rc={self.returncode} stderr={self.stderr.strip()[-400:]!r}"


class Crowd:
    """`commands[i]` run by process i (llm-proxy arguments), released together."""

    def __init__(
        self,
        workdir: Path,
        commands: Sequence[Sequence[str]],
        seed: int,
        env: dict[str, str] | None = None,
        envs: Sequence[dict[str, str]] | None = None,
    ) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.go = workdir / "go"
        self.commands = [list(c) for c in commands]
        rng = random.Random(f"crowd:{seed}:{len(commands)}")
        order = list(range(len(commands)))
        rng.shuffle(order)
        jitters = [rng.uniform(0, MAX_JITTER) for _ in commands]
        self.processes: dict[int, subprocess.Popen[bytes]] = {}
        base_env = child_env({"PYTHONUNBUFFERED": "1", **(env or {})})
        for n in order:
            own_env = {**base_env, **(envs[n] if envs else {})}
            with (
                open(workdir / f"{n}.out", "wb") as out,
                open(workdir / f"{n}.err", "wb") as err,
            ):
                self.processes[n] = subprocess.Popen(
                    [
                        sys.executable,
                        "-c",
                        _LAUNCHER,
                        str(workdir / f"{n}.ready"),
                        str(self.go),
                        f"{jitters[n]:.4f}",
                        *self.commands[n],
                    ],
                    cwd=workdir,
                    stdout=out,
                    stderr=err,
                    env=own_env,
                )
        wait_until(
            lambda: all((workdir / f"{n}.ready").exists() for n in self.processes),
            "launchers to start",
        )

    def release(self) -> None:
        self.go.touch()

    def stdout(self, n: int) -> str:
        return (self.workdir / f"{n}.out").read_text(errors="replace")

    def stderr(self, n: int) -> str:
        return (self.workdir / f"{n}.err").read_text(errors="replace")

    def result(self, n: int) -> Result:
        return Result(n, self.processes[n].poll(), self.stdout(n), self.stderr(n), self.commands[n])

    def finish(self, timeout: float = WAIT_TIMEOUT) -> list[Result]:
        deadline = time.monotonic() + timeout
        for n in sorted(self.processes):
            try:
                self.processes[n].wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.processes[n].kill()
                self.processes[n].wait()
        return [self.result(n) for n in sorted(self.processes)]

    def signal(self, n: int, sig: int) -> None:
        process = self.processes[n]
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(sig)

    def kill_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()


@contextlib.contextmanager
def crowd(
    workdir: Path,
    commands: Sequence[Sequence[str]],
    seed: int,
    env: dict[str, str] | None = None,
    envs: Sequence[dict[str, str]] | None = None,
) -> Iterator[Crowd]:
    group = Crowd(workdir, commands, seed, env, envs)
    try:
        yield group
    finally:
        group.kill_all()


def run_crowd(
    workdir: Path,
    commands: Sequence[Sequence[str]],
    seed: int,
    env: dict[str, str] | None = None,
    envs: Sequence[dict[str, str]] | None = None,
) -> list[Result]:
    with crowd(workdir, commands, seed, env, envs) as group:
        group.release()
        return group.finish()


def wait_until(
    condition: Callable[[], bool],
    what: str,
    timeout: float = WAIT_TIMEOUT,
    explain: Callable[[], str] = str,
) -> None:
    # Generous: many interpreters importing SQLAlchemy on a small shared machine.
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what} {explain()}")
        time.sleep(0.05)


# ---------------------------------------------------------------- servers


def readyz(port: int) -> int | None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/readyz")
        response = connection.getresponse()
        response.read()
        return response.status
    except OSError:
        return None
    finally:
        connection.close()


def run_server_crowd(
    workdir: Path, count: int, args: Sequence[str], seed: int, env: dict[str, str]
) -> list[Result]:
    """`count` servers released together; each waited for until /readyz answers 200 or
    it exits; then all are stopped with SIGTERM. A server's returncode in the result is
    its exit status after SIGTERM (0 for a clean stop), or its own early exit status."""
    commands = [["server", "--addr", "127.0.0.1:0", *args] for _ in range(count)]
    with crowd(workdir, commands, seed, env) as group:
        group.release()
        ready: dict[int, bool] = {}

        def settled() -> bool:
            for n, process in group.processes.items():
                if n in ready:
                    continue
                if process.poll() is not None:
                    ready[n] = False
                    continue
                found = LISTENING.search(group.stdout(n))
                if found and readyz(int(found.group(1))) == 200:
                    ready[n] = True
            return len(ready) == count

        def explain() -> str:
            stuck = [n for n in group.processes if n not in ready]
            return (
                f"(after {SERVER_TIMEOUT:g}s, still neither ready nor exited: "
                + "; ".join(
                    f"#{n} listening={bool(LISTENING.search(group.stdout(n)))} "
                    f"stderr={group.stderr(n).strip()[-200:]!r}"
                    for n in stuck
                )
                + ")"
            )

        wait_until(settled, "every server to answer /readyz 200 or exit", SERVER_TIMEOUT, explain)
        for n in group.processes:
            group.signal(n, signal.SIGTERM)
        return group.finish(timeout=60)


# ---------------------------------------------------------------- judging the outcome

TRACEBACK = "Traceback (most recent call last)"
# What a process says when it ran a migration another one had run or was running:
# the signature of a lock that did not hold (allowed failures must not say it).
RACE = re.compile(r"already exists|duplicate key|Duplicate entry|Deadlock found", re.IGNORECASE)


def failures(results: Sequence[Result]) -> list[str]:
    return [r.describe() for r in results if r.returncode != 0]


def assert_all_succeeded(results: Sequence[Result]) -> None:
    bad = failures(results)
    assert bad == [], f"{len(bad)}/{len(results)} processes failed:\n" + "\n".join(bad)


def assert_no_prepared_statement_errors(results: Sequence[Result]) -> None:
    said = [r.describe() for r in results if "prepared statement" in (r.stdout + r.stderr)]
    assert said == [], "a process mentions prepared statements:\n" + "\n".join(said)


NAMED = re.compile(r"127\.0\.0\.1:\d+/\w+|\d{5}_\w+\.sql")


def assert_one_line_errors(results: Sequence[Result]) -> None:
    """A process that failed says why in one line of stderr, without a traceback."""
    for r in results:
        if r.returncode != 0:
            lines = [line for line in r.stderr.splitlines() if line.strip()]
            # Progress and warnings may precede the error; the error itself is one line.
            rest = [
                line
                for line in lines
                if "waiting for migration lock" not in line and not line.startswith("warning:")
            ]
            assert TRACEBACK not in r.stderr and len(rest) == 1, (
                f"#{r.index} rc={r.returncode} should fail with one line:\n{r.stderr}"
            )
            # ... that names what failed: the database (host:port/name), or the file.
            assert NAMED.search(rest[0]), f"#{r.index}: the error names nothing: {rest[0]}"


def run_counts(rows: Rows) -> dict[int, int]:
    return {
        int(v): int(c)
        for v, c in rows(
            "SELECT version, COUNT(*) FROM migration_runs GROUP BY version ORDER BY version"
        )
    }


def goose_counts(rows: Rows) -> dict[int, int]:
    return {
        int(v): int(c)
        for v, c in rows(
            "SELECT version_id, COUNT(*) FROM goose_db_version "
            "GROUP BY version_id ORDER BY version_id"
        )
    }


def database_state(rows: Rows) -> tuple[dict[int, int], dict[int, int], list[str]]:
    return (
        run_counts(rows),
        goose_counts(rows),
        sorted(str(r[0]) for r in rows("SELECT version_num FROM alembic_version")),
    )


def assert_migrated_once(rows: Rows, versions: Sequence[int] = VERSIONS, head: str = HEAD) -> None:
    problems = state_problems(rows, versions, head)
    assert problems == [], "\n".join(problems)


def pg_advisory_locks(admin_url: str, database: str) -> list[tuple[Any, ...]]:
    """Advisory locks held or awaited in `database`, read directly (not via a pooler)."""
    return pg_rows(
        admin_url,
        "SELECT l.pid, l.objid, l.granted, a.state, a.application_name FROM pg_locks l "
        "JOIN pg_database d ON d.oid = l.database "
        "LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND d.datname = %s",
        (database,),
    )


def ok_lines(results: Sequence[Result]) -> Counter[str]:
    return Counter(
        line.split()[1]
        for r in results
        for line in r.stdout.splitlines()
        if line.startswith("OK   ")
    )


def state_problems(
    rows: Rows,
    versions: Sequence[int] = VERSIONS,
    head: str = HEAD,
    may_rerun: Collection[int] = (),
) -> list[str]:
    """What is wrong with the database after a crowd (empty when every version ran
    exactly once, has one goose row, and alembic_version is at head). A version in
    `may_rerun` may have run twice: a NO TRANSACTION file cut off mid-way by a fault
    runs again from its first statement (goose's rule), whatever the lock."""
    try:
        runs, goose, alembic = database_state(rows)
    except Exception as exc:  # a missing table is an outcome to report, not a crash
        return [f"cannot read the outcome: {type(exc).__name__}: {str(exc).splitlines()[0]}"]
    problems = []
    once = dict.fromkeys(versions, 1)
    allowed = {v: (1, 2) if v in may_rerun else (1,) for v in versions}
    if set(runs) != set(versions) or any(runs[v] not in allowed[v] for v in versions):
        problems.append(f"migration_runs (version: times run) {runs}, expected {once}")
    if goose != {0: 1, **once}:
        problems.append(f"goose_db_version (version: rows) {goose}, expected {{0: 1, **{once}}}")
    if alembic != [head]:
        problems.append(f"alembic_version {alembic}, expected [{head!r}]")
    return problems


PARTIAL_RERUN = re.compile(r"(\d+)_\S+\.sql stopped after \d+ of \d+ statements last time")


def partial_reruns(*results: Sequence[Result]) -> set[int]:
    """Versions some process said it runs again from the start (cut off NO TRANSACTION)."""
    return {
        int(found.group(1))
        for group in results
        for r in group
        for found in PARTIAL_RERUN.finditer(r.stderr)
    }


def crowd_problems(
    results: Sequence[Result],
    rows: Rows,
    *,
    versions: Sequence[int] = VERSIONS,
    head: str = HEAD,
    allow_failures: bool = False,
) -> list[str]:
    """Everything wrong after a crowd, gathered so that one failure shows the whole
    picture: failed processes, prepared-statement errors, the database's state."""
    problems = process_problems(results, allow_failures=allow_failures)
    problems.extend(state_problems(rows, versions, head))
    return problems


def process_problems(results: Sequence[Result], *, allow_failures: bool = False) -> list[str]:
    """Failed processes (unless allowed) and any mention of prepared statements."""
    problems: list[str] = []
    if not allow_failures:
        bad = failures(results)
        if bad:
            problems.append(f"{len(bad)}/{len(results)} processes failed:")
            problems.extend(f"  {line}" for line in bad)
    said = [r.index for r in results if "prepared statement" in (r.stdout + r.stderr)]
    if said:
        problems.append(f"processes {said} mention prepared statements")
    raced = [r.describe() for r in results if RACE.search(r.stderr)]
    if raced:
        problems.append("processes ran what another had run (the lock did not hold):")
        problems.extend(f"  {line}" for line in raced)
    return problems
