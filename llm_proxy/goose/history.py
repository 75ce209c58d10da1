"""What goose_db_version says, read the way goose reads it (pure).

`up` of version V inserts (V, true); `down` of V deletes every row of V; the
current version is the version of the newest applied row (by id). Older goose
recorded a rollback as a row with is_applied = false instead of deleting, so
the newest row of a version decides its state.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
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

    applied: dict[int, object]  # version -> tstamp of the row that applied it
    current_version: int  # newest applied row by id; 0 when only the initial row exists
    rows: tuple[VersionRow, ...] = ()  # every row, oldest first

    @classmethod
    def from_rows(cls, rows: Iterable[VersionRow]) -> GooseState:
        """Read rows as goose does: the newest row of a version decides it."""
        ordered = tuple(sorted(rows, key=lambda r: r.id))
        latest: dict[int, VersionRow] = {}
        for row in ordered:
            latest[row.version_id] = row
        current = 0
        for row in sorted(latest.values(), key=lambda r: r.id, reverse=True):
            if row.is_applied:
                current = row.version_id
                break
        applied = {
            row.version_id: row.tstamp
            for row in latest.values()
            if row.is_applied and row.version_id != 0
        }
        return cls(applied=applied, current_version=current, rows=ordered)


EMPTY = GooseState(applied={}, current_version=0)


@dataclass(frozen=True)
class StampChanges:
    """The rows a stamp writes: versions to insert (in order), versions to delete."""

    insert: tuple[int, ...] = ()
    delete: tuple[int, ...] = ()


def stamp_changes(rows: Sequence[VersionRow], files: Iterable[int], target: int) -> StampChanges:
    """The rows goose would have written, without running anything, had it
    migrated this table to `target` (goose itself has no stamp):

    - up (`target` at or above the current version): a row for each file above
      the highest version the table records, up to `target`; a file below it
      that has no row stays missing, as goose would leave it;
    - down: roll back the current version while it is above `target`, reading
      the current version again after each (every row of a version goes).
    """
    remaining = list(rows)
    current = GooseState.from_rows(remaining).current_version
    if target >= current:
        highest = max((row.version_id for row in remaining), default=0)
        return StampChanges(insert=tuple(v for v in sorted(set(files)) if highest < v <= target))
    deleted = []
    while current > target:
        deleted.append(current)
        remaining = [row for row in remaining if row.version_id != current]
        current = GooseState.from_rows(remaining).current_version
    return StampChanges(delete=tuple(deleted))
