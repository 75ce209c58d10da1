"""goose files as Alembic revisions, in one ScriptDirectory with the Python ones.

Each goose file becomes an in-memory Alembic ``Script`` whose revision id is
the file's version number (``00001``, whatever the name's padding), whose
parent is the previous goose file (or what its ``-- llm-proxy: after`` line
names) and whose docstring is the description (see ``runner.revision_module``).
No .py file is generated. A Python revision naming a goose file by another
spelling of its number (``down_revision = "1"``) is given the file's id, as
the graph resolved it, before Alembic maps the revisions.

Two ways in: an llm-proxy command already loaded the graph and the goose
files (``for_run``: nothing is read or checked twice); the stock ``alembic``
command starts from its Config (``attach_goose_directory``: the files are
read and the combined graph checked once, then kept on the directory).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llm_proxy.dialects import Dialect
from llm_proxy.errors import LlmProxyError
from llm_proxy.goose import files as goose_files
from llm_proxy.goose.migration import GooseMigration
from llm_proxy.revisions import sources
from llm_proxy.revisions.graph import Graph, Node

from . import alembic_api, converted
from .runner import goose_of, revision_module

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import Script, ScriptDirectory

    from .run import Run

# On a ScriptDirectory llm-proxy attached goose files to: how to load, and what was loaded.
_LOADER_ATTRIBUTE = "llm_proxy_loader"


@dataclass
class Loaded:
    """What a ScriptDirectory holds once read: both kinds of revision and their graph."""

    goose: list[GooseMigration]
    python: list[Script]
    graph: Graph
    # The stock command's goose directory and the dialect it was chosen for.
    goose_directory: Path | None = None
    dialect: Dialect | None = None

    @cached_property
    def scripts(self) -> list[Script]:
        return [*goose_scripts(self.goose, self.graph), *_as_resolved(self.python, self.graph)]


def python_nodes(scripts: Iterable[Any]) -> list[Node]:
    """Graph nodes of Alembic's Python revisions (a converted goose file stands for
    its goose file: see sources.converted_node)."""
    nodes = []
    for script in scripts:
        parents = _as_tuple(script.down_revision)
        dependencies = _as_tuple(script.dependencies)
        module = getattr(script, "module", None)
        goose_version = getattr(module, converted.GOOSE_VERSION, None)
        if isinstance(goose_version, int):
            goose_file = str(getattr(module, converted.GOOSE_FILE, Path(script.path).name))
            nodes.append(
                sources.converted_node(
                    script.revision,
                    parents,
                    dependencies,
                    goose_version,
                    goose_file,
                    Path(script.path),
                )
            )
            continue
        nodes.append(
            Node(
                revision=script.revision,
                parents=parents,
                dependencies=dependencies,
                name=Path(script.path).name,
            )
        )
    return nodes


def _as_tuple(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """Alembic allows None, one revision id or a sequence of them."""
    if not value:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def _as_resolved(python: list[Script], graph: Graph) -> list[Script]:
    """The Python revisions with the parents and dependencies the graph resolved
    (a goose file named by another spelling of its number gets the file's id)."""
    for script in python:
        node = graph.nodes[script.revision]
        if _as_tuple(script.down_revision) != node.parents:
            script.down_revision = _scalar(node.parents)
        if _as_tuple(script.dependencies) != node.dependencies:
            script.dependencies = _scalar(node.dependencies)
    return python


def _scalar(revisions: tuple[str, ...]) -> str | tuple[str, ...] | None:
    """Alembic's own shape: None, one id, or a tuple of them."""
    return None if not revisions else revisions[0] if len(revisions) == 1 else revisions


def build_graph(goose: Sequence[GooseMigration], python: Sequence[Any]) -> Graph:
    """The one revision graph of goose files and Alembic's Python revisions."""
    python_graph_nodes = python_nodes(python)
    goose_graph_nodes = sources.goose_nodes([m.file for m in goose], python_graph_nodes)
    return Graph.build([*goose_graph_nodes, *python_graph_nodes])


def not_converted(goose: Iterable[GooseMigration], graph: Graph) -> list[GooseMigration]:
    """The goose files that are revisions of their own: not replaced by a Python
    revision `migrate convert` wrote (the .sql may stay for goose's sake)."""
    return [m for m in goose if not graph.nodes[m.revision].converted_file]


def goose_scripts(goose: Iterable[GooseMigration], graph: Graph) -> list[Script]:
    """One Alembic Script per goose file, with the parents the graph gives it."""
    from alembic.script import Script

    return [
        Script(revision_module(m, graph.nodes[m.revision].parents), m.revision, m.path)
        for m in goose
    ]


def _attach(directory: ScriptDirectory, load: Callable[[], Loaded]) -> ScriptDirectory:
    """Make `directory` see the revisions `load` returns (read on first use, once)."""
    from alembic.script.revision import RevisionMap

    kept: list[Loaded] = []

    def once() -> Loaded:
        if not kept:
            kept.append(load())
        return kept[0]

    directory.revision_map = RevisionMap(lambda: once().scripts)
    setattr(directory, _LOADER_ATTRIBUTE, once)
    return directory


def loaded(directory: ScriptDirectory) -> Loaded:
    """The revisions and graph of a directory llm-proxy attached goose files to
    (read once, whoever asks first); for any other directory, its Python
    revisions alone."""
    once = getattr(directory, _LOADER_ATTRIBUTE, None)
    if once is not None:
        return once()
    python = alembic_api.load_python_scripts(directory)
    return Loaded([], python, Graph.build(python_nodes(python)))


def plain_directory(config: Config) -> ScriptDirectory:
    """Alembic's own ScriptDirectory for the Config, without goose files."""
    from alembic.script import ScriptDirectory

    return alembic_api.original_from_config()(ScriptDirectory, config)


def python_scripts(config: Config) -> list[Script]:
    """The Python revisions of alembic/versions, imported by Alembic."""
    return alembic_api.load_python_scripts(plain_directory(config))


def for_run(run: Run, config: Config) -> ScriptDirectory:
    """The directory of an llm-proxy command: the goose files and graph it loaded,
    and the Python revisions (imported now unless the command has them)."""
    directory = plain_directory(config)
    goose = list(run.goose.values())

    def load() -> Loaded:
        if run.python_scripts is None:
            run.python_scripts = alembic_api.load_python_scripts(directory)
        return Loaded(goose, run.python_scripts, run.graph)

    return _attach(directory, load)


def attach_goose_directory(
    directory: ScriptDirectory, goose_dir: Path, dialect: Dialect, *, retired: bool = False
) -> ScriptDirectory:
    """The stock `alembic` command's directory, with the goose files of `goose_dir`
    (those of `dialect`). Problems are CommandErrors: what the stock command
    prints as one line. `retired` (goose_retired): a goose file left is refused,
    as llm-proxy refuses it (it would write goose's rows)."""
    from alembic.util import CommandError

    def load() -> Loaded:
        try:
            goose = [GooseMigration(f) for f in goose_files.discover(goose_dir)]
            python = alembic_api.load_python_scripts(directory)
            # Checked before Alembic sees it: Alembic reports an unknown parent
            # with a traceback, and knows nothing of goose order.
            graph = build_graph(goose, python)
            remaining = not_converted(goose, graph)
            if retired and remaining:
                raise CommandError(
                    f"{remaining[0].path}: still a goose file, but goose_retired = true: "
                    "convert it (`llm-proxy migrate convert`) or set goose_retired = false"
                )
            return Loaded(remaining, python, graph, goose_dir, dialect)
        except LlmProxyError as exc:
            raise CommandError(str(exc)) from None

    return _attach(directory, load)


def file_paths(loaded_revisions: Loaded) -> dict[str, Path]:
    """Every revision's file, by revision id."""
    paths = {m.revision: m.path for m in loaded_revisions.goose}
    paths.update({s.revision: Path(s.path) for s in loaded_revisions.python})
    return paths


__all__ = [
    "Loaded",
    "attach_goose_directory",
    "build_graph",
    "file_paths",
    "for_run",
    "goose_of",
    "loaded",
    "not_converted",
    "python_scripts",
]
