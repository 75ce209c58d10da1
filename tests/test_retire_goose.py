"""`llm-proxy migrate retire-goose`: the end of the move from goose, and the whole
journey on one database (goose only -> adopted -> Python revisions -> goose files
converted -> goose retired -> goose's table dropped), on SQLite, PostgreSQL and
MySQL, with the schema, the data and both version tables checked at each step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from any_database import Database, database_fixture
from conftest import cli, sqlite_rows
from stock_alembic import catalog
from test_convert import packaged_dir
from test_models import copy_project, run_alembic

from llm_proxy.goose.parser import parse
from llm_proxy.migrate.retiring import with_retired
from llm_proxy.store import goose_table
from llm_proxy.store.tables import Tables

_ = database_fixture  # the `database` fixture: one test per dialect
VERSION_TABLES = ("goose_db_version", "alembic_version")
ALL_SHIPPED = [(0, True), *((v, True) for v in range(1, 7))]


def python_revision(root: Path, revision: str, parent: str, table: str) -> None:
    """A hand-written Alembic revision creating `table` (the same on every dialect)."""
    (root / "alembic" / "versions" / f"{revision}_{table}.py").write_text(
        f'''"""create {table}"""

import sqlalchemy as sa
from alembic import op

revision = {revision!r}
down_revision = {parent!r}
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        {table!r},
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("body", sa.String(100), nullable=False),
    )


def downgrade() -> None:
    op.drop_table({table!r})
''',
        encoding="utf-8",
    )


def goose_up(database: Database, migration: Path) -> None:
    """What the goose binary does for one file: its Up statements, then its row."""
    settings = database.settings()
    tables = Tables.of(settings)
    if not database.has_table("goose_db_version"):
        database.sql(goose_table.create_sql(tables))
        database.sql(goose_table.insert_sql(tables, 0))
    for statement in parse(migration.read_text(encoding="utf-8"), "up").statements:
        database.sql(statement)
    database.sql(goose_table.insert_sql(tables, int(migration.name[:5])))


def migrate(database: Database, *args: str) -> str:
    result = cli("migrate", *args, *database.options)
    assert result.exit_code == 0, result.output
    return result.output


def schema(database: Database) -> dict[str, Any]:
    """The application's tables through the catalogs (version tables apart)."""
    tables = catalog(database.settings().url)
    return {name: table for name, table in tables.items() if name not in VERSION_TABLES}


def tables_of(database: Database) -> tuple[list[tuple[int, bool]] | None, list[str] | None]:
    """(goose_db_version rows, alembic_version heads), None for a missing table."""
    goose = database.goose_rows() if database.has_table("goose_db_version") else None
    alembic = database.alembic_heads() if database.has_table("alembic_version") else None
    return goose, alembic


def projects(database: Database) -> list[tuple[Any, ...]]:
    return sorted(tuple(row) for row in database.sql("SELECT id, name FROM projects"))


def test_the_whole_journey_from_goose_to_alembic_alone(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = copy_project(tmp_path / "project")
    monkeypatch.chdir(root)
    goose_dir = packaged_dir(root, database.dialect)
    ini = root / "alembic.ini"

    # 1. goose only: goose applied 00001..00003 and the application wrote data.
    for migration in sorted(goose_dir.glob("*.sql"))[:3]:
        goose_up(database, migration)
    database.sql("INSERT INTO projects (id, name, openai_api_key) VALUES ('p1', 'one', 'sk')")
    assert tables_of(database) == (ALL_SHIPPED[:4], None)
    assert "cache_hit_count" in str(schema(database)["tokens"])

    # 2. adopted by llm-proxy: the rest of goose's files run, goose's rows go on.
    migrate(database, "up")
    assert tables_of(database) == (ALL_SHIPPED, ["00006"])
    assert "api_key" in str(schema(database)["projects"])  # 00005 ran
    assert projects(database) == [("p1", "one")]

    # 3. Python revisions after the goose files: Alembic's alone, no goose row.
    python_revision(root, "a1journey", "00006", "journey_notes")
    migrate(database, "up")
    assert tables_of(database) == (ALL_SHIPPED, ["a1journey"])
    assert "journey_notes" in schema(database)
    database.sql("INSERT INTO journey_notes (id, body) VALUES (1, 'kept')")

    # 4. goose files converted: no database changes; retiring is refused while
    # one goose file is left.
    before = (schema(database), tables_of(database), migrate(database, "status"))
    migrate(database, "convert", "1", "2", "3", "--remove-sql")
    refused = cli("migrate", "retire-goose", *database.options)
    assert refused.exit_code != 0
    assert refused.stderr.strip().count("\n") == 0
    assert "00004_add_token_id.sql" in refused.stderr and "convert" in refused.stderr
    assert "goose_retired" not in ini.read_text()
    migrate(database, "convert", "--remove-sql")
    assert not list(goose_dir.glob("*.sql"))
    assert (schema(database), tables_of(database), migrate(database, "status")) == before

    # 5. goose retired: the setting is in alembic.ini, the database is as it was.
    said = migrate(database, "retire-goose")
    assert "goose_retired = true" in said and "goose_retired = true" in ini.read_text()
    assert (schema(database), tables_of(database)) == before[:2]
    assert "Current migration version: 6" in migrate(database, "version")

    # A new revision writes no goose row; rolling back deletes none either, and
    # status and version follow alembic_version.
    python_revision(root, "b2journey", "a1journey", "journey_tags")
    migrate(database, "up")
    assert tables_of(database) == (ALL_SHIPPED, ["b2journey"])
    migrate(database, "down-to", "5")
    assert tables_of(database) == (ALL_SHIPPED, ["00005"])
    assert "Current migration version: 5" in migrate(database, "version")
    status = migrate(database, "status")
    assert "Pending" in status and "00006_extend_audit_outcome.sql" in status
    assert "journey_notes" not in schema(database)
    # The stock alembic command honours the same setting.
    upgraded = run_alembic("upgrade", "head", cwd=root, db=database.target)
    assert upgraded.returncode == 0, upgraded.stderr
    assert tables_of(database) == (ALL_SHIPPED, ["b2journey"])
    assert {"journey_notes", "journey_tags"} <= set(schema(database))
    assert projects(database) == [("p1", "one")]

    # 6. --drop-table, the last step: goose's table goes, nothing else.
    kept = schema(database)
    said = migrate(database, "retire-goose", "--drop-table")
    assert "cannot be undone" in said
    assert tables_of(database) == (None, ["b2journey"])
    assert schema(database) == kept
    again = migrate(database, "retire-goose", "--drop-table")  # nothing left to carry or drop
    assert "dropped" not in again and tables_of(database) == (None, ["b2journey"])
    migrate(database, "down")
    migrate(database, "up")
    assert tables_of(database) == (None, ["b2journey"])  # goose's table stays gone
    assert "Current migration version: 6" in migrate(database, "version")
    assert projects(database) == [("p1", "one")]


# ---------------------------------------------------------------- SQLite only


@pytest.fixture
def converted_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = copy_project(tmp_path / "project")
    monkeypatch.chdir(root)
    return root


def test_retiring_then_undoing_gives_goose_back_its_rows(
    converted_project: Path, tmp_path: Path
) -> None:
    db = str(tmp_path / "x.db")
    assert cli("migrate", "up", "--db", db).exit_code == 0
    assert cli("migrate", "convert", "--db", db).exit_code == 0
    assert cli("migrate", "retire-goose", "--db", db).exit_code == 0
    assert cli("migrate", "down", "--db", db).exit_code == 0
    goose = "SELECT version_id FROM goose_db_version WHERE version_id > 0 ORDER BY id"
    assert [v for (v,) in sqlite_rows(Path(db), goose)] == [1, 2, 3, 4, 5, 6]  # not written

    undone = cli("migrate", "retire-goose", "--undo", "--db", db)
    assert undone.exit_code == 0, undone.output
    assert "goose_retired = false" in (converted_project / "alembic.ini").read_text()
    assert [v for (v,) in sqlite_rows(Path(db), goose)] == [1, 2, 3, 4, 5]
    assert cli("migrate", "up", "--db", db).exit_code == 0  # goose's rows written again
    assert [v for (v,) in sqlite_rows(Path(db), goose)] == [1, 2, 3, 4, 5, 6]


def test_goose_history_alembic_version_lacks_is_carried_over_before_retiring(
    converted_project: Path, tmp_path: Path
) -> None:
    """A database goose migrated after llm-proxy last ran: retiring records goose's
    rows in alembic_version first, so nothing runs again."""
    db = Path(tmp_path / "x.db")
    assert cli("migrate", "up-to", "4", "--db", str(db)).exit_code == 0
    sql = converted_project / "sql"
    from conftest import goose_apply

    goose_apply(db, sql / "00005_rename_openai_api_key.sql")
    assert cli("migrate", "convert", "--remove-sql", "--db", str(db)).exit_code == 0
    said = cli("migrate", "retire-goose", "--db", str(db))
    assert said.exit_code == 0, said.output
    assert sqlite_rows(db, "SELECT version_num FROM alembic_version") == [("00005",)]
    up = cli("migrate", "up", "--db", str(db))
    assert up.exit_code == 0, up.output
    assert "00005" not in up.output and "00006" in up.output


def test_a_retired_project_with_a_goose_file_left_is_refused(
    converted_project: Path, tmp_path: Path
) -> None:
    """goose_retired set by hand while a goose file remains: every command refuses."""
    db = str(tmp_path / "x.db")
    ini = converted_project / "alembic.ini"
    ini.write_text(with_retired(ini.read_text(), "true"))
    refused = cli("migrate", "up", "--db", db)
    assert refused.exit_code != 0
    assert "00001_initial_schema.sql" in refused.stderr and "goose_retired" in refused.stderr
    assert not Path(db).exists()


def test_retiring_needs_the_project_alembic_ini(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no alembic.ini here
    refused = cli("migrate", "retire-goose", "--db", str(tmp_path / "x.db"))
    assert refused.exit_code != 0
    assert "alembic.ini" in refused.stderr and refused.stderr.strip().count("\n") == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "[alembic]\nscript_location = a\n\n[loggers]\nkeys = root\n",
            "[alembic]\n# No goose binary reads the database any more: written by "
            "`llm-proxy migrate retire-goose`.\ngoose_retired = true\nscript_location = a\n"
            "\n[loggers]\nkeys = root\n",
        ),
        (
            "# top\n[alembic]\ngoose_retired = false\n[loggers]\ngoose_retired = x\n",
            "# top\n[alembic]\ngoose_retired = true\n[loggers]\ngoose_retired = x\n",
        ),
    ],
    ids=["added", "replaced"],
)
def test_the_setting_is_written_into_the_alembic_section_only(text: str, expected: str) -> None:
    assert with_retired(text, "true") == expected


def test_the_stock_alembic_command_refuses_a_retired_project_with_a_goose_file(
    converted_project: Path, tmp_path: Path
) -> None:
    db = tmp_path / "x.db"
    ini = converted_project / "alembic.ini"
    ini.write_text(with_retired(ini.read_text(), "true"))
    refused = run_alembic("upgrade", "head", cwd=converted_project, db=db)
    assert refused.returncode != 0
    assert "00001_initial_schema.sql" in refused.stderr and "goose_retired" in refused.stderr
    assert not db.exists()


def test_an_offline_script_of_a_retired_project_leaves_goose_table_alone(
    converted_project: Path, tmp_path: Path
) -> None:
    db = tmp_path / "x.db"
    assert cli("migrate", "convert", "--remove-sql", "--db", str(db)).exit_code == 0
    assert cli("migrate", "retire-goose", "--db", str(db)).exit_code == 0
    script = run_alembic("upgrade", "head", "--sql", cwd=converted_project, db=db)
    assert script.returncode == 0, script.stderr
    assert "CREATE TABLE projects" in script.stdout.replace("IF NOT EXISTS ", "")
    assert "goose_db_version" not in script.stdout
