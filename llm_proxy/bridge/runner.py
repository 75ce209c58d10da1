"""What a goose revision does when Alembic runs it.

Its statements run on the migration's own connection, in Alembic's
transaction for that revision, followed by goose's row change (insert on up,
delete on down), so goose_db_version moves exactly as goose would move it. A
NO TRANSACTION file runs statement by statement, leaving a marker of how far
it got. Offline (--sql) the same statements are written out instead.

Each migration runs with a lock timeout (and an optional statement timeout):
a statement that gives up on a table lock is tried again after a pause, its
work rolled back first (a savepoint where DDL is transactional), so that no
reader queues behind a waiting ALTER for longer than the lock timeout.
"""

from __future__ import annotations

import contextlib
import logging
import time
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llm_proxy.db import drivers
from llm_proxy.dialects.base import MIGRATION_SAVEPOINT, locked_tables
from llm_proxy.errors import LockNotGranted, MigrationError, StatementFailed, reason
from llm_proxy.goose.migration import GooseMigration
from llm_proxy.store import goose_table, partial_runs

from . import lock_retries
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
    limits = _Limits.of(migration, run)
    if section.use_tx:
        _run_section(_Session.of(connection), migration, direction, section, run, limits)
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
        session = _Session.of(context.connection)
        execute = session.execute
        raw = context.connection.connection.driver_connection
        lease = run.lease
        if lease is not None:
            lease.renew(lease.renew_on or raw)
        limits = _outside_a_transaction(limits, migration, run, raw)
        total = len(section.statements)
        for sql in partial_runs.start_sql(tables, revision, direction, total):
            execute(sql)

        def progress(done: int) -> None:
            if lease is not None:  # each statement commits alone: keep the lease alive
                # First: a run that lost the lock must not touch the marker of the
                # process that took it over.
                lease.renew_if_due(lease.renew_on or raw)
            execute(partial_runs.progress_sql(tables, revision, done))

        def untouched() -> None:  # gave up on its first statement: as if never started
            execute(partial_runs.clear_sql(tables, revision))

        _run_section(
            session,
            migration,
            direction,
            section,
            run,
            limits,
            progress=progress,
            untouched=untouched,
        )
    execute = driver_executor(context.connection)
    execute(record)
    execute(partial_runs.clear_sql(tables, revision))


@dataclass(frozen=True)
class _Limits:
    """How long one migration's statements may wait for a lock, and run."""

    lock_timeout: float  # 0: as the server says
    statement_timeout: float  # 0: as the server says
    retries: int

    @classmethod
    def of(cls, migration: GooseMigration, run: Run) -> _Limits:
        """The file's own lines over the command's settings."""
        own = migration.directives
        settings = run.settings
        return cls(
            settings.ddl_lock_timeout if own.lock_timeout is None else own.lock_timeout,
            settings.statement_timeout if own.statement_timeout is None else own.statement_timeout,
            settings.ddl_lock_retries,
        )


def _outside_a_transaction(
    limits: _Limits, migration: GooseMigration, run: Run, raw: Any
) -> _Limits:
    """A NO TRANSACTION file's limits are session settings; behind a connection
    pooler in transaction pooling each statement may run on another server
    session, and a setting would stay behind for the pooler's other clients. A
    client cannot tell the pooling mode, so behind any pooler the file runs
    without them, and says so."""
    if not (limits.lock_timeout or limits.statement_timeout):
        return limits
    pooler = run.settings.dialect.pooler_between(raw)
    if pooler is None:
        return limits
    _report(
        run,
        f"warning: {migration.name} runs without --ddl-lock-timeout / --statement-timeout: "
        f"{pooler}, and a NO TRANSACTION file's session settings would stay behind for its "
        "other clients (migrate through a direct connection to keep them)",
    )
    return _Limits(0.0, 0.0, limits.retries)


@dataclass(frozen=True)
class _Session:
    """The migration's DBAPI connection: run a statement, or read rows."""

    execute: Callable[[str], None]
    query: Callable[[str], list[tuple[Any, ...]]]

    @classmethod
    def of(cls, connection: Any) -> _Session:
        raw = connection.connection.driver_connection
        return cls(drivers.statement_runner(raw), drivers.executor(raw))


class _GaveUpOnLock(Exception):
    """A statement stopped waiting for a lock (inside _run_section only)."""

    def __init__(self, failed: StatementFailed, statement: str) -> None:
        super().__init__(str(failed))
        self.failed = failed
        self.statement = statement


def _run_section(
    session: _Session,
    migration: GooseMigration,
    direction: str,
    section: ParsedMigration,
    run: Run,
    limits: _Limits,
    *,
    progress: Callable[[int], None] | None = None,
    untouched: Callable[[], None] | None = None,
) -> None:
    """Run a section under its limits, trying again while a statement gives up on a
    lock and nothing of the section is left applied: in a transaction with
    transactional DDL a savepoint takes the try back; otherwise (a NO TRANSACTION
    file, MySQL) only a first statement that gave up leaves nothing behind."""
    dialect = run.settings.dialect
    in_transaction = progress is None
    execute = session.execute
    sets, resets = dialect.migration_limits_sql(
        limits.lock_timeout, limits.statement_timeout, in_transaction=in_transaction
    )
    for sql in sets:
        try:
            execute(sql)
        except Exception as exc:
            raise MigrationError(
                f"{migration.name}: cannot set the migration's timeouts ({sql}): {reason(exc)}"
            ) from None
    savepoint = in_transaction and dialect.transactional_ddl and limits.lock_timeout > 0
    savepoint = savepoint and bool(sets)
    if savepoint:
        execute(f"SAVEPOINT {MIGRATION_SAVEPOINT}")
    tries = 0
    try:
        while True:
            tries += 1
            try:
                _execute_all(execute, migration, direction, section, run, progress, limits)
                break
            except _GaveUpOnLock as gave_up:
                if savepoint:
                    execute(f"ROLLBACK TO SAVEPOINT {MIGRATION_SAVEPOINT}")
                nothing_left = savepoint or gave_up.failed.number == 1
                held = _blockers(session, dialect, gave_up.statement, savepoint)
                if not nothing_left or tries > limits.retries:
                    if nothing_left and untouched is not None:
                        untouched()
                    error = _not_granted(
                        migration, gave_up, held, tries, limits, nothing_left, not in_transaction
                    )
                    raise error from None
                pause = lock_retries.pause_before(tries, limits.lock_timeout)
                _report(
                    run,
                    f"warning: {migration.name}: statement {gave_up.failed.number} gave up "
                    f"after {limits.lock_timeout:g}s waiting for a lock on {held}; "
                    f"retry {tries} of {limits.retries} in {pause:.1f}s",
                )
                time.sleep(pause)
        if savepoint:
            execute(f"RELEASE SAVEPOINT {MIGRATION_SAVEPOINT}")
        for sql in resets:
            execute(sql)
    except BaseException:
        # SET LOCAL ends with the rolled-back transaction; session values are restored.
        if not (in_transaction and dialect.transactional_ddl):
            with contextlib.suppress(Exception):
                for sql in resets:
                    execute(sql)
        raise


def _blockers(session: _Session, dialect: Any, statement: str, savepoint: bool) -> str:
    """'table T, held by pid ...' for a statement that gave up on its lock."""
    tables = locked_tables(statement)
    sql = dialect.blockers_sql(tables)
    found: list[lock_retries.Blocker] = []
    if sql is not None:
        try:
            for table, pid, state, since, query in session.query(sql):
                if all(b.pid != pid for b in found):
                    found.append(lock_retries.Blocker(str(table), int(pid), state, since, query))
        except Exception:  # no permission to look: say so rather than fail the migration
            if savepoint:
                session.execute(f"ROLLBACK TO SAVEPOINT {MIGRATION_SAVEPOINT}")
    return lock_retries.describe_blockers(found, ", ".join(tables) or None)


def _not_granted(
    migration: GooseMigration,
    gave_up: _GaveUpOnLock,
    held: str,
    tries: int,
    limits: _Limits,
    nothing_left: bool,
    no_transaction: bool,
) -> LockNotGranted:
    number = gave_up.failed.number
    why = "a NO TRANSACTION file" if no_transaction else "this database's DDL is not transactional"
    outcome = (
        "nothing of it was applied"
        if nothing_left
        else f"statements 1-{number - 1} stay applied ({why})"
    )
    return LockNotGranted(
        f"{migration.name}: statement {number} gave up waiting for a lock on {held}, "
        f"{tries} time(s) after {limits.lock_timeout:g}s; {outcome}: end that transaction, "
        "or raise --ddl-lock-timeout / --ddl-lock-retries"
    )


def _report(run: Run, line: str) -> None:
    if run.report is not None:
        run.report(line)
    else:  # a stock `alembic` run: where its own notes go
        logging.getLogger("alembic.env").warning(line)


def _execute_all(
    execute: Callable[[str], None],
    migration: GooseMigration,
    direction: str,
    section: ParsedMigration,
    run: Run,
    progress: Callable[[int], None] | None = None,
    limits: _Limits | None = None,
) -> None:
    dialect = run.settings.dialect
    split = dialect.split_for_driver
    for number, statement in enumerate(section.statements, start=1):
        try:
            for piece in split(statement):
                execute(piece)
        except MigrationError:
            raise
        except Exception as exc:  # the driver's own error, with our context
            index = number - 1
            why = dialect.failure_reason(statement, exc)
            if limits is not None and dialect.statement_timed_out(exc):
                why += (
                    f" (statement timeout {limits.statement_timeout:g}s: --statement-timeout, "
                    "or the file's '-- llm-proxy: statement-timeout' line)"
                )
            failed = StatementFailed(
                file_name=migration.name,
                direction=direction,
                number=number,
                statement=section.shown(index),
                reason=section.mask(index, why),
            )
            if limits is not None and limits.lock_timeout > 0 and dialect.gave_up_on_lock(exc):
                raise _GaveUpOnLock(failed, statement) from None
            if index in section.masked:
                # ENVSUB values may be secrets: the driver's unmasked error stays out of
                # every traceback.
                raise failed from None
            raise failed from exc
        if progress is not None:  # not the statement's failure: its own error
            progress(number)


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
