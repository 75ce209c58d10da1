"""`migrate squash --through VERSION`: a baseline for new databases built from the schema
the squashed files create, while databases at or past VERSION keep their history."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import (
    BOOKKEEPING,
    SQL_DIR,
    goose_apply,
    run_cli,
    settings_for,
    sqlite_dump,
    sqlite_rows,
    write_migration,
)
from stock_alembic import copy_project, run_alembic

from llm_proxy import config as llm_config
from llm_proxy import migrate
from llm_proxy.db import drivers
from llm_proxy.errors import MigrateError, SquashError, StatementFailed
from llm_proxy.goose.baseline import baseline_name, is_baseline_name, render_baseline
from llm_proxy.goose.directives import read_directives
from llm_proxy.goose.parser import parse_sections
from llm_proxy.validate.roundtrip import scratch_database
from llm_proxy.validate.squashing import squash

THROUGH = "4"  # the shipped history has six files: 1..4 squashed, 5 and 6 run after


def _copy_shipped(source: Path, target: Path) -> Path:
    target.mkdir(parents=True)
    for file in source.glob("*.sql"):
        shutil.copy(file, target / file.name)
    return target


# Columns as each database's own catalog lists them, read independently of dump_schema.
COLUMNS_SQL = {
    "sqlite": (
        'SELECT m.name, p.cid, p.name, p.type, p."notnull", p.dflt_value, p.pk '
        "FROM sqlite_master m, pragma_table_info(m.name) p WHERE m.type = 'table' "
        "ORDER BY m.name, p.cid"
    ),
    "postgresql": (
        "SELECT table_name, ordinal_position, column_name, data_type, is_nullable, "
        "column_default FROM information_schema.columns WHERE table_schema = current_schema() "
        "ORDER BY table_name, ordinal_position"
    ),
    "mysql": (
        "SELECT table_name, ordinal_position, column_name, column_type, is_nullable, "
        "column_default FROM information_schema.columns WHERE table_schema = DATABASE() "
        "ORDER BY table_name, ordinal_position"
    ),
}


def catalog_schema(settings: llm_config.Settings) -> tuple[list[str], list[tuple]]:
    """The user schema as the database's catalogs describe it (version tables left out):
    the rebuilding statements, and every column as the catalog lists it."""
    with drivers.connection(settings) as connection:
        statements = settings.dialect.dump_schema(drivers.executor(connection), BOOKKEEPING)
        columns = drivers.rows(connection, COLUMNS_SQL[settings.dialect.name])
    return statements.statements, [c for c in columns if c[0] not in BOOKKEEPING]


def goose_versions(settings: llm_config.Settings) -> list[int]:
    with drivers.connection(settings) as connection:
        rows = drivers.rows(connection, "SELECT version_id FROM goose_db_version ORDER BY id")
    return [int(row[0]) for row in rows]


def _round_trip(full: llm_config.Settings, squashed_dir: Path, url_or_db: dict) -> None:
    """`full` runs the whole history; a new database runs the squashed directory."""
    squashed = settings_for(migrations_dir=str(squashed_dir), **url_or_db)
    squash(squashed, THROUGH)
    names = sorted(p.name for p in squashed_dir.glob("*.sql"))
    assert names[0] == "00004_squashed_baseline.sql" and len(names) == 3
    migrate.up(full, to=THROUGH)
    with scratch_database(squashed) as fresh:
        migrate.up(fresh, to=THROUGH)
        # goose reads a new database built from the baseline as being at VERSION.
        assert goose_versions(fresh) == [0, 4]
        at_version = catalog_schema(full)
        assert len(at_version[0]) >= 3 and len(at_version[1]) > 20  # the shipped schema
        assert catalog_schema(fresh) == at_version
        migrate.up(fresh)
        migrate.up(full)
        assert goose_versions(fresh) == [0, 4, 5, 6]
        assert catalog_schema(fresh) == catalog_schema(full)


def test_round_trip_sqlite(tmp_path: Path) -> None:
    full = settings_for(db=str(tmp_path / "full.db"), migrations_dir=str(SQL_DIR))
    squashed_dir = _copy_shipped(SQL_DIR, tmp_path / "squashed")
    _round_trip(full, squashed_dir, {"db": str(tmp_path / "unused.db")})


def test_round_trip_postgres(tmp_path: Path, postgres_url: str) -> None:
    full = settings_for(database_url=postgres_url, migrations_dir=str(SQL_DIR / "postgres"))
    squashed_dir = _copy_shipped(SQL_DIR / "postgres", tmp_path / "squashed")
    _round_trip(full, squashed_dir, {"database_url": postgres_url})


def test_round_trip_mariadb(tmp_path: Path, mysql_url: str) -> None:
    full = settings_for(database_url=mysql_url, migrations_dir=str(SQL_DIR / "mysql"))
    squashed_dir = _copy_shipped(SQL_DIR / "mysql", tmp_path / "squashed")
    _round_trip(full, squashed_dir, {"database_url": mysql_url})


@pytest.fixture
def squashed_pair(tmp_path: Path) -> tuple[Path, Path]:
    """(the full shipped SQLite history, a copy squashed through 4)."""
    full = _copy_shipped(SQL_DIR, tmp_path / "full")
    squashed = _copy_shipped(SQL_DIR, tmp_path / "squashed")
    squash(settings_for(db=str(tmp_path / "unused.db"), migrations_dir=str(squashed)), THROUGH)
    return full, squashed


def test_database_past_version_keeps_history(tmp_path: Path, squashed_pair) -> None:
    full, squashed = squashed_pair
    db = str(tmp_path / "old.db")
    migrate.up(settings_for(db=db, migrations_dir=str(full)), to="5")
    before = sqlite_rows(Path(db), "SELECT version_id FROM goose_db_version ORDER BY id")
    result = run_cli("migrate", "up", "--db", db, "--migrations-dir", str(squashed))
    assert result.returncode == 0, result.stderr
    assert "00004_squashed_baseline" not in result.stdout + result.stderr  # never run there
    after = sqlite_rows(Path(db), "SELECT version_id FROM goose_db_version ORDER BY id")
    assert after == [*before, (6,)]


def test_database_below_version_is_refused(tmp_path: Path, squashed_pair) -> None:
    full, squashed = squashed_pair
    db = tmp_path / "older.db"
    migrate.up(settings_for(db=str(db), migrations_dir=str(full)), to="2")
    before = sqlite_dump(db)
    result = run_cli("migrate", "up", "--db", str(db), "--migrations-dir", str(squashed))
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "version 2" in lines[0] and "00004_squashed_baseline.sql" in lines[0]
    assert "release that still has" in lines[0]
    assert sqlite_dump(db) == before
    with pytest.raises(MigrateError, match="upgrade it to version 4"):
        migrate.up(settings_for(db=str(db), migrations_dir=str(squashed)), to="6")


def test_baseline_down_is_refused(tmp_path: Path, squashed_pair) -> None:
    _, squashed = squashed_pair
    db = tmp_path / "new.db"
    settings = settings_for(db=str(db), migrations_dir=str(squashed))
    migrate.up(settings, to=THROUGH)
    before = sqlite_dump(db)
    with pytest.raises(StatementFailed, match="squashed baseline and cannot be rolled back"):
        migrate.down(settings)
    assert sqlite_dump(db) == before


def test_seed_rows_are_kept(tmp_path: Path, migrations_dir: Path) -> None:
    write_migration(
        migrations_dir,
        "00001_plans.sql",
        "CREATE TABLE plans (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL, note BLOB);\n"
        "INSERT INTO plans (id, name, price, note) VALUES (1, 'it''s free', 0.0, NULL);\n"
        "INSERT INTO plans (id, name, price, note) VALUES (2, 'pro', 9.5, X'00ff');",
        "DROP TABLE plans;",
    )
    write_migration(migrations_dir, "00002_more.sql", "ALTER TABLE plans ADD COLUMN tier INTEGER;")
    squash(settings_for(db=str(tmp_path / "unused.db"), migrations_dir=str(migrations_dir)), "2")
    db = tmp_path / "new.db"
    migrate.up(settings_for(db=str(db), migrations_dir=str(migrations_dir)))
    assert sqlite_rows(db, "SELECT id, name, price, note, tier FROM plans ORDER BY id") == [
        (1, "it's free", 0.0, None, None),
        (2, "pro", 9.5, b"\x00\xff", None),
    ]


def test_cli_archive_and_bad_version(tmp_path: Path) -> None:
    directory = _copy_shipped(SQL_DIR, tmp_path / "sql")
    before = sorted(p.name for p in directory.iterdir())
    bad = run_cli("migrate", "squash", "--through", "7", "--migrations-dir", str(directory))
    assert bad.returncode != 0
    assert bad.stderr.strip().count("\n") == 0 and "--through 7" in bad.stderr
    assert sorted(p.name for p in directory.iterdir()) == before
    archive = tmp_path / "archive"
    result = run_cli(
        "migrate", "squash", "--through", "3", "--archive", str(archive),
        "--migrations-dir", str(directory), "--db", str(tmp_path / "unused.db"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in archive.iterdir()) == before[:3]
    assert sorted(p.name for p in directory.iterdir()) == [
        "00003_squashed_baseline.sql",
        *before[3:],
    ]
    assert not (tmp_path / "unused.db").exists()  # only a scratch database was used


def test_unknown_version_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SquashError, match="--through 9"):
        squash(settings_for(db=str(tmp_path / "x.db"), migrations_dir=str(SQL_DIR)), "9")


def test_removed_files_without_baseline_still_run_as_goose_runs_them(tmp_path: Path) -> None:
    """Only a squashed baseline makes an older database a refusal: goose applies the files
    it has above a database whose old files were deleted, and so does llm-proxy."""
    directory = _copy_shipped(SQL_DIR, tmp_path / "sql")
    db = tmp_path / "goose.db"
    for file in sorted(directory.glob("*.sql"))[:2]:
        goose_apply(db, file)
        file.unlink()
    migrate.up(settings_for(db=str(db), migrations_dir=str(directory)))
    rows = sqlite_rows(db, "SELECT version_id FROM goose_db_version ORDER BY id")
    assert rows == [(0,), (1,), (2,), (3,), (4,), (5,), (6,)]


def test_baseline_text_is_a_goose_file_with_a_refused_down() -> None:
    """Statements holding semicolons stay whole; Down is the one refusing statement."""
    text = render_baseline(
        7,
        "00001_a.sql",
        "00007_b.sql",
        ["CREATE TABLE t (a TEXT DEFAULT ';' CHECK (a <> 'x;y'));", "CREATE INDEX i ON t (a)"],
        ["INSERT INTO t (a) VALUES ('1;2')"],
        'SELECT * FROM "nope"',
    )
    up, down = parse_sections(text)
    assert [s.strip() for s in up.statements] == [
        "CREATE TABLE t (a TEXT DEFAULT ';' CHECK (a <> 'x;y'));",
        "CREATE INDEX i ON t (a);",
        "INSERT INTO t (a) VALUES ('1;2');",
    ]
    assert up.use_tx
    assert [s.strip() for s in down.statements] == ['SELECT * FROM "nope";']
    assert read_directives(text, "x.sql").baseline
    assert not read_directives("-- +goose Up\nSELECT 1;\n", "x.sql").baseline
    assert is_baseline_name(baseline_name("00007"))


SEED = {
    "postgres": (
        "CREATE TABLE plans (id INTEGER PRIMARY KEY, name TEXT NOT NULL, free BOOLEAN,"
        " since TIMESTAMPTZ, note BYTEA);\n"
        "INSERT INTO plans VALUES (1, 'it''s free', TRUE, '2024-01-02 03:04:05+00', '\\x00ff');"
    ),
    "mysql": (
        "CREATE TABLE plans (id INTEGER PRIMARY KEY, name VARCHAR(50) NOT NULL, free BOOLEAN,"
        " since DATETIME(6), note VARBINARY(8));\n"
        "INSERT INTO plans VALUES (1, 'it''s free\\\\', TRUE, '2024-01-02 03:04:05', X'00ff');"
    ),
}


@pytest.mark.parametrize("kind", ["postgres", "mysql"])
def test_seed_rows_are_kept_on_servers(
    request: pytest.FixtureRequest, tmp_path: Path, migrations_dir: Path, kind: str
) -> None:
    url = request.getfixturevalue("postgres_url" if kind == "postgres" else "mysql_url")
    write_migration(migrations_dir, "00001_plans.sql", SEED[kind], "DROP TABLE plans;")
    settings = settings_for(database_url=url, migrations_dir=str(migrations_dir))
    squash(settings, "1")
    migrate.up(settings)
    with drivers.connection(settings) as connection:
        rows = drivers.rows(connection, "SELECT id, name, free, note FROM plans")
        since = drivers.rows(connection, "SELECT since FROM plans")[0][0]
    assert [(r[0], r[1], bool(r[2]), bytes(r[3])) for r in rows] == [
        (1, "it's free" + ("\\" if kind == "mysql" else ""), True, b"\x00\xff")
    ]
    assert (since.year, since.month, since.day, since.hour) == (2024, 1, 2, 3)


@pytest.mark.parametrize("server", ["postgres_url", "mysql_url"])
def test_server_objects_the_dump_does_not_cover_are_refused(
    migrations_dir: Path, server: str, request: pytest.FixtureRequest
) -> None:
    write_migration(
        migrations_dir,
        "00001_view.sql",
        "CREATE TABLE t (a INTEGER);\nCREATE VIEW v AS SELECT a FROM t;",
        "DROP VIEW v;\nDROP TABLE t;",
    )
    url = request.getfixturevalue(server)
    settings = settings_for(database_url=url, migrations_dir=str(migrations_dir))
    with pytest.raises(SquashError, match="view v"):
        squash(settings, "1")
    assert [p.name for p in migrations_dir.iterdir()] == ["00001_view.sql"]


def test_postgres_baseline_builds_in_the_configured_schema(
    tmp_path: Path, postgres_url: str
) -> None:
    """Names in the baseline are unqualified: it builds in --schema as the history does."""
    squashed_dir = _copy_shipped(SQL_DIR / "postgres", tmp_path / "squashed")
    squash(settings_for(database_url=postgres_url, migrations_dir=str(squashed_dir)), THROUGH)
    full = settings_for(
        database_url=postgres_url, migrations_dir=str(SQL_DIR / "postgres"), schema="full"
    )
    fresh = settings_for(database_url=postgres_url, migrations_dir=str(squashed_dir), schema="app")
    migrate.up(full)
    migrate.up(fresh)
    assert catalog_schema(fresh) == catalog_schema(full)
    assert goose_versions(fresh) == [0, 4, 5, 6]


def test_stock_alembic_refuses_a_database_below_the_baseline(tmp_path: Path, squashed_pair) -> None:
    full, squashed = squashed_pair
    db = tmp_path / "older.db"
    migrate.up(settings_for(db=str(db), migrations_dir=str(full)), to="2")
    before = sqlite_dump(db)
    project = copy_project(tmp_path / "project")
    result = run_alembic(
        "upgrade",
        "head",
        cwd=project,
        env={"DATABASE_PATH": str(db), "LLM_PROXY_MIGRATIONS_DIR": str(squashed)},
    )
    assert result.returncode != 0
    assert "older than the squashed baseline 00004_squashed_baseline.sql" in result.stderr
    assert sqlite_dump(db) == before


def test_converted_file_is_refused(tmp_path: Path) -> None:
    """A goose file converted into a Python revision is no goose file to squash."""
    project = copy_project(tmp_path / "project")
    db = str(tmp_path / "unused.db")
    converted = run_cli("migrate", "convert", "2", "--db", db, cwd=project)
    assert converted.returncode == 0, converted.stderr
    before = sorted(p.name for p in (project / "sql").iterdir())
    result = run_cli("migrate", "squash", "--through", "3", "--db", db, cwd=project)
    assert result.returncode != 0
    assert "00002_add_deactivated_at.py" in result.stderr and "converted" in result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert sorted(p.name for p in (project / "sql").iterdir()) == before


def test_python_revision_on_a_squashed_file_is_refused(tmp_path: Path) -> None:
    """Its parent would be gone: squash through a version below it only."""
    project = copy_project(tmp_path / "project")
    db = str(tmp_path / "unused.db")
    created = run_cli("migrate", "create", "add_thing", "--python", "--db", db, cwd=project)
    assert created.returncode == 0, created.stderr
    result = run_cli("migrate", "squash", "--through", "6", "--db", db, cwd=project)
    assert result.returncode != 0
    assert "builds on 00006" in result.stderr
    assert result.stderr.strip().count("\n") == 0


def test_validate_accepts_a_squashed_directory(tmp_path: Path, squashed_pair) -> None:
    """No not-idempotent / down-not-reverse warnings for the baseline (it runs only on new
    databases, its Down refuses on purpose); --apply rolls back down to the baseline only."""
    _, squashed = squashed_pair
    db = str(tmp_path / "unused.db")
    lint = run_cli("migrate", "validate", "--migrations-dir", str(squashed), "--db", db)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert "squashed_baseline" not in lint.stdout + lint.stderr
    applied = run_cli(
        "migrate", "validate", "--apply", "--migrations-dir", str(squashed), "--db", db
    )  # fmt: skip
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "0 errors, 0 warnings" in applied.stdout + applied.stderr
