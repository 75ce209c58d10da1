"""goose_db_version and alembic_version, read and written together.

Everything here takes an `execute(sql) -> rows` callable, so the same code
serves a SQLAlchemy connection inside Alembic and a plain DBAPI connection
on the fast path. The planning itself lives in `state`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from llm_proxy.errors import MigrationError, StateConflict, reason
from llm_proxy.goose import version_table
from llm_proxy.goose.version_table import GooseState, VersionRow

from .state import DatabaseView, Graph, Node, reconcile

Execute = Callable[[str], Sequence[Sequence[Any]]]

ALEMBIC_TABLE = "alembic_version"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def table_exists_sql(dialect: str, table: str, schema: str | None = None) -> str:
    if dialect == "sqlite":
        return f"SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '{table}'"
    if dialect == "postgresql":
        # to_regclass is NULL (not an error) when the schema does not exist yet.
        qualified = version_table.qualified(dialect, schema, table)
        return f"SELECT 1 WHERE to_regclass({_literal(qualified)}) IS NOT NULL"
    return (
        "SELECT 1 FROM information_schema.tables "
        f"WHERE table_schema = DATABASE() AND table_name = '{table}'"
    )


def _qualified(dialect: str, table: str, schema: str | None) -> str:
    return version_table.qualified(dialect, schema, table)


def table_exists(execute: Execute, dialect: str, table: str, schema: str | None = None) -> bool:
    return bool(execute(table_exists_sql(dialect, table, schema)))


def ensure_schema(execute: Execute, dialect: str, schema: str | None) -> bool:
    """Create the PostgreSQL schema named by --schema if missing; True if created.
    Checked first because CREATE SCHEMA IF NOT EXISTS needs the CREATE privilege
    on the database even when the schema is already there."""
    if dialect != "postgresql" or not schema:
        return False
    if execute(f"SELECT 1 FROM pg_namespace WHERE nspname = {_literal(schema)}"):
        return False
    execute(f"CREATE SCHEMA {version_table.quote_schema(schema)}")
    return True


def read_goose_state(execute: Execute, dialect: str, schema: str | None = None) -> GooseState:
    if not table_exists(execute, dialect, version_table.TABLE, schema):
        return GooseState(applied={}, current_version=0)
    table = version_table.qualified(dialect, schema)
    try:
        rows = execute(version_table.select_rows_sql(dialect, schema))
        return GooseState.from_rows(
            VersionRow(id=r[0], version_id=r[1], is_applied=bool(r[2]), tstamp=r[3]) for r in rows
        )
    except Exception as exc:
        # Usually a table of that name with another layout; say which table it is.
        raise StateConflict(f"cannot read {table} (goose's version table): {reason(exc)}") from exc


def ensure_goose_table(execute: Execute, dialect: str, schema: str | None = None) -> bool:
    """Create goose_db_version (and the --schema it lives in) with goose's DDL and
    initial row; True if created. A database refusing this (no CREATE privilege)
    is reported as one line before any migration runs."""
    table = version_table.qualified(dialect, schema)
    try:
        ensure_schema(execute, dialect, schema)
        if table_exists(execute, dialect, version_table.TABLE, schema):
            return False
        execute(version_table.create_sql(dialect, schema))
        execute(version_table.insert_sql(dialect, 0, schema))
    except Exception as exc:
        raise MigrationError(f"cannot create the version table {table}: {reason(exc)}") from exc
    return True


def read_alembic_heads(
    execute: Execute, dialect: str, schema: str | None = None
) -> tuple[str, ...]:
    if not table_exists(execute, dialect, ALEMBIC_TABLE, schema):
        return ()
    rows = execute(f"SELECT version_num FROM {_qualified(dialect, ALEMBIC_TABLE, schema)}")
    return tuple(sorted(str(r[0]) for r in rows))


def graph_from_scripts(scripts: Sequence[Any]) -> Graph:
    """The plain-data graph of Alembic Script objects (goose and Python)."""
    from .loader import goose_file_of

    nodes = []
    for script in scripts:
        goose_file = goose_file_of(script)
        nodes.append(
            Node(
                revision=script.revision,
                parents=tuple(script._versioned_down_revisions),
                dependencies=tuple(script.dependencies or ()),
                goose_version=goose_file.version if goose_file else None,
                name=goose_file.name if goose_file else _python_name(script),
            )
        )
    return Graph.build(nodes)


def _python_name(script: Any) -> str:
    from pathlib import Path

    return Path(script.path).name


def database_view(
    execute: Execute, dialect: str, graph: Graph, schema: str | None = None
) -> tuple[DatabaseView, tuple[str, ...]]:
    """The reconciled view and the heads alembic_version holds now."""
    goose = read_goose_state(execute, dialect, schema)
    heads = read_alembic_heads(execute, dialect, schema)
    view = reconcile(graph, goose.applied.keys(), goose.current_version, heads)
    return view, heads
