"""SQLite: a file, Python's sqlite3 module, a lock file beside the database."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from llm_proxy.errors import DatabaseUnavailable, reason

from .base import Dialect, Target


class SQLiteDialect(Dialect):
    name = "sqlite"
    label = "SQLite"
    migrations_subdirectory = ""
    dbapi_module = "sqlite3"
    is_server = False
    true_literal = "1"  # no boolean type: goose writes 1/0
    goose_table_columns = (
        "\tid INTEGER PRIMARY KEY AUTOINCREMENT,\n"
        "\tversion_id INTEGER NOT NULL,\n"
        "\tis_applied INTEGER NOT NULL,\n"
        "\ttstamp TIMESTAMP DEFAULT (datetime('now'))"
    )

    def existing_tables_sql(self, tables: Sequence[str], schema: str | None) -> str:
        names = ", ".join(self.literal(t) for t in tables)
        return f"SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ({names})"

    def user_tables_sql(self) -> str:
        return (
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
            "AND name NOT LIKE 'sqlite_%'"
        )

    def split_for_driver(self, statement: str) -> list[str]:
        """Python's sqlite3 runs one statement per call; goose's SQLite driver runs a
        StatementBegin block with several statements at once. Split such a block at
        the boundaries SQLite itself recognises (triggers' inner semicolons stay)."""
        if statement.count(";") <= 1:
            return [statement]
        import sqlite3

        pieces: list[str] = []
        buffer: list[str] = []
        for line in statement.splitlines(keepends=True):
            buffer.append(line)
            candidate = "".join(buffer)
            if sqlite3.complete_statement(candidate):
                pieces.append(candidate.strip())
                buffer = []
        rest = "".join(buffer).strip()
        if rest:
            pieces.append(rest)
        return [piece for piece in pieces if piece]

    # ------------------------------------------------------------ URLs

    def normalize_url(self, url: str, driver: str, rest: str) -> str:
        return f"sqlite://{rest}" if not driver else url

    def sqlite_path(self, url: str) -> Path | None:
        """The file behind a sqlite:/// URL (None for in-memory databases)."""
        rest = url.split("://", 1)[1]
        if rest in ("", "/", "/:memory:") or rest.startswith("/:memory:"):
            return None
        return Path(rest[1:].split("?", 1)[0])

    def describe(self, target: Target) -> str:
        return str(target.sqlite_path)

    def database_name(self, target: Target) -> str | None:
        return None

    def database_missing(self, target: Target) -> bool:
        path = target.sqlite_path
        return path is None or not path.exists()

    # ------------------------------------------------------------ connections

    def busy_timeout(self, target: Target) -> float:
        # A writer waits this long for another process's write transaction; the
        # lock timeout bounds it.
        return max(target.lock_timeout, 1.0)

    def connect(self, target: Target, *, autocommit: bool, create: bool) -> Any:
        """A sqlite3 connection with transaction control left to the caller (no
        implicit BEGIN, so a failing migration's DDL can be rolled back)."""
        import sqlite3

        path = target.sqlite_path
        if path is None:
            return sqlite3.connect(":memory:", isolation_level=None)
        if not create and not path.exists():
            raise DatabaseUnavailable(f"database file does not exist: {path}")
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
        try:
            connection = sqlite3.connect(
                path, isolation_level=None, timeout=self.busy_timeout(target)
            )
            connection.execute("SELECT 1 FROM sqlite_master LIMIT 1")
        except sqlite3.DatabaseError as exc:
            raise DatabaseUnavailable(
                f"cannot open SQLite database {path}: {reason(exc, whole=True)}"
            ) from None
        return connection

    def engine_connect_args(self, target: Target) -> dict[str, Any]:
        return {"timeout": self.busy_timeout(target)}

    def prepare_engine(self, engine: Any) -> None:
        """Python's sqlite3 module does not open a transaction before DDL, so a
        failing migration would leave its CREATE/ALTER statements committed. The
        driver goes to autocommit and SQLAlchemy's begin event emits BEGIN
        IMMEDIATE: every migration's DDL and version rows become one atomic unit."""
        from sqlalchemy import event

        @event.listens_for(engine, "connect")
        def _driver_autocommit(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin(connection: Any) -> None:
            if connection.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
                connection.exec_driver_sql("BEGIN IMMEDIATE")

    def prepare_connection(self, connection: Any) -> Callable[[], None]:
        """Python's sqlite3 module, left to itself (its default, "legacy" mode),
        begins a transaction only before INSERT/UPDATE/DELETE, so DDL run on a
        caller's connection would commit statement by statement. Make the
        caller's SQLAlchemy transactions real: BEGIN IMMEDIATE now (inside the
        caller's transaction) and at each begin. A driver in autocommit mode
        (isolation_level None, as our engines and SQLAlchemy's SQLite recipe set
        it) is managed by its owner already, and left alone."""
        driver = connection.connection.driver_connection
        if driver.isolation_level is None:
            return lambda: None

        def begin_on_driver(begun: Any) -> None:
            if begun.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
                return
            if not driver.in_transaction:
                driver.execute("BEGIN IMMEDIATE")

        from sqlalchemy import event

        if connection.in_transaction():
            begin_on_driver(connection)
        event.listen(connection, "begin", begin_on_driver)
        return lambda: event.remove(connection, "begin", begin_on_driver)

    def is_busy_error(self, error: BaseException) -> bool:
        return "database is locked" in str(getattr(error, "orig", None) or "")

    def alembic_options(self, schema: str | None) -> dict[str, Any]:
        return {"render_as_batch": True}  # autogenerated ALTERs need table rebuilds


SQLITE = SQLiteDialect()
