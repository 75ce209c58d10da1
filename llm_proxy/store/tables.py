"""Where the bookkeeping tables live, and a database session to read them over.

Every reader and writer in ``store`` takes a ``Session``: an ``execute(sql) ->
rows`` callable plus the ``Tables`` it addresses (dialect and --schema). The
same code so serves a plain DBAPI connection on the fast path and a SQLAlchemy
connection inside an Alembic run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llm_proxy.dialects import Dialect

if TYPE_CHECKING:
    from llm_proxy.config import Settings

Execute = Callable[[str], Sequence[Sequence[Any]]]

GOOSE_TABLE = "goose_db_version"
ALEMBIC_TABLE = "alembic_version"
JOURNAL_TABLE = "llm_proxy_migrations"
PARTIAL_RUNS_TABLE = "llm_proxy_partial_runs"

# Version tables (goose's, Alembic's) and ours: never application schema.
_VERSION_TABLES = frozenset({GOOSE_TABLE, ALEMBIC_TABLE})
OWN_TABLE_PREFIX = "llm_proxy_"


def is_bookkeeping_table(name: str, goose_table: str = GOOSE_TABLE) -> bool:
    """True for goose's and Alembic's version tables (goose's under the name
    `goose_table` too) and any table of our own."""
    lowered = name.lower()
    return (
        lowered in _VERSION_TABLES
        or lowered == goose_table.lower()
        or lowered.startswith(OWN_TABLE_PREFIX)
    )


@dataclass(frozen=True)
class Tables:
    """The bookkeeping tables of one database: its dialect, --schema and goose's table."""

    dialect: Dialect
    schema: str | None = None
    goose_table: str = GOOSE_TABLE  # goose's -table: teams may have renamed it

    @classmethod
    def of(cls, settings: Settings) -> Tables:
        """The tables of the database `settings` names."""
        return cls(settings.dialect, settings.schema, settings.goose_table)

    def qualified(self, table: str) -> str:
        """`table` as SQL names it here (schema-qualified on PostgreSQL)."""
        return self.dialect.qualify(table, self.schema)

    def literal(self, text: str) -> str:
        """A string literal in this dialect."""
        return self.dialect.literal(text)


@dataclass(frozen=True)
class Session:
    """One open database session, as `store` uses it."""

    execute: Execute
    tables: Tables

    @property
    def dialect(self) -> Dialect:
        return self.tables.dialect

    def existing(self, *names: str) -> set[str]:
        """Those of the tables `names` that exist (one query)."""
        rows = self.execute(self.dialect.existing_tables_sql(names, self.tables.schema))
        return {str(row[0]) for row in rows}

    def exists(self, name: str) -> bool:
        """Whether the table `name` exists."""
        return name in self.existing(name)

    def ensure_schema(self) -> bool:
        """Create the PostgreSQL schema named by --schema if missing; True if created.
        Checked first because CREATE SCHEMA IF NOT EXISTS needs the CREATE privilege
        on the database even when the schema is already there."""
        schema = self.tables.schema
        if not schema or not self.dialect.supports_schemas:
            return False
        if self.execute(self.dialect.schema_exists_sql(schema)):
            return False
        self.execute(self.dialect.create_schema_sql(schema))
        return True
