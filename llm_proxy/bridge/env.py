"""What alembic/env.py does, for both doors.

`alembic upgrade` and `llm-proxy migrate up` both land in ``run()``, so they
behave the same: one transaction per migration, the migration lock held for
the whole run, both version tables reconciled under that lock before anything
runs, "OK <file>" reported once a migration has committed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from llm_proxy.db import locks
from llm_proxy.db.engine import create_engine
from llm_proxy.errors import LockTimeout, MigrationError
from llm_proxy.revisions.reconcile import reconcile as reconcile_view
from llm_proxy.store import alembic_table, goose_table, journal, partial_runs, snapshot
from llm_proxy.store.tables import Session, is_bookkeeping_table

from . import alembic_api, scripts
from .config import settings_from
from .run import RUN_KEY, Run, run_of
from .runner import driver_executor

GIVEN_CONNECTION_KEY = "connection"  # Alembic's cookbook: a connection the caller opened


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Autogenerate and `alembic check` never touch the bookkeeping tables."""
    return not (type_ == "table" and is_bookkeeping_table(str(name)))


def run(target_metadata: Any = None) -> None:
    """The body of alembic/env.py."""
    from alembic import context

    config = context.config
    current = run_of(config)
    if current is None:
        if config.config_file_name:
            # A stock `alembic` run: honour the ini's logging section, as Alembic's env.py does.
            from logging.config import fileConfig

            fileConfig(config.config_file_name, disable_existing_loggers=False)
        current = _stock_run(config, context.script)
    if context.is_offline_mode():
        _run_offline(context, current, target_metadata)
    else:
        _run_online(context, current, target_metadata)


def _stock_run(config: Any, directory: Any) -> Run:
    """The Run of a stock `alembic` command, from its Config and script directory."""
    loaded = scripts.loaded(directory)
    return Run(
        settings=settings_from(config),
        graph=loaded.graph,
        goose={m.revision: m for m in loaded.goose},
        paths=scripts.file_paths(loaded),
        python_scripts=loaded.python,
        script_directory=directory,
    )


def _options(current: Run, target_metadata: Any) -> dict[str, Any]:
    settings = current.settings
    return {
        "target_metadata": target_metadata,
        "include_object": include_object,
        RUN_KEY: current,
        **settings.dialect.alembic_options(settings.schema),
    }


def _run_offline(context: Any, current: Run, target_metadata: Any) -> None:
    context.configure(
        url=current.settings.url,
        literal_binds=True,
        transaction_per_migration=True,
        # The script is for a person to run; wrap each migration in BEGIN/COMMIT
        # on SQLite too (our online runs do the same), as goose would.
        transactional_ddl=True,
        **_options(current, target_metadata),
    )
    if context.get_starting_revision_argument() in (None, "base"):
        # Starting from an empty database: goose's table comes first, as goose creates it.
        output = context.get_context().impl.static_output
        output(goose_table.create_sql(current.tables) + ";\n")
        output(goose_table.insert_sql(current.tables, 0) + ";\n")
    with context.begin_transaction():
        context.run_migrations()


def _run_online(context: Any, current: Run, target_metadata: Any) -> None:
    settings = current.settings
    if current.locked_connection is not None:
        # The command took the lock before importing Alembic; the migration runs
        # on the very session that holds it. Its owner closes it.
        engine = create_engine(settings, session=current.locked_connection)
        with engine.connect() as connection:
            _migrate(context, current, connection, target_metadata)
        return
    lock = locks.for_database(settings)
    given = context.config.attributes.get(GIVEN_CONNECTION_KEY)
    if given is not None:
        with lock.hold(on_wait=current.report):  # on a connection of its own
            _migrate(context, current, given, target_metadata)
        return
    # Locked first, so that waiting creates no database file; on PostgreSQL and
    # MySQL the lock lives on the migration's session, so a killed migrator's
    # statement still running on the server keeps the next one waiting.
    with lock.hold(on_wait=current.report) as locked:
        engine = create_engine(settings, session=locked)
        with engine.connect() as connection:
            _migrate(context, current, connection, target_metadata)


def _migrate(context: Any, current: Run, connection: Any, target_metadata: Any) -> None:
    timer = _StepTimer(current)
    context.configure(
        connection=connection,
        transaction_per_migration=True,
        on_version_apply=timer.on_version_apply,
        **_options(current, target_metadata),
    )
    migration_context = context.get_context()
    from sqlalchemy import event

    # "OK <file>" is printed once its transaction has committed, never before:
    # SQLAlchemy's commit event fires before the COMMIT runs, so a line waits for
    # the next transaction to begin, or for the end of the run.
    event.listen(connection, "begin", timer.flush)
    event.listen(connection, "rollback", timer.discard)
    try:
        with connection.begin():
            reconcile(connection, migration_context, current)
        timer.start()
        with context.begin_transaction():
            context.run_migrations()
        timer.flush()
    except Exception as exc:
        raise _user_facing(exc, current) from exc
    finally:
        event.remove(connection, "begin", timer.flush)
        event.remove(connection, "rollback", timer.discard)


def _user_facing(exc: Exception, current: Run) -> Exception:
    """The error worth showing: a MigrationError (naming the file and statement)
    hidden behind a later error, such as the rollback failing on a connection
    the server cut, and the database's bare "locked" error given its context."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, MigrationError):
            return seen
        seen = seen.__context__
    settings = current.settings
    if settings.dialect.is_busy_error(exc):
        return LockTimeout(
            f"timed out after {settings.lock_timeout:g}s waiting for SQLite database "
            f"{settings.sqlite_path}: another process holds a write transaction on it "
            "(raise --lock-timeout, or end that transaction)"
        )
    return exc


def _executor(connection: Any) -> Callable[[str], list[Any]]:
    def execute(sql: str) -> list[Any]:
        result = connection.exec_driver_sql(sql)
        return list(result.fetchall()) if result.returns_rows else []

    return execute


def reconcile(connection: Any, migration_context: Any, current: Run) -> None:
    """Bring alembic_version in line with goose_db_version (goose wins for goose
    revisions), make sure goose's table and ours exist, and record checksums of
    applied files that have none. Runs under the lock."""
    session = Session(_executor(connection), current.tables)
    goose_table.ensure(session)
    journal.ensure(session)
    partial_runs.ensure(session)
    recorded = snapshot.read(session)  # every table, once
    view = reconcile_view(
        current.graph,
        recorded.goose.applied.keys(),
        recorded.goose.current_version,
        recorded.alembic_heads,
    )
    journal.prune(session, recorded.journal, view.applied)
    partial_runs.prune(session, recorded.partial_runs, view.applied)
    journal.adopt(session, recorded.journal, sorted(view.applied), current.paths)
    current.goose_applied = frozenset(recorded.goose.applied)
    if tuple(sorted(view.alembic_heads)) == recorded.alembic_heads:
        return
    alembic_api.ensure_version_table(migration_context)
    for sql in alembic_table.replace_heads_sql(current.tables, view.alembic_heads):
        session.execute(sql)


class _StepTimer:
    """Reports `OK   <file> (1.2ms)` (`EMPTY <file> (1.2ms)` when the goose section holds
    no statement) per applied or rolled-back revision, once the
    revision's transaction has committed, and records what ran."""

    def __init__(self, current: Run) -> None:
        self.run = current
        self.last = time.perf_counter()
        self.pending: list[str] = []

    def start(self) -> None:
        self.last = time.perf_counter()

    def flush(self, *_: Any) -> None:
        lines, self.pending = self.pending, []
        if self.run.report is not None:
            for line in lines:
                self.run.report(line)

    def discard(self, *_: Any) -> None:
        self.pending = []

    def on_version_apply(self, *, ctx: Any, step: Any, heads: Any, run_args: Any) -> None:
        now = time.perf_counter()
        elapsed_ms = (now - self.last) * 1000.0
        self.last = now
        revision = step.up_revision_id
        script = ctx.script.get_revision(revision) if ctx.script else None
        if revision in self.run.skipped:  # journaled when it was adopted
            return
        _journal_step(ctx, self.run, script, is_upgrade=step.is_upgrade)
        self.run.ran.append(revision)
        if self.run.report is None:
            return
        goose = scripts.goose_of(script)
        name = goose.name if goose else os.path.basename(getattr(script, "path", ""))
        # goose says EMPTY for a file whose section has no statement (its row is written).
        direction = "up" if step.is_upgrade else "down"
        empty = goose is not None and not goose.section(direction).statements
        word = "EMPTY" if empty else "OK  "
        self.pending.append(f"{word} {name or revision} ({elapsed_ms:.1f}ms)")


def _journal_step(ctx: Any, current: Run, script: Any, *, is_upgrade: bool) -> None:
    """Record (or forget) the revision's checksum inside the step's transaction."""
    if script is None or ctx.as_sql:
        return
    if is_upgrade:
        goose = scripts.goose_of(script)
        # A goose file: the digest of the bytes that ran, not of the file as it is now.
        checksum = goose.checksum if goose else journal.file_checksum(script.path)
        sql = journal.record_sql(current.tables, script.revision, checksum)
    else:
        sql = journal.forget_sql(current.tables, script.revision)
    driver_executor(ctx.connection)(sql)
