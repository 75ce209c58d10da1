"""Settings a database cannot express are refused (or bounded) before anything runs:
a --schema name over PostgreSQL's identifier limit, a --lock-timeout that is not a
finite number or that overflows what a database can wait for."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import cli, settings_for

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
