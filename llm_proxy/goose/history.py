"""What goose_db_version says, read the way goose reads it (pure).

`up` of version V inserts (V, true); `down` of V deletes every row of V; the
current version is the version of the newest applied row (by id). Older goose
recorded a rollback as a row with is_applied = false instead of deleting, so
the newest row of a version decides its state.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class VersionRow:
    """One row of goose_db_version."""

    id: int
    version_id: int
    is_applied: bool
    tstamp: object  # datetime or the driver's text form


@dataclass(frozen=True)
class GooseState:
    """What goose_db_version says: which versions are applied, and the current one."""

    # version -> tstamp of the row that applied it, in the order goose applied them
    # (by the id of each version's newest row): the order goose's `down` undoes them in.
    applied: dict[int, object]
    current_version: int  # newest applied row by id; 0 when only the initial row exists
    exists: bool = True  # False: there is no goose_db_version table at all

    @classmethod
    def from_rows(cls, rows: Iterable[VersionRow]) -> GooseState:
        """Read rows as goose does: the newest row of a version decides it."""
        latest: dict[int, VersionRow] = {}
        for row in sorted(rows, key=lambda r: r.id):
            latest.pop(row.version_id, None)  # keeps `latest` in newest-row order
            latest[row.version_id] = row
        current = 0
        for row in reversed(latest.values()):
            if row.is_applied:
                current = row.version_id
                break
        applied = {
            row.version_id: row.tstamp
            for row in latest.values()
            if row.is_applied and row.version_id != 0
        }
        return cls(applied=applied, current_version=current)


EMPTY = GooseState(applied={}, current_version=0, exists=False)
