"""Contradictory or meaningless flag combinations of the migrate commands.

Each refused combination is one `Error:` line naming both flags, exit code 2
(a usage error), and nothing touched: no database file, no new migration.
Each accepted combination does what it says.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import cli, sqlite_rows, write_migration
from test_models import copy_project

REFUSED = [
    # --from says where the database is for an offline script; without --sql the
    # database says it, so the flag would be silently ignored.
    (("up", "--from", "1"), "--from", "--sql"),
    (("up-to", "2", "--from", "1"), "--from", "--sql"),
    (("down", "--from", "2"), "--from", "--sql"),
    (("down-to", "0", "--from", "2"), "--from", "--sql"),
    (("up", "--dry-run", "--from", "1"), "--from", "--sql"),
    # --dry-run lists files from the database's state; --sql prints a script
    # without one: one would silently win.
    (("up", "--dry-run", "--sql"), "--dry-run", "--sql"),
    (("up-to", "2", "--dry-run", "--sql"), "--dry-run", "--sql"),
    (("down", "--dry-run", "--sql"), "--dry-run", "--sql"),
    (("down-to", "0", "--dry-run", "--sql"), "--dry-run", "--sql"),
    # --sql reads no database: nothing can be missing or have a checksum.
    (("up", "--sql", "--allow-missing"), "--allow-missing", "--sql"),
    (("up-to", "2", "--sql", "--allow-missing"), "--allow-missing", "--sql"),
    (("up", "--sql", "--ignore-checksums"), "--ignore-checksums", "--sql"),
    (("up-to", "2", "--sql", "--ignore-checksums"), "--ignore-checksums", "--sql"),
    # create: one kind and one numbering; the last flag used to win silently.
    (("create", "x", "--sql", "--python"), "--sql", "--python"),
    (("create", "x", "--sequential", "--timestamp"), "--sequential", "--timestamp"),
    (("create", "x", "--python", "--timestamp"), "--python", "--timestamp"),
    (("create", "x", "--python", "--sequential"), "--python", "--sequential"),
]


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """(database path, migrations directory with two files); the database is not made.
    The working directory is a project copy: a `create` that wrongly ran writes there."""
    monkeypatch.chdir(copy_project(tmp_path / "project"))
    directory = tmp_path / "migrations"
    directory.mkdir()
    write_migration(directory, "00001_a.sql", "CREATE TABLE a (id INTEGER);", "DROP TABLE a;")
    write_migration(directory, "00002_b.sql", "CREATE TABLE b (id INTEGER);", "DROP TABLE b;")
    return tmp_path / "x.db", directory


@pytest.mark.parametrize(
    ("args", "first", "second"), REFUSED, ids=[" ".join(a) for a, _, _ in REFUSED]
)
def test_refused_combination_is_one_usage_error_naming_both_flags(
    workspace: tuple[Path, Path], args: tuple[str, ...], first: str, second: str
) -> None:
    db, directory = workspace
    before = sorted(p.name for p in directory.iterdir())
    result = cli("migrate", *args, "--db", str(db), "--migrations-dir", str(directory))
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert first in lines[0] and second in lines[0]
    assert result.stdout == ""
    assert not db.exists()
    assert sorted(p.name for p in directory.iterdir()) == before
    assert [p.name for p in Path("alembic/versions").glob("*.py")] == []


ACCEPTED = [
    ("up", "--sql", "--from", "1"),
    ("up-to", "2", "--sql", "--from", "1"),
    ("down", "--sql", "--from", "2"),
    ("down-to", "0", "--sql", "--from", "2"),
    ("up", "--dry-run", "--allow-missing"),
    ("up", "--dry-run", "--ignore-checksums"),  # previews the command as it will run
    ("up", "--allow-missing", "--ignore-checksums"),
]


@pytest.mark.parametrize("args", ACCEPTED, ids=[" ".join(a) for a in ACCEPTED])
def test_accepted_combination_runs(workspace: tuple[Path, Path], args: tuple[str, ...]) -> None:
    db, directory = workspace
    result = cli("migrate", *args, "--db", str(db), "--migrations-dir", str(directory))
    assert result.exit_code == 0, result.stderr


def test_up_sql_from_starts_the_script_at_that_version(workspace: tuple[Path, Path]) -> None:
    db, directory = workspace
    result = cli(
        "migrate", "up", "--sql", "--from", "1", "--db", str(db), "--migrations-dir", str(directory)
    )
    assert "CREATE TABLE b" in result.stdout and "CREATE TABLE a" not in result.stdout
    assert not db.exists()


def test_up_without_sql_refuses_from_instead_of_applying_everything(
    workspace: tuple[Path, Path],
) -> None:
    db, directory = workspace
    refused = cli(
        "migrate", "up", "--from", "3", "--db", str(db), "--migrations-dir", str(directory)
    )
    assert refused.exit_code == 2
    applied = cli("migrate", "up", "--db", str(db), "--migrations-dir", str(directory))
    assert applied.exit_code == 0
    assert sqlite_rows(db, "SELECT version_id FROM goose_db_version ORDER BY id") == [
        (0,),
        (1,),
        (2,),
    ]
