"""What goose_db_version says, read the way goose reads it (pure).

`up` of version V inserts (V, true); `down` of V deletes every row of V; the
current version is the version of the newest applied row (by id). Older goose
recorded a rollback as a row with is_applied = false instead of deleting, so
the newest row of a version decides its state.

Rows that goose and llm-proxy would read differently, or that show a
migration ran twice, are ``RowProblem``s (``GooseState.problems``): `status`
and `validate --check-db` report them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

DUPLICATE = "duplicate"
NO_FILE = "no file"
ROLLED_BACK = "rolled back"


@dataclass(frozen=True)
class VersionRow:
    """One row of goose_db_version."""

    id: int
    version_id: int
    is_applied: bool
    tstamp: object  # datetime or the driver's text form


@dataclass(frozen=True)
class RowProblem:
    """Rows of one version that are not what one goose run leaves."""

    kind: str  # DUPLICATE, NO_FILE or ROLLED_BACK
    version: int
    row_ids: tuple[int, ...]
    message: str  # one line saying what it means and what to do


@dataclass(frozen=True)
class GooseState:
    """What goose_db_version says: which versions are applied, and the current one."""

    # version -> tstamp of the row that applied it, in the order goose applied them
    # (by the id of each version's newest row): the order goose's `down` undoes them in.
    applied: dict[int, object]
    current_version: int  # newest applied row by id; 0 when only the initial row exists
    rows: tuple[VersionRow, ...] = ()  # every row, oldest first
    exists: bool = True  # False: there is no goose_db_version table at all

    @classmethod
    def from_rows(cls, rows: Iterable[VersionRow]) -> GooseState:
        """Read rows as goose does: the newest row of a version decides it."""
        ordered = tuple(sorted(rows, key=lambda r: r.id))
        latest: dict[int, VersionRow] = {}
        for row in ordered:
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
        return cls(applied=applied, current_version=current, rows=ordered)

    def problems(self, known_versions: Collection[int]) -> list[RowProblem]:
        """By version: a version applied more than once since it was last rolled back
        (goose `down` deletes every row of it, so one run leaves one row); a version
        whose newest row is an older goose's rollback (is_applied = false); an
        applied version that none of `known_versions` (the files here) is."""
        by_version: dict[int, list[VersionRow]] = {}
        for row in self.rows:
            by_version.setdefault(row.version_id, []).append(row)
        highest = max(by_version, default=0)
        found = []
        for version, rows in sorted(by_version.items()):
            if version == 0:  # the initial row: goose reads it the same however often
                continue
            rolled_back = [i for i, row in enumerate(rows) if not row.is_applied]
            since = rows[rolled_back[-1] + 1 :] if rolled_back else rows
            if len(since) > 1:
                found.append(_duplicate(version, tuple(r.id for r in since)))
            if not rows[-1].is_applied:
                found.append(_rolled_back(version, rows[-1].id, self.current_version, highest))
            elif version not in known_versions:
                found.append(_no_file(version, tuple(r.id for r in since)))
        return found


def _ids(row_ids: tuple[int, ...]) -> str:
    return ", ".join(str(i) for i in row_ids)


def _duplicate(version: int, row_ids: tuple[int, ...]) -> RowProblem:
    return RowProblem(
        DUPLICATE,
        version,
        row_ids,
        f"version {version} is recorded as applied {len(row_ids)} times (goose_db_version "
        f"ids {_ids(row_ids)}): its migration ran more than once, as when goose and llm-proxy "
        "migrate one database at the same moment; check that its changes were not made "
        f"twice, then delete all but the oldest of those rows (id {row_ids[0]})",
    )


def _rolled_back(version: int, row_id: int, current: int, highest: int) -> RowProblem:
    # goose's `up` counts every row of a version as present, whatever is_applied says;
    # its current version (and ours) skips the version whose newest row is false.
    not_highest = f", not {highest}" if highest != current else ""
    return RowProblem(
        ROLLED_BACK,
        version,
        (row_id,),
        f"version {version} was rolled back by an older goose, which wrote a row with "
        f"is_applied = false (id {row_id}) instead of deleting its rows: the current version "
        f"is {current}{not_highest}; goose's up will never apply version {version} again "
        "(it counts any row), llm-proxy's up will",
    )


def _no_file(version: int, row_ids: tuple[int, ...]) -> RowProblem:
    return RowProblem(
        NO_FILE,
        version,
        row_ids,
        f"version {version} is applied (goose_db_version id {_ids(row_ids)}) but no migration "
        "file here defines it: the database was migrated by newer code, or the file was "
        "removed; deploy that code or restore the file",
    )


EMPTY = GooseState(applied={}, current_version=0, exists=False)


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
