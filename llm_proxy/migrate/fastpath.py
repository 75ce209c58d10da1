"""Answer "is anything pending?" without importing SQLAlchemy or Alembic.

Every server start and every `status` asks it, and importing SQLAlchemy and
Alembic costs many times the interpreter's own start. The revision graph is
rebuilt here from the directory listing (goose files) and a literal reading of
each Python revision's `revision`/`down_revision`/`depends_on` assignments;
the database is read through the plain driver. Whenever a Python revision is
too clever to read literally, `python_nodes` returns None and callers fall
back to Alembic's own loader, so this path can be wrong only by being absent.
"""

from __future__ import annotations

import ast
import os
import re
from dataclasses import dataclass
from pathlib import Path

from llm_proxy import drivers
from llm_proxy.config import Settings
from llm_proxy.goose import files as goose_files

from . import shim
from .loader import goose_nodes
from .state import DatabaseView, Graph, Node, StateConflict

_ASSIGNMENT = re.compile(
    r"^(revision|down_revision|depends_on|branch_labels)\s*(?::[^=\n]+)?=\s*(.+?)\s*$",
    re.MULTILINE,
)


def _as_tuple(value: object) -> tuple[str, ...] | None:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (tuple, list)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


def read_python_revision(path: Path) -> Node | None:
    """The node of one Alembic revision file, read literally; None if it cannot be."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    found: dict[str, object] = {}
    for match in _ASSIGNMENT.finditer(text):
        if match.group(1) in found:
            return None  # assigned twice: only Python can tell which wins
        try:
            found[match.group(1)] = ast.literal_eval(match.group(2))
        except (ValueError, SyntaxError):
            return None
    revision = found.get("revision")
    parents = _as_tuple(found.get("down_revision"))
    dependencies = _as_tuple(found.get("depends_on"))
    labels = _as_tuple(found.get("branch_labels"))
    if not isinstance(revision, str) or parents is None or dependencies is None or labels:
        return None  # branch labels change how ids resolve: leave those to Alembic
    return Node(revision=revision, parents=parents, dependencies=dependencies, name=path.name)


def python_nodes(versions_dir: Path) -> list[Node] | None:
    """Every Python revision in versions/, or None when any needs Alembic to read."""
    try:
        entries = sorted(os.scandir(versions_dir), key=lambda e: e.name)
    except FileNotFoundError:
        return []
    nodes = []
    for entry in entries:
        if entry.is_dir():
            if entry.name != "__pycache__":
                return None  # recursive version locations are Alembic's business
            continue
        if not entry.name.endswith(".py"):
            continue
        node = read_python_revision(Path(entry.path))
        if node is None:
            return None
        nodes.append(node)
    return nodes


def revision_graph(settings: Settings) -> Graph | None:
    """The full revision graph without Alembic, or None when it cannot be built so."""
    python = python_nodes(settings.versions_dir)
    if python is None:
        return None
    migration_files = goose_files.discover(settings.migrations_dir)
    try:
        return Graph.build([*goose_nodes(migration_files), *python])
    except StateConflict:
        return None  # let the full loader report it with its own wording


@dataclass(frozen=True)
class QuickState:
    graph: Graph
    view: DatabaseView
    alembic_heads: tuple[str, ...]

    @property
    def nothing_to_do(self) -> bool:
        """True when `up` would change nothing, reconciliation included."""
        return (
            not self.view.pending
            and not self.view.unknown_heads
            and tuple(sorted(self.view.alembic_heads)) == self.alembic_heads
        )


def database_missing(settings: Settings) -> bool:
    return settings.dialect == "sqlite" and (
        settings.sqlite_path is None or not settings.sqlite_path.exists()
    )


def quick_state(settings: Settings, graph: Graph) -> QuickState:
    """Both version tables read once through the plain driver, reconciled."""
    if database_missing(settings):
        return QuickState(graph, shim.reconcile(graph, (), 0, ()), ())
    with drivers.session(settings) as execute:
        view, heads = shim.database_view(execute, settings.dialect, graph, settings.schema)
    return QuickState(graph, view, heads)
