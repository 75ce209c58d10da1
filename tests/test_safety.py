"""Checksums, dry runs, offline SQL, JSON status and the no-Alembic fast path."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

from conftest import REPO, SQL_DIR, cli, goose_apply, sqlite_dump, sqlite_rows, write_migration

from llm_proxy.revisions import sources


def args(db: Path, migrations: Path) -> tuple[str, ...]:
    return ("--db", str(db), "--migrations-dir", str(migrations))


def test_modified_file_is_flagged_and_blocks_up_until_repaired(
    sqlite_path: Path, shipped_sqlite_dir: Path
) -> None:
    a = args(sqlite_path, shipped_sqlite_dir)
    assert cli("migrate", "up-to", "3", *a).exit_code == 0
    edited = shipped_sqlite_dir / "00002_add_deactivated_at.sql"
    edited.write_text(edited.read_text() + "\n-- a later edit\n")

    status = cli("migrate", "status", *a).stdout.splitlines()
    assert status[3].endswith("-- 00002_add_deactivated_at.sql (modified)")
    assert not status[2].endswith("(modified)")

    before = sqlite_dump(sqlite_path)
    result = cli("migrate", "up", *a)
    assert result.exit_code == 1
    assert "00002_add_deactivated_at.sql changed after it was applied" in result.stderr
    assert "llm-proxy migrate repair" in result.stderr
    assert sqlite_dump(sqlite_path) == before

    repaired = cli("migrate", "repair", *a)
    assert repaired.exit_code == 0
    assert "re-recorded checksum of 00002_add_deactivated_at.sql" in repaired.stdout
    assert "(modified)" not in cli("migrate", "status", *a).stdout
    assert cli("migrate", "up", *a).exit_code == 0


def test_ignore_checksums_runs_past_a_modified_file(
    sqlite_path: Path, shipped_sqlite_dir: Path
) -> None:
    a = args(sqlite_path, shipped_sqlite_dir)
    cli("migrate", "up-to", "2", *a)
    edited = shipped_sqlite_dir / "00001_initial_schema.sql"
    edited.write_text(edited.read_text() + "\n-- edit\n")
    result = cli("migrate", "up", "--ignore-checksums", *a)
    assert result.exit_code == 0, result.stderr
    assert cli("migrate", "version", *a).stdout.endswith(": 6\n")


def test_checksums_recorded_when_adopting_a_goose_database(
    sqlite_path: Path, shipped_sqlite_dir: Path
) -> None:
    for name in sorted(p.name for p in shipped_sqlite_dir.glob("*.sql"))[:3]:
        goose_apply(sqlite_path, shipped_sqlite_dir / name)
    assert cli("migrate", "up", *args(sqlite_path, shipped_sqlite_dir)).exit_code == 0
    recorded = dict(sqlite_rows(sqlite_path, "SELECT revision, checksum FROM llm_proxy_migrations"))
    assert sorted(recorded) == [f"0000{n}" for n in range(1, 7)]
    from llm_proxy.store.journal import file_checksum

    assert recorded["00001"] == file_checksum(shipped_sqlite_dir / "00001_initial_schema.sql")
    # goose keeps working beside our table: it rolls back and re-applies 00006.
    goose_apply(sqlite_path, shipped_sqlite_dir / "00006_extend_audit_outcome.sql", "down")
    result = cli("migrate", "up", *args(sqlite_path, shipped_sqlite_dir))
    assert result.stdout.startswith("OK   00006_extend_audit_outcome.sql")


def test_dry_run_changes_nothing(sqlite_path: Path) -> None:
    result = cli("migrate", "up", "--dry-run", "--db", str(sqlite_path))
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        f"would apply {p.name}" for p in sorted(SQL_DIR.glob("*.sql"))
    ]
    assert not sqlite_path.exists()

    cli("migrate", "up-to", "4", "--db", str(sqlite_path))
    before = sqlite_dump(sqlite_path)
    assert cli("migrate", "up", "--dry-run", "--db", str(sqlite_path)).stdout.splitlines() == [
        "would apply 00005_rename_openai_api_key.sql",
        "would apply 00006_extend_audit_outcome.sql",
    ]
    down = cli("migrate", "down-to", "2", "--dry-run", "--db", str(sqlite_path))
    assert down.stdout.splitlines() == [
        "would roll back 00004_add_token_id.sql",
        "would roll back 00003_add_cache_hit_count.sql",
    ]
    assert sqlite_dump(sqlite_path) == before


def _schema(path: Path) -> list[tuple[str, str]]:
    rows = sqlite_rows(
        path,
        "SELECT name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' "
        "AND name NOT LIKE 'llm_proxy_%' ORDER BY name",
    )
    return [(name, " ".join((sql or "").split())) for name, sql in rows]


def test_offline_sql_script_reproduces_up_without_connecting(tmp_path: Path) -> None:
    never = tmp_path / "never.db"
    script = cli("migrate", "up", "--sql", "--db", str(never))
    assert script.exit_code == 0, script.stderr
    assert not never.exists()
    text = script.stdout
    assert text.count("BEGIN;") == 6 and text.count("COMMIT;") == 6
    assert "INSERT INTO goose_db_version (version_id, is_applied) VALUES (6, 1);" in text

    by_script = tmp_path / "by_script.db"
    connection = sqlite3.connect(by_script, isolation_level=None)
    connection.executescript(text)
    connection.close()
    by_tool = tmp_path / "by_tool.db"
    cli("migrate", "up", "--db", str(by_tool))
    assert _schema(by_script) == _schema(by_tool)
    rows = "SELECT version_id, is_applied FROM goose_db_version ORDER BY id"
    assert sqlite_rows(by_script, rows) == sqlite_rows(by_tool, rows)
    heads = "SELECT version_num FROM alembic_version"
    assert sqlite_rows(by_script, heads) == sqlite_rows(by_tool, heads)


def test_offline_sql_for_down_and_a_range(tmp_path: Path) -> None:
    db = tmp_path / "d.db"
    result = cli("migrate", "down", "--sql", "--db", str(db))
    assert "DELETE FROM goose_db_version WHERE version_id = 6;" in result.stdout
    assert "version_id = 5" not in result.stdout
    ranged = cli("migrate", "up-to", "4", "--sql", "--from", "2", "--db", str(db)).stdout
    assert "VALUES (3, 1)" in ranged and "VALUES (4, 1)" in ranged
    assert "VALUES (2, 1)" not in ranged and "VALUES (5, 1)" not in ranged
    assert not db.exists()


def test_status_and_version_json(sqlite_path: Path) -> None:
    cli("migrate", "up-to", "5", "--db", str(sqlite_path))
    data = json.loads(cli("migrate", "status", "--json", "--db", str(sqlite_path)).stdout)
    assert data["format"] == 1
    assert data["dialect"] == "sqlite"
    assert data["current_version"] == 5
    assert data["pending"] == 1
    assert data["heads"] == ["00006"]
    assert [m["state"] for m in data["migrations"]] == ["applied"] * 5 + ["pending"]
    first = data["migrations"][0]
    assert first["name"] == "00001_initial_schema.sql" and first["kind"] == "goose"
    assert first["version"] == 1 and first["applied_at"] and first["modified"] is False
    assert data["migrations"][5]["applied_at"] is None
    version = json.loads(cli("migrate", "version", "--json", "--db", str(sqlite_path)).stdout)
    assert version == {"format": 1, "current_version": 5}


def test_status_lists_versions_without_a_file(
    sqlite_path: Path, shipped_sqlite_dir: Path, tmp_path: Path
) -> None:
    cli("migrate", "up", *args(sqlite_path, shipped_sqlite_dir))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    newer = write_migration(elsewhere, "00007_newer.sql", "CREATE TABLE newer (id INTEGER);")
    goose_apply(sqlite_path, newer)
    lines = cli("migrate", "status", *args(sqlite_path, shipped_sqlite_dir)).stdout.splitlines()
    assert lines[-1].endswith("-- version 7 (no file)")
    assert cli("migrate", "version", *args(sqlite_path, shipped_sqlite_dir)).stdout.endswith(
        ": 7\n"
    )


def _project_with_python_revision(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(REPO / "alembic", root / "alembic", ignore=shutil.ignore_patterns("__pyc*"))
    shutil.copytree(SQL_DIR, root / "sql")
    (root / "alembic" / "versions" / "b2_note.py").write_text(
        'revision: str = "b2"\ndown_revision: str | None = "00006"\n'
        "branch_labels = None\ndepends_on = None\n\n"
        "def upgrade() -> None:\n    pass\n\n\ndef downgrade() -> None:\n    pass\n"
    )
    return root


def test_fast_graph_equals_alembics_graph(tmp_path: Path) -> None:
    from conftest import graph_through_alembic, literal_graph, settings_for

    root = _project_with_python_revision(tmp_path)
    settings = settings_for(db=str(tmp_path / "x.db"), migrations_dir=str(root / "sql"))
    settings = settings.__class__(**{**settings.__dict__, "script_location": root / "alembic"})
    fast = literal_graph(settings)
    slow = graph_through_alembic(settings)
    assert fast is not None
    assert fast.order == slow.order
    assert dict(fast.nodes) == dict(slow.nodes)


def test_fast_path_declines_revisions_it_cannot_read_literally(tmp_path: Path) -> None:
    root = _project_with_python_revision(tmp_path)
    (root / "alembic" / "versions" / "c3_dynamic.py").write_text(
        'import os\nrevision = os.environ.get("REV", "c3")\ndown_revision = "b2"\n'
    )
    assert sources.python_nodes(root / "alembic" / "versions") is None


NO_OP_PROBE = """
import sys
from llm_proxy.cli import main
try:
    main(["migrate", "up", "--db", sys.argv[1]])
except SystemExit as exit:
    assert exit.code == 0, exit.code
heavy = sorted(m for m in ("alembic", "sqlalchemy") if m in sys.modules)
print("heavy modules:", heavy)
"""


def test_no_op_up_does_not_import_sqlalchemy_or_alembic(sqlite_path: Path) -> None:
    cli("migrate", "up", "--db", str(sqlite_path))
    result = subprocess.run(
        [sys.executable, "-c", NO_OP_PROBE, str(sqlite_path)],
        capture_output=True,
        text=True,
        cwd=sqlite_path.parent,
    )
    assert result.returncode == 0, result.stderr
    assert "goose: no migrations to run. current version: 6" in result.stdout
    assert "heavy modules: []" in result.stdout
