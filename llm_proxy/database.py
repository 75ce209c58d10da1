"""Opening the application database: the Python counterpart of Go's `database.New()`.

`open()` refuses a database that newer code has migrated, applies pending
migrations (under the migration lock, through `commands.up`) unless
auto-migration is off, and returns a SQLAlchemy engine. The newer-than-code
check, like `commands.up` when nothing is pending, reads a directory listing
and the version tables through the plain driver: a start with nothing to do
imports no Alembic.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .config import Settings
from .errors import DatabaseNewerThanCode

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from .migrate.commands import UpResult

Report = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


# Shadows the builtin on purpose: callers write `database.open(settings)`.
def open(settings: Settings, *, report: Report = _quiet) -> Engine:
    """An engine for the configured database, migrated to head unless
    `settings.auto_migrate` is off. Raises DatabaseNewerThanCode, or the
    migrate errors (one-line messages) when migrating fails."""
    if settings.auto_migrate:
        migrate(settings, report=report)
    else:
        check_not_newer(settings)
    from .engine import create_engine

    return create_engine(settings)


def migrate(settings: Settings, *, report: Report = _quiet) -> UpResult:
    """Apply every pending migration, refusing a database newer than the code."""
    from .migrate import commands

    check_not_newer(settings)
    if settings.dialect == "sqlite" and settings.sqlite_path is not None:
        ensure_sqlite_file(settings.sqlite_path)
    return commands.up(settings, report=report)


def ensure_sqlite_file(path: Path) -> bool:
    """Create the SQLite file readable and writable by its owner only (its
    directory too, when missing); True if it was created. An existing file
    keeps the permissions its operator gave it."""
    if not path.parent.is_dir():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
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
    from .migrate import commands

    graph = commands.graph_for(settings)  # cheap: listing + literal read of revisions
    view = commands.read_view(settings, graph)  # one read through the plain driver
    if view.unknown_versions:
        known = list(graph.by_goose_version())
        raise DatabaseNewerThanCode(
            unknown_versions_message(view.unknown_versions, known, settings.migrations_dir)
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
    listed = ", ".join(heads)
    return (
        f"database is at revision {listed}, which no migration of this llm-proxy defines "
        "(it was migrated by newer code): deploy the newer llm-proxy, or roll the database "
        "back with it"
    )
