"""Writing new migrations: `create` (a goose file or an Alembic revision) and
goose's `fix` (timestamp versions -> the next sequential numbers).

A new goose file comes after the previous goose file and after every Python
revision grown on it; when those are Python revisions it says so in its first
line (``-- llm-proxy: after REV``, docs/revision-graph.md), so the order is
fixed in the file and no later file can change it. A Python revision is made
by Alembic itself from the project's script.py.mako, exactly as
`alembic revision -m NAME` makes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from llm_proxy.config import Settings, packaged_data_dir
from llm_proxy.errors import MigrateError
from llm_proxy.goose import files as goose_files
from llm_proxy.revisions.graph import AFTER_MARKER, Graph
from llm_proxy.revisions.sources import read_after_marker

from .project import Project

SQL = "sql"
PYTHON = "python"
SEQUENTIAL = "sequential"
TIMESTAMP = "timestamp"


@dataclass(frozen=True)
class Created:
    """A migration file `create` wrote."""

    path: Path
    kind: str  # SQL or PYTHON
    after: tuple[str, ...] = ()  # a goose file's marker: the revisions it comes after


def create(
    settings: Settings,
    name: str,
    *,
    kind: str = SQL,
    numbering: str = SEQUENTIAL,
    now: datetime | None = None,
) -> Created:
    """A new goose file in the migrations directory, or a Python revision in
    alembic/versions chained to the current head."""
    if kind == PYTHON:
        return Created(create_python(settings, name), PYTHON)
    if kind != SQL:
        raise MigrateError(f"unknown migration kind {kind!r}: use sql or python")
    if numbering not in (SEQUENTIAL, TIMESTAMP):
        raise MigrateError(f"unknown numbering {numbering!r}: use sequential or timestamp")
    return create_sql(settings, name, numbering=numbering, now=now)


def _writable(directory: Path) -> Path:
    """Refuse to write into an installed wheel's own copy of the migrations."""
    bundled = packaged_data_dir()
    if bundled.name == "_data" and directory.resolve().is_relative_to(bundled.resolve()):
        raise MigrateError(
            f"{directory} belongs to the installed llm-proxy package: run from your project "
            "(its alembic.ini) or pass --migrations-dir"
        )
    return directory


def create_sql(
    settings: Settings, name: str, *, numbering: str = SEQUENTIAL, now: datetime | None = None
) -> Created:
    """A new goose file, numbered after the directory's files (or by timestamp)."""
    directory = _writable(settings.migrations_dir)
    graph = Project.load(settings).graph
    existing = [*goose_files.discover(directory), *_converted_files(graph, directory)]
    try:
        if numbering == TIMESTAMP:
            filename = goose_files.timestamp_name(name, now or datetime.now(UTC))
        else:
            filename = goose_files.next_sequential_name(existing, name)
    except ValueError as exc:
        raise MigrateError(str(exc)) from None
    version = goose_files.parse_filename(filename)
    assert version is not None
    clash = [f for f in existing if f.version == version[0]]
    if clash:
        raise MigrateError(f"{clash[0].path}: version {version[1]} exists already")

    after = after_for(graph, version[0])
    marker = f"{AFTER_MARKER} {', '.join(after)}\n" if after else ""
    path = directory / filename
    try:
        with path.open("x", encoding="utf-8") as handle:
            handle.write(marker + goose_files.new_migration_text())
    except FileExistsError:
        raise MigrateError(f"{path}: exists already") from None
    return Created(path, SQL, after)


def _converted_files(graph: Graph, directory: Path) -> list[goose_files.MigrationFile]:
    """The goose files `migrate convert` turned into Python revisions (their .sql may
    be gone): their numbers are taken."""
    found = []
    for node in graph.nodes.values():
        parsed = goose_files.parse_filename(node.name) if node.converted_file else None
        if parsed is not None:
            found.append(goose_files.MigrationFile(*parsed, directory / node.name))
    return found


def after_for(graph: Graph, version: int) -> tuple[str, ...]:
    """The marker a new goose file of `version` needs: the Python revisions grown
    on the goose file before it, or () when it simply follows that goose file."""
    below = [n for n in graph.goose_revisions() if (n.goose_version or 0) < version]
    if not below:
        return ()
    previous = max(below, key=lambda n: n.goose_version or 0).revision
    tips = graph.python_tips(previous)
    return () if tips == (previous,) else tips


def create_python(settings: Settings, name: str) -> Path:
    """`alembic revision -m NAME`, through Alembic, from the project's template."""
    from llm_proxy.bridge import commands as alembic_commands

    if not name.strip():
        raise MigrateError("a revision needs a name")
    _writable(settings.versions_dir)
    project = Project.load(settings)  # the same checks (directories, graph) as every command
    return alembic_commands.new_revision(project.run(), name)


@dataclass(frozen=True)
class FixResult:
    """What `fix` renamed, and which goose files had their `after` line updated."""

    renamed: list[tuple[Path, Path]]
    updated_markers: list[Path]


def fix(settings: Settings) -> FixResult:
    """goose `fix`: timestamp-versioned goose files get the next sequential
    numbers, in version order. Markers naming a renamed version follow it. A
    Python revision naming one stops the fix before anything changes (its file
    is the developer's to edit)."""
    directory = _writable(settings.migrations_dir)
    existing = goose_files.discover(directory)
    plan = goose_files.fix_plan(existing)
    if not plan:
        return FixResult([], [])
    new_ids = {f.revision: _revision_of(new_name) for f, new_name in plan}

    graph = Project.load(settings).graph
    for node in graph.nodes.values():
        named = [p for p in (*node.parents, *node.dependencies) if p in new_ids]
        if node.goose_version is None and named:
            raise MigrateError(
                f"{settings.versions_dir / node.name}: names {named[0]}, which fix would rename "
                f"to {new_ids[named[0]]}; change it there first (nothing was renamed)"
            )

    renamed = []
    for migration_file, new_name in plan:
        target = directory / new_name
        if target.exists():
            raise MigrateError(f"{target}: exists already (renamed so far: {len(renamed)})")
        migration_file.path.rename(target)
        renamed.append((migration_file.path, target))

    updated = []
    for migration_file in goose_files.discover(directory):
        after = read_after_marker(migration_file.path)
        if after and any(r in new_ids for r in after):
            _rewrite_marker(migration_file.path, tuple(new_ids.get(r, r) for r in after))
            updated.append(migration_file.path)
    return FixResult(renamed, updated)


def _revision_of(name: str) -> str:
    parsed = goose_files.parse_filename(name)
    assert parsed is not None  # fix_plan names .sql files
    return goose_files.revision_id(parsed[0])


def _rewrite_marker(path: Path, after: tuple[str, ...]) -> None:
    # Bytes in, bytes out: only the marker line changes, line endings included.
    lines = path.read_bytes().decode("utf-8").splitlines(keepends=True)
    prefix = AFTER_MARKER.replace(" ", "")
    for index, line in enumerate(lines):
        if line.lstrip("\ufeff").replace(" ", "").startswith(prefix):
            bom = "\ufeff" if line.startswith("\ufeff") else ""
            ending = line[len(line.rstrip("\r\n")) :]
            lines[index] = f"{bom}{AFTER_MARKER} {', '.join(after)}{ending}"
            break
    path.write_bytes("".join(lines).encode("utf-8"))
