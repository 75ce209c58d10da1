"""What goose v3 runs, records and prints for edge cases of its file format, on real
databases: llm-proxy must do the same (or refuse where goose would corrupt).

Each case names the goose behaviour it stands for; goose's source is the reference
(pressly/goose internal/sqlparser, migration_sql.go, migration.go; its drivers:
modernc.org/sqlite, pgx, go-sql-driver/mysql).
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import SETTINGS_ENV, run_cli

Rows = Callable[[str], list[tuple[Any, ...]]]


@dataclass
class Target:
    """A fresh database of one dialect: CLI arguments for it and a way to read it."""

    name: str
    args: list[str]
    rows: Rows


def _sqlite_target(path: Path) -> Target:
    def rows(sql: str) -> list[tuple[Any, ...]]:
        connection = sqlite3.connect(path)
        try:
            return connection.execute(sql).fetchall()
        finally:
            connection.close()

    return Target("sqlite", ["--db", str(path)], rows)


def _postgres_target(url: str) -> Target:
    import psycopg

    def rows(sql: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(url, autocommit=True) as connection:
            cursor = connection.execute(sql)
            return cursor.fetchall() if cursor.description else []

    return Target("postgres", ["--database-url", url], rows)


def _mysql_target(url: str) -> Target:
    import pymysql

    database = url.rsplit("/", 1)[1]
    host_port = url.split("@", 1)[1].split("/", 1)[0]
    host, port = host_port.split(":")

    def rows(sql: str) -> list[tuple[Any, ...]]:
        connection = pymysql.connect(
            host=host, port=int(port), user="root", password="", database=database
        )
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql)
                return list(cursor.fetchall())
        finally:
            connection.close()

    return Target("mysql", ["--database-url", url], rows)


def make_target(request: pytest.FixtureRequest, tmp_path: Path, name: str) -> Target:
    if name == "sqlite":
        return _sqlite_target(tmp_path / "db" / "fidelity.db")
    if name == "postgres":
        return _postgres_target(request.getfixturevalue("postgres_url"))
    return _mysql_target(request.getfixturevalue("mysql_url"))


@pytest.fixture(params=["sqlite", "postgres", "mysql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    return make_target(request, tmp_path, request.param)


@pytest.fixture(params=["sqlite", "postgres"])
def sqlite_or_postgres(request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    return make_target(request, tmp_path, request.param)


def migrate(target: Target, directory: Path, *args: str, env: dict[str, str] | None = None):
    return run_cli("migrate", *args, *target.args, "--migrations-dir", str(directory), env=env)


def goose_versions(target: Target) -> list[int]:
    return [r[0] for r in target.rows("SELECT version_id FROM goose_db_version ORDER BY id")]


# ---------------------------------------------------------------- ENVSUB values in errors


SECRET = "s3cr3t-Tok3n"


def test_failing_statement_masks_envsub_values(
    sqlite_or_postgres: Target, migrations_dir: Path
) -> None:
    # goose prints the failing statement with the values ENVSUB put in it; a secret passed
    # that way must not reach the output: the statement is shown with *** in its place.
    (migrations_dir / "00001_secret.sql").write_text(
        "-- +goose Up\n-- +goose ENVSUB ON\n"
        "CREATE TABLE kept (v TEXT);\n"
        "INSERT INTO missing_table VALUES ('${API_TOKEN}', '$PLAIN');\n",
        encoding="utf-8",
    )
    env = {"API_TOKEN": SECRET, "PLAIN": "", "LLM_PROXY_DEBUG": ""}
    result = migrate(sqlite_or_postgres, migrations_dir, "up", env=env)
    assert result.returncode == 1
    assert SECRET not in result.stdout + result.stderr
    message = result.stderr.strip()
    assert message.count("\n") == 0
    assert "00001_secret.sql: statement 2 failed" in message
    assert "INSERT INTO missing_table VALUES ('***', '')" in message


def test_driver_message_masks_envsub_values(
    sqlite_or_postgres: Target, migrations_dir: Path
) -> None:
    # The database's own message may quote the value (a table name here): masked too, and
    # no traceback (LLM_PROXY_DEBUG) shows the driver's unmasked error either.
    (migrations_dir / "00001_secret.sql").write_text(
        "-- +goose Up\n-- +goose ENVSUB ON\nSELECT * FROM ${SECRET_TABLE};\n",
        encoding="utf-8",
    )
    for debug in ("", "1"):
        env = {"SECRET_TABLE": "tbl_" + SECRET.lower(), "LLM_PROXY_DEBUG": debug}
        result = migrate(sqlite_or_postgres, migrations_dir, "up", env=env)
        assert result.returncode == 1
        assert SECRET.lower() not in result.stdout + result.stderr
        assert "SELECT * FROM ***" in result.stderr


# ---------------------------------------------------------------- several statements per line


def test_several_statements_on_one_line_run_as_goose_sends_them(
    target: Target, migrations_dir: Path
) -> None:
    # goose ends a statement at a line ending in ';', so each line below is ONE statement
    # string, which its drivers run whole (go-sql-driver/mysql with multiStatements=true).
    (migrations_dir / "00001_two_per_line.sql").write_text(
        "-- +goose Up\n"
        "CREATE TABLE a (x int); CREATE TABLE b (y varchar(10));\n"
        "INSERT INTO a VALUES (1); INSERT INTO b VALUES (';'); INSERT INTO a VALUES (2);\n"
        "-- +goose Down\n"
        "DROP TABLE a; DROP TABLE b;\n",
        encoding="utf-8",
    )
    result = migrate(target, migrations_dir, "up")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK   00001_two_per_line.sql (")
    assert target.rows("SELECT x FROM a ORDER BY x") == [(1,), (2,)]
    assert target.rows("SELECT y FROM b") == [(";",)]
    assert goose_versions(target) == [0, 1]

    result = migrate(target, migrations_dir, "down")
    assert result.returncode == 0, result.stderr
    assert goose_versions(target) == [0]
    names = {"a", "b"}
    assert not names & {r[0] for r in _tables(target)}


def test_failure_in_a_later_statement_of_a_line_names_gooses_statement(
    target: Target, migrations_dir: Path
) -> None:
    (migrations_dir / "00001_fails.sql").write_text(
        "-- +goose Up\n"
        "CREATE TABLE first_one (x int);\n"
        "INSERT INTO first_one VALUES (1); INSERT INTO no_such_table VALUES (2);\n",
        encoding="utf-8",
    )
    result = migrate(target, migrations_dir, "up")
    assert result.returncode == 1
    message = result.stderr.strip()
    assert message.count("\n") == 0
    assert "00001_fails.sql: statement 2 failed" in message
    assert "INSERT INTO first_one VALUES (1); INSERT INTO no_such_table VALUES (2);" in message
    reason = message.split(" failed: ", 1)[1]  # the database's own words, not a driver's limit
    assert any(words in reason for words in ("no such table", "does not exist", "doesn't exist"))
    assert goose_versions(target) == [0]
    if target.name != "mysql":  # MySQL's DDL commits by itself; the others roll back
        assert "first_one" not in {r[0] for r in _tables(target)}


def _tables(target: Target) -> list[tuple[Any, ...]]:
    if target.name == "sqlite":
        return target.rows("SELECT name FROM sqlite_master WHERE type = 'table'")
    if target.name == "postgres":
        return target.rows("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return target.rows(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()"
    )


# ---------------------------------------------------------------- parameters in SQL


@pytest.mark.parametrize(("marker", "name"), [(":y", ":y"), ("?", "?"), ("@who", "@who")])
def test_sqlite_parameter_in_sql_fails_naming_it(
    marker: str, name: str, sqlite_path: Path, migrations_dir: Path
) -> None:
    # goose runs migration SQL with no arguments; its SQLite driver (modernc.org/sqlite)
    # then refuses any parameter: 'missing named argument "y"'. Nothing of the file stays.
    target = _sqlite_target(sqlite_path)
    (migrations_dir / "00001_param.sql").write_text(
        f"-- +goose Up\nCREATE TABLE p (v TEXT);\nINSERT INTO p VALUES ({marker});\n",
        encoding="utf-8",
    )
    result = migrate(target, migrations_dir, "up")
    assert result.returncode == 1
    message = result.stderr.strip()
    assert message.count("\n") == 0
    assert "00001_param.sql: statement 2 failed: " in message
    reason = message.split(" failed: ", 1)[1].split(" (statement: ")[0]
    assert f"parameter {name} has no value" in reason
    assert goose_versions(target) == [0]
    assert target.rows("SELECT name FROM sqlite_master WHERE name = 'p'") == []


PERCENTS = "100% %s %(x)s %% :y"


def test_percent_signs_reach_the_database_untouched(target: Target, migrations_dir: Path) -> None:
    # goose passes no arguments, so no driver formats the text: '%s' and '%(x)s' are text.
    (migrations_dir / "00001_pct.sql").write_text(
        "-- +goose Up\nCREATE TABLE pct (v varchar(40));\n"
        f"INSERT INTO pct VALUES ('{PERCENTS}');\n",
        encoding="utf-8",
    )
    result = migrate(target, migrations_dir, "up")
    assert result.returncode == 0, result.stderr
    assert target.rows("SELECT v FROM pct") == [(PERCENTS,)]


@pytest.mark.parametrize(
    "url",
    ["sqlite:///never-created.db", "postgres://u@127.0.0.1:1/x", "mysql://u@127.0.0.1:1/x"],
)
def test_percent_signs_untouched_in_the_offline_script(url: str, migrations_dir: Path) -> None:
    (migrations_dir / "00001_pct.sql").write_text(
        f"-- +goose Up\nINSERT INTO pct VALUES ('{PERCENTS}');\n", encoding="utf-8"
    )
    result = run_cli(
        "migrate", "up", "--sql", "--database-url", url, "--migrations-dir", str(migrations_dir)
    )
    assert result.returncode == 0, result.stderr
    assert f"INSERT INTO pct VALUES ('{PERCENTS}');\n" in result.stdout


# ---------------------------------------------------------------- output


def test_empty_section_prints_gooses_empty_line(
    sqlite_or_postgres: Target, migrations_dir: Path
) -> None:
    # goose: `log.Printf("EMPTY %s (%s)", name, duration)` when the section has no
    # statement, instead of "OK   ..."; the version row is written all the same.
    (migrations_dir / "00001_real.sql").write_text(
        "-- +goose Up\nCREATE TABLE r (x int);\n-- +goose Down\nDROP TABLE r;\n", encoding="utf-8"
    )
    (migrations_dir / "00002_empty.sql").write_text(
        "-- +goose Up\n-- nothing yet\n\n-- +goose Down\n", encoding="utf-8"
    )
    result = migrate(sqlite_or_postgres, migrations_dir, "up")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert re.fullmatch(r"OK   00001_real\.sql \(\d+\.\dms\)", lines[0]), lines
    assert re.fullmatch(r"EMPTY 00002_empty\.sql \(\d+\.\dms\)", lines[1]), lines
    assert goose_versions(sqlite_or_postgres) == [0, 1, 2]

    result = migrate(sqlite_or_postgres, migrations_dir, "down")
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"EMPTY 00002_empty\.sql \(\d+\.\dms\)", result.stdout.splitlines()[0])
    result = migrate(sqlite_or_postgres, migrations_dir, "down")
    assert re.fullmatch(r"OK   00001_real\.sql \(\d+\.\dms\)", result.stdout.splitlines()[0])
    assert goose_versions(sqlite_or_postgres) == [0]


# ---------------------------------------------------------------- checksums


@dataclass
class Gate:
    """Something a migration waits on until the test opens it."""

    up: str  # the file's Up section, which waits at the gate
    reached: Callable[[], bool]  # True once the run waits there (the file was read by then)
    open: Callable[[], None]
    no_transaction: bool = False


def _wait_for(condition: Callable[[], bool], process: subprocess.Popen) -> None:
    """Poll until `condition` holds; fail (not hang) if the run ends or takes minutes."""
    deadline = time.monotonic() + 120
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"the run ended before reaching the gate: {process.communicate()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("the run never reached the gate")
        time.sleep(0.05)


def _edit_during_run(target: Target, directory: Path, gate: Gate) -> None:
    """Run `up` in a real process; while it waits at the gate, edit its file."""
    path = directory / "00001_gated.sql"
    header = "-- +goose NO TRANSACTION\n" if gate.no_transaction else ""
    path.write_text(f"{header}-- +goose Up\n{gate.up}", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS_ENV}
    process = subprocess.Popen(
        [sys.executable, "-m", "llm_proxy", "migrate", "up", *target.args]
        + ["--migrations-dir", str(directory), "--lock-timeout", "120"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(gate.reached, process)
        path.write_text(path.read_text(encoding="utf-8") + "-- edited during the run\n")
    finally:
        gate.open()
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert out.startswith("OK   00001_gated.sql")


def _recorded_checksum_is_of_what_ran(target: Target, directory: Path) -> None:
    # The SQL that ran is the file as it was read: the edit came after, so it shows.
    status = migrate(target, directory, "status")
    assert "-- 00001_gated.sql (modified)" in status.stdout, status.stdout
    repaired = migrate(target, directory, "repair")
    assert "re-recorded checksum of 00001_gated.sql" in repaired.stdout
    assert "(modified)" not in migrate(target, directory, "status").stdout


def test_checksum_is_of_the_bytes_that_ran_sqlite(tmp_path: Path, migrations_dir: Path) -> None:
    target = _sqlite_target(tmp_path / "db" / "gated.db")
    gate_path = tmp_path / "gate.db"
    holder = sqlite3.connect(gate_path, isolation_level=None)
    holder.execute("CREATE TABLE t (x int)")
    holder.execute("BEGIN IMMEDIATE")  # the run's INSERT into it waits (busy timeout)

    def attached() -> bool:
        try:
            done = target.rows("SELECT statements_done FROM llm_proxy_partial_runs")
        except sqlite3.OperationalError:  # no table yet, or busy for a moment
            return False
        return bool(done) and done[0][0] >= 1

    def open_gate() -> None:
        holder.execute("ROLLBACK")
        holder.close()

    up = f"ATTACH DATABASE '{gate_path}' AS gate;\nINSERT INTO gate.t VALUES (1);\n"
    gate = Gate(up + "DETACH DATABASE gate;\n", attached, open_gate, no_transaction=True)
    _edit_during_run(target, migrations_dir, gate)
    _recorded_checksum_is_of_what_ran(target, migrations_dir)


def test_checksum_is_of_the_bytes_that_ran_postgres(
    postgres_url: str, migrations_dir: Path
) -> None:
    import psycopg

    target = _postgres_target(postgres_url)
    key = 424242
    holder = psycopg.connect(postgres_url, autocommit=True)
    holder.execute(f"SELECT pg_advisory_lock({key})")

    def waiting() -> bool:
        rows = target.rows(
            f"SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objid = {key}"
        )
        return bool(rows)

    def open_gate() -> None:
        holder.execute(f"SELECT pg_advisory_unlock({key})")
        holder.close()

    up = f"CREATE TABLE gated (x int);\nSELECT pg_advisory_xact_lock({key});\n"
    _edit_during_run(target, migrations_dir, Gate(up, waiting, open_gate))
    _recorded_checksum_is_of_what_ran(target, migrations_dir)
