"""The migrate commands on a real MariaDB/MySQL server, one fresh database per test."""

from __future__ import annotations

import re
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from conftest import BOOKKEEPING, REPO, cli, run_cli, settings_for, write_migration

pymysql = pytest.importorskip("pymysql")

MYSQL_DIR = REPO / "sql" / "mysql"
SHIPPED = sorted(p.name for p in MYSQL_DIR.glob("*.sql"))
APP_TABLES = {"projects", "tokens", "audit_events"}

# goose v3's MySQL version table, as goose's mysql dialect creates it.
GOOSE_MYSQL_DDL = """CREATE TABLE {table} (
    id bigint(20) unsigned NOT NULL AUTO_INCREMENT,
    version_id bigint NOT NULL,
    is_applied boolean NOT NULL,
    tstamp timestamp NULL default now(),
    PRIMARY KEY(id)
)"""


def connect(url: str, **overrides: Any) -> Any:
    parts = urlsplit(url)
    options = {
        "host": parts.hostname,
        "port": parts.port or 3306,
        "user": parts.username or "root",
        "password": parts.password or "",
        "database": parts.path.lstrip("/") or None,
        "autocommit": True,
    }
    options.update(overrides)
    return pymysql.connect(**options)


def query(url: str, sql: str, params: tuple[Any, ...] | None = None) -> list[tuple]:
    connection = connect(url)
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return list(cursor.fetchall()) if cursor.description else []
    finally:
        connection.close()


def database_of(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def goose_rows(url: str) -> list[tuple[int, int]]:
    return query(url, "SELECT version_id, is_applied FROM goose_db_version ORDER BY id")


def applied_versions(url: str) -> list[int]:
    return [v for v, _ in goose_rows(url)]


def alembic_heads(url: str) -> list[str]:
    return [r[0] for r in query(url, "SELECT version_num FROM alembic_version")]


def tables(url: str) -> set[str]:
    return {r[0] for r in query(url, "SHOW TABLES")}


def columns(url: str, table: str) -> set[str]:
    return {r[0] for r in query(url, f"SHOW COLUMNS FROM {table}")}


def ok_names(stdout: str) -> list[str]:
    return [line.split()[1] for line in stdout.splitlines() if line.startswith("OK   ")]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# ---------------------------------------------------------------- commands


def test_up_applies_the_mysql_history_from_any_directory(
    mysql_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no alembic.ini here: the packaged sql/mysql is the default
    result = cli("migrate", "up", "--database-url", mysql_url)
    assert result.exit_code == 0, result.output
    assert ok_names(result.stdout) == SHIPPED
    assert result.stdout.splitlines()[-1] == "Migrations applied successfully"
    assert goose_rows(mysql_url) == [(v, 1) for v in range(7)]
    assert alembic_heads(mysql_url) == ["00006"]
    assert APP_TABLES | {"goose_db_version", "alembic_version"} <= tables(mysql_url)
    assert "api_key" in columns(mysql_url, "projects")
    # Only the MySQL files declare DATETIME(6) columns.
    created = query(mysql_url, "SHOW COLUMNS FROM projects WHERE Field = 'created_at'")
    assert created[0][1] == "datetime(6)"

    again = cli("migrate", "up", "--database-url", mysql_url)
    assert again.exit_code == 0
    assert "goose: no migrations to run. current version: 6" in again.stdout


def test_every_command(mysql_url: str) -> None:
    url = ("--database-url", mysql_url)
    result = cli("migrate", "up-to", "2", *url)
    assert result.exit_code == 0, result.output
    assert ok_names(result.stdout) == SHIPPED[:2]
    assert cli("migrate", "version", *url).stdout == "Current migration version: 2\n"
    status = cli("migrate", "status", *url)
    assert status.exit_code == 0
    assert [row.strip().startswith("Pending") for row in status.stdout.splitlines()[2:]] == [
        False,
        False,
        True,
        True,
        True,
        True,
    ]

    assert ok_names(cli("migrate", "up", *url).stdout) == SHIPPED[2:]
    redo = cli("migrate", "redo", *url)
    assert redo.exit_code == 0, redo.output
    assert ok_names(redo.stdout) == [SHIPPED[-1], SHIPPED[-1]]
    assert applied_versions(mysql_url) == list(range(7))

    down = cli("migrate", "down", *url)
    assert down.exit_code == 0, down.output
    assert ok_names(down.stdout) == [SHIPPED[-1]]
    assert alembic_heads(mysql_url) == ["00005"]

    down_to = cli("migrate", "down-to", "2", *url)
    assert down_to.exit_code == 0, down_to.output
    assert ok_names(down_to.stdout) == SHIPPED[4:1:-1]
    assert applied_versions(mysql_url) == [0, 1, 2]

    reset = cli("migrate", "reset", *url)
    assert reset.exit_code == 0, reset.output
    assert applied_versions(mysql_url) == [0]
    assert tables(mysql_url) <= BOOKKEEPING
    assert cli("migrate", "version", *url).stdout == "Current migration version: 0\n"


def test_rows_survive_down_and_up_of_the_shipped_history(mysql_url: str) -> None:
    assert cli("migrate", "up-to", "1", "--database-url", mysql_url).exit_code == 0
    query(
        mysql_url,
        "INSERT INTO projects (id, name, openai_api_key) VALUES ('p1', 'one', 'sk-1'), "
        "('p2', 'two', 'sk-2')",
    )
    query(
        mysql_url,
        "INSERT INTO tokens (token, project_id, request_count) VALUES "
        "('t1', 'p1', 3), ('T1', 'p1', 0), ('t3', 'p2', 7)",
    )
    query(
        mysql_url,
        "INSERT INTO audit_events (id, timestamp, action, actor, outcome) VALUES "
        "('a1', NOW(6), 'create', 'admin', 'success'), ('a2', NOW(6), 'revoke', 'x', 'failure')",
    )

    def snapshot(key_column: str) -> tuple:
        return (
            query(mysql_url, f"SELECT id, name, {key_column} FROM projects ORDER BY id"),
            query(mysql_url, "SELECT token, project_id, request_count FROM tokens ORDER BY token"),
            query(mysql_url, "SELECT id, action, outcome FROM audit_events ORDER BY id"),
        )

    before = snapshot("openai_api_key")
    for _ in range(2):
        result = cli("migrate", "up", "--database-url", mysql_url)
        assert result.exit_code == 0, result.output
        assert snapshot("api_key") == before
        assert query(mysql_url, "SELECT COUNT(DISTINCT id), COUNT(*) FROM tokens") == [(3, 3)]
        with pytest.raises(pymysql.err.IntegrityError):
            query(mysql_url, "INSERT INTO tokens (token, project_id) VALUES ('t1', 'p2')")

        result = cli("migrate", "down-to", "1", "--database-url", mysql_url)
        assert result.exit_code == 0, result.output
        assert snapshot("openai_api_key") == before
        primary = query(mysql_url, "SHOW KEYS FROM tokens WHERE Key_name = 'PRIMARY'")
        assert [row[4] for row in primary] == ["token"]


# ---------------------------------------------------------------- connection


@pytest.mark.parametrize("scheme", ["mysql", "mysql+pymysql", "mariadb", "mariadb+pymysql"])
def test_url_schemes(mysql_url: str, scheme: str) -> None:
    url = scheme + "://" + mysql_url.split("://", 1)[1]
    result = cli("migrate", "up-to", "1", "--database-url", url)
    assert result.exit_code == 0, result.output
    assert applied_versions(mysql_url) == [0, 1]
    assert settings_for(database_url=url).url.startswith("mysql+pymysql://")


def test_database_url_and_db_driver_from_the_environment(mysql_url: str, tmp_path: Path) -> None:
    env = {"DATABASE_URL": mysql_url, "DB_DRIVER": "mysql"}
    result = run_cli("migrate", "up", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert ok_names(result.stdout) == SHIPPED
    version = run_cli("migrate", "version", cwd=tmp_path, env=env)
    assert version.stdout == "Current migration version: 6\n"


def test_configuration_refusals() -> None:
    from llm_proxy.config import ConfigError

    with pytest.raises(ConfigError, match="PostgreSQL only"):
        settings_for(database_url="mysql://root@127.0.0.1/db", schema="x")
    with pytest.raises(ConfigError, match="names no database"):
        settings_for(database_url="mysql://root:pw@127.0.0.1:3306/")
    with pytest.raises(ConfigError, match="llm-proxy connects through pymysql"):
        settings_for(database_url="mysql+mysqldb://root@127.0.0.1/db")


# ---------------------------------------------------------------- goose_db_version DDL


def show_create(url: str, table: str) -> str:
    text = query(url, f"SHOW CREATE TABLE {table}")[0][1]
    text = re.sub(r" AUTO_INCREMENT=\d+", "", text)
    return text.replace(f"`{table}`", "`T`", 1)


def test_goose_table_matches_gooses_ddl(mysql_url: str) -> None:
    assert cli("migrate", "up-to", "1", "--database-url", mysql_url).exit_code == 0
    query(mysql_url, GOOSE_MYSQL_DDL.format(table="goose_reference"))
    ours = show_create(mysql_url, "goose_db_version")
    assert "`version_id` bigint(20) NOT NULL" in ours
    assert ours == show_create(mysql_url, "goose_reference")
    assert goose_rows(mysql_url) == [(0, 1), (1, 1)]


def goose_apply(url: str, migration: Path, direction: str = "up") -> None:
    """What the goose binary does for one file on MySQL: the statements, then the
    version row (MySQL commits DDL as it goes, so there is no wrapping transaction)."""
    from llm_proxy.goose.files import parse_filename
    from llm_proxy.goose.parser import parse

    version = parse_filename(migration.name)[0]
    parsed = parse(migration.read_text(encoding="utf-8"), direction)
    if "goose_db_version" not in tables(url):
        query(url, GOOSE_MYSQL_DDL.format(table="goose_db_version"))
        query(url, "INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, true)")
    for statement in parsed.statements:
        query(url, statement)
    if direction == "up":
        query(
            url, f"INSERT INTO goose_db_version (version_id, is_applied) VALUES ({version}, true)"
        )
    else:
        query(url, f"DELETE FROM goose_db_version WHERE version_id = {version}")


def test_continue_a_database_goose_migrated(mysql_url: str) -> None:
    for name in SHIPPED[:4]:
        goose_apply(mysql_url, MYSQL_DIR / name)
    result = cli("migrate", "up", "--database-url", mysql_url)
    assert result.exit_code == 0, result.output
    assert ok_names(result.stdout) == SHIPPED[4:]
    assert applied_versions(mysql_url) == list(range(7))
    goose_apply(mysql_url, MYSQL_DIR / SHIPPED[-1], "down")
    assert cli("migrate", "version", "--database-url", mysql_url).stdout == (
        "Current migration version: 5\n"
    )
    again = cli("migrate", "up", "--database-url", mysql_url)
    assert again.exit_code == 0, again.output
    assert ok_names(again.stdout) == [SHIPPED[-1]]


# ---------------------------------------------------------------- failures


def test_failing_statement_records_no_version(mysql_url: str, migrations_dir: Path) -> None:
    # MySQL commits each DDL statement by itself (goose has the same limit); rows
    # written by the failed migration are rolled back, and the version is not recorded.
    write_migration(
        migrations_dir,
        "00001_base.sql",
        "CREATE TABLE base (id int);\nINSERT INTO base VALUES (1);",
        "DROP TABLE base;",
    )
    write_migration(
        migrations_dir,
        "00002_half.sql",
        "INSERT INTO base VALUES (2);\nINSERT INTO missing_table VALUES (1);",
        "DELETE FROM base WHERE id = 2;",
    )
    args = ("--database-url", mysql_url, "--migrations-dir", str(migrations_dir))
    result = cli("migrate", "up", *args)
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("Error: 00002_half.sql: statement 2 failed")
    assert "missing_table" in result.stderr
    assert query(mysql_url, "SELECT id FROM base") == [(1,)]
    assert goose_rows(mysql_url) == [(0, 1), (1, 1)]
    assert alembic_heads(mysql_url) == ["00001"]


def test_unreachable_server_is_one_line_with_host_and_port() -> None:
    port = free_port()
    result = run_cli("migrate", "up", "--database-url", f"mysql://u:s3cr3t-pw@127.0.0.1:{port}/db")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"Error: cannot connect to MySQL at 127.0.0.1:{port}/db")
    assert "s3cr3t-pw" not in result.stderr


@pytest.fixture
def mysql_user(mysql_url: str) -> Iterator[tuple[str, str]]:
    """A user with a password and only SELECT on the test database."""
    user = f"llmproxy_{uuid.uuid4().hex[:8]}"
    password = "Right-" + uuid.uuid4().hex
    database = database_of(mysql_url)
    for host in ("localhost", "127.0.0.1", "%"):
        query(mysql_url, f"CREATE USER '{user}'@'{host}' IDENTIFIED BY '{password}'")
        query(mysql_url, f"GRANT SELECT ON `{database}`.* TO '{user}'@'{host}'")
    try:
        yield user, password
    finally:
        for host in ("localhost", "127.0.0.1", "%"):
            query(mysql_url, f"DROP USER IF EXISTS '{user}'@'{host}'")


def test_wrong_password_is_reported_without_the_password(
    mysql_url: str, mysql_user: tuple[str, str]
) -> None:
    user, _ = mysql_user
    wrong = "Wrong-" + uuid.uuid4().hex
    url = mysql_url.replace("root@", f"{user}:{wrong}@", 1)
    outputs = []
    for command in (["up"], ["status"], ["version"], ["down"]):
        result = run_cli("migrate", *command, "--database-url", url)
        assert result.returncode == 1
        assert result.stderr.count("\n") == 1
        assert "Access denied" in result.stderr
        outputs.append(result.stdout + result.stderr)
    assert wrong not in "".join(outputs)
    assert tables(mysql_url) == set()


def test_user_who_cannot_create_tables(mysql_url: str, mysql_user: tuple[str, str]) -> None:
    user, password = mysql_user
    url = mysql_url.replace("root@", f"{user}:{password}@", 1)
    status = run_cli("migrate", "status", "--database-url", url)
    assert status.returncode == 0, status.stderr  # reading is allowed
    result = run_cli("migrate", "up", "--database-url", url)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("Error: cannot create the version table goose_db_version")
    assert "denied" in result.stderr
    assert password not in result.stdout + result.stderr
    assert tables(mysql_url) == set()
