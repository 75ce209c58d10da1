"""What alembic/env.py does, for both doors.

`alembic upgrade` and `llm-proxy migrate up` both land in ``run()``, so they
behave the same: one transaction per migration, the migration lock held for
the whole run, both version tables reconciled under that lock and what the
command will do checked by goose's rules before anything runs, "OK <file>"
reported once a migration has committed.

Commands that only read (`current`, `history` showing the current revision,
`show current`) take no lock, create no file and write nothing: they report
what the tables say, and warn when the two version tables disagree.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Callable
from typing import Any

from llm_proxy.db import drivers, locks
from llm_proxy.db.engine import create_engine
from llm_proxy.errors import LlmProxyError, LockTimeout, MigrationError
from llm_proxy.revisions import plan
from llm_proxy.revisions.reconcile import DatabaseView, heads_after_step
from llm_proxy.revisions.reconcile import reconcile as reconcile_view
from llm_proxy.store import alembic_table, journal, snapshot
from llm_proxy.store.snapshot import Snapshot
from llm_proxy.store.tables import GOOSE_TABLE, Session, is_bookkeeping_table

from . import alembic_api, bookkeeping, caller, offline, plugin, scripts
from .config import stock_settings
from .converted import converted_name
from .keys import GIVEN_CONNECTION_KEY
from .run import RUN_KEY, Run, run_of
from .runner import driver_executor

ALLOW_MISSING_X_ARGUMENT = "allow_missing"  # `alembic -x allow_missing=true upgrade ...`

# Where the stock command's notes go: the logger Alembic's own env.py templates use.
log = logging.getLogger("alembic.env")


def include_object(
    obj: Any,
    name: str | None,
    type_: str,
    reflected: bool,
    compare_to: Any,
    goose_table: str = GOOSE_TABLE,
) -> bool:
    """Autogenerate and `alembic check` never touch the bookkeeping tables."""
    return not (type_ == "table" and is_bookkeeping_table(str(name), goose_table))


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
        current = _stock_run(config, context)
    try:
        if context.is_offline_mode():
            _run_offline(context, current, target_metadata)
        elif alembic_api.reads_only(context):
            _read_only(context, current, target_metadata)
        else:
            _run_online(context, current, target_metadata)
    except LlmProxyError as exc:
        if not current.stock:
            raise
        # The stock command prints a CommandError as one `FAILED:` line.
        from alembic.util import CommandError

        raise CommandError(str(exc)) from exc


def _stock_run(config: Any, context: Any) -> Run:
    """The Run of a stock `alembic` command, from its Config, script directory
    and `-x` arguments.
    Settings that cannot be resolved, and goose files chosen for another dialect
    than the database's (the directory was read before the Config named its
    final database), are refused as one line before anything connects."""
    from alembic.util import CommandError

    loaded = scripts.loaded(context.script)
    if not plugin.installed() and plugin.names_goose_directory(config):
        # Without the plugin Alembic sees no goose file and would report success
        # having run nothing.
        raise CommandError(
            f"{config.config_file_name or 'alembic config'} names a goose_directory, but "
            "llm-proxy's Alembic plugin is not loaded (it needs Alembic 1.18 or later and "
            "llm-proxy installed in the same environment): nothing was run"
        )
    try:
        settings, _ = stock_settings(config)
    except LlmProxyError as exc:
        raise CommandError(str(exc)) from None
    if loaded.dialect is not None and loaded.dialect is not settings.dialect:
        raise CommandError(
            f"{loaded.goose_directory}: these goose files were chosen for "
            f"{loaded.dialect.label}, but the database is {settings.dialect.label} "
            f"({settings.where}); name one database for both (the Config's "
            "sqlalchemy.url, -x database_url, DATABASE_URL)"
        )
    arguments = context.get_x_argument(as_dictionary=True)
    allow_missing = arguments.get(ALLOW_MISSING_X_ARGUMENT, "false").strip().lower()
    return Run(
        settings=settings,
        graph=loaded.graph,
        goose={m.revision: m for m in loaded.goose},
        paths=scripts.file_paths(loaded),
        python_scripts=loaded.python,
        script_directory=context.script,
        allow_missing=allow_missing in ("true", "1", "yes", "on"),
        stock=True,
    )


def _options(current: Run, target_metadata: Any) -> dict[str, Any]:
    settings = current.settings
    return {
        "target_metadata": target_metadata,
        "include_object": functools.partial(include_object, goose_table=settings.goose_table),
        RUN_KEY: current,
        **settings.dialect.alembic_options(settings.schema),
    }


def _run_offline(context: Any, current: Run, target_metadata: Any) -> None:
    def stamp_rows(*, ctx: Any, step: Any, heads: Any, run_args: Any) -> None:
        # A stamp script moves goose's rows too, or its stamp would be taken back.
        if step.is_stamp:
            source, destination = step.source_revision_ids, step.destination_revision_ids
            for sql in bookkeeping.stamp_rows_sql(current, source, destination):
                ctx.impl.static_output(sql + ";")

    context.configure(
        url=current.settings.url,
        on_version_apply=stamp_rows,
        literal_binds=True,
        transaction_per_migration=True,
        # The script is for a person to run; wrap each migration in BEGIN/COMMIT
        # on SQLite too (our online runs do the same), as goose would.
        transactional_ddl=True,
        **_options(current, target_metadata),
    )
    start = context.get_starting_revision_argument()
    start_heads = [s.revision for s in context.script.get_revisions(start)] if start else []
    output = context.get_context().impl.static_output
    for statement in offline.preamble(current, start_heads):
        output(statement + ";\n")
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
    given = context.config.attributes.get(GIVEN_CONNECTION_KEY)
    if given is not None:
        with caller.connection_for(given, settings, current) as connection:
            _migrate(context, current, connection, target_metadata)
        return
    lock = locks.for_database(settings)
    # Locked first, so that waiting creates no database file; on PostgreSQL and
    # MySQL the lock lives on the migration's session, so a killed migrator's
    # statement still running on the server keeps the next one waiting.
    with lock.hold(on_wait=current.report) as locked:
        current.lease = lock.lease
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

    def ensure_alembic_table() -> None:
        alembic_api.ensure_version_table(migration_context)

    # "OK <file>" is printed once its transaction has committed, never before:
    # SQLAlchemy's commit event fires before the COMMIT runs, so a line waits for
    # the next transaction to begin, or for the end of the run.
    event.listen(connection, "begin", timer.flush)
    event.listen(connection, "rollback", timer.discard)
    if current.lease is not None:
        lease = current.lease

        def renew(connection: Any) -> None:
            # In the migration's own transaction: on PostgreSQL the row stays locked
            # until it commits, so no claimant takes over a long migration.
            lease.renew(lease.renew_on or connection.connection.driver_connection)

        event.listen(connection, "begin", renew)
    try:
        # A caller's transaction (a connection passed in) holds everything.
        with contextlib.nullcontext() if current.caller_transaction else connection.begin():
            session = _session(connection, current)
            _prepare(context, migration_context, current, session, ensure_alembic_table)
        timer.start()
        with context.begin_transaction():
            if current.steps is None:
                context.run_migrations()
            else:
                _run_steps(migration_context, current, connection, timer)
        timer.flush()
        if alembic_api.is_stamp(context):
            # Also when the stamp had no step to take (alembic_version was there
            # already, but goose's rows may not be: a table restored, or lost).
            # Without a step, Alembic's own reads left a transaction open.
            # In a caller's transaction, the rows join it like everything else.
            if connection.in_transaction() and not current.caller_transaction:
                connection.commit()
            with contextlib.nullcontext() if current.caller_transaction else connection.begin():
                bookkeeping.follow_stamp(
                    _session(connection, current), current, ensure_alembic_table
                )
    except Exception as exc:
        raise _user_facing(exc, current) from exc
    finally:
        event.remove(connection, "begin", timer.flush)
        event.remove(connection, "rollback", timer.discard)


def _prepare(
    context: Any,
    migration_context: Any,
    current: Run,
    session: Session,
    ensure_alembic_table: Callable[[], None],
) -> None:
    """Under the lock, before anything runs: read and reconcile both tables,
    refuse what goose's rules forbid in what the command is about to do, then
    write the reconciled alembic_version (and create the tables that are missing)."""
    recorded, view = bookkeeping.read(session, current, rewrite_spellings=True)
    current.goose_applied = frozenset(recorded.goose.applied)
    # The heads Alembic will start from once alembic_version is reconciled.
    if alembic_api.purges(context):
        start: tuple[str, ...] = ()
    elif view.conflict is not None:
        start = recorded.alembic_heads
    else:
        start = view.alembic_heads
    if current.steps is None:
        if not alembic_api.is_stamp(context):
            # Before Alembic plans: it would stop at the revision no file defines any more.
            plan.check_not_older_than_files(current.graph, view)
        steps = alembic_api.planned_steps(context, migration_context, start)
        bookkeeping.refuse(view, steps, current, stamping=alembic_api.is_stamp(context))
    # else: steps llm-proxy planned under this lock by the same rules (revisions/plan.py).
    bookkeeping.reconcile(session, recorded, view, current, ensure_alembic_table)


def _read_only(context: Any, current: Run, target_metadata: Any) -> None:
    """A command that only reads: no lock, no file created, nothing written.
    It shows what alembic_version holds, with a warning when goose's rows say
    otherwise."""
    settings = current.settings
    options = {**_options(current, target_metadata), "dont_mutate": True}
    import sqlalchemy

    if settings.dialect.database_missing(settings):
        # Nothing to read and nothing may be created: an empty in-memory
        # database stands in (under the file's URL, which `current -v` shows),
        # so the command shows what an empty one shows.
        stand_in = sqlalchemy.create_engine(settings.url, creator=settings.dialect.empty_stand_in)
        with stand_in.connect() as connection:
            context.configure(connection=connection, **options)
            context.run_migrations()
        return
    with drivers.connection(settings) as session:
        engine = create_engine(settings, session=session)
        with engine.connect() as opened:
            # Autocommit: no BEGIN IMMEDIATE on SQLite, no transaction left open.
            connection = opened.execution_options(isolation_level="AUTOCOMMIT")
            context.configure(connection=connection, **options)
            recorded, view = bookkeeping.read(_session(connection, current), current)
            _warn_disagreement(recorded, view)
            context.run_migrations()


def _warn_disagreement(recorded: Snapshot, view: DatabaseView) -> None:
    if view.conflict is not None:
        log.warning(view.conflict.message)
        return
    expected = tuple(sorted(view.alembic_heads))
    if expected == recorded.alembic_heads:
        return
    held = ", ".join(recorded.alembic_heads) or "nothing"
    log.warning(
        f"alembic_version holds {held}, but goose_db_version puts the database at "
        f"{', '.join(expected) or 'base'}; the next command that writes (`alembic upgrade "
        "heads`, `llm-proxy migrate up`) records that in alembic_version"
    )


def _session(connection: Any, current: Run) -> Session:
    return Session(_executor(connection), current.tables)


def _user_facing(exc: Exception, current: Run) -> Exception:
    """The error worth showing: a full disk naming the database, a MigrationError
    (naming the file and statement) hidden behind a later error, such as the
    rollback failing on a connection the server cut, and the database's bare
    "locked" error given its context."""
    settings = current.settings
    full = settings.dialect.full_error(settings, exc)
    if full is not None:  # the disk's trouble, not the migration's: name the database
        return full
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, MigrationError):
            return seen
        seen = seen.__context__
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


def _run_steps(migration_context: Any, current: Run, connection: Any, timer: _StepTimer) -> None:
    """Run `current.steps`, each revision in a transaction of its own with its
    version rows, as Alembic runs a migration; alembic_version is computed here,
    since Alembic's own bookkeeping needs the revision to be one of its heads."""
    from alembic.operations import Operations

    with Operations.context(migration_context):
        for revision, is_upgrade in current.steps or ():
            script = migration_context.script.get_revision(revision)
            with alembic_api.migration_transaction(migration_context):
                (script.module.upgrade if is_upgrade else script.module.downgrade)()
                timer.record(migration_context, revision, is_upgrade)
                _record_heads(connection, migration_context, current, revision, is_upgrade)


def _record_heads(
    connection: Any, migration_context: Any, current: Run, revision: str, is_upgrade: bool
) -> None:
    """alembic_version once `revision` ran alone. Rolled back, it leaves with what
    is built on it; applied, it joins. Then goose wins for goose revisions, as in
    `reconcile`: those goose records beyond it join, and one goose took back
    earlier (the way out of a conflict: the Python revision on it rolled back)
    leaves."""
    session = Session(_executor(connection), current.tables)
    recorded = snapshot.read(session, with_journal=False)
    current.goose_applied = frozenset(recorded.goose.applied)
    heads = heads_after_step(current.graph, recorded.alembic_heads, revision, is_upgrade)
    goose = recorded.goose
    view = reconcile_view(
        current.graph,
        goose.applied.keys(),
        goose.current_version,
        heads,
        goose_retired=current.settings.goose_retired,
    )
    if view.conflict is None:
        heads = view.alembic_heads
    if tuple(sorted(heads)) != recorded.alembic_heads:
        alembic_api.ensure_version_table(migration_context)
        for sql in alembic_table.replace_heads_sql(current.tables, heads):
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
        if step.is_stamp:  # nothing ran: goose's rows follow Alembic's, in its transaction
            bookkeeping.follow_stamp(_session(ctx.connection, self.run), self.run)
            return
        self.record(ctx, step.up_revision_id, step.is_upgrade)

    def record(self, ctx: Any, revision: str, is_upgrade: bool) -> None:
        now = time.perf_counter()
        elapsed_ms = (now - self.last) * 1000.0
        self.last = now
        script = ctx.script.get_revision(revision) if ctx.script else None
        if revision in self.run.skipped:  # journaled when it was adopted
            return
        _journal_step(ctx, self.run, script, is_upgrade=is_upgrade)
        self.run.ran.append(revision)
        if self.run.report is None:
            return
        goose = scripts.goose_of(script)
        # A converted goose file is still known by the goose file's name.
        name = goose.name if goose else converted_name(script)
        # goose says EMPTY for a file whose section has no statement (its row is written).
        direction = "up" if is_upgrade else "down"
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
