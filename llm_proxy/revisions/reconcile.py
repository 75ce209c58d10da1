"""Both version tables, reconciled into one view (pure).

goose_db_version says which goose files are applied; alembic_version says
which heads Alembic reached. Rules: goose rows win for goose revisions, and
Python revisions are Alembic's alone. Every command plans from the
``DatabaseView`` this module computes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .graph import Graph


@dataclass(frozen=True)
class Conflict:
    """Version tables that no rule reconciles: what is wrong, and the way out."""

    message: str  # one line, naming the command that gets out of it
    rollback_helps: bool = False  # rolling back the revisions involved is a way out


@dataclass(frozen=True)
class DatabaseView:
    """Both version tables, reconciled: the one truth every command works from."""

    applied: frozenset[str]  # revision ids applied (goose rows for goose revisions)
    alembic_heads: tuple[str, ...]  # what alembic_version should hold
    goose_current: int  # goose's current version
    missing: tuple[str, ...] = ()  # not applied, placed below goose_highest (rule 6)
    unknown_versions: tuple[int, ...] = ()  # applied in goose_db_version, no file
    unknown_heads: tuple[str, ...] = ()  # in alembic_version, no revision
    pending: tuple[str, ...] = field(default=())  # not applied, in apply order
    # Set when the tables contradict each other; alembic_heads then keeps what
    # alembic_version holds, and only the way out named in it may write.
    conflict: Conflict | None = None
    goose_order: tuple[int, ...] = ()  # applied goose versions, in the order goose applied them

    @property
    def goose_highest(self) -> int:
        """The highest applied goose version: goose calls a file below it that never
        ran "missing" (and names this as the "current version" when refusing it)."""
        return max(self.goose_order, default=0)


def reconcile(
    graph: Graph,
    goose_applied: Iterable[int],
    goose_current: int,
    alembic_heads: Sequence[str],
    *,
    goose_table: bool = True,
    goose_retired: bool = False,
) -> DatabaseView:
    """Merge goose_db_version and alembic_version into one view. `goose_applied`
    comes in the order goose applied the versions (its rows' order).

    goose rows win for goose revisions: a goose revision alembic_version
    implies but goose does not record is taken back (with everything after
    it), and goose revisions recorded by goose are added as far as their
    parents allow. Python revisions are Alembic's alone. Two states are
    conflicts rather than rules: goose took back a goose revision that applied
    Python revisions build on, and goose's table is gone (`goose_table`
    False) while alembic_version implies goose revisions; taking those back
    would run them again.

    Once goose is retired (`goose_retired`) goose's rows are history nobody
    writes any more: alembic_version alone says what is applied.
    """
    if goose_retired:
        return _alembic_only(graph, alembic_heads)
    goose_by_version = graph.by_goose_version()
    goose_order = tuple(dict.fromkeys(v for v in goose_applied if v != 0))
    unknown_versions = tuple(sorted(v for v in goose_order if v not in goose_by_version))
    goose_done = {goose_by_version[v] for v in goose_order if v in goose_by_version}

    # A row may spell a goose version otherwise (an older release's id): same file.
    resolved = [(head, graph.canonical(head)) for head in alembic_heads]
    known_heads = [revision for _, revision in resolved if revision is not None]
    unknown_heads = tuple(head for head, revision in resolved if revision is None)
    implied = graph.ancestors(known_heads) if known_heads else set()
    recorded_heads = (*known_heads, *unknown_heads)

    if not goose_table and any(graph.nodes[r].goose_version is not None for r in implied):
        return DatabaseView(
            applied=frozenset(implied),
            alembic_heads=recorded_heads,
            goose_current=goose_current,
            unknown_heads=unknown_heads,
            pending=tuple(r for r in graph.order if r not in implied),
            conflict=Conflict(_lost_goose_table(known_heads)),
        )

    # Take back goose revisions that goose says are not applied.
    conflict = None
    undone = {r for r in implied if graph.nodes[r].goose_version is not None} - goose_done
    if undone:
        dropped = undone | (graph.descendants(undone) & implied)
        python_dropped = sorted(r for r in dropped if graph.nodes[r].goose_version is None)
        if python_dropped:
            # Python revisions are Alembic's alone: they stay applied, and so
            # does alembic_version, until someone decides.
            first = min(undone, key=lambda r: graph.nodes[r].goose_version or 0)
            conflict = Conflict(_python_on_undone(graph, first, python_dropped), True)
            implied -= undone
        else:
            implied -= dropped

    # Add goose revisions goose applied, while their parents are in place.
    applied = set(implied)
    for revision in graph.order:
        node = graph.nodes[revision]
        if (
            revision in goose_done
            and revision not in applied
            and all(p in applied for p in (*node.parents, *node.dependencies))
        ):
            applied.add(revision)
    # Goose revisions goose applied whose parents are not (allow-missing gaps)
    # are applied in truth though Alembic cannot express it.
    truly_applied = applied | goose_done
    # Missing, as goose means it: not applied, yet placed below the highest
    # applied version. For a Python revision the place is the newest goose file
    # it builds on, so one written against 00003 is missing on a database at
    # 00006 (added below applied goose files, or on a branch merged late)
    # instead of being run silently out of the order it was written for.
    highest = max(goose_order, default=0)
    written_on = graph.newest_goose_below()
    missing = tuple(
        r
        for r in graph.order
        if r not in truly_applied
        and (
            graph.nodes[r].goose_version
            if graph.nodes[r].goose_version is not None
            else written_on[r]
        )
        < highest
    )
    pending = tuple(r for r in graph.order if r not in truly_applied)
    return DatabaseView(
        applied=frozenset(truly_applied),
        alembic_heads=recorded_heads if conflict else graph.heads_of(applied) + unknown_heads,
        goose_current=goose_current,
        missing=missing,
        unknown_versions=unknown_versions,
        unknown_heads=unknown_heads,
        pending=pending,
        conflict=conflict,
        goose_order=goose_order,
    )


def _alembic_only(graph: Graph, alembic_heads: Sequence[str]) -> DatabaseView:
    """The view of a retired project: what alembic_version implies, and goose's
    current version read from it (the newest goose version at or below its heads)."""
    resolved = [(head, graph.canonical(head)) for head in alembic_heads]
    known = [revision for _, revision in resolved if revision is not None]
    unknown = tuple(head for head, revision in resolved if revision is None)
    applied = graph.ancestors(known) if known else set()
    return DatabaseView(
        applied=frozenset(applied),
        alembic_heads=graph.heads_of(applied) + unknown,
        goose_current=goose_version_reached(graph, known),
        unknown_heads=unknown,
        pending=tuple(r for r in graph.order if r not in applied),
        # Rolling back walks goose's order: here, the graph's.
        goose_order=tuple(
            version
            for r in graph.order
            if r in applied and (version := graph.nodes[r].goose_version) is not None
        ),
    )


def _python_on_undone(graph: Graph, first: str, python: Sequence[str]) -> str:
    parents = graph.nodes[first].parents
    below = parents[0] if parents else "0"
    downgrade_to = parents[0] if parents else "base"
    return (
        f"goose_db_version says {graph.nodes[first].name} is not applied, but Python "
        f"revision(s) {', '.join(python)} built on it are: roll them back with "
        f"`llm-proxy migrate down-to {below}` (or `alembic downgrade {downgrade_to}`), "
        "re-apply it with goose, or record where the schema really is with "
        "`llm-proxy migrate stamp VERSION`"
    )


def _lost_goose_table(heads: Sequence[str]) -> str:
    named = " ".join(heads)
    ours = f"`llm-proxy migrate stamp {heads[0]}` (or `alembic stamp {named}`)"
    way_out = ours if len(heads) == 1 else f"`alembic stamp {named}`"
    return (
        f"goose_db_version does not exist, but alembic_version says {', '.join(heads)} "
        "is applied: nothing runs until goose's table is back; restore it from a backup or, "
        f"if the schema really is at {', '.join(heads)}, record that with {way_out}"
    )


def goose_version_reached(graph: Graph, heads: Iterable[str]) -> int:
    """The newest goose version at or below `heads`: where goose stands once
    Alembic stands at `heads` (0 for none)."""
    below = graph.newest_goose_below()
    return max(
        (max(below[h], graph.nodes[h].goose_version or 0) for h in heads if h in graph.nodes),
        default=0,
    )


def heads_after_step(
    graph: Graph, alembic_heads: Sequence[str], revision: str, is_upgrade: bool
) -> tuple[str, ...]:
    """alembic_version once `revision` alone was applied or rolled back, before
    goose's rows are reconciled in: a rolled-back revision leaves with everything
    built on it (reconciling puts back the goose revisions goose still records);
    an applied one joins when its parents are in place."""
    known = [h for h in alembic_heads if h in graph.nodes]
    implied = graph.ancestors(known) if known else set()
    if not is_upgrade:
        implied -= {revision} | graph.descendants([revision])
    elif graph.ancestors([revision], include_self=False) <= implied:
        implied.add(revision)
    unknown = tuple(h for h in alembic_heads if h not in graph.nodes)
    return graph.heads_of(implied) + unknown
