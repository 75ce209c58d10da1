"""goose_db_version (or the table goose's -table names), exactly as goose v3 keeps it.

The real goose binary reads and writes this table, so its DDL (from the
dialect), its initial row and the meaning of its rows match goose: `up` of V
inserts (V, true) in V's transaction, `down` of V deletes every row of V.
The SQL builders serve offline scripts too, so they take only `Tables`.
"""

from __future__ import annotations

from collections.abc import Iterable

from llm_proxy.errors import MigrationError, StateConflict, reason
from llm_proxy.goose.history import EMPTY, GooseState, StampChanges, VersionRow, stamp_changes

from .tables import Session, Tables


def create_sql(tables: Tables) -> str:
    """goose's CREATE TABLE for goose_db_version."""
    return tables.dialect.create_goose_table_sql(tables.qualified(tables.goose_table))


def insert_sql(tables: Tables, version: int) -> str:
    """The row goose writes when it applies `version`."""
    # Versions are integers from file names, so inlining them is safe and keeps
    # the statement usable in offline (--sql) scripts.
    return (
        f"INSERT INTO {tables.qualified(tables.goose_table)} (version_id, is_applied) "
        f"VALUES ({int(version)}, {tables.dialect.true_literal})"
    )


def delete_sql(tables: Tables, version: int) -> str:
    """What goose does when it rolls back `version`: every row of it goes."""
    return f"DELETE FROM {tables.qualified(tables.goose_table)} WHERE version_id = {int(version)}"


def select_rows_sql(tables: Tables) -> str:
    """Every row, oldest first."""
    return (
        f"SELECT id, version_id, is_applied, tstamp FROM {tables.qualified(tables.goose_table)} "
        "ORDER BY id"
    )


def is_applied_sql(tables: Tables, version: int) -> str:
    """Whether the newest row of `version` is applied."""
    return (
        f"SELECT is_applied FROM {tables.qualified(tables.goose_table)} "
        f"WHERE version_id = {int(version)} ORDER BY id DESC LIMIT 1"
    )


def read_rows(session: Session) -> GooseState:
    """The table's state; the caller knows the table exists."""
    table = session.tables.qualified(session.tables.goose_table)
    try:
        rows = session.execute(select_rows_sql(session.tables))
        return GooseState.from_rows(
            VersionRow(id=r[0], version_id=r[1], is_applied=bool(r[2]), tstamp=r[3]) for r in rows
        )
    except Exception as exc:
        # Usually a table of that name with another layout; say which table it is.
        raise StateConflict(f"cannot read {table} (goose's version table): {reason(exc)}") from exc


def drop_sql(tables: Tables) -> str:
    """Drop goose's table (retire-goose --drop-table: goose's history goes with it)."""
    return f"DROP TABLE {tables.qualified(tables.goose_table)}"


def read_state(session: Session) -> GooseState:
    """The table's state (empty when the table does not exist)."""
    return read_rows(session) if session.exists(session.tables.goose_table) else EMPTY


def ensure(session: Session) -> bool:
    """Create goose_db_version (and the --schema it lives in) with goose's DDL and
    initial row; True if created. A database refusing this (no CREATE privilege)
    is reported as one line before any migration runs."""
    tables = session.tables
    try:
        session.ensure_schema()
        if session.exists(session.tables.goose_table):
            return False
        session.execute(create_sql(tables))
        session.execute(insert_sql(tables, 0))
    except Exception as exc:
        raise MigrationError(
            f"cannot create the version table {tables.qualified(tables.goose_table)}: {reason(exc)}"
        ) from exc
    return True


def stamp(session: Session, files: Iterable[int], target: int) -> StampChanges:
    """Write the rows goose would have written migrating to `target`, running no
    migration (``history.stamp_changes``); the table is created first if missing."""
    ensure(session)
    changes = stamp_changes(read_rows(session).rows, files, target)
    for version in changes.insert:
        session.execute(insert_sql(session.tables, version))
    for version in changes.delete:
        session.execute(delete_sql(session.tables, version))
    return changes
