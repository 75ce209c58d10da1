"""goose files -> Alembic Script objects, built in memory.

Each goose file becomes a revision whose id is the version prefix as written
(``00001``), whose parent is the previous goose file, and whose docstring is
the description. Its upgrade()/downgrade() run the parsed statements and keep
goose_db_version as goose would, inside the migration's transaction.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llm_proxy.goose import files as goose_files
from llm_proxy.goose import version_table
from llm_proxy.goose.parser import GooseParseError, ParsedMigration, parse_sections

if TYPE_CHECKING:
    from alembic.script import Script, ScriptDirectory

# Marks a Script as goose-backed; other code tests for it rather than for a type.
GOOSE_FILE_ATTR = "goose_file"
SCHEMA_OPTION = "llm_proxy_goose_schema"
SKIPPED_OPTION = "llm_proxy_skipped_revisions"  # goose revisions passed over, not run


class MigrationError(RuntimeError):
    """A migration that failed; the message names the file and the statement."""


def _first_line(text: str, limit: int = 120) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


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
        if is_goose_applied(connection, dialect, version, schema) == (direction == "up"):
            context.opts.setdefault(SKIPPED_OPTION, set()).add(self.file.version_text)
            return
        if migration.use_tx:
            self._execute_all(connection, migration.statements, dialect)
        else:
            with context.autocommit_block():
                self._execute_all(context.connection, migration.statements, dialect)
        context.connection.exec_driver_sql(record)

    def _execute_all(self, connection: Any, statements: Iterable[str], dialect: str) -> None:
        for number, statement in enumerate(statements, start=1):
            try:
                for piece in _split_for_driver(statement, dialect):
                    connection.exec_driver_sql(piece, execution_options={"no_parameters": True})
            except Exception as exc:  # the driver's own error, reported with our context
                reason = getattr(exc, "orig", None) or exc
                raise MigrationError(
                    f"{self.file.name}: statement {number} failed: "
                    f"{_first_line(str(reason))} (statement: {_first_line(statement)})"
                ) from exc


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


def goose_module(
    migration_file: goose_files.MigrationFile, down_revision: str | None
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
    """One Script per goose file, chained in version order."""
    from alembic.script import Script

    scripts = []
    previous: str | None = None
    for migration_file in goose_files.discover(goose_dir):
        module = goose_module(migration_file, previous)
        scripts.append(Script(module, migration_file.version_text, migration_file.path))
        previous = migration_file.version_text
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
