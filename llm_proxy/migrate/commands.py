"""The migrate commands as a Python API: up, down, status, version, ...

Each function takes a Settings and a `report` callable for progress lines, and
raises MigrateError (or another error that llm_proxy.errors knows) with a
one-line message on failure. The CLI is a thin layer over these.

Read-only questions (is anything pending? what is applied?) are answered
through `fastpath` without importing SQLAlchemy or Alembic whenever the
revision files can be read literally; anything that writes goes through
Alembic and alembic/env.py, under the migration lock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llm_proxy import drivers
from llm_proxy.config import Settings
from llm_proxy.errors import MigrateError, reason

from . import fastpath, journal, shim
from .loader import GooseMigration, all_scripts, attach_goose_directory
from .state import DatabaseView, Graph

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

Report = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


# ---------------------------------------------------------------- loading


def _check_directories(settings: Settings) -> None:
    if not settings.migrations_dir.is_dir():
        origin = settings.migrations_dir_source
        where = f" (from {origin})" if origin.startswith("goose_directory") else ""
        raise MigrateError(f"migrations directory not found: {settings.migrations_dir}{where}")
    if not settings.script_location.is_dir():
        raise MigrateError(f"Alembic script directory not found: {settings.script_location}")


def alembic_config(
    settings: Settings, report: Report | None = None, connection: Any = None
) -> Config:
    from alembic.config import Config

    from .environment import CONNECTION_KEY, REPORTER_KEY, SETTINGS_KEY

    config = Config(str(settings.alembic_ini)) if settings.alembic_ini else Config()
    config.set_main_option("script_location", str(settings.script_location))
    config.set_main_option("goose_directory", str(settings.migrations_dir))
    config.set_main_option("sqlalchemy.url", settings.url.replace("%", "%%"))
    config.attributes["llm_proxy_goose_directory"] = str(settings.migrations_dir)
    config.attributes[SETTINGS_KEY] = settings
    if report is not None:
        config.attributes[REPORTER_KEY] = report
    if connection is not None:
        config.attributes[CONNECTION_KEY] = connection
    return config


def load_scripts(settings: Settings, config: Config | None = None) -> ScriptDirectory:
    """The ScriptDirectory with goose revisions attached, fully loaded and checked."""
    from alembic.script import ScriptDirectory

    from . import plugin

    _check_directories(settings)
    plugin.setup()  # works from a source tree where the entry point is not installed
    script = ScriptDirectory.from_config(config or alembic_config(settings))
    if getattr(script, "goose_directory", None) is None:
        attach_goose_directory(script, settings.migrations_dir)
    return script


def revision_graph(script: ScriptDirectory) -> Graph:
    return shim.graph_from_scripts(all_scripts(script))


def graph_for(settings: Settings) -> Graph:
    """The revision graph, the cheap way when possible."""
    _check_directories(settings)
    graph = fastpath.revision_graph(settings)
    return graph if graph is not None else revision_graph(load_scripts(settings))


def read_view(settings: Settings, graph: Graph) -> DatabaseView:
    """The reconciled state, read without writing (a missing SQLite file is empty)."""
    return fastpath.quick_state(settings, graph).view


def _file_paths(settings: Settings, graph: Graph) -> dict[str, Path]:
    paths = {}
    for revision, node in graph.nodes.items():
        base = settings.migrations_dir if node.goose_version is not None else settings.versions_dir
        paths[revision] = base / node.name
    return paths


def _read_journal(settings: Settings) -> dict[str, journal.Entry]:
    if fastpath.database_missing(settings):
        return {}
    with drivers.session(settings) as execute:
        return journal.read(execute, settings.dialect, settings.schema)


def modified_revisions(settings: Settings, graph: Graph, view: DatabaseView) -> list[str]:
    """Applied revisions whose file changed since it was applied (checksum differs)."""
    entries = _read_journal(settings)
    applied = [r for r in graph.order if r in view.applied]
    return journal.modified(entries, applied, _file_paths(settings, graph))


# ---------------------------------------------------------------- targets


def resolve_target(graph: Graph, target: str) -> str | None:
    """A user's VERSION (goose number, as written or not, or a Python revision id)
    to a revision id; None means base (version 0)."""
    text = target.strip()
    if text.isdigit():
        number = int(text)
        if number == 0:
            return None
        by_version = graph.by_goose_version()
        if number in by_version:
            return by_version[number]
    if text in graph.nodes:
        return text
    raise MigrateError(f"no migration with version {target!r}")


def _name(graph: Graph, revision: str) -> str:
    return graph.nodes[revision].name or revision


def _check_rollback(view: DatabaseView) -> None:
    """Rolling back from a version no file defines would skip it and undo older
    ones: refuse, as goose does ("no migration N")."""
    _check_runnable(view)
    if view.goose_current in view.unknown_versions:
        raise MigrateError(
            f"the database is at version {view.goose_current}, which no migration file "
            "defines: roll it back with the llm-proxy (or files) that applied it"
        )


def _check_runnable(view: DatabaseView) -> None:
    if view.unknown_heads:
        raise MigrateError(
            f"the database is at revision {', '.join(view.unknown_heads)}, which no migration "
            "file defines: it was migrated by newer code; deploy that code or restore its files"
        )


def _preparse(script: ScriptDirectory, revisions: list[str], direction: str) -> None:
    """Parse every goose file about to run before running any, so a malformed
    file stops the command before the database changes."""
    for revision in revisions:
        module = script.get_revision(revision).module
        runner = getattr(getattr(module, direction), "__self__", None)
        if isinstance(runner, GooseMigration):
            runner.parsed()


def _check_checksums(
    settings: Settings, graph: Graph, view: DatabaseView, ignore_checksums: bool
) -> None:
    if ignore_checksums:
        return
    changed = modified_revisions(settings, graph, view)
    if changed:
        names = ", ".join(_name(graph, r) for r in changed)
        raise MigrateError(
            f"{names} changed after it was applied (checksum differs): restore the file, "
            "or run `llm-proxy migrate repair` if the edit was deliberate, or pass "
            "--ignore-checksums"
        )


def _warn_partial(settings: Settings, graph: Graph, revisions: list[str], report: Report) -> None:
    if fastpath.database_missing(settings):
        return
    with drivers.session(settings) as execute:
        runs = journal.read_partial(execute, settings.dialect, settings.schema)
    for revision in revisions:
        run = runs.get(revision)
        if run is not None and run.direction == "up":
            report(
                f"warning: {_name(graph, revision)} stopped after {run.done} of {run.total} "
                "statements last time (NO TRANSACTION); it runs again from its first statement"
            )


def _run_alembic(action: Callable[[], None]) -> None:
    from alembic.util import CommandError

    try:
        action()
    except CommandError as exc:
        raise MigrateError(reason(exc)) from None


# ---------------------------------------------------------------- up


@dataclass(frozen=True)
class UpResult:
    applied: list[str]
    version: int
    planned: list[str] = field(default_factory=list)  # names, for --dry-run


def _plan_up(
    graph: Graph, view: DatabaseView, to: str | None, allow_missing: bool
) -> tuple[str | None, list[str]]:
    _check_runnable(view)
    target = resolve_target(graph, to) if to is not None else None
    if to is not None and target is None:
        return None, []
    if view.missing and not allow_missing:
        names = ", ".join(_name(graph, r) for r in view.missing)
        raise MigrateError(
            f"found {len(view.missing)} missing migrations before current version "
            f"{view.goose_current}: {names} (use --allow-missing to apply them)"
        )
    wanted = graph.ancestors([target]) if target else set(graph.nodes)
    return target, [r for r in view.pending if r in wanted]


def up(
    settings: Settings,
    *,
    to: str | None = None,
    allow_missing: bool = False,
    ignore_checksums: bool = False,
    dry_run: bool = False,
    report: Report = _quiet,
) -> UpResult:
    _check_directories(settings)
    options = {
        "to": to,
        "allow_missing": allow_missing,
        "ignore_checksums": ignore_checksums,
        "dry_run": dry_run,
        "report": report,
    }
    graph = fastpath.revision_graph(settings)
    if graph is not None and to is None:
        quick = fastpath.quick_state(settings, graph)
        if quick.nothing_to_do:  # the common server start: no Alembic import at all
            return UpResult(applied=[], version=quick.view.goose_current)
        if not dry_run:
            from .lock import held_for_migration

            # Wait for the lock before importing Alembic: of many instances
            # starting together, the ones that waited re-check and stop here.
            with held_for_migration(settings, on_wait=report) as session:
                quick = fastpath.quick_state(settings, graph)
                if quick.nothing_to_do:
                    return UpResult(applied=[], version=quick.view.goose_current)
                return _up_through_alembic(settings, prelocked={"session": session}, **options)
    return _up_through_alembic(settings, prelocked=None, **options)


def _up_through_alembic(
    settings: Settings,
    *,
    to: str | None,
    allow_missing: bool,
    ignore_checksums: bool,
    dry_run: bool,
    report: Report,
    prelocked: dict[str, Any] | None,
) -> UpResult:
    script = load_scripts(settings)
    graph = revision_graph(script)
    view = read_view(settings, graph)
    target, pending = _plan_up(graph, view, to, allow_missing)
    if dry_run:
        return UpResult([], view.goose_current, planned=[_name(graph, r) for r in pending])
    if not pending:
        return UpResult(applied=[], version=view.goose_current)
    _check_checksums(settings, graph, view, ignore_checksums)
    _preparse(script, pending, "upgrade")
    _warn_partial(settings, graph, pending, report)

    from alembic import command

    from .environment import PRELOCKED_KEY, RAN_KEY

    config = alembic_config(settings, report)
    ran: list[str] = []  # filled by env.py: what this process applied, not a waiter's guess
    config.attributes[RAN_KEY] = ran
    if prelocked is not None:
        config.attributes[PRELOCKED_KEY] = prelocked
    _run_alembic(lambda: command.upgrade(config, target or "heads"))
    after = read_view(settings, graph)
    return UpResult(applied=ran, version=after.goose_current)


# ---------------------------------------------------------------- down


def _down_target(graph: Graph, view: DatabaseView) -> tuple[str, str]:
    """(revision to roll back, alembic destination) for a one-step down."""
    heads = graph.heads_of(set(view.applied))
    if not heads:
        raise MigrateError("no migrations to roll back: the database is at version 0")
    if len(heads) > 1:
        raise MigrateError(
            f"several heads are applied ({', '.join(heads)}); use down-to VERSION to choose"
        )
    node = graph.nodes[heads[0]]
    if len(node.parents) > 1:
        raise MigrateError(f"{node.name} merges several revisions; use down-to VERSION")
    return heads[0], node.parents[0] if node.parents else "base"


def down(settings: Settings, *, dry_run: bool = False, report: Report = _quiet) -> int:
    """Roll back the most recent revision; returns the version now current."""
    script = load_scripts(settings)
    graph = revision_graph(script)
    view = read_view(settings, graph)
    _check_rollback(view)
    revision, destination = _down_target(graph, view)
    if dry_run:
        report(f"would roll back {_name(graph, revision)}")
        return view.goose_current
    _preparse(script, [revision], "downgrade")

    from alembic import command

    config = alembic_config(settings, report)
    _run_alembic(lambda: command.downgrade(config, destination))
    return read_view(settings, graph).goose_current


def down_to(
    settings: Settings, version: str, *, dry_run: bool = False, report: Report = _quiet
) -> int:
    script = load_scripts(settings)
    graph = revision_graph(script)
    target = resolve_target(graph, version)
    view = read_view(settings, graph)
    _check_rollback(view)
    keep = graph.ancestors([target]) if target else set()
    undo = [r for r in reversed(graph.order) if r in view.applied and r not in keep]
    if dry_run:
        for revision in undo:
            report(f"would roll back {_name(graph, revision)}")
        return view.goose_current
    if not undo:
        return view.goose_current
    _preparse(script, undo, "downgrade")

    from alembic import command

    config = alembic_config(settings, report)
    _run_alembic(lambda: command.downgrade(config, target or "base"))
    return read_view(settings, graph).goose_current


def redo(settings: Settings, *, report: Report = _quiet) -> int:
    graph = graph_for(settings)
    view = read_view(settings, graph)
    _check_rollback(view)
    revision, _ = _down_target(graph, view)
    down(settings, report=report)
    return up(settings, to=revision, report=report).version


def reset(settings: Settings, *, report: Report = _quiet) -> int:
    return down_to(settings, "0", report=report)


# ---------------------------------------------------------------- offline SQL


def sql_script(
    settings: Settings, *, direction: str, start: str | None = None, end: str | None = None
) -> str:
    """The SQL that `up`/`down` would run, version-table writes included, for a
    DBA to review and run by hand. Nothing connects to the database: `start` says
    where the database is (default: empty for up; head for down)."""
    import io

    from alembic import command

    script = load_scripts(settings)
    graph = revision_graph(script)
    first = resolve_target(graph, start) if start is not None else None
    buffer = io.StringIO()
    config = alembic_config(settings)
    config.output_buffer = buffer
    if direction == "up":
        destination = resolve_target(graph, end) if end else None
        revisions = f"{first or 'base'}:{destination or 'heads'}"
        _preparse(script, list(graph.nodes), "upgrade")
        _run_alembic(lambda: command.upgrade(config, revisions, sql=True))
    else:
        origin = first or _single_head(graph)
        destination = resolve_target(graph, end) if end is not None else None
        if end is None:
            node = graph.nodes[origin]
            destination = node.parents[0] if node.parents else None
        revisions = f"{origin}:{destination or 'base'}"
        _preparse(script, list(graph.nodes), "downgrade")
        _run_alembic(lambda: command.downgrade(config, revisions, sql=True))
    return buffer.getvalue()


def _single_head(graph: Graph) -> str:
    heads = graph.heads
    if len(heads) != 1:
        raise MigrateError(f"several heads ({', '.join(heads)}): name the start with --from")
    return heads[0]


# ---------------------------------------------------------------- repair


def repair(settings: Settings, *, report: Report = _quiet) -> list[str]:
    """Re-record checksums of applied files after a deliberate edit."""
    from llm_proxy.migrate.lock import migration_lock

    graph = graph_for(settings)
    if fastpath.database_missing(settings):
        raise drivers.DatabaseUnavailable(f"database file does not exist: {settings.sqlite_path}")
    with migration_lock(settings, on_wait=report):
        view = read_view(settings, graph)
        changed = modified_revisions(settings, graph, view)
        paths = _file_paths(settings, graph)
        with drivers.session(settings) as execute:
            journal.ensure(execute, settings.dialect, settings.schema)
            for revision in changed:
                checksum = journal.file_checksum(paths[revision])
                execute(journal.update_sql(settings.dialect, revision, checksum, settings.schema))
                report(f"re-recorded checksum of {_name(graph, revision)}")
            recorded = journal.adopt(
                execute, settings.dialect, sorted(view.applied), paths, settings.schema
            )
            for revision in recorded:
                report(f"recorded checksum of {_name(graph, revision)}")
    return changed


# ---------------------------------------------------------------- status


@dataclass(frozen=True)
class StatusRow:
    revision: str
    name: str
    kind: str  # "goose" or "python"
    version: int | None
    state: str  # "applied", "pending", "missing", "partial", "no file"
    applied_at: dt.datetime | None
    modified: bool = False
    partial: journal.PartialRun | None = None  # a NO TRANSACTION run that stopped part-way


@dataclass(frozen=True)
class Status:
    version: int
    rows: list[StatusRow]
    heads: tuple[str, ...]
    applied_heads: tuple[str, ...] = ()

    @property
    def pending(self) -> list[StatusRow]:
        return [row for row in self.rows if row.state in ("pending", "missing")]


def _as_datetime(value: object) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def status(settings: Settings) -> Status:
    graph = graph_for(settings)
    goose_state, entries, partial_runs, view = _status_reads(settings, graph)
    paths = _file_paths(settings, graph)
    missing = set(view.missing)
    rows = []
    for revision in graph.order:
        node = graph.nodes[revision]
        applied = revision in view.applied
        state = "applied" if applied else "missing" if revision in missing else "pending"
        partial = partial_runs.get(revision)
        if partial is not None and (partial.direction == "up") != applied:
            state = "partial"
        else:
            partial = None
        if node.goose_version is not None:
            stamp = goose_state.get(node.goose_version)
        else:
            entry = entries.get(revision)
            stamp = entry.applied_at if entry else None
        entry = entries.get(revision)
        changed = bool(
            applied and entry is not None and _checksum_or_none(paths[revision]) != entry.checksum
        )
        rows.append(
            StatusRow(
                revision=revision,
                name=node.name,
                kind="goose" if node.goose_version is not None else "python",
                version=node.goose_version,
                state=state,
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
                applied_at=_as_datetime(goose_state.get(version)),
            )
        )
    return Status(
        version=view.goose_current,
        rows=rows,
        heads=graph.heads,
        applied_heads=graph.heads_of(set(view.applied)),
    )


def _checksum_or_none(path: Path) -> str | None:
    try:
        return journal.file_checksum(path)
    except FileNotFoundError:
        return None


def _status_reads(
    settings: Settings, graph: Graph
) -> tuple[
    dict[int, object], dict[str, journal.Entry], dict[str, journal.PartialRun], DatabaseView
]:
    """goose timestamps, our journal, partial runs and the reconciled view, over one
    connection."""
    if fastpath.database_missing(settings):
        return {}, {}, {}, shim.reconcile(graph, (), 0, ())
    with drivers.session(settings) as execute:
        goose_state = shim.read_goose_state(execute, settings.dialect, settings.schema)
        heads = shim.read_alembic_heads(execute, settings.dialect, settings.schema)
        entries = journal.read(execute, settings.dialect, settings.schema)
        partial_runs = journal.read_partial(execute, settings.dialect, settings.schema)
    view = shim.reconcile(graph, goose_state.applied.keys(), goose_state.current_version, heads)
    return dict(goose_state.applied), entries, partial_runs, view


def version(settings: Settings) -> int:
    if fastpath.database_missing(settings):
        return 0
    with drivers.session(settings) as execute:
        return shim.read_goose_state(execute, settings.dialect, settings.schema).current_version


def _goose_time(stamp: dt.datetime) -> str:
    return f"{stamp:%a %b} {stamp.day:2d} {stamp:%H:%M:%S %Y}"


def format_status(report: Status) -> list[str]:
    """goose's status layout, with Python revisions and states goose hides."""
    lines = ["    Applied At                  Migration", "    " + "=" * 39]
    for row in report.rows:
        if row.state in ("applied", "no file"):
            when = _goose_time(row.applied_at) if row.applied_at else "Applied"
        elif row.state == "missing":
            when = "Pending (missing)"
        elif row.partial is not None:  # stopped part-way (NO TRANSACTION): not applied
            label = "Pending" if row.partial.direction == "up" else "Applied"
            when = f"{label} (partial {row.partial.done}/{row.partial.total})"
        else:
            when = "Pending"
        notes = [
            note
            for flag, note in ((row.state == "no file", "no file"), (row.modified, "modified"))
            if flag
        ]
        suffix = f" ({', '.join(notes)})" if notes else ""
        lines.append(f"    {when:<24} -- {row.name}{suffix}")
    if len(report.heads) > 1:  # a true branch: `up` applies every head
        lines.append(f"note: {len(report.heads)} heads: {', '.join(report.heads)}")
    return lines


def status_json(report: Status, settings: Settings) -> dict[str, Any]:
    """The stable machine-readable status (documented in docs/status-json.md)."""
    return {
        "format": 1,
        "dialect": settings.dialect,
        "database": drivers.describe_server(settings),
        "current_version": report.version,
        "pending": len(report.pending),
        "heads": list(report.heads),
        "applied_heads": list(report.applied_heads),
        "migrations": [
            {
                "revision": row.revision,
                "name": row.name,
                "kind": row.kind,
                "version": row.version,
                "state": row.state,
                "applied_at": row.applied_at.isoformat() if row.applied_at else None,
                "modified": row.modified,
                "partial": (
                    {
                        "direction": row.partial.direction,
                        "statements_done": row.partial.done,
                        "statements_total": row.partial.total,
                    }
                    if row.partial
                    else None
                ),
            }
            for row in report.rows
        ],
    }
