"""Every bookkeeping table of a database, read at once over one session."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from llm_proxy.goose.history import EMPTY, GooseState

from . import alembic_table, goose_table
from .tables import ALEMBIC_TABLE, GOOSE_TABLE, JOURNAL_TABLE, PARTIAL_RUNS_TABLE, Session

if TYPE_CHECKING:
    from .journal import Entry
    from .partial_runs import PartialRun


@dataclass(frozen=True)
class Snapshot:
    """What the database records: goose's rows, Alembic's heads, our checksums and
    partial runs. An empty Snapshot is a database nothing has migrated."""

    goose: GooseState = EMPTY
    goose_table: bool = False  # whether goose_db_version exists
    alembic_heads: tuple[str, ...] = ()
    journal: dict[str, Entry] = field(default_factory=dict)
    partial_runs: dict[str, PartialRun] = field(default_factory=dict)


def read(session: Session, *, with_journal: bool = True) -> Snapshot:
    """All four tables, asking once which of them exist. `with_journal=False`
    reads only the two version tables (what "is anything pending?" needs)."""
    names = (GOOSE_TABLE, ALEMBIC_TABLE)
    if with_journal:
        names += (JOURNAL_TABLE, PARTIAL_RUNS_TABLE)
    present = session.existing(*names)
    recorded = Snapshot(
        goose=goose_table.read_rows(session) if GOOSE_TABLE in present else EMPTY,
        goose_table=GOOSE_TABLE in present,
        alembic_heads=alembic_table.read_rows(session) if ALEMBIC_TABLE in present else (),
    )
    if JOURNAL_TABLE in present:
        from . import journal

        recorded.journal.update(journal.read_rows(session))
    if PARTIAL_RUNS_TABLE in present:
        from . import partial_runs

        recorded.partial_runs.update(partial_runs.read_rows(session))
    return recorded
