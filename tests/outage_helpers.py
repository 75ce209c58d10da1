"""Real processes for the lock outage scenario (tests/test_lock_outage.py and
bench/lock_outage.py): a session holding a transaction on a table, readers of
the table logging each query, a migration whose lines are time-stamped.

Times are time.monotonic() values, one clock for every process of the machine:
they order events across processes, and bound nothing.
"""

from __future__ import annotations

import contextlib
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

HOLDER = r"""
import sys
url, table = sys.argv[1], sys.argv[2]
if url.startswith("mysql"):
    import pymysql, urllib.parse as up
    u = up.urlsplit(url)
    c = pymysql.connect(host=u.hostname, port=u.port or 3306, user=u.username or "root",
                        password=u.password or "", database=u.path.lstrip("/"))
    cur = c.cursor(); cur.execute("BEGIN"); cur.execute(f"SELECT count(*) FROM {table}")
    cur.fetchall(); cur.execute("SELECT CONNECTION_ID()"); pid = cur.fetchone()[0]
else:
    import psycopg
    c = psycopg.connect(url); c.execute(f"SELECT count(*) FROM {table}").fetchall()
    pid = c.execute("SELECT pg_backend_pid()").fetchone()[0]
print(f"holding {pid}", flush=True)
sys.stdin.readline()
c.rollback()
print("released", flush=True)
"""

READER = r"""
import os, sys, time
url, table, stop = sys.argv[1], sys.argv[2], sys.argv[3]
if url.startswith("mysql"):
    import pymysql, urllib.parse as up
    u = up.urlsplit(url)
    c = pymysql.connect(host=u.hostname, port=u.port or 3306, user=u.username or "root",
                        password=u.password or "", database=u.path.lstrip("/"), autocommit=True)
    def read():
        cur = c.cursor(); cur.execute(f"SELECT count(*) FROM {table}"); cur.fetchall()
else:
    import psycopg
    c = psycopg.connect(url, autocommit=True)
    def read():
        c.execute(f"SELECT count(*) FROM {table}").fetchall()
print("ready", flush=True)
while not os.path.exists(stop):
    started = time.monotonic()
    read()
    print(f"read {started} {time.monotonic()}", flush=True)
    time.sleep(0.01)
"""


class Process:
    """A child process whose output lines are kept with the time each arrived."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.popen = subprocess.Popen(
            args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: list[tuple[float, str, str]] = []  # (arrived, stream, line)
        self._new: queue.Queue[str] = queue.Queue()
        self._readers = [
            threading.Thread(target=self._read, args=(name,), daemon=True)
            for name in ("stdout", "stderr")
        ]
        for thread in self._readers:
            thread.start()

    def _read(self, name: str) -> None:
        stream = getattr(self.popen, name)
        for line in stream:
            self.lines.append((time.monotonic(), name, line.rstrip("\n")))
            self._new.put(line)

    def wait_for(self, text: str, timeout: float = 60) -> float:
        """Block until a line containing `text` arrives; its arrival time."""
        deadline = time.monotonic() + timeout
        while True:
            for arrived, _, line in list(self.lines):
                if text in line:
                    return arrived
            if (
                time.monotonic() > deadline
                or self.popen.poll() is not None
                and not any(t.is_alive() for t in self._readers)
            ):
                raise AssertionError(f"no line with {text!r}; got {self.text()!r}")
            with contextlib.suppress(queue.Empty):
                self._new.get(timeout=0.05)

    def finish(self, timeout: float = 120) -> int:
        code = self.popen.wait(timeout=timeout)
        for thread in self._readers:
            thread.join(timeout=5)
        return code

    def text(self, stream: str | None = None) -> str:
        return "\n".join(line for _, name, line in self.lines if stream in (None, name))

    def send(self, line: str) -> None:
        assert self.popen.stdin is not None
        self.popen.stdin.write(line + "\n")
        self.popen.stdin.flush()


def child_env() -> dict[str, str]:
    """The environment without any llm-proxy or database setting of the runner."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "LLM_PROXY_"))}


def holder(url: str, table: str) -> Process:
    """A session in a transaction that read `table`; its server pid is `.server_pid`."""
    process = Process([sys.executable, "-c", HOLDER, url, table], child_env())
    process.wait_for("holding")
    process.server_pid = int(process.text().split("holding ")[1].split()[0])  # type: ignore[attr-defined]
    return process


def readers(url: str, table: str, stop: Path, count: int) -> list[Process]:
    started = [
        Process([sys.executable, "-c", READER, url, table, str(stop)], child_env())
        for _ in range(count)
    ]
    for reader in started:
        reader.wait_for("ready")
    return started


def reads_of(processes: list[Process]) -> list[tuple[float, float]]:
    """(started, finished) of every query the readers logged."""
    found = []
    for process in processes:
        for _, _, line in process.lines:
            if line.startswith("read "):
                _, started, finished = line.split()
                found.append((float(started), float(finished)))
    return found


def migrate(*args: str) -> Process:
    return Process([sys.executable, "-m", "llm_proxy", "migrate", *args], child_env())
