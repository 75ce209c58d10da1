"""llm_proxy_migrations: our own record of what ran, beside the version tables.

goose only ever reads goose_db_version and Alembic only alembic_version, so a
third table is invisible to both. It holds, per applied revision (goose or
Python), the SHA-256 of the file as it was applied and when it was applied,
which lets `status` flag files edited after the fact (goose cannot) and show
an "Applied At" for Python revisions (Alembic keeps no time).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TABLE = "llm_proxy_migrations"

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


def _qualified(dialect: str, schema: str | None) -> str:
    return f'"{schema}".{TABLE}' if schema and dialect == "postgresql" else TABLE


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def file_checksum(path: Path | str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
