"""`llm-proxy setup`: create the database, apply migrations, warn (exit 0) when they fail."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest
from conftest import SQL_DIR, cli, run_cli, sqlite_dump, sqlite_rows, write_migration

HEAD = [(0, 1)] + [(v, 1) for v in range(1, 7)]
SUCCESS = "Database migrations applied successfully"
WARNING = "Warning: Failed to run migrations during setup: "
ADVICE = "You can run migrations manually later with: llm-proxy migrate up"


def goose_versions(path: Path) -> list[tuple[int, int]]:
    return sqlite_rows(path, "SELECT version_id, is_applied FROM goose_db_version ORDER BY id")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def without_timings(lines: list[str]) -> list[str]:
    return [re.sub(r" \(\d+\.\dms\)$", "", line) for line in lines]


def test_setup_creates_owner_only_database_at_head(tmp_path: Path) -> None:
    path = tmp_path / "data" / "nested" / "llm-proxy.db"
    result = cli("setup", "--db", str(path))
    assert result.exit_code == 0, result.output
    assert without_timings(result.stdout.splitlines()) == [
        f"Created SQLite database {path}",
        *(f"OK   {p.name}" for p in sorted(SQL_DIR.glob("*.sql"))),
        SUCCESS,
    ]
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    assert goose_versions(path) == HEAD

    before = sqlite_dump(path)
    again = cli("setup", "--db", str(path))
    assert again.exit_code == 0, again.output
    assert again.stdout.splitlines() == [
        f"Using existing SQLite database {path}",
        "goose: no migrations to run. current version: 6",
        SUCCESS,
    ]
    assert sqlite_dump(path) == before


def test_setup_keeps_the_permissions_of_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    path.touch()
    path.chmod(0o640)
    result = cli("setup", "--db", str(path))
    assert result.exit_code == 0, result.output
    assert mode(path) == 0o640
    assert goose_versions(path) == HEAD


BROKEN = {
    # Fails in the database after its first statement ran: the transaction must undo it.
    "sql_error": (
        "CREATE TABLE widgets (id INTEGER);\nINSERT INTO no_such_table VALUES (1);",
        "no such table: no_such_table",
    ),
    # Fails to parse: nothing may run at all.
    "parse_error": ("CREATE TABLE widgets (id INTEGER)", "00007_broken.sql"),
}


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_setup_with_broken_migration_warns_and_changes_nothing(
    kind: str, sqlite_path: Path, shipped_sqlite_dir: Path
) -> None:
    args = ("--db", str(sqlite_path), "--migrations-dir", str(shipped_sqlite_dir))
    assert cli("migrate", "up", *args).exit_code == 0
    up_sql, reason_part = BROKEN[kind]
    write_migration(shipped_sqlite_dir, "00007_broken.sql", up_sql, "DROP TABLE widgets;")
    before = sqlite_dump(sqlite_path)

    result = run_cli("setup", *args)  # a real process: the exit status is the point

    assert result.returncode == 0, result.stderr
    warning, advice = result.stderr.splitlines()
    assert warning.startswith(WARNING) and reason_part in warning
    assert advice == ADVICE
    assert SUCCESS not in result.stdout
    assert sqlite_dump(sqlite_path) == before


def test_setup_on_fresh_path_with_broken_first_migration_still_creates_the_file(
    sqlite_path: Path, migrations_dir: Path
) -> None:
    write_migration(migrations_dir, "00001_broken.sql", "CREATE TABLE t (")
    result = cli("setup", "--db", str(sqlite_path), "--migrations-dir", str(migrations_dir))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [f"Created SQLite database {sqlite_path}"]
    assert result.stderr.splitlines()[0].startswith(WARNING + str(migrations_dir))
    assert result.stderr.splitlines()[1] == ADVICE
    assert mode(sqlite_path) == 0o600


def test_setup_on_database_newer_than_code_warns(
    sqlite_path: Path, shipped_sqlite_dir: Path
) -> None:
    write_migration(shipped_sqlite_dir, "00007_newer.sql", "CREATE TABLE newer (id INTEGER);")
    newer_code = ("--db", str(sqlite_path), "--migrations-dir", str(shipped_sqlite_dir))
    assert cli("migrate", "up", *newer_code).exit_code == 0
    before = sqlite_dump(sqlite_path)
    result = cli("setup", "--db", str(sqlite_path))
    assert result.exit_code == 0
    assert result.stderr.splitlines() == [
        WARNING + "database is at version 7, newer than this llm-proxy's migrations "
        "(latest 6): deploy the newer llm-proxy, or roll the database back with it "
        "(llm-proxy migrate down-to 6)",
        ADVICE,
    ]
    assert sqlite_dump(sqlite_path) == before


def test_setup_rejects_a_file_that_is_not_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("not a database, just text " * 100, encoding="utf-8")
    result = cli("setup", "--db", str(path))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"Error: cannot open SQLite database {path}: file is not a database"
    ]


def test_setup_postgres_applies_migrations(postgres_url: str) -> None:
    import psycopg

    result = cli("setup", "--database-url", postgres_url)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    name = postgres_url.rsplit("/", 1)[1]
    assert lines[0] == f"Connected to PostgreSQL at 127.0.0.1:5432/{name}"
    assert lines[-1] == SUCCESS
    with psycopg.connect(postgres_url) as connection:
        rows = connection.execute(
            "SELECT version_id, is_applied FROM goose_db_version ORDER BY id"
        ).fetchall()
    assert rows == [(v, True) for v in range(7)]


def test_setup_unreachable_server_is_an_error_without_password() -> None:
    result = cli("setup", "--database-url", "postgres://app:s3cret@127.0.0.1:1/llm")
    assert result.exit_code == 1
    assert "s3cret" not in result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith("Error: cannot connect to PostgreSQL at 127.0.0.1:1/llm: ")
