"""A small, pure model of goose v3's bookkeeping rules, for tests to compare against.

It knows nothing about SQL: a migration directory is a set of file versions and a
database is the list of goose_db_version rows. Each command changes the rows the way
goose's command-line tool does and appends what it ran to ``ran``, so a test can
compare both the rows and the order of execution with what llm-proxy did.

The rules, as goose v3 implements them:

- The table starts with the row (0, applied). ``up`` of V inserts (V, applied);
  ``down`` of V deletes every row of V.
- The current version is the version of the newest row (highest id) that is
  applied; a version whose newest row is not applied is skipped while looking.
- ``up-to T`` considers only files <= T. A file below the highest recorded version
  that has no row is "missing": refused unless allow-missing, which applies the
  missing files first (ascending), then every file above the highest recorded
  version, ascending. ``up`` is ``up-to`` the largest int64. The target need not
  be a file's version, but ``up-to`` with no file at or below it (``up-to 0``) is
  goose's error "no migration files found".
- ``down`` rolls back the current version; ``redo`` rolls it back and applies it.
- ``down-to T`` rolls back the current version while it is above T, re-reading the
  current version after each step (so a gap stops it early, as in goose).
- ``reset`` rolls back every file whose newest row is applied, highest version
  first.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

MAX_VERSION = 2**63 - 1


class GooseError(Exception):
    """goose exits 1 with this message; rows keep whatever was done before it."""


@dataclass(frozen=True)
class Row:
    id: int
    version: int
    applied: bool = True


@dataclass
class GooseModel:
    files: tuple[int, ...]
    rows: list[Row] | None = None  # None: the goose table does not exist yet
    ran: list[tuple[str, int]] = field(default_factory=list)
    # Ids are never reused (SQLite AUTOINCREMENT, identity and AUTO_INCREMENT columns):
    # compare versions in id order, not the ids themselves.
    last_id: int = 0

    def __post_init__(self) -> None:
        self.files = tuple(sorted(set(self.files)))
        self.last_id = max((row.id for row in self.rows or []), default=0)

    @classmethod
    def with_rows(cls, files: Iterable[int], versions: Iterable[int]) -> GooseModel:
        """A database whose rows were written in this order (0 first, if given)."""
        rows = [Row(index + 1, version) for index, version in enumerate(versions)]
        return cls(tuple(files), rows)

    # --- reading -----------------------------------------------------------

    @property
    def versions_by_id(self) -> list[int]:
        return [row.version for row in self.rows or []]

    def applied(self) -> set[int]:
        """Versions whose newest row says applied (what goose's status shows)."""
        newest: dict[int, bool] = {}
        for row in reversed(self.rows or []):
            newest.setdefault(row.version, row.applied)
        return {version for version, applied in newest.items() if applied and version != 0}

    def current(self) -> int:
        self._ensure_table()
        skipped: set[int] = set()
        for row in reversed(self.rows or []):
            if row.version in skipped:
                continue
            if row.applied:
                return row.version
            skipped.add(row.version)
        raise GooseError("no next version found")

    def missing(self, target: int = MAX_VERSION) -> list[int]:
        recorded = {row.version for row in self.rows or []}
        highest = max(recorded, default=0)
        return [v for v in self.files if v <= target and v not in recorded and v < highest]

    # --- commands ----------------------------------------------------------

    def up(self, allow_missing: bool = False) -> list[int]:
        return self.up_to(MAX_VERSION, allow_missing)

    def up_by_one(self, allow_missing: bool = False) -> list[int]:
        return self.up_to(MAX_VERSION, allow_missing, only_one=True)

    def up_to(self, target: int, allow_missing: bool = False, only_one: bool = False) -> list[int]:
        """Returns the versions applied, in order."""
        if not any(v <= target for v in self.files):
            # goose collects the files up to the target first, and an empty
            # collection is an error, before the table is even created.
            raise GooseError("no migration files found")
        self._ensure_table()
        recorded = {row.version for row in self.rows or []}
        highest = max(recorded, default=0)
        missing = self.missing(target)
        if missing and not allow_missing:
            raise GooseError(
                f"found {len(missing)} missing migrations before current version {highest}"
            )
        newer = [v for v in self.files if v not in recorded and highest < v <= target]
        plan = missing + newer
        if only_one:
            if not plan:
                raise GooseError("no next version found")
            plan = plan[:1]
        for version in plan:
            self._apply(version)
        return plan

    def down(self) -> int:
        version = self.current()
        if version not in self.files:
            raise GooseError(f"migration {version}: no current version found")
        self._roll_back(version)
        return version

    def down_to(self, target: int) -> list[int]:
        rolled_back = []
        while True:
            version = self.current()
            if version == 0:
                return rolled_back
            if version not in self.files:
                raise GooseError(f"migration file not found for current version ({version})")
            if version <= target:
                return rolled_back
            self._roll_back(version)
            rolled_back.append(version)

    def redo(self) -> int:
        version = self.current()
        if version not in self.files:
            raise GooseError("no current version found")
        self._roll_back(version)
        self._apply(version)
        return version

    def reset(self) -> list[int]:
        if self.rows is None:
            raise GooseError("failed to get status of migrations")
        applied = self.applied()
        rolled_back = []
        for version in sorted(self.files, reverse=True):
            if version in applied:
                self._roll_back(version)
                rolled_back.append(version)
        return rolled_back

    def stamp(self, target: int) -> None:
        """Record ``target`` as reached without running SQL: the rows goose would have
        written by ``up-to target`` or ``down-to target``; missing files stay missing."""
        self._ensure_table()
        if target >= self.current():
            highest = max(row.version for row in self.rows or [Row(0, 0)])
            for version in self.files:
                if highest < version <= target:
                    self._record(version)
        else:
            while (version := self.current()) > target:
                self._forget(version)

    def apply_one(self, version: int) -> None:
        """Apply one file, whatever the rules say: goose run with another set of
        files, or by hand (how out-of-order histories arise)."""
        self._ensure_table()
        self._apply(version)

    def roll_back_one(self, version: int) -> None:
        """Roll back one file, whatever the rules say."""
        self._roll_back(version)

    # --- effects -----------------------------------------------------------

    def _ensure_table(self) -> None:
        if self.rows is None:
            self.rows = []
            self._record(0)

    def _apply(self, version: int) -> None:
        self.ran.append(("up", version))
        self._record(version)

    def _roll_back(self, version: int) -> None:
        self.ran.append(("down", version))
        self._forget(version)

    def _record(self, version: int) -> None:
        assert self.rows is not None
        self.last_id += 1
        self.rows.append(Row(self.last_id, version))

    def _forget(self, version: int) -> None:
        assert self.rows is not None
        self.rows = [row for row in self.rows if row.version != version]
