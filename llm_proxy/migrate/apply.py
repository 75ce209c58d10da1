"""Applying and rolling back: up, down, down-to, redo, reset.

Each command refuses what it cannot do before touching the database, then
takes the migration lock, reads the state again (another instance may have
migrated meanwhile), and runs Alembic on the locked connection: `up` through
Alembic's upgrade, the rollbacks revision by revision in the order goose
would take (revisions/plan.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from llm_proxy.config import Settings
from llm_proxy.errors import MigrateError, NoNextVersion
from llm_proxy.revisions import plan
from llm_proxy.revisions.reconcile import DatabaseView

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


def up_by_one(
    settings: Settings,
    *,
    allow_missing: bool = False,
    ignore_checksums: bool = False,
    report: Report = _quiet,
) -> UpResult:
    """Apply the one migration `up` would apply first, as goose's up-by-one; with
    nothing pending raises NoNextVersion (goose exits 1 then as well)."""
    project = Project.load(settings)
    state = project.read_state(with_journal=False)
    _, pending = plan.plan_up(project.graph, state.view, None, allow_missing)
    if not pending:
        raise NoNextVersion(state.version)
    return apply_up(
        project,
        to=pending[0],
        allow_missing=allow_missing,
        ignore_checksums=ignore_checksums,
        report=report,
        state=state,
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


def _refuse_modified(project: Project, state: DatabaseState, besides: str | None = None) -> None:
    changed = [r for r in project.modified(state) if r != besides]
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
    """Roll back goose's current version (the most recently applied one, as goose
    reads goose_db_version), or the Python revisions built on it first; returns
    the version now current."""
    project = Project.load(settings)
    state = project.read_state()
    revision = plan.plan_down(project.graph, state.view)
    if dry_run:
        report(f"would roll back {project.name_of(revision)}")
        return state.version
    project.parse([revision], "down")
    with project.locked(report) as connection:
        revision = plan.plan_down(project.graph, project.read_state(connection).view)
        project.parse([revision], "down")
        _run_steps(project, connection, [(revision, False)], report)
        return project.read_state(connection, with_journal=False).version


def _run_steps(
    project: Project, connection: Any, steps: list[tuple[str, bool]], report: Report
) -> list[str]:
    """Under the lock: run exactly these (revision, is_upgrade) steps, in order."""
    from llm_proxy.bridge import commands as alembic_commands

    run = project.run(report, connection)
    alembic_commands.run_steps(run, steps)
    project.keep(run)
    return run.ran


def down_to(
    settings: Settings, version: str, *, dry_run: bool = False, report: Report = _quiet
) -> int:
    """Roll back, as goose's down-to, while the current version is above `version`
    (a goose version, with or without a file of its own, or a revision id; "0"
    rolls back everything); returns the version now current."""
    project = Project.load(settings)
    target = plan.resolve_target(project.graph, version)
    return _roll_back(
        project, lambda view: plan.plan_down_to(project.graph, view, target), dry_run, report
    )


def reset(settings: Settings, *, report: Report = _quiet) -> int:
    """Roll back every applied migration, highest version first, as goose's reset;
    returns the version now current (0). Like goose, refuses a database that has
    no goose_db_version table."""
    project = Project.load(settings)
    state = project.read_state()
    if not state.recorded.goose.exists:
        raise MigrateError(
            f"{project.tables.qualified(project.tables.goose_table)} does not exist: nothing was "
            "ever migrated here (goose: failed to get status of migrations)"
        )
    return _roll_back(project, partial(plan.plan_reset, project.graph), False, report, state)


def _roll_back(
    project: Project,
    planned: Callable[[DatabaseView], list[str]],
    dry_run: bool,
    report: Report,
    state: DatabaseState | None = None,
) -> int:
    """Plan, check the files, lock, plan again on the locked state and roll back."""
    state = state or project.read_state()
    undo = planned(state.view)
    if dry_run:
        for revision in undo:
            report(f"would roll back {project.name_of(revision)}")
        return state.version
    if not undo:
        return state.version
    project.parse(undo, "down")
    with project.locked(report) as connection:
        undo = planned(project.read_state(connection).view)
        if undo:
            project.parse(undo, "down")
            _run_steps(project, connection, [(r, False) for r in undo], report)
        return project.read_state(connection, with_journal=False).version


def redo(settings: Settings, *, report: Report = _quiet) -> int:
    """Roll back goose's current version (see `down`) and apply it again, under
    one lock; returns the version now current."""
    project = Project.load(settings)
    revision = plan.plan_down(project.graph, project.read_state().view)
    project.parse([revision], "down")  # refuse before locking
    project.parse([revision], "up")
    with project.locked(report) as connection:
        state = project.read_state(connection)
        revision = plan.plan_down(project.graph, state.view)
        _refuse_modified(project, state, besides=revision)
        project.parse([revision], "down")
        project.parse([revision], "up")
        _run_steps(project, connection, [(revision, False), (revision, True)], report)
        return project.read_state(connection, with_journal=False).version
