"""How results look: goose's status layout, the status JSON, goose's messages."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from llm_proxy.goose.history import NO_FILE

if TYPE_CHECKING:
    from llm_proxy.config import Settings
    from llm_proxy.migrate.reading import Status

NO_MIGRATIONS = "goose: no migrations to run. current version: {version}"
APPLIED = "Migrations applied successfully"
ROLLED_BACK = "Migration rolled back successfully"
STAMPED = "stamped {version} without running any migration; current migration version: {current}"


def goose_time(stamp: dt.datetime) -> str:
    """goose's "Applied At" format: `Mon Jan  2 15:04:05 2006`."""
    return f"{stamp:%a %b} {stamp.day:2d} {stamp:%H:%M:%S %Y}"


def status_lines(report: Status) -> list[str]:
    """goose's status layout, with Python revisions and states goose hides."""
    lines = ["    Applied At                  Migration", "    " + "=" * 39]
    for row in report.rows:
        if row.state in ("applied", "no file"):
            when = goose_time(row.applied_at) if row.applied_at else "Applied"
        elif row.state == "missing":
            when = "Pending (missing)"
        elif row.partial is not None:  # stopped part-way (NO TRANSACTION): not applied
            label = "Pending" if row.partial.direction == "up" else "Applied"
            when = f"{label} (partial {row.partial.done}/{row.partial.total})"
        else:
            when = "Pending"
        notes = [
            note
            for flag, note in ((row.state == "no file", "no file"), (row.modified, "modified"))
            if flag
        ]
        suffix = f" ({', '.join(notes)})" if notes else ""
        lines.append(f"    {when:<24} -- {row.name}{suffix}")
    if len(report.heads) > 1:  # a true branch: `up` applies every head
        lines.append(f"note: {len(report.heads)} heads: {', '.join(report.heads)}")
    lines.extend(
        f"warning: {problem.message}"
        for problem in report.goose_problems
        if problem.kind != NO_FILE  # its own row above says "(no file)"
    )
    if report.lock is not None:
        lines.append(f"Migration lock: {report.lock.describe()}")
    return lines


def status_json(report: Status, settings: Settings) -> dict[str, Any]:
    """The stable machine-readable status (documented in docs/status-json.md)."""
    return {
        "format": 1,
        "dialect": settings.dialect.name,
        "database": settings.where,
        "current_version": report.version,
        "pending": len(report.pending),
        "heads": list(report.heads),
        "applied_heads": list(report.applied_heads),
        "migrations": [
            {
                "revision": row.revision,
                "name": row.name,
                "kind": row.kind,
                "version": row.version,
                "state": row.state,
                "applied_at": row.applied_at.isoformat() if row.applied_at else None,
                "modified": row.modified,
                "partial": (
                    {
                        "direction": row.partial.direction,
                        "statements_done": row.partial.done,
                        "statements_total": row.partial.total,
                    }
                    if row.partial
                    else None
                ),
            }
            for row in report.rows
        ],
        "goose_row_problems": [
            {
                "kind": problem.kind,
                "version": problem.version,
                "row_ids": list(problem.row_ids),
                "message": problem.message,
            }
            for problem in report.goose_problems
        ],
        "lock": _lock_json(report),
    }


def _lock_json(report: Status) -> dict[str, Any] | None:
    held = report.lock
    if held is None:
        return None
    return {
        "strategy": held.strategy,
        "holder": held.holder,
        "since": held.since.isoformat() if held.since else None,
        "lease_expires": held.lease_expires.isoformat() if held.lease_expires else None,
        "lease_ran_out": held.expired,
    }
