"""Lock timeouts, retries and the statement timeout, without a database: the
per-file lines, the settings, the tables a statement locks, the pauses."""

from __future__ import annotations

import random

import pytest

from llm_proxy import config as llm_config
from llm_proxy.bridge.lock_retries import Blocker, describe_blockers, pause_before
from llm_proxy.dialects.base import locked_tables
from llm_proxy.errors import ConfigError, MigrationError
from llm_proxy.goose.directives import FileDirectives, parse_duration, read_directives


@pytest.mark.parametrize(
    "text,seconds",
    [("10s", 10.0), ("500ms", 0.5), ("5m", 300.0), ("1h", 3600.0), ("0", 0.0), ("2.5", 2.5)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "ten", "5 minutes", "-1s", "1e400"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_file_lines_before_the_first_statement_set_the_limits() -> None:
    text = (
        "-- +goose Up\n-- llm-proxy: lock-timeout 10s\n--llm-proxy: statement-timeout 5m\n"
        "-- llm-proxy: after 00003\nALTER TABLE t ADD c int;\n"
        "-- llm-proxy: lock-timeout 1s\n-- +goose Down\n"
    )
    assert read_directives(text, "f.sql") == FileDirectives(10.0, 300.0)
    assert read_directives("-- +goose Up\nSELECT 1;\n", "f.sql") == FileDirectives()


def test_bad_file_lines_name_the_file_and_line() -> None:
    with pytest.raises(MigrationError, match=r"^f\.sql:2: .*lock-timeout.*'soon'"):
        read_directives("-- +goose Up\n-- llm-proxy: lock-timeout soon\nSELECT 1;\n", "f.sql")
    with pytest.raises(MigrationError, match=r"^f\.sql:3: a second"):
        read_directives(
            "-- llm-proxy: lock-timeout 1s\n-- +goose Up\n-- llm-proxy: lock-timeout 2s\n",
            "f.sql",
        )


def test_defaults_flags_and_environment(tmp_path) -> None:
    db = str(tmp_path / "x.db")
    defaults = llm_config.resolve(db=db, env={})
    assert (defaults.ddl_lock_timeout, defaults.ddl_lock_retries) == (5.0, 5)
    assert defaults.statement_timeout == 0.0
    env = {
        "LLM_PROXY_DDL_LOCK_TIMEOUT": "250ms",
        "LLM_PROXY_DDL_LOCK_RETRIES": "2",
        "LLM_PROXY_STATEMENT_TIMEOUT": "1m",
    }
    from_env = llm_config.resolve(db=db, env=env)
    assert (from_env.ddl_lock_timeout, from_env.ddl_lock_retries) == (0.25, 2)
    assert from_env.statement_timeout == 60.0
    flags = llm_config.resolve(
        db=db, env=env, ddl_lock_timeout="0", ddl_lock_retries="0", statement_timeout="3s"
    )
    assert (flags.ddl_lock_timeout, flags.ddl_lock_retries, flags.statement_timeout) == (0, 0, 3)


@pytest.mark.parametrize(
    "kwargs,env,blamed",
    [
        ({"ddl_lock_timeout": "soon"}, {}, "--ddl-lock-timeout"),
        ({}, {"LLM_PROXY_DDL_LOCK_RETRIES": "-1"}, "LLM_PROXY_DDL_LOCK_RETRIES"),
        ({"ddl_lock_retries": "many"}, {}, "--ddl-lock-retries"),
        ({}, {"LLM_PROXY_STATEMENT_TIMEOUT": "5 min"}, "LLM_PROXY_STATEMENT_TIMEOUT"),
    ],
)
def test_bad_settings_name_their_source(tmp_path, kwargs, env, blamed) -> None:
    with pytest.raises(ConfigError, match=blamed):
        llm_config.resolve(db=str(tmp_path / "x.db"), env=env, **kwargs)


@pytest.mark.parametrize(
    "statement,tables",
    [
        ("ALTER TABLE items ADD COLUMN x int", ["items"]),
        ("alter table if exists only public.items drop x", ["public.items"]),
        ('ALTER TABLE "Odd Name" ADD y int', ['"Odd Name"']),
        ("CREATE INDEX CONCURRENTLY ix ON items (x)", ["items"]),
        ("CREATE UNIQUE INDEX ON items (x)", ["items"]),
        ("ALTER TABLE a ADD FOREIGN KEY (b) REFERENCES b (id)", ["a", "b"]),
        ("UPDATE `t` SET x = 1", ["`t`"]),
        ("SELECT 1", []),
    ],
)
def test_tables_a_statement_locks(statement: str, tables: list[str]) -> None:
    assert locked_tables(statement) == tables


def test_pauses_double_with_jitter_up_to_a_cap() -> None:
    rng = random.Random(7)
    for retry in range(1, 10):
        base = min(30.0, 0.5 * 2 ** (retry - 1))
        assert base / 2 <= pause_before(retry, 0.5, rng) <= base


def test_the_blocker_line_names_table_pid_state_and_query() -> None:
    holder = Blocker("items", 42, "idle in transaction", "2024-01-01 10:00:00", "SELECT  *\nFROM x")
    line = describe_blockers([holder], "items")
    assert line == (
        "table items, held by pid 42 (idle in transaction since 2024-01-01 10:00:00, "
        "query: SELECT * FROM x)"
    )
    assert describe_blockers([], "items") == "table items, holder not found (it may have ended)"


def test_the_after_line_reader_passes_over_the_timeout_lines(tmp_path) -> None:
    from llm_proxy.revisions.sources import read_after_marker

    path = tmp_path / "00002_x.sql"
    path.write_text(
        "-- llm-proxy: lock-timeout 0\n-- llm-proxy: statement-timeout 1m\n"
        "-- llm-proxy: after 00001\n-- +goose Up\nSELECT 1;\n",
        encoding="utf-8",
    )
    assert read_after_marker(path) == ("00001",)


def test_the_stock_alembic_door_takes_them_as_x_arguments(tmp_path) -> None:
    sources = llm_config.AlembicSources(
        explicit={"ddl_lock_timeout": "250ms", "ddl_lock_retries": "1", "statement_timeout": "2m"}
    )
    settings, _ = llm_config.resolve_for_alembic(sources, {"DATABASE_PATH": str(tmp_path / "a")})
    assert (settings.ddl_lock_timeout, settings.ddl_lock_retries) == (0.25, 1)
    assert settings.statement_timeout == 120.0
