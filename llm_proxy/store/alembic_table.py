"""alembic_version, as Alembic keeps it: one row per applied head."""

from __future__ import annotations

from collections.abc import Iterable

from llm_proxy.errors import StateConflict, reason

from .tables import ALEMBIC_TABLE, Session, Tables


def select_heads_sql(tables: Tables) -> str:
    """The heads alembic_version holds."""
    return f"SELECT version_num FROM {tables.qualified(ALEMBIC_TABLE)}"


def read_rows(session: Session) -> tuple[str, ...]:
    """The heads alembic_version holds, sorted; the caller knows the table exists."""
    try:
        rows = session.execute(select_heads_sql(session.tables))
    except Exception as exc:
        # Usually a table of that name with another layout; say which table it is.
        table = session.tables.qualified(ALEMBIC_TABLE)
        raise StateConflict(
            f"cannot read {table} (Alembic's version table, one version_num column): {reason(exc)}"
        ) from exc
    return tuple(sorted(str(r[0]) for r in rows))


def replace_heads_sql(tables: Tables, heads: Iterable[str]) -> list[str]:
    """Statements that make alembic_version hold exactly `heads` (table exists)."""
    table = tables.qualified(ALEMBIC_TABLE)
    return [f"DELETE FROM {table}"] + [
        f"INSERT INTO {table} (version_num) VALUES ({tables.literal(head)})" for head in heads
    ]


def create_if_missing_sql(tables: Tables) -> str:
    """alembic_version as Alembic creates it, unless it exists (for scripts that
    start from a database only goose has migrated)."""
    return (
        f"CREATE TABLE IF NOT EXISTS {tables.qualified(ALEMBIC_TABLE)} (\n"
        "    version_num VARCHAR(32) NOT NULL,\n"
        "    CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)\n"
        ")"
    )


def record_if_empty_sql(tables: Tables, heads: Iterable[str]) -> str:
    """A statement that records `heads` in an alembic_version that holds nothing,
    and leaves one that holds a position already as it is."""
    table = tables.qualified(ALEMBIC_TABLE)
    rows = " UNION ALL ".join(f"SELECT {tables.literal(head)} AS head" for head in heads)
    return (
        f"INSERT INTO {table} (version_num) SELECT start.head FROM ({rows}) AS start "
        f"WHERE NOT EXISTS (SELECT 1 FROM {table})"
    )
