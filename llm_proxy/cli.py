"""The `llm-proxy` command line: a thin click layer over llm_proxy.migrate.

Heavy imports (SQLAlchemy, Alembic) happen inside the commands that need them.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any

import click

from . import config as llm_config
from .errors import ConfigError, describe_unexpected


def _fail(message: str) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(1)


def handle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.Abort, SystemExit):
            raise
        except Exception as exc:
            if os.environ.get("LLM_PROXY_DEBUG"):
                raise
            _fail(describe_unexpected(exc))

    return wrapper


def database_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--db/--database-url/--migrations-dir/... on every command, turned into Settings."""

    @click.option(
        "--db",
        "db",
        metavar="PATH",
        help="SQLite database file [env DATABASE_PATH; default data/llm-proxy.db].",
    )
    @click.option(
        "--database-url",
        metavar="URL",
        help="postgres://, mysql:// or SQLAlchemy URL [env DATABASE_URL].",
    )
    @click.option(
        "--migrations-dir",
        metavar="DIR",
        help="goose .sql directory [env LLM_PROXY_MIGRATIONS_DIR].",
    )
    @click.option(
        "--schema", metavar="NAME", help="PostgreSQL schema for tables and version tables."
    )
    @click.option(
        "--lock-timeout",
        metavar="SECONDS",
        help="How long to wait for the migration lock [default 300].",
    )
    @functools.wraps(func)
    def wrapper(
        db: str | None,
        database_url: str | None,
        migrations_dir: str | None,
        schema: str | None,
        lock_timeout: str | None,
        **kwargs: Any,
    ) -> Any:
        try:
            settings = llm_config.resolve(
                db=db,
                database_url=database_url,
                migrations_dir=migrations_dir,
                schema=schema,
                lock_timeout=lock_timeout,
            )
        except ConfigError as exc:
            _fail(str(exc))
        return func(settings, **kwargs)

    return wrapper


def _report(line: str) -> None:
    click.echo(line)


def _waiting(line: str) -> None:
    click.echo(line, err=True)


def reporter(line: str) -> None:
    to_stderr = line.startswith(("waiting for migration lock", "warning:"))
    (_waiting if to_stderr else _report)(line)


class _LazyGroup(click.Group):
    """Subcommands that live in their own modules are imported only when named,
    so `migrate up` on a server start does not load setup/server/validate code."""

    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy or {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy and name not in self.commands:
            module, attribute = self.lazy[name].split(":")
            from importlib import import_module

            self.add_command(getattr(import_module(module, __package__), attribute), name)
        return super().get_command(ctx, name)


class _OneLineErrorsGroup(_LazyGroup):
    """Usage errors (a missing argument, an unknown option) are one `Error:` line
    too, like every other error, with click's exit code 2."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            result = super().main(*args, **kwargs)
        except click.ClickException as exc:
            click.echo(f"Error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)


@click.group(
    cls=_OneLineErrorsGroup,
    lazy={"setup": ".app_cli:setup_command", "server": ".app_cli:server_command"},
)
@click.version_option(package_name="llm-proxy")
def main() -> None:
    """llm-proxy: database setup and migrations."""


@main.group(
    cls=_LazyGroup,
    lazy={
        "validate": ".validate_cli:validate_command",
        "create": ".authoring_cli:create_command",
        "fix": ".authoring_cli:fix_command",
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


def _run_up(settings: llm_config.Settings, to: str | None, **flags: Any) -> None:
    from .migrate import commands

    if flags["offline_sql"]:
        click.echo(
            commands.sql_script(settings, direction="up", start=flags["start"], end=to), nl=False
        )
        return
    result = commands.up(
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
            click.echo(f"goose: no migrations to run. current version: {result.version}")
        return
    if not result.applied:
        click.echo(f"goose: no migrations to run. current version: {result.version}")
    click.echo("Migrations applied successfully")


@migrate.command()
@database_options
@_up_options
@handle_errors
def up(settings: llm_config.Settings, **flags: Any) -> None:
    """Apply all pending migrations."""
    _run_up(settings, None, **flags)


@migrate.command("up-to")
@database_options
@click.argument("version")
@_up_options
@handle_errors
def up_to(settings: llm_config.Settings, version: str, **flags: Any) -> None:
    """Apply pending migrations up to and including VERSION."""
    _run_up(settings, version, **flags)


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
def down(
    settings: llm_config.Settings, dry_run: bool, offline_sql: bool, start: str | None
) -> None:
    """Roll back the most recently applied migration."""
    from .migrate import commands

    if offline_sql:
        click.echo(commands.sql_script(settings, direction="down", start=start), nl=False)
        return
    commands.down(settings, dry_run=dry_run, report=reporter)
    if not dry_run:
        click.echo("Migration rolled back successfully")


@migrate.command("down-to")
@database_options
@click.argument("version")
@_down_options
@handle_errors
def down_to(
    settings: llm_config.Settings,
    version: str,
    dry_run: bool,
    offline_sql: bool,
    start: str | None,
) -> None:
    """Roll back migrations newer than VERSION (0 rolls back everything)."""
    from .migrate import commands

    if offline_sql:
        click.echo(
            commands.sql_script(settings, direction="down", start=start, end=version), nl=False
        )
        return
    commands.down_to(settings, version, dry_run=dry_run, report=reporter)
    if not dry_run:
        click.echo("Migration rolled back successfully")


@migrate.command()
@database_options
@handle_errors
def redo(settings: llm_config.Settings) -> None:
    """Roll back the most recent migration and apply it again."""
    from .migrate import commands

    commands.redo(settings, report=reporter)
    click.echo("Migrations applied successfully")


@migrate.command()
@database_options
@handle_errors
def reset(settings: llm_config.Settings) -> None:
    """Roll back every migration."""
    from .migrate import commands

    commands.reset(settings, report=reporter)
    click.echo("Migration rolled back successfully")


@migrate.command()
@database_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@handle_errors
def status(settings: llm_config.Settings, as_json: bool) -> None:
    """Show every migration and whether it is applied."""
    from .migrate import commands

    report = commands.status(settings)
    if as_json:
        import json

        click.echo(json.dumps(commands.status_json(report, settings), indent=2))
        return
    click.echo("\n".join(commands.format_status(report)))


@migrate.command()
@database_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@handle_errors
def version(settings: llm_config.Settings, as_json: bool) -> None:
    """Print the current migration version."""
    from .migrate import commands

    current = commands.version(settings)
    if as_json:
        import json

        click.echo(json.dumps({"format": 1, "current_version": current}))
        return
    click.echo(f"Current migration version: {current}")


@migrate.command()
@database_options
@handle_errors
def repair(settings: llm_config.Settings) -> None:
    """Re-record checksums of applied files after a deliberate edit."""
    from .migrate import commands

    changed = commands.repair(settings, report=reporter)
    if not changed:
        click.echo("checksums match: nothing to repair")


if __name__ == "__main__":  # pragma: no cover
    main()
