"""The migrate commands as a Python API: up, down, status, version, ...

Each function takes a Settings and a `report` callable for progress lines, and
raises a MigrateError (or one of the errors listed in `USER_ERRORS`) with a
one-line message on failure. The CLI is a thin layer over these.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llm_proxy import drivers
from llm_proxy.config import Settings
from llm_proxy.goose import files as goose_files

from . import shim
from .environment import CONNECTION_KEY, REPORTER_KEY, SETTINGS_KEY
from .loader import GooseMigration, all_scripts, attach_goose_directory
from .state import DatabaseView, Graph

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

Report = Callable[[str], None]


class MigrateError(RuntimeError):
    """A command that cannot proceed; the message is one line for the user."""


def _quiet(_: str) -> None:
    pass


# ---------------------------------------------------------------- loading


def alembic_config(
    settings: Settings, report: Report | None = None, connection: Any = None
) -> Config:
    from alembic.config import Config

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

    if not settings.migrations_dir.is_dir():
        origin = settings.migrations_dir_source
        where = f" (from {origin})" if origin.startswith("goose_directory") else ""
        raise MigrateError(f"migrations directory not found: {settings.migrations_dir}{where}")
    if not settings.script_location.is_dir():
        raise MigrateError(f"Alembic script directory not found: {settings.script_location}")
    plugin.setup()  # works from a source tree where the entry point is not installed
    script = ScriptDirectory.from_config(config or alembic_config(settings))
    if getattr(script, "goose_directory", None) is None:
        attach_goose_directory(script, settings.migrations_dir)
    return script


def revision_graph(script: ScriptDirectory) -> Graph:
    return shim.graph_from_scripts(all_scripts(script))


def read_view(settings: Settings, graph: Graph) -> DatabaseView:
    """The reconciled state, read without writing (a missing SQLite file is empty)."""
    if settings.dialect == "sqlite" and (
        settings.sqlite_path is None or not settings.sqlite_path.exists()
    ):
        return shim.reconcile(graph, (), 0, ())
    connection = drivers.connect(settings)
    try:
        view, _ = shim.database_view(
            lambda sql: drivers.rows(connection, sql), settings.dialect, graph, settings.schema
        )
        return view
    finally:
        connection.close()


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


def _check_runnable(view: DatabaseView, graph: Graph) -> None:
    if view.unknown_heads:
        raise MigrateError(
            f"the database is at revision {', '.join(view.unknown_heads)}, which no migration "
            "file defines: it was migrated by newer code; deploy that code or restore its files"
        )


def _preparse(graph: Graph, script: ScriptDirectory, revisions: list[str]) -> None:
    """Parse every file about to run before running any, so a malformed file
    stops the command before the database changes."""
    for revision in revisions:
        module = script.get_revision(revision).module
        runner = getattr(module.upgrade, "__self__", None)
        if isinstance(runner, GooseMigration):
            runner.parsed()


# ---------------------------------------------------------------- commands


@dataclass(frozen=True)
class UpResult:
    applied: list[str]
    version: int


def up(
    settings: Settings,
    *,
    to: str | None = None,
    allow_missing: bool = False,
    report: Report = _quiet,
) -> UpResult:
    from alembic import command

    script = load_scripts(settings)
    graph = revision_graph(script)
    view = read_view(settings, graph)
    _check_runnable(view, graph)
    target = resolve_target(graph, to) if to is not None else None
    if to is not None and target is None:
        return UpResult(applied=[], version=view.goose_current)
    if view.missing and not allow_missing:
        names = ", ".join(_name(graph, r) for r in view.missing)
        raise MigrateError(
            f"found {len(view.missing)} missing migrations before current version "
            f"{view.goose_current}: {names} (use --allow-missing to apply them)"
        )
    wanted = graph.ancestors([target]) if target else set(graph.nodes)
    pending = [r for r in view.pending if r in wanted]
    if not pending:
        return UpResult(applied=[], version=view.goose_current)
    _preparse(graph, script, pending)
    config = alembic_config(settings, report)
    _run_alembic(lambda: command.upgrade(config, target or "heads"))
    after = read_view(settings, graph)
    return UpResult(applied=[r for r in pending if r in after.applied], version=after.goose_current)


def down(settings: Settings, *, report: Report = _quiet) -> int:
    """Roll back the most recent revision; returns the version now current."""
    from alembic import command

    script = load_scripts(settings)
    graph = revision_graph(script)
    view = read_view(settings, graph)
    _check_runnable(view, graph)
    heads = graph.heads_of(set(view.applied))
    if not heads:
        raise MigrateError("no migrations to roll back: the database is at version 0")
    if len(heads) > 1:
        raise MigrateError(
            f"several heads are applied ({', '.join(heads)}); use down-to VERSION to choose"
        )
    node = graph.nodes[heads[0]]
    parents = node.parents
    target = parents[0] if len(parents) == 1 else ("base" if not parents else None)
    if target is None:
        raise MigrateError(f"{node.name} merges several revisions; use down-to VERSION")
    _preparse_down(script, [heads[0]])
    config = alembic_config(settings, report)
    _run_alembic(lambda: command.downgrade(config, target))
    return read_view(settings, graph).goose_current


def down_to(settings: Settings, version: str, *, report: Report = _quiet) -> int:
    from alembic import command

    script = load_scripts(settings)
    graph = revision_graph(script)
    target = resolve_target(graph, version)
    view = read_view(settings, graph)
    _check_runnable(view, graph)
    keep = graph.ancestors([target]) if target else set()
    undo = [r for r in reversed(graph.order) if r in view.applied and r not in keep]
    if not undo:
        return view.goose_current
    _preparse_down(script, undo)
    config = alembic_config(settings, report)
    _run_alembic(lambda: command.downgrade(config, target or "base"))
    return read_view(settings, graph).goose_current


def redo(settings: Settings, *, report: Report = _quiet) -> int:
    script = load_scripts(settings)
    graph = revision_graph(script)
    view = read_view(settings, graph)
    heads = graph.heads_of(set(view.applied))
    if len(heads) != 1:
        raise MigrateError("redo needs exactly one applied head")
    down(settings, report=report)
    return up(settings, to=heads[0], report=report).version


def reset(settings: Settings, *, report: Report = _quiet) -> int:
    return down_to(settings, "0", report=report)


def _preparse_down(script: ScriptDirectory, revisions: list[str]) -> None:
    for revision in revisions:
        runner = getattr(script.get_revision(revision).module.downgrade, "__self__", None)
        if isinstance(runner, GooseMigration):
            runner.parsed()


def _run_alembic(action: Callable[[], None]) -> None:
    from alembic.util import CommandError

    try:
        action()
    except CommandError as exc:
        raise MigrateError(str(exc).splitlines()[0]) from None


# ---------------------------------------------------------------- status


@dataclass(frozen=True)
class StatusRow:
    revision: str
    name: str
    kind: str  # "goose" or "python"
    version: int | None
    state: str  # "applied", "pending", "missing", "no file"
    applied_at: dt.datetime | None


@dataclass(frozen=True)
class Status:
    version: int
    rows: list[StatusRow]
    heads: tuple[str, ...]


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
    script = load_scripts(settings)
    graph = revision_graph(script)
    view = read_view(settings, graph)
    goose_times = _goose_times(settings)
    rows = []
    missing = set(view.missing)
    for revision in graph.order:
        node = graph.nodes[revision]
        if revision in view.applied:
            state = "applied"
        elif revision in missing:
            state = "missing"
        else:
            state = "pending"
        rows.append(
            StatusRow(
                revision=revision,
                name=node.name,
                kind="goose" if node.goose_version is not None else "python",
                version=node.goose_version,
                state=state,
                applied_at=goose_times.get(node.goose_version) if state == "applied" else None,
            )
        )
    for version in view.unknown_versions:
        rows.append(
            StatusRow(
                str(version),
                f"version {version}",
                "goose",
                version,
                "no file",
                goose_times.get(version),
            )
        )
    return Status(version=view.goose_current, rows=rows, heads=graph.heads)


def _goose_times(settings: Settings) -> dict[int, dt.datetime | None]:
    if settings.dialect == "sqlite" and (
        settings.sqlite_path is None or not settings.sqlite_path.exists()
    ):
        return {}
    connection = drivers.connect(settings)
    try:
        state = shim.read_goose_state(
            lambda sql: drivers.rows(connection, sql), settings.dialect, settings.schema
        )
    finally:
        connection.close()
    return {version: _as_datetime(stamp) for version, stamp in state.applied.items()}


def version(settings: Settings) -> int:
    if settings.dialect == "sqlite" and (
        settings.sqlite_path is None or not settings.sqlite_path.exists()
    ):
        return 0
    connection = drivers.connect(settings)
    try:
        state = shim.read_goose_state(
            lambda sql: drivers.rows(connection, sql), settings.dialect, settings.schema
        )
    finally:
        connection.close()
    return state.current_version


def format_status(report: Status) -> list[str]:
    """goose's status layout, with Python revisions and states goose hides."""
    lines = ["    Applied At                  Migration", "    " + "=" * 39]
    for row in report.rows:
        if row.state == "applied":
            stamp = row.applied_at
            when = f"{stamp:%a %b} {stamp.day:2d} {stamp:%H:%M:%S %Y}" if stamp else "Applied"
        elif row.state == "missing":
            when = "Pending (missing)"
        elif row.state == "no file":
            stamp = row.applied_at
            when = f"{stamp:%a %b} {stamp.day:2d} {stamp:%H:%M:%S %Y}" if stamp else "Applied"
        else:
            when = "Pending"
        suffix = " (no file)" if row.state == "no file" else ""
        lines.append(f"    {when:<24} -- {row.name}{suffix}")
    return lines


def migrations_dir_listing(settings: Settings) -> list[goose_files.MigrationFile]:
    return goose_files.discover(Path(settings.migrations_dir))
