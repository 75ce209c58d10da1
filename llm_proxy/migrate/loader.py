"""goose files -> Alembic Script objects, built in memory.

Each goose file becomes a revision whose id is the version prefix as written
(``00001``), whose parent is the previous goose file (or the revisions its
``-- llm-proxy: after`` line names, docs/revision-graph.md), and whose docstring
is the description. Its upgrade()/downgrade() run the parsed statements and keep
goose_db_version as goose would, inside the migration's transaction.
"""

from __future__ import annotations

import os
import types
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llm_proxy.errors import MigrationError, StatementFailed, reason
from llm_proxy.goose import files as goose_files
from llm_proxy.goose import version_table

from . import journal
from .state import AFTER_MARKER, Node, StateConflict

if TYPE_CHECKING:
    from alembic.script import Script, ScriptDirectory

    from llm_proxy.goose.parser import ParsedMigration

# Marks a Script as goose-backed; other code tests for it rather than for a type.
GOOSE_FILE_ATTR = "goose_file"
SCHEMA_OPTION = "llm_proxy_goose_schema"
SKIPPED_OPTION = "llm_proxy_skipped_revisions"  # goose revisions passed over, not run
# goose versions goose_db_version had as applied when the run began (read under
# the lock by env.py); saves a query per migration. Absent: ask the table.
GOOSE_APPLIED_OPTION = "llm_proxy_goose_applied"


class GooseMigration:
    """The runnable side of one goose file: parsed lazily, run through Alembic's context."""

    def __init__(self, migration_file: goose_files.MigrationFile) -> None:
        self.file = migration_file
        self._parsed: tuple[ParsedMigration, ParsedMigration] | None = None

    def parsed(self) -> tuple[ParsedMigration, ParsedMigration]:
        # Parsed when first needed, with the environment of that moment (ENVSUB).
        if self._parsed is None:
            try:
                text = self.file.path.read_text(encoding="utf-8")
            except UnicodeDecodeError as exc:
                raise MigrationError(
                    f"{self.file.path}: not valid UTF-8 (byte {exc.start})"
                ) from None
            except OSError as exc:
                raise MigrationError(f"{self.file.path}: cannot read: {exc.strerror}") from None
            from llm_proxy.goose.parser import GooseParseError, parse_sections

            try:
                self._parsed = parse_sections(text)
            except GooseParseError as exc:
                raise MigrationError(str(exc.with_path(str(self.file.path)))) from None
        return self._parsed

    def upgrade(self) -> None:
        self._run("up")

    def downgrade(self) -> None:
        self._run("down")

    def _run(self, direction: str) -> None:
        from alembic import op

        context = op.get_context()
        up, down = self.parsed()
        migration = up if direction == "up" else down
        dialect = context.dialect.name
        schema = context.opts.get(SCHEMA_OPTION)
        version = self.file.version
        record = (
            version_table.insert_sql(dialect, version, schema)
            if direction == "up"
            else version_table.delete_sql(dialect, version, schema)
        )
        if context.as_sql:
            for statement in migration.statements:
                context.impl.static_output(_terminated(statement))
            context.impl.static_output(record + ";")
            return

        connection = context.connection
        assert connection is not None
        # goose's rows win: a version goose already applied (or already rolled
        # back) is not run a second time, Alembic's pointer just moves past it.
        known = context.opts.get(GOOSE_APPLIED_OPTION)
        applied = (
            version in known
            if known is not None
            else is_goose_applied(connection, dialect, version, schema)
        )
        if applied == (direction == "up"):
            context.opts.setdefault(SKIPPED_OPTION, set()).add(self.file.version_text)
            return
        if migration.use_tx:
            self._execute_all(connection, migration.statements, dialect, direction)
            _driver_execute(context.connection, record)
            return
        # Outside a transaction each statement commits alone: keep a marker of
        # how far it got, so a run stopped part-way shows in `status`.
        revision = self.file.version_text
        total = len(migration.statements)
        with context.autocommit_block():
            for sql in journal.partial_start_sql(dialect, revision, direction, total, schema):
                _driver_execute(context.connection, sql)

            def progress(done: int) -> None:
                sql = journal.partial_progress_sql(dialect, revision, done, schema)
                _driver_execute(context.connection, sql)

            self._execute_all(
                context.connection, migration.statements, dialect, direction, progress
            )
        _driver_execute(context.connection, record)
        _driver_execute(context.connection, journal.partial_clear_sql(dialect, revision, schema))

    def _execute_all(
        self,
        connection: Any,
        statements: Iterable[str],
        dialect: str,
        direction: str,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        # The DBAPI cursor of the migration's own connection (same transaction):
        # no parameters are passed, so no driver treats % or : as placeholders,
        # and thousands of statements skip SQLAlchemy's per-call overhead.
        cursor = connection.connection.driver_connection.cursor()
        try:
            for number, statement in enumerate(statements, start=1):
                try:
                    for piece in _split_for_driver(statement, dialect):
                        cursor.execute(piece)
                    if progress is not None:
                        progress(number)
                except MigrationError:
                    raise
                except Exception as exc:  # the driver's own error, with our context
                    raise StatementFailed(
                        file_name=self.file.name,
                        direction=direction,
                        number=number,
                        statement=statement,
                        reason=reason(exc),
                    ) from exc
        finally:
            cursor.close()


def _driver_execute(connection: Any, sql: str) -> None:
    """One statement on the DBAPI connection under a SQLAlchemy Connection, in its
    transaction, without SQLAlchemy's per-call overhead."""
    cursor = connection.connection.driver_connection.cursor()
    try:
        cursor.execute(sql)
    finally:
        cursor.close()


def _terminated(statement: str) -> str:
    return statement if statement.rstrip().endswith(";") else statement + ";"


def _split_for_driver(statement: str, dialect: str) -> list[str]:
    """Python's sqlite3 runs one statement per call; goose's SQLite driver runs a
    StatementBegin block with several statements at once. Split such a block at
    the boundaries SQLite itself recognises (triggers' inner semicolons stay)."""
    if dialect != "sqlite" or statement.count(";") <= 1:
        return [statement]
    import sqlite3

    pieces: list[str] = []
    buffer: list[str] = []
    for line in statement.splitlines(keepends=True):
        buffer.append(line)
        candidate = "".join(buffer)
        if sqlite3.complete_statement(candidate):
            pieces.append(candidate.strip())
            buffer = []
    rest = "".join(buffer).strip()
    if rest:
        pieces.append(rest)
    return [piece for piece in pieces if piece]


def is_goose_applied(connection: Any, dialect: str, version: int, schema: str | None) -> bool:
    table = version_table._qualified(dialect, schema)
    row = connection.exec_driver_sql(
        f"SELECT is_applied FROM {table} WHERE version_id = {int(version)} ORDER BY id DESC LIMIT 1"
    ).first()
    return bool(row and row[0])


_MARKER_SCAN_BYTES = 8192


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


def goose_nodes(migration_files: Iterable[goose_files.MigrationFile]) -> list[Node]:
    """goose files as graph nodes. A file's parent is the previous file, unless
    its ``-- llm-proxy: after`` line names its parents (docs/revision-graph.md)."""
    nodes = []
    previous: str | None = None
    for migration_file in migration_files:
        after = read_after_marker(migration_file.path)
        parents = after if after is not None else ((previous,) if previous else ())
        nodes.append(
            Node(
                revision=migration_file.version_text,
                parents=parents,
                goose_version=migration_file.version,
                name=migration_file.name,
            )
        )
        previous = migration_file.version_text
    return nodes


def goose_module(
    migration_file: goose_files.MigrationFile, down_revision: str | tuple[str, ...] | None
) -> types.ModuleType:
    """A module object shaped like an Alembic revision file."""
    runner = GooseMigration(migration_file)
    module = types.ModuleType(f"llm_proxy_goose_revision_{migration_file.version_text}")
    module.__doc__ = migration_file.description or migration_file.name
    module.__file__ = str(migration_file.path)
    module.revision = migration_file.version_text  # type: ignore[attr-defined]
    module.down_revision = down_revision  # type: ignore[attr-defined]
    module.branch_labels = None  # type: ignore[attr-defined]
    module.depends_on = None  # type: ignore[attr-defined]
    module.upgrade = runner.upgrade  # type: ignore[attr-defined]
    module.downgrade = runner.downgrade  # type: ignore[attr-defined]
    setattr(module, GOOSE_FILE_ATTR, migration_file)
    return module


def goose_scripts(script_dir: ScriptDirectory, goose_dir: Path) -> list[Script]:
    """One Script per goose file, chained in version order (see goose_nodes)."""
    from alembic.script import Script

    scripts = []
    migration_files = goose_files.discover(goose_dir)
    for migration_file, node in zip(migration_files, goose_nodes(migration_files), strict=True):
        parents = node.parents
        down_revision = None if not parents else parents[0] if len(parents) == 1 else parents
        module = goose_module(migration_file, down_revision)
        scripts.append(Script(module, migration_file.version_text, migration_file.path))
    return scripts


def combined_loader(
    script_dir: ScriptDirectory,
    goose_dir: Path,
    python_loader: Callable[[], Iterable[Script]],
) -> Callable[[], list[Script]]:
    """A revision source for RevisionMap: goose revisions, then Alembic's own .py
    revisions. Loaded once and kept, so graph checks reuse what Alembic read."""
    loaded: list[Script] = []

    def load() -> list[Script]:
        if not loaded:
            from alembic.util import CommandError

            try:
                goose = goose_scripts(script_dir, goose_dir)
            except goose_files.MigrationFileError as exc:
                # CommandError is what the stock `alembic` CLI prints as one line.
                raise CommandError(str(exc)) from None
            python = list(python_loader())
            goose_ids = {s.revision: s for s in goose}
            for script in python:
                if script.revision in goose_ids:
                    raise CommandError(
                        f"revision id {script.revision!r} is used twice: "
                        f"{Path(goose_ids[script.revision].path).name} and "
                        f"{Path(script.path).name}"
                    )
            # Check the whole graph before Alembic sees it: Alembic reports an
            # unknown parent with a traceback, and knows nothing of goose order.
            from .shim import graph_from_scripts

            try:
                graph_from_scripts([*goose, *python])
            except StateConflict as exc:
                raise CommandError(str(exc)) from None
            loaded.extend(goose)
            loaded.extend(python)
        return loaded

    return load


def is_goose_script(script: Any) -> bool:
    return hasattr(getattr(script, "module", None), GOOSE_FILE_ATTR)


def goose_file_of(script: Any) -> goose_files.MigrationFile | None:
    return getattr(getattr(script, "module", None), GOOSE_FILE_ATTR, None)


def attach_goose_directory(script_dir: ScriptDirectory, goose_dir: Path) -> ScriptDirectory:
    """Make an existing ScriptDirectory see the goose files as revisions too."""
    from alembic.script import revision

    load = combined_loader(script_dir, goose_dir, script_dir._load_revisions)
    script_dir.revision_map = revision.RevisionMap(load)
    script_dir.goose_directory = goose_dir  # type: ignore[attr-defined]
    script_dir.all_scripts = load  # type: ignore[attr-defined]
    return script_dir


def all_scripts(script_dir: ScriptDirectory) -> list[Script]:
    """Every revision as loaded, duplicates included (RevisionMap hides them)."""
    loader = getattr(script_dir, "all_scripts", None)
    return list(loader() if loader else script_dir._load_revisions())
