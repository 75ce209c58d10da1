"""`llm-proxy migrate validate`: the click layer over llm_proxy.migrate.validate.

Exit codes: 0 clean (warnings allowed unless --strict), 1 problems found, 2 validation could not
run (bad flags, no migrations directory, no scratch database), 143 stopped by SIGTERM (after
removing the scratch database). Registered lazily on the `migrate` group; SQLAlchemy and Alembic
are imported only for --apply.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

from llm_proxy import config as llm_config
from llm_proxy.errors import describe_unexpected

from .common import debugging

if TYPE_CHECKING:
    from llm_proxy.validate.lint import Finding, Report

EXIT_CLEAN = 0
EXIT_PROBLEMS = 1
EXIT_CANNOT_RUN = 2
EXIT_TERMINATED = 128 + signal.SIGTERM  # what a shell reports for a SIGTERM'd process


def _cannot_run(message: str) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(EXIT_CANNOT_RUN)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


@click.command("validate")
@click.option(
    "--db",
    "db",
    metavar="PATH",
    help="Validate SQLite migrations (the file itself is never opened).",
)
@click.option(
    "--database-url",
    metavar="URL",
    help="Dialect of the migrations; with --apply, the PostgreSQL/MySQL server on which a "
    "scratch database is created and dropped [env DATABASE_URL chooses the dialect only].",
)
@click.option(
    "--migrations-dir",
    metavar="DIR",
    help="goose .sql directory [env LLM_PROXY_MIGRATIONS_DIR].",
)
@click.option(
    "--apply",
    "apply_",
    is_flag=True,
    help="Also run up, down-to 0 and up again on a scratch database.",
)
@click.option(
    "--check-db",
    is_flag=True,
    help="Also read goose_db_version of the database --db/--database-url (or the environment) "
    "names, read only, and report duplicate or inconsistent rows.",
)
@click.option(
    "--deployed-through",
    type=click.IntRange(min=0),
    default=0,
    metavar="VERSION",
    help="Files up to VERSION have run on deployed databases: no lock hazards are reported "
    "for them, and the tables they create have rows (default 0: every table a file of the "
    "directory creates is new when the next file runs).",
)
@click.option(
    "--goose-table",
    metavar="NAME",
    help="With --check-db: goose's version table [env LLM_PROXY_GOOSE_TABLE; "
    "default goose_db_version].",
)
@click.option("--strict", is_flag=True, help="Warnings fail too.")
def validate_command(
    db: str | None,
    database_url: str | None,
    migrations_dir: str | None,
    apply_: bool,
    check_db: bool,
    deployed_through: int,
    goose_table: str | None,
    strict: bool,
) -> None:
    """Check every migration file: names, parsing and common mistakes.

    Prints one line per problem, `path:line: error|warning: message [rule]`, then a summary.
    """
    from llm_proxy.validate import lint as validate

    try:
        settings = llm_config.resolve(
            db=db, database_url=database_url, migrations_dir=migrations_dir, goose_table=goose_table
        )
        directory = str(settings.migrations_dir)
        report = validate.lint(
            validate.iter_directory(settings.migrations_dir),
            os.environ,
            directory=directory,
            revision_ids=validate.read_revision_ids(settings.versions_dir),
            dialect=settings.dialect if _dialect_known(db, database_url, settings) else None,
            deployed_through=deployed_through,
        )
    except Exception as exc:
        _cannot_run(_message(exc))
        return

    findings = list(report.findings)
    outcome = ""
    if check_db:
        found, outcome = _check_database(settings, report)
        findings.extend(found)
    if apply_:
        if settings.dialect.is_server and not database_url:
            _cannot_run(
                f"--apply for {settings.dialect.name} migrations needs --database-url naming "
                "a server where a scratch database may be created (DATABASE_URL from the "
                "environment is "
                "never used for that)"
            )
        if report.loadable:
            applied, where = _apply(settings, report, directory)
            findings.extend(applied)
            broke = any(f.rule == "apply" for f in applied)
            outcome += f"; up, down-to 0, up on {where}: {'failed' if broke else 'passed'}"
        else:
            outcome += "; --apply skipped: the files above do not load"

    for finding in findings:
        click.echo(finding.render())
    errors = sum(1 for f in findings if f.severity == validate.ERROR)
    warnings = len(findings) - errors
    failed = errors > 0 or (strict and warnings > 0)
    strict_note = " (--strict: warnings fail)" if strict and warnings and not errors else ""
    click.echo(
        f"{_plural(report.files, 'migration file')} in {directory}: "
        f"{_plural(errors, 'error')}, {_plural(warnings, 'warning')}{strict_note}{outcome}"
    )
    sys.exit(EXIT_PROBLEMS if failed else EXIT_CLEAN)


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C: the scratch database is removed on the way out
    (and psycopg cancels the running statement, as it does for Ctrl-C)."""


@contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """SIGTERM's default action ends the process on the spot, leaving the scratch
    database behind; here it raises instead, once (a second SIGTERM during the
    cleanup is ignored; SIGKILL still ends everything)."""
    received: list[int] = []

    def on_sigterm(signum: int, _frame: object) -> None:
        if not received:
            received.append(signum)
            raise _Terminated

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _check_database(settings: llm_config.Settings, report: Report) -> tuple[list[Finding], str]:
    """The findings of the database's goose_db_version rows, and the summary's part;
    exits 2 when the database cannot be read."""
    if not report.loadable:
        return [], "; --check-db skipped: the files above do not load"
    from llm_proxy.validate import rows

    try:
        found = rows.check_database(settings)
    except Exception as exc:
        _cannot_run(_message(exc))
        raise  # unreachable: _cannot_run exits
    problems = _plural(len(found), "problem")
    return found, f"; {settings.goose_table} rows of {settings.where}: {problems}"


def _dialect_known(db: str | None, database_url: str | None, settings: llm_config.Settings) -> bool:
    """A directory given alone may hold any dialect's files: SQLite (the default) is then
    a guess, too weak for dialect rules. A named database, or its packaged directory, is
    not."""
    named = (
        db
        or database_url
        or any(os.environ.get(name) for name in ("DATABASE_URL", "DATABASE_PATH", "DB_DRIVER"))
    )
    return bool(named) or settings.migrations_dir_source == "packaged default"


def _apply(
    settings: llm_config.Settings, report: Report, directory: str
) -> tuple[list[Finding], str]:
    """The round trip's findings and where it ran; exits 2 when there is no scratch database."""
    from llm_proxy.validate import roundtrip

    try:
        with _sigterm_unwinds(), roundtrip.scratch_database(settings) as scratch:
            where = roundtrip.describe(scratch)
            return roundtrip.round_trip(scratch, report, directory), where
    except _Terminated:
        click.echo("Error: stopped by SIGTERM; the scratch database was removed", err=True)
        sys.exit(EXIT_TERMINATED)
    except Exception as exc:
        _cannot_run(_message(exc))
        raise  # unreachable: _cannot_run exits


def _message(exc: BaseException) -> str:
    if debugging():
        raise exc
    return describe_unexpected(exc)
