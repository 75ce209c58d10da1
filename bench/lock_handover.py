"""How soon a waiting `llm-proxy migrate up` finishes once the process holding the
migration lock is SIGKILLed inside a slow migration.

A benchmark, not a test: it prints figures and asserts only that every waiter
succeeded (tests/test_faults.py checks the ordering and the outcome; the time
depends on the machine, so it is measured here). Per run:

  after kill   SIGKILL of the holder -> the waiter's exit
  migration    what the waiter's own run of the slow migration took (its OK line)
  hand-over    after kill - migration: taking the lock, reconciling, the rest.
               On PostgreSQL it includes what was left of the holder's statement:
               the server runs it to its end, holding the lock (by design)

    .venv/bin/python bench/lock_handover.py --runs 5 [--postgres]
"""

from __future__ import annotations

import argparse
import os
import queue
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

WAITING = "waiting for migration lock held by another process..."
ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
SLOW = {
    # ~2 s of CPU on SQLite (no writes), a 2 s sleep on PostgreSQL.
    "sqlite": "SELECT count(*) FROM (WITH RECURSIVE c(x) AS "
    "(SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 15000000) SELECT x FROM c);",
    "postgresql": "SELECT pg_sleep(2);",
}


class Process:
    """`python -m llm_proxy ...`, its output lines as they come."""

    def __init__(self, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "LLM_"))}
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "llm_proxy", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: queue.Queue[tuple[str, str]] = queue.Queue()
        self.stdout: list[str] = []
        for name in ("stdout", "stderr"):
            threading.Thread(target=self._read, args=(name,), daemon=True).start()

    def _read(self, name: str) -> None:
        for line in getattr(self.popen, name):
            if name == "stdout":
                self.stdout.append(line)
            self.lines.put((name, line))

    def wait_for(self, text: str, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while True:
            _, line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            if text in line:
                return


def write_history(directory: Path, slow: str) -> None:
    directory.mkdir(parents=True)
    files = {
        "00001_first.sql": "CREATE TABLE b_first (id INTEGER PRIMARY KEY);",
        "00002_slow.sql": slow,
        "00003_last.sql": "CREATE TABLE b_last (id INTEGER PRIMARY KEY);",
    }
    for name, up in files.items():
        (directory / name).write_text(f"-- +goose Up\n{up}\n\n-- +goose Down\nSELECT 1;\n")


def one_run(where: list[str], migrations: Path) -> tuple[float, float]:
    args = ("migrate", "up", *where, "--migrations-dir", str(migrations), "--lock-timeout", "300")
    holder = Process(*args)
    holder.wait_for("OK   00001_first.sql")
    waiter = Process(*args)
    waiter.wait_for(WAITING)
    holder.popen.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    holder.popen.wait()
    code = waiter.popen.wait()
    ended = time.monotonic()
    assert code == 0, "".join(waiter.stdout)
    match = re.search(r"OK   00002_slow\.sql \(([\d.]+)ms\)", "".join(waiter.stdout))
    assert match, "".join(waiter.stdout)
    return ended - killed, float(match.group(1)) / 1000.0


def postgres_database() -> tuple[str, str]:
    import psycopg

    name = f"llmproxy_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return name, ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def drop_postgres_database(name: str) -> None:
    import psycopg

    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL instead of SQLite")
    options = parser.parse_args()
    dialect = "postgresql" if options.postgres else "sqlite"
    results = []
    for run in range(options.runs):
        with tempfile.TemporaryDirectory() as scratch:
            migrations = Path(scratch) / "migrations"
            write_history(migrations, SLOW[dialect])
            if dialect == "sqlite":
                results.append(one_run(["--db", f"{scratch}/bench.db"], migrations))
            else:
                name, url = postgres_database()
                try:
                    results.append(one_run(["--database-url", url], migrations))
                finally:
                    drop_postgres_database(name)
        after, migration = results[-1]
        print(f"run {run + 1}: after kill {after:.2f}s, migration {migration:.2f}s")
    handover = [after - migration for after, migration in results]
    print(
        f"{dialect}: after kill median {statistics.median(a for a, _ in results):.2f}s; "
        f"hand-over median {statistics.median(handover):.2f}s "
        f"(min {min(handover):.2f}s, max {max(handover):.2f}s) over {len(results)} runs"
    )


if __name__ == "__main__":
    main()
