"""Each command loads the project once and opens few connections.

A server start asks "is anything pending?" every time, and a crowd of
instances starting together multiplies every connection: the revision graph
is built once per command, the database read once, and the writes of a
command share the one connection that holds the migration lock.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import SQL_DIR, settings_for

from llm_proxy import config as llm_config
from llm_proxy import database, migrate
from llm_proxy.revisions.graph import Graph


@dataclass
class Counts:
    graph_builds: int = 0
    connections: int = 0


@pytest.fixture
def counts(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counts]:
    """Counts Graph.build calls and DBAPI connections opened (sqlite3, psycopg,
    PyMySQL; SQLAlchemy opens its own through the same functions)."""
    counted = Counts()
    build = Graph.build.__func__  # type: ignore[attr-defined]

    def counting_build(cls: type[Graph], nodes: object) -> Graph:
        counted.graph_builds += 1
        return build(cls, nodes)

    monkeypatch.setattr(Graph, "build", classmethod(counting_build))

    def wrap(module: object, name: str = "connect") -> None:
        original = getattr(module, name)

        def counting_connect(*args: object, **kwargs: object) -> object:
            counted.connections += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(module, name, counting_connect)

    wrap(sqlite3)
    wrap(sqlite3.dbapi2)
    import psycopg
    import pymysql

    wrap(psycopg)
    wrap(psycopg.Connection)
    wrap(pymysql)
    yield counted


def reset(counts: Counts) -> None:
    counts.graph_builds = 0
    counts.connections = 0


def sqlite_settings_with_one_pending(tmp_path: Path) -> llm_config.Settings:
    settings = settings_for(db=str(tmp_path / "db" / "x.db"), migrations_dir=str(SQL_DIR))
    migrate.up(settings, to="5")
    return settings


@pytest.fixture
def postgres_settings(postgres_url: str) -> llm_config.Settings:
    return settings_for(database_url=postgres_url)


def test_up_with_one_pending_file_on_postgres(
    postgres_settings: llm_config.Settings, counts: Counts
) -> None:
    migrate.up(postgres_settings, to="5")
    reset(counts)
    result = migrate.up(postgres_settings)
    assert result.applied == ["00006"]
    assert counts.graph_builds == 1
    assert counts.connections <= 2, counts


def test_no_op_up_on_postgres(postgres_settings: llm_config.Settings, counts: Counts) -> None:
    migrate.up(postgres_settings)
    reset(counts)
    assert migrate.up(postgres_settings).applied == []
    assert (counts.graph_builds, counts.connections) == (1, 1)


def test_server_start_at_head_on_postgres(
    postgres_settings: llm_config.Settings, counts: Counts
) -> None:
    migrate.up(postgres_settings)
    reset(counts)
    _project, engine = database.open_project(postgres_settings)
    engine.dispose()
    assert (counts.graph_builds, counts.connections) == (1, 1)


def test_up_with_one_pending_file_on_sqlite(tmp_path: Path, counts: Counts) -> None:
    settings = sqlite_settings_with_one_pending(tmp_path)
    reset(counts)
    assert migrate.up(settings).applied == ["00006"]
    assert counts.graph_builds == 1
    assert counts.connections <= 2, counts


def test_no_op_up_and_server_start_on_sqlite(tmp_path: Path, counts: Counts) -> None:
    settings = sqlite_settings_with_one_pending(tmp_path)
    migrate.up(settings)
    reset(counts)
    assert migrate.up(settings).applied == []
    assert (counts.graph_builds, counts.connections) == (1, 1)
    reset(counts)
    _project, engine = database.open_project(settings)
    engine.dispose()
    assert (counts.graph_builds, counts.connections) == (1, 1)


def test_redo_loads_the_project_once(tmp_path: Path, counts: Counts) -> None:
    settings = sqlite_settings_with_one_pending(tmp_path)
    reset(counts)
    assert migrate.redo(settings) == 5
    assert counts.graph_builds == 1
    assert counts.connections <= 2


def test_status_reads_once(tmp_path: Path, counts: Counts) -> None:
    directory = tmp_path / "sql"
    shutil.copytree(SQL_DIR, directory, ignore=shutil.ignore_patterns("postgres", "mysql"))
    settings = settings_for(db=str(tmp_path / "x.db"), migrations_dir=str(directory))
    migrate.up(settings, to="3")
    reset(counts)
    assert migrate.status(settings).version == 3
    assert (counts.graph_builds, counts.connections) == (1, 1)
