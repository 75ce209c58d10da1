"""Settings a database cannot express are refused (or bounded) before anything runs:
a --schema name over PostgreSQL's identifier limit, a --lock-timeout that is not a
finite number or that overflows what a database can wait for."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import cli, settings_for

from llm_proxy import dialects
from llm_proxy.db import drivers
from llm_proxy.errors import ConfigError

# ---------------------------------------------------------------- --schema (15.5)


@pytest.mark.parametrize(
    ("schema", "size"),
    [("s" * 64, 64), ("é" * 32, 64), ("tenant_" + "x" * 100, 107)],
)
def test_schema_over_63_bytes_is_refused_when_resolving(schema: str, size: int) -> None:
    for kwargs in ({"schema": schema}, {}):
        url = "postgres://app@db/llm"
        if not kwargs:
            url += f"?search_path={schema}"
        with pytest.raises(ConfigError) as caught:
            settings_for(database_url=url, **kwargs)
        message = str(caught.value)
        assert schema in message
        assert f"{size} bytes" in message
        assert "63" in message


def test_schema_of_63_bytes_is_accepted() -> None:
    assert settings_for(database_url="postgres://app@db/llm", schema="é" * 31 + "s").schema


def test_long_schema_touches_nothing(postgres_url: str, tmp_path: Path) -> None:
    """It used to create the schema PostgreSQL truncated to 63 bytes, with goose's,
    Alembic's and our tables in it, and only then fail."""
    import psycopg

    schema = "tenant_" + "a" * 60
    result = cli("migrate", "up", "--database-url", postgres_url, "--schema", schema)
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert schema in result.stderr and "63 bytes" in result.stderr
    with psycopg.connect(postgres_url) as connection:
        found = connection.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'tenant_%'"
        ).fetchall()
    assert found == []


# ---------------------------------------------------------------- --lock-timeout (15.6)


@pytest.mark.parametrize("value", ["inf", "-inf", "Infinity", "1e400", "nan"])
def test_non_finite_lock_timeout_is_refused(value: str) -> None:
    for source in ({"lock_timeout": value}, {"env": {"LLM_PROXY_LOCK_TIMEOUT": value}}):
        with pytest.raises(ConfigError) as caught:
            if "env" in source:
                from llm_proxy import config

                config.resolve(db="x.db", **source)  # type: ignore[arg-type]
            else:
                settings_for(db="x.db", **source)
        assert "lock timeout" in str(caught.value)
        assert value in str(caught.value)


def test_non_finite_lock_timeout_on_the_command_line(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    result = cli("migrate", "up", "--db", str(db), "--lock-timeout", "1e400")
    assert result.exit_code != 0
    assert "Error: " in result.stderr and "1e400" in result.stderr
    assert not db.exists()


def _busy_timeout_ms(settings) -> int:
    connection = drivers.connect(settings, create=True)
    try:
        return connection.execute("PRAGMA busy_timeout").fetchone()[0]
    finally:
        connection.close()


@pytest.mark.parametrize(
    ("seconds", "expected_ms"),
    [
        ("0", 1000),  # at least a second: a writer's short transaction is waited for
        ("300", 300_000),
        ("2147483", 2_147_483_000),
        ("2147484", 2_147_483_647),  # would overflow a C int of milliseconds
        ("1e12", 2_147_483_647),
        ("1.7e308", 2_147_483_647),
    ],
)
def test_sqlite_busy_timeout_is_clamped_to_a_c_int(
    tmp_path: Path, seconds: str, expected_ms: int
) -> None:
    """Python's sqlite3 passes timeout * 1000 to sqlite3_busy_timeout as a C int: past
    2147483.647 s it overflowed and SQLite did not wait at all."""
    settings = settings_for(db=str(tmp_path / "x.db"), lock_timeout=seconds)
    assert _busy_timeout_ms(settings) == expected_ms
    args = dialects.SQLITE.engine_connect_args(settings)
    assert args["timeout"] * 1000 <= 2**31 - 1


def test_huge_lock_timeout_still_waits_for_a_writer(tmp_path: Path) -> None:
    """The whole SQLAlchemy path too: an engine's connection waits (busy handler set)."""
    from llm_proxy.db.engine import create_engine

    settings = settings_for(db=str(tmp_path / "x.db"), lock_timeout="1e9")
    engine = create_engine(settings)
    try:
        with engine.connect() as connection:
            value = connection.exec_driver_sql("PRAGMA busy_timeout").scalar()
        assert value == 2_147_483_647
    finally:
        engine.dispose()
    assert os.path.exists(settings.sqlite_path)
