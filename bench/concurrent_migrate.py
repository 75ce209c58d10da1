"""Time many simultaneous `llm-proxy migrate up` processes on PostgreSQL.

A benchmark, not a test: it prints figures and asserts only that every run
succeeded. Each run uses fresh databases on the server named by --admin-url:

  single     one `migrate up` on a fresh database (the shipped history)
  crowd      N `migrate up` started together on one fresh database: one of them
             migrates under the advisory lock, the others wait and find nothing to do
  crowd-noop N `migrate up` started together on an up-to-date database
             (the common case: many instances restarting)

Times are wall clock from the moment the processes are released to the moment
the last one exits; the interpreters are already running when released, so
interpreter start-up is excluded and imports are included.

    .venv/bin/python bench/concurrent_migrate.py --runs 5 --processes 32
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
WAITING = "waiting for migration lock held by another process..."

# Announce readiness, wait for the release file, then become `python -m llm_proxy ...`.
_LAUNCHER = (
    "import os, sys, time\n"
    "ready, go = sys.argv[1], sys.argv[2]\n"
    "open(ready, 'w').close()\n"
    "while not os.path.exists(go):\n"
    "    time.sleep(0.001)\n"
    "os.execv(sys.executable, [sys.executable, '-m', 'llm_proxy', *sys.argv[3:]])\n"
)


def create_database(admin_url: str) -> str:
    import psycopg

    name = f"llmproxy_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + "/" + name


def drop_database(admin_url: str, url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')


def check_migrated(url: str, expected_versions: int) -> None:
    import psycopg

    with psycopg.connect(url) as connection:
        rows = connection.execute(
            "SELECT version_id, count(*) FROM goose_db_version GROUP BY 1 ORDER BY 1"
        ).fetchall()
    if rows != [(v, 1) for v in range(expected_versions + 1)]:
        raise SystemExit(f"unexpected goose_db_version rows: {rows}")


def run_together(count: int, args: list[str], workdir: Path) -> tuple[float, int]:
    """Start `count` processes, release them at once; (seconds until all exit, how many waited)."""
    workdir.mkdir()
    go = workdir / "go"
    processes = []
    for n in range(count):
        command = [sys.executable, "-c", _LAUNCHER, str(workdir / f"{n}.ready"), str(go), *args]
        with open(workdir / f"{n}.err", "wb") as err:
            processes.append(
                subprocess.Popen(command, cwd=workdir, stdout=subprocess.DEVNULL, stderr=err)
            )
    while not all((workdir / f"{n}.ready").exists() for n in range(count)):
        time.sleep(0.01)
    start = time.perf_counter()
    go.touch()
    codes = [p.wait() for p in processes]
    elapsed = time.perf_counter() - start
    errors = [(workdir / f"{n}.err").read_text() for n in range(count)]
    if any(codes):
        failed = next(e for c, e in zip(codes, errors, strict=True) if c)
        raise SystemExit(f"{codes.count(0)}/{count} processes succeeded; one said: {failed}")
    return elapsed, sum(WAITING in e for e in errors)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    parser.add_argument("--processes", type=int, default=32)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--migrations-dir", default=str(REPO / "sql" / "postgres"))
    options = parser.parse_args()

    versions = len(list(Path(options.migrations_dir).glob("*.sql")))
    figures: dict[str, list[float]] = {"single": [], "crowd": [], "crowd-noop": []}
    waited: list[int] = []
    with tempfile.TemporaryDirectory() as scratch:
        for run in range(options.runs):
            base = Path(scratch) / str(run)
            base.mkdir()
            for scenario in figures:
                url = create_database(options.admin_url)
                try:
                    args = ["migrate", "up", "--database-url", url]
                    args += ["--migrations-dir", options.migrations_dir]
                    if scenario == "crowd-noop":
                        run_together(1, args, base / f"{scenario}-prepare")
                    count = 1 if scenario == "single" else options.processes
                    elapsed, waiting = run_together(count, args, base / scenario)
                    check_migrated(url, versions)
                finally:
                    drop_database(options.admin_url, url)
                figures[scenario].append(elapsed)
                if scenario == "crowd":
                    waited.append(waiting)
            print(
                f"run {run + 1}: "
                + ", ".join(f"{name} {values[-1]:.2f}s" for name, values in figures.items())
                + f" ({waited[-1]} of {options.processes} waited for the lock)",
                flush=True,
            )

    print(
        f"\nmedians over {options.runs} runs, {options.processes} processes, "
        f"{versions} migrations, {os.cpu_count()} CPUs:"
    )
    for name, values in figures.items():
        print(f"  {name:<11} {statistics.median(values):6.2f}s")
    single = statistics.median(figures["single"])
    print(f"  crowd / single: {statistics.median(figures['crowd']) / single:.1f}x")
    print(f"  processes that waited for the lock (median): {statistics.median(waited):g}")


if __name__ == "__main__":
    main()
