"""goose's DRIVER and DBSTRING, translated into the database URL llm-proxy uses
(pure): every form goose's own drivers take, and never a password in a message."""

from __future__ import annotations

from pathlib import Path

import pytest

from llm_proxy import config as llm_config
from llm_proxy import dialects
from llm_proxy.errors import ConfigError
from llm_proxy.urls import server_address

PG = dialects.POSTGRESQL
MY = dialects.MYSQL


@pytest.mark.parametrize(
    "driver,dbstring,url",
    [
        ("postgres", "user=postgres dbname=postgres sslmode=disable",
         "postgresql://postgres@/postgres?sslmode=disable"),
        ("pgx", "host=db port=5433 user=app password=s3cret dbname=llm",
         "postgresql://app:s3cret@db:5433/llm"),
        ("postgres", "host=/var/run/postgresql dbname=d",
         "postgresql:///d?host=/var/run/postgresql"),
        ("postgres", "postgres://u:p@h:5432/d?sslmode=disable", "postgres://u:p@h:5432/d?sslmode=disable"),
        ("mysql", "user:password@/dbname", "mysql://user:password@127.0.0.1:3306/dbname"),
        ("mysql",
         "user:password@tcp(mysql.example:3307)/db?parseTime=true&charset=utf8mb4,utf8&loc=Local",
         "mysql://user:password@mysql.example:3307/db?charset=utf8mb4"),
        ("mysql", "root@tcp(127.0.0.1:3306)/app?tls=false", "mysql://root@127.0.0.1:3306/app"),
        ("mysql", "u:p@ss/w:rd@tcp([::1]:3306)/app", "mysql://u:p%40ss%2Fw%3Ard@[::1]:3306/app"),
    ],
)  # fmt: skip
def test_goose_dbstrings_become_urls(driver: str, dbstring: str, url: str) -> None:
    dialect, translated = dialects.from_goose(driver, dbstring)
    assert dialect is dialects.GOOSE_DRIVERS[driver]
    assert translated == url


def test_a_quoted_libpq_value_keeps_spaces_and_escapes() -> None:
    _, url = dialects.from_goose("postgres", r"host = db  user='a b' password='it\'s x' dbname=d")
    address = server_address(url)
    assert (address.host, address.user, address.password, address.database) == (
        "db", "a b", "it's x", "d",
    )  # fmt: skip


def test_a_mysql_password_with_at_and_slash_survives() -> None:
    _, url = dialects.from_goose("mysql", "u:p@ss/w:rd@tcp(h:3306)/app")
    address = server_address(url)
    assert (address.user, address.password, address.host, address.database) == (
        "u", "p@ss/w:rd", "h", "app",
    )  # fmt: skip


def test_sqlite_path_and_file_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for driver in ("sqlite3", "sqlite"):
        for dbstring in ("./foo.db", "file:foo.db"):
            dialect, url = dialects.from_goose(driver, dbstring)
            settings = llm_config.resolve(database_url=url, env={})
            assert settings.sqlite_path == tmp_path / "foo.db"


@pytest.mark.parametrize(
    "driver,dbstring,expected",
    [
        ("mssql", "x", "goose DRIVER 'mssql' is not supported: use one of postgres, pgx"),
        ("postgres", "", "goose DBSTRING is empty"),
        ("postgres", "user=u password=hunter2 dbname", "'dbname' is not key=value"),
        ("postgres", "password='hunter2", "the value of 'password' has no closing quote"),
        ("mysql", "u:hunter2@unix(/tmp/s)/db", "MySQL over 'unix' is not supported"),
        ("mysql", "u:hunter2@tcp(h/db", "tcp( without its closing )"),
        ("mysql", "u:hunter2@tcp(h)", "a MySQL DSN is"),
        ("mysql", "u:hunter2@tcp(h:1)/db?tls=true", "tls=true is not supported"),
        ("mysql", "u:hunter2@tcp(h:1)/db?frobnicate=1", "unknown MySQL DSN parameter 'frobnicate'"),
        ("mysql", "postgres://u:hunter2@h/db", "does not match DBSTRING postgres://u:***@h/db"),
        ("sqlite3", ":memory:", "in-memory SQLite database"),
        ("sqlite3", "foo.db?_pragma=foreign_keys(1)", "SQLite URI parameters"),
    ],
)  # fmt: skip
def test_what_cannot_be_translated_is_one_line_without_the_password(
    driver: str, dbstring: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        dialects.from_goose(driver, dbstring)
    message = str(refused.value)
    assert expected in message and "\n" not in message
    assert "hunter2" not in message


def test_goose_tls_files_reach_both_mysql_connections() -> None:
    import sqlalchemy

    from llm_proxy.dialects.mysql import _tls

    files = {"ca": "/etc/ca.pem", "cert": "/etc/client.pem", "key": "/etc/client.key"}
    _, url = dialects.from_goose("mysql", "u:p@tcp(h:3306)/db?charset=utf8mb4", files)
    assert url.endswith(
        "?charset=utf8mb4&ssl_ca=/etc/ca.pem&ssl_cert=/etc/client.pem&ssl_key=/etc/client.key"
    )
    expected = {"ca": "/etc/ca.pem", "cert": "/etc/client.pem", "key": "/etc/client.key"}
    assert _tls(server_address(url).query) == {"ssl": expected}  # plain PyMySQL connections
    sa_url = dialects.from_url(url)[1]
    engine = sqlalchemy.create_engine(sa_url)  # what SQLAlchemy's engine connects with
    assert engine.dialect.create_connect_args(engine.url)[1]["ssl"] == expected
    # goose applies them to MySQL only; other drivers ignore them, as goose does.
    assert dialects.from_goose("postgres", "dbname=d", files)[1] == "postgresql:///d"


def test_a_certfile_makes_the_mysql_connection_use_tls(mysql_url: str, tmp_path: Path) -> None:
    from conftest import cli

    ca = tmp_path / "ca.pem"
    ca.write_text("not a certificate\n")
    parts = mysql_url.split("://", 1)[1]
    user_host, _, database = parts.partition("/")
    user, _, host = user_host.partition("@")
    dsn = f"{user}:hunter2@tcp({host})/{database}"
    result = cli("goose", "-certfile", str(ca), "-dir", str(tmp_path), "mysql", dsn, "status")
    assert result.exit_code == 1
    assert "goose run: " in result.stderr and "certificate" in result.stderr.lower()
    assert "hunter2" not in result.stderr + result.output
