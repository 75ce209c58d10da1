"""The databases llm-proxy runs on, one module each.

    from llm_proxy import dialects
    dialect, url = dialects.from_url("postgres://app@db/llm")
    dialect.quote("goose_db_version")

This package is the only place that branches on which database it is; the
rest of llm-proxy asks a ``Dialect`` (see ``base``).
"""

from __future__ import annotations

from collections.abc import Mapping

from llm_proxy import urls
from llm_proxy.errors import ConfigError

from .base import Dialect, Target
from .mysql import MYSQL
from .postgresql import POSTGRESQL
from .sqlite import SQLITE

__all__ = [
    "ALL",
    "GOOSE_DRIVERS",
    "MYSQL",
    "POSTGRESQL",
    "SQLITE",
    "Dialect",
    "Target",
    "from_goose",
    "from_url",
    "named",
]

ALL: tuple[Dialect, ...] = (SQLITE, POSTGRESQL, MYSQL)

# SQLAlchemy's names, and the spellings goose and DB_DRIVER use.
_BY_NAME: dict[str, Dialect] = {
    "sqlite": SQLITE,
    "sqlite3": SQLITE,
    "postgres": POSTGRESQL,
    "postgresql": POSTGRESQL,
    "pgx": POSTGRESQL,
    "mysql": MYSQL,
    "mariadb": MYSQL,
}


def named(name: str) -> Dialect | None:
    """The dialect a name means (case-insensitive), or None."""
    return _BY_NAME.get(name.lower())


def from_url(url: str) -> tuple[Dialect, str]:
    """(dialect, SQLAlchemy URL) for a goose/libpq-style or SQLAlchemy URL.

    postgres:// and postgresql:// become postgresql+psycopg://, mysql:// and
    mariadb:// become mysql+pymysql://.
    """
    base, driver, rest = urls.split_scheme(url)
    dialect = named(base)
    if dialect is None:
        scheme = url.partition("://")[0]
        raise ConfigError(
            f"unsupported database URL scheme {scheme!r}: use sqlite, postgres(ql) or mysql"
        )
    return dialect, dialect.normalize_url(url, driver, rest)


# The DRIVER names goose's command line takes for the databases llm-proxy runs on.
GOOSE_DRIVERS: dict[str, Dialect] = {
    "postgres": POSTGRESQL,
    "pgx": POSTGRESQL,
    "mysql": MYSQL,
    "sqlite3": SQLITE,
    "sqlite": SQLITE,
}


def from_goose(
    driver: str, dbstring: str, tls_files: Mapping[str, str] | None = None
) -> tuple[Dialect, str]:
    """(dialect, database URL) for goose's DRIVER and DBSTRING; `tls_files`: goose's
    -certfile, -ssl-cert, -ssl-key as {"ca", "cert", "key": path}."""
    dialect = GOOSE_DRIVERS.get(driver)
    if dialect is None:
        known = ", ".join(GOOSE_DRIVERS)
        raise ConfigError(f"goose DRIVER {driver!r} is not supported: use one of {known}")
    if not dbstring:
        raise ConfigError("goose DBSTRING is empty")
    url = dialect.url_from_goose_dbstring(dbstring)
    url_dialect = named(urls.split_scheme(url)[0]) if "://" in url else None
    if url_dialect is not dialect:
        raise ConfigError(f"goose DRIVER {driver} does not match DBSTRING {urls.redact(url)}")
    return dialect, dialect.with_goose_tls_files(url, tls_files or {})
