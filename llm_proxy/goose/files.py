"""Discovering and naming goose migration files (reads directory listings only).

Naming follows goose v3: ``{version}_{description}.sql`` where the version is the text before the
first ``_``, a positive 64-bit integer. Only names ending in ``.sql`` (case-sensitive, like goose's
``*.sql`` glob) are migrations; subdirectories are not scanned.

goose knows a file by its version number alone (``1_a.sql`` and ``00001_a.sql`` are both version
1), so its Alembic revision id is derived from the number, never from the spelling:
``revision_id``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from llm_proxy.errors import LlmProxyError

__all__ = [
    "MigrationFile",
    "MigrationFileError",
    "discover",
    "fix_plan",
    "is_timestamp_version",
    "new_migration_text",
    "next_sequential_name",
    "parse_filename",
    "revision_id",
    "sanitize_description",
    "timestamp_name",
]

SUFFIX = ".sql"
DEFAULT_WIDTH = 5  # goose pads sequential versions to five digits
TIMESTAMP_FORMAT = "%Y%m%d%H%M%S"
_MAX_VERSION = 2**63 - 1  # goose parses versions as int64
_DIGITS = re.compile(r"[0-9]+")
_WORD = re.compile(r"[^\W_]+")
_EPOCH = datetime(1970, 1, 1)


class MigrationFileError(LlmProxyError, ValueError):
    """Bad migration file names or directory; one line per problem, each naming the file."""

    def __init__(self, message: str, problems: Sequence[str] | None = None) -> None:
        super().__init__(message)
        self.problems: tuple[str, ...] = tuple(problems) if problems else (message,)


@dataclass(frozen=True, order=True)
class MigrationFile:
    """A goose migration file: its version (as a number and as written) and description."""

    version: int
    version_text: str
    description: str
    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def revision(self) -> str:
        """Its Alembic revision id: the version number, however the name pads it."""
        return revision_id(self.version)


def revision_id(version: int) -> str:
    """The Alembic revision id of goose `version`: the number padded to goose's five
    digits, the spelling of the shipped files (``00001``), so that databases they
    migrated keep their ids. Longer numbers (timestamps) keep their digits; no id is
    longer than 19 characters (int64), so each fits alembic_version's VARCHAR(32)."""
    return f"{version:0{DEFAULT_WIDTH}d}"


def parse_filename(name: str) -> tuple[int, str, str] | None:
    """``(version, version_text, description)``; None when ``name`` does not end in ".sql".

    Raises MigrationFileError for a .sql name goose would reject. Like goose, the ``_`` is
    required (``00001.sql`` is an error) but the description after it may be empty.
    """
    if not name.endswith(SUFFIX):
        return None
    parsed = _split_name(name)
    if isinstance(parsed, str):
        raise MigrationFileError(f"{name}: {parsed}")
    return parsed


def _split_name(name: str) -> tuple[int, str, str] | str:
    """The parts of a ".sql" name, or the reason goose would reject it."""
    version_text, sep, description = name[: -len(SUFFIX)].partition("_")
    if not sep:
        return "no '_' after the version (expected {version}_{description}.sql)"
    if not _DIGITS.fullmatch(version_text):
        return (
            f"version {version_text!r} is not a positive integer "
            "(expected {version}_{description}.sql)"
        )
    version = int(version_text)
    if version < 1:
        return "version must be greater than 0"
    if version > _MAX_VERSION:
        return "version is larger than goose's 64-bit limit"
    return version, version_text, description


def discover(directory: str | Path) -> list[MigrationFile]:
    """The migration files of ``directory`` (not recursive), sorted by version."""
    root = Path(directory)
    problems: list[str] = []
    names: list[str] = []
    try:
        with os.scandir(root) as entries:
            for entry in entries:
                if not entry.name.endswith(SUFFIX):
                    continue
                try:
                    if entry.is_file():  # follows symlinks
                        names.append(entry.name)
                except OSError as exc:  # a symlink loop: goose fails reading it too
                    problems.append(f"{root / entry.name}: cannot read: {exc.strerror or exc}")
    except FileNotFoundError:
        raise MigrationFileError(f"migrations directory not found: {root}") from None
    except NotADirectoryError:
        raise MigrationFileError(f"migrations path is not a directory: {root}") from None
    except OSError as exc:
        raise MigrationFileError(
            f"cannot read migrations directory {root}: {exc.strerror or exc}"
        ) from exc

    by_version: dict[int, list[MigrationFile]] = {}
    for name in sorted(names):
        parsed = _split_name(name)
        if isinstance(parsed, str):
            problems.append(f"{root / name}: {parsed}")
            continue
        version, version_text, description = parsed
        found = MigrationFile(version, version_text, description, root / name)
        by_version.setdefault(version, []).append(found)
    for version, group in sorted(by_version.items()):
        if len(group) > 1:
            listed = ", ".join(str(f.path) for f in group)
            problems.append(f"duplicate migration version {version}: {listed}")
    if problems:
        raise MigrationFileError("\n".join(problems), problems)
    return sorted(group[0] for group in by_version.values())


def is_timestamp_version(version: int) -> bool:
    """goose's test: the digits read as YYYYMMDDhhmmss form a valid time after the Unix epoch."""
    text = str(version)
    if len(text) != 14 or not text.isdigit():
        return False
    fields = (text[0:4], text[4:6], text[6:8], text[8:10], text[10:12], text[12:14])
    try:
        moment = datetime(*(int(field) for field in fields))
    except ValueError:  # e.g. month 13 or 30 February: goose calls that sequential
        return False
    return moment > _EPOCH


def _sequential(files: Sequence[MigrationFile]) -> list[MigrationFile]:
    return sorted(f for f in files if not is_timestamp_version(f.version))


def _next_number(files: Sequence[MigrationFile]) -> tuple[int, int]:
    """(next sequential version, zero-padding width) from the existing sequential files."""
    sequential = _sequential(files)
    if not sequential:
        return 1, DEFAULT_WIDTH
    last = sequential[-1]
    return last.version + 1, len(last.version_text)


def sanitize_description(name: str) -> str:
    """goose's snake-casing: runs of letters/digits, lowercased, joined by one ``_``.

    ``"Add Users"`` -> ``"add_users"``; camelCase is not split (``"AddUsers"`` -> ``"addusers"``).
    """
    return "_".join(word.lower() for word in _WORD.findall(name))


def _description(description: str) -> str:
    cleaned = sanitize_description(description)
    if not cleaned:
        raise ValueError(f"migration description {description!r} has no letters or digits")
    return cleaned


def next_sequential_name(files: Sequence[MigrationFile], description: str) -> str:
    """``"00007_add_users.sql"``: one past the highest sequential version, padded like it."""
    number, width = _next_number(files)
    return f"{number:0{width}d}_{_description(description)}{SUFFIX}"


def timestamp_name(description: str, now: datetime) -> str:
    """``"20240102150405_add_users.sql"`` in UTC (a naive ``now`` is taken to be UTC)."""
    moment = now if now.tzinfo is None else now.astimezone(UTC)
    return f"{moment.strftime(TIMESTAMP_FORMAT)}_{_description(description)}{SUFFIX}"


def fix_plan(files: Sequence[MigrationFile]) -> list[tuple[MigrationFile, str]]:
    """goose ``fix``: timestamp files, in version order, get the next sequential numbers.

    Returns ``(file, new_name)`` pairs; only the version prefix of each name changes.
    """
    number, width = _next_number(files)
    plan: list[tuple[MigrationFile, str]] = []
    for found in sorted(f for f in files if is_timestamp_version(f.version)):
        plan.append((found, f"{number:0{width}d}{found.name[len(found.version_text) :]}"))
        number += 1
    return plan


_NEW_MIGRATION = """\
-- +goose Up
-- A statement ends at a line whose last word ends with ';'. Bodies that contain ';'
-- (functions, triggers, DO blocks) go between StatementBegin and StatementEnd.
-- +goose StatementBegin
SELECT 'replace with the up migration';
-- +goose StatementEnd

-- +goose Down
-- Undo the Up section, in reverse order.
-- +goose StatementBegin
SELECT 'replace with the down migration';
-- +goose StatementEnd
"""


def new_migration_text(no_transaction: bool = False) -> str:
    """Skeleton for a new goose migration file."""
    if no_transaction:
        # goose reads NO TRANSACTION anywhere; at the top it is hard to miss.
        return "-- +goose NO TRANSACTION\n" + _NEW_MIGRATION
    return _NEW_MIGRATION
