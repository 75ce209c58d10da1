"""The revision graph read from the project's files, without Alembic.

The only module of ``revisions`` that reads files (never a database): goose
files by directory listing plus each file's optional ``-- llm-proxy: after``
line, and Python revisions by a literal reading of their ``revision`` /
``down_revision`` / ``depends_on`` assignments. Whenever a Python revision is
too clever to read literally, ``python_nodes`` returns None and callers fall
back to Alembic's own loader, so this path can be wrong only by being absent.
"""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from llm_proxy.errors import StateConflict
from llm_proxy.goose import directives
from llm_proxy.goose import files as goose_files

from .graph import AFTER_MARKER, Graph, Node

_MARKER_SCAN_BYTES = 8192
# The other `-- llm-proxy:` words a file's leading comments may hold (not parents).
OTHER_WORDS = (
    directives.LOCK_TIMEOUT,
    directives.STATEMENT_TIMEOUT,
    directives.ALLOW,
    directives.BASELINE,
)


def read_after_marker(path: Path) -> tuple[str, ...] | None:
    """The revisions a goose file's ``-- llm-proxy: after REV[, REV]`` line names,
    or None without one. Only the comment block before the first statement is
    read (goose ignores comments there), so big data files cost nothing."""
    marker_prefix = AFTER_MARKER.split(":")[0]  # "-- llm-proxy"
    found: tuple[str, ...] | None = None
    try:
        # Most files have no marker: a raw read of the head settles that cheaply
        # (every start with nothing to do lists all files).
        descriptor = os.open(path, os.O_RDONLY)
        try:
            head = os.read(descriptor, _MARKER_SCAN_BYTES)
        finally:
            os.close(descriptor)
        if b"llm-proxy" not in head and len(head) < _MARKER_SCAN_BYTES:
            return None
        with path.open(encoding="utf-8") as handle:
            for number, raw in enumerate(handle, start=1):
                line = raw.lstrip("\ufeff").strip()
                if line and not line.startswith("--"):
                    break
                if "+goose" in line:
                    if "statementbegin" in line.lower().replace(" ", ""):
                        break
                    continue
                if not line.replace(" ", "").startswith(marker_prefix.replace(" ", "") + ":"):
                    continue
                if line.split(":", 1)[1].split(maxsplit=1)[:1] in ([w] for w in OTHER_WORDS):
                    continue  # a per-file setting or a lint allow, not a parent
                if found is not None:
                    raise goose_files.MigrationFileError(
                        f"{path}:{number}: a second '{AFTER_MARKER}' line (name every parent "
                        "on one line)"
                    )
                found = _marker_revisions(path, number, line)
    except UnicodeDecodeError:
        return None  # the parser reports undecodable files when the file runs
    except OSError as exc:
        raise goose_files.MigrationFileError(f"{path}: cannot read: {exc.strerror}") from None
    return found


def _marker_revisions(path: Path, number: int, line: str) -> tuple[str, ...]:
    directive = line.split(":", 1)[1].strip()
    word, _, rest = directive.partition(" ")
    revisions = tuple(r for r in rest.replace(",", " ").split() if r)
    if word != "after" or not revisions:
        raise goose_files.MigrationFileError(
            f"{path}:{number}: expected '{AFTER_MARKER} REVISION[, REVISION...]', got {line!r}"
        )
    return revisions


def goose_nodes(
    migration_files: Iterable[goose_files.MigrationFile], converted: Iterable[Node] = ()
) -> list[Node]:
    """goose files as graph nodes. A file's parent is the previous file (or converted
    file: a Python revision written from a goose file), unless its ``-- llm-proxy:
    after`` line names its parents (docs/revision-graph.md). A file a converted
    revision replaces is no node of its own."""
    replaced = {node.revision: node for node in converted if node.converted_file}
    nodes = []
    previous: str | None = None
    by_version = sorted(
        [*migration_files, *replaced.values()],
        key=lambda item: item.goose_version if isinstance(item, Node) else item.version,
    )
    for migration_file in by_version:
        if isinstance(migration_file, Node) or migration_file.revision in replaced:
            previous = migration_file.revision
            continue
        after = read_after_marker(migration_file.path)
        parents = after if after is not None else ((previous,) if previous else ())
        nodes.append(
            Node(
                revision=migration_file.revision,
                parents=parents,
                goose_version=migration_file.version,
                name=migration_file.name,
            )
        )
        previous = migration_file.revision
    return nodes


_ASSIGNMENT = re.compile(
    r"^(revision|down_revision|depends_on|branch_labels|goose_version|goose_file)\s*(?::[^=\n]+)?=\s*(.+?)\s*$",
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
    goose_version, goose_file = found.get("goose_version"), found.get("goose_file")
    if goose_version is not None or goose_file is not None:
        if not isinstance(goose_version, int) or not isinstance(goose_file, str):
            return None
        return converted_node(revision, parents, dependencies, goose_version, goose_file, path)
    return Node(revision=revision, parents=parents, dependencies=dependencies, name=path.name)


def converted_node(
    revision: str,
    parents: tuple[str, ...],
    dependencies: tuple[str, ...],
    goose_version: int,
    goose_file: str,
    path: Path,
) -> Node:
    """A Python revision written from a goose file: in the graph it is that file
    (same version and name), so plans, `status` and goose's rows stay the same."""
    return Node(
        revision=revision,
        parents=parents,
        dependencies=dependencies,
        goose_version=goose_version,
        name=goose_file,
        converted_file=path.name,
    )


_CONVERTED_DIALECT = re.compile(r"^goose_dialect = '(\w+)'$", re.MULTILINE)


def converted_dialect(path: Path) -> str | None:
    """The dialect a converted goose file's statements were written for (its
    ``goose_dialect`` line), None when it names none or cannot be read."""
    try:
        found = _CONVERTED_DIALECT.search(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return None
    return found.group(1) if found else None


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


def literal_graph(
    migration_files: Sequence[goose_files.MigrationFile], versions_dir: Path
) -> Graph | None:
    """The full revision graph without Alembic, or None when it cannot be built so
    (a Python revision needs Alembic to read it, or the graph is broken: Alembic's
    loader then reports it in its own words)."""
    python = python_nodes(versions_dir)
    if python is None:
        return None
    try:
        return Graph.build([*goose_nodes(migration_files, python), *python])
    except StateConflict:
        return None
