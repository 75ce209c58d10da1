"""Alembic plugin: lets the stock `alembic` command see goose .sql files.

Alembic (1.18 and later) loads every module published under the
``alembic.plugins`` entry point whenever ``alembic`` is imported, in every
project of the environment. The hook patches ``ScriptDirectory.from_config``
(Alembic has no public hook for adding revisions), and the patch is made so
that a project whose configuration names no ``goose_directory`` gets exactly
what Alembic alone gives it: the same object, with nothing read beyond what
Alembic read, and no other llm-proxy module imported. The hook never raises.

Two loader shapes exist: Alembic's docs call ``setup(plugin)`` on the module,
while older releases (1.18.0 among them) iterate the loaded object and call
``setup`` on each item. This module serves both: it is a module whose class
makes it iterable, yielding itself once.
"""

from __future__ import annotations

import contextlib
import sys
import types
from collections.abc import Iterator
from typing import Any

from .keys import RUN_KEY

_PATCHED_FLAG = "_llm_proxy_goose_patched"
_GOOSE_OPTION_PREFIX = "goose_directory"  # goose_directory, goose_directory_<dialect>


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
        if RUN_KEY in config.attributes:
            from .run import run_of

            run = run_of(config)
            if run is not None and run.script_directory is not None:
                return run.script_directory  # an llm-proxy command built it already
        directory = original(cls, config)
        if not names_goose_directory(config):
            return directory  # not a goose project: exactly what Alembic made
        return _with_goose_files(directory, config)

    alembic_api.replace_from_config(from_config)
    setattr(ScriptDirectory, _PATCHED_FLAG, True)


def installed() -> bool:
    """Whether the hook is in place in this process."""
    from alembic.script.base import ScriptDirectory

    return bool(getattr(ScriptDirectory, _PATCHED_FLAG, False))


def names_goose_directory(config: Any) -> bool:
    """Whether the Config names a goose directory, from what Alembic itself has
    already read (its ini section, its pyproject.toml section): no file, no
    environment variable and no other llm-proxy module is touched for a project
    that does not."""
    section = config.config_ini_section
    file_config = config.file_config
    names = list(file_config.options(section)) if file_config.has_section(section) else []
    names += list(getattr(config, "toml_alembic_config", None) or ())
    return any(str(name).startswith(_GOOSE_OPTION_PREFIX) for name in names)


def _with_goose_files(directory: Any, config: Any) -> Any:
    """The directory with the goose files of the Config's database's dialect
    (chosen by the same resolution env.py uses to connect)."""
    from alembic.util import CommandError

    from llm_proxy.errors import LlmProxyError

    from .config import stock_settings
    from .scripts import attach_goose_directory

    try:
        settings, goose_dir = stock_settings(config)
    except LlmProxyError as exc:  # what the stock command prints as one line
        raise CommandError(str(exc)) from None
    if goose_dir is None:
        return directory  # no goose directory for this dialect: Python revisions only
    if not goose_dir.is_dir():
        raise CommandError(
            f"{config.config_file_name or 'alembic config'}: goose_directory "
            f"{goose_dir} does not exist"
        )
    return attach_goose_directory(
        directory, goose_dir, settings.dialect, retired=settings.goose_retired
    )


class _IterablePluginModule(types.ModuleType):
    def __iter__(self) -> Iterator[types.ModuleType]:
        yield self


sys.modules[__name__].__class__ = _IterablePluginModule
