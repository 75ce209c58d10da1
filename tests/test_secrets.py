"""Passwords in database URLs never reach the user's screen, a file name or a repr.

A password may sit in the userinfo (`postgres://u:PW@h/db`, any scheme) or in a query
parameter (`?password=PW`, `?sslpassword=PW`). Redaction is structural: the URL is
parsed and its secret fields masked, so a short password cannot garble a message by
text replacement, and a password in a place the parser knows is never missed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from conftest import REPO, SQL_DIR, run_cli, settings_for

from llm_proxy import urls
from llm_proxy.errors import ConfigError, DatabaseUnavailable

SECRET = "Zq7pw-Kx3v"


# ---------------------------------------------------------------- urls.redact, pure


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgres://u:PW@h:5432/db", "postgres://u:***@h:5432/db"),
        ("postgres://u@h/db?password=PW", "postgres://u@h/db?password=***"),
        (
            "postgresql+psycopg://u@h/db?sslmode=require&sslpassword=PW",
            "postgresql+psycopg://u@h/db?sslmode=require&sslpassword=***",
        ),
        ("mysql://u@h/db?charset=utf8mb4&passwd=PW", "mysql://u@h/db?charset=utf8mb4&passwd=***"),
        ("mysql://u@h/?password=PW", "mysql://u@h/?password=***"),
        ("postgres://u@h/db?passfile=PW", "postgres://u@h/db?passfile=***"),
        (
            "postgres://u@h/db?Password=PW&password=PW",
            "postgres://u@h/db?Password=***&password=***",
        ),
        # userinfo on any scheme, even one that has no use for it
        ("sqlite://:PW@/x.db", "sqlite://:***@/x.db"),
        ("sqlite://u:PW@/x.db", "sqlite://u:***@/x.db"),
        ("oracle://scott:PW@db/orcl", "oracle://scott:***@db/orcl"),
        # nothing secret: unchanged
        ("postgres://u@h/db?sslmode=require", "postgres://u@h/db?sslmode=require"),
        ("sqlite:///data/x.db", "sqlite:///data/x.db"),
    ],
)
def test_redact_masks_every_secret_field(url: str, shown: str) -> None:
    assert urls.redact(url) == shown
    assert "PW" not in urls.redact(url)


@pytest.mark.parametrize("password", ["e", "t", "1", "%", "*", "a@b", "s%2Fp"])
def test_redacting_a_short_password_keeps_the_rest_intact(password: str) -> None:
    quoted = urls.with_encoded_userinfo(f"postgresql+psycopg://user:{password}@host:5/test")
    assert urls.redact(quoted) == "postgresql+psycopg://user:***@host:5/test"


def test_redact_urls_inside_a_driver_message() -> None:
    """A driver that echoes the DSN has it masked by parsing, the words around it intact."""
    text = 'bad thing in URI: "postgresql://user:e@host:5/test?password=e&x=1" (see docs)'
    assert urls.redact_urls_in(text) == (
        'bad thing in URI: "postgresql://user:***@host:5/test?password=***&x=1" (see docs)'
    )


# ---------------------------------------------------------------- Settings and messages


def test_settings_repr_shows_no_password() -> None:
    for url in (
        f"postgres://app:{SECRET}@127.0.0.1:5432/llm",
        f"postgres://app@127.0.0.1:5432/llm?password={SECRET}",
        f"mysql://app@127.0.0.1:3306/llm?password={SECRET}",
    ):
        settings = settings_for(database_url=url)
        assert SECRET not in repr(settings)
        assert SECRET not in str(settings)
        assert SECRET not in settings.display_url
        assert "127.0.0.1" in repr(settings)  # still says which database


def test_short_password_does_not_garble_connection_errors() -> None:
    """Masking by text replacement turned `connection` into `conn***ction` for password `e`."""
    settings = settings_for(database_url="postgres://user:e@127.0.0.1:1/test")
    from llm_proxy.db import drivers

    with pytest.raises(DatabaseUnavailable) as caught:
        drivers.connect(settings)
    message = str(caught.value)
    assert "***" not in message
    assert message.startswith("cannot connect to PostgreSQL at 127.0.0.1:1/test: connection")


@pytest.mark.parametrize(
    "url",
    [
        f"sqlite://:{SECRET}@/x.db",
        f"sqlite://user:{SECRET}@/x.db",
        "sqlite://localhost/x.db",
    ],
)
def test_sqlite_url_with_userinfo_or_host_is_refused(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_for(database_url=url)
    message = str(caught.value)
    assert SECRET not in message
    assert "sqlite:///" in message  # says how to write it


def test_query_password_with_bad_escapes_is_not_echoed_by_libpq() -> None:
    """libpq quotes a query value it cannot percent-decode; the URL reaches it re-encoded."""
    settings = settings_for(database_url=f"postgres://u@127.0.0.1:1/x?password={SECRET}%zz")
    from llm_proxy.db import drivers

    with pytest.raises(DatabaseUnavailable) as caught:
        drivers.connect(settings)
    assert SECRET not in str(caught.value)
    assert "percent-encoded" not in str(caught.value)  # the URL was well-formed for libpq


def test_nul_in_a_query_value_is_refused_naming_the_parameter() -> None:
    with pytest.raises(ConfigError) as caught:
        settings_for(database_url=f"postgres://u@h/x?password={SECRET}%00x")
    assert "password" in str(caught.value)
    assert SECRET not in str(caught.value)


# ---------------------------------------------------------------- every output, grepped


def _assert_secret_hidden(result, where: Path, *, ours: bool = True) -> None:
    output = result.stdout + result.stderr
    assert SECRET not in output, output
    if ours:  # stock `alembic` prints a traceback for any error, its own way
        assert "Traceback" not in output, output
    # nothing on disk is named after the URL's userinfo either
    leaked = [str(p) for p in where.rglob("*") if SECRET in p.name]
    assert not leaked, leaked


def _goose_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "migrations"
    directory.mkdir()
    (directory / "00001_notes.sql").write_text(
        "-- +goose Up\nCREATE TABLE notes (id INTEGER);\n\n-- +goose Down\nDROP TABLE notes;\n",
        encoding="utf-8",
    )
    return directory


PG_QUERY = f"postgres://u@127.0.0.1:1/x?password={SECRET}"
PG_SSL = f"postgres://u@127.0.0.1:1/x?sslpassword={SECRET}"
MYSQL_NO_DB = [
    f"mysql://root@127.0.0.1:3306/?password={SECRET}",
    f"mysql://root:{SECRET}@127.0.0.1:3306",
    f"mysql://root@127.0.0.1:3306?passwd={SECRET}",
]


def _offline_cases(migrations: str) -> list[tuple[str, list[str], dict[str, str]]]:
    """(id, argv, env) of commands that fail or finish before any server is reached."""
    cases: list[tuple[str, list[str], dict[str, str]]] = []
    for url_id, url in (("query", PG_QUERY), ("sslpassword", PG_SSL)):
        cases += [
            (f"driver-mismatch-sqlite-{url_id}", ["migrate", "up", "--database-url", url],
             {"DB_DRIVER": "sqlite"}),
            (f"driver-mismatch-mysql-{url_id}", ["migrate", "up"],
             {"DB_DRIVER": "mysql", "DATABASE_URL": url}),
            (f"connect-{url_id}", ["migrate", "status", "--database-url", url], {}),
            (f"validate-{url_id}",
             ["migrate", "validate", "--database-url", url, "--migrations-dir", migrations], {}),
            (f"validate-apply-{url_id}",
             ["migrate", "validate", "--apply", "--database-url", url, "--migrations-dir",
              migrations], {}),
            (f"create-{url_id}",
             ["migrate", "create", "more", "--database-url", url, "--migrations-dir", migrations],
             {}),
        ]  # fmt: skip
    for number, url in enumerate(MYSQL_NO_DB):
        for command in (["migrate", "status"], ["migrate", "validate"], ["setup"]):
            cases.append(
                (f"mysql-no-database-{number}-{command[-1]}", [*command, "--database-url", url], {})
            )
    for url in (f"sqlite://:{SECRET}@/x.db", f"sqlite://me:{SECRET}@/x.db"):
        for command in (["migrate", "status", "--json"], ["setup"], ["migrate", "up"]):
            cases.append((f"sqlite-userinfo-{command[-1]}", [*command, "--database-url", url], {}))
    return cases


def test_no_command_prints_the_password(tmp_path: Path) -> None:
    migrations = _goose_dir(tmp_path)
    for case_id, argv, env in _offline_cases(str(migrations)):
        result = run_cli(*argv, cwd=tmp_path, env=env)
        try:
            _assert_secret_hidden(result, tmp_path)
        except AssertionError as failure:
            raise AssertionError(f"{case_id}: {failure}") from None


def _alembic(*args: str, cwd: Path, env: dict[str, str]):
    import subprocess

    alembic = Path(sys.executable).parent / "alembic"
    full_env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DB_DRIVER")}
    full_env.update(env)
    return subprocess.run(
        [str(alembic), "-c", str(REPO / "alembic.ini"), *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_postgres_outputs_hide_query_passwords(postgres_url: str, tmp_path: Path) -> None:
    """The server trusts every local connection, so the URLs work: what is printed on
    success (validate's summary, `alembic current -v`, status --json) is grepped too."""
    migrations = _goose_dir(tmp_path)
    for url in (
        f"{postgres_url}?password={SECRET}",
        f"{postgres_url}?sslpassword={SECRET}&password={SECRET}",
        postgres_url.replace("postgres@", f"postgres:{SECRET}@", 1),
        f"{postgres_url}?password={SECRET}%zz",
    ):
        for argv in (
            ["migrate", "status", "--json"],
            ["migrate", "validate", "--apply"],
            ["migrate", "up"],
            ["migrate", "version"],
        ):
            result = run_cli(
                *argv, "--database-url", url, "--migrations-dir", str(migrations), cwd=tmp_path
            )
            assert result.returncode == 0, (argv, result.stderr)
            _assert_secret_hidden(result, tmp_path)
        for argv in (["current", "-v"], ["history"], ["heads"]):
            result = _alembic(*argv, cwd=tmp_path, env={"DATABASE_URL": url})
            assert result.returncode == 0, (argv, result.stderr)
            _assert_secret_hidden(result, tmp_path, ours=False)
        run_cli("migrate", "reset", "--database-url", url, "--migrations-dir", str(migrations))


def test_mysql_outputs_hide_query_passwords(mysql_url: str, tmp_path: Path) -> None:
    """root has no password here: a password in the query is wrong and refused by the
    server, by the lock's plain connection and by SQLAlchemy alike, without echoing it."""
    for url in (f"{mysql_url}?password={SECRET}", f"{mysql_url}?charset=utf8mb4&passwd={SECRET}"):
        result = run_cli("migrate", "status", "--json", "--database-url", url, cwd=tmp_path)
        assert result.returncode == 1
        assert "Access denied" in result.stderr
        _assert_secret_hidden(result, tmp_path)
        result = _alembic("current", "-v", cwd=tmp_path, env={"DATABASE_URL": url})
        assert result.returncode != 0
        _assert_secret_hidden(result, tmp_path, ours=False)


def test_mysql_query_password_is_used_by_the_plain_connection(mysql_url: str) -> None:
    """SQLAlchemy passes `?password=` to PyMySQL; the lock's plain connection must too, or
    the two would log in differently."""
    import uuid

    import pymysql

    from llm_proxy.db import drivers

    user = f"llmproxy_sec_{uuid.uuid4().hex[:8]}"
    database = mysql_url.rsplit("/", 1)[1]
    admin = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True)
    try:
        with admin.cursor() as cursor:
            cursor.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{SECRET}'")
            cursor.execute(f"GRANT ALL ON `{database}`.* TO '{user}'@'%'")
        url = f"mysql://{user}@127.0.0.1:3306/{database}?password={SECRET}"
        connection = drivers.connect(settings_for(database_url=url))
        connection.close()
        result = run_cli("migrate", "up", "--database-url", url, "--migrations-dir",
                         str(SQL_DIR / "mysql"))  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert SECRET not in result.stdout + result.stderr
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP USER IF EXISTS '{user}'@'%'")
        admin.close()
