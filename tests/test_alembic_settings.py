"""Which database and which goose files a stock Alembic run uses: one resolution
for the plugin (the goose directory) and env.py (the connection). Explicit
Config options and `-x` arguments beat the environment, which beats
alembic.ini; the goose files are always those of the connection's dialect."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import cli
from stock_alembic import (
    DIALECT_NAMES,
    connected,
    copy_project,
    empty_database,
    goose_versions,
    run_alembic,
    sqlalchemy_url,
    sqlite_file,
    table_names,
)

SHIPPED = [0, 1, 2, 3, 4, 5, 6]
APP_TABLES = {"projects", "tokens", "audit_events"}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return copy_project(tmp_path / "project")


@pytest.fixture(params=DIALECT_NAMES)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return empty_database(request, request.param, tmp_path)


def test_config_option_beats_the_environment(
    database: str, project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from alembic.config import Config

    from alembic import command

    decoy = tmp_path / "decoy.db"
    monkeypatch.setenv("DATABASE_PATH", str(decoy))
    config = Config(str(project / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", database)

    command.upgrade(config, "head")

    assert goose_versions(database) == SHIPPED
    assert table_names(database) >= APP_TABLES
    assert not decoy.exists()


def test_x_argument_beats_the_environment(database: str, project: Path, tmp_path: Path) -> None:
    decoy = tmp_path / "decoy.db"
    result = run_alembic(
        "-x", f"database_url={database}", "upgrade", "head",
        cwd=project, env={"DATABASE_PATH": str(decoy)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert goose_versions(database) == SHIPPED
    assert not decoy.exists()


def test_environment_beats_the_ini(project: Path, tmp_path: Path) -> None:
    ini_db, env_db = tmp_path / "ini.db", tmp_path / "env.db"
    ini = project / "alembic.ini"
    ini.write_text(
        ini.read_text().replace("sqlite:///data/llm-proxy.db", f"sqlite:///{ini_db}"), "utf-8"
    )
    result = run_alembic("upgrade", "head", cwd=project, env={"DATABASE_PATH": str(env_db)})
    assert result.returncode == 0, result.stderr
    assert goose_versions(f"sqlite:///{env_db}") == SHIPPED
    assert not ini_db.exists()

    # With nothing in the environment, the ini's URL is the database.
    result = run_alembic("upgrade", "head", cwd=project)
    assert result.returncode == 0, result.stderr
    assert goose_versions(f"sqlite:///{ini_db}") == SHIPPED


def test_db_driver_sqlite_runs_the_sqlite_files_on_the_sqlite_file(
    project: Path, tmp_path: Path
) -> None:
    db, reference = tmp_path / "x.db", tmp_path / "reference.db"
    env = {
        "DB_DRIVER": "sqlite",
        "DATABASE_URL": "postgres://nobody@127.0.0.1:1/unused",  # DB_DRIVER=sqlite ignores it
        "DATABASE_PATH": str(db),
    }
    result = run_alembic("upgrade", "head", cwd=project, env=env)
    assert result.returncode == 0, result.stderr
    assert cli("migrate", "up", "--db", str(reference)).exit_code == 0
    assert sqlite_file(db) == sqlite_file(reference)


def test_goose_files_of_another_dialect_never_run(
    request: pytest.FixtureRequest, project: Path, tmp_path: Path
) -> None:
    """The script directory was read for the Config's database (SQLite); the
    connection handed to env.py afterwards is PostgreSQL: refused, nothing run."""
    import sqlalchemy
    from alembic.config import Config
    from alembic.runtime.environment import EnvironmentContext
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    target = empty_database(request, "postgresql", tmp_path)
    config = Config(str(project / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", f"sqlite:///{tmp_path / 'config.db'}")
    script = ScriptDirectory.from_config(config)  # the SQLite files
    engine = sqlalchemy.create_engine(target)
    config.attributes["connection"] = engine
    try:
        with pytest.raises(CommandError) as refused:

            def upgrade(rev, context):  # what `alembic upgrade head` passes
                return script._upgrade_revs("head", rev)

            with EnvironmentContext(config, script, fn=upgrade, destination_rev="head"):
                script.run_env()
    finally:
        engine.dispose()
    message = str(refused.value)
    assert "\n" not in message
    assert "SQLite" in message and "PostgreSQL" in message
    assert table_names(target) == set()


def test_misspelt_x_argument_is_refused(project: Path, tmp_path: Path) -> None:
    db = tmp_path / "env.db"
    result = run_alembic(
        "-x", "databse_url=sqlite:///elsewhere.db", "upgrade", "head",
        cwd=project, env={"DATABASE_PATH": str(db)},
    )  # fmt: skip
    assert result.returncode != 0  # Alembic's CLI exits 255 on a CommandError
    assert result.stdout.strip().splitlines() == [
        "FAILED: -x databse_url=sqlite:///elsewhere.db: unknown argument (llm-proxy knows "
        "database_url, database_path, db_driver, schema, migrations_dir, lock_timeout, "
        "ddl_lock_timeout, ddl_lock_retries, statement_timeout, goose_table, allow_missing, "
        "lock_strategy, lock_lease, lock_url)"
    ]
    assert not db.exists()


def test_lock_strategy_reaches_the_stock_command(project: Path, postgres_url: str) -> None:
    bad = run_alembic(
        "-x", f"database_url={postgres_url}", "-x", "lock_strategy=sometimes", "upgrade", "head",
        cwd=project,
    )  # fmt: skip
    assert bad.returncode != 0
    assert bad.stdout.strip().splitlines() == [
        "FAILED: --lock-strategy='sometimes': choose one of auto, advisory, table"
    ]
    target = sqlalchemy_url(postgres_url)
    assert table_names(target) == set()
    result = run_alembic(
        "-x", f"database_url={postgres_url}", "-x", "lock_strategy=table", "upgrade", "head",
        cwd=project,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    # The lease's table was made to hold the lock, and the row is gone with it.
    assert "llm_proxy_migration_lock" in table_names(target)
    with connected(target) as connection:
        assert (
            connection.exec_driver_sql("SELECT count(*) FROM llm_proxy_migration_lock").scalar()
            == 0
        )


def test_explicit_url_contradicting_db_driver_is_refused(project: Path, tmp_path: Path) -> None:
    db = tmp_path / "env.db"
    result = run_alembic(
        "-x", "database_url=postgres://nobody@127.0.0.1:1/x", "upgrade", "head",
        cwd=project, env={"DB_DRIVER": "sqlite", "DATABASE_PATH": str(db)},
    )  # fmt: skip
    assert result.returncode != 0
    assert result.stdout.strip().splitlines() == [
        "FAILED: DB_DRIVER=sqlite does not match the database URL "
        "postgresql+psycopg://nobody@127.0.0.1:1/x"
    ]
    assert not db.exists()


# The order, on the pure function: (sources, environment) -> (database, goose directory).
ORDER_CASES = [
    pytest.param(
        {"file_url": "sqlite:///ini.db"}, {}, "sqlite:///ini.db", None, id="ini-only"
    ),
    pytest.param(
        {"file_url": "sqlite:///ini.db"}, {"DATABASE_PATH": "env.db"}, "env.db", None,
        id="environment-over-ini",
    ),
    pytest.param(
        {"explicit": {"database_url": "postgres://u@h/db"}},
        {"DATABASE_PATH": "env.db"}, "postgresql+psycopg://u@h/db", None,
        id="explicit-over-environment",
    ),
    pytest.param(
        {"file_goose": {"goose_directory": "/f/sql", "goose_directory_postgresql": "/f/pg"},
         "explicit": {"database_url": "postgres://u@h/db"}},
        {}, "postgresql+psycopg://u@h/db", "/f/pg", id="goose-directory-of-the-dialect",
    ),
    pytest.param(
        {"file_goose": {"goose_directory": "/f/sql", "goose_directory_postgresql": "/f/pg"}},
        {"DB_DRIVER": "sqlite", "DATABASE_URL": "postgres://u@h/db", "DATABASE_PATH": "x.db"},
        "x.db", "/f/sql", id="db-driver-sqlite-means-the-sqlite-files",
    ),
    pytest.param(
        {"file_goose": {"goose_directory": "/f/sql"}, "explicit_goose": {"goose_directory": "/c"}},
        {"LLM_PROXY_MIGRATIONS_DIR": "/env"}, None, "/c", id="config-option-over-environment",
    ),
    pytest.param(
        {"file_goose": {"goose_directory": "/f/sql"}},
        {"LLM_PROXY_MIGRATIONS_DIR": "/env"}, None, "/env", id="environment-over-ini-goose",
    ),
    pytest.param(
        {"file_goose": {"goose_directory_mysql": "/f/my"}}, {}, None, None,
        id="no-directory-for-this-dialect",
    ),
]  # fmt: skip


@pytest.mark.parametrize("given,env,database,goose_dir", ORDER_CASES)
def test_resolution_order(
    given: dict, env: dict[str, str], database: str | None, goose_dir: str | None
) -> None:
    from llm_proxy.config import AlembicSources, resolve_for_alembic

    settings, chosen = resolve_for_alembic(AlembicSources(**given), env)
    if database is not None:
        expected = database if "://" in database else str(Path(database).absolute())
        assert expected in settings.url
    assert chosen == (Path(goose_dir) if goose_dir else None)
