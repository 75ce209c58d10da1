"""Alembic plugin: lets the stock `alembic` command see goose .sql files.

Alembic loads every module published under the ``alembic.plugins`` entry point
whenever ``alembic`` is imported, on every project of the machine. So this
hook is cheap (one attribute patch, no file access), cannot raise, and changes
nothing for a config that does not name a ``goose_directory``.

Two loader shapes exist in the wild: Alembic's docs call ``setup(plugin)`` on
the module, while Alembic 1.18-1.20 also iterate the loaded object and call
``setup`` on each item. This module serves both: it is a module whose class
makes it iterable, yielding itself once.
"""

from __future__ import annotations

import contextlib
import sys
import types
from collections.abc import Iterator
from typing import Any

_PATCHED_FLAG = "_llm_proxy_goose_patched"


def setup(plugin: Any = None) -> None:
    """Entry point called by Alembic; never raises, whatever the environment."""
    # A broken hook must not break `import alembic` machine-wide.
    with contextlib.suppress(Exception):
        _install()


def _install() -> None:
    from alembic.script.base import ScriptDirectory

    if getattr(ScriptDirectory, _PATCHED_FLAG, False):
        return
    original = ScriptDirectory.from_config.__func__  # type: ignore[attr-defined]

    def from_config(cls: type[ScriptDirectory], config: Any) -> ScriptDirectory:
        script_dir = original(cls, config)
        goose_dir = goose_directory_from_config(config)
        if goose_dir is not None:
            if not goose_dir.is_dir():
                from alembic.util import CommandError

                raise CommandError(
                    f"{config.config_file_name or 'alembic config'}: goose_directory "
                    f"{goose_dir} does not exist"
                )
            from llm_proxy.migrate.loader import attach_goose_directory

            attach_goose_directory(script_dir, goose_dir)
        return script_dir

    ScriptDirectory.from_config = classmethod(from_config)  # type: ignore[method-assign]
    setattr(ScriptDirectory, _PATCHED_FLAG, True)


def goose_directory_from_config(config: Any) -> Any:
    """The goose directory an Alembic Config names, for the database's dialect, or None."""
    from pathlib import Path

    options = {
        key: value
        for key in _goose_keys(config)
        if (value := config.get_alembic_option(key)) is not None
    }
    if not options:
        return None
    from llm_proxy.config import goose_directory_option

    override = config.attributes.get("llm_proxy_goose_directory")
    if override:
        return Path(override)
    dialect = _config_dialect(config)
    chosen = goose_directory_option(options, dialect)
    if chosen is None:
        return None
    path = Path(chosen)
    if not path.is_absolute() and config.config_file_name:
        path = Path(config.config_file_name).parent / path
    return path


def _goose_keys(config: Any) -> list[str]:
    return ["goose_directory"] + [
        f"goose_directory_{dialect}" for dialect in ("sqlite", "postgresql", "mysql")
    ]


def _config_dialect(config: Any) -> str:
    """The dialect of the database this Alembic run targets: the llm-proxy
    settings when called through llm-proxy, else DATABASE_URL / sqlalchemy.url."""
    import os

    from llm_proxy.config import ConfigError, normalize_url

    settings = config.attributes.get("llm_proxy_settings")
    if settings is not None:
        return settings.dialect
    url = os.environ.get("DATABASE_URL") or config.get_main_option("sqlalchemy.url")
    if not url:
        return "sqlite"
    try:
        return normalize_url(url)[1]
    except ConfigError:
        return "sqlite"


class _IterablePluginModule(types.ModuleType):
    def __iter__(self) -> Iterator[types.ModuleType]:
        yield self


sys.modules[__name__].__class__ = _IterablePluginModule
