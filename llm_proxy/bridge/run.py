"""The one object that travels from an llm-proxy command (or a stock `alembic`
run's env.py) to the goose revisions Alembic executes.

An llm-proxy command builds a ``Run`` from what it already loaded (settings,
graph, parsed goose files, the locked connection) and puts it in the Alembic
Config's ``attributes``; env.py hands it to the migration context's options,
where each goose revision finds it. Nothing is copied into strings and read
back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llm_proxy.config import Settings
from llm_proxy.goose.migration import GooseMigration
from llm_proxy.revisions.graph import Graph
from llm_proxy.store.tables import Tables

from .keys import RUN_KEY

Report = Callable[[str], None]


@dataclass
class Run:
    """One Alembic run: what the command loaded, and what the run did."""

    settings: Settings
    graph: Graph
    goose: Mapping[str, GooseMigration]  # by revision id
    paths: Mapping[str, Path]  # every revision's file, by revision id
    report: Report | None = None
    # The DBAPI connection that holds the migration lock; env.py migrates on it.
    locked_connection: Any = None
    # The lease lock's claim (db/lease.py) when the lock is a lease: renewed at the
    # start of every migration and between a NO TRANSACTION file's statements.
    lease: Any = None
    python_scripts: list[Any] | None = None  # Alembic's, when already loaded
    script_directory: Any = None  # built once per run (see scripts.for_run)
    allow_missing: bool = False  # goose's --allow-missing (`-x allow_missing=true`)
    stock: bool = False  # a stock `alembic` command rather than llm-proxy's
    # Migrating inside the transaction of a connection the caller passed (see caller.py).
    caller_transaction: bool = False
    # Set by commands.run_steps: exactly these revisions run, one at a time, in
    # this order, as (revision, is_upgrade), instead of Alembic's own plan.
    steps: tuple[tuple[str, bool], ...] | None = None
    # Filled while running:
    ran: list[str] = field(default_factory=list)  # revisions this process applied
    goose_applied: frozenset[int] | None = None  # goose's rows, read under the lock
    skipped: set[str] = field(default_factory=set)  # goose revisions passed over

    @property
    def tables(self) -> Tables:
        """Where the bookkeeping tables are."""
        return Tables.of(self.settings)


def run_of(config: Any) -> Run | None:
    """The Run an llm-proxy command attached to an Alembic Config, if any."""
    return config.attributes.get(RUN_KEY)
