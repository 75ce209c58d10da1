"""`llm-proxy migrate create` and `llm-proxy migrate fix`: the click layer over
llm_proxy.migrate.authoring. Registered lazily on the `migrate` group."""

from __future__ import annotations

import click

from llm_proxy import config as llm_config

from .common import database_options, handle_errors


@click.command("create")
@database_options
@click.argument("name")
@click.option("--sql", "as_sql", is_flag=True, help="A goose .sql file [default].")
@click.option(
    "--python", "as_python", is_flag=True, help="An Alembic revision in alembic/versions."
)
@click.option(
    "--sequential",
    is_flag=True,
    help="Next sequential version, padded like the directory's files [default].",
)
@click.option("--timestamp", is_flag=True, help="A UTC timestamp version.")
@handle_errors
def create_command(
    settings: llm_config.Settings,
    name: str,
    as_sql: bool,
    as_python: bool,
    sequential: bool,
    timestamp: bool,
) -> None:
    """Create a new migration NAME: a goose file, or an Alembic revision chained to the head."""
    from llm_proxy.migrate import authoring

    # One option per flag, so that a contradiction is refused instead of won by the last.
    if as_sql and as_python:
        raise click.UsageError(
            "--sql and --python cannot be combined: a migration is a goose file or a revision"
        )
    if sequential and timestamp:
        raise click.UsageError("--sequential and --timestamp cannot be combined: choose one")
    if as_python and (sequential or timestamp):
        numbering_flag = "--sequential" if sequential else "--timestamp"
        raise click.UsageError(
            f"--python and {numbering_flag} cannot be combined: --sequential/--timestamp "
            "apply to goose (.sql) files only"
        )
    kind = authoring.PYTHON if as_python else authoring.SQL
    numbering = authoring.TIMESTAMP if timestamp else authoring.SEQUENTIAL
    created = authoring.create(settings, name, kind=kind, numbering=numbering)
    click.echo(f"Created new file: {created.path}")
    if created.after:
        click.echo(f"  it runs after {', '.join(created.after)} (see its first line)")


@click.command("fix")
@database_options
@handle_errors
def fix_command(settings: llm_config.Settings) -> None:
    """Rename timestamp-versioned goose files to the next sequential versions."""
    from llm_proxy.migrate import authoring

    result = authoring.fix(settings)
    for old, new in result.renamed:
        click.echo(f"RENAMED {old} => {new}")
    for path in result.updated_markers:
        click.echo(f"UPDATED {path} (its '-- llm-proxy: after' line)")
    if not result.renamed:
        click.echo("no timestamp-versioned files: nothing to fix")
