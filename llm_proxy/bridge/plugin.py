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

    from . import alembic_api

    if getattr(ScriptDirectory, _PATCHED_FLAG, False):
        return
    original = alembic_api.original_from_config()

    def from_config(cls: type[ScriptDirectory], config: Any) -> ScriptDirectory:
        from .run import run_of

        run = run_of(config)
        if run is not None and run.script_directory is not None:
            return run.script_directory  # an llm-proxy command built it already
        directory = original(cls, config)
        from .config import goose_directory_from_config

        goose_dir = goose_directory_from_config(config)
        if goose_dir is not None:
            if not goose_dir.is_dir():
                from alembic.util import CommandError

                raise CommandError(
                    f"{config.config_file_name or 'alembic config'}: goose_directory "
                    f"{goose_dir} does not exist"
                )
            from .scripts import attach_goose_directory

            attach_goose_directory(directory, goose_dir)
        return directory

    alembic_api.replace_from_config(from_config)
    setattr(ScriptDirectory, _PATCHED_FLAG, True)


class _IterablePluginModule(types.ModuleType):
    def __iter__(self) -> Iterator[types.ModuleType]:
        yield self


sys.modules[__name__].__class__ = _IterablePluginModule
