"""`llm-proxy migrate create` and `llm-proxy migrate fix`: the click layer over
llm_proxy.migrate.authoring. Registered lazily on the `migrate` group."""

from __future__ import annotations

import click

from llm_proxy import config as llm_config

from .common import database_options, handle_errors


@click.command("create")
@database_options
@click.argument("name")
@click.option(
    "--sql",
    "kind",
    flag_value="sql",
    help="A goose .sql file in the migrations directory [default].",
)
@click.option(
    "--python", "kind", flag_value="python", help="An Alembic revision in alembic/versions."
)
@click.option(
    "--sequential",
    "numbering",
    flag_value="sequential",
    help="Next sequential version, padded like the directory's files [default].",
)
@click.option("--timestamp", "numbering", flag_value="timestamp", help="A UTC timestamp version.")
@handle_errors
def create_command(
    settings: llm_config.Settings, name: str, kind: str | None, numbering: str | None
) -> None:
    """Create a new migration NAME: a goose file, or an Alembic revision chained to the head."""
    from llm_proxy.migrate import authoring

    if kind == authoring.PYTHON and numbering is not None:
        raise click.UsageError("--sequential/--timestamp apply to goose (.sql) files only")
    created = authoring.create(
        settings, name, kind=kind or authoring.SQL, numbering=numbering or authoring.SEQUENTIAL
    )
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
