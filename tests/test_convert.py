"""`llm-proxy migrate convert`: goose files become Python revisions, and nothing
else changes: every database state up and down, `alembic history` and `status`
are the same before and after, on SQLite, PostgreSQL and MySQL."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from any_database import Database, database_fixture
from conftest import (
    cli,
    goose_apply,
    graph_through_alembic,
    literal_graph,
    settings_for,
    sqlite_rows,
    write_migration,
)
from stock_alembic import catalog
from test_models import copy_project, run_alembic

SHIPPED_VERSIONS = range(1, 7)
_ = database_fixture  # the `database` fixture: one test per dialect


def packaged_dir(root: Path, dialect: str) -> Path:
    """The project's goose directory for `dialect` (as alembic.ini names it)."""
    return root / "sql" / {"sqlite": "", "postgresql": "postgres", "mysql": "mysql"}[dialect]


def state(database: Database) -> dict[str, Any]:
    """Schema (through the catalogs), both version tables and our checksums."""
    return {
        "schema": catalog(database.settings().url),
        "goose": database.goose_rows() if database.has_table("goose_db_version") else None,
        "alembic": database.alembic_heads() if database.has_table("alembic_version") else None,
        "checksums": sorted(
            database.sql("SELECT revision, checksum FROM llm_proxy_migrations")
            if database.has_table("llm_proxy_migrations")
            else []
        ),
    }


def migrate(database: Database, *args: str) -> Any:
    result = cli("migrate", *args, *database.options)
    assert result.exit_code == 0, result.output
    return result


def journey(database: Database) -> list[dict[str, Any]]:
    """The database's state after up-to each shipped version, then after each down."""
    seen = []
    for version in SHIPPED_VERSIONS:
        migrate(database, "up-to", str(version))
        seen.append(state(database))
    for _version in SHIPPED_VERSIONS:
        migrate(database, "down")
        seen.append(state(database))
    return seen


@pytest.mark.parametrize("remove_sql", [False, True], ids=["sql-kept", "remove-sql"])
def test_converted_revisions_leave_every_database_state_as_goose_files_did(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, remove_sql: bool
) -> None:
    root = copy_project(tmp_path / "project")
    monkeypatch.chdir(root)
    goose_dir = packaged_dir(root, database.dialect)
    before = journey(database)
    history_before = run_alembic("history", cwd=root, db=database.target)
    assert history_before.returncode == 0, history_before.stderr
    migrate(database, "up-to", "3")
    status_before = migrate(database, "status").output

    flags = ("--remove-sql",) if remove_sql else ()
    migrate(database, "convert", *flags)

    versions = sorted(p.name for p in (root / "alembic" / "versions").glob("*.py"))
    assert [name[:5] for name in versions] == [f"0000{v}" for v in SHIPPED_VERSIONS]
    assert bool(list(goose_dir.glob("*.sql"))) is not remove_sql
    assert migrate(database, "status").output == status_before  # convert touched no database
    migrate(database, "reset")
    assert journey(database) == before
    history_after = run_alembic("history", cwd=root, db=database.target)
    assert history_after.stdout == history_before.stdout


def test_a_database_goose_migrated_goes_on_through_converted_revisions(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = copy_project(tmp_path / "project")
    monkeypatch.chdir(root)
    migrate(database, "up-to", "4")
    migrate(database, "convert", "--remove-sql")
    status = migrate(database, "status").output
    assert "Pending" in status and "00005_rename_openai_api_key.sql" in status
    assert "modified" not in status.lower()
    migrate(database, "up")
    assert database.goose_rows() == [(0, True), *((v, True) for v in SHIPPED_VERSIONS)]
    assert database.alembic_heads() == ["00006"]


# ---------------------------------------------------------------- single files (SQLite)


@pytest.fixture
def small_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = copy_project(tmp_path / "project")
    shutil.rmtree(root / "sql")
    (root / "sql").mkdir()
    monkeypatch.chdir(root)
    return root


def test_an_envsub_file_is_refused_without_expand_env(small_project: Path, tmp_path: Path) -> None:
    write_migration(
        small_project / "sql",
        "00001_grant.sql",
        "CREATE TABLE t (name TEXT DEFAULT '${OWNER}');",
        "DROP TABLE t;",
        extra="-- +goose ENVSUB ON\n",
    )
    db = str(tmp_path / "x.db")
    refused = cli("migrate", "convert", "--db", db)
    assert refused.exit_code != 0
    assert refused.stderr.strip().count("\n") == 0
    assert "00001_grant.sql" in refused.stderr and "--expand-env" in refused.stderr
    assert not list((small_project / "alembic" / "versions").glob("*.py"))
    assert not Path(db).exists()

    done = cli("migrate", "convert", "--db", db, "--expand-env", env={"OWNER": "alice"})
    assert done.exit_code == 0, done.output
    (revision,) = (small_project / "alembic" / "versions").glob("*.py")
    text = revision.read_text()
    assert "DEFAULT 'alice'" in text and "${OWNER}" not in text
    assert "expanded from the environment" in text.split('"""')[1]
    assert cli("migrate", "up", "--db", db).exit_code == 0
    assert sqlite_rows(Path(db), "SELECT dflt_value FROM pragma_table_info('t')") == [("'alice'",)]


def test_a_no_transaction_file_becomes_an_autocommit_block(
    small_project: Path, tmp_path: Path
) -> None:
    write_migration(
        small_project / "sql",
        "00001_t.sql",
        "CREATE TABLE t (id INTEGER);\n\n"
        "-- +goose StatementBegin\n"
        "CREATE TRIGGER t_ins AFTER INSERT ON t BEGIN SELECT 1; END;\n"
        "-- +goose StatementEnd",
        "DROP TABLE t;",
        extra="-- +goose NO TRANSACTION\n",
    )
    db = tmp_path / "x.db"
    assert cli("migrate", "convert", "--db", str(db)).exit_code == 0
    (revision,) = (small_project / "alembic" / "versions").glob("*.py")
    text = revision.read_text()
    assert "with op.get_context().autocommit_block():" in text
    # The StatementBegin block is one statement, kept whole.
    assert "CREATE TRIGGER t_ins AFTER INSERT ON t BEGIN SELECT 1; END;" in text
    assert cli("migrate", "up", "--db", str(db)).exit_code == 0
    triggers = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
    assert sqlite_rows(db, triggers) == [("t_ins",)]
    versions = "SELECT version_id FROM goose_db_version ORDER BY id"
    assert sqlite_rows(db, versions) == [(0,), (1,)]
    assert cli("migrate", "down", "--db", str(db)).exit_code == 0
    assert sqlite_rows(db, versions) == [(0,)]


def test_convert_takes_the_versions_it_is_given(small_project: Path, tmp_path: Path) -> None:
    for number in (1, 2):
        write_migration(
            small_project / "sql", f"0000{number}_t{number}.sql", f"CREATE TABLE t{number} (a int);"
        )
    db = str(tmp_path / "x.db")
    assert cli("migrate", "convert", "2", "--db", db).exit_code == 0
    (revision,) = (small_project / "alembic" / "versions").glob("*.py")
    assert revision.name == "00002_t2.py"
    assert "down_revision = '00001'" in revision.read_text()
    unknown = cli("migrate", "convert", "7", "--db", db)
    assert unknown.exit_code != 0 and "7" in unknown.stderr


@pytest.mark.parametrize("version", ["²", "١"])
def test_convert_reads_versions_as_goose_does(
    small_project: Path, tmp_path: Path, version: str
) -> None:
    # Python's str.isdigit() takes '²' (and int() then fails), int() takes
    # Arabic-Indic digits: goose reads ASCII digits only.
    write_migration(small_project / "sql", "00001_t1.sql", "CREATE TABLE t1 (a int);")
    result = cli("migrate", "convert", version, "--db", str(tmp_path / "x.db"))
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"Error: version {version} is no goose file in {small_project / 'sql'}"
    ]
    assert not list((small_project / "alembic" / "versions").glob("*.py"))


def test_the_offline_script_is_the_same_after_convert(tmp_path: Path, monkeypatch) -> None:
    root = copy_project(tmp_path / "project")
    monkeypatch.chdir(root)
    db = str(tmp_path / "x.db")
    before = cli("migrate", "up", "--sql", "--db", db)
    assert before.exit_code == 0, before.output
    assert cli("migrate", "convert", "--db", db).exit_code == 0
    after = cli("migrate", "up", "--sql", "--db", db)
    assert after.stdout == before.stdout


def test_the_stock_alembic_command_upgrades_through_converted_revisions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = copy_project(tmp_path / "project")
    monkeypatch.chdir(root)
    goose_db, converted_db = tmp_path / "goose.db", tmp_path / "converted.db"
    assert run_alembic("upgrade", "head", cwd=root, db=goose_db).returncode == 0
    assert cli("migrate", "convert", "--remove-sql", "--db", str(goose_db)).exit_code == 0
    upgraded = run_alembic("upgrade", "head", cwd=root, db=converted_db)
    assert upgraded.returncode == 0, upgraded.stderr
    for query in (
        "SELECT name, sql FROM sqlite_master ORDER BY name",
        "SELECT version_id, is_applied FROM goose_db_version ORDER BY id",
        "SELECT version_num FROM alembic_version",
    ):
        assert sqlite_rows(converted_db, query) == sqlite_rows(goose_db, query)


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT 1;",
        "INSERT INTO t VALUES ('a\\nb', 'c\"');\n",
        'CREATE TABLE "x" (a TEXT DEFAULT \'"""\');\nSELECT \'\\\';',
        "SELECT ':name', '%s';\r\n-- trailing\n",
    ],
)
def test_a_statement_is_written_byte_for_byte(statement: str) -> None:
    import ast

    from llm_proxy.goose.python_revision import _literal

    assert ast.literal_eval(_literal(statement)) == statement


def test_revisions_converted_for_another_dialect_are_refused_before_anything_runs(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = copy_project(tmp_path / "project")
    monkeypatch.chdir(root)
    assert cli("migrate", "convert", "--db", str(tmp_path / "x.db")).exit_code == 0
    database = Database("postgresql", postgres_url)
    refused = cli("migrate", "up", *database.options)
    assert refused.exit_code != 0
    assert refused.stderr.strip().count("\n") == 0, refused.stderr
    assert "00001_initial_schema.py" in refused.stderr and "sqlite" in refused.stderr
    assert not database.has_table("goose_db_version")


def test_goose_and_llm_proxy_take_turns_after_convert(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The .sql stays goose's: what goose applies, the converted revision does not run
    again, and goose's rows are the ones goose alone would have written."""
    root = copy_project(tmp_path / "project")
    monkeypatch.chdir(root)
    reference, db = tmp_path / "goose.db", tmp_path / "turns.db"
    files = sorted((root / "sql").glob("*.sql"))
    for file in files:
        goose_apply(reference, file)
    for file in files[:2]:
        goose_apply(db, file)
    assert cli("migrate", "convert", "--db", str(db)).exit_code == 0
    assert cli("migrate", "up-to", "4", "--db", str(db)).exit_code == 0
    goose_apply(db, files[4])  # goose applies 00005 from its .sql
    ran = cli("migrate", "up", "--db", str(db))
    assert ran.exit_code == 0, ran.output
    assert "00005" not in ran.stdout and "OK   00006_extend_audit_outcome.sql" in ran.stdout
    for query in (
        "SELECT name, sql FROM sqlite_master WHERE tbl_name NOT LIKE 'llm_proxy%'"
        " AND tbl_name != 'alembic_version' ORDER BY name",
        "SELECT version_id, is_applied FROM goose_db_version ORDER BY id",
    ):
        assert sqlite_rows(db, query) == sqlite_rows(reference, query)


def test_the_literal_graph_and_alembics_agree_on_converted_revisions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = copy_project(tmp_path / "project")
    monkeypatch.chdir(root)
    settings = settings_for(db=str(tmp_path / "x.db"))
    before = literal_graph(settings)
    assert cli("migrate", "convert", "2", "5", "--remove-sql", "--db", str(tmp_path / "x.db"))
    after_literal, after_alembic = literal_graph(settings), graph_through_alembic(settings)
    assert after_literal == after_alembic
    assert after_literal.order == before.order
    assert {r: (n.parents, n.goose_version, n.name) for r, n in after_literal.nodes.items()} == {
        r: (n.parents, n.goose_version, n.name) for r, n in before.nodes.items()
    }
    assert after_literal.nodes["00005"].converted_file == "00005_rename_openai_api_key.py"


def test_create_numbers_after_the_converted_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = copy_project(tmp_path / "project")
    monkeypatch.chdir(root)
    db = str(tmp_path / "x.db")
    assert cli("migrate", "convert", "5", "6", "--remove-sql", "--db", db).exit_code == 0
    created = cli("migrate", "create", "add z", "--db", db)
    assert created.exit_code == 0, created.output
    assert (root / "sql" / "00007_add_z.sql").exists()
    assert cli("migrate", "up", "--db", db).exit_code == 0


def test_a_no_transaction_file_writes_the_same_offline_script(
    small_project: Path, tmp_path: Path
) -> None:
    write_migration(
        small_project / "sql",
        "00001_t.sql",
        "CREATE TABLE t (id INTEGER);\nCREATE INDEX t_id ON t (id);",
        "DROP TABLE t;",
        extra="-- +goose NO TRANSACTION\n",
    )
    db = str(tmp_path / "x.db")
    before = cli("migrate", "up", "--sql", "--db", db)
    assert "COMMIT" in before.stdout
    assert cli("migrate", "convert", "--db", db).exit_code == 0
    assert cli("migrate", "up", "--sql", "--db", db).stdout == before.stdout


def test_a_converted_no_transaction_file_runs_outside_a_transaction_on_postgresql(
    small_project: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    postgres_dir = small_project / "sql" / "postgres"
    postgres_dir.mkdir()
    write_migration(postgres_dir, "00001_t.sql", "CREATE TABLE t (id INTEGER);", "DROP TABLE t;")
    write_migration(
        postgres_dir,
        "00002_t_id.sql",
        "CREATE INDEX CONCURRENTLY t_id ON t (id);",
        "DROP INDEX CONCURRENTLY t_id;",
        extra="-- +goose NO TRANSACTION\n",
    )
    database = Database("postgresql", postgres_url)
    migrate(database, "convert", "--remove-sql")
    migrate(database, "up")
    assert database.sql("SELECT indexname FROM pg_indexes WHERE tablename = 't'") == [("t_id",)]
    assert database.goose_rows() == [(0, True), (1, True), (2, True)]
    migrate(database, "down")
    assert database.sql("SELECT indexname FROM pg_indexes WHERE tablename = 't'") == []
    assert database.goose_rows() == [(0, True), (1, True)]
