"""`migrate squash --through VERSION`: the goose files up to VERSION replaced by one
baseline file at VERSION, for new databases.

The baseline is no guess: every file up to VERSION runs on a scratch database of
the same dialect (validate's, created and dropped here), and what its catalogs then
hold is written out (dialects/: ``dump_schema``). Rows found in the scratch
database's tables are seed data the squashed files inserted (it started empty), and
the baseline inserts them too. Databases already at VERSION or later keep their
rows in goose_db_version and never run the baseline (it is applied there); older
ones are refused by every command (revisions/plan.py) and must be upgraded with a
release that still has the old files.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llm_proxy import migrate
from llm_proxy.config import Settings
from llm_proxy.db import drivers
from llm_proxy.errors import SquashError
from llm_proxy.goose.baseline import baseline_name, down_refusal_message, render_baseline
from llm_proxy.goose.files import MigrationFile, discover
from llm_proxy.migrate.project import Project
from llm_proxy.revisions.plan import parse_version
from llm_proxy.store.tables import is_bookkeeping_table

from .roundtrip import scratch_database


@dataclass(frozen=True)
class Squashed:
    """What `squash` wrote and took away."""

    baseline: Path
    replaced: list[str]  # file names, in version order
    archive: Path | None  # where they went (None: deleted)
    seed_rows: int


def _quiet(_: str) -> None:
    pass


def squash(
    settings: Settings,
    through: str,
    *,
    archive: Path | None = None,
    report: Callable[[str], None] = _quiet,
) -> Squashed:
    """Replace the goose files up to `through` by a baseline built from the schema they
    create. Nothing in the directory changes unless the baseline could be built."""
    version = parse_version(through)
    files = discover(settings.migrations_dir)
    last = next((f for f in files if f.version == version), None)
    if version is None or last is None:
        raise SquashError(
            f"--through {through}: no goose file with that version in {settings.migrations_dir}"
        )
    replaced = [f for f in files if f.version <= last.version]
    _refuse_python_on(settings, replaced)
    if archive is not None:
        _check_archive(archive, replaced)
    with scratch_database(settings) as scratch:
        migrate.up(scratch, to=str(last.version))
        schema, seeds = _dump(scratch)
    text = render_baseline(
        last.version,
        replaced[0].name,
        last.name,
        schema,
        seeds,
        settings.dialect.refusal_sql(down_refusal_message(last.version)),
    )
    baseline = settings.migrations_dir / baseline_name(last.version_text)
    _replace(replaced, baseline, text, archive)
    for migration_file in replaced:
        where = f"moved to {archive}" if archive is not None else "removed"
        report(f"{migration_file.name}: {where}")
    report(f"{baseline.name}: written ({len(schema)} statements, {len(seeds)} seed rows)")
    return Squashed(baseline, [f.name for f in replaced], archive, len(seeds))


def _refuse_python_on(settings: Settings, replaced: list[MigrationFile]) -> None:
    """A Python revision built on a squashed file would lose its parent: refuse."""
    graph = Project.load(settings).graph
    gone = {f.revision for f in replaced}
    for revision, node in graph.nodes.items():
        if node.converted_file and revision in gone:
            raise SquashError(
                f"{node.converted_file}: {node.name} was converted into a Python revision; "
                "squash goose files only"
            )
        parents = graph.ancestors([revision]) & gone
        if node.goose_version is None and parents:
            raise SquashError(
                f"Python revision {revision} builds on {max(parents)}, which --through "
                "would squash; squash an older version"
            )


def _check_archive(archive: Path, replaced: list[MigrationFile]) -> None:
    taken = [f.name for f in replaced if (archive / f.name).exists()]
    if taken:
        raise SquashError(f"{archive / taken[0]}: already exists; choose another --archive")


def _dump(scratch: Settings) -> tuple[list[str], list[str]]:
    """The scratch database's schema statements and the INSERTs of its rows."""
    dialect = scratch.dialect
    with drivers.connection(scratch) as connection:
        query = drivers.executor(connection)
        bookkeeping = [
            str(row[0])
            for row in query(dialect.user_tables_sql())
            if is_bookkeeping_table(str(row[0]), scratch.goose_table)
        ]
        dump = dialect.dump_schema(query, bookkeeping)
        seeds = [insert for table in dump.tables for insert in _inserts(connection, dialect, table)]
    return dump.statements, seeds


def _inserts(connection: Any, dialect: Any, table: str) -> list[str]:
    cursor = connection.cursor()
    try:
        cursor.execute(f"SELECT * FROM {dialect.quote(table)}")
        columns = ", ".join(dialect.quote(str(d[0])) for d in cursor.description)
        rows = cursor.fetchall()
    finally:
        cursor.close()
    return [
        f"INSERT INTO {dialect.quote(table)} ({columns}) VALUES "
        f"({', '.join(dialect.value_literal(value) for value in row)})"
        for row in rows
    ]


def _replace(
    replaced: list[MigrationFile], baseline: Path, text: str, archive: Path | None
) -> None:
    """Write the baseline beside the files (not yet as .sql: goose would see two files
    at one version), take the old files away, then give the baseline its name."""
    pending = baseline.with_name(f".{baseline.name}.tmp")
    pending.write_text(text, encoding="utf-8")
    if archive is not None:
        archive.mkdir(parents=True, exist_ok=True)
    for migration_file in replaced:
        if archive is not None:
            shutil.move(str(migration_file.path), archive / migration_file.name)
        else:
            migration_file.path.unlink()
    os.replace(pending, baseline)
