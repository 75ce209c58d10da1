"""What a goose revision does when Alembic runs it.

Its statements run on the migration's own connection, in Alembic's
transaction for that revision, followed by goose's row change (insert on up,
delete on down), so goose_db_version moves exactly as goose would move it. A
NO TRANSACTION file runs statement by statement, leaving a marker of how far
it got. Offline (--sql) the same statements are written out instead.
"""

from __future__ import annotations

import contextlib
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from llm_proxy.db import drivers
from llm_proxy.errors import MigrationError, StatementFailed
from llm_proxy.goose.migration import GooseMigration
from llm_proxy.store import goose_table, partial_runs

from .run import RUN_KEY, Run

if TYPE_CHECKING:
    from llm_proxy.goose.parser import ParsedMigration

GOOSE_ATTRIBUTE = "llm_proxy_goose"  # on a revision module: its GooseMigration


def revision_module(migration: GooseMigration, parents: tuple[str, ...]) -> types.ModuleType:
    """A module object shaped like an Alembic revision file."""
    module = types.ModuleType(f"llm_proxy_goose_revision_{migration.revision}")
    module.__doc__ = migration.file.description or migration.name
    module.__file__ = str(migration.path)
    module.revision = migration.revision  # type: ignore[attr-defined]
    down = None if not parents else parents[0] if len(parents) == 1 else parents
    module.down_revision = down  # type: ignore[attr-defined]
    module.branch_labels = None  # type: ignore[attr-defined]
    module.depends_on = None  # type: ignore[attr-defined]

    # Alembic logs "Running upgrade ..." from the function's name.
    def upgrade() -> None:
        run_goose(migration, "up")

    def downgrade() -> None:
        run_goose(migration, "down")

    module.upgrade = upgrade  # type: ignore[attr-defined]
    module.downgrade = downgrade  # type: ignore[attr-defined]
    setattr(module, GOOSE_ATTRIBUTE, migration)
    return module


def goose_of(script: Any) -> GooseMigration | None:
    """The goose file behind an Alembic Script, None for a Python revision."""
    return getattr(getattr(script, "module", None), GOOSE_ATTRIBUTE, None)


def run_goose(migration: GooseMigration, direction: str) -> None:
    """Run one direction of a goose file inside the current Alembic migration step."""
    from alembic import op

    context = op.get_context()
    run: Run | None = context.opts.get(RUN_KEY)
    if run is None:
        raise MigrationError(
            f"{migration.name}: goose revisions run through llm-proxy's env.py "
            "(llm_proxy.bridge.env.run)"
        )
    section = migration.section(direction)
    tables = run.tables
    record = (
        goose_table.insert_sql(tables, migration.version)
        if direction == "up"
        else goose_table.delete_sql(tables, migration.version)
    )
    if context.as_sql:
        # A NO TRANSACTION file runs bare: the script commits before it and
        # begins again after it (its goose row goes with Alembic's update).
        with contextlib.nullcontext() if section.use_tx else context.autocommit_block():
            _write_script(context.impl.output_buffer, section)
        context.impl.static_output(record + ";")
        return

    connection = context.connection
    assert connection is not None
    # goose's rows win: a version goose already applied (or already rolled
    # back) is not run a second time, Alembic's pointer just moves past it.
    applied = (
        migration.version in run.goose_applied
        if run.goose_applied is not None
        else _goose_applied(connection, tables, migration.version)
    )
    if applied == (direction == "up"):
        run.skipped.add(migration.revision)
        return
    execute = driver_executor(connection)
    if section.use_tx:
        _execute_all(execute, migration, direction, section, run)
        execute(record)
        return
    if run.caller_transaction:  # its statements would commit the caller's work
        raise MigrationError(
            f"{migration.name}: a NO TRANSACTION migration cannot run inside the "
            "transaction of the connection you passed: pass one outside a transaction"
        )
    # Outside a transaction each statement commits alone: keep a marker of how
    # far it got, so a run stopped part-way shows in `status`.
    revision = migration.revision
    with context.autocommit_block():
        execute = driver_executor(context.connection)
        total = len(section.statements)
        for sql in partial_runs.start_sql(tables, revision, direction, total):
            execute(sql)

        def progress(done: int) -> None:
            execute(partial_runs.progress_sql(tables, revision, done))

        _execute_all(execute, migration, direction, section, run, progress)
    execute = driver_executor(context.connection)
    execute(record)
    execute(partial_runs.clear_sql(tables, revision))


def _execute_all(
    execute: Callable[[str], None],
    migration: GooseMigration,
    direction: str,
    section: ParsedMigration,
    run: Run,
    progress: Callable[[int], None] | None = None,
) -> None:
    dialect = run.settings.dialect
    split = dialect.split_for_driver
    for number, statement in enumerate(section.statements, start=1):
        try:
            for piece in split(statement):
                execute(piece)
            if progress is not None:
                progress(number)
        except MigrationError:
            raise
        except Exception as exc:  # the driver's own error, with our context
            index = number - 1
            failed = StatementFailed(
                file_name=migration.name,
                direction=direction,
                number=number,
                statement=section.shown(index),
                reason=section.mask(index, dialect.failure_reason(statement, exc)),
            )
            if index in section.masked:
                # ENVSUB values may be secrets: the driver's unmasked error stays out of
                # every traceback.
                raise failed from None
            raise failed from exc


def driver_executor(connection: Any) -> Callable[[str], None]:
    """One statement at a time on the DBAPI connection under a SQLAlchemy
    Connection, in its transaction. No parameters are passed, so no driver
    treats % or : as placeholders, and thousands of statements skip
    SQLAlchemy's per-call overhead."""
    return drivers.statement_runner(connection.connection.driver_connection)


def _goose_applied(connection: Any, tables: Any, version: int) -> bool:
    row = connection.exec_driver_sql(goose_table.is_applied_sql(tables, version)).first()
    return bool(row and row[0])


def _write_script(output: Any, section: ParsedMigration) -> None:
    """Each statement as Alembic's static_output() would write it (with a ';' added where
    it has none, then a blank line), in pieces: a huge statement is never copied whole."""
    statements = section.statements
    for index in range(len(statements)):
        tail = ""
        for chunk in statements.chunks(index):
            output.write(chunk)
            tail = (tail + chunk)[-64:]
        output.write("\n\n" if tail.rstrip().endswith(";") else ";\n\n")
    output.flush()
