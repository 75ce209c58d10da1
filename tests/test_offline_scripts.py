"""Offline (--sql) scripts run as written by the database's own client (sqlite3,
psql, mysql) and build the database the online run builds."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import cli, write_migration
from stock_alembic import (
    DIALECT_NAMES,
    alembic_heads,
    catalog,
    copy_project,
    empty_database,
    goose_versions,
    run_alembic,
    run_script,
)

# A statement each database refuses inside a transaction block (MySQL has none:
# its file still has to run outside BEGIN/COMMIT, as written).
NO_TRANSACTION_UP = {
    "sqlite": "VACUUM;",
    "postgresql": "CREATE INDEX CONCURRENTLY idx_tokens_expiry ON tokens (expires_at);",
    "mysql": "CREATE INDEX idx_tokens_expiry ON tokens (expires_at);",
}
NO_TRANSACTION_DOWN = {
    "sqlite": "VACUUM;",
    "postgresql": "DROP INDEX CONCURRENTLY idx_tokens_expiry;",
    "mysql": "DROP INDEX idx_tokens_expiry ON tokens;",
}
SUBDIRECTORY = {"sqlite": "", "postgresql": "postgres", "mysql": "mysql"}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return copy_project(tmp_path / "project")


@pytest.fixture(params=DIALECT_NAMES)
def dialect_name(request: pytest.FixtureRequest) -> str:
    return request.param


def goose_dir(project: Path, dialect_name: str) -> Path:
    return (
        project / "sql" / SUBDIRECTORY[dialect_name]
        if SUBDIRECTORY[dialect_name]
        else (project / "sql")
    )


def two_databases(
    request: pytest.FixtureRequest, dialect_name: str, tmp_path: Path
) -> tuple[str, str]:
    """(for the script, for the online run): two empty databases of one dialect."""
    if dialect_name == "sqlite":
        return f"sqlite:///{tmp_path / 'script.db'}", f"sqlite:///{tmp_path / 'online.db'}"
    import sqlalchemy

    first = empty_database(request, dialect_name, tmp_path)
    name = first.rsplit("/", 1)[1] + "_online"
    quote = '"' if dialect_name == "postgresql" else "`"
    admin = sqlalchemy.create_engine(first, isolation_level="AUTOCOMMIT")

    def drop() -> None:
        with admin.connect() as connection:
            if dialect_name == "postgresql":
                connection.exec_driver_sql(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    f"WHERE datname = '{name}'"
                )
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {quote}{name}{quote}")
        admin.dispose()

    with admin.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {quote}{name}{quote}")
    request.addfinalizer(drop)
    return first, first.rsplit("/", 1)[0] + "/" + name


def llm_proxy_url(url: str) -> str:
    return url.replace("+psycopg", "").replace("+pymysql", "")


def online_up(url: str, migrations: Path, *extra: str) -> None:
    if url.startswith("sqlite"):
        where = ["--db", url.removeprefix("sqlite:///")]
    else:
        where = ["--database-url", llm_proxy_url(url)]
    result = cli("migrate", "up", *where, "--migrations-dir", str(migrations), *extra)
    assert result.exit_code == 0, result.stderr


def assert_ran(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stderr or result.stdout


@pytest.mark.parametrize("door", ["llm-proxy", "alembic"])
def test_no_transaction_file_runs_bare_and_builds_what_up_builds(
    request: pytest.FixtureRequest, dialect_name: str, project: Path, tmp_path: Path, door: str
) -> None:
    migrations = goose_dir(project, dialect_name)
    write_migration(
        migrations,
        "00007_tokens_expiry_index.sql",
        NO_TRANSACTION_UP[dialect_name],
        NO_TRANSACTION_DOWN[dialect_name],
        extra="-- +goose NO TRANSACTION\n",
    )
    script_db, online_db = two_databases(request, dialect_name, tmp_path)
    if door == "llm-proxy":
        where = (
            ["--db", script_db.removeprefix("sqlite:///")]
            if dialect_name == "sqlite"
            else ["--database-url", llm_proxy_url(script_db)]
        )
        made = cli("migrate", "up", "--sql", *where, "--migrations-dir", str(migrations))
        assert made.exit_code == 0, made.stderr
        script = made.stdout
    else:
        made = run_alembic("upgrade", "head", "--sql", cwd=project, env={"DATABASE_URL": script_db})
        assert made.returncode == 0, made.stderr
        script = made.stdout

    assert_ran(run_script(script_db, script))
    online_up(online_db, migrations)

    assert goose_versions(script_db) == [0, 1, 2, 3, 4, 5, 6, 7]
    assert alembic_heads(script_db) == ["00007"]
    assert catalog(script_db) == catalog(online_db)


def test_range_script_on_a_database_only_goose_migrated(
    request: pytest.FixtureRequest, dialect_name: str, project: Path, tmp_path: Path
) -> None:
    """alembic_version does not exist yet: the script creates it and records the
    start revision, idempotently (a database llm-proxy keeps has it already)."""
    script_db, online_db = two_databases(request, dialect_name, tmp_path)
    migrations = goose_dir(project, dialect_name)
    _up_to(script_db, migrations, "2")
    _up_to(online_db, migrations, "2")
    _forget_alembic(script_db)  # as if only goose had ever migrated it

    made = run_alembic(
        "upgrade", "00002:00005", "--sql", cwd=project, env={"DATABASE_URL": script_db}
    )
    assert made.returncode == 0, made.stderr
    assert_ran(run_script(script_db, made.stdout))
    assert goose_versions(script_db) == [0, 1, 2, 3, 4, 5]
    assert alembic_heads(script_db) == ["00005"]

    # The same script on a database that has alembic_version at the start revision.
    made = run_alembic(
        "upgrade", "00002:00005", "--sql", cwd=project, env={"DATABASE_URL": online_db}
    )
    assert_ran(run_script(online_db, made.stdout))
    assert alembic_heads(online_db) == ["00005"]
    assert catalog(script_db) == catalog(online_db)


def _up_to(url: str, migrations: Path, version: str) -> None:
    if url.startswith("sqlite"):
        where = ["--db", url.removeprefix("sqlite:///")]
    else:
        where = ["--database-url", llm_proxy_url(url)]
    result = cli("migrate", "up-to", version, *where, "--migrations-dir", str(migrations))
    assert result.exit_code == 0, result.stderr


def _forget_alembic(url: str) -> None:
    from stock_alembic import connected

    with connected(url) as connection:
        for table in ("alembic_version", "llm_proxy_migrations", "llm_proxy_partial_runs"):
            connection.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
        connection.commit()


def test_schema_script_puts_everything_in_the_schema(
    request: pytest.FixtureRequest, project: Path, tmp_path: Path
) -> None:
    script_db, online_db = two_databases(request, "postgresql", tmp_path)
    migrations = goose_dir(project, "postgresql")
    made = cli(
        "migrate", "up", "--sql", "--database-url", llm_proxy_url(script_db),
        "--schema", "tenant_a", "--migrations-dir", str(migrations),
    )  # fmt: skip
    assert made.exit_code == 0, made.stderr
    assert_ran(run_script(script_db, made.stdout))
    online_up(online_db, migrations, "--schema", "tenant_a")

    assert catalog(script_db, "public") == {}
    assert catalog(script_db, "tenant_a") == catalog(online_db, "tenant_a")
    assert "projects" in catalog(script_db, "tenant_a")
