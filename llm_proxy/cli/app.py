"""`llm-proxy setup` and `llm-proxy server`: the two places migrations run by themselves.

Registered lazily on the main group; heavy imports stay inside the commands.
"""

from __future__ import annotations

import dataclasses

import click

from llm_proxy import config as llm_config
from llm_proxy.errors import DatabaseNewerThanCode, describe_unexpected

from . import output
from .common import database_options, debugging, handle_errors, reporter


def _prepare(settings: llm_config.Settings) -> None:
    """Create the SQLite file (owner-only) or check the server answers."""
    from llm_proxy import database
    from llm_proxy.db import drivers

    if settings.sqlite_path is not None:  # a database file
        created = database.ensure_sqlite_file(settings.sqlite_path)
        drivers.connect(settings).close()  # fails clearly on a file that is not SQLite
        verb = "Created" if created else "Using existing"
        click.echo(f"{verb} {settings.dialect.label} database {settings.sqlite_path}")
    elif settings.dialect.is_server:
        drivers.connect(settings).close()
        click.echo(f"Connected to {settings.dialect.label} at {settings.where}")


@click.command()
@database_options
@handle_errors
def setup_command(settings: llm_config.Settings) -> None:
    """Create the database if needed and apply pending migrations.

    A migration failure is a warning: setup finishes and exits 0, and
    `llm-proxy migrate up` can be run later.
    """
    from llm_proxy import database

    _prepare(settings)
    try:
        result = database.migrate(settings, report=reporter)
    except Exception as exc:
        if debugging():
            raise
        click.echo(
            f"Warning: Failed to run migrations during setup: {describe_unexpected(exc)}", err=True
        )
        click.echo("You can run migrations manually later with: llm-proxy migrate up", err=True)
        return
    if not result.applied:
        click.echo(output.NO_MIGRATIONS.format(version=result.version))
    click.echo("Database migrations applied successfully")


def _check_addr(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[str, int]:
    from llm_proxy.server import parse_addr

    try:
        return parse_addr(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _check_readiness_timeout(_ctx: click.Context, _param: click.Parameter, value: float) -> float:
    if not 0 < value <= 60:  # also refuses NaN
        raise click.BadParameter(f"must be between 0 and 60 seconds, not {value:g}")
    return value


@click.command()
@database_options
@click.option(
    "--addr",
    default="127.0.0.1:8080",
    show_default=True,
    metavar="HOST:PORT",
    callback=_check_addr,
    help="Where to serve /healthz and /readyz (port 0 picks a free port).",
)
@click.option(
    "--no-migrate",
    is_flag=True,
    help="Do not apply pending migrations at start [env LLM_PROXY_AUTO_MIGRATE=false].",
)
@click.option(
    "--readiness-timeout",
    type=float,
    default=2.0,
    show_default=True,
    envvar="LLM_PROXY_READINESS_TIMEOUT",
    metavar="SECONDS",
    callback=_check_readiness_timeout,
    help="Longest /readyz waits for the database before answering 503 "
    "[env LLM_PROXY_READINESS_TIMEOUT].",
)
@handle_errors
def server_command(
    settings: llm_config.Settings,
    addr: tuple[str, int],
    no_migrate: bool,
    readiness_timeout: float,
) -> None:
    """Open the database (migrating it unless told not to) and serve health checks.

    The address is taken first, so a port in use fails before any migration
    runs. A --database-url (and a --lock-url) is moved into DATABASE_URL (and
    LLM_PROXY_MIGRATION_DATABASE_URL): the process executes itself again, since
    a server's command line is visible to every local user.
    Stops cleanly on SIGTERM or SIGINT.
    """
    from llm_proxy import database
    from llm_proxy import server as http

    from .reexec import move_secrets_to_environment

    params = click.get_current_context().params
    move_secrets_to_environment(
        {
            option: params[name]
            for option, name in (("--database-url", "database_url"), ("--lock-url", "lock_url"))
            if params.get(name)
        }
    )
    if no_migrate:
        settings = dataclasses.replace(settings, auto_migrate=False)
    with http.bind(*addr) as httpd:  # bound, not listening: connections refused until served
        if not settings.auto_migrate:
            click.echo("Automatic migrations are off; /readyz reports any pending migration")
        try:
            project, engine = database.open_project(settings, report=reporter)
        except DatabaseNewerThanCode as exc:
            raise click.ClickException(str(exc)) from None
        try:
            readiness = http.Readiness(settings, project, timeout=readiness_timeout)
            http.serve_until_signalled(
                httpd,
                readiness,
                lambda: click.echo(f"llm-proxy listening on {http.listening_url(httpd)}"),
            )
        finally:
            engine.dispose()
    click.echo("llm-proxy stopped")
