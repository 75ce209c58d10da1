"""Flags + environment -> one Settings value.

Flags beat environment, environment beats defaults. This module imports
nothing heavy: the no-op start path resolves settings before deciding whether
SQLAlchemy and Alembic are needed at all.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from .errors import ConfigError

DEFAULT_SQLITE_PATH = "data/llm-proxy.db"
DEFAULT_LOCK_TIMEOUT = 300.0

# Dialect names as SQLAlchemy spells them; DB_DRIVER accepts the goose spellings.
DIALECT_ALIASES = {
    "sqlite": "sqlite",
    "sqlite3": "sqlite",
    "postgres": "postgresql",
    "postgresql": "postgresql",
    "pgx": "postgresql",
    "mysql": "mysql",
    "mariadb": "mysql",
}

# Which DBAPI each dialect uses: psycopg 3 and PyMySQL, both maintained. The
# plain-driver fast path and the lock use these same libraries, so a URL may
# name them but no other driver.
_DRIVERS = {
    "postgresql": "psycopg",
    "mysql": "pymysql",
}


@dataclass(frozen=True)
class Settings:
    dialect: str  # "sqlite", "postgresql" or "mysql"
    url: str  # SQLAlchemy URL, may contain a password: never print it, use display_url
    migrations_dir: Path
    script_location: Path  # Alembic script directory (env.py, versions/)
    sqlite_path: Path | None = None
    schema: str | None = None
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    auto_migrate: bool = True
    alembic_ini: Path | None = None
    migrations_dir_source: str = "default"  # where migrations_dir came from, for errors

    @property
    def display_url(self) -> str:
        return redact_url(self.url)

    @property
    def versions_dir(self) -> Path:
        return self.script_location / "versions"


def redact_url(url: str) -> str:
    """The URL with any password replaced by ***, safe for messages and logs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable database URL>"
    if "@" in url.partition("://")[2][len(parts.netloc) :]:
        return f"{parts.scheme}://***"  # an unencoded '/' or '?' in the password
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def normalize_url(url: str) -> tuple[str, str]:
    """Accept goose/libpq style and SQLAlchemy URLs; return (sqlalchemy_url, dialect).

    postgres:// and postgresql:// become postgresql+psycopg://, mysql:// and
    mariadb:// become mysql+pymysql:// (SQLAlchemy's mysql dialect, which is
    also what the version-table SQL is keyed on).
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        # Not quoted: without a scheme nothing tells which part is the password.
        raise ConfigError(
            "database URL has no scheme: expected postgres://, mysql:// or sqlite:///"
        )
    base, _, driver = scheme.lower().partition("+")
    dialect = DIALECT_ALIASES.get(base)
    if dialect is None:
        raise ConfigError(
            f"unsupported database URL scheme {scheme!r}: use sqlite, postgres(ql) or mysql"
        )
    if dialect == "sqlite":
        return f"sqlite://{rest}" if not driver else url, dialect
    expected = _DRIVERS[dialect]
    if driver and driver != expected:
        raise ConfigError(
            f"unsupported {dialect} driver {driver!r} in the database URL: "
            f"llm-proxy connects through {expected} ({dialect}+{expected}://...)"
        )
    return _canonical_url(f"{dialect}+{expected}://{rest}"), dialect


def _canonical_url(url: str) -> str:
    """The server URL with user and password percent-encoded.

    Users paste passwords containing '@', ':' or '/' unencoded; Python's URL
    parser splits at the last '@', libpq and SQLAlchemy at the first, so the
    same URL would mean different hosts to different layers and an error could
    echo part of the password as a host name. Encoding once makes all agree.
    """
    # The messages below never quote the URL: any piece of it may be password.
    try:
        parts = urlsplit(url)
    except ValueError:
        raise ConfigError("malformed database URL (check the host part)") from None
    if "@" in url.partition("://")[2][len(parts.netloc) :]:
        # A '/', '?' or '#' in the password ended the host part early.
        raise ConfigError(
            "malformed database URL: percent-encode '/', '?', '#' and '@' in the user "
            "name and password (as %2F, %3F, %23, %40)"
        )
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise ConfigError("malformed database URL: the port is not a number") from None
    if "@" not in parts.netloc:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, colon, password = userinfo.partition(":")
    netloc = quote(unquote(user), safe="")
    if colon:
        netloc += ":" + quote(unquote(password), safe="")
    return urlunsplit(parts._replace(netloc=f"{netloc}@{hostport}"))


def _pop_query_param(url: str, name: str) -> tuple[str, str | None]:
    """The URL without query parameter `name`, and that parameter's last value."""
    parts = urlsplit(url)
    if not parts.query:
        return url, None
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    values = [v for k, v in pairs if k == name]
    if not values:
        return url, None
    kept = urlencode([(k, v) for k, v in pairs if k != name])
    return urlunsplit(parts._replace(query=kept)), values[-1]


def _url_database(url: str) -> str:
    return unquote(urlsplit(url).path.lstrip("/"))


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def sqlite_path_from_url(url: str) -> Path | None:
    """The file behind a sqlite:/// URL (None for in-memory databases)."""
    rest = url.split("://", 1)[1]
    if rest in ("", "/", "/:memory:") or rest.startswith("/:memory:"):
        return None
    return Path(rest[1:].split("?", 1)[0])


def packaged_data_dir() -> Path:
    """Where the goose files and Alembic scripts live: inside an installed
    wheel (llm_proxy/_data) or, in a checkout, the repository root."""
    package_dir = Path(__file__).resolve().parent
    bundled = package_dir / "_data"
    if bundled.is_dir():
        return bundled
    return package_dir.parent


def default_migrations_dir(dialect: str, data_dir: Path | None = None) -> Path:
    root = (data_dir or packaged_data_dir()) / "sql"
    subdir = {"sqlite": None, "postgresql": "postgres", "mysql": "mysql"}[dialect]
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
    if math.isnan(seconds):  # every deadline comparison would be false: no timeout at all
        raise ConfigError(f"lock timeout must be a number of seconds, not {value!r}")
    if seconds < 0:
        raise ConfigError("lock timeout cannot be negative")
    return seconds


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
) -> Settings:
    """Build Settings from explicit values (flags), then the environment, then defaults."""
    env = os.environ if env is None else env

    # An empty flag is a mistake (an unset shell variable), never "use the default".
    if db == "":
        raise ConfigError("--db is empty: give the SQLite database file")
    if migrations_dir == "":
        raise ConfigError("--migrations-dir is empty: give the goose migrations directory")
    if db is not None and database_url:
        raise ConfigError("--db and --database-url cannot be used together: choose one database")
    url = database_url or env.get("DATABASE_URL") or None
    driver_name = driver or env.get("DB_DRIVER") or None
    wanted_dialect = None
    if driver_name:
        wanted_dialect = DIALECT_ALIASES.get(driver_name.lower())
        if wanted_dialect is None:
            raise ConfigError(f"DB_DRIVER must be sqlite, postgres or mysql, not {driver_name!r}")

    if wanted_dialect == "sqlite" and database_url:
        # DB_DRIVER=sqlite ignores DATABASE_URL from the environment (as the Go
        # llm-proxy did), but an explicit --database-url to a server contradicts it.
        explicit_url, explicit_dialect = normalize_url(database_url)
        if explicit_dialect != "sqlite":
            raise ConfigError(
                f"DB_DRIVER={driver_name} does not match the database URL "
                f"{redact_url(explicit_url)}"
            )
    # An explicit --db means SQLite even when DATABASE_URL is set in the environment.
    if db is not None or url is None or wanted_dialect == "sqlite":
        if wanted_dialect not in (None, "sqlite") and db is None:
            raise ConfigError(f"DB_DRIVER={driver_name} needs DATABASE_URL or --database-url")
        if db is None and url is not None and url.lower().startswith("sqlite"):
            sa_url, dialect = normalize_url(url)
            sqlite_path = sqlite_path_from_url(sa_url)
        else:
            sqlite_path = Path(db or env.get("DATABASE_PATH") or DEFAULT_SQLITE_PATH)
            sa_url, dialect = sqlite_url(sqlite_path.absolute()), "sqlite"
    else:
        sa_url, dialect = normalize_url(url)
        if wanted_dialect and wanted_dialect != dialect:
            raise ConfigError(
                f"DB_DRIVER={driver_name} does not match the database URL {redact_url(url)}"
            )
        sqlite_path = sqlite_path_from_url(sa_url) if dialect == "sqlite" else None

    ini = _find_project_ini(env)
    script_location, ini_goose_dir = _read_project_ini(ini, dialect) if ini else (None, None)
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

    schema_name = schema or env.get("LLM_PROXY_DB_SCHEMA") or None
    if schema_name and dialect != "postgresql":
        raise ConfigError("--schema is supported on PostgreSQL only")
    if dialect == "postgresql":
        sa_url, schema_name = _schema_from_url(sa_url, schema_name)
    if dialect == "mysql" and not _url_database(sa_url):
        raise ConfigError(f"the MySQL database URL names no database: {redact_url(sa_url)}")

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
        auto_migrate=True if auto is None else auto,
        alembic_ini=ini,
        migrations_dir_source=source,
    )


def _schema_from_url(url: str, schema: str | None) -> tuple[str, str | None]:
    """pgx-style `?search_path=NAME` (as goose users write it) means --schema NAME.
    libpq rejects the parameter, so it is taken out of the URL either way."""
    url, search_path = _pop_query_param(url, "search_path")
    if search_path is None:
        return url, schema
    wanted = search_path.strip()
    if not wanted or "," in wanted:
        raise ConfigError(
            f"search_path in the database URL must name one schema, not {search_path!r}"
        )
    if schema and schema != wanted:
        raise ConfigError(
            f"--schema {schema} and search_path={wanted} in the database URL disagree"
        )
    return url, wanted


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


def _read_project_ini(ini: Path, dialect: str) -> tuple[Path | None, str | None]:
    from configparser import ConfigParser

    parser = ConfigParser(defaults={"here": str(ini.parent)})
    parser.read(ini, encoding="utf-8")
    if not parser.has_section("alembic"):
        return None, None
    section = parser["alembic"]
    script = section.get("script_location")
    goose = goose_directory_option(section, dialect)
    return (Path(script) if script else None), goose


def goose_directory_option(options: Mapping[str, str], dialect: str) -> str | None:
    """`goose_directory_<dialect>` wins over the plain `goose_directory` key."""
    return options.get(f"goose_directory_{dialect}") or options.get("goose_directory")
