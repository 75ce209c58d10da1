"""How long a crowd of 16 `llm-proxy migrate up` processes takes on a fresh
database, per topology, side by side with a direct connection.

A benchmark, not a test: it prints figures and checks only that every process
succeeded and every migration ran once (tests/test_pgbouncer.py and
tests/test_galera.py assert the outcomes). It starts its own PgBouncer (session
and transaction pooling, default_pool_size 4) and a 3-node Galera cluster with
the tests' harnesses, and stops them. Per round, a new database and five
migrations of 0.3 s each (about 1.5 s of work for whoever holds the lock); the
time is from the release of the crowd to the last exit.

    .venv/bin/python bench/lock_topologies.py --rounds 5 [--only pg|mysql]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent / "tests"
sys.path.insert(0, str(TESTS))

from crowd import (  # noqa: E402
    Crowd,
    crowd_migrations,
    crowd_problems,
    mysql_reader,
    pg_reader,
)

CROWD = 16
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


@contextmanager
def pg_database() -> Iterator[str]:
    import psycopg

    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')


@contextmanager
def mysql_database(ports: list[int]) -> Iterator[str]:
    import pymysql

    name = f"bench_{uuid.uuid4().hex[:10]}"
    admin = pymysql.connect(host="127.0.0.1", port=ports[0], user="root", autocommit=True)
    try:
        with admin.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{name}`")
        yield name
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


def crowd_seconds(
    workdir: Path, urls: list[str], dialect: str, extra: list[str], check_url: str
) -> float:
    migrations = crowd_migrations(workdir / "migrations", dialect)
    commands = [
        ["migrate", "up", "--database-url", url, "--migrations-dir", str(migrations), *extra]
        for url in urls
    ]
    group = Crowd(workdir / "crowd", commands, seed=len(urls))
    try:
        started = time.monotonic()
        group.release()
        results = group.finish()
        elapsed = time.monotonic() - started
    finally:
        group.kill_all()
    reader = pg_reader(check_url) if dialect == "postgresql" else mysql_reader(check_url)
    problems = crowd_problems(results, reader)
    if problems:
        raise SystemExit("\n".join(problems))
    return elapsed


Case = tuple[str, Callable[[Path], float]]


def postgres_cases(bouncers: dict[str, object]) -> list[Case]:
    def direct(extra: list[str]) -> Callable[[Path], float]:
        def run(workdir: Path) -> float:
            with pg_database() as name:
                url = f"postgresql://postgres@127.0.0.1:5432/{name}"
                return crowd_seconds(workdir, [url] * CROWD, "postgresql", extra, url)

        return run

    def pooled(mode: str, extra: Callable[[str], list[str]]) -> Callable[[Path], float]:
        def run(workdir: Path) -> float:
            with pg_database() as name:
                direct_url = f"postgresql://postgres@127.0.0.1:5432/{name}"
                url = bouncers[mode].url(name)  # type: ignore[attr-defined]
                return crowd_seconds(
                    workdir, [url] * CROWD, "postgresql", extra(direct_url), direct_url
                )

        return run

    return [
        ("PostgreSQL direct, advisory (auto)", direct([])),
        ("PostgreSQL direct, --lock-strategy table", direct(["--lock-strategy", "table"])),
        ("PgBouncer session pool 4 (auto: lease)", pooled("session", lambda _: [])),
        ("PgBouncer transaction pool 4 (auto: lease)", pooled("transaction", lambda _: [])),
        (
            "PgBouncer transaction pool 4, --lock-url direct",
            pooled("transaction", lambda direct_url: ["--lock-url", direct_url]),
        ),
    ]


def mysql_cases(cluster: object) -> list[Case]:
    def direct(extra: list[str]) -> Callable[[Path], float]:
        def run(workdir: Path) -> float:
            with mysql_database([3306]) as name:
                url = f"mysql://root@127.0.0.1:3306/{name}"
                return crowd_seconds(workdir, [url] * CROWD, "mysql", extra, url)

        return run

    def galera(workdir: Path) -> float:
        ports = [cluster.port(n) for n in (1, 2, 3)]  # type: ignore[attr-defined]
        with mysql_database(ports) as name:
            urls = [cluster.url(1 + i % 3, name) for i in range(CROWD)]  # type: ignore[attr-defined]
            return crowd_seconds(workdir, urls, "mysql", [], urls[0])

    return [
        ("MariaDB direct, GET_LOCK (auto)", direct([])),
        ("MariaDB direct, --lock-strategy table", direct(["--lock-strategy", "table"])),
        ("Galera 3 nodes, 16 spread over them (auto: lease)", galera),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", choices=["pg", "mysql"])
    options = parser.parse_args()

    from galera_harness import GaleraCluster
    from pgbouncer_harness import PgBouncer

    cases: list[Case] = []
    started: list[object] = []
    try:
        if options.only != "mysql":
            bouncers = {
                m: PgBouncer(m, default_pool_size=4).start() for m in ("session", "transaction")
            }
            started.extend(bouncers.values())
            cases += postgres_cases(bouncers)
        if options.only != "pg":
            cluster = GaleraCluster().start()
            started.append(cluster)
            cases += mysql_cases(cluster)
        print(f"{CROWD} processes, 5 migrations x 0.3 s, {options.rounds} rounds (interleaved)")
        timings: dict[str, list[float]] = {label: [] for label, _ in cases}
        with tempfile.TemporaryDirectory() as scratch:
            for round_number in range(options.rounds):
                for index, (label, run) in enumerate(cases):
                    workdir = Path(scratch) / f"r{round_number}-{index}"
                    timings[label].append(run(workdir))
        width = max(len(label) for label in timings)
        print(f"{'topology':<{width}}  median   min    max   (seconds)")
        for label, values in timings.items():
            print(
                f"{label:<{width}}  {statistics.median(values):6.2f} "
                f"{min(values):6.2f} {max(values):6.2f}"
            )
    finally:
        for thing in reversed(started):
            thing.stop()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
