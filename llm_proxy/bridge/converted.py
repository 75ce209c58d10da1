"""What a converted goose file (a Python revision `migrate convert` wrote) does when
Alembic runs it: its statements, then goose's row, as the goose file did.

The revision's module names the goose version it replaces and whether it still
writes goose's rows (``write_goose_rows``); ``goose_step`` reads them from the
module's globals. While rows are written, goose's rows win as they do for a
goose file (runner.py): a version goose already applied is not run again.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from llm_proxy.errors import MigrationError, StatementFailed

from .run import RUN_KEY, Run
from .runner import _goose_applied, driver_executor

# A converted revision's module-level names (goose/python_revision.py writes them).
GOOSE_VERSION = "goose_version"
GOOSE_FILE = "goose_file"
GOOSE_DIALECT = "goose_dialect"
WRITE_GOOSE_ROWS = "write_goose_rows"


def converted_name(script: Any) -> str:
    """The file name a Python revision is known by: a converted goose file's own."""
    goose_file = getattr(getattr(script, "module", None), GOOSE_FILE, None)
    return str(goose_file) if goose_file else os.path.basename(getattr(script, "path", ""))


@dataclass
class Step:
    """One direction of a converted revision, running (or skipped) in Alembic's step."""

    name: str
    direction: str
    run: Run
    context: Any
    skip: bool = False
    executed: int = field(default=0)

    def execute(self, statement: str) -> None:
        """Run one of the goose file's statements as goose sent it (no bind parameters),
        on the migration's connection; nothing when goose already did this step."""
        self.executed += 1
        if self.skip:
            return
        context = self.context
        if context.as_sql:
            tail = "" if statement.rstrip().endswith(";") else ";"
            context.impl.static_output(statement + tail)
            return
        execute = driver_executor(context.connection)
        dialect = self.run.settings.dialect
        try:
            for piece in dialect.split_for_driver(statement):
                execute(piece)
        except Exception as exc:  # the driver's own error, said as for a goose file
            raise StatementFailed(
                file_name=self.name,
                direction=self.direction,
                number=self.executed,
                statement=statement,
                reason=dialect.failure_reason(statement, exc),
            ) from exc


@contextmanager
def goose_step(direction: str, revision_globals: Mapping[str, Any]) -> Iterator[Step]:
    """Run the body's statements, then (with ``write_goose_rows``) goose's row change:
    insert (V, true) on up, delete V's rows on down, in the revision's transaction."""
    from alembic import op
    from llm_proxy.store import goose_table

    name = str(revision_globals.get(GOOSE_FILE) or revision_globals.get("revision"))
    context = op.get_context()
    run: Run | None = context.opts.get(RUN_KEY)
    if run is None:
        raise MigrationError(f"{name}: converted goose revisions run through llm-proxy's env.py")
    dialect = run.settings.dialect
    wanted = revision_globals.get(GOOSE_DIALECT)
    if wanted is not None and wanted != dialect.name:
        raise MigrationError(
            f"{name}: converted for {wanted}, this database is {dialect.name}: convert "
            f"the {dialect.name} goose files into a versions directory of their own"
        )
    version = int(revision_globals[GOOSE_VERSION])
    # A retired project (alembic.ini's goose_retired) writes no goose rows whatever
    # the revision says: alembic_version alone records it.
    write_rows = bool(revision_globals.get(WRITE_GOOSE_ROWS, True))
    write_rows = write_rows and not run.settings.goose_retired
    tables = run.tables
    step = Step(name, direction, run, context)
    if write_rows and not context.as_sql:
        applied = (
            version in run.goose_applied
            if run.goose_applied is not None
            else _goose_applied(context.connection, tables, version)
        )
        step.skip = applied == (direction == "up")
        if step.skip:
            run.skipped.add(str(revision_globals["revision"]))
    yield step
    if not write_rows or step.skip:
        return
    record = (
        goose_table.insert_sql(tables, version)
        if direction == "up"
        else goose_table.delete_sql(tables, version)
    )
    if context.as_sql:
        context.impl.static_output(record + ";")
    else:
        driver_executor(context.connection)(record)
