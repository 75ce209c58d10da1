"""What every command shares: database options, one-line errors, progress output.

The CLI is the only place that prints or exits; everything it runs is the
Python API, which raises LlmProxyError subclasses with one-line messages.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn

import click

from llm_proxy import config as llm_config
from llm_proxy.errors import ConfigError, describe_unexpected


def fail(message: str, exit_code: int = 1) -> NoReturn:
    """Print one `Error:` line to stderr and exit."""
    click.echo(f"Error: {message}", err=True)
    sys.exit(exit_code)


def debugging() -> bool:
    """LLM_PROXY_DEBUG: show tracebacks instead of one-line errors."""
    return bool(os.environ.get("LLM_PROXY_DEBUG"))


def handle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Any error becomes one `Error:` line and exit code 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.Abort, SystemExit):
            raise
        except Exception as exc:
            if debugging():
                raise
            fail(describe_unexpected(exc))

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
        help="How long to wait for the migration lock (on SQLite also for another writer) "
        "[default 300]. It does not bound a statement's wait for a table lock on "
        "PostgreSQL/MySQL (the server's lock_timeout / lock_wait_timeout do).",
    )
    @click.option(
        "--ddl-lock-timeout",
        metavar="DURATION",
        help="How long a migration statement waits for a table lock before the migration "
        "is rolled back and tried again (PostgreSQL lock_timeout, MySQL lock_wait_timeout); "
        "0 = off [env LLM_PROXY_DDL_LOCK_TIMEOUT; default 5s].",
    )
    @click.option(
        "--ddl-lock-retries",
        metavar="N",
        help="Tries after the first when a migration gave up on a lock "
        "[env LLM_PROXY_DDL_LOCK_RETRIES; default 5].",
    )
    @click.option(
        "--statement-timeout",
        metavar="DURATION",
        help="Stop any migration statement running longer (PostgreSQL statement_timeout, "
        "MariaDB max_statement_time); 0 = off [env LLM_PROXY_STATEMENT_TIMEOUT; default 0].",
    )
    @click.option(
        "--goose-table",
        metavar="NAME",
        help="goose's version table, as goose's -table names it "
        "[env LLM_PROXY_GOOSE_TABLE; alembic.ini goose_table; default goose_db_version].",
    )
    @click.option(
        "--lock-strategy",
        type=click.Choice(["auto", "advisory", "table"], case_sensitive=False),
        default=None,
        help="How the migration lock is held on PostgreSQL/MySQL: a session advisory lock, "
        "a lease row in llm_proxy_migration_lock, or auto (the lease behind a connection "
        "pooler or on a Galera cluster) [env LLM_PROXY_LOCK_STRATEGY; default auto].",
    )
    @click.option(
        "--lock-lease",
        metavar="DURATION",
        help="How long a lease lock lasts unless renewed: another process takes over a "
        "killed holder's lease after this [env LLM_PROXY_LOCK_LEASE; default 60s].",
    )
    @click.option(
        "--lock-url",
        metavar="URL",
        help="A direct connection to the same database (past PgBouncer) that holds the "
        "advisory lock [env LLM_PROXY_MIGRATION_DATABASE_URL].",
    )
    @functools.wraps(func)
    def wrapper(
        db: str | None,
        database_url: str | None,
        migrations_dir: str | None,
        schema: str | None,
        lock_timeout: str | None,
        ddl_lock_timeout: str | None,
        ddl_lock_retries: str | None,
        statement_timeout: str | None,
        goose_table: str | None,
        lock_strategy: str | None,
        lock_lease: str | None,
        lock_url: str | None,
        **kwargs: Any,
    ) -> Any:
        try:
            settings = llm_config.resolve(
                db=db,
                database_url=database_url,
                migrations_dir=migrations_dir,
                schema=schema,
                lock_timeout=lock_timeout,
                ddl_lock_timeout=ddl_lock_timeout,
                ddl_lock_retries=ddl_lock_retries,
                statement_timeout=statement_timeout,
                goose_table=goose_table,
                lock_strategy=lock_strategy,
                lock_lease=lock_lease,
                lock_url=lock_url,
            )
        except ConfigError as exc:
            fail(str(exc))
        return func(settings, **kwargs)

    return wrapper


def reporter(line: str) -> None:
    """Progress lines: waits and warnings to stderr, the rest to stdout."""
    to_stderr = line.startswith(("waiting for migration lock", "warning:"))
    click.echo(line, err=to_stderr)


class LazyGroup(click.Group):
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

            self.add_command(getattr(import_module(module, "llm_proxy.cli"), attribute), name)
        return super().get_command(ctx, name)


class OneLineErrorsGroup(LazyGroup):
    """Usage errors (a missing argument, an unknown option) are one `Error:` line
    too, like every other error, with click's exit code 2."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            result = super().main(*args, **kwargs)
        except click.ClickException as exc:
            fail(exc.format_message(), exc.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)
