"""Shared fixtures: real databases, one per test, cleaned up afterwards.

PostgreSQL and MariaDB tests skip with a reason when the server is not
reachable, except under CI=true, where a missing server is a failure.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from llm_proxy import config as llm_config

# PgBouncer and Galera fixtures: tests/topology_fixtures.py.
pytest_plugins = ("topology_fixtures",)

REPO = Path(__file__).resolve().parent.parent
SQL_DIR = REPO / "sql"
PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
MYSQL_HOST = os.environ.get("TEST_MYSQL_HOST", "127.0.0.1")
MYSQL_PORT = int(os.environ.get("TEST_MYSQL_PORT", "3306"))
IN_CI = os.environ.get("CI", "").lower() == "true"

# Tables that record migrations (goose's, Alembic's, ours) rather than hold data.
BOOKKEEPING = {
    "goose_db_version",
    "alembic_version",
    "llm_proxy_migrations",
    "llm_proxy_partial_runs",
}

# What llm-proxy reads from the environment. Tests set these explicitly or not at
# all: neither the runner's shell nor one test may leak them into another.
SETTINGS_ENV = (
    "DATABASE_URL",
    "DATABASE_PATH",
    "DB_DRIVER",
    "LLM_PROXY_MIGRATIONS_DIR",
    "LLM_PROXY_ALEMBIC_INI",
    "LLM_PROXY_AUTO_MIGRATE",
    "LLM_PROXY_LOCK_TIMEOUT",
    "LLM_PROXY_DDL_LOCK_TIMEOUT",
    "LLM_PROXY_DDL_LOCK_RETRIES",
    "LLM_PROXY_STATEMENT_TIMEOUT",
    "LLM_PROXY_DB_SCHEMA",
    "LLM_PROXY_DEBUG",
    "LLM_PROXY_READINESS_TIMEOUT",
    "LLM_PROXY_GOOSE_TABLE",
    "LLM_PROXY_LOCK_STRATEGY",
    "LLM_PROXY_LOCK_LEASE",
    "LLM_PROXY_MIGRATION_DATABASE_URL",
    "GOOSE_DRIVER",
    "GOOSE_DBSTRING",
    "GOOSE_MIGRATION_DIR",
    "GOOSE_TABLE",
)


def _unavailable(what: str, reason: str) -> None:
    message = f"{what} not reachable ({reason})"
    if IN_CI:
        pytest.fail(f"{message}; CI=true requires it")
    pytest.skip(message)


def settings_for(**kwargs: object) -> llm_config.Settings:
    """Settings from explicit values only (no DATABASE_URL etc. from the test runner)."""
    return llm_config.resolve(env={}, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    return tmp_path / "db" / "llm-proxy.db"


@pytest.fixture
def sqlite_settings(sqlite_path: Path) -> llm_config.Settings:
    return settings_for(db=str(sqlite_path))


@pytest.fixture
def migrations_dir(tmp_path: Path) -> Path:
    """An empty goose directory for a test to fill."""
    directory = tmp_path / "migrations"
    directory.mkdir()
    return directory


@pytest.fixture
def shipped_sqlite_dir(tmp_path: Path) -> Path:
    """A copy of the shipped SQLite migrations a test may add files to."""
    directory = tmp_path / "shipped"
    directory.mkdir()
    for file in SQL_DIR.glob("*.sql"):
        shutil.copy(file, directory / file.name)
    return directory


def write_migration(directory: Path, name: str, up: str, down: str = "", extra: str = "") -> Path:
    path = directory / name
    path.write_text(f"{extra}-- +goose Up\n{up}\n\n-- +goose Down\n{down}\n", encoding="utf-8")
    return path


def sqlite_dump(path: Path) -> str:
    """Schema and rows of a SQLite file, to prove a failed command changed nothing."""
    if not path.exists():
        return "<no file>"
    connection = sqlite3.connect(path)
    try:
        return "\n".join(connection.iterdump())
    finally:
        connection.close()


def sqlite_rows(path: Path, sql: str) -> list[tuple]:
    connection = sqlite3.connect(path)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - the test extra installs it
        _unavailable("PostgreSQL driver", str(exc))
    name = f"llmproxy_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.Error as exc:
        where = PG_ADMIN_URL.split("@")[-1].rsplit("/", 1)[0]
        _unavailable(f"PostgreSQL at {where}", " ".join(str(exc).split())[:200])
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')


@pytest.fixture
def mysql_url() -> Iterator[str]:
    try:
        import pymysql
    except ImportError as exc:  # pragma: no cover
        _unavailable("MySQL driver", str(exc))
    name = f"llmproxy_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = pymysql.connect(
            host=MYSQL_HOST,
            port=MYSQL_PORT,
            user="root",
            password="",
            connect_timeout=3,
            autocommit=True,
        )
    except pymysql.Error as exc:
        _unavailable(f"MariaDB/MySQL at {MYSQL_HOST}:{MYSQL_PORT}", str(exc)[:200])
    try:
        with admin.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{name}`")
        yield f"mysql://root@{MYSQL_HOST}:{MYSQL_PORT}/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


def run_cli(
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    user: int | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the installed `llm-proxy` in a real process."""
    full_env = {k: v for k, v in os.environ.items() if k not in SETTINGS_ENV}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "llm_proxy", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        user=user,
    )


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests choose their database explicitly; the runner's environment must not leak in."""
    for name in SETTINGS_ENV:
        monkeypatch.delenv(name, raising=False)


def graph_through_alembic(settings: llm_config.Settings):
    """The revision graph as Alembic loads it (Python revisions imported), to hold
    the literal, Alembic-free reading against."""
    from llm_proxy.bridge import config, scripts
    from llm_proxy.goose.files import discover
    from llm_proxy.goose.migration import GooseMigration

    goose = [GooseMigration(f) for f in discover(settings.migrations_dir)]
    python = scripts.python_scripts(config.alembic_config(settings))
    return scripts.build_graph(goose, python)


def literal_graph(settings: llm_config.Settings):
    """The revision graph read without Alembic (None when it cannot be)."""
    from llm_proxy.goose.files import discover
    from llm_proxy.revisions import sources

    return sources.literal_graph(discover(settings.migrations_dir), settings.versions_dir)


def cli(*args: str, env: dict[str, str] | None = None):
    """Invoke the click CLI in-process; returns click's Result (exit_code, stdout, stderr)."""
    from click.testing import CliRunner

    from llm_proxy.cli import main

    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def goose_apply(path: Path, migration: Path, direction: str = "up") -> None:
    """Do what the real goose binary does for one file on SQLite: run the section's
    statements and write goose_db_version, in one transaction. Used to build
    databases 'migrated by goose' without the Go toolchain."""
    from llm_proxy import dialects
    from llm_proxy.store import goose_table
    from llm_proxy.store.tables import Tables

    tables = Tables(dialects.SQLITE)
    from llm_proxy.goose.files import parse_filename
    from llm_proxy.goose.parser import parse

    version = parse_filename(migration.name)[0]
    parsed = parse(migration.read_text(encoding="utf-8"), direction)
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        exists = connection.execute(
            "SELECT 1 FROM sqlite_master WHERE name = 'goose_db_version'"
        ).fetchone()
        if not exists:
            connection.execute(goose_table.create_sql(tables))
            connection.execute(goose_table.insert_sql(tables, 0))
        connection.execute("BEGIN")
        for statement in parsed.statements:
            connection.execute(statement)
        if direction == "up":
            connection.execute(goose_table.insert_sql(tables, version))
        else:
            connection.execute(goose_table.delete_sql(tables, version))
        connection.execute("COMMIT")
    finally:
        connection.close()
