"""llm_proxy_partial_runs: how far a NO TRANSACTION migration got.

Such a migration commits statement by statement and goose records it only at
the end, so one stopped part-way would look merely pending. While it runs it
has a row here: committed before its first statement, advanced after each,
deleted in the transaction that writes goose's row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .tables import PARTIAL_RUNS_TABLE, Session, Tables


@dataclass(frozen=True)
class PartialRun:
    """How far a NO TRANSACTION run got."""

    direction: str  # "up" or "down"
    done: int
    total: int


def create_sql(tables: Tables) -> str:
    """CREATE TABLE for llm_proxy_partial_runs."""
    return (
        f"CREATE TABLE {tables.qualified(PARTIAL_RUNS_TABLE)} (revision VARCHAR(64) NOT NULL "
        "PRIMARY KEY, direction VARCHAR(4) NOT NULL, statements_done INTEGER NOT NULL, "
        "statements_total INTEGER NOT NULL)"
    )


def start_sql(tables: Tables, revision: str, direction: str, total: int) -> list[str]:
    """A fresh marker for a run about to start."""
    table = tables.qualified(PARTIAL_RUNS_TABLE)
    return [
        clear_sql(tables, revision),
        f"INSERT INTO {table} (revision, direction, statements_done, statements_total) "
        f"VALUES ({tables.literal(revision)}, {tables.literal(direction)}, 0, {int(total)})",
    ]


def progress_sql(tables: Tables, revision: str, done: int) -> str:
    """Advance the marker after a statement committed."""
    return (
        f"UPDATE {tables.qualified(PARTIAL_RUNS_TABLE)} SET statements_done = {int(done)} "
        f"WHERE revision = {tables.literal(revision)}"
    )


def rename_sql(tables: Tables, old: str, new: str) -> str:
    """Keep a marker under another revision id (the same file, respelled)."""
    return (
        f"UPDATE {tables.qualified(PARTIAL_RUNS_TABLE)} SET revision = {tables.literal(new)} "
        f"WHERE revision = {tables.literal(old)}"
    )


def clear_sql(tables: Tables, revision: str) -> str:
    """Remove the marker (with goose's row, or before a fresh start)."""
    return (
        f"DELETE FROM {tables.qualified(PARTIAL_RUNS_TABLE)} "
        f"WHERE revision = {tables.literal(revision)}"
    )


def read_rows(session: Session) -> dict[str, PartialRun]:
    """Every marker; the caller knows the table exists."""
    rows = session.execute(
        "SELECT revision, direction, statements_done, statements_total "
        f"FROM {session.tables.qualified(PARTIAL_RUNS_TABLE)}"
    )
    return {str(r[0]): PartialRun(str(r[1]), int(r[2]), int(r[3])) for r in rows}


def ensure(session: Session) -> None:
    """Create the table when missing."""
    if not session.exists(PARTIAL_RUNS_TABLE):
        session.execute(create_sql(session.tables))


def prune(session: Session, runs: Mapping[str, PartialRun], applied: Iterable[str]) -> None:
    """Drop markers the version tables have overtaken (goose finished the job);
    `runs`: the table as just read."""
    done = set(applied)
    for revision, run in runs.items():
        if (run.direction == "up") == (revision in done):
            session.execute(clear_sql(session.tables, revision))
