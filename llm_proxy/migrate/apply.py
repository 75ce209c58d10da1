"""Applying and rolling back: up, down, down-to, redo, reset.

Each command refuses what it cannot do before touching the database, then
takes the migration lock, reads the state again (another instance may have
migrated meanwhile), and runs Alembic on the locked connection.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from llm_proxy.config import Settings
from llm_proxy.errors import MigrateError
from llm_proxy.revisions import plan

from .project import DatabaseState, Project

Report = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class UpResult:
    """What `up` did."""

    applied: list[str]  # revision ids this process applied, in order
    version: int  # goose's current version afterwards
    planned: list[str] = field(default_factory=list)  # file names a --dry-run would apply


def up(
    settings: Settings,
    *,
    to: str | None = None,
    allow_missing: bool = False,
    ignore_checksums: bool = False,
    dry_run: bool = False,
    report: Report = _quiet,
) -> UpResult:
    """Apply pending migrations: all of them, or up to and including `to` (a goose
    version or a revision id). Refuses missing migrations (older than the current
    version, never applied) unless `allow_missing`, and files edited after they
    were applied unless `ignore_checksums`. `dry_run` only lists what would run."""
    return apply_up(
        Project.load(settings),
        to=to,
        allow_missing=allow_missing,
        ignore_checksums=ignore_checksums,
        dry_run=dry_run,
        report=report,
    )


def apply_up(
    project: Project,
    *,
    to: str | None = None,
    allow_missing: bool = False,
    ignore_checksums: bool = False,
    dry_run: bool = False,
    report: Report = _quiet,
    state: DatabaseState | None = None,
) -> UpResult:
    """`up` for a loaded project; `state`: the database as just read, if it was."""
    state = state or project.read_state(with_journal=False)
    if to is None and state.nothing_to_do:  # the common server start: no Alembic import
        return UpResult([], state.version)
    _, pending = plan.plan_up(project.graph, state.view, to, allow_missing)
    if dry_run:
        return UpResult([], state.version, planned=[project.name_of(r) for r in pending])
    if not pending and not state.respellings:
        return UpResult([], state.version)
    project.parse(pending, "up")  # a broken file stops us before anything is created
    # Wait for the lock before importing Alembic: of many instances starting
    # together, the ones that waited re-check and stop here.
    with project.locked(report) as connection:
        state = project.rewrite_spellings(connection, project.read_state(connection))
        if to is None and state.nothing_to_do:
            return UpResult([], state.version)
        ran = _upgrade(project, connection, state, to, allow_missing, ignore_checksums, report)
        return UpResult(ran, project.read_state(connection, with_journal=False).version)


def _upgrade(
    project: Project,
    connection: Any,
    state: DatabaseState,
    to: str | None,
    allow_missing: bool,
    ignore_checksums: bool,
    report: Report,
) -> list[str]:
    """Under the lock: plan again, check, and apply; the revisions this process ran."""
    target, pending = plan.plan_up(project.graph, state.view, to, allow_missing)
    if not pending:
        return []
    if not ignore_checksums:
        _refuse_modified(project, state)
    project.parse(pending, "up")
    _warn_partial(project, state, pending, report)
    from llm_proxy.bridge import commands as alembic_commands  # only when there is work

    run = project.run(report, connection, allow_missing=allow_missing)
    alembic_commands.upgrade(run, target or "heads")
    project.keep(run)
    return run.ran


def _refuse_modified(project: Project, state: DatabaseState) -> None:
    changed = project.modified(state)
    if changed:
        names = ", ".join(project.name_of(r) for r in changed)
        raise MigrateError(
            f"{names} changed after it was applied (checksum differs): restore the file, "
            "or run `llm-proxy migrate repair` if the edit was deliberate, or pass "
            "--ignore-checksums"
        )


def _warn_partial(
    project: Project, state: DatabaseState, revisions: list[str], report: Report
) -> None:
    for revision in revisions:
        run = state.recorded.partial_runs.get(revision)
        if run is not None and run.direction == "up":
            report(
                f"warning: {project.name_of(revision)} stopped after {run.done} of {run.total} "
                "statements last time (NO TRANSACTION); it runs again from its first statement"
            )


def down(settings: Settings, *, dry_run: bool = False, report: Report = _quiet) -> int:
    """Roll back the most recent revision; returns the version now current."""
    project = Project.load(settings)
    state = project.read_state()
    revision, _ = plan.plan_down(project.graph, state.view)
    if dry_run:
        report(f"would roll back {project.name_of(revision)}")
        return state.version
    project.parse([revision], "down")
    with project.locked(report) as connection:
        _downgrade_one(project, connection, project.read_state(connection), report)
        return project.read_state(connection, with_journal=False).version


def _downgrade_one(project: Project, connection: Any, state: DatabaseState, report: Report) -> str:
    """Under the lock: roll back the most recent revision; returns it."""
    revision, destination = plan.plan_down(project.graph, state.view)
    project.parse([revision], "down")
    _downgrade(project, connection, destination, report)
    return revision


def _downgrade(project: Project, connection: Any, destination: str, report: Report) -> None:
    from llm_proxy.bridge import commands as alembic_commands

    run = project.run(report, connection)
    alembic_commands.downgrade(run, destination)
    project.keep(run)


def down_to(
    settings: Settings, version: str, *, dry_run: bool = False, report: Report = _quiet
) -> int:
    """Roll back every revision above `version` (a goose version or revision id;
    "0" rolls back everything); returns the version now current."""
    project = Project.load(settings)
    target = plan.resolve_target(project.graph, version)
    state = project.read_state()
    undo = plan.plan_down_to(project.graph, state.view, target)
    if dry_run:
        for revision in undo:
            report(f"would roll back {project.name_of(revision)}")
        return state.version
    if not undo:
        return state.version
    project.parse(undo, "down")
    with project.locked(report) as connection:
        state = project.read_state(connection)
        undo = plan.plan_down_to(project.graph, state.view, target)
        if undo:
            project.parse(undo, "down")
            _downgrade(project, connection, target or "base", report)
        return project.read_state(connection, with_journal=False).version


def redo(settings: Settings, *, report: Report = _quiet) -> int:
    """Roll back the most recent revision and apply it again, under one lock;
    returns the version now current."""
    project = Project.load(settings)
    revision, _ = plan.plan_down(project.graph, project.read_state().view)
    project.parse([revision], "down")  # refuse before locking
    project.parse([revision], "up")
    with project.locked(report) as connection:
        revision = _downgrade_one(project, connection, project.read_state(connection), report)
        state = project.read_state(connection)
        _upgrade(project, connection, state, revision, False, False, report)
        return project.read_state(connection, with_journal=False).version


def reset(settings: Settings, *, report: Report = _quiet) -> int:
    """Roll back every revision; returns the version now current (0)."""
    return down_to(settings, "0", report=report)
