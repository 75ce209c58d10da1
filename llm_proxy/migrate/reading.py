"""Reading without writing: status and version.

Neither takes the lock, creates a file or imports Alembic (unless a Python
revision can only be read by Alembic).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from llm_proxy.config import Settings
from llm_proxy.db import drivers, locks
from llm_proxy.db.locks import LockHolder
from llm_proxy.goose.history import RowProblem
from llm_proxy.store import goose_table, journal
from llm_proxy.store.partial_runs import PartialRun
from llm_proxy.store.tables import Session, Tables

from .project import Project


@dataclass(frozen=True)
class StatusRow:
    """One migration (or one applied version no file defines) in `status`."""

    revision: str
    name: str
    kind: str  # "goose" or "python"
    version: int | None
    state: str  # "applied", "pending", "missing", "partial", "no file"
    applied_at: dt.datetime | None
    modified: bool = False
    partial: PartialRun | None = None  # a NO TRANSACTION run that stopped part-way


@dataclass(frozen=True)
class Status:
    """Every migration, in apply order, and where the database stands."""

    version: int
    rows: list[StatusRow]
    heads: tuple[str, ...]
    applied_heads: tuple[str, ...] = ()
    # goose_db_version rows goose and llm-proxy would read differently, or that show a
    # migration ran twice (goose and llm-proxy migrating at once).
    goose_problems: list[RowProblem] = field(default_factory=list)
    lock: LockHolder | None = None  # who holds the migration lock now, if anyone

    @property
    def pending(self) -> list[StatusRow]:
        """Rows `up` would apply (missing ones only with --allow-missing)."""
        return [row for row in self.rows if row.state in ("pending", "missing")]


def status(settings: Settings) -> Status:
    """Every migration and whether it is applied, pending, missing (older than the
    current version and never applied), stopped part-way, or edited since; and
    goose_db_version rows that are not what goose's runs leave."""
    project = Project.load(settings)
    state = project.read_state()
    lock = locks.current_holder(settings)
    recorded, view, graph = state.recorded, state.view, project.graph
    goose_times = recorded.goose.applied
    missing = set(view.missing)
    rows = []
    for revision in graph.order:
        node = graph.nodes[revision]
        applied = revision in view.applied
        row_state = "applied" if applied else "missing" if revision in missing else "pending"
        partial = recorded.partial_runs.get(revision)
        if partial is not None and (partial.direction == "up") != applied:
            row_state = "partial"
        else:
            partial = None
        entry = recorded.journal.get(revision)
        if node.goose_version is not None and not settings.goose_retired:
            stamp = goose_times.get(node.goose_version)
        else:
            stamp = entry.applied_at if entry else None
        changed = bool(
            applied
            and entry is not None
            and _checksum_or_none(project.paths[revision]) != entry.checksum
        )
        rows.append(
            StatusRow(
                revision=revision,
                name=node.name,
                kind="goose" if node.goose_version is not None else "python",
                version=node.goose_version,
                state=row_state,
                applied_at=_as_datetime(stamp) if applied else None,
                modified=changed,
                partial=partial,
            )
        )
    for version in view.unknown_versions:
        rows.append(
            StatusRow(
                revision=str(version),
                name=f"version {version}",
                kind="goose",
                version=version,
                state="no file",
                applied_at=_as_datetime(goose_times.get(version)),
            )
        )
    return Status(
        version=view.goose_current,
        rows=rows,
        heads=graph.heads,
        applied_heads=graph.heads_of(set(view.applied)),
        goose_problems=[]
        if settings.goose_retired  # rows nobody writes any more: history, not a problem
        else recorded.goose.problems(graph.by_goose_version()),
        lock=lock,
    )


def version(settings: Settings) -> int:
    """goose's current version: the version of the newest applied goose_db_version row
    (once goose is retired, the newest goose version alembic_version has reached)."""
    if settings.dialect.database_missing(settings):
        return 0
    if settings.goose_retired:
        return Project.load(settings).read_state(with_journal=False).version
    with drivers.connection(settings) as connection:
        session = Session(drivers.executor(connection), Tables.of(settings))
        return goose_table.read_state(session).current_version


def _checksum_or_none(path: Path) -> str | None:
    try:
        return journal.file_checksum(path)
    except FileNotFoundError:
        return None


def _as_datetime(value: object) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value)
        except ValueError:
            return None
    return None
