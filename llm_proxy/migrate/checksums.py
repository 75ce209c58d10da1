"""`repair`: re-record checksums after a deliberate edit of an applied file."""

from __future__ import annotations

from collections.abc import Callable

from llm_proxy.config import Settings
from llm_proxy.errors import DatabaseUnavailable
from llm_proxy.store import journal

from .project import Project


def _quiet(_: str) -> None:
    pass


def repair(settings: Settings, *, report: Callable[[str], None] = _quiet) -> list[str]:
    """Record the current checksum of every applied file whose checksum differs
    (and of applied files that have none); returns the revisions re-recorded."""
    project = Project.load(settings)
    if settings.dialect.database_missing(settings):
        raise DatabaseUnavailable(f"database file does not exist: {settings.sqlite_path}")
    with project.locked(report) as connection:
        state = project.rewrite_spellings(connection, project.read_state(connection))
        changed = project.modified(state)
        session = project.session(connection)
        journal.ensure(session)
        for revision in changed:
            checksum = journal.file_checksum(project.paths[revision])
            session.execute(journal.update_sql(project.tables, revision, checksum))
            report(f"re-recorded checksum of {project.name_of(revision)}")
        recorded = journal.adopt(
            session, state.recorded.journal, sorted(state.view.applied), project.paths
        )
        for revision in recorded:
            report(f"recorded checksum of {project.name_of(revision)}")
        connection.commit()
    return changed
