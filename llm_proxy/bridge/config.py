"""Alembic Configs for llm-proxy's Settings, and Settings for the stock command.

An llm-proxy command builds its Config here and attaches its ``Run``; a stock
``alembic`` run (or an application's own Config) is read by
``stock_settings``, the one answer to "which database, which goose files" that
both the plugin and env.py use.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llm_proxy import config as llm_config
from llm_proxy import dialects
from llm_proxy.errors import ConfigError

from .keys import GIVEN_CONNECTION_KEY
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


def stock_settings(config: Config) -> tuple[llm_config.Settings, Path | None]:
    """(Settings, goose directory) for a stock `alembic` run or a Config an
    application built, by the one resolution ``llm_config.resolve_for_alembic``:
    a connection passed in ``attributes``, `-x` arguments and options set on the
    Config in code, then the environment, then alembic.ini. The plugin asks it
    which goose files, env.py which database: they cannot disagree."""
    return llm_config.resolve_for_alembic(alembic_sources(config), os.environ)


def alembic_sources(config: Any) -> llm_config.AlembicSources:
    """What `config` says, split by where it was said."""
    on_file = _file_options(config)
    explicit: dict[str, str] = {}
    url = config.get_main_option("sqlalchemy.url")
    if url and url != on_file.get("sqlalchemy.url"):
        explicit["database_url"] = url  # set in code: it beats the environment
    explicit.update(x_arguments(config))
    given = given_connection_url(config)
    if given is not None:  # the connection that will run the migrations decides
        explicit = {k: v for k, v in explicit.items() if k not in _DATABASE_ARGUMENTS}
        explicit["database_url"] = given
    explicit_goose: dict[str, str] = {}
    file_goose: dict[str, str] = {}
    for key in GOOSE_DIRECTORY_KEYS:
        value = _option(config, key)
        if value is None:
            continue
        if key in on_file:
            set_in_code = value != on_file[key]
        else:  # not in the ini: set in code, or from pyproject.toml's [tool.alembic]
            set_in_code = config.file_config.has_option(config.config_ini_section, key)
        (explicit_goose if set_in_code else file_goose)[key] = value
    config_file = Path(config.config_file_name).absolute() if config.config_file_name else None
    script_location = config.get_main_option("script_location")
    return llm_config.AlembicSources(
        explicit=explicit,
        explicit_goose=explicit_goose,
        file_url=on_file.get("sqlalchemy.url"),
        file_goose=file_goose,
        config_dir=config_file.parent if config_file else None,
        script_location=Path(script_location) if script_location else None,
        alembic_ini=config_file,
        goose_table=_option(config, "goose_table"),
        goose_retired=_option(config, llm_config.GOOSE_RETIRED),
    )


_DATABASE_ARGUMENTS = ("database_url", "database_path", "db_driver")


def x_arguments(config: Any) -> dict[str, str]:
    """`alembic -x NAME=VALUE` arguments; an unknown or empty one is refused
    (a misspelt `-x databse_url=...` must not quietly migrate another database)."""
    raw = getattr(getattr(config, "cmd_opts", None), "x", None) or []
    found: dict[str, str] = {}
    for argument in raw:
        name, equals, value = argument.partition("=")
        name = name.strip()
        if name not in llm_config.X_ARGUMENTS:
            known = ", ".join(llm_config.X_ARGUMENTS)
            raise ConfigError(f"-x {argument}: unknown argument (llm-proxy knows {known})")
        if not equals or not value.strip():
            raise ConfigError(f"-x {argument}: give a value ({name}=...)")
        found[name] = value.strip()
    return found


def given_connection_url(config: Any) -> str | None:
    """The URL of the Connection or Engine a caller put in ``attributes["connection"]``
    (Alembic's cookbook), with the password, without the DBAPI driver name: our
    own connections (the lock, plain reads) use llm-proxy's driver."""
    given = config.attributes.get(GIVEN_CONNECTION_KEY)
    if given is None:
        return None
    from sqlalchemy.engine import Connection, Engine

    if not isinstance(given, Connection | Engine):
        raise ConfigError(
            f'attributes["{GIVEN_CONNECTION_KEY}"] must be a SQLAlchemy Connection or '
            f"Engine, not {type(given).__name__}"
        )
    url = given.engine.url
    return str(url.set(drivername=url.get_backend_name()).render_as_string(hide_password=False))


def _option(config: Any, key: str) -> str | None:
    value = config.get_alembic_option(key)
    return value if isinstance(value, str) and value else None


def _file_options(config: Any) -> dict[str, str]:
    """The Config's main section as its file says (before any `set_main_option`),
    interpolated as Alembic interpolates it."""
    if not config.config_file_name:
        return {}
    from configparser import ConfigParser

    config.file_config  # noqa: B018  Alembic puts %(here)s in config_args as it reads it
    parser = ConfigParser(dict(config.config_args))
    parser.read(config.config_file_name, encoding="utf-8")
    section = config.config_ini_section
    if not parser.has_section(section):
        return {}
    return {key: parser.get(section, key) for key in parser.options(section)}
