"""Both version tables around an Alembic run that writes, under the migration lock.

Before the run (``read``, ``refuse``, ``reconcile``): every bookkeeping table
is read once and reconciled; what the command is about to do is refused when
goose's rules forbid it, by the very checks `llm-proxy migrate` plans with;
then alembic_version is brought in line with goose's rows. Tables that
contradict each other are left untouched: only the way out may write.

A stamp (``follow_stamp``) moves goose's rows with Alembic's pointer, exactly
as goose would have moved them by migrating (``history.stamp_changes``), and
our checksums with them, so that no later command undoes the stamp or runs a
stamped migration again. A stamp script (``--sql``) cannot read goose's rows:
it writes those of the goose files the stamp crosses (``stamp_rows_sql``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from llm_proxy.revisions import plan
from llm_proxy.revisions.reconcile import DatabaseView, goose_version_reached
from llm_proxy.revisions.reconcile import reconcile as reconcile_view
from llm_proxy.store import alembic_table, goose_table, journal, partial_runs, respell, snapshot
from llm_proxy.store.snapshot import Snapshot
from llm_proxy.store.tables import Session

from .run import Run

STOCK_ALLOW_MISSING = "-x allow_missing=true"  # goose's --allow-missing, for `alembic`


def read(
    session: Session, run: Run, *, rewrite_spellings: bool = False
) -> tuple[Snapshot, DatabaseView]:
    """Every bookkeeping table, once, and the view reconciled from them. Ids an
    older release spelled otherwise are read as the graph spells them, and with
    `rewrite_spellings` (under the lock) rewritten so."""
    recorded = snapshot.read(session)
    renames = run.graph.respellings(recorded.revision_ids())
    if renames:
        if rewrite_spellings:
            recorded = respell.rewrite(session, recorded, renames)
        else:
            recorded = recorded.respelled(renames)
    return recorded, view_of(recorded, run)


def view_of(recorded: Snapshot, run: Run) -> DatabaseView:
    """The reconciled view of what a database records."""
    return reconcile_view(
        run.graph,
        recorded.goose.applied.keys(),
        recorded.goose.current_version,
        recorded.alembic_heads,
        goose_table=recorded.goose_table,
        goose_retired=run.settings.goose_retired,
    )


def refuse(view: DatabaseView, steps: Iterable[Any] | None, run: Run, *, stamping: bool) -> None:
    """Refuse the steps (Alembic's ``MigrationInfo``) a command is about to run
    where `llm-proxy migrate` would refuse them: applying on contradicting
    tables or past missing migrations, rolling back from a version no file
    defines or on tables rolling back does not mend. A stamp runs nothing and
    is always allowed: it is the way out. `steps` None: a command that runs no
    migration (`check`, `revision --autogenerate`), refused on contradicting
    tables too, whose alembic_version cannot be brought in line."""
    if stamping:
        return
    moves = list(steps or ())
    if not moves:
        plan.check_consistent(view)  # even with nothing to do, as `up` refuses
    if any(step.is_upgrade for step in moves):
        plan.check_not_older_than_files(run.graph, view)
        plan.check_runnable(view)
        plan.check_consistent(view)
        option = STOCK_ALLOW_MISSING if run.stock else "--allow-missing"
        plan.check_missing(run.graph, view, run.allow_missing, option)
    if any(not step.is_upgrade for step in moves):
        plan.check_rollback(view)


def reconcile(
    session: Session,
    recorded: Snapshot,
    view: DatabaseView,
    run: Run,
    ensure_alembic_table: Callable[[], None],
) -> None:
    """Bring alembic_version in line with goose_db_version (goose wins for goose
    revisions), make sure goose's table and ours exist, and keep our checksums
    to what is applied. Nothing is written on contradicting tables."""
    if view.conflict is not None:
        return
    if not run.settings.goose_retired:  # retired: goose's table is left as it is (or gone)
        goose_table.ensure(session)
    journal.ensure(session)
    partial_runs.ensure(session)
    journal.prune(session, recorded.journal, view.applied)
    partial_runs.prune(session, recorded.partial_runs, view.applied)
    journal.adopt(session, recorded.journal, sorted(view.applied), run.paths)
    if tuple(sorted(view.alembic_heads)) == recorded.alembic_heads:
        return
    ensure_alembic_table()
    for sql in alembic_table.replace_heads_sql(run.tables, view.alembic_heads):
        session.execute(sql)


def follow_stamp(
    session: Session, run: Run, ensure_alembic_table: Callable[[], None] | None = None
) -> None:
    """After Alembic stamped alembic_version: goose's rows for where it now
    stands, and our checksums for what is now applied. With
    `ensure_alembic_table` (once the stamp is over) alembic_version is also
    reconciled, for a stamp that goose's rules take back in part (a missing
    migration below stays missing)."""
    heads = snapshot.read(session, with_journal=False).alembic_heads
    files = run.graph.by_goose_version().keys()
    if not run.settings.goose_retired:
        goose_table.stamp(session, files, goose_version_reached(run.graph, heads))
    journal.ensure(session)
    recorded, view = read(session, run)
    if view.conflict is not None:
        return
    if ensure_alembic_table is not None:
        reconcile(session, recorded, view, run, ensure_alembic_table)
        return
    journal.prune(session, recorded.journal, view.applied)
    journal.adopt(session, recorded.journal, sorted(view.applied), run.paths)


def stamp_rows_sql(run: Run, source: Iterable[str], destination: Iterable[str]) -> list[str]:
    """For a stamp script: goose's row changes for a stamp from revisions `source`
    to `destination`, as goose writes them on a table that agrees with
    alembic_version (a row per goose file crossed going up; going down, every
    row of each, newest first)."""
    if run.settings.goose_retired:
        return []
    start = goose_version_reached(run.graph, source)
    end = goose_version_reached(run.graph, destination)
    crossed = sorted(
        v for v in run.graph.by_goose_version() if min(start, end) < v <= max(start, end)
    )
    if end > start:
        return [goose_table.insert_sql(run.tables, v) for v in crossed]
    return [goose_table.delete_sql(run.tables, v) for v in reversed(crossed)]
