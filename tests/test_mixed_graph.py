"""Mixed revision graphs: goose files and Alembic Python revisions in one history,
one test (or more) per rule of docs/revision-graph.md, and the bad-input errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import (
    cli,
    goose_apply,
    graph_through_alembic,
    literal_graph,
    settings_for,
    sqlite_rows,
    write_migration,
)
from test_models import copy_project, run_alembic

# ---------------------------------------------------------------- helpers


def python_revision(
    project: Path, revision: str, down_revision: str | tuple[str, ...] | None, table: str = ""
) -> Path:
    """An Alembic revision file; it creates `table` when given one."""
    up = f'op.create_table("{table}", sa.Column("id", sa.Integer, primary_key=True))'
    down = f'op.drop_table("{table}")'
    path = project / "alembic" / "versions" / f"{revision}_rev.py"
    path.write_text(
        f'"""revision {revision}"""\n'
        "import sqlalchemy as sa\n"
        "from alembic import op\n\n"
        f"revision = {revision!r}\n"
        f"down_revision = {down_revision!r}\n"
        "branch_labels = None\n"
        "depends_on = None\n\n\n"
        "def upgrade() -> None:\n"
        f"    {up if table else 'pass'}\n\n\n"
        "def downgrade() -> None:\n"
        f"    {down if table else 'pass'}\n",
        encoding="utf-8",
    )
    return path


def goose_file(project: Path, name: str, table: str, marker: str = "") -> Path:
    extra = f"{marker}\n" if marker else ""
    return write_migration(
        project / "sql",
        name,
        f"CREATE TABLE {table} (id INTEGER PRIMARY KEY);",
        f"DROP TABLE {table};",
        extra=extra,
    )


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project copy whose goose directory holds two small files, 00001 and 00002;
    the working directory is the project, so llm-proxy reads its alembic.ini."""
    root = copy_project(tmp_path / "project")
    shutil.rmtree(root / "sql")
    (root / "sql").mkdir()
    goose_file(root, "00001_a.sql", "a")
    goose_file(root, "00002_b.sql", "b")
    monkeypatch.chdir(root)
    return root


def ok_names(stdout: str) -> list[str]:
    return [line.split()[1] for line in stdout.splitlines() if line.startswith("OK   ")]


def goose_versions(db: Path) -> list[int]:
    return [r[0] for r in sqlite_rows(db, "SELECT version_id FROM goose_db_version ORDER BY id")]


def alembic_heads(db: Path) -> list[str]:
    return sorted(r[0] for r in sqlite_rows(db, "SELECT version_num FROM alembic_version"))


def up(db: Path, *extra: str):
    return cli("migrate", "up", "--db", str(db), *extra)


def status_lines(db: Path) -> list[str]:
    result = cli("migrate", "status", "--db", str(db))
    assert result.exit_code == 0, result.stderr
    return result.stdout.splitlines()


# ------------------------------------- rule 1/3: a goose file after Python revisions


def test_created_goose_file_runs_after_the_python_revisions(project: Path, tmp_path: Path) -> None:
    db_old = tmp_path / "old.db"
    assert up(db_old).exit_code == 0  # a database at 00002 before anything new

    python_revision(project, "p1", "00002", table="p_one")
    python_revision(project, "p2", "p1", table="p_two")
    created = cli("migrate", "create", "add c")
    assert created.exit_code == 0, created.stderr
    new_file = project / "sql" / "00003_add_c.sql"
    assert new_file.read_text().splitlines()[0] == "-- llm-proxy: after p2"

    history = run_alembic("history", cwd=project, db=tmp_path / "h.db")
    assert history.stdout.splitlines()[:3] == [
        "p2 -> 00003 (head), add_c",
        "p1 -> p2, revision p2",
        "00002 -> p1, revision p1",
    ]

    fresh = tmp_path / "fresh.db"
    result = up(fresh)
    assert result.exit_code == 0, result.stderr
    assert ok_names(result.stdout) == [
        "00001_a.sql",
        "00002_b.sql",
        "p1_rev.py",
        "p2_rev.py",
        "00003_add_c.sql",
    ]
    assert goose_versions(fresh) == [0, 1, 2, 3]  # goose only ever sees goose versions
    assert alembic_heads(fresh) == ["00003"]
    assert not any(line.startswith("note:") for line in status_lines(fresh))

    result = up(db_old)
    assert ok_names(result.stdout) == ["p1_rev.py", "p2_rev.py", "00003_add_c.sql"]
    assert goose_versions(db_old) == [0, 1, 2, 3]
    assert all("Pending" not in line for line in status_lines(db_old)[2:])

    # The stock `alembic` agrees: one head, and it applies in the same order.
    other = tmp_path / "alembic.db"
    upgrade = run_alembic("upgrade", "head", cwd=project, db=other)
    assert upgrade.returncode == 0, upgrade.stderr
    ran = [
        line.split("Running upgrade ")[1]
        for line in upgrade.stderr.splitlines()
        if "Running" in line
    ]
    assert ran == [" -> 00001, a", "00001 -> 00002, b", "00002 -> p1, revision p1",
                   "p1 -> p2, revision p2", "p2 -> 00003, add_c"]  # fmt: skip
    assert goose_versions(other) == [0, 1, 2, 3]


def test_goose_file_without_marker_follows_the_previous_goose_file(project: Path) -> None:
    goose_file(project, "00003_c.sql", "c")
    graph = graph_through_alembic(settings_for(db="x.db"))
    assert graph.nodes["00003"].parents == ("00002",)
    assert graph.nodes["00002"].parents == ("00001",)
    assert graph.heads == ("00003",)


# ------------------------------------- rule 2: a Python revision between goose files


def test_python_revision_between_goose_files(project: Path, tmp_path: Path) -> None:
    """00002 names P as its parent, P names 00001: the order is 00001, P, 00002."""
    python_revision(project, "pmid", "00001", table="p_mid")
    (project / "sql" / "00002_b.sql").unlink()
    goose_file(project, "00002_b.sql", "b", marker="-- llm-proxy: after pmid")

    db = tmp_path / "between.db"
    result = up(db)
    assert result.exit_code == 0, result.stderr
    assert ok_names(result.stdout) == ["00001_a.sql", "pmid_rev.py", "00002_b.sql"]
    assert goose_versions(db) == [0, 1, 2]
    assert alembic_heads(db) == ["00002"]

    heads = run_alembic("heads", cwd=project, db=db)
    assert heads.stdout.strip() == "00002 (head)"
    down = cli("migrate", "down-to", "1", "--db", str(db))
    assert ok_names(down.stdout) == ["00002_b.sql", "pmid_rev.py"]
    assert goose_versions(db) == [0, 1]


# ------------------------------------- rule 4: true branches


def test_a_true_branch_is_applied_whole_and_reported(project: Path, tmp_path: Path) -> None:
    python_revision(project, "left", "00002", table="l")
    python_revision(project, "right", "00002", table="r")
    db = tmp_path / "branch.db"

    assert status_lines(db)[-1] == "note: 2 heads: left, right"
    result = up(db)
    assert result.exit_code == 0, result.stderr
    assert sorted(ok_names(result.stdout)[2:]) == ["left_rev.py", "right_rev.py"]
    assert alembic_heads(db) == ["left", "right"]
    assert goose_versions(db) == [0, 1, 2]
    assert status_lines(db)[-1] == "note: 2 heads: left, right"

    # Commands that need one head say so instead of guessing.
    down = cli("migrate", "down", "--db", str(db))
    assert down.exit_code == 1 and "several heads" in down.stderr
    stock = run_alembic("upgrade", "head", cwd=project, db=db)
    assert stock.returncode != 0 and "Multiple head" in stock.stderr

    # A merge revision joins them; a goose file created next comes after the merge.
    merge = run_alembic("merge", "-m", "join", "--rev-id", "joined", "heads", cwd=project, db=db)
    assert merge.returncode == 0, merge.stderr
    assert cli("migrate", "create", "after merge").exit_code == 0
    assert (
        (project / "sql" / "00003_after_merge.sql")
        .read_text()
        .startswith("-- llm-proxy: after joined\n")
    )
    result = up(db)
    assert ok_names(result.stdout) == ["joined_join.py", "00003_after_merge.sql"]
    assert alembic_heads(db) == ["00003"]
    assert not status_lines(db)[-1].startswith("note:")


def test_goose_file_written_by_hand_after_python_revision_is_a_second_head(
    project: Path, tmp_path: Path
) -> None:
    """No marker: the goose file follows 00002, the Python revision stays a head of
    its own. Both are applied; status says there are two heads."""
    python_revision(project, "p1", "00002", table="p_one")
    goose_file(project, "00003_c.sql", "c")
    db = tmp_path / "two.db"
    result = up(db)
    assert result.exit_code == 0, result.stderr
    assert sorted(ok_names(result.stdout)) == sorted(
        ["00001_a.sql", "00002_b.sql", "00003_c.sql", "p1_rev.py"]
    )
    assert alembic_heads(db) == ["00003", "p1"]
    assert status_lines(db)[-1] == "note: 2 heads: 00003, p1"


# ------------------------------------- rule 5: added below applied goose files


def test_python_revision_added_below_applied_goose_files_is_missing(
    project: Path, tmp_path: Path
) -> None:
    db = tmp_path / "late.db"
    assert up(db).exit_code == 0  # at 00002
    python_revision(project, "late", "00001", table="late_table")

    lines = status_lines(db)
    assert "    Pending (missing)        -- late_rev.py" in lines
    refused = up(db)
    assert refused.exit_code == 1
    assert "missing migrations before current version 2: late_rev.py" in refused.stderr
    assert "--allow-missing" in refused.stderr
    assert not sqlite_rows(db, "SELECT name FROM sqlite_master WHERE name = 'late_table'")

    allowed = up(db, "--allow-missing")
    assert allowed.exit_code == 0, allowed.stderr
    assert ok_names(allowed.stdout) == ["late_rev.py"]
    assert goose_versions(db) == [0, 1, 2]
    assert alembic_heads(db) == ["00002", "late"]
    assert "Pending" not in "\n".join(status_lines(db))


def test_python_revision_a_goose_run_skipped_is_missing(project: Path, tmp_path: Path) -> None:
    """The real goose applies 00003 (which comes after P) without knowing of P."""
    python_revision(project, "p1", "00002", table="p_one")
    goose_file(project, "00003_c.sql", "c", marker="-- llm-proxy: after p1")
    db = tmp_path / "goose.db"
    for name in ("00001_a.sql", "00002_b.sql", "00003_c.sql"):
        goose_apply(db, project / "sql" / name)

    lines = status_lines(db)
    assert "    Pending (missing)        -- p1_rev.py" in lines
    assert up(db).exit_code == 1
    allowed = up(db, "--allow-missing")
    assert allowed.exit_code == 0, allowed.stderr
    assert ok_names(allowed.stdout) == ["p1_rev.py"]  # 00003 is goose's, not run again
    assert goose_versions(db) == [0, 1, 2, 3]
    assert alembic_heads(db) == ["00003"]


# ------------------------------------- rule 1: goose order holds in the graph


@pytest.mark.parametrize(
    ("marker", "expected"),
    [
        (
            "-- llm-proxy: after nowhere",
            "00003_c.sql: '-- llm-proxy: after nowhere' names no known",
        ),
        (
            "-- llm-proxy: after 00001",
            "00003_c.sql: '-- llm-proxy: after 00001' leaves out 00002_b",
        ),
        ("-- llm-proxy: before 00002", "00003_c.sql:1: expected '-- llm-proxy: after REVISION"),
        ("-- llm-proxy: after\n", "00003_c.sql:1: expected"),
        ("-- llm-proxy: after 00002\n-- llm-proxy: after 00002", "00003_c.sql:2: a second"),
    ],
)
def test_bad_markers_are_one_line_errors_naming_the_file(
    project: Path, tmp_path: Path, marker: str, expected: str
) -> None:
    goose_file(project, "00003_c.sql", "c", marker=marker)
    db = tmp_path / "bad.db"
    result = up(db)
    assert result.exit_code == 1
    assert expected in result.stderr and len(result.stderr.splitlines()) == 1
    stock = run_alembic("history", cwd=project, db=db)
    assert stock.returncode != 0
    assert expected in stock.stdout + stock.stderr and "Traceback" not in stock.stderr
    assert not db.exists() or goose_versions(db) == [0]


def test_marker_cycle_is_refused(project: Path, tmp_path: Path) -> None:
    python_revision(project, "p1", "00003")
    goose_file(project, "00003_c.sql", "c", marker="-- llm-proxy: after p1")
    result = up(tmp_path / "cycle.db")
    assert result.exit_code == 1 and "cycle" in result.stderr


def test_fast_path_graph_matches_the_loader(project: Path) -> None:
    python_revision(project, "p1", "00002")
    goose_file(project, "00003_c.sql", "c", marker="-- llm-proxy: after p1")
    settings = settings_for(db="x.db")
    fast = literal_graph(settings)
    full = graph_through_alembic(settings)
    assert fast is not None
    assert {r: n.parents for r, n in fast.nodes.items()} == {
        r: n.parents for r, n in full.nodes.items()
    }


# ------------------------------------- bad input, through both command lines


def bad_parent(project: Path) -> str:
    python_revision(project, "orphan", "00042")
    return "orphan_rev.py: down_revision/depends_on '00042' names no known revision"


def id_clash(project: Path) -> str:
    python_revision(project, "00002", "00001")
    return "revision id '00002' is used twice: 00002_b.sql and 00002_rev.py"


def missing_goose_dir(project: Path) -> str:
    ini = project / "alembic.ini"
    ini.write_text(ini.read_text().replace("%(here)s/sql\n", "%(here)s/gone\n"))
    return "gone"


@pytest.mark.parametrize("make_bad", [bad_parent, id_clash, missing_goose_dir])
def test_bad_input_is_one_line_naming_the_file(
    project: Path, tmp_path: Path, make_bad, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = make_bad(project)
    db = tmp_path / "bad.db"
    for args in (("up",), ("status",)):
        result = cli("migrate", *args, "--db", str(db))
        assert result.exit_code == 1, result.stdout
        (line,) = result.stderr.splitlines()
        assert line.startswith("Error: ") and expected in line
    for args in (("history",), ("upgrade", "head"), ("heads",)):
        stock = run_alembic(*args, cwd=project, db=db)
        assert stock.returncode != 0
        assert expected in stock.stdout + stock.stderr and "Traceback" not in stock.stderr
    if make_bad is missing_goose_dir:
        assert "alembic.ini" in stock.stdout
    # Nothing was written (the stock `alembic upgrade` connects, so the file may exist).
    assert not db.exists() or not sqlite_rows(db, "SELECT name FROM sqlite_master")
