"""A goose file's revision id follows its version number, not its spelling.

`1_a.sql`, `01_a.sql` and `00001_a.sql` are all version 1 to goose, so they
are one revision to llm-proxy and Alembic too: `00001`, five digits like the
shipped files (longer numbers keep their digits). A database whose
alembic_version (or our journal) spells a version otherwise is read as the
canonical id and rewritten under the lock by the next command that writes.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from any_database import Database, database_fixture  # noqa: F401 (provides `database`)
from conftest import cli, goose_apply, sqlite_rows, write_migration
from test_models import copy_project, run_alembic

from llm_proxy import database as app_database
from llm_proxy.goose.files import discover
from llm_proxy.revisions import sources


def table_file(directory: Path, name: str, table: str, marker: str = "") -> Path:
    return write_migration(
        directory,
        name,
        f"CREATE TABLE {table} (id INTEGER);",
        f"DROP TABLE {table};",
        extra=f"{marker}\n" if marker else "",
    )


def ok_names(stdout: str) -> list[str]:
    return [line.split()[1] for line in stdout.splitlines() if line.startswith("OK   ")]


def one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), stderr
    return lines[0]


# ---------------------------------------------------------------- the id itself


@pytest.mark.parametrize(
    ("name", "revision"),
    [
        ("1_a.sql", "00001"),
        ("01_a.sql", "00001"),
        ("00001_a.sql", "00001"),
        ("000001_a.sql", "00001"),
        ("0" * 40 + "1_a.sql", "00001"),  # 41 digits, as goose accepts
        ("123456_a.sql", "123456"),
        ("0000123456_a.sql", "123456"),
        ("20240102150405_a.sql", "20240102150405"),
        ("9223372036854775807_a.sql", "9223372036854775807"),
    ],
)
def test_revision_id_is_the_number_whatever_the_padding(
    tmp_path: Path, name: str, revision: str
) -> None:
    (tmp_path / name).write_text("-- +goose Up\nSELECT 1;\n", encoding="utf-8")
    graph = sources.literal_graph(discover(tmp_path), tmp_path / "versions")
    assert graph is not None
    assert list(graph.nodes) == [revision]
    assert graph.nodes[revision].name == name


# ---------------------------------------------------------------- renamed files


def apply_unpadded_and_rename(database: Database, migrations: Path) -> None:
    """A database migrated from `1_a.sql` and `2_b.sql` by a release that used the
    spelling as the revision id; then the files are renamed with zero padding."""
    table_file(migrations, "1_a.sql", "a")
    table_file(migrations, "2_b.sql", "b")
    result = cli("migrate", "up", *database.options, "--migrations-dir", str(migrations))
    assert result.exit_code == 0, result.stderr
    # What that release wrote (written explicitly: this release writes 00001 and 00002).
    database.sql("UPDATE alembic_version SET version_num = '2'")
    for version in ("1", "2"):
        database.sql(
            f"UPDATE llm_proxy_migrations SET revision = '{version}' "
            f"WHERE revision = '0000{version}'"
        )
    for old, new in (("1_a.sql", "00001_a.sql"), ("2_b.sql", "00002_b.sql")):
        (migrations / old).rename(migrations / new)


def test_zero_padding_rename_keeps_status_server_and_up_working(
    database: Database, migrations_dir: Path
) -> None:
    apply_unpadded_and_rename(database, migrations_dir)
    table_file(migrations_dir, "00003_c.sql", "c")
    where = (*database.options, "--migrations-dir", str(migrations_dir))

    # Read-only commands interpret the old spelling and write nothing.
    status = cli("migrate", "status", *where, "--json")
    assert status.exit_code == 0, status.stderr
    rows = [(m["revision"], m["state"]) for m in json.loads(status.stdout)["migrations"]]
    assert rows == [("00001", "applied"), ("00002", "applied"), ("00003", "pending")]
    app_database.check_not_newer(database.settings(migrations_dir))  # the server's check
    assert database.alembic_heads() == ["2"]

    result = cli("migrate", "up", *where)
    assert result.exit_code == 0, result.stderr
    assert ok_names(result.stdout) == ["00003_c.sql"]
    assert database.goose_rows() == [(0, True), (1, True), (2, True), (3, True)]
    assert database.alembic_heads() == ["00003"]
    assert database.journal() == ["00001", "00002", "00003"]


def test_rename_with_nothing_pending_rewrites_the_spelling_under_the_lock(
    database: Database, migrations_dir: Path
) -> None:
    apply_unpadded_and_rename(database, migrations_dir)
    settings = database.settings(migrations_dir)
    # The checksum recorded under "2" is 00002's: an edit since shows.
    with (migrations_dir / "00002_b.sql").open("a", encoding="utf-8") as handle:
        handle.write("-- edited\n")
    status = cli("migrate", "status", *database.options, "--migrations-dir", str(migrations_dir))
    assert status.stdout.splitlines()[-1].endswith("-- 00002_b.sql (modified)")

    app_database.migrate(settings)  # what a server start does
    assert database.alembic_heads() == ["00002"]
    assert database.journal() == ["00001", "00002"]
    assert database.goose_rows() == [(0, True), (1, True), (2, True)]

    again = cli("migrate", "up", *database.options, "--migrations-dir", str(migrations_dir))
    assert again.exit_code == 0, again.stderr
    assert "no migrations to run. current version: 2" in again.stdout


def test_same_number_spelled_twice_is_goose_duplicate_version(
    database: Database, migrations_dir: Path
) -> None:
    table_file(migrations_dir, "1_a.sql", "a")
    table_file(migrations_dir, "00001_b.sql", "b")
    for command in ("up", "status"):
        result = cli("migrate", command, *database.options, "--migrations-dir", str(migrations_dir))
        assert result.exit_code == 1
        line = one_error_line(result.stderr)
        assert "duplicate migration version 1" in line
        assert "1_a.sql" in line and "00001_b.sql" in line
    validate = cli("migrate", "validate", "--migrations-dir", str(migrations_dir))
    assert validate.exit_code == 1
    assert "00001_b.sql: error: version 1 is also used by 1_a.sql" in validate.stdout


# ---------------------------------------------------------------- references and stock alembic


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project copy whose goose directory holds unpadded names."""
    root = copy_project(tmp_path / "project")
    shutil.rmtree(root / "sql")
    (root / "sql").mkdir()
    table_file(root / "sql", "1_a.sql", "a")
    table_file(root / "sql", "2_b.sql", "b")
    monkeypatch.chdir(root)
    return root


def python_revision(project: Path, revision: str, down_revision: str) -> None:
    (project / "alembic" / "versions" / f"{revision}_rev.py").write_text(
        f'"""revision {revision}"""\n'
        f"revision = {revision!r}\n"
        f"down_revision = {down_revision!r}\n"
        "branch_labels = None\n"
        "depends_on = None\n\n\n"
        "def upgrade() -> None:\n    pass\n\n\n"
        "def downgrade() -> None:\n    pass\n",
        encoding="utf-8",
    )


def test_stock_alembic_shows_and_continues_from_the_canonical_id(
    project: Path, tmp_path: Path
) -> None:
    db = tmp_path / "stock.db"
    history = run_alembic("history", cwd=project, db=db)
    assert history.returncode == 0, history.stderr
    assert history.stdout.splitlines() == ["00001 -> 00002 (head), b", "<base> -> 00001, a"]

    # A database an older release left at revision "1".
    goose_apply(db, project / "sql" / "1_a.sql")
    stamped = run_alembic("stamp", "00001", cwd=project, db=db)
    assert stamped.returncode == 0, stamped.stderr
    connection = sqlite3.connect(db, isolation_level=None)
    connection.execute("UPDATE alembic_version SET version_num = '1'")
    connection.close()

    upgrade = run_alembic("upgrade", "head", cwd=project, db=db)
    assert upgrade.returncode == 0, upgrade.stderr
    current = run_alembic("current", cwd=project, db=db)
    assert current.stdout.strip() == "00002 (head)"
    assert sqlite_rows(db, "SELECT version_id FROM goose_db_version ORDER BY id") == [
        (0,),
        (1,),
        (2,),
    ]


def test_revisions_may_name_a_goose_file_by_any_padding(project: Path, tmp_path: Path) -> None:
    python_revision(project, "p1", "2")  # written when the id was the spelling
    table_file(project / "sql", "3_c.sql", "c", marker="-- llm-proxy: after p1")
    table_file(project / "sql", "4_d.sql", "d", marker="-- llm-proxy: after 003")

    db = tmp_path / "refs.db"
    result = cli("migrate", "up", "--db", str(db))
    assert result.exit_code == 0, result.stderr
    assert ok_names(result.stdout) == ["1_a.sql", "2_b.sql", "p1_rev.py", "3_c.sql", "4_d.sql"]
    assert sqlite_rows(db, "SELECT version_num FROM alembic_version") == [("00004",)]

    history = run_alembic("history", cwd=project, db=db)
    assert history.returncode == 0, history.stderr
    assert history.stdout.splitlines()[:3] == [
        "00003 -> 00004 (head), d",
        "p1 -> 00003, c",
        "00002 -> p1, revision p1",
    ]


def test_down_after_rename_rewrites_the_spelling_and_rolls_back(
    database: Database, migrations_dir: Path
) -> None:
    apply_unpadded_and_rename(database, migrations_dir)
    result = cli("migrate", "down", *database.options, "--migrations-dir", str(migrations_dir))
    assert result.exit_code == 0, result.stderr
    assert ok_names(result.stdout) == ["00002_b.sql"]
    assert database.goose_rows() == [(0, True), (1, True)]
    assert database.alembic_heads() == ["00001"]
    assert database.journal() == ["00001"]


# ---------------------------------------------------------------- ids that fit alembic_version

LONG_NAME = "0" * 40 + "1_long.sql"  # 41 digits: goose reads version 1


def test_long_zero_padded_version_applies_on_every_dialect(
    database: Database, migrations_dir: Path
) -> None:
    table_file(migrations_dir, LONG_NAME, "a")
    where = (*database.options, "--migrations-dir", str(migrations_dir))
    validate = cli("migrate", "validate", *where)
    assert validate.exit_code == 0, validate.stdout

    result = cli("migrate", "up", *where)
    assert result.exit_code == 0, result.stderr
    assert ok_names(result.stdout) == [LONG_NAME]
    assert database.goose_rows() == [(0, True), (1, True)]
    assert database.alembic_heads() == ["00001"]
    down = cli("migrate", "down", *where)
    assert down.exit_code == 0, down.stderr
    assert database.goose_rows() == [(0, True)]


def nothing_migrated(database: Database) -> bool:
    if database.dialect == "sqlite":
        return not Path(database.target).exists()  # not even created
    return not database.has_table("goose_db_version")


@pytest.mark.parametrize(
    "name",
    [
        "9223372036854775808_big.sql",  # int64 max + 1
        "0000009223372036854775808_big.sql",
        "9" * 41 + "_big.sql",
    ],
)
def test_version_beyond_int64_is_gooses_error(
    database: Database, migrations_dir: Path, name: str
) -> None:
    table_file(migrations_dir, "00001_a.sql", "a")
    table_file(migrations_dir, name, "big")
    where = (*database.options, "--migrations-dir", str(migrations_dir))
    result = cli("migrate", "up", *where)
    assert result.exit_code == 1
    line = one_error_line(result.stderr)
    assert name in line and "64-bit" in line
    assert nothing_migrated(database)

    validate = cli("migrate", "validate", *where)
    assert validate.exit_code == 1
    assert f"{name}: error: version is larger than goose's 64-bit limit [filename]" in (
        validate.stdout
    )


LONG_ID = "a" * 33


def test_python_revision_id_longer_than_alembic_version_is_refused_up_front(
    database: Database, project: Path
) -> None:
    python_revision(project, LONG_ID, "2")
    where = (*database.options, "--migrations-dir", str(project / "sql"))
    for command in ("up", "status"):
        result = cli("migrate", command, *where)
        assert result.exit_code == 1, result.stdout
        line = one_error_line(result.stderr)
        assert f"{LONG_ID}_rev.py" in line and "32" in line
    assert nothing_migrated(database)

    validate = cli("migrate", "validate", *where)
    assert validate.exit_code == 1
    assert f"{LONG_ID}_rev.py: error: revision id" in validate.stdout
    assert "[revision-id]" in validate.stdout


def test_stock_alembic_names_both_files_of_a_duplicate_version(
    project: Path, tmp_path: Path
) -> None:
    table_file(project / "sql", "00001_again.sql", "again")
    history = run_alembic("history", cwd=project, db=tmp_path / "dup.db")
    assert history.returncode != 0
    (line,) = history.stdout.splitlines()  # Alembic prints its FAILED line on stdout
    assert line.startswith("FAILED: duplicate migration version 1: ")
    assert "1_a.sql" in line and "00001_again.sql" in line
