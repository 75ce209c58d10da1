"""`migrate validate --apply`: up, down-to 0 and up again on a scratch database
(a temporary SQLite file, or a database created on the given server and dropped
afterwards, even on failure), reported as validate findings."""

from __future__ import annotations

import dataclasses
import secrets
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from llm_proxy import config as llm_config
from llm_proxy import migrate, urls
from llm_proxy.db import drivers
from llm_proxy.errors import (
    MigrateError,
    MigrationError,
    StatementFailed,
    ValidateError,
    reason,
    user_message,
)
from llm_proxy.goose.baseline import is_baseline_name
from llm_proxy.goose.files import discover
from llm_proxy.goose.parser import GooseParseError
from llm_proxy.store.tables import is_bookkeeping_table

from .lint import ERROR, SCRATCH_PREFIX, WARNING, Finding, Report


def _scratch_settings(
    settings: llm_config.Settings, *, db: str | None = None, url: str | None = None
) -> llm_config.Settings:
    scratch = llm_config.resolve(
        db=db, database_url=url, migrations_dir=str(settings.migrations_dir), env={}
    )
    # The user's Alembic project (Python revisions) takes part, as in `migrate up`.
    return dataclasses.replace(
        scratch, script_location=settings.script_location, alembic_ini=settings.alembic_ini
    )


def describe(settings: llm_config.Settings) -> str:
    """A scratch database for a summary line (never a password)."""
    if not settings.dialect.is_server:
        return f"a scratch {settings.dialect.label} database"
    return f"{settings.dialect.label} scratch database {settings.where}"


@contextmanager
def scratch_database(settings: llm_config.Settings) -> Iterator[llm_config.Settings]:
    """Settings for a new, empty database, removed afterwards whatever happens.

    A file database: a file in a new temporary directory. A server: a database
    ``llmproxy_validate_<random>`` created on the server ``settings`` names (through the
    database in its URL) and dropped at the end.
    """
    if not settings.dialect.is_server:
        with tempfile.TemporaryDirectory(prefix=SCRATCH_PREFIX) as directory:
            scratch = _scratch_settings(settings, db=str(Path(directory) / "scratch.db"))
            yield scratch
        return
    # A fresh random name, and CREATE DATABASE fails rather than reuse an existing database:
    # whatever happens, the round trip never runs in a database that held anything.
    name = f"{SCRATCH_PREFIX}{secrets.token_hex(6)}"
    scratch = _scratch_settings(settings, url=urls.with_database(settings.url, name))
    _server_execute(settings, settings.dialect.create_database_sql(name))
    try:
        yield scratch
    finally:
        _drop_scratch(settings, name)


def _drop_scratch(settings: llm_config.Settings, name: str) -> None:
    try:
        _server_execute(settings, settings.dialect.drop_database_sql(name))
    except Exception as exc:
        raise ValidateError(
            f"could not drop the scratch database {name}: {reason(exc, whole=True)}; "
            "drop it by hand"
        ) from None


def _server_execute(settings: llm_config.Settings, statements: list[str]) -> None:
    with drivers.connection(settings) as connection:
        for statement in statements:
            try:
                drivers.rows(connection, statement)
            except Exception as exc:
                raise ValidateError(
                    f"cannot prepare a scratch database on {settings.where}: "
                    f"{reason(exc, whole=True)}"
                ) from None


def round_trip(scratch: llm_config.Settings, report: Report, directory: str) -> list[Finding]:
    """Apply everything, roll everything back (down-to 0), apply again, on ``scratch``.

    Returns an ``apply`` error for the first failure (naming its file, line and statement) and
    an ``apply-leftover`` warning when tables survive the full rollback. A squashed
    baseline's Down refuses on purpose: the rollback stops at it (down-to its version)."""
    floor = _rollback_floor(scratch)
    back = (
        "rolling every migration back (down-to 0)"
        if floor == 0
        else f"rolling back to the squashed baseline (down-to {floor})"
    )
    phases: list[tuple[int, str, Callable[[], object]]] = [
        (0, "applying every migration (up)", lambda: migrate.up(scratch)),
        (1, back, lambda: migrate.down_to(scratch, str(floor))),
        (0, "applying every migration again (up)", lambda: migrate.up(scratch)),
    ]
    findings: list[Finding] = []
    for direction, label, action in phases:
        try:
            action()
        except Exception as exc:
            if not _migration_failure(exc):
                raise
            findings.append(_failure_finding(exc, label, report, directory))
            return findings
        if direction == 1 and floor == 0:
            left = _leftover_tables(scratch)
            if left:
                findings.append(
                    Finding(
                        directory,
                        None,
                        WARNING,
                        "apply-leftover",
                        "after rolling every migration back these tables remain: "
                        f"{', '.join(left)} (a Down does not undo its Up)",
                    )
                )
    return findings


def _rollback_floor(settings: llm_config.Settings) -> int:
    """0, or the version of a squashed baseline that is the oldest goose file."""
    files = discover(settings.migrations_dir)
    if files and is_baseline_name(files[0].name):
        return files[0].version
    return 0


def _migration_failure(exc: BaseException) -> bool:
    """A failure of the migrations themselves; anything else (the scratch server went away,
    a lock timeout) is validate's own trouble and propagates."""
    if isinstance(exc, (MigrationError, MigrateError, GooseParseError)):
        return True
    module = type(exc).__module__
    alembic_refusal = module.startswith("alembic") and type(exc).__name__ == "CommandError"
    return alembic_refusal or module.startswith("sqlalchemy")


def _failure_finding(exc: BaseException, label: str, report: Report, directory: str) -> Finding:
    """A failed statement names its file and number: point at the statement's line."""
    if isinstance(exc, StatementFailed) and exc.file_name in report.paths:
        side = 0 if exc.direction == "up" else 1
        lines = report.statement_lines.get(exc.file_name, ([], []))[side]
        line = lines[exc.number - 1] if exc.number <= len(lines) else None
        return Finding(
            report.paths[exc.file_name],
            line,
            ERROR,
            "apply",
            f"{label} failed at statement {exc.number}: {exc.detail}",
        )
    message = user_message(exc) or reason(exc, whole=True)
    return Finding(directory, None, ERROR, "apply", f"{label} failed: {message}")


def _leftover_tables(settings: llm_config.Settings) -> list[str]:
    with drivers.connection(settings) as connection:
        names = [
            str(row[0]) for row in drivers.rows(connection, settings.dialect.user_tables_sql())
        ]
    return sorted(n for n in names if not is_bookkeeping_table(n, settings.goose_table))
