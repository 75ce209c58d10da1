"""Alembic Configs for llm-proxy's Settings, and Settings for the stock command.

An llm-proxy command builds its Config here and attaches its ``Run``; a stock
``alembic`` run starts from alembic.ini and the environment, and env.py asks
``settings_from`` which database that means.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llm_proxy import config as llm_config
from llm_proxy import dialects
from llm_proxy.errors import ConfigError

from .run import RUN_KEY, Run

if TYPE_CHECKING:
    from alembic.config import Config

GOOSE_DIRECTORY_KEYS = ("goose_directory",) + tuple(
    f"goose_directory_{dialect.name}" for dialect in dialects.ALL
)


def alembic_config(settings: llm_config.Settings, run: Run | None = None) -> Config:
    """The project's alembic.ini (when there is one) with llm-proxy's script location."""
    from alembic.config import Config

    config = Config(str(settings.alembic_ini)) if settings.alembic_ini else Config()
    config.set_main_option("script_location", str(settings.script_location))
    if run is not None:
        config.attributes[RUN_KEY] = run
    return config


def settings_from(config: Config) -> llm_config.Settings:
    """Settings for a stock `alembic` run: the environment (DATABASE_URL,
    DATABASE_PATH, ...) or, when neither names a database, the ini's sqlalchemy.url."""
    env = dict(os.environ)
    ini_url = config.get_main_option("sqlalchemy.url")
    if ini_url and not env.get("DATABASE_URL") and not env.get("DATABASE_PATH"):
        env["DATABASE_URL"] = ini_url
    return llm_config.resolve(env=env)


def goose_directory_from_config(config: Any) -> Path | None:
    """The goose directory an Alembic Config names for its database's dialect, or
    None (a project that names none is left as Alembic made it)."""
    options = {
        key: value
        for key in GOOSE_DIRECTORY_KEYS
        if (value := config.get_alembic_option(key)) is not None
    }
    if not options:
        return None
    chosen = llm_config.goose_directory_option(options, _config_dialect(config))
    if chosen is None:
        return None
    path = Path(chosen)
    if not path.is_absolute() and config.config_file_name:
        path = Path(config.config_file_name).parent / path
    return path


def _config_dialect(config: Any) -> dialects.Dialect:
    """The dialect of the database a stock run targets: DATABASE_URL, else the
    ini's sqlalchemy.url, else SQLite."""
    url = os.environ.get("DATABASE_URL") or config.get_main_option("sqlalchemy.url")
    if not url:
        return dialects.SQLITE
    try:
        return dialects.from_url(url)[0]
    except ConfigError:
        return dialects.SQLITE
