"""Every bookkeeping table of a database, read at once over one session."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, TypeVar

from llm_proxy.goose.history import EMPTY, GooseState

from . import alembic_table, goose_table
from .tables import ALEMBIC_TABLE, JOURNAL_TABLE, PARTIAL_RUNS_TABLE, Session

if TYPE_CHECKING:
    from .journal import Entry
    from .partial_runs import PartialRun

_T = TypeVar("_T")


@dataclass(frozen=True)
class Snapshot:
    """What the database records: goose's rows, Alembic's heads, our checksums and
    partial runs. An empty Snapshot is a database nothing has migrated."""

    goose: GooseState = EMPTY
    alembic_heads: tuple[str, ...] = ()
    journal: dict[str, Entry] = field(default_factory=dict)
    partial_runs: dict[str, PartialRun] = field(default_factory=dict)

    @property
    def goose_table(self) -> bool:
        """Whether goose_db_version exists."""
        return self.goose.exists

    def revision_ids(self) -> set[str]:
        """Every revision id recorded (goose's rows record versions, not ids)."""
        return {*self.alembic_heads, *self.journal, *self.partial_runs}

    def respelled(self, renames: Mapping[str, str]) -> Snapshot:
        """The same records with the ids `renames` maps (old -> new) renamed; an
        entry already recorded under the new id wins over the renamed one."""
        heads = sorted({renames.get(head, head) for head in self.alembic_heads})
        return replace(
            self,
            alembic_heads=tuple(heads),
            journal=_renamed(self.journal, renames),
            partial_runs=_renamed(self.partial_runs, renames),
        )


def _renamed(entries: Mapping[str, _T], renames: Mapping[str, str]) -> dict[str, _T]:
    result = {renames[key]: value for key, value in entries.items() if key in renames}
    result.update({key: value for key, value in entries.items() if key not in renames})
    return result


def read(session: Session, *, with_journal: bool = True) -> Snapshot:
    """All four tables, asking once which of them exist. `with_journal=False`
    reads only the two version tables (what "is anything pending?" needs)."""
    goose = session.tables.goose_table
    names = (goose, ALEMBIC_TABLE)
    if with_journal:
        names += (JOURNAL_TABLE, PARTIAL_RUNS_TABLE)
    present = session.existing(*names)
    recorded = Snapshot(
        goose=goose_table.read_rows(session) if goose in present else EMPTY,
        alembic_heads=alembic_table.read_rows(session) if ALEMBIC_TABLE in present else (),
    )
    if JOURNAL_TABLE in present:
        from . import journal

        recorded.journal.update(journal.read_rows(session))
    if PARTIAL_RUNS_TABLE in present:
        from . import partial_runs

        recorded.partial_runs.update(partial_runs.read_rows(session))
    return recorded
