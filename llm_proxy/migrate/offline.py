"""Offline SQL: the script `up`/`down` would run, for a DBA to review and run."""

from __future__ import annotations

from typing import TextIO

from llm_proxy.config import Settings
from llm_proxy.errors import MigrateError
from llm_proxy.revisions import plan

from .project import Project


def sql_script(
    settings: Settings,
    *,
    direction: str,
    start: str | None = None,
    end: str | None = None,
    output: TextIO | None = None,
) -> str:
    """The SQL that `up` (direction "up") or `down`/`down-to` ("down") would run,
    version-table writes included. Nothing connects to the database: `start` says
    where the database is (default: empty for up, the head for down); `end` is the
    target (default: every head for up, one step for down). With `output`, the script
    is written there as it is made (every file is parsed first, so a broken one stops
    it before anything is written) and "" is returned."""
    from llm_proxy.bridge import commands as alembic_commands

    project = Project.load(settings)
    graph = project.graph
    # --from says where the database is: it must name a migration. The end is a
    # target as up-to and down-to read one (a number stands for the files up to it).
    first = plan.resolve_revision(graph, start) if start is not None else None
    if direction == "up":
        destination = plan.resolve_target(graph, end) if end else None
        if end and destination is None:
            raise MigrateError(f"no migration files found at or below version {end.strip()}")
        revisions = f"{first or 'base'}:{destination or 'heads'}"
    else:
        origin = first or plan.single_head(graph)
        if end is None:
            parents = graph.nodes[origin].parents
            destination = parents[0] if parents else None
        else:
            destination = plan.resolve_target(graph, end)
        revisions = f"{origin}:{destination or 'base'}"
    project.parse(graph.nodes, direction)
    return alembic_commands.offline_script(project.run(), direction, revisions, output)
