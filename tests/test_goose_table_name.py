"""A goose version table with another name (goose's -table): every `migrate`
command and the stock `alembic` command read and write it, never goose_db_version."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import cli
from stock_alembic import (
    DIALECT_NAMES,
    connected,
    copy_project,
    empty_database,
    run_alembic,
    table_names,
)

from llm_proxy import config as llm_config
from llm_proxy.errors import ConfigError
from llm_proxy.store.tables import GOOSE_TABLE

CUSTOM = "custom_version"


def versions_in(url: str, table: str) -> list[int]:
    with connected(url) as connection:
        rows = connection.exec_driver_sql(f"SELECT version_id FROM {table} ORDER BY id")
        return [int(r[0]) for r in rows]


def test_the_default_is_goose_db_version_byte_for_byte(tmp_path: Path) -> None:
    settings = llm_config.resolve(db=str(tmp_path / "x.db"), env={})
    assert settings.goose_table == GOOSE_TABLE == "goose_db_version"


def test_flag_beats_environment(tmp_path: Path) -> None:
    env = {"LLM_PROXY_GOOSE_TABLE": "from_env"}
    assert llm_config.resolve(db="x.db", env=env).goose_table == "from_env"
    assert llm_config.resolve(db="x.db", env=env, goose_table="flag").goose_table == "flag"


@pytest.mark.parametrize("name", ["public.goose_db_version", "bad-name", "1abc", "a b", "é"])
def test_a_name_that_is_not_a_plain_table_is_one_line(name: str) -> None:
    with pytest.raises(ConfigError) as error:
        llm_config.resolve(db="x.db", env={"LLM_PROXY_GOOSE_TABLE": name})
    assert "LLM_PROXY_GOOSE_TABLE" in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("dialect", DIALECT_NAMES)
def test_every_migrate_command_uses_the_custom_table(
    request: pytest.FixtureRequest, tmp_path: Path, dialect: str
) -> None:
    url = empty_database(request, dialect, tmp_path)
    args = ("--database-url", url, "--goose-table", CUSTOM)
    up = cli("migrate", "up-to", "3", *args)
    assert up.exit_code == 0, up.output
    assert versions_in(url, CUSTOM) == [0, 1, 2, 3]
    assert GOOSE_TABLE not in table_names(url)
    status = cli("migrate", "status", *args)
    assert status.exit_code == 0 and status.output.count("Pending") == 3, status.output
    assert "Current migration version: 3" in cli("migrate", "version", *args).output
    assert cli("migrate", "up", *args).exit_code == 0
    assert cli("migrate", "down", *args).exit_code == 0
    assert cli("migrate", "redo", *args).exit_code == 0
    assert versions_in(url, CUSTOM) == [0, 1, 2, 3, 4, 5]  # down, then redo of 5
    assert cli("migrate", "down-to", "2", *args).exit_code == 0
    assert versions_in(url, CUSTOM) == [0, 1, 2]
    assert cli("migrate", "reset", *args).exit_code == 0
    assert versions_in(url, CUSTOM) == [0]
    assert cli("migrate", "stamp", "4", *args).exit_code == 0
    assert versions_in(url, CUSTOM) == [0, 1, 2, 3, 4]
    assert cli("migrate", "validate", "--check-db", *args).exit_code == 0
    assert GOOSE_TABLE not in table_names(url)


def test_without_the_flag_the_custom_table_is_not_read(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    assert cli("migrate", "up", "--database-url", url, "--goose-table", CUSTOM).exit_code == 0
    plain = cli("migrate", "version", "--database-url", url)
    assert "Current migration version: 0" in plain.output


@pytest.mark.parametrize("dialect", DIALECT_NAMES)
def test_stock_alembic_reads_goose_table_from_alembic_ini(
    request: pytest.FixtureRequest, tmp_path: Path, dialect: str
) -> None:
    url = empty_database(request, dialect, tmp_path)
    project = copy_project(tmp_path / "project")
    ini = project / "alembic.ini"
    ini.write_text(
        ini.read_text().replace("[alembic]\n", f"[alembic]\ngoose_table = {CUSTOM}\n", 1)
    )
    upgraded = run_alembic("upgrade", "00004", cwd=project, env={"DATABASE_URL": url})
    assert upgraded.returncode == 0, upgraded.stderr
    assert versions_in(url, CUSTOM) == [0, 1, 2, 3, 4]
    assert GOOSE_TABLE not in table_names(url)
    down = run_alembic("downgrade", "00002", cwd=project, env={"DATABASE_URL": url})
    assert down.returncode == 0, down.stderr
    assert versions_in(url, CUSTOM) == [0, 1, 2]
    # llm-proxy in the same project reads the same table from the same alembic.ini.
    env = {"LLM_PROXY_ALEMBIC_INI": str(ini)}
    version = cli("migrate", "version", "--database-url", url, env=env)
    assert "Current migration version: 2" in version.output, version.output


def test_autogenerate_leaves_the_custom_table_alone() -> None:
    from llm_proxy.bridge.env import include_object

    assert include_object(None, CUSTOM, "table", True, None) is True  # an ordinary table
    assert include_object(None, CUSTOM, "table", True, None, goose_table=CUSTOM) is False
    assert include_object(None, GOOSE_TABLE, "table", True, None) is False
