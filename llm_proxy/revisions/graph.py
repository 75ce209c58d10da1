"""The revision graph: goose files and Python revisions as plain data (pure).

Alembic has a graph of its own (RevisionMap) for running revisions; this one
is what every command plans with, built without importing Alembic so that the
no-op path stays cheap. A goose file's parents are the previous goose file,
or the revisions its ``-- llm-proxy: after`` line names; Python revisions
name theirs in ``down_revision`` / ``depends_on``.

A goose file is known by its version number: a reference (or a stored
alembic_version row) that spells the number otherwise (``1``, ``001`` for
``00001``) means that file. An id spelled like it but defined by a Python
revision means that revision.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from llm_proxy.errors import StateConflict

# The comment line in a goose file that names its parents (docs/revision-graph.md);
# goose reads it as a comment.
AFTER_MARKER = "-- llm-proxy: after"
# alembic_version.version_num is VARCHAR(32) (Alembic's DDL): PostgreSQL and MySQL
# refuse a longer id mid-run, SQLite stores it silently; refused up front alike.
MAX_REVISION_ID = 32


@dataclass(frozen=True)
class Node:
    """One revision: its parents, its dependencies and, for a goose file, its version."""

    revision: str
    parents: tuple[str, ...]  # down_revision(s): what alembic_version tracks
    dependencies: tuple[str, ...] = ()  # depends_on: must be applied first, not tracked
    goose_version: int | None = None  # set for goose revisions
    name: str = ""  # file name shown to users
    # A Python revision `migrate convert` wrote from a goose file: its own file name
    # (it has the goose file's version, and `name` is the goose file's).
    converted_file: str = ""


@dataclass(frozen=True)
class Graph:
    """Every revision, by id, and an order in which they can be applied."""

    nodes: Mapping[str, Node]
    order: tuple[str, ...]  # a topological order, parents first (goose by version)

    @classmethod
    def build(cls, nodes: Iterable[Node]) -> Graph:
        """The graph of `nodes`; StateConflict for an id too long for alembic_version,
        a duplicate id, an unknown parent, a cycle, or goose files out of version order."""
        by_id: dict[str, Node] = {}
        for node in nodes:
            check_id_length(node)
            if node.revision in by_id:
                raise StateConflict(
                    f"revision id {node.revision!r} is used twice: "
                    f"{by_id[node.revision].name} and {node.name}"
                )
            by_id[node.revision] = node
        by_id = _references_by_number(by_id)
        for node in by_id.values():
            for parent in (*node.parents, *node.dependencies):
                if parent not in by_id:
                    where = (
                        f"'{AFTER_MARKER} {parent}'"
                        if node.goose_version is not None
                        else f"down_revision/depends_on {parent!r}"
                    )
                    raise StateConflict(f"{node.name}: {where} names no known revision")
        graph = cls(nodes=by_id, order=_topological(by_id))
        graph._check_goose_order()
        return graph

    def _check_goose_order(self) -> None:
        """goose applies files in version order, so the graph must too: every goose
        file descends from the goose file before it (docs/revision-graph.md, rule 1)."""
        previous: Node | None = None
        for node in sorted(self.goose_revisions(), key=lambda n: n.goose_version or 0):
            if (
                previous is not None
                and node.parents != (previous.revision,)
                and previous.revision not in self.ancestors(node.parents)
            ):
                raise StateConflict(
                    f"{node.name}: '{AFTER_MARKER} {', '.join(node.parents)}' leaves out "
                    f"{previous.name}: a goose file must come after the goose file before it"
                )
            previous = node

    def ancestors(self, revisions: Iterable[str], include_self: bool = True) -> set[str]:
        """Everything `revisions` need applied first (parents and dependencies, transitively)."""
        seen: set[str] = set()
        stack = list(revisions)
        while stack:
            revision = stack.pop()
            node = self.nodes[revision]
            for parent in (*node.parents, *node.dependencies):
                if parent not in seen:
                    seen.add(parent)
                    stack.append(parent)
        if include_self:
            seen.update(revisions)
        return seen

    def descendants(self, revisions: Iterable[str]) -> set[str]:
        """Everything that needs one of `revisions` applied first."""
        targets = set(revisions)
        found: set[str] = set()
        for revision in self.order:
            node = self.nodes[revision]
            if any(p in targets or p in found for p in (*node.parents, *node.dependencies)):
                found.add(revision)
        return found

    def heads_of(self, applied: set[str]) -> tuple[str, ...]:
        """Members of `applied` that no other applied revision names as parent."""
        covered = {p for r in applied for p in self.nodes[r].parents}
        return tuple(r for r in self.order if r in applied and r not in covered)

    @property
    def heads(self) -> tuple[str, ...]:
        """Revisions no other revision names as parent."""
        return self.heads_of(set(self.nodes))

    def newest_goose_below(self) -> dict[str, int]:
        """For each revision, the highest goose version among its ancestors (0 if
        none): the goose version a Python revision was written against."""
        newest: dict[str, int] = {}
        for revision in self.order:
            node = self.nodes[revision]
            below = [
                max(newest[p], self.nodes[p].goose_version or 0)
                for p in (*node.parents, *node.dependencies)
            ]
            newest[revision] = max(below, default=0)
        return newest

    def python_tips(self, revision: str) -> tuple[str, ...]:
        """The ends of the Python revisions grown on `revision`: what a goose file
        written next must come after. `(revision,)` when nothing grows on it."""
        children: dict[str, list[str]] = {}
        for node in self.nodes.values():
            for parent in node.parents:
                children.setdefault(parent, []).append(node.revision)
        grown: set[str] = set()
        stack = [revision]
        while stack:
            for child in children.get(stack.pop(), ()):
                if self.nodes[child].goose_version is None and child not in grown:
                    grown.add(child)
                    stack.append(child)
        tips = tuple(
            r for r in self.order if r in grown and not any(c in grown for c in children.get(r, ()))
        )
        return tips or (revision,)

    def canonical(self, revision: str) -> str | None:
        """The id `revision` means here: itself when a revision has that id, else the
        goose file whose version it spells (``"1"`` for ``"00001"``); None if neither."""
        return _canonical(self.nodes, self.by_goose_version(), revision)

    def respellings(self, revisions: Iterable[str]) -> dict[str, str]:
        """Those of `revisions` (ids a database recorded) that spell a goose version
        otherwise than its id, mapped to the id."""
        by_version = self.by_goose_version()
        found = {r: _canonical(self.nodes, by_version, r) for r in revisions}
        return {r: c for r, c in found.items() if c is not None and c != r}

    def goose_revisions(self) -> list[Node]:
        """The goose files' nodes, in graph order."""
        return [n for n in (self.nodes[r] for r in self.order) if n.goose_version is not None]

    def by_goose_version(self) -> dict[int, str]:
        """Revision id of each goose version."""
        return {n.goose_version: n.revision for n in self.goose_revisions()}  # type: ignore[misc]


def check_id_length(node: Node) -> None:
    """StateConflict when `node`'s id cannot be stored in alembic_version."""
    if len(node.revision) > MAX_REVISION_ID:
        raise StateConflict(
            f"{node.name}: revision id {node.revision!r} is {len(node.revision)} characters; "
            f"alembic_version holds at most {MAX_REVISION_ID}: choose a shorter id"
        )


def _number(text: str) -> int | None:
    """The version `text` spells, if it is ASCII digits (goose's version syntax)."""
    return int(text) if text.isascii() and text.isdigit() else None


def _canonical(nodes: Mapping[str, Node], by_version: Mapping[int, str], text: str) -> str | None:
    if text in nodes:
        return text
    number = _number(text)
    return by_version.get(number) if number is not None else None


def _references_by_number(nodes: dict[str, Node]) -> dict[str, Node]:
    """Every parent and dependency that names a goose file by another spelling of
    its version, replaced by the file's id; unknown names are left for the check."""
    by_version = {
        n.goose_version: n.revision for n in nodes.values() if n.goose_version is not None
    }

    def resolved(references: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_canonical(nodes, by_version, r) or r for r in references)

    result = {}
    for revision, node in nodes.items():
        parents, dependencies = resolved(node.parents), resolved(node.dependencies)
        if (parents, dependencies) != (node.parents, node.dependencies):
            node = replace(node, parents=parents, dependencies=dependencies)
        result[revision] = node
    return result


def _topological(nodes: Mapping[str, Node]) -> tuple[str, ...]:
    # Kahn's algorithm; ties broken by goose version, then revision id, so the
    # order is stable and goose files keep their version order.
    def key(revision: str) -> tuple[int, int, str]:
        version = nodes[revision].goose_version
        return (0 if version is not None else 1, version or 0, revision)

    indegree = {r: len(set(n.parents) | set(n.dependencies)) for r, n in nodes.items()}
    children: dict[str, list[str]] = {r: [] for r in nodes}
    for r, n in nodes.items():
        for parent in set(n.parents) | set(n.dependencies):
            children[parent].append(r)
    import heapq

    ready = [key(r) for r, d in indegree.items() if d == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        revision = heapq.heappop(ready)[2]
        order.append(revision)
        for child in children[revision]:
            indegree[child] -= 1
            if indegree[child] == 0:
                heapq.heappush(ready, key(child))
    if len(order) != len(nodes):
        cycle = sorted(r for r, d in indegree.items() if d > 0)
        raise StateConflict(f"revision graph has a cycle through {', '.join(cycle)}")
    return tuple(order)
