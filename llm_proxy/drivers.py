"""Plain DBAPI connections (sqlite3, psycopg, PyMySQL) without SQLAlchemy.

The migration lock and the fast "is anything pending?" check use these, so a
no-op start never pays for importing SQLAlchemy. Connection failures become
one-line DatabaseUnavailable errors that name host and port, never a password.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from .config import Settings
from .errors import DatabaseUnavailable, reason


def _server_parts(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    return {
        "host": parts.hostname or "localhost",
        "port": parts.port,
        "user": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else None,
        "database": unquote(parts.path.lstrip("/")) or None,
        "query": {k: v[-1] for k, v in parse_qs(parts.query).items()},
    }


def database_name(settings: Settings) -> str | None:
    """The server-side database the URL names (None for SQLite or when absent)."""
    if settings.dialect == "sqlite":
        return None
    return _server_parts(settings.url)["database"]


def describe_server(settings: Settings) -> str:
    if settings.dialect == "sqlite":
        return str(settings.sqlite_path)
    parts = _server_parts(settings.url)
    default_port = 5432 if settings.dialect == "postgresql" else 3306
    return f"{parts['host']}:{parts['port'] or default_port}/{parts['database'] or ''}"


def _redact(text: str, settings: Settings) -> str:
    password = _server_parts(settings.url)["password"] if settings.dialect != "sqlite" else None
    return text.replace(password, "***") if password else text


def _driver(module: str, extra: str) -> Any:
    """The DBAPI module, or a one-line error saying which extra installs it."""
    from importlib import import_module

    try:
        return import_module(module)
    except ImportError:
        raise DatabaseUnavailable(
            f"the {module} driver is not installed: pip install 'llm-proxy[{extra}]'"
        ) from None


def connect(settings: Settings, *, autocommit: bool = True, create: bool = False) -> Any:
    """A DBAPI connection to the configured database."""
    if settings.dialect == "sqlite":
        return _connect_sqlite(settings, create=create)
    if settings.dialect == "postgresql":
        return _connect_postgres(settings, autocommit=autocommit)
    return _connect_mysql(settings, autocommit=autocommit)


def _connect_sqlite(settings: Settings, *, create: bool) -> Any:
    import sqlite3

    path = settings.sqlite_path
    if path is None:
        return sqlite3.connect(":memory:", isolation_level=None)
    if not create and not path.exists():
        raise DatabaseUnavailable(f"database file does not exist: {path}")
    try:
        connection = sqlite3.connect(path, isolation_level=None, timeout=30)
        connection.execute("SELECT 1 FROM sqlite_master LIMIT 1")
    except sqlite3.DatabaseError as exc:
        raise DatabaseUnavailable(
            f"cannot open SQLite database {path}: {reason(exc, whole=True)}"
        ) from None
    return connection


def quote_identifier(name: str) -> str:
    """A PostgreSQL identifier, quoted so that case and punctuation survive."""
    return '"' + name.replace('"', '""') + '"'


def postgres_options(settings: Settings) -> str | None:
    """libpq `options` for a connection: the URL's own, plus `-c search_path=...`
    for --schema. Set at connect time, the search_path holds for every
    transaction and cannot be undone by a rollback, as a SET could be."""
    existing = _server_parts(settings.url)["query"].get("options")
    if not settings.schema:
        return None
    # In `options`, a space separates arguments unless escaped with a backslash.
    value = quote_identifier(settings.schema).replace("\\", "\\\\").replace(" ", "\\ ")
    search_path = f"-c search_path={value}"
    return f"{existing} {search_path}" if existing else search_path


def _connect_postgres(settings: Settings, *, autocommit: bool) -> Any:
    psycopg = _driver("psycopg", "postgres")

    conninfo = "postgresql://" + settings.url.split("://", 1)[1]
    extra: dict[str, Any] = {}
    options = postgres_options(settings)
    if options:
        extra["options"] = options
    try:
        return psycopg.connect(conninfo, autocommit=autocommit, connect_timeout=10, **extra)
    except psycopg.Error as exc:
        raise DatabaseUnavailable(
            f"cannot connect to PostgreSQL at {describe_server(settings)}: "
            f"{_redact(reason(exc, whole=True), settings)}"
        ) from None


def _connect_mysql(settings: Settings, *, autocommit: bool) -> Any:
    pymysql = _driver("pymysql", "mysql")

    parts = _server_parts(settings.url)
    try:
        return pymysql.connect(
            host=parts["host"],
            port=parts["port"] or 3306,
            user=parts["user"] or "root",
            password=parts["password"] or "",
            database=parts["database"],
            autocommit=autocommit,
            connect_timeout=10,
            charset=parts["query"].get("charset", "utf8mb4"),
        )
    except pymysql.Error as exc:
        raise DatabaseUnavailable(
            f"cannot connect to MySQL at {describe_server(settings)}: "
            f"{_redact(reason(exc, whole=True), settings)}"
        ) from None


@contextmanager
def session(settings: Settings) -> Iterator[Callable[[str], list[tuple[Any, ...]]]]:
    """An `execute(sql) -> rows` callable over a fresh autocommit connection,
    closed afterwards: what the version-table readers in `shim` and `journal` take."""
    connection = connect(settings)
    try:
        yield lambda sql: rows(connection, sql)
    finally:
        connection.close()


def rows(connection: Any, sql: str) -> list[tuple[Any, ...]]:
    cursor = connection.cursor()
    try:
        cursor.execute(sql)
        return list(cursor.fetchall()) if cursor.description else []
    finally:
        cursor.close()
