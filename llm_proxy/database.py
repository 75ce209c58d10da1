"""Opening the application database: the Python counterpart of Go's `database.New()`.

`open()` refuses a database that newer code has migrated, applies pending
migrations (under the migration lock) unless auto-migration is off, and
returns a SQLAlchemy engine. The project is loaded and the database read
once: a start with nothing to do reads a directory listing and the version
tables through the plain driver, and imports no Alembic.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .config import Settings
from .dialects.sqlite import make_directory
from .errors import DatabaseNewerThanCode
from .migrate.project import DatabaseState, Project

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from .migrate.apply import UpResult

Report = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


# Shadows the builtin on purpose: callers write `database.open(settings)`.
def open(settings: Settings, *, report: Report = _quiet) -> Engine:
    """An engine for the configured database, migrated to head unless
    `settings.auto_migrate` is off. Raises DatabaseNewerThanCode, or the
    migrate errors (one-line messages) when migrating fails."""
    return open_project(settings, report=report)[1]


def open_project(settings: Settings, *, report: Report = _quiet) -> tuple[Project, Engine]:
    """`open`, also returning the loaded project (a server keeps it for /readyz)."""
    project = Project.load(settings)
    state = project.read_state(with_journal=False)
    refuse_newer(project, state)
    if settings.auto_migrate:
        _migrate(project, state, report)
    from .db.engine import create_engine

    return project, create_engine(settings)


def migrate(settings: Settings, *, report: Report = _quiet) -> UpResult:
    """Apply every pending migration, refusing a database newer than the code."""
    project = Project.load(settings)
    state = project.read_state(with_journal=False)
    refuse_newer(project, state)
    return _migrate(project, state, report)


def _migrate(project: Project, state: DatabaseState, report: Report) -> UpResult:
    from .migrate.apply import apply_up

    if project.settings.sqlite_path is not None:
        ensure_sqlite_file(project.settings.sqlite_path)
    return apply_up(project, state=state, report=report)


def ensure_sqlite_file(path: Path) -> bool:
    """Create the SQLite file readable and writable by its owner only (its
    directory too, when missing); True if it was created. An existing file
    keeps the permissions its operator gave it."""
    make_directory(path, mode=0o700)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    os.close(descriptor)
    os.chmod(path, 0o600)  # exactly 0600 whatever the umask
    return True


def check_not_newer(settings: Settings) -> None:
    """Raise DatabaseNewerThanCode when a goose version or Alembic revision is
    applied that no migration here defines."""
    project = Project.load(settings)
    refuse_newer(project, project.read_state(with_journal=False))


def refuse_newer(project: Project, state: DatabaseState) -> None:
    """Raise DatabaseNewerThanCode when the database has versions no file here defines."""
    view = state.view
    if view.unknown_versions:
        known = list(project.graph.by_goose_version())
        raise DatabaseNewerThanCode(
            unknown_versions_message(view.unknown_versions, known, project.settings.migrations_dir)
        )
    if view.unknown_heads:
        raise DatabaseNewerThanCode(unknown_heads_message(view.unknown_heads))


def unknown_versions_message(
    unknown_versions: Iterable[int], known: Sequence[int], migrations_dir: Path
) -> str:
    """The refusal for goose versions applied that no file defines."""
    known_set = set(known)
    unknown = sorted(unknown_versions)
    latest = max(known_set, default=0)
    newest = unknown[-1]
    if newest > latest:
        return (
            f"database is at version {newest}, newer than this llm-proxy's migrations "
            f"(latest {latest}): deploy the newer llm-proxy, or roll the database back "
            f"with it (llm-proxy migrate down-to {latest})"
        )
    listed = ", ".join(str(v) for v in unknown)
    noun = "version" if len(unknown) == 1 else "versions"
    return (
        f"database has migration {noun} {listed} applied, but no file in {migrations_dir} "
        "defines it: restore the missing file or use the llm-proxy that applied it"
    )


def unknown_heads_message(heads: Sequence[str]) -> str:
    """The refusal for Alembic revisions applied that no file defines."""
    listed = ", ".join(heads)
    return (
        f"database is at revision {listed}, which no migration of this llm-proxy defines "
        "(it was migrated by newer code): deploy the newer llm-proxy, or roll the database "
        "back with it"
    )
