"""llm_proxy_migrations: our own record of what ran, beside the version tables.

goose only ever reads goose_db_version and Alembic only alembic_version, so a
third table is invisible to both. It holds, per applied revision (goose or
Python), the SHA-256 of the file as it was applied and when it was applied,
which lets `status` flag files edited after the fact (goose cannot) and show
an "Applied At" for Python revisions (Alembic keeps no time).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .tables import JOURNAL_TABLE, Session, Tables

_CHECKSUM_BLOCK = 1 << 20


@dataclass(frozen=True)
class Entry:
    """A recorded checksum and when the revision was applied."""

    checksum: str
    applied_at: object


# A revision `migrate convert` wrote states the checksum of the goose file it came
# from: databases recorded that one, and must not see the conversion as an edit.
_CONVERTED_CHECKSUM = re.compile(rb"^goose_checksum = '([0-9a-f]{64})'$", re.MULTILINE)


def file_checksum(path: Path | str) -> str:
    """SHA-256 of the file's bytes (for a converted goose file, the goose file's).
    `status` hashes every applied file, so small files (nearly all) are read with
    one system call, large ones in blocks."""
    import hashlib  # loads OpenSSL: only when a checksum is needed

    if str(path).endswith(".py"):
        found = _CONVERTED_CHECKSUM.search(Path(path).read_bytes())
        if found is not None:
            return found.group(1).decode("ascii")
    descriptor = os.open(path, os.O_RDONLY)
    try:
        digest = hashlib.sha256()
        while block := os.read(descriptor, _CHECKSUM_BLOCK):
            digest.update(block)
            if len(block) < _CHECKSUM_BLOCK:
                break
    finally:
        os.close(descriptor)
    return digest.hexdigest()


def create_sql(tables: Tables) -> str:
    """CREATE TABLE for llm_proxy_migrations."""
    return (
        f"CREATE TABLE {tables.qualified(JOURNAL_TABLE)} (revision VARCHAR(64) NOT NULL "
        "PRIMARY KEY, checksum CHAR(64) NOT NULL, "
        f"applied_at TIMESTAMP NOT NULL DEFAULT {tables.dialect.now_default})"
    )


def record_sql(tables: Tables, revision: str, checksum: str) -> str:
    """Record an applied revision's checksum."""
    return (
        f"INSERT INTO {tables.qualified(JOURNAL_TABLE)} (revision, checksum) "
        f"VALUES ({tables.literal(revision)}, {tables.literal(checksum)})"
    )


def forget_sql(tables: Tables, revision: str) -> str:
    """Forget a rolled-back revision."""
    return (
        f"DELETE FROM {tables.qualified(JOURNAL_TABLE)} WHERE revision = {tables.literal(revision)}"
    )


def rename_sql(tables: Tables, old: str, new: str) -> str:
    """Record an entry under another revision id (the same file, respelled)."""
    return (
        f"UPDATE {tables.qualified(JOURNAL_TABLE)} SET revision = {tables.literal(new)} "
        f"WHERE revision = {tables.literal(old)}"
    )


def update_sql(tables: Tables, revision: str, checksum: str) -> str:
    """Re-record a revision's checksum (repair)."""
    return (
        f"UPDATE {tables.qualified(JOURNAL_TABLE)} SET checksum = {tables.literal(checksum)} "
        f"WHERE revision = {tables.literal(revision)}"
    )


def read_rows(session: Session) -> dict[str, Entry]:
    """Every entry; the caller knows the table exists."""
    rows = session.execute(
        f"SELECT revision, checksum, applied_at FROM {session.tables.qualified(JOURNAL_TABLE)}"
    )
    return {str(r[0]): Entry(checksum=str(r[1]), applied_at=r[2]) for r in rows}


def ensure(session: Session) -> None:
    """Create the table when missing."""
    if not session.exists(JOURNAL_TABLE):
        session.execute(create_sql(session.tables))


def modified(
    entries: Mapping[str, Entry], applied: Iterable[str], paths: Mapping[str, Path]
) -> list[str]:
    """Applied revisions whose file no longer has the checksum recorded for it."""
    changed = []
    for revision in applied:
        entry = entries.get(revision)
        path = paths.get(revision)
        if entry is not None and path is not None and file_checksum(path) != entry.checksum:
            changed.append(revision)
    return changed


def prune(session: Session, entries: Mapping[str, Entry], applied: Iterable[str]) -> list[str]:
    """Forget revisions that are no longer applied (rolled back by goose, say);
    `entries`: the table as just read."""
    keep = set(applied)
    stale = sorted(r for r in entries if r not in keep)
    for revision in stale:
        session.execute(forget_sql(session.tables, revision))
    return stale


def adopt(
    session: Session,
    entries: Mapping[str, Entry],
    applied: Iterable[str],
    paths: Mapping[str, Path],
) -> list[str]:
    """Record checksums for applied revisions that have none in `entries` (the
    table as just read: databases migrated by goose, or before this table
    existed). Returns those recorded."""
    recorded = []
    for revision in applied:
        if revision not in entries and revision in paths:
            session.execute(record_sql(session.tables, revision, file_checksum(paths[revision])))
            recorded.append(revision)
    return recorded
