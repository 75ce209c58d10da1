"""The `llm-proxy` command line: a thin click layer over llm_proxy.migrate.

Heavy imports (SQLAlchemy, Alembic) happen inside the commands that need
them; subcommand modules are imported only when named.
"""

from __future__ import annotations

import click

from .common import OneLineErrorsGroup


@click.group(
    cls=OneLineErrorsGroup,
    lazy={
        "migrate": ".migrate:migrate",
        "goose": ".goose:goose_command",
        "setup": ".app:setup_command",
        "server": ".app:server_command",
    },
)
@click.version_option(package_name="llm-proxy")
def main() -> None:
    """llm-proxy: database setup and migrations."""


__all__ = ["main"]
