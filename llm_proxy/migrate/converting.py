"""`convert`: goose files written out as Alembic Python revisions.

Each chosen goose file becomes ``<versions>/<same name>.py`` with the file's
revision id, parents and statements (goose/python_revision.py); in the graph
the Python revision then stands in for the goose file, so plans, `status`,
`alembic history` and what every database records stay as they were. No
database is opened. The .sql is removed only when asked (goose still reads it
until the team stops running goose).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from llm_proxy.bridge.converted import goose_step
from llm_proxy.config import Settings
from llm_proxy.errors import MigrateError
from llm_proxy.goose.migration import GooseMigration
from llm_proxy.goose.python_revision import render, uses_envsub
from llm_proxy.revisions.plan import parse_version

from .project import Project


@dataclass(frozen=True)
class Converted:
    """One goose file converted: where its revision was written."""

    revision: str
    goose_file: Path
    python_file: Path
    removed: bool


__all__ = ["Converted", "convert", "goose_step"]  # goose_step: what converted revisions call


def _quiet(_: str) -> None:
    pass


def convert(
    settings: Settings,
    versions: Sequence[str] = (),
    *,
    remove_sql: bool = False,
    expand_env: bool = False,
    report: Callable[[str], None] = _quiet,
) -> list[Converted]:
    """Convert the goose files of `versions` (all when empty) into Python revisions.
    Every file is checked and rendered before the first is written."""
    project = Project.load(settings)
    chosen = _chosen(project, versions)
    rendered: list[tuple[GooseMigration, Path, str]] = []
    for migration in chosen:
        target = settings.versions_dir / f"{Path(migration.name).stem}.py"
        if target.exists():
            raise MigrateError(
                f"{target}: already exists; move it away to convert {migration.name}"
            )
        text = migration.path.read_text(encoding="utf-8")
        envsub = uses_envsub(text)
        if envsub and not expand_env:
            raise MigrateError(
                f"{migration.path}: ENVSUB ON: its ${{VAR}} values would be fixed in the "
                "revision: convert with --expand-env to expand them from this environment"
            )
        parents = project.graph.nodes[migration.revision].parents
        source = render(migration, parents, settings.dialect.name, expanded_env=envsub)
        rendered.append((migration, target, source))
    settings.versions_dir.mkdir(parents=True, exist_ok=True)
    done = []
    for migration, target, source in rendered:
        target.write_text(source, encoding="utf-8")
        if remove_sql:
            migration.path.unlink()
        report(f"converted {migration.name} -> {target}")
        done.append(Converted(migration.revision, migration.path, target, remove_sql))
    return done


def _chosen(project: Project, versions: Sequence[str]) -> list[GooseMigration]:
    """The goose files of `versions` (by number, any spelling), in version order."""
    by_version = {m.version: m for m in project.goose.values()}
    if not versions:
        return sorted(by_version.values(), key=lambda m: m.version)
    chosen = {}
    for version in versions:
        number = parse_version(version)  # ASCII digits, as goose reads them
        if number is None or number not in by_version:
            converted = number is not None and number in project.graph.by_goose_version()
            why = "is already a Python revision" if converted else "is no goose file"
            raise MigrateError(f"version {version} {why} in {project.settings.migrations_dir}")
        chosen[number] = by_version[number]
    return [chosen[v] for v in sorted(chosen)]
