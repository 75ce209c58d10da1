"""Revision ids a database recorded in another spelling, rewritten to the graph's.

Releases before this one used a goose file's version as written (``1_a.sql``:
``1``) as its revision id; the id now follows the number (``00001``), so a
file renamed only to add zero padding stays the same revision. Readers map the
old spelling as they read (``Snapshot.respelled``); a command that writes
rewrites it here, under the migration lock, in every table that records ids.
"""

from __future__ import annotations

from collections.abc import Mapping

from . import alembic_table, journal, partial_runs
from .snapshot import Snapshot
from .tables import Session


def rewrite(session: Session, recorded: Snapshot, renames: Mapping[str, str]) -> Snapshot:
    """Rename the ids `renames` maps (old -> new) in alembic_version, our journal and
    our partial-run markers; `recorded`: the tables as just read. Returns them as
    they now are."""
    tables = session.tables
    respelled = recorded.respelled(renames)
    if respelled.alembic_heads != recorded.alembic_heads:
        for sql in alembic_table.replace_heads_sql(tables, respelled.alembic_heads):
            session.execute(sql)
    for old, new in renames.items():
        # Recorded under both spellings: the entry under the canonical id stays.
        if old in recorded.journal:
            session.execute(
                journal.forget_sql(tables, old)
                if new in recorded.journal
                else journal.rename_sql(tables, old, new)
            )
        if old in recorded.partial_runs:
            session.execute(
                partial_runs.clear_sql(tables, old)
                if new in recorded.partial_runs
                else partial_runs.rename_sql(tables, old, new)
            )
    return respelled
