"""`llm-proxy migrate up-by-one`: the next pending migration only, as goose's up-by-one."""

from __future__ import annotations

from pathlib import Path

from conftest import cli, sqlite_rows, write_migration


def test_up_by_one_applies_one_then_refuses_when_nothing_is_left(tmp_path: Path) -> None:
    directory = tmp_path / "sql"
    directory.mkdir()
    write_migration(directory, "00001_a.sql", "CREATE TABLE a (id INTEGER);", "DROP TABLE a;")
    write_migration(directory, "00002_b.sql", "CREATE TABLE b (id INTEGER);", "DROP TABLE b;")
    db = tmp_path / "x.db"
    args = ("--db", str(db), "--migrations-dir", str(directory))
    first = cli("migrate", "up-by-one", *args)
    assert first.exit_code == 0 and "OK   00001_a.sql" in first.output
    assert sqlite_rows(db, "SELECT version_id FROM goose_db_version") == [(0,), (1,)]
    assert cli("migrate", "up-by-one", *args).exit_code == 0
    assert sqlite_rows(db, "SELECT version_id FROM goose_db_version") == [(0,), (1,), (2,)]
    last = cli("migrate", "up-by-one", *args)
    assert last.exit_code == 1
    assert "goose: no migrations to run. current version: 2" in last.stdout
    assert last.stderr.strip() == ("Error: no next version found: nothing to apply above version 2")
