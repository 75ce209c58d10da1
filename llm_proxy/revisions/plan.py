"""What a command will do, decided from the graph and the reconciled view (pure).

Each function answers one question (which revision does VERSION mean? what
does `up` apply? what does `down` roll back?) or refuses with a MigrateError
whose message says what to do instead.
"""

from __future__ import annotations

from collections.abc import Collection

from llm_proxy.errors import MigrateError, StateConflict
from llm_proxy.goose.baseline import is_baseline_name

from .graph import Graph
from .reconcile import DatabaseView


def name_of(graph: Graph, revision: str) -> str:
    """The file name users know a revision by."""
    return graph.nodes[revision].name or revision


# goose's versions are int64 (strconv.ParseInt): larger numbers are refused.
MAX_VERSION = 2**63 - 1


def parse_version(text: str) -> int | None:
    """A version number as goose reads one: ASCII digits, an optional '+' (so no
    '²' or Arabic-Indic digits, which Python's int() would take); None when the
    text is not one. Negative numbers are refused: as an Alembic target, -1 means
    "one step down", and a number that could mean either is read as neither."""
    text = text.strip()
    digits = text[1:] if text.startswith("+") else text
    if not (digits.isascii() and digits.isdigit()):
        return None
    number = int(digits)
    if number > MAX_VERSION:
        raise MigrateError(f"version {text!r} is out of range: goose versions are 64-bit")
    return number


def resolve_revision(graph: Graph, target: str) -> str | None:
    """A user's VERSION that must name a migration: a goose version (as written
    or not) or a revision id; None means base (version 0)."""
    text = target.strip()
    if text in graph.nodes:
        return text
    number = parse_version(text)
    if number == 0:
        return None
    if number is not None and number in graph.by_goose_version():
        return graph.by_goose_version()[number]
    raise MigrateError(f"no migration with version {target!r}")


def resolve_target(graph: Graph, target: str) -> str | None:
    """A user's VERSION as goose reads a target: a revision id, or a number that
    stands for every goose file up to it (no file of that version is needed, as
    with timestamp versions). The revision of the highest goose file at or below
    the number; None when there is none (version 0)."""
    text = target.strip()
    if text in graph.nodes:
        return text
    number = parse_version(text)
    if number is None:
        raise MigrateError(f"no migration with version {target!r}")
    at_or_below = [v for v in graph.by_goose_version() if v <= number]
    return graph.by_goose_version()[max(at_or_below)] if at_or_below else None


def check_runnable(view: DatabaseView) -> None:
    """Refuse a database that newer code migrated past what the files here know."""
    if view.unknown_heads:
        raise MigrateError(
            f"the database is at revision {', '.join(view.unknown_heads)}, which no migration "
            "file defines: it was migrated by newer code; deploy that code or restore its files"
        )


def check_not_older_than_files(graph: Graph, view: DatabaseView) -> None:
    """Refuse a database whose every applied version is older than a squashed baseline
    that is the oldest goose file: the files it still needs were squashed, and running
    the baseline over the tables it already has would fail or double them. (Without a
    baseline goose runs the files it has, and so do we.)"""
    versions = graph.by_goose_version()
    if not versions or not view.goose_order:
        return
    oldest = min(versions)
    name = name_of(graph, versions[oldest])
    if is_baseline_name(name) and max(view.goose_order) < oldest:
        raise MigrateError(
            f"the database is at version {view.goose_current}, older than the squashed "
            f"baseline {name}: first upgrade it to version {oldest} with a release that "
            "still has the files the baseline replaced"
        )


def check_consistent(view: DatabaseView, *, rolling_back: bool = False) -> None:
    """Refuse to run anything on tables that contradict each other, but for
    rolling back when that is the way out the conflict names."""
    conflict = view.conflict
    if conflict is not None and not (rolling_back and conflict.rollback_helps):
        raise StateConflict(conflict.message)


def check_missing(
    graph: Graph,
    view: DatabaseView,
    allow_missing: bool,
    option: str = "--allow-missing",
    wanted: Collection[str] | None = None,
) -> None:
    """Refuse missing migrations (never applied, below the highest applied version)
    among `wanted` (None: all), as goose does, unless `allow_missing`; `option` is
    how the user allows them."""
    missing = [r for r in view.missing if wanted is None or r in wanted]
    if missing and not allow_missing:
        names = ", ".join(name_of(graph, r) for r in missing)
        raise MigrateError(
            f"found {len(missing)} missing migrations before current version "
            f"{view.goose_highest}: {names} (use {option} to apply them)"
        )


def check_rollback(view: DatabaseView) -> None:
    """Rolling back from a version no file defines would skip it and undo older
    ones: refuse, as goose does ("no migration N")."""
    check_runnable(view)
    check_consistent(view, rolling_back=True)
    if view.goose_current in view.unknown_versions:
        raise MigrateError(_no_file(view.goose_current, "the database is at"))


def _no_file(version: int, where: str) -> str:
    return (
        f"{where} version {version}, which no migration file defines: roll it back with "
        "the llm-proxy (or files) that applied it, or restore its file"
    )


def plan_up(
    graph: Graph, view: DatabaseView, to: str | None, allow_missing: bool
) -> tuple[str | None, list[str]]:
    """(target revision or None for all heads, revisions to apply in order).
    As goose's `up-to`, only migrations up to the target count: a missing one
    above it is no reason to refuse."""
    check_not_older_than_files(graph, view)
    check_runnable(view)
    check_consistent(view)
    target = resolve_target(graph, to) if to is not None else None
    if to is not None and target is None:
        raise MigrateError(f"no migration files found at or below version {to.strip()}")
    wanted = graph.ancestors([target]) if target else set(graph.nodes)
    check_missing(graph, view, allow_missing, wanted=wanted)
    return target, [r for r in view.pending if r in wanted]


# Rolling back, as goose does: `down` undoes the current version, which is the
# newest applied row (after an out-of-order apply, not the highest version);
# `down-to` repeats that while the current version is above the target; `reset`
# undoes every applied file, highest version first. Python revisions built on
# a goose revision are undone before it (goose knows nothing of them).


def plan_down(graph: Graph, view: DatabaseView) -> str:
    """The revision a one-step `down` (or `redo`) rolls back."""
    check_rollback(view)
    by_version = graph.by_goose_version()
    tips = _next_rollback(graph, by_version, set(view.applied), list(view.goose_order))
    if not tips:
        raise MigrateError("no migrations to roll back: the database is at version 0")
    if len(tips) > 1:
        raise MigrateError(
            f"several heads are applied ({', '.join(tips)}); use down-to VERSION to choose"
        )
    return tips[0]


def plan_down_to(graph: Graph, view: DatabaseView, target: str | None) -> list[str]:
    """What `down-to` rolls back, in order: the current version while it is above
    `target` (None: version 0), re-read after each step as goose does, and the
    Python revisions that are not ancestors of `target`."""
    check_rollback(view)
    keep = graph.ancestors([target]) if target else set()
    return _roll_back_while(graph, view, list(view.goose_order), keep)


def plan_reset(graph: Graph, view: DatabaseView) -> list[str]:
    """What `reset` rolls back, in order: every applied goose file, highest
    version first, each after the Python revisions built on it. An applied
    version without a file is refused (goose would skip it and leave it applied)."""
    check_runnable(view)
    if view.unknown_versions:
        raise MigrateError(
            _no_file(view.unknown_versions[-1], "reset would leave") + " (goose's reset skips it)"
        )
    return _roll_back_while(graph, view, sorted(view.goose_order), set())


def _roll_back_while(
    graph: Graph, view: DatabaseView, goose_order: list[int], keep: set[str]
) -> list[str]:
    """Roll back, on paper, while the next revision is not in `keep`."""
    by_version = graph.by_goose_version()
    applied = set(view.applied)
    undo: list[str] = []
    while tips := [
        r for r in _next_rollback(graph, by_version, applied, goose_order) if r not in keep
    ]:
        revision = tips[-1]
        undo.append(revision)
        applied.discard(revision)
        version = graph.nodes[revision].goose_version
        if version is not None:
            goose_order.remove(version)
    return undo


def _next_rollback(
    graph: Graph, by_version: dict[int, str], applied: set[str], goose_order: list[int]
) -> list[str]:
    """What may be rolled back next (several: independent Python heads, in graph
    order): the current goose version, unless Python revisions are built on it;
    with no goose version applied, the applied Python heads."""
    python = {r for r in applied if graph.nodes[r].goose_version is None}
    if goose_order:
        current = by_version.get(goose_order[-1])
        if current is None:
            raise MigrateError(_no_file(goose_order[-1], "rolling back reaches"))
        built_on = python & graph.descendants([current]) if python else set()
        if not built_on:
            return [current]
    else:
        built_on = applied
    return [r for r in graph.order if r in built_on and not graph.descendants([r]) & built_on]


def single_head(graph: Graph) -> str:
    """The one head; MigrateError when the graph has several."""
    heads = graph.heads
    if len(heads) != 1:
        raise MigrateError(f"several heads ({', '.join(heads)}): name the start with --from")
    return heads[0]
