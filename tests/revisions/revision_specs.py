"""Small revision graphs written as one line of text, for the table-driven tests.

A spec is whitespace-separated tokens, one per revision::

    ID                goose file if ID is all digits, else a Python revision
    ID<P1,P2          parents (down_revision / the `after` line); `ID<` means none
    ID<P1|D1,D2       parents, then depends_on
    py:ID...          a Python revision whose id is all digits

A goose token without `<` follows the goose token before it (rule 2 of
docs/revision-graph.md); a Python token without `<` is a root. Goose files are
named `ID.sql` and Python revisions `ID.py`, so messages are easy to match.
"""

from __future__ import annotations

from collections.abc import Iterable

from llm_proxy.revisions.graph import Graph, Node
from llm_proxy.revisions.reconcile import DatabaseView, reconcile

PYTHON_PREFIX = "py:"


def _ids(text: str) -> tuple[str, ...]:
    return tuple(part for part in text.split(",") if part)


def nodes(spec: str) -> list[Node]:
    """The nodes a spec describes, in the order written."""
    result: list[Node] = []
    previous_goose: str | None = None
    for token in spec.split():
        forced_python = token.startswith(PYTHON_PREFIX)
        if forced_python:
            token = token[len(PYTHON_PREFIX) :]
        revision, marker, rest = token.partition("<")
        parents_text, _, dependencies_text = rest.partition("|")
        is_goose = revision.isdigit() and not forced_python
        if marker:
            parents = _ids(parents_text)
        elif is_goose and previous_goose is not None:
            parents = (previous_goose,)
        else:
            parents = ()
        result.append(
            Node(
                revision=revision,
                parents=parents,
                dependencies=_ids(dependencies_text),
                goose_version=int(revision) if is_goose else None,
                name=f"{revision}.sql" if is_goose else f"{revision}.py",
            )
        )
        if is_goose:
            previous_goose = revision
    return result


def graph(spec: str) -> Graph:
    return Graph.build(nodes(spec))


def ids(text: str) -> tuple[str, ...]:
    """'a b c' -> ('a', 'b', 'c'): expected tuples of revision ids, written short."""
    return tuple(text.split())


def view_of(
    spec_or_graph: str | Graph,
    goose: Iterable[int] = (),
    alembic: Iterable[str] = (),
    current: int | None = None,
) -> DatabaseView:
    """The reconciled view of a database with these goose versions applied and
    these alembic_version rows; goose's current version defaults to the highest."""
    built = graph(spec_or_graph) if isinstance(spec_or_graph, str) else spec_or_graph
    applied = tuple(goose)
    if current is None:
        current = max(applied, default=0)
    return reconcile(built, applied, current, tuple(alembic))
