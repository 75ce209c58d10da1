"""What an offline (--sql) script says before its first migration, so that it
runs as written in the database's own client and builds what the online run
builds.

- In a --schema: the schema (when starting from an empty database) and the
  search_path our own connections get, so the application's tables land
  there too, not only the version tables.
- From an empty database: goose's table and its initial row, as goose
  creates them.
- From a revision: alembic_version, created and set to that revision when
  missing (a database only goose has migrated has none), idempotently.

llm-proxy's own tables (checksums, partial-run markers) are left out: the
next llm-proxy command creates them and records what the script applied.
"""

from __future__ import annotations

from collections.abc import Sequence

from llm_proxy.store import alembic_table, goose_table

from .run import Run


def preamble(current: Run, start_heads: Sequence[str]) -> list[str]:
    """The statements, unterminated; `start_heads` is empty from an empty database."""
    settings = current.settings
    tables = current.tables
    from_empty = not start_heads
    statements: list[str] = []
    if settings.schema and settings.dialect.supports_schemas:
        statements += settings.dialect.script_schema_sql(settings.schema, create=from_empty)
    if from_empty and settings.goose_retired:
        return statements  # no goose binary will read it: no goose table
    if from_empty:
        return [*statements, goose_table.create_sql(tables), goose_table.insert_sql(tables, 0)]
    return [
        *statements,
        alembic_table.create_if_missing_sql(tables),
        alembic_table.record_if_empty_sql(tables, start_heads),
    ]
