"""The lock outage, measured: readers' latency while a migration alters a table
that a long transaction holds, with and without lock timeouts.

One session reads `items` in a transaction it keeps open for --hold seconds;
meanwhile `llm-proxy migrate up` runs `ALTER TABLE items ADD COLUMN ...` and
--readers processes query `items` in a loop. Reported per mode, over the reads
that started while the migration ran: their median and worst latency, how
many there were, the migration's retries and its total time.

A benchmark, not a test (tests/test_lock_outage.py asserts the ordering and the
outcome); figures depend on the machine.

    .venv/bin/python bench/lock_outage.py [--mysql] [--hold 4] [--lock-timeout 500ms]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.outage_helpers import holder, migrate, readers, reads_of  # noqa: E402

PG_ADMIN = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
MYSQL_SERVER = os.environ.get("TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306")


def _admin(mysql: bool, sql: str) -> None:
    if mysql:
        import pymysql

        connection = pymysql.connect(host="127.0.0.1", user="root", password="", autocommit=True)
        with connection.cursor() as cursor:
            cursor.execute(sql)
        connection.close()
    else:
        import psycopg

        with psycopg.connect(PG_ADMIN, autocommit=True) as connection:
            connection.execute(sql)


def _database(mysql: bool) -> tuple[str, str]:
    name = f"llmproxy_bench_{uuid.uuid4().hex[:8]}"
    quoted = f"`{name}`" if mysql else f'"{name}"'
    _admin(mysql, f"CREATE DATABASE {quoted}")
    base = MYSQL_SERVER if mysql else PG_ADMIN.rsplit("/", 1)[0]
    return name, f"{base}/{name}"


def _drop(mysql: bool, name: str) -> None:
    if not mysql:
        _admin(
            False,
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'",
        )
    quoted = f"`{name}`" if mysql else f'"{name}"'
    _admin(mysql, f"DROP DATABASE IF EXISTS {quoted}")


def scenario(mysql: bool, lock_timeout: str, hold: float, reader_count: int) -> dict[str, float]:
    name, url = _database(mysql)
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch) / "migrations"
        directory.mkdir()
        (directory / "00001_items.sql").write_text(
            "-- +goose Up\nCREATE TABLE items (id int);\nINSERT INTO items VALUES (1), (2);\n"
            "-- +goose Down\nDROP TABLE items;\n",
            encoding="utf-8",
        )
        common = ("--database-url", url, "--migrations-dir", str(directory))
        assert migrate("up", *common).finish() == 0
        (directory / "00002_alter.sql").write_text(
            "-- +goose Up\nALTER TABLE items ADD COLUMN x int;\n-- +goose Down\nSELECT 1;\n",
            encoding="utf-8",
        )
        stop = Path(scratch) / "stop"
        holding = holder(url, "items")
        reading = readers(url, "items", stop, reader_count)
        time.sleep(0.5)  # readers at their steady pace before the migration starts
        started = time.monotonic()
        migration = migrate(
            "up", *common, "--ddl-lock-timeout", lock_timeout, "--ddl-lock-retries", "100"
        )
        time.sleep(hold)
        holding.send("")
        holding.finish()
        code = migration.finish()
        ended = time.monotonic()
        time.sleep(0.3)
        stop.touch()
        for reader in reading:
            reader.finish()
    _drop(mysql, name)
    if code != 0:
        raise SystemExit(f"migration failed: {migration.text()}")
    latencies = [f - s for s, f in reads_of(reading) if started <= s <= ended]
    return {
        "reads": len(latencies),
        "median_ms": statistics.median(latencies) * 1000,
        "worst_ms": max(latencies) * 1000,
        "retries": sum("retry" in line for line in migration.text("stderr").splitlines()),
        "migration_s": ended - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mysql", action="store_true", help="MariaDB/MySQL instead")
    parser.add_argument("--hold", type=float, default=4.0, help="the long transaction, seconds")
    parser.add_argument("--lock-timeout", default=None, help="default 500ms (1s on MySQL)")
    parser.add_argument("--readers", type=int, default=4)
    args = parser.parse_args()
    timeout = args.lock_timeout or ("1s" if args.mysql else "500ms")
    label = "MariaDB/MySQL" if args.mysql else "PostgreSQL"
    print(f"{label}: long transaction {args.hold:g}s, {args.readers} readers")
    header = f"{'mode':<22}{'reads':>7}{'median ms':>11}{'worst ms':>10}{'retries':>9}"
    print(header + f"{'migrate s':>11}")
    for mode, value in ((f"lock timeout {timeout}", timeout), ("no lock timeout", "0")):
        r = scenario(args.mysql, value, args.hold, args.readers)
        print(
            f"{mode:<22}{r['reads']:>7}{r['median_ms']:>11.1f}{r['worst_ms']:>10.1f}"
            f"{r['retries']:>9}{r['migration_s']:>11.2f}"
        )


if __name__ == "__main__":
    main()
