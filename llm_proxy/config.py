"""Flags + environment -> one Settings value.

Flags beat environment, environment beats defaults. This module imports
nothing heavy: the no-op start path resolves settings before deciding whether
SQLAlchemy and Alembic are needed at all.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import dialects, urls
from .dialects import Dialect
from .errors import ConfigError
from .goose.directives import parse_duration

DEFAULT_SQLITE_PATH = "data/llm-proxy.db"
DEFAULT_LOCK_TIMEOUT = 300.0
# A migration's statement gives up on a table lock after this long (PostgreSQL
# lock_timeout, MySQL lock_wait_timeout) and the migration is tried again, so
# that readers never queue behind a waiting ALTER for longer. On an idle
# database no lock is ever waited for: these defaults change nothing there.
DEFAULT_DDL_LOCK_TIMEOUT = 5.0
DEFAULT_DDL_LOCK_RETRIES = 5
DEFAULT_STATEMENT_TIMEOUT = 0.0  # off: long data migrations are legitimate
DEFAULT_GOOSE_TABLE = "goose_db_version"  # goose's -table default
# How the migration lock is held (db/locks.py): "advisory" (a session lock on the
# migration's own connection), "table" (a committed lease row in
# llm_proxy_migration_lock), or "auto": the lease where a session lock means
# nothing (a connection pooler in front of PostgreSQL, a Galera cluster).
LOCK_STRATEGIES = ("auto", "advisory", "table")
# A lease not renewed for this long is taken over: a killed holder blocks the
# others at most this long. The holder renews it at every migration and between
# the statements of a NO TRANSACTION file, so it must outlast one statement
# that runs outside a transaction (and, on MySQL, one DDL statement).
DEFAULT_LOCK_LEASE = 60.0
GOOSE_RETIRED = "goose_retired"  # alembic.ini's [alembic] key: goose no longer runs here


@dataclass(frozen=True, repr=False)
class Settings:
    """Everything a command needs to know about where to migrate what."""

    dialect: Dialect
    url: str  # SQLAlchemy URL, may contain a password: never print it, use display_url
    migrations_dir: Path
    script_location: Path  # Alembic script directory (env.py, versions/)
    sqlite_path: Path | None = None
    schema: str | None = None
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    ddl_lock_timeout: float = DEFAULT_DDL_LOCK_TIMEOUT  # 0: statements wait as the server says
    ddl_lock_retries: int = DEFAULT_DDL_LOCK_RETRIES
    statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT  # 0: off
    auto_migrate: bool = True
    alembic_ini: Path | None = None
    migrations_dir_source: str = "default"  # where migrations_dir came from, for errors
    goose_table: str = DEFAULT_GOOSE_TABLE  # goose's version table (its -table flag)
    # alembic.ini's `goose_retired`: no goose binary reads the database any more, so
    # alembic_version alone records where it stands and goose's rows are left alone.
    goose_retired: bool = False
    lock_strategy: str = "auto"
    lock_lease: float = DEFAULT_LOCK_LEASE
    # A direct connection (past a pooler) the advisory lock is held on; SQLAlchemy
    # form, may contain a password like `url`.
    lock_url: str | None = None

    def __repr__(self) -> str:
        # The dataclass repr would show the URL's password (a log line, a traceback).
        fields = ", ".join(
            f"{name}={urls.redact(value) if name in ('url', 'lock_url') and value else value!r}"
            for name, value in vars(self).items()
        )
        return f"Settings({fields})"

    @property
    def display_url(self) -> str:
        """The URL with any password masked, for messages."""
        return urls.redact(self.url)

    @property
    def versions_dir(self) -> Path:
        """Where the Python (Alembic) revisions are."""
        return self.script_location / "versions"

    @property
    def where(self) -> str:
        """The database, for messages: a file path or host:port/database."""
        return self.dialect.describe(self)


def packaged_data_dir() -> Path:
    """Where the goose files and Alembic scripts live: inside an installed
    wheel (llm_proxy/_data) or, in a checkout, the repository root."""
    package_dir = Path(__file__).resolve().parent
    bundled = package_dir / "_data"
    if bundled.is_dir():
        return bundled
    return package_dir.parent


def default_migrations_dir(dialect: Dialect, data_dir: Path | None = None) -> Path:
    """The packaged goose directory of a dialect (sql/, sql/postgres/, sql/mysql/)."""
    root = (data_dir or packaged_data_dir()) / "sql"
    subdir = dialect.migrations_subdirectory
    return root / subdir if subdir else root


def _parse_bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, not {value!r}")


def _parse_timeout(value: str | float) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise ConfigError(f"lock timeout must be a number of seconds, not {value!r}") from None
    if not math.isfinite(seconds):
        # NaN makes every deadline comparison false; infinity (also '1e400') overflows
        # the databases' own timeouts into "do not wait at all".
        raise ConfigError(f"lock timeout must be a finite number of seconds, not {value!r}")
    if seconds < 0:
        raise ConfigError("lock timeout cannot be negative")
    return seconds


def _parse_duration_setting(name: str, value: str | float) -> float:
    try:
        seconds = float(value) if isinstance(value, (int, float)) else parse_duration(value)
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from None
    if seconds < 0 or not math.isfinite(seconds):
        raise ConfigError(f"{name} must be a finite duration of 0 or more, not {value!r}")
    return seconds


def _parse_count(name: str, value: str | int) -> int:
    try:
        count = int(value)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number of retries, not {value!r}") from None
    if count < 0:
        raise ConfigError(f"{name} cannot be negative")
    return count


def check_goose_table(name: str, source: str) -> str:
    """goose's -table, as a plain table name: it is written into SQL unquoted by
    goose, so only a name goose and every dialect read the same way is taken. A
    `schema.table` name is refused: the schema is --schema, which also sets where
    the application's tables go."""
    if "." in name:
        raise ConfigError(
            f"{source}={name!r}: a schema-qualified table is not supported; give the table "
            "name alone (on PostgreSQL the schema is --schema / LLM_PROXY_DB_SCHEMA)"
        )
    if not name or not (name[0].isascii() and (name[0].isalpha() or name[0] == "_")):
        raise ConfigError(f"{source}={name!r} is not a table name (letters, digits, _)")
    if not all(c.isascii() and (c.isalnum() or c == "_") for c in name) or len(name) > 63:
        raise ConfigError(f"{source}={name!r} is not a table name (letters, digits, _; 63 at most)")
    return name


def _chosen(
    flag: str | float | None, env: Mapping[str, str], variable: str
) -> tuple[str | float | None, str]:
    """The flag's value, else the environment's, with the name to blame for a bad one."""
    if flag is not None:
        return flag, "--" + variable.removeprefix("LLM_PROXY_").lower().replace("_", "-")
    return env.get(variable) or None, variable


def resolve(
    *,
    db: str | None = None,
    database_url: str | None = None,
    driver: str | None = None,
    migrations_dir: str | None = None,
    schema: str | None = None,
    lock_timeout: float | str | None = None,
    auto_migrate: bool | None = None,
    env: Mapping[str, str] | None = None,
    ddl_lock_timeout: float | str | None = None,
    ddl_lock_retries: int | str | None = None,
    statement_timeout: float | str | None = None,
    goose_table: str | None = None,
    lock_strategy: str | None = None,
    lock_lease: float | str | None = None,
    lock_url: str | None = None,
) -> Settings:
    """Build Settings from explicit values (flags), then the environment, then defaults."""
    env = os.environ if env is None else env

    # An empty flag is a mistake (an unset shell variable), never "use the default".
    if db == "":
        raise ConfigError("--db is empty: give the SQLite database file")
    if migrations_dir == "":
        raise ConfigError("--migrations-dir is empty: give the goose migrations directory")
    dialect, sa_url, sqlite_path = _choose_database(db, database_url, driver, env)
    sa_url, schema_name = dialect.finish_url(
        sa_url, schema or env.get("LLM_PROXY_DB_SCHEMA") or None
    )

    ini = _find_project_ini(env)
    script_location, ini_goose_dir, ini_table, ini_retired = (
        _read_project_ini(ini, dialect) if ini else (None, None, None, None)
    )
    data_dir = packaged_data_dir()
    sources = (
        (migrations_dir, "--migrations-dir"),
        (env.get("LLM_PROXY_MIGRATIONS_DIR"), "LLM_PROXY_MIGRATIONS_DIR"),
        (ini_goose_dir, f"goose_directory in {ini}"),
    )
    chosen_dir, source = next(((d, s) for d, s in sources if d), (None, "packaged default"))
    resolved_dir = Path(chosen_dir) if chosen_dir else default_migrations_dir(dialect, data_dir)

    timeout_value = lock_timeout if lock_timeout is not None else env.get("LLM_PROXY_LOCK_TIMEOUT")
    auto = auto_migrate
    if auto is None and env.get("LLM_PROXY_AUTO_MIGRATE"):
        auto = _parse_bool("LLM_PROXY_AUTO_MIGRATE", env["LLM_PROXY_AUTO_MIGRATE"])

    ddl_timeout, ddl_timeout_name = _chosen(ddl_lock_timeout, env, "LLM_PROXY_DDL_LOCK_TIMEOUT")
    retries, retries_name = _chosen(ddl_lock_retries, env, "LLM_PROXY_DDL_LOCK_RETRIES")
    statement, statement_name = _chosen(statement_timeout, env, "LLM_PROXY_STATEMENT_TIMEOUT")
    table, table_name = _chosen(goose_table, env, "LLM_PROXY_GOOSE_TABLE")
    if table is None and ini_table:
        table, table_name = ini_table, f"goose_table in {ini}"

    strategy, strategy_name = _chosen(lock_strategy, env, "LLM_PROXY_LOCK_STRATEGY")
    lease, lease_name = _chosen(lock_lease, env, "LLM_PROXY_LOCK_LEASE")
    lock_target = lock_url or env.get("LLM_PROXY_MIGRATION_DATABASE_URL") or None
    lock_target_name = "--lock-url" if lock_url else "LLM_PROXY_MIGRATION_DATABASE_URL"
    lock_choice = _lock_choice(
        dialect,
        str(strategy).strip().lower() if strategy is not None else "auto",
        strategy_name,
        DEFAULT_LOCK_LEASE if lease is None else _parse_lease(lease_name, lease),
        lock_target,
        lock_target_name,
    )

    return Settings(
        dialect=dialect,
        url=sa_url,
        migrations_dir=resolved_dir,
        script_location=script_location or data_dir / "alembic",
        sqlite_path=sqlite_path,
        schema=schema_name,
        lock_timeout=_parse_timeout(timeout_value)
        if timeout_value is not None
        else DEFAULT_LOCK_TIMEOUT,
        ddl_lock_timeout=DEFAULT_DDL_LOCK_TIMEOUT
        if ddl_timeout is None
        else _parse_duration_setting(ddl_timeout_name, ddl_timeout),
        ddl_lock_retries=DEFAULT_DDL_LOCK_RETRIES
        if retries is None
        else _parse_count(retries_name, retries),  # type: ignore[arg-type]
        statement_timeout=DEFAULT_STATEMENT_TIMEOUT
        if statement is None
        else _parse_duration_setting(statement_name, statement),
        auto_migrate=True if auto is None else auto,
        alembic_ini=ini,
        migrations_dir_source=source,
        goose_table=DEFAULT_GOOSE_TABLE
        if table is None
        else check_goose_table(str(table), table_name),
        goose_retired=bool(ini_retired)
        and _parse_bool(f"{GOOSE_RETIRED} in {ini}", str(ini_retired)),
        lock_strategy=lock_choice[0],
        lock_lease=lock_choice[1],
        lock_url=lock_choice[2],
    )


def _parse_lease(name: str, value: str | float) -> float:
    seconds = _parse_duration_setting(name, value)
    if seconds <= 0:
        raise ConfigError(f"{name} must be longer than 0 seconds, not {value!r}")
    return seconds


def _lock_choice(
    dialect: Dialect,
    strategy: str,
    strategy_name: str,
    lease: float,
    lock_url: str | None,
    lock_url_name: str,
) -> tuple[str, float, str | None]:
    """(strategy, lease, lock URL in SQLAlchemy form), checked against the database."""
    if strategy not in LOCK_STRATEGIES:
        raise ConfigError(
            f"{strategy_name}={strategy!r}: choose one of {', '.join(LOCK_STRATEGIES)}"
        )
    if not dialect.is_server:
        # One file, one machine: the lock file is the lock.
        if strategy == "table":
            raise ConfigError(
                f"{strategy_name}=table: SQLite is locked by a file beside the database; "
                "a lease row is for PostgreSQL and MySQL"
            )
        if lock_url:
            raise ConfigError(f"{lock_url_name}: SQLite needs no separate lock connection")
        return strategy, lease, None
    if not lock_url:
        return strategy, lease, None
    if strategy == "table":
        raise ConfigError(
            f"{lock_url_name} holds the advisory lock on a direct connection; "
            f"{strategy_name}=table keeps a lease row and needs none: drop one of them"
        )
    lock_dialect, sa_lock_url = dialects.from_url(lock_url)
    if lock_dialect is not dialect:
        raise ConfigError(
            f"{lock_url_name} is a {lock_dialect.label} URL but the database is "
            f"{dialect.label}: give a direct URL to the same database"
        )
    sa_lock_url, _ = lock_dialect.finish_url(sa_lock_url, None)
    return "advisory", lease, sa_lock_url


def _choose_database(
    db: str | None, database_url: str | None, driver: str | None, env: Mapping[str, str]
) -> tuple[Dialect, str, Path | None]:
    """(dialect, SQLAlchemy URL, SQLite file) from --db, --database-url, DB_DRIVER and
    the environment. An explicit --db means a SQLite file even when DATABASE_URL is
    set; DB_DRIVER=sqlite ignores DATABASE_URL from the environment (as the Go
    llm-proxy did), but an explicit --database-url to a server contradicts it."""
    if db is not None and database_url:
        raise ConfigError("--db and --database-url cannot be used together: choose one database")
    url = database_url or env.get("DATABASE_URL") or None
    driver_name = driver or env.get("DB_DRIVER") or None
    wanted = None
    if driver_name:
        wanted = dialects.named(driver_name)
        if wanted is None:
            raise ConfigError(f"DB_DRIVER must be sqlite, postgres or mysql, not {driver_name!r}")
    wants_file = wanted is not None and not wanted.is_server

    if wants_file and database_url:
        explicit_dialect, explicit_url = dialects.from_url(database_url)
        if explicit_dialect.is_server:
            raise ConfigError(
                f"DB_DRIVER={driver_name} does not match the database URL "
                f"{urls.redact(explicit_url)}"
            )
    if db is not None or url is None or wants_file:
        if wanted is not None and wanted.is_server and db is None:
            raise ConfigError(f"DB_DRIVER={driver_name} needs DATABASE_URL or --database-url")
        url_dialect = dialects.named(url.partition("://")[0].partition("+")[0]) if url else None
        if db is None and url is not None and url_dialect is not None and not url_dialect.is_server:
            dialect, sa_url = dialects.from_url(url)
            return dialect, sa_url, dialect.sqlite_path(sa_url)
        path = Path(db or env.get("DATABASE_PATH") or DEFAULT_SQLITE_PATH)
        return dialects.SQLITE, f"sqlite:///{path.absolute()}", path
    dialect, sa_url = dialects.from_url(url)
    if wanted is not None and wanted is not dialect:
        raise ConfigError(
            f"DB_DRIVER={driver_name} does not match the database URL {urls.redact(url)}"
        )
    return dialect, sa_url, dialect.sqlite_path(sa_url)


def _find_project_ini(env: Mapping[str, str]) -> Path | None:
    """The project's alembic.ini: $LLM_PROXY_ALEMBIC_INI, else ./alembic.ini when it
    names a goose directory (so an unrelated alembic.ini in the cwd is ignored)."""
    explicit = env.get("LLM_PROXY_ALEMBIC_INI")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"LLM_PROXY_ALEMBIC_INI names a missing file: {path}")
        return path.absolute()
    candidate = Path("alembic.ini")
    try:
        text = candidate.read_text(encoding="utf-8")
    except OSError:
        return None
    return candidate.absolute() if "goose_directory" in text else None


def _read_project_ini(
    ini: Path, dialect: Dialect
) -> tuple[Path | None, str | None, str | None, str | None]:
    from configparser import ConfigParser

    parser = ConfigParser(defaults={"here": str(ini.parent)})
    parser.read(ini, encoding="utf-8")
    if not parser.has_section("alembic"):
        return None, None, None, None
    section = parser["alembic"]
    script = section.get("script_location")
    goose = goose_directory_option(section, dialect)
    return (
        (Path(script) if script else None),
        goose,
        section.get("goose_table") or None,
        section.get(GOOSE_RETIRED) or None,
    )


def goose_directory_option(options: Mapping[str, str], dialect: Dialect) -> str | None:
    """`goose_directory_<dialect>` wins over the plain `goose_directory` key."""
    return options.get(f"goose_directory_{dialect.name}") or options.get("goose_directory")


# ---------------------------------------------------------------- stock `alembic` runs

# What `alembic -x NAME=VALUE` may set, each standing for the llm-proxy flag of that name
# (allow_missing is read by the run, not by Settings).
X_ARGUMENTS = (
    "database_url",
    "database_path",
    "db_driver",
    "schema",
    "migrations_dir",
    "lock_timeout",
    "ddl_lock_timeout",
    "ddl_lock_retries",
    "statement_timeout",
    "goose_table",
    "allow_missing",
    "lock_strategy",
    "lock_lease",
    "lock_url",
)


@dataclass(frozen=True)
class AlembicSources:
    """What a stock `alembic` run is told, by where it was said (the Alembic
    Config is read into this by the bridge; nothing here knows Alembic).

    `explicit`: keyed by X_ARGUMENTS, from `-x`, from options set on the Config in
    code (`set_main_option`), and from a connection passed in `attributes`;
    `*_goose`: `goose_directory` / `goose_directory_<dialect>` options."""

    explicit: Mapping[str, str] = field(default_factory=dict)
    explicit_goose: Mapping[str, str] = field(default_factory=dict)
    file_url: str | None = None  # alembic.ini's sqlalchemy.url
    file_goose: Mapping[str, str] = field(default_factory=dict)
    config_dir: Path | None = None  # relative goose_directory options start here
    script_location: Path | None = None
    alembic_ini: Path | None = None
    goose_table: str | None = None  # the Config's `goose_table` option (alembic.ini or code)
    goose_retired: str | None = None  # the Config's `goose_retired` option


def resolve_for_alembic(
    sources: AlembicSources, env: Mapping[str, str]
) -> tuple[Settings, Path | None]:
    """(Settings, goose directory or None) for a stock `alembic` run: explicit
    values (Config options set in code, `-x`, a passed connection) over the
    environment over alembic.ini, by llm-proxy's own rules (explicit values act as
    flags, so a contradiction such as DB_DRIVER=sqlite with an explicit server URL
    is refused). The goose directory is the one named for the resolved database's
    dialect, in the same order; None when no source names one for it. Both the
    plugin (which goose files) and env.py (which connection) use this one
    resolution, so the two never disagree."""
    explicit = sources.explicit
    env_and_file = dict(env)
    if sources.file_url and not env.get("DATABASE_URL") and not env.get("DATABASE_PATH"):
        env_and_file["DATABASE_URL"] = sources.file_url
    settings = resolve(
        db=explicit.get("database_path"),
        database_url=explicit.get("database_url"),
        driver=explicit.get("db_driver"),
        schema=explicit.get("schema"),
        lock_timeout=explicit.get("lock_timeout"),
        ddl_lock_timeout=explicit.get("ddl_lock_timeout"),
        ddl_lock_retries=explicit.get("ddl_lock_retries"),
        statement_timeout=explicit.get("statement_timeout"),
        goose_table=explicit.get("goose_table"),
        lock_strategy=explicit.get("lock_strategy"),
        lock_lease=explicit.get("lock_lease"),
        lock_url=explicit.get("lock_url"),
        env=env_and_file,
    )
    if (
        sources.goose_table
        and "goose_table" not in explicit
        and not env.get("LLM_PROXY_GOOSE_TABLE")
    ):
        table = check_goose_table(sources.goose_table, "goose_table in the Alembic Config")
        settings = replace(settings, goose_table=table)
    if sources.goose_retired:
        # The stock command honours the project's retirement as llm-proxy does.
        retired = _parse_bool(f"{GOOSE_RETIRED} in the Alembic Config", sources.goose_retired)
        settings = replace(settings, goose_retired=retired)
    dialect = settings.dialect
    candidates = (
        (_relative_to(goose_directory_option(sources.explicit_goose, dialect), sources), "Config"),
        (explicit.get("migrations_dir"), "-x migrations_dir"),
        (env.get("LLM_PROXY_MIGRATIONS_DIR"), "LLM_PROXY_MIGRATIONS_DIR"),
        (
            _relative_to(goose_directory_option(sources.file_goose, dialect), sources),
            f"goose_directory in {sources.alembic_ini}",
        ),
    )
    chosen, source = next(((Path(d), s) for d, s in candidates if d), (None, None))
    settings = replace(
        settings,
        migrations_dir=chosen or settings.migrations_dir,
        migrations_dir_source=source or settings.migrations_dir_source,
        script_location=sources.script_location or settings.script_location,
        alembic_ini=sources.alembic_ini,
    )
    return settings, chosen


def _relative_to(path: str | None, sources: AlembicSources) -> str | None:
    if not path or Path(path).is_absolute() or sources.config_dir is None:
        return path
    return str(sources.config_dir / path)
