"""`retire-goose`: the day no goose binary reads the database any more.

Retiring is a setting of the project (``goose_retired = true`` in alembic.ini's
``[alembic]`` section), so every command, and the stock ``alembic`` command,
agrees on it: converted revisions write no goose_db_version rows, and `status`
and `version` read alembic_version. Before the setting is written, the database
in hand gets an alembic_version that says all goose's rows say, so nothing goose
applied runs again once its rows are no longer read. goose's table stays (goose
can still read the history) and `undo` goes back; only `drop_table` is final.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from llm_proxy.config import GOOSE_RETIRED, Settings
from llm_proxy.errors import MigrateError, StateConflict
from llm_proxy.store import alembic_table, goose_table

from .project import DatabaseState, Project

_SECTION = re.compile(r"^\s*\[(?P<name>[^\]]+)\]\s*$")
_RETIRED_LINE = re.compile(rf"^\s*{GOOSE_RETIRED}\s*[=:]")


def _quiet(_: str) -> None:
    pass


def retire_goose(
    settings: Settings, *, drop_table: bool = False, report: Callable[[str], None] = _quiet
) -> None:
    """Retire goose for the project and the database of `settings`: refuse while a
    goose file is left, bring alembic_version in line with goose's rows (under the
    lock), then write ``goose_retired = true``; `drop_table` also drops goose's table."""
    ini = _project_ini(settings)
    project = Project.load(replace(settings, goose_retired=False))
    if project.goose:
        first = next(iter(project.goose.values()))
        raise MigrateError(
            f"{first.path}: still a goose file: convert it first (`llm-proxy migrate convert`); "
            "goose is retired once every goose file is a Python revision"
        )
    if not settings.dialect.database_missing(settings):
        with project.locked(report) as connection:
            state = project.rewrite_spellings(connection, project.read_state(connection))
            _carry_history(project, connection, state, report)
            if drop_table and state.recorded.goose_table:
                session = project.session(connection)
                session.execute(goose_table.drop_sql(project.tables))
                connection.commit()
                report(
                    f"dropped {project.tables.qualified(settings.goose_table)} of "
                    f"{settings.where}: the last step, it cannot be undone (goose's history "
                    "is gone)"
                )
    elif drop_table:
        report(f"no database at {settings.where}: no goose table to drop")
    _write_setting(ini, "true")
    report(
        f"{ini}: {GOOSE_RETIRED} = true: converted revisions write no goose_db_version rows "
        "from now on, status and version read alembic_version "
        "(`llm-proxy migrate retire-goose --undo` goes back)"
    )


def unretire_goose(settings: Settings, *, report: Callable[[str], None] = _quiet) -> None:
    """Undo a retirement: give the database in hand the goose rows alembic_version
    implies (recreating goose's table if it was dropped), then write
    ``goose_retired = false``."""
    ini = _project_ini(settings)
    project = Project.load(replace(settings, goose_retired=True))
    if not settings.dialect.database_missing(settings):
        with project.locked(report) as connection:
            state = project.rewrite_spellings(connection, project.read_state(connection))
            wanted = {
                node.goose_version
                for revision, node in project.graph.nodes.items()
                if revision in state.view.applied and node.goose_version is not None
            }
            session = project.session(connection)
            goose_table.ensure(session)
            recorded = goose_table.read_rows(session).applied
            for version in sorted(wanted - set(recorded)):
                session.execute(goose_table.insert_sql(project.tables, version))
            for version in sorted(set(recorded) - wanted, reverse=True):
                session.execute(goose_table.delete_sql(project.tables, version))
            connection.commit()
            report(
                f"{project.tables.qualified(settings.goose_table)} of {settings.where} records "
                f"what alembic_version does: version {max(wanted, default=0)}"
            )
    _write_setting(ini, "false")
    report(f"{ini}: {GOOSE_RETIRED} = false: converted revisions write goose's rows again")


def _project_ini(settings: Settings) -> Path:
    if settings.alembic_ini is None:
        raise MigrateError(
            "no alembic.ini names the goose directory (./alembic.ini or "
            "LLM_PROXY_ALEMBIC_INI): retiring goose is written there, for every command"
        )
    return settings.alembic_ini


def _carry_history(
    project: Project, connection: Any, state: DatabaseState, report: Callable[[str], None]
) -> None:
    """Make alembic_version say all that goose's rows say, or refuse: once goose is
    retired its rows are not read, and a version they alone record would run again."""
    view, graph = state.view, project.graph
    where = project.settings.where
    if not state.recorded.goose_table:
        # No goose rows to carry (goose's table dropped, or never made): alembic_version
        # is all this database records already.
        report(f"no goose table in {where}: alembic_version already records all there is")
        return
    if view.conflict is not None:
        raise StateConflict(f"{where}: {view.conflict.message}")
    if view.unknown_versions:
        raise StateConflict(
            f"{where}: goose_db_version records version {view.unknown_versions[0]}, which no "
            "file defines: restore its file or roll it back before retiring goose"
        )
    if view.unknown_heads:
        raise StateConflict(
            f"{where}: alembic_version records {view.unknown_heads[0]}, which no revision "
            "defines: restore its file before retiring goose"
        )
    expressible = graph.ancestors(list(view.alembic_heads)) if view.alembic_heads else set()
    gaps = sorted(view.applied - expressible, key=graph.order.index)
    if gaps:
        raise StateConflict(
            f"{where}: {project.name_of(gaps[0])} was applied out of order and alembic_version "
            "cannot record it: apply what is missing below it first "
            "(`llm-proxy migrate up --allow-missing`)"
        )
    if tuple(sorted(view.alembic_heads)) == state.recorded.alembic_heads:
        report(f"alembic_version of {where} already records what goose_db_version does")
        return
    session = project.session(connection)
    session.execute(alembic_table.create_if_missing_sql(project.tables))
    for sql in alembic_table.replace_heads_sql(project.tables, view.alembic_heads):
        session.execute(sql)
    connection.commit()
    report(
        f"alembic_version of {where} now records what goose_db_version does: "
        f"{', '.join(view.alembic_heads) or 'nothing'}"
    )


def _write_setting(ini: Path, value: str) -> None:
    text = ini.read_text(encoding="utf-8")
    ini.write_text(with_retired(text, value), encoding="utf-8")


def with_retired(text: str, value: str) -> str:
    """alembic.ini's text with ``goose_retired = value`` in its [alembic] section
    (the line replaced when there is one, else added under the header); the rest
    of the file, comments included, unchanged."""
    lines = text.splitlines(keepends=True)
    section = None
    header = None
    for index, line in enumerate(lines):
        match = _SECTION.match(line)
        if match:
            section = match.group("name").strip()
            if section == "alembic":
                header = index
            continue
        if section == "alembic" and _RETIRED_LINE.match(line):
            lines[index] = f"{GOOSE_RETIRED} = {value}\n"
            return "".join(lines)
    setting = [
        "# No goose binary reads the database any more: written by "
        "`llm-proxy migrate retire-goose`.\n",
        f"{GOOSE_RETIRED} = {value}\n",
    ]
    if header is None:
        tail = "" if not text or text.endswith("\n") else "\n"
        return text + tail + "[alembic]\n" + "".join(setting)
    lines[header + 1 : header + 1] = setting
    return "".join(lines)
