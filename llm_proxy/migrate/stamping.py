"""`stamp`: record a version as reached without running any migration.

goose has no such command (Flyway calls it baseline). It is for a schema
brought to a version by other means (restored, or built by hand), and the way
out when the version tables contradict each other. Alembic's stamp moves
alembic_version; env.py moves goose_db_version with it, with the rows goose
would have written by migrating there (one per file up to VERSION going up,
every row of the current version deleted while it is above VERSION going
down), and llm-proxy's checksums with them.
"""

from __future__ import annotations

from collections.abc import Callable

from llm_proxy.config import Settings
from llm_proxy.revisions import plan

from .project import Project


def _quiet(_: str) -> None:
    pass


def stamp(
    settings: Settings,
    version: str,
    *,
    purge: bool = False,
    report: Callable[[str], None] = _quiet,
) -> int:
    """Record `version` (a goose version or revision id; "0" for none) as the
    version reached, running nothing, under the migration lock. `purge` first
    empties alembic_version (whatever it holds, even revisions no file
    defines). Returns goose's current version afterwards."""
    project = Project.load(settings)
    target = plan.resolve_target(project.graph, version)
    from llm_proxy.bridge import commands as alembic_commands

    with project.locked(report) as connection:
        run = project.run(report, connection)
        alembic_commands.stamp(run, target or "base", purge=purge)
        project.keep(run)
        return project.read_state(connection, with_journal=False).version
