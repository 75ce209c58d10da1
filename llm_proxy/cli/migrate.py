"""`llm-proxy migrate ...`: apply, roll back and inspect migrations.

Each command resolves Settings from its options, calls the llm_proxy.migrate
API, and prints the result the way goose (and the Go llm-proxy) printed it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from llm_proxy.config import Settings

from . import output
from .common import LazyGroup, database_options, handle_errors, reporter


@click.group(
    cls=LazyGroup,
    lazy={
        "validate": ".validate:validate_command",
        "create": ".authoring:create_command",
        "fix": ".authoring:fix_command",
    },
)
def migrate() -> None:
    """Apply, roll back and inspect database migrations (goose files + Alembic revisions)."""


def _up_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        [
            click.option(
                "--allow-missing",
                is_flag=True,
                help="Also apply migrations older than the current version that never ran.",
            ),
            click.option(
                "--ignore-checksums",
                is_flag=True,
                help="Run even if an applied file changed since it was applied.",
            ),
            click.option("--dry-run", is_flag=True, help="List what would run; change nothing."),
            click.option(
                "--sql",
                "offline_sql",
                is_flag=True,
                help="Print the SQL script instead of running it (no connection).",
            ),
            click.option(
                "--from",
                "start",
                metavar="VERSION",
                help="With --sql: the version the database is at (default: empty).",
            ),
        ]
    ):
        func = option(func)
    return func


def refuse_flag_combinations(
    *,
    dry_run: bool,
    offline_sql: bool,
    start: str | None,
    allow_missing: bool = False,
    ignore_checksums: bool = False,
) -> None:
    """A UsageError naming both flags when the flags of up/up-to/down/down-to
    contradict each other or one would be silently ignored."""
    if start is not None and not offline_sql:
        raise click.UsageError(
            "--from needs --sql: it says where the database is for the offline script; "
            "without --sql the database itself says"
        )
    if not offline_sql:
        return
    for flag, given, why in (
        ("--dry-run", dry_run, "--dry-run lists the files that would run, --sql prints their SQL"),
        ("--allow-missing", allow_missing, "--sql reads no database, so nothing can be missing"),
        ("--ignore-checksums", ignore_checksums, "--sql reads no database, compares no checksum"),
    ):
        if given:
            raise click.UsageError(f"{flag} and --sql cannot be combined: {why}")


def _run_up(settings: Settings, to: str | None, **flags: Any) -> None:
    from llm_proxy import migrate

    refuse_flag_combinations(**flags)
    if flags["offline_sql"]:
        migrate.sql_script(settings, direction="up", start=flags["start"], end=to, output=_stdout())
        return
    result = migrate.up(
        settings,
        to=to,
        allow_missing=flags["allow_missing"],
        ignore_checksums=flags["ignore_checksums"],
        dry_run=flags["dry_run"],
        report=reporter,
    )
    if flags["dry_run"]:
        for name in result.planned:
            click.echo(f"would apply {name}")
        if not result.planned:
            click.echo(output.NO_MIGRATIONS.format(version=result.version))
        return
    if not result.applied:
        click.echo(output.NO_MIGRATIONS.format(version=result.version))
    click.echo(output.APPLIED)


def _stdout() -> Any:
    """Where an offline script goes: written as it is made, never held whole."""
    return sys.stdout


@migrate.command()
@database_options
@_up_options
@handle_errors
def up(settings: Settings, **flags: Any) -> None:
    """Apply all pending migrations."""
    _run_up(settings, None, **flags)


@migrate.command("up-to")
@database_options
@click.argument("version")
@_up_options
@handle_errors
def up_to(settings: Settings, version: str, **flags: Any) -> None:
    """Apply pending migrations up to and including VERSION."""
    _run_up(settings, version, **flags)


@migrate.command("up-by-one")
@database_options
@click.option(
    "--allow-missing",
    is_flag=True,
    help="The next one may be older than the current version and never applied.",
)
@click.option(
    "--ignore-checksums",
    is_flag=True,
    help="Run even if an applied file changed since it was applied.",
)
@handle_errors
def up_by_one(settings: Settings, allow_missing: bool, ignore_checksums: bool) -> None:
    """Apply the next pending migration only (exit 1 when there is none, as goose)."""
    from llm_proxy import migrate
    from llm_proxy.errors import NoNextVersion

    try:
        migrate.up_by_one(
            settings,
            allow_missing=allow_missing,
            ignore_checksums=ignore_checksums,
            report=reporter,
        )
    except NoNextVersion as nothing:
        click.echo(output.NO_MIGRATIONS.format(version=nothing.version))
        raise
    click.echo(output.APPLIED)


def _down_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option(
        "--from",
        "start",
        metavar="VERSION",
        help="With --sql: the version the database is at (default: the head).",
    )(func)
    func = click.option(
        "--sql",
        "offline_sql",
        is_flag=True,
        help="Print the SQL script instead of running it (no connection).",
    )(func)
    return click.option("--dry-run", is_flag=True, help="List what would be rolled back.")(func)


@migrate.command()
@database_options
@_down_options
@handle_errors
def down(settings: Settings, dry_run: bool, offline_sql: bool, start: str | None) -> None:
    """Roll back the most recently applied migration."""
    from llm_proxy import migrate

    refuse_flag_combinations(dry_run=dry_run, offline_sql=offline_sql, start=start)
    if offline_sql:
        migrate.sql_script(settings, direction="down", start=start, output=_stdout())
        return
    migrate.down(settings, dry_run=dry_run, report=reporter)
    if not dry_run:
        click.echo(output.ROLLED_BACK)


@migrate.command("down-to")
@database_options
@click.argument("version")
@_down_options
@handle_errors
def down_to(
    settings: Settings,
    version: str,
    dry_run: bool,
    offline_sql: bool,
    start: str | None,
) -> None:
    """Roll back migrations newer than VERSION (0 rolls back everything)."""
    from llm_proxy import migrate

    refuse_flag_combinations(dry_run=dry_run, offline_sql=offline_sql, start=start)
    if offline_sql:
        migrate.sql_script(settings, direction="down", start=start, end=version, output=_stdout())
        return
    current = migrate.down_to(settings, version, dry_run=dry_run, report=reporter)
    if not dry_run:
        # goose's down-to always ends with this line, whether or not it rolled back.
        click.echo(output.NO_MIGRATIONS.format(version=current))
        click.echo(output.ROLLED_BACK)


@migrate.command()
@database_options
@handle_errors
def redo(settings: Settings) -> None:
    """Roll back the most recent migration and apply it again."""
    from llm_proxy import migrate

    migrate.redo(settings, report=reporter)
    click.echo(output.APPLIED)


@migrate.command()
@database_options
@handle_errors
def reset(settings: Settings) -> None:
    """Roll back every migration."""
    from llm_proxy import migrate

    migrate.reset(settings, report=reporter)
    click.echo(output.ROLLED_BACK)


@migrate.command()
@database_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@handle_errors
def status(settings: Settings, as_json: bool) -> None:
    """Show every migration and whether it is applied."""
    from llm_proxy import migrate

    report = migrate.status(settings)
    if as_json:
        import json

        click.echo(json.dumps(output.status_json(report, settings), indent=2))
        return
    click.echo("\n".join(output.status_lines(report)))


@migrate.command()
@database_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@handle_errors
def version(settings: Settings, as_json: bool) -> None:
    """Print the current migration version."""
    from llm_proxy import migrate

    current = migrate.version(settings)
    if as_json:
        import json

        click.echo(json.dumps({"format": 1, "current_version": current}))
        return
    click.echo(f"Current migration version: {current}")


@migrate.command()
@database_options
@click.argument("version")
@click.option(
    "--purge", is_flag=True, help="Empty alembic_version first (whatever revisions it names)."
)
@handle_errors
def stamp(settings: Settings, version: str, purge: bool) -> None:
    """Record VERSION as reached without running any migration (0: none)."""
    from llm_proxy import migrate

    current = migrate.stamp(settings, version, purge=purge, report=reporter)
    click.echo(output.STAMPED.format(version=version, current=current))


@migrate.command()
@database_options
@handle_errors
def repair(settings: Settings) -> None:
    """Re-record checksums of applied files after a deliberate edit."""
    from llm_proxy import migrate

    changed = migrate.repair(settings, report=reporter)
    if not changed:
        click.echo("checksums match: nothing to repair")


@migrate.command()
@database_options
@click.argument("versions", nargs=-1, metavar="[VERSION...]")
@click.option("--remove-sql", is_flag=True, help="Delete each goose file once converted.")
@click.option(
    "--expand-env",
    is_flag=True,
    help="Convert ENVSUB files, their ${VAR} values expanded from this environment.",
)
@handle_errors
def convert(
    settings: Settings, versions: tuple[str, ...], remove_sql: bool, expand_env: bool
) -> None:
    """Write goose files (default: all) as Python revisions with the same ids; no
    database changes, and goose_db_version rows keep being written."""
    from llm_proxy import migrate

    migrate.convert(
        settings, versions, remove_sql=remove_sql, expand_env=expand_env, report=click.echo
    )


@migrate.command("retire-goose")
@database_options
@click.option(
    "--drop-table",
    is_flag=True,
    help="Also drop goose's version table: the last step, it cannot be undone.",
)
@click.option("--undo", is_flag=True, help="Go back: goose's rows written again, from now on.")
@handle_errors
def retire_goose(settings: Settings, drop_table: bool, undo: bool) -> None:
    """Once every goose file is converted and no goose binary reads the database:
    write goose_retired = true in alembic.ini (no more goose_db_version rows;
    status and version read alembic_version), after bringing this database's
    alembic_version in line with goose's rows."""
    from llm_proxy import migrate

    if undo and drop_table:
        raise click.UsageError("--undo and --drop-table cannot be used together")
    if undo:
        migrate.unretire_goose(settings, report=click.echo)
    else:
        migrate.retire_goose(settings, drop_table=drop_table, report=click.echo)


@migrate.command()
@database_options
@click.option(
    "--through",
    "through",
    required=True,
    metavar="VERSION",
    help="The last goose file to squash: files up to it become one baseline at VERSION.",
)
@click.option(
    "--archive",
    type=click.Path(file_okay=False, path_type=Path),
    help="Move the squashed files into this directory instead of deleting them.",
)
@handle_errors
def squash(settings: Settings, through: str, archive: Path | None) -> None:
    """Replace the goose files up to VERSION by one baseline built from the schema they
    create (run on a scratch database of the same kind as the one configured)."""
    from llm_proxy.validate.squashing import squash as squash_files

    squash_files(settings, through, archive=archive, report=click.echo)
