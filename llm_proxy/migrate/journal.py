"""llm_proxy_migrations: our own record of what ran, beside the version tables.

goose only ever reads goose_db_version and Alembic only alembic_version, so a
third table is invisible to both. It holds, per applied revision (goose or
Python), the SHA-256 of the file as it was applied and when it was applied,
which lets `status` flag files edited after the fact (goose cannot) and show
an "Applied At" for Python revisions (Alembic keeps no time).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llm_proxy.goose.version_table import qualified

TABLE = "llm_proxy_migrations"
# A NO TRANSACTION migration commits statement by statement and goose records it
# only at the end, so one stopped part-way would look merely pending. While it
# runs it has a row here: committed before its first statement, advanced after
# each, deleted in the transaction that writes goose's row.
PARTIAL_TABLE = "llm_proxy_partial_runs"

# Version tables (goose's, Alembic's) and ours: never application schema.
_VERSION_TABLES = frozenset({"goose_db_version", "alembic_version"})
OWN_TABLE_PREFIX = "llm_proxy_"


def is_bookkeeping_table(name: str) -> bool:
    """True for goose's and Alembic's version tables and any table of our own."""
    lowered = name.lower()
    return lowered in _VERSION_TABLES or lowered.startswith(OWN_TABLE_PREFIX)


Execute = Callable[[str], Sequence[Sequence[Any]]]

_CREATE = {
    "sqlite": (
        "CREATE TABLE {table} (revision VARCHAR(64) NOT NULL PRIMARY KEY, "
        "checksum CHAR(64) NOT NULL, applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)"
    ),
    "postgresql": (
        "CREATE TABLE {table} (revision VARCHAR(64) NOT NULL PRIMARY KEY, "
        "checksum CHAR(64) NOT NULL, applied_at TIMESTAMP NOT NULL DEFAULT now())"
    ),
    "mysql": (
        "CREATE TABLE {table} (revision VARCHAR(64) NOT NULL PRIMARY KEY, "
        "checksum CHAR(64) NOT NULL, applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)"
    ),
}


def _qualified(dialect: str, schema: str | None, table: str = TABLE) -> str:
    return qualified(dialect, schema, table)


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def file_checksum(path: Path | str) -> str:
    """SHA-256 of the file's bytes. `status` hashes every applied file, so small
    files (nearly all) are read with one system call, large ones in blocks."""
    import hashlib

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


_CHECKSUM_BLOCK = 1 << 20


def create_sql(dialect: str, schema: str | None = None) -> str:
    return _CREATE[dialect].format(table=_qualified(dialect, schema))


def record_sql(dialect: str, revision: str, checksum: str, schema: str | None = None) -> str:
    table = _qualified(dialect, schema)
    return (
        f"INSERT INTO {table} (revision, checksum) VALUES ({_quote(revision)}, {_quote(checksum)})"
    )


def forget_sql(dialect: str, revision: str, schema: str | None = None) -> str:
    return f"DELETE FROM {_qualified(dialect, schema)} WHERE revision = {_quote(revision)}"


def update_sql(dialect: str, revision: str, checksum: str, schema: str | None = None) -> str:
    return (
        f"UPDATE {_qualified(dialect, schema)} SET checksum = {_quote(checksum)} "
        f"WHERE revision = {_quote(revision)}"
    )


@dataclass(frozen=True)
class Entry:
    checksum: str
    applied_at: object


def read(execute: Execute, dialect: str, schema: str | None = None) -> dict[str, Entry]:
    from .shim import table_exists

    if not table_exists(execute, dialect, TABLE, schema):
        return {}
    rows = execute(f"SELECT revision, checksum, applied_at FROM {_qualified(dialect, schema)}")
    return {str(r[0]): Entry(checksum=str(r[1]), applied_at=r[2]) for r in rows}


def ensure(execute: Execute, dialect: str, schema: str | None = None) -> None:
    from .shim import table_exists

    if not table_exists(execute, dialect, TABLE, schema):
        execute(create_sql(dialect, schema))


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


def prune(
    execute: Execute, dialect: str, applied: Iterable[str], schema: str | None = None
) -> list[str]:
    """Forget revisions that are no longer applied (rolled back by goose, say)."""
    keep = set(applied)
    stale = sorted(r for r in read(execute, dialect, schema) if r not in keep)
    for revision in stale:
        execute(forget_sql(dialect, revision, schema))
    return stale


def adopt(
    execute: Execute,
    dialect: str,
    applied: Iterable[str],
    paths: Mapping[str, Path],
    schema: str | None = None,
) -> list[str]:
    """Record checksums for applied revisions that have none yet (databases
    migrated by goose, or before this table existed). Returns those recorded."""
    entries = read(execute, dialect, schema)
    recorded = []
    for revision in applied:
        if revision not in entries and revision in paths:
            execute(record_sql(dialect, revision, file_checksum(paths[revision]), schema))
            recorded.append(revision)
    return recorded


# ---------------------------------------------------------------- partial runs

_PARTIAL_CREATE = (
    "CREATE TABLE {table} (revision VARCHAR(64) NOT NULL PRIMARY KEY, "
    "direction VARCHAR(4) NOT NULL, statements_done INTEGER NOT NULL, "
    "statements_total INTEGER NOT NULL)"
)


@dataclass(frozen=True)
class PartialRun:
    direction: str  # "up" or "down"
    done: int
    total: int


def ensure_partial(execute: Execute, dialect: str, schema: str | None = None) -> None:
    from .shim import table_exists

    if not table_exists(execute, dialect, PARTIAL_TABLE, schema):
        execute(_PARTIAL_CREATE.format(table=_qualified(dialect, schema, PARTIAL_TABLE)))


def partial_start_sql(
    dialect: str, revision: str, direction: str, total: int, schema: str | None = None
) -> list[str]:
    table = _qualified(dialect, schema, PARTIAL_TABLE)
    return [
        f"DELETE FROM {table} WHERE revision = {_quote(revision)}",
        f"INSERT INTO {table} (revision, direction, statements_done, statements_total) "
        f"VALUES ({_quote(revision)}, {_quote(direction)}, 0, {int(total)})",
    ]


def partial_progress_sql(dialect: str, revision: str, done: int, schema: str | None = None) -> str:
    table = _qualified(dialect, schema, PARTIAL_TABLE)
    return f"UPDATE {table} SET statements_done = {int(done)} WHERE revision = {_quote(revision)}"


def partial_clear_sql(dialect: str, revision: str, schema: str | None = None) -> str:
    table = _qualified(dialect, schema, PARTIAL_TABLE)
    return f"DELETE FROM {table} WHERE revision = {_quote(revision)}"


def read_partial(
    execute: Execute, dialect: str, schema: str | None = None
) -> dict[str, PartialRun]:
    from .shim import table_exists

    if not table_exists(execute, dialect, PARTIAL_TABLE, schema):
        return {}
    table = _qualified(dialect, schema, PARTIAL_TABLE)
    rows = execute(f"SELECT revision, direction, statements_done, statements_total FROM {table}")
    return {str(r[0]): PartialRun(str(r[1]), int(r[2]), int(r[3])) for r in rows}


def prune_partial(
    execute: Execute, dialect: str, applied: Iterable[str], schema: str | None = None
) -> None:
    """Drop markers the version tables have overtaken (goose finished the job)."""
    done = set(applied)
    for revision, run in read_partial(execute, dialect, schema).items():
        if (run.direction == "up") == (revision in done):
            execute(partial_clear_sql(dialect, revision, schema))
