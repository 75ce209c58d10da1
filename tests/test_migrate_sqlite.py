"""The migrate commands end to end on real SQLite files."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import (
    SQL_DIR,
    cli,
    goose_apply,
    settings_for,
    sqlite_dump,
    sqlite_rows,
    write_migration,
)

from llm_proxy import migrate

SHIPPED = sorted(p.name for p in SQL_DIR.glob("*.sql"))


def goose_versions(path: Path) -> list[tuple[int, int]]:
    return sqlite_rows(path, "SELECT version_id, is_applied FROM goose_db_version ORDER BY id")


def alembic_heads(path: Path) -> list[str]:
    return [r[0] for r in sqlite_rows(path, "SELECT version_num FROM alembic_version")]


def tables(path: Path) -> set[str]:
    return {r[0] for r in sqlite_rows(path, "SELECT name FROM sqlite_master WHERE type='table'")}


def test_up_on_fresh_database_applies_everything(sqlite_path: Path) -> None:
    result = cli("migrate", "up", "--db", str(sqlite_path))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [re.sub(r" \(\d+\.\dms\)$", "", line) for line in lines[:-1]] == [
        f"OK   {name}" for name in SHIPPED
    ]
    assert lines[-1] == "Migrations applied successfully"
    assert goose_versions(sqlite_path) == [(0, 1)] + [(v, 1) for v in range(1, 7)]
    assert alembic_heads(sqlite_path) == ["00006"]
    assert {"projects", "tokens", "audit_events"} <= tables(sqlite_path)
    columns = {r[1] for r in sqlite_rows(sqlite_path, "PRAGMA table_info(projects)")}
    assert "api_key" in columns and "openai_api_key" not in columns


def test_goose_table_has_gooses_exact_layout(sqlite_path: Path) -> None:
    cli("migrate", "up-to", "1", "--db", str(sqlite_path))
    info = sqlite_rows(sqlite_path, "PRAGMA table_info(goose_db_version)")
    # (name, type, notnull, default, pk)
    assert [(r[1], r[2], r[3], r[4], r[5]) for r in info] == [
        ("id", "INTEGER", 0, None, 1),
        ("version_id", "INTEGER", 1, None, 0),
        ("is_applied", "INTEGER", 1, None, 0),
        ("tstamp", "TIMESTAMP", 0, "datetime('now')", 0),
    ]
    sql = sqlite_rows(sqlite_path, "SELECT sql FROM sqlite_master WHERE name='goose_db_version'")
    assert "AUTOINCREMENT" in sql[0][0]
    assert goose_versions(sqlite_path) == [(0, 1), (1, 1)]


def test_second_up_is_a_no_op(sqlite_path: Path) -> None:
    cli("migrate", "up", "--db", str(sqlite_path))
    before = sqlite_dump(sqlite_path)
    result = cli("migrate", "up", "--db", str(sqlite_path))
    assert result.exit_code == 0
    assert "no migrations to run. current version: 6" in result.stdout
    assert sqlite_dump(sqlite_path) == before


def test_default_path_and_parent_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = cli("migrate", "up")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "data" / "llm-proxy.db").is_file()


def test_database_path_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "nested" / "deeper" / "env.db"
    monkeypatch.setenv("DATABASE_PATH", str(target))
    assert cli("migrate", "up").exit_code == 0
    assert goose_versions(target)[-1] == (6, 1)
    # A flag beats the environment.
    other = tmp_path / "flag.db"
    assert cli("migrate", "up-to", "2", "--db", str(other)).exit_code == 0
    assert goose_versions(other)[-1] == (2, 1)
    assert goose_versions(target)[-1] == (6, 1)


def test_down_down_to_redo_reset_and_version(sqlite_path: Path) -> None:
    db = str(sqlite_path)
    cli("migrate", "up", "--db", db)

    result = cli("migrate", "down", "--db", db)
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0].startswith("OK   00006_extend_audit_outcome.sql")
    assert result.stdout.splitlines()[-1] == "Migration rolled back successfully"
    assert cli("migrate", "version", "--db", db).stdout == "Current migration version: 5\n"
    assert [v for v, _ in goose_versions(sqlite_path)] == [0, 1, 2, 3, 4, 5]

    assert cli("migrate", "down-to", "2", "--db", db).exit_code == 0
    assert cli("migrate", "version", "--db", db).stdout == "Current migration version: 2\n"
    assert alembic_heads(sqlite_path) == ["00002"]

    result = cli("migrate", "redo", "--db", db)
    assert result.exit_code == 0
    assert [line[:35] for line in result.stdout.splitlines()[:2]] == [
        "OK   00002_add_deactivated_at.sql (",
        "OK   00002_add_deactivated_at.sql (",
    ]
    assert [v for v, _ in goose_versions(sqlite_path)] == [0, 1, 2]

    assert cli("migrate", "up-to", "00004", "--db", db).exit_code == 0
    assert cli("migrate", "version", "--db", db).stdout == "Current migration version: 4\n"

    assert cli("migrate", "reset", "--db", db).exit_code == 0
    assert goose_versions(sqlite_path) == [(0, 1)]
    assert alembic_heads(sqlite_path) == []
    assert not {"projects", "tokens", "audit_events"} & tables(sqlite_path)


def test_down_at_version_zero_fails_cleanly(sqlite_path: Path) -> None:
    cli("migrate", "up-to", "1", "--db", str(sqlite_path))
    cli("migrate", "down", "--db", str(sqlite_path))
    before = sqlite_dump(sqlite_path)
    result = cli("migrate", "down", "--db", str(sqlite_path))
    assert result.exit_code == 1
    assert (
        result.stderr.strip() == "Error: no migrations to roll back: the database is at version 0"
    )
    assert sqlite_dump(sqlite_path) == before


def test_status_layout(sqlite_path: Path) -> None:
    cli("migrate", "up-to", "3", "--db", str(sqlite_path))
    lines = cli("migrate", "status", "--db", str(sqlite_path)).stdout.splitlines()
    assert lines[0] == "    Applied At                  Migration"
    assert lines[1] == "    " + "=" * 39
    assert len(lines) == 2 + len(SHIPPED)
    for line, name in zip(lines[2:5], SHIPPED[:3], strict=True):
        assert re.fullmatch(rf"    \w{{3}} \w{{3}} [ \d]\d \d\d:\d\d:\d\d \d{{4}} -- {name}", line)
    for line, name in zip(lines[5:], SHIPPED[3:], strict=True):
        assert line == f"    Pending                  -- {name}"


def test_status_on_missing_database_does_not_create_it(sqlite_path: Path) -> None:
    result = cli("migrate", "status", "--db", str(sqlite_path))
    assert result.exit_code == 0
    assert all("Pending" in line for line in result.stdout.splitlines()[2:])
    assert not sqlite_path.exists()
    assert cli("migrate", "version", "--db", str(sqlite_path)).stdout.endswith(": 0\n")


def test_rows_survive_down_and_up(sqlite_path: Path) -> None:
    db = str(sqlite_path)
    cli("migrate", "up", "--db", db)
    connection = sqlite3.connect(sqlite_path)
    with connection:
        connection.execute("INSERT INTO projects (id, name, api_key) VALUES ('p1', 'one', 'k')")
        connection.execute("INSERT INTO tokens (token, project_id) VALUES ('t1', 'p1')")
    connection.close()
    assert cli("migrate", "down-to", "1", "--db", db).exit_code == 0
    assert sqlite_rows(sqlite_path, "SELECT id, openai_api_key FROM projects") == [("p1", "k")]
    assert sqlite_rows(sqlite_path, "SELECT token FROM tokens") == [("t1",)]
    assert cli("migrate", "up", "--db", db).exit_code == 0
    assert sqlite_rows(sqlite_path, "SELECT id, api_key FROM projects") == [("p1", "k")]
    (token_id,) = sqlite_rows(sqlite_path, "SELECT id FROM tokens WHERE token = 't1'")[0]
    assert re.fullmatch(
        r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", token_id
    )


def test_failed_migration_leaves_both_version_tables_unchanged(
    sqlite_path: Path, shipped_sqlite_dir: Path
) -> None:
    db = str(sqlite_path)
    cli("migrate", "up", "--db", db, "--migrations-dir", str(shipped_sqlite_dir))
    write_migration(
        shipped_sqlite_dir,
        "00007_broken.sql",
        "CREATE TABLE added_then_undone (id INTEGER);\n"
        "INSERT INTO projects (id, name, api_key) VALUES ('x', 'x', 'x');\n"
        "INSERT INTO no_such_table VALUES (1);",
        "DROP TABLE added_then_undone;",
    )
    before = sqlite_dump(sqlite_path)
    result = cli("migrate", "up", "--db", db, "--migrations-dir", str(shipped_sqlite_dir))
    assert result.exit_code == 1
    message = result.stderr.strip()
    assert message.count("\n") == 0
    assert "00007_broken.sql: statement 3 failed" in message
    assert "no such table: no_such_table" in message
    assert "INSERT INTO no_such_table" in message
    assert sqlite_dump(sqlite_path) == before
    assert alembic_heads(sqlite_path) == ["00006"]


def test_failure_mid_run_keeps_earlier_migrations(sqlite_path: Path, migrations_dir: Path) -> None:
    write_migration(migrations_dir, "00001_a.sql", "CREATE TABLE a (id INTEGER);", "DROP TABLE a;")
    write_migration(migrations_dir, "00002_b.sql", "CREATE TABLE b (id INTEGER);\nBOGUS;", "")
    result = cli("migrate", "up", "--db", str(sqlite_path), "--migrations-dir", str(migrations_dir))
    assert result.exit_code == 1
    assert result.stdout.startswith("OK   00001_a.sql")
    assert goose_versions(sqlite_path) == [(0, 1), (1, 1)]
    assert alembic_heads(sqlite_path) == ["00001"]
    assert "b" not in tables(sqlite_path)


def test_malformed_file_stops_before_anything_runs(sqlite_path: Path, migrations_dir: Path) -> None:
    write_migration(migrations_dir, "00001_a.sql", "CREATE TABLE a (id INTEGER);", "DROP TABLE a;")
    (migrations_dir / "00002_bad.sql").write_text(
        "-- +goose Up\n-- +goose StatementBegin\nCREATE TABLE b (id INTEGER);\n", encoding="utf-8"
    )
    result = cli("migrate", "up", "--db", str(sqlite_path), "--migrations-dir", str(migrations_dir))
    assert result.exit_code == 1
    assert f"{migrations_dir / '00002_bad.sql'}:" in result.stderr
    assert "StatementEnd" in result.stderr
    assert not sqlite_path.exists()


def test_missing_migrations_directory(sqlite_path: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    result = cli("migrate", "up", "--db", str(sqlite_path), "--migrations-dir", str(missing))
    assert result.exit_code == 1
    assert result.stderr.strip() == f"Error: migrations directory not found: {missing}"
    assert not sqlite_path.exists()


def test_not_a_sqlite_file(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.db"
    bogus.write_bytes(b"this is not a database, just some text" * 100)
    content = bogus.read_bytes()
    result = cli("migrate", "up", "--db", str(bogus))
    assert result.exit_code == 1
    assert "not a database" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert bogus.read_bytes() == content


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(writable dir, the same dir read-only). Root ignores file modes, so as root
    the read-only view is a read-only bind mount."""
    import os
    import subprocess

    source = tmp_path / "rw"
    source.mkdir()
    if os.geteuid() != 0:
        yield source, source
        source.chmod(0o755)
        return
    view = tmp_path / "ro"
    view.mkdir()
    mounted = subprocess.run(["mount", "--bind", str(source), str(view)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot bind-mount as root here: {mounted.stderr.decode().strip()}")
    try:
        remount = subprocess.run(["mount", "-o", "remount,ro,bind", str(view)], capture_output=True)
        if remount.returncode != 0:
            pytest.skip(f"cannot remount read-only: {remount.stderr.decode().strip()}")
        yield source, view
    finally:
        subprocess.run(["umount", str(view)], capture_output=True)


def test_read_only_database(read_only_dir: tuple[Path, Path]) -> None:
    import os

    writable, read_only = read_only_dir
    assert cli("migrate", "up-to", "3", "--db", str(writable / "ro.db")).exit_code == 0
    if writable == read_only:
        (writable / "ro.db").chmod(0o444)
        writable.chmod(0o555)
    before = sqlite_dump(writable / "ro.db")
    assert os.access(read_only / "ro.db", os.R_OK)
    result = cli("migrate", "up", "--db", str(read_only / "ro.db"))
    assert result.exit_code == 1, result.stdout
    assert len(result.stderr.strip().splitlines()) == 1
    assert f"SQLite database {read_only / 'ro.db'} is not writable" in result.stderr
    assert sqlite_dump(writable / "ro.db") == before


def test_unreadable_file(sqlite_path: Path, migrations_dir: Path) -> None:
    (migrations_dir / "00001_latin1.sql").write_bytes(
        b"-- +goose Up\nINSERT INTO t VALUES ('caf\xe9');\n"
    )
    result = cli("migrate", "up", "--db", str(sqlite_path), "--migrations-dir", str(migrations_dir))
    assert result.exit_code == 1
    assert "00001_latin1.sql: not valid UTF-8" in result.stderr
    assert not sqlite_path.exists()


def test_no_transaction_file_runs_outside_a_transaction(
    sqlite_path: Path, migrations_dir: Path
) -> None:
    # VACUUM fails inside a transaction; it works only if NO TRANSACTION is honoured.
    write_migration(migrations_dir, "00001_t.sql", "CREATE TABLE t (id INTEGER);", "DROP TABLE t;")
    write_migration(
        migrations_dir, "00002_vacuum.sql", "VACUUM;", "VACUUM;", extra="-- +goose NO TRANSACTION\n"
    )
    args = ("--db", str(sqlite_path), "--migrations-dir", str(migrations_dir))
    result = cli("migrate", "up", *args)
    assert result.exit_code == 0, result.stderr
    assert goose_versions(sqlite_path)[-1] == (2, 1)
    assert cli("migrate", "down", *args).exit_code == 0
    assert goose_versions(sqlite_path)[-1] == (1, 1)

    write_migration(migrations_dir, "00003_vacuum_in_tx.sql", "VACUUM;", "")
    cli("migrate", "up-to", "2", *args)
    result = cli("migrate", "up", *args)
    assert result.exit_code == 1
    assert "00003_vacuum_in_tx.sql: statement 1 failed" in result.stderr
    assert goose_versions(sqlite_path)[-1] == (2, 1)


def test_statement_block_with_several_statements_and_trigger(
    sqlite_path: Path, migrations_dir: Path
) -> None:
    write_migration(
        migrations_dir,
        "00001_trigger.sql",
        "CREATE TABLE t (id INTEGER, seen INTEGER DEFAULT 0);\n"
        "CREATE TABLE log (id INTEGER);\n"
        "-- +goose StatementBegin\n"
        "CREATE TRIGGER t_log AFTER INSERT ON t BEGIN\n"
        "  INSERT INTO log VALUES (NEW.id);\n"
        "  UPDATE t SET seen = 1 WHERE id = NEW.id;\n"
        "END;\n"
        "INSERT INTO t (id) VALUES (7);\n"
        "-- +goose StatementEnd",
        "DROP TABLE log;\nDROP TABLE t;",
    )
    result = cli("migrate", "up", "--db", str(sqlite_path), "--migrations-dir", str(migrations_dir))
    assert result.exit_code == 0, result.stderr
    assert sqlite_rows(sqlite_path, "SELECT id FROM log") == [(7,)]
    assert sqlite_rows(sqlite_path, "SELECT id, seen FROM t") == [(7, 1)]


def test_adopts_a_database_migrated_only_by_goose(sqlite_path: Path) -> None:
    for name in SHIPPED[:4]:
        goose_apply(sqlite_path, SQL_DIR / name)
    assert "alembic_version" not in tables(sqlite_path)
    status_lines = cli("migrate", "status", "--db", str(sqlite_path)).stdout.splitlines()[2:]
    assert ["Pending" in line for line in status_lines] == [False] * 4 + [True] * 2

    result = cli("migrate", "up", "--db", str(sqlite_path))
    assert result.exit_code == 0, result.stderr
    assert [line.split()[1] for line in result.stdout.splitlines()[:-1]] == SHIPPED[4:]
    assert goose_versions(sqlite_path) == [(0, 1)] + [(v, 1) for v in range(1, 7)]
    assert alembic_heads(sqlite_path) == ["00006"]


def test_goose_running_after_us_wins(sqlite_path: Path) -> None:
    db = str(sqlite_path)
    cli("migrate", "up-to", "4", "--db", db)
    goose_apply(sqlite_path, SQL_DIR / SHIPPED[4])  # goose applies 00005 behind our back
    result = cli("migrate", "up", "--db", db)
    assert [line.split()[1] for line in result.stdout.splitlines()[:-1]] == [SHIPPED[5]]
    assert alembic_heads(sqlite_path) == ["00006"]

    goose_apply(sqlite_path, SQL_DIR / SHIPPED[5], "down")  # and rolls 00006 back
    assert cli("migrate", "version", "--db", db).stdout == "Current migration version: 5\n"
    assert cli("migrate", "status", "--db", db).stdout.splitlines()[-1].startswith("    Pending")
    result = cli("migrate", "up", "--db", db)
    assert [line.split()[1] for line in result.stdout.splitlines()[:-1]] == [SHIPPED[5]]
    assert goose_versions(sqlite_path)[-1] == (6, 1)
    assert alembic_heads(sqlite_path) == ["00006"]


def test_missing_migrations_refused_then_allowed(sqlite_path: Path, migrations_dir: Path) -> None:
    for n in (1, 2, 3):
        write_migration(
            migrations_dir,
            f"0000{n}_t{n}.sql",
            f"CREATE TABLE t{n} (id INTEGER);",
            f"DROP TABLE t{n};",
        )
    goose_apply(sqlite_path, migrations_dir / "00001_t1.sql")
    goose_apply(sqlite_path, migrations_dir / "00003_t3.sql")  # goose -allow-missing style gap
    args = ("--db", str(sqlite_path), "--migrations-dir", str(migrations_dir))
    before = sqlite_dump(sqlite_path)
    result = cli("migrate", "up", *args)
    assert result.exit_code == 1
    assert "found 1 missing migrations before current version 3: 00002_t2.sql" in result.stderr
    assert sqlite_dump(sqlite_path) == before

    result = cli("migrate", "up", "--allow-missing", *args)
    assert result.exit_code == 0, result.stderr
    assert [line.split()[1] for line in result.stdout.splitlines()[:-1]] == ["00002_t2.sql"]
    assert sorted(v for v, _ in goose_versions(sqlite_path)) == [0, 1, 2, 3]
    assert alembic_heads(sqlite_path) == ["00003"]


def test_python_api_matches_cli(sqlite_settings) -> None:
    result = migrate.up(sqlite_settings)
    assert result.version == 6
    assert result.applied == [f"0000{n}" for n in range(1, 7)]
    report = migrate.status(sqlite_settings)
    assert [row.state for row in report.rows] == ["applied"] * 6
    assert migrate.down(sqlite_settings) == 5
    assert migrate.version(sqlite_settings) == 5


def test_settings_never_show_a_password() -> None:
    settings = settings_for(database_url="postgres://app:s3cret@db.example:5432/llm")
    assert "s3cret" not in settings.display_url
    assert settings.url.startswith("postgresql+psycopg://")
