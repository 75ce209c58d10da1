"""SQLite: a file, Python's sqlite3 module, a lock file beside the database."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
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
        """goose's SQLite driver runs a statement string whole, however many statements it
        holds (several on one line, or a StatementBegin block); Python's sqlite3 runs one
        per call, and its executescript() would COMMIT goose's transaction first. So the
        string is cut where SQLite itself would end each statement: at a ';' outside
        quotes, brackets and comments that completes one (a trigger's inner ';' does not)."""
        if ";" not in statement or _one_final_semicolon(statement):
            return [statement]
        import sqlite3

        pieces: list[str] = []
        start = 0
        for end in _semicolons(statement):
            piece = statement[start:end]
            if sqlite3.complete_statement(piece):
                pieces.append(piece)
                start = end
        rest = statement[start:]
        if pieces and _only_comments(rest):
            pieces[-1] += rest  # sqlite3 accepts comments after a statement
        elif rest or not pieces:
            pieces.append(rest)
        return pieces

    def parameter_markers(self, sql: str) -> list[str]:
        return parameters(sql)

    def failure_reason(self, statement: str, error: BaseException) -> str:
        """sqlite3's "Incorrect number of bindings" names no parameter; goose's driver
        says 'missing named argument "y"'. Say which one, and why it has no value."""
        found = parameters(statement) if "binding" in str(error) else []
        if not found:
            return super().failure_reason(statement, error)
        return (
            f"parameter {found[0]} has no value: migrations run without parameters, as "
            "goose runs them (write the value, or NULL)"
        )

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

    def is_busy_error(self, error: BaseException) -> bool:
        return "database is locked" in str(getattr(error, "orig", None) or "")

    def alembic_options(self, schema: str | None) -> dict[str, Any]:
        return {"render_as_batch": True}  # autogenerated ALTERs need table rebuilds


SQLITE = SQLiteDialect()

# What can hide SQL from SQLite: quotes ('text', "name", `name`, [name]) and comments.
_HIDING = re.compile(r"""['"`\[]|--|/\*""")
_CLOSING = {"'": "'", '"': '"', "`": "`", "[": "]", "--": "\n", "/*": "*/"}
# SQLite's parameters: ?, ?NNN, :name, @name, #name, $name (with $a::b(c) suffixes). A "$"
# inside a name belongs to the name.
_PARAMETER = re.compile(r"\?[0-9]*|[:@#][\w$]+|(?<![\w$])\$[\w$]+(?:::[\w$]+)*(?:\([^)]*\))?")


def _code_spans(sql: str) -> Iterator[tuple[int, int]]:
    """(start, end) of each stretch of `sql` that no quote, bracket or comment hides."""
    pos = 0
    while (match := _HIDING.search(sql, pos)) is not None:
        yield pos, match.start()
        closing = _CLOSING[match.group()]
        end = sql.find(closing, match.end())
        if end < 0:
            return
        pos = end + len(closing)  # a doubled quote reopens at once: the same result
    yield pos, len(sql)


def _semicolons(sql: str) -> Iterator[int]:
    """Positions just after each ';' that no quote, bracket or comment hides."""
    for start, end in _code_spans(sql):
        found = sql.find(";", start, end)
        while found >= 0:
            yield found + 1
            found = sql.find(";", found + 1, end)


def parameters(sql: str) -> list[str]:
    """The parameters SQLite sees in `sql`, in order."""
    if not any(marker in sql for marker in "?:@#$"):
        return []
    return [
        match.group()
        for start, end in _code_spans(sql)
        for match in _PARAMETER.finditer(sql, start, end)
    ]


def _one_final_semicolon(sql: str) -> bool:
    """The common case, cheap for a huge statement: one ';', and only spaces after it."""
    last = sql.rfind(";")
    return sql.find(";") == last and not sql[last + 1 :].strip()


def _only_comments(sql: str) -> bool:
    """True when `sql` holds nothing but whitespace and comments."""
    pos, size = 0, len(sql)
    while pos < size:
        if sql[pos].isspace():
            pos += 1
        elif sql.startswith("--", pos):
            end = sql.find("\n", pos)
            pos = size if end < 0 else end + 1
        elif sql.startswith("/*", pos):
            end = sql.find("*/", pos + 2)
            pos = size if end < 0 else end + 2
        else:
            return False
    return True
