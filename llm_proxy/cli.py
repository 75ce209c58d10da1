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
from .errors import user_message


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
            message = user_message(exc)
            if message is None:
                detail = str(exc).strip().splitlines()
                message = f"{type(exc).__name__}: {detail[0] if detail else ''}"
            _fail(message)

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
        settings = llm_config.resolve(
            db=db,
            database_url=database_url,
            migrations_dir=migrations_dir,
            schema=schema,
            lock_timeout=lock_timeout,
        )
        return func(settings, **kwargs)

    return wrapper


def _report(line: str) -> None:
    click.echo(line)


def _waiting(line: str) -> None:
    click.echo(line, err=True)


def reporter(line: str) -> None:
    (_waiting if line.startswith("waiting for migration lock") else _report)(line)


@click.group()
@click.version_option(package_name="llm-proxy")
def main() -> None:
    """llm-proxy: database setup and migrations."""


@main.group()
def migrate() -> None:
    """Apply, roll back and inspect database migrations (goose files + Alembic revisions)."""


@migrate.command()
@database_options
@click.option(
    "--allow-missing",
    is_flag=True,
    help="Apply migrations older than the current version that were never applied.",
)
@handle_errors
def up(settings: llm_config.Settings, allow_missing: bool) -> None:
    """Apply all pending migrations."""
    from .migrate import commands

    result = commands.up(settings, allow_missing=allow_missing, report=reporter)
    if not result.applied:
        click.echo(f"goose: no migrations to run. current version: {result.version}")
    click.echo("Migrations applied successfully")


@migrate.command("up-to")
@database_options
@click.argument("version")
@click.option("--allow-missing", is_flag=True, help="Apply missing older migrations too.")
@handle_errors
def up_to(settings: llm_config.Settings, version: str, allow_missing: bool) -> None:
    """Apply pending migrations up to and including VERSION."""
    from .migrate import commands

    result = commands.up(settings, to=version, allow_missing=allow_missing, report=reporter)
    if not result.applied:
        click.echo(f"goose: no migrations to run. current version: {result.version}")
    click.echo("Migrations applied successfully")


@migrate.command()
@database_options
@handle_errors
def down(settings: llm_config.Settings) -> None:
    """Roll back the most recently applied migration."""
    from .migrate import commands

    commands.down(settings, report=reporter)
    click.echo("Migration rolled back successfully")


@migrate.command("down-to")
@database_options
@click.argument("version")
@handle_errors
def down_to(settings: llm_config.Settings, version: str) -> None:
    """Roll back migrations newer than VERSION (0 rolls back everything)."""
    from .migrate import commands

    commands.down_to(settings, version, report=reporter)
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
@handle_errors
def status(settings: llm_config.Settings) -> None:
    """Show every migration and whether it is applied."""
    from .migrate import commands

    for line in commands.format_status(commands.status(settings)):
        click.echo(line)


@migrate.command()
@database_options
@handle_errors
def version(settings: llm_config.Settings) -> None:
    """Print the current migration version."""
    from .migrate import commands

    click.echo(f"Current migration version: {commands.version(settings)}")


if __name__ == "__main__":  # pragma: no cover
    main()
