"""One command's view of the project: its files and revision graph, loaded once,
and the database's recorded state, read on demand.

Every command of the migrate API starts with ``Project.load(settings)``:
the goose directory is listed and the graph built once, without Alembic when
the Python revisions can be read literally. The database is read through the
plain driver (``read_state``) and written only under the migration lock
(``locked``), through Alembic (``run``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llm_proxy.config import Settings
from llm_proxy.db import drivers
from llm_proxy.errors import MigrateError
from llm_proxy.goose import files as goose_files
from llm_proxy.goose.migration import GooseMigration
from llm_proxy.revisions import sources
from llm_proxy.revisions.graph import Graph
from llm_proxy.revisions.plan import name_of
from llm_proxy.revisions.reconcile import DatabaseView, reconcile
from llm_proxy.store import snapshot
from llm_proxy.store.snapshot import Snapshot
from llm_proxy.store.tables import Session, Tables

if TYPE_CHECKING:
    from llm_proxy.bridge.run import Report, Run


@dataclass(frozen=True)
class DatabaseState:
    """What the database records, and the reconciled view every plan starts from."""

    recorded: Snapshot  # revision ids as the graph spells them
    view: DatabaseView
    # Ids the database records in another spelling (an older release's), mapped
    # to the graph's; a command that writes rewrites them under the lock.
    respellings: Mapping[str, str] = field(default_factory=dict)

    @property
    def version(self) -> int:
        """goose's current version."""
        return self.view.goose_current

    @property
    def nothing_to_do(self) -> bool:
        """True when `up` would change nothing, reconciliation included."""
        return (
            not self.view.pending
            and not self.view.unknown_heads
            and not self.respellings
            and self.view.conflict is None
            and tuple(sorted(self.view.alembic_heads)) == self.recorded.alembic_heads
        )


@dataclass
class Project:
    """The loaded project of one command (see the module's docstring)."""

    settings: Settings
    goose: dict[str, GooseMigration]  # by revision id, in version order
    graph: Graph
    python_scripts: list[Any] | None = None  # Alembic's Scripts, once Alembic imported them
    lease: Any = None  # while locked by a lease: the claim the run renews

    @classmethod
    def load(cls, settings: Settings) -> Project:
        """List the goose directory and build the revision graph (once)."""
        _check_directories(settings)
        found = goose_files.discover(settings.migrations_dir)
        goose = {f.revision: GooseMigration(f) for f in found}
        graph = sources.literal_graph(found, settings.versions_dir)
        if graph is not None:
            project = cls(settings, _not_converted(goose, graph), graph)
        else:
            # A Python revision needs Alembic to read it (or the graph is broken and
            # the full load reports it).
            from llm_proxy.bridge import config, scripts

            python = scripts.python_scripts(config.alembic_config(settings))
            graph = scripts.build_graph(list(goose.values()), python)
            project = cls(settings, _not_converted(goose, graph), graph, python)
        project.check_converted_dialects()
        project.check_retired()
        return project

    def check_retired(self) -> None:
        """A retired project writes no goose rows: a goose file still run as one
        would write them, so goose_retired with a goose file left is refused."""
        if not self.settings.goose_retired or not self.goose:
            return
        first = next(iter(self.goose.values()))
        raise MigrateError(
            f"{first.path}: still a goose file, but {self.settings.alembic_ini} says "
            "goose_retired = true: convert it (`llm-proxy migrate convert`) or set "
            "goose_retired = false"
        )

    def check_converted_dialects(self) -> None:
        """Refuse, before anything runs, converted goose files written for another
        database: their statements are that dialect's (goose files may differ per
        dialect, one versions directory holds one conversion)."""
        mine = self.settings.dialect.name
        for revision, node in self.graph.nodes.items():
            if not node.converted_file:
                continue
            path = self.paths[revision]
            wanted = sources.converted_dialect(path)
            if wanted is not None and wanted != mine:
                raise MigrateError(
                    f"{path}: converted from {node.name} for {wanted}, this database is "
                    f"{mine}: run it on {wanted} only (a versions directory holds the "
                    "converted files of one dialect)"
                )

    @property
    def tables(self) -> Tables:
        """Where the bookkeeping tables are (dialect and --schema)."""
        return Tables.of(self.settings)

    @cached_property
    def paths(self) -> dict[str, Path]:
        """Every revision's file, by revision id."""
        paths = {revision: m.path for revision, m in self.goose.items()}
        if self.python_scripts is not None:
            paths.update({s.revision: Path(s.path) for s in self.python_scripts})
        else:
            versions = self.settings.versions_dir
            for revision, node in self.graph.nodes.items():
                if node.goose_version is None or node.converted_file:
                    paths[revision] = versions / (node.converted_file or node.name)
        return paths

    def name_of(self, revision: str) -> str:
        """The file name users know a revision by."""
        return name_of(self.graph, revision)

    # ------------------------------------------------------------ the database

    def session(self, connection: Any) -> Session:
        """A store Session over a DBAPI connection."""
        return Session(drivers.executor(connection), self.tables)

    def read_state(self, connection: Any = None, *, with_journal: bool = True) -> DatabaseState:
        """Both version tables (and ours, unless `with_journal` is False), read at
        once and reconciled, without writing anything. Without `connection` a
        connection is opened for the read (none for a SQLite file not yet made)."""
        settings = self.settings
        if connection is None:
            if settings.dialect.database_missing(settings):
                return self.state_of(Snapshot())
            with drivers.connection(settings) as opened:
                return self.read_state(opened, with_journal=with_journal)
        try:
            recorded = snapshot.read(self.session(connection), with_journal=with_journal)
        finally:
            connection.rollback()  # a locked connection is in transaction mode: end the read
        return self.state_of(recorded)

    def state_of(self, recorded: Snapshot) -> DatabaseState:
        """The reconciled state of what a database records."""
        renames = self.graph.respellings(recorded.revision_ids())
        if renames:
            recorded = recorded.respelled(renames)
        goose = recorded.goose
        view = reconcile(
            self.graph,
            goose.applied.keys(),
            goose.current_version,
            recorded.alembic_heads,
            goose_table=recorded.goose_table,
            goose_retired=self.settings.goose_retired,
        )
        return DatabaseState(recorded, view, renames)

    def rewrite_spellings(self, connection: Any, state: DatabaseState) -> DatabaseState:
        """Under the lock: rewrite ids the database spells otherwise (`state`: as
        just read on `connection`); the state afterwards."""
        if not state.respellings:
            return state
        from llm_proxy.store import respell

        session = self.session(connection)
        respell.rewrite(session, snapshot.read(session), state.respellings)
        connection.commit()
        return self.read_state(connection)

    @contextmanager
    def locked(self, report: Report | None = None) -> Iterator[Any]:
        """The migration lock, and the DBAPI connection that holds it (the one
        every write of the command must run on)."""
        from llm_proxy.db import locks

        settings = self.settings
        lock = locks.for_database(settings)
        try:
            with lock.hold(on_wait=report) as connection:
                self.lease = lock.lease  # chosen once the connection was seen (auto)
                try:
                    yield connection
                finally:
                    self.lease = None
        except Exception as exc:
            # A write outside Alembic (repair's checksums) on a full disk; a connection
            # that broke, waiting or migrating (a pooler restarted, a cluster node gone).
            dialect = settings.dialect
            known = dialect.full_error(settings, exc) or dialect.lost_connection_error(
                settings, exc
            )
            if known is None or isinstance(exc, type(known)):
                raise
            raise known from exc

    def modified(self, state: DatabaseState) -> list[str]:
        """Applied revisions whose file changed since it was applied (checksum differs)."""
        from llm_proxy.store import journal

        # A squashed baseline stands in for files whose checksums the database recorded.
        applied = [
            r for r in self.graph.order if r in state.view.applied and not self._is_baseline(r)
        ]
        return journal.modified(state.recorded.journal, applied, self.paths)

    def _is_baseline(self, revision: str) -> bool:
        migration = self.goose.get(revision)
        return migration is not None and migration.directives.baseline

    # ------------------------------------------------------------ running

    def parse(self, revisions: Iterable[str], direction: str) -> None:
        """Parse every goose file about to run before running any, so a malformed
        file stops the command before the database changes."""
        for revision in revisions:
            migration = self.goose.get(revision)
            if migration is not None:
                migration.section(direction)

    def run(
        self,
        report: Report | None = None,
        locked_connection: Any = None,
        *,
        allow_missing: bool = False,
    ) -> Run:
        """What an Alembic command needs, from what this project loaded."""
        from llm_proxy.bridge.run import Run

        return Run(
            settings=self.settings,
            graph=self.graph,
            goose=self.goose,
            paths=self.paths,
            report=report,
            locked_connection=locked_connection,
            lease=self.lease if locked_connection is not None else None,
            python_scripts=self.python_scripts,
            allow_missing=allow_missing,
        )

    def keep(self, run: Run) -> None:
        """Keep what a run loaded (Alembic's Python revisions) for the next run."""
        if self.python_scripts is None:
            self.python_scripts = run.python_scripts


def _not_converted(goose: dict[str, GooseMigration], graph: Graph) -> dict[str, GooseMigration]:
    """The goose files that run as goose files: a Python revision `migrate convert`
    wrote replaces its file in the graph (the .sql may stay for goose's sake)."""
    return {r: m for r, m in goose.items() if not graph.nodes[r].converted_file}


def _check_directories(settings: Settings) -> None:
    if not settings.migrations_dir.is_dir():
        origin = settings.migrations_dir_source
        where = f" (from {origin})" if origin.startswith("goose_directory") else ""
        raise MigrateError(f"migrations directory not found: {settings.migrations_dir}{where}")
    if not settings.script_location.is_dir():
        raise MigrateError(f"Alembic script directory not found: {settings.script_location}")
