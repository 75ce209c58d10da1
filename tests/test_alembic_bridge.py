"""goose files as Alembic revisions: the stock `alembic` command, Python
revisions chained after goose ones, and the plugin's effect on other projects."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import REPO, SQL_DIR, cli, sqlite_rows

ALEMBIC = str(Path(sys.executable).parent / "alembic")

PY_REVISION = '''\
"""add notes table

Revision ID: a1b2c3d4e5f6
Revises: 00006
"""
import sqlalchemy as sa
from alembic import op

revision = "a1b2c3d4e5f6"
down_revision = "00006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("notes", sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    op.drop_table("notes")
'''


def run_alembic(*args: str, cwd: Path, db: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["DATABASE_PATH"] = str(db)
    return subprocess.run(
        [ALEMBIC, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the project's Alembic layout: alembic.ini, alembic/, sql/."""
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(REPO / "alembic.ini", root / "alembic.ini")
    shutil.copytree(
        REPO / "alembic", root / "alembic", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copytree(SQL_DIR, root / "sql")
    return root


def goose_versions(db: Path) -> list[int]:
    return [r[0] for r in sqlite_rows(db, "SELECT version_id FROM goose_db_version ORDER BY id")]


def test_stock_alembic_sees_goose_revisions(project: Path, tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    history = run_alembic("history", cwd=project, db=db)
    assert history.returncode == 0, history.stderr
    assert history.stdout.splitlines() == [
        "00005 -> 00006 (head), extend_audit_outcome",
        "00004 -> 00005, rename_openai_api_key",
        "00003 -> 00004, add_token_id",
        "00002 -> 00003, add_cache_hit_count",
        "00001 -> 00002, add_deactivated_at",
        "<base> -> 00001, initial_schema",
    ]
    assert run_alembic("heads", cwd=project, db=db).stdout.strip() == "00006 (head)"

    assert run_alembic("upgrade", "head", cwd=project, db=db).returncode == 0
    assert goose_versions(db) == [0, 1, 2, 3, 4, 5, 6]
    assert run_alembic("current", cwd=project, db=db).stdout.strip() == "00006 (head)"

    down = run_alembic("downgrade", "-1", cwd=project, db=db)
    assert down.returncode == 0, down.stderr
    assert goose_versions(db) == [0, 1, 2, 3, 4, 5]
    assert run_alembic("current", cwd=project, db=db).stdout.strip() == "00005"

    # llm-proxy agrees with what alembic did, and continues from there.
    result = cli("migrate", "up", "--db", str(db), "--migrations-dir", str(project / "sql"))
    assert result.stdout.splitlines()[0].startswith("OK   00006_extend_audit_outcome.sql")


def test_python_revision_chains_after_goose(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "alembic" / "versions" / "a1b2c3d4e5f6_add_notes.py").write_text(PY_REVISION)
    db = tmp_path / "mixed.db"

    history = run_alembic("history", cwd=project, db=db)
    assert history.stdout.splitlines()[:2] == [
        "00006 -> a1b2c3d4e5f6 (head), add notes table",
        "00005 -> 00006, extend_audit_outcome",
    ]

    monkeypatch.chdir(project)  # llm-proxy picks up ./alembic.ini and its versions/
    result = cli("migrate", "up", "--db", str(db))
    assert result.exit_code == 0, result.stderr
    names = [line.split()[1] for line in result.stdout.splitlines()[:-1]]
    assert names[-1] == "a1b2c3d4e5f6_add_notes.py"
    assert len(names) == 7
    assert goose_versions(db) == [0, 1, 2, 3, 4, 5, 6]  # goose never sees Python revisions
    assert sqlite_rows(db, "SELECT version_num FROM alembic_version") == [("a1b2c3d4e5f6",)]
    assert run_alembic("current", cwd=project, db=db).stdout.strip() == "a1b2c3d4e5f6 (head)"

    status = cli("migrate", "status", "--db", str(db)).stdout.splitlines()
    assert status[-1].endswith("-- a1b2c3d4e5f6_add_notes.py")
    assert "Pending" not in status[-1]

    result = cli("migrate", "down", "--db", str(db))
    assert result.stdout.splitlines()[0].startswith("OK   a1b2c3d4e5f6_add_notes.py")
    assert goose_versions(db) == [0, 1, 2, 3, 4, 5, 6]
    assert not sqlite_rows(db, "SELECT name FROM sqlite_master WHERE name = 'notes'")
    result = cli("migrate", "down", "--db", str(db))
    assert result.stdout.splitlines()[0].startswith("OK   00006_extend_audit_outcome.sql")
    assert goose_versions(db) == [0, 1, 2, 3, 4, 5]


def test_project_without_goose_directory_is_unaffected(tmp_path: Path) -> None:
    init = subprocess.run(
        [ALEMBIC, "init", "migrations"], cwd=tmp_path, capture_output=True, text=True
    )
    assert init.returncode == 0, init.stderr
    ini = tmp_path / "alembic.ini"
    ini.write_text(
        ini.read_text().replace(
            "driver://user:pass@localhost/dbname", f"sqlite:///{tmp_path / 'plain.db'}"
        )
    )
    # A goose directory right there must still be ignored: the config does not name it.
    (tmp_path / "sql").mkdir()
    shutil.copy(SQL_DIR / "00001_initial_schema.sql", tmp_path / "sql")
    revision = subprocess.run(
        [ALEMBIC, "revision", "-m", "first"], cwd=tmp_path, capture_output=True, text=True
    )
    assert revision.returncode == 0, revision.stderr
    history = subprocess.run([ALEMBIC, "history"], cwd=tmp_path, capture_output=True, text=True)
    assert history.returncode == 0, history.stderr
    lines = history.stdout.splitlines()
    assert len(lines) == 1 and lines[0].endswith("(head), first")
    upgrade = subprocess.run(
        [ALEMBIC, "upgrade", "head"], cwd=tmp_path, capture_output=True, text=True
    )
    assert upgrade.returncode == 0, upgrade.stderr
    assert not sqlite_rows(
        tmp_path / "plain.db", "SELECT name FROM sqlite_master WHERE name = 'goose_db_version'"
    )


PLUGIN_PROBE = textwrap.dedent(
    """
    import importlib, sys, types, warnings
    warnings.simplefilter("error")
    plugin = importlib.import_module("llm_proxy.bridge.plugin")
    from alembic.runtime.plugins import Plugin
    from alembic.script.base import ScriptDirectory
    assert isinstance(plugin, types.ModuleType)
    # Alembic's documented shape: module.setup(plugin).
    Plugin.setup_plugin_from_module(plugin, "probe.documented")
    # Alembic 1.18-1.20's shape: iterate the loaded object.
    items = list(plugin)
    assert items == [plugin], items
    for module in items:
        Plugin.setup_plugin_from_module(module, "probe.iterated")
    assert ScriptDirectory._llm_proxy_goose_patched
    print("ok")
    """
)


def test_plugin_serves_both_entry_point_shapes() -> None:
    result = subprocess.run([sys.executable, "-c", PLUGIN_PROBE], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_plugin_hook_cannot_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    from llm_proxy.bridge import plugin

    def broken() -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(plugin, "_install", broken)
    plugin.setup(None)  # must swallow the failure


def test_entry_point_is_published() -> None:
    from importlib.metadata import entry_points

    names = {ep.value for ep in entry_points(group="alembic.plugins")}
    assert "llm_proxy.bridge.plugin" in names


def test_python_revision_naming_unknown_goose_parent(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "alembic" / "versions" / "bad_parent.py").write_text(
        PY_REVISION.replace('down_revision = "00006"', 'down_revision = "00042"')
    )
    monkeypatch.chdir(project)
    result = cli("migrate", "up", "--db", str(tmp_path / "x.db"))
    assert result.exit_code == 1
    assert "bad_parent.py" in result.stderr and "00042" in result.stderr


def test_revision_id_clash_between_goose_and_python(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "alembic" / "versions" / "clash.py").write_text(
        PY_REVISION.replace('revision = "a1b2c3d4e5f6"', 'revision = "00003"')
    )
    monkeypatch.chdir(project)
    result = cli("migrate", "up", "--db", str(tmp_path / "x.db"))
    assert result.exit_code == 1
    assert "00003" in result.stderr and "clash.py" in result.stderr
