"""Duplicate and inconsistent goose_db_version rows, shown by `status` and
`validate --check-db`.

goose takes no lock, so goose `up` and llm-proxy `up` started together on one
database can both apply every file: rows 0, 1, 1, 2, 2 and data changed twice.
The rows are inserted directly here, as such a race leaves them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from any_database import Database, database_fixture  # noqa: F401 (provides `database`)
from conftest import cli, write_migration


@pytest.fixture
def migrated(database: Database, migrations_dir: Path) -> tuple[Database, tuple[str, ...]]:
    """`database` with 00001 and 00002 applied by llm-proxy; the options naming it."""
    write_migration(migrations_dir, "00001_a.sql", "CREATE TABLE a (id INTEGER);", "DROP TABLE a;")
    write_migration(migrations_dir, "00002_b.sql", "CREATE TABLE b (id INTEGER);", "DROP TABLE b;")
    where = (*database.options, "--migrations-dir", str(migrations_dir))
    result = cli("migrate", "up", *where)
    assert result.exit_code == 0, result.stderr
    return database, where


def insert_rows(database: Database, *rows: tuple[int, bool]) -> None:
    for version, applied in rows:
        database.sql(
            "INSERT INTO goose_db_version (version_id, is_applied) "
            f"VALUES ({version}, {'TRUE' if applied else 'FALSE'})"
        )


def warnings(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("warning: ")]


def problems(where: tuple[str, ...]) -> list[dict]:
    result = cli("migrate", "status", "--json", *where)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)["goose_row_problems"]


def validate(where: tuple[str, ...], *extra: str):
    return cli("migrate", "validate", "--check-db", *where, *extra)


def test_clean_database_has_no_row_problems(migrated: tuple[Database, tuple[str, ...]]) -> None:
    _, where = migrated
    status = cli("migrate", "status", *where)
    assert warnings(status.stdout) == []
    assert problems(where) == []
    result = validate(where)
    assert result.exit_code == 0, result.stdout
    assert result.stdout.splitlines()[-1].endswith(": 0 problems")
    assert "-row]" not in result.stdout and "[unknown-version]" not in result.stdout


def test_rows_of_a_race_with_goose_are_reported(
    migrated: tuple[Database, tuple[str, ...]],
) -> None:
    database, where = migrated
    insert_rows(database, (1, True), (2, True))  # what the other migrator wrote

    status = cli("migrate", "status", *where)
    assert status.exit_code == 0, status.stderr
    found = warnings(status.stdout)
    assert len(found) == 2
    assert found[0].startswith("warning: version 1 is recorded as applied 2 times")
    assert found[1].startswith("warning: version 2 is recorded as applied 2 times")

    listed = problems(where)
    assert [(p["kind"], p["version"], len(p["row_ids"])) for p in listed] == [
        ("duplicate", 1, 2),
        ("duplicate", 2, 2),
    ]
    assert all(p["message"].startswith(f"version {p['version']} ") for p in listed)

    result = validate(where)
    assert result.exit_code == 1
    errors = [line for line in result.stdout.splitlines() if "[duplicate-row]" in line]
    assert len(errors) == 2 and all(": error: version " in line for line in errors)


def test_rolled_back_row_of_an_older_goose_says_what_is_current(
    migrated: tuple[Database, tuple[str, ...]],
) -> None:
    database, where = migrated
    insert_rows(database, (2, False))

    status = cli("migrate", "status", *where)
    (line,) = warnings(status.stdout)
    assert line.startswith("warning: version 2 was rolled back by an older goose")
    assert "current version is 1, not 2" in line
    assert [(p["kind"], p["version"]) for p in problems(where)] == [("rolled back", 2)]

    result = validate(where)
    assert result.exit_code == 0, result.stdout  # a warning: valid, but worth knowing
    assert "[rolled-back-row]" in result.stdout
    assert validate(where, "--strict").exit_code == 1


def test_applied_version_without_file_is_reported(
    migrated: tuple[Database, tuple[str, ...]],
) -> None:
    database, where = migrated
    insert_rows(database, (7, True))
    status = cli("migrate", "status", *where)
    assert status.stdout.splitlines()[-1].endswith("-- version 7 (no file)")
    assert warnings(status.stdout) == []  # the row says it
    listed = problems(where)
    assert [(p["kind"], p["version"]) for p in listed] == [("no file", 7)]
    assert listed[0]["message"].startswith("version 7 is applied")
    result = validate(where)
    assert result.exit_code == 1
    assert "[unknown-version]" in result.stdout


def test_check_db_of_a_missing_sqlite_file_cannot_run(tmp_path: Path, migrations_dir: Path) -> None:
    write_migration(migrations_dir, "00001_a.sql", "SELECT 1;")
    missing = tmp_path / "nope.db"
    result = cli("migrate", "validate", "--check-db", "--db", str(missing), "--migrations-dir",
                 str(migrations_dir))  # fmt: skip
    assert result.exit_code == 2
    assert str(missing) in result.stderr
    assert not missing.exists()
