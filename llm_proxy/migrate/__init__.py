"""Public Python API of llm-proxy migrations.

    from llm_proxy import config, migrate
    settings = config.resolve(db="data/llm-proxy.db")
    migrate.up(settings, report=print)

Names are loaded on first use so that importing this package stays cheap
(Alembic loads llm_proxy.migrate.plugin on every `import alembic`).
"""

from __future__ import annotations

from typing import Any

_COMMANDS = (
    "up",
    "down",
    "down_to",
    "redo",
    "reset",
    "status",
    "version",
    "format_status",
    "load_scripts",
    "MigrateError",
    "Status",
    "StatusRow",
    "UpResult",
)

__all__ = list(_COMMANDS)


def __getattr__(name: str) -> Any:
    if name in _COMMANDS:
        from . import commands

        return getattr(commands, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
