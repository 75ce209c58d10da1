"""What a command will do, decided from the graph and the reconciled view (pure).

Each function answers one question (which revision does VERSION mean? what
does `up` apply? what does `down` roll back?) or refuses with a MigrateError
whose message says what to do instead.
"""

from __future__ import annotations

from llm_proxy.errors import MigrateError, StateConflict

from .graph import Graph
from .reconcile import DatabaseView


def name_of(graph: Graph, revision: str) -> str:
    """The file name users know a revision by."""
    return graph.nodes[revision].name or revision


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


def check_runnable(view: DatabaseView) -> None:
    """Refuse a database that newer code migrated past what the files here know."""
    if view.unknown_heads:
        raise MigrateError(
            f"the database is at revision {', '.join(view.unknown_heads)}, which no migration "
            "file defines: it was migrated by newer code; deploy that code or restore its files"
        )


def check_consistent(view: DatabaseView, *, rolling_back: bool = False) -> None:
    """Refuse to run anything on tables that contradict each other, but for
    rolling back when that is the way out the conflict names."""
    conflict = view.conflict
    if conflict is not None and not (rolling_back and conflict.rollback_helps):
        raise StateConflict(conflict.message)


def check_missing(
    graph: Graph, view: DatabaseView, allow_missing: bool, option: str = "--allow-missing"
) -> None:
    """Refuse missing migrations (never applied, older than the current version),
    as goose does, unless `allow_missing`; `option` is how the user allows them."""
    if view.missing and not allow_missing:
        names = ", ".join(name_of(graph, r) for r in view.missing)
        raise MigrateError(
            f"found {len(view.missing)} missing migrations before current version "
            f"{view.goose_current}: {names} (use {option} to apply them)"
        )


def check_rollback(view: DatabaseView) -> None:
    """Rolling back from a version no file defines would skip it and undo older
    ones: refuse, as goose does ("no migration N")."""
    check_runnable(view)
    check_consistent(view, rolling_back=True)
    if view.goose_current in view.unknown_versions:
        raise MigrateError(
            f"the database is at version {view.goose_current}, which no migration file "
            "defines: roll it back with the llm-proxy (or files) that applied it"
        )


def plan_up(
    graph: Graph, view: DatabaseView, to: str | None, allow_missing: bool
) -> tuple[str | None, list[str]]:
    """(target revision or None for all heads, revisions to apply in order)."""
    check_runnable(view)
    check_consistent(view)
    target = resolve_target(graph, to) if to is not None else None
    if to is not None and target is None:
        return None, []
    check_missing(graph, view, allow_missing)
    wanted = graph.ancestors([target]) if target else set(graph.nodes)
    return target, [r for r in view.pending if r in wanted]


def plan_down(graph: Graph, view: DatabaseView) -> tuple[str, str]:
    """(revision to roll back, Alembic destination) for a one-step down."""
    check_rollback(view)
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


def plan_down_to(graph: Graph, view: DatabaseView, target: str | None) -> list[str]:
    """Applied revisions not below `target` (None: all), newest first."""
    check_rollback(view)
    keep = graph.ancestors([target]) if target else set()
    return [r for r in reversed(graph.order) if r in view.applied and r not in keep]


def single_head(graph: Graph) -> str:
    """The one head; MigrateError when the graph has several."""
    heads = graph.heads
    if len(heads) != 1:
        raise MigrateError(f"several heads ({', '.join(heads)}): name the start with --from")
    return heads[0]
