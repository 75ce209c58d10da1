"""SQLite: a file, Python's sqlite3 module, a lock file beside the database."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

from llm_proxy import urls
from llm_proxy.errors import ConfigError, DatabaseUnavailable, reason

from .base import Dialect, Query, SchemaDump, Target

# sqlite3_busy_timeout takes milliseconds as a C int; Python's sqlite3 passes
# timeout * 1000, which past this overflows into "do not wait at all". The
# quotient is exact: times 1000 it gives 2**31 - 1 again.
LONGEST_BUSY_TIMEOUT = (2**31 - 1) / 1000
SQLITE_FULL = 13  # result code of a write that found no room (disk or max_page_count)


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

    def dump_schema(self, query: Query, exclude: Collection[str] = ()) -> SchemaDump:
        # sqlite_master keeps each object's CREATE text as the database holds it now
        # (renames rewritten), in creation order: replaying it in that order rebuilds
        # tables, indexes, views and triggers alike. sqlite_* objects are internal.
        rows = query(
            "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE sql IS NOT NULL "
            "ORDER BY rowid"
        )
        kept = [
            (kind, name, str(sql))
            for kind, name, table, sql in rows
            if not str(name).startswith("sqlite_") and table not in exclude
        ]
        return SchemaDump(
            statements=[sql for _, _, sql in kept],
            tables=[str(name) for kind, name, _ in kept if kind == "table"],
        )

    def refusal_sql(self, message: str) -> str:
        # SQLite has no statement that raises outside a trigger: reading a table that
        # cannot exist fails with "no such table: <message>".
        return f"SELECT * FROM {self.quote(message)}"

    def value_literal(self, value: Any) -> str:
        if isinstance(value, bool):
            return "1" if value else "0"
        return super().value_literal(value)

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
        # A file has no host, user or password: `sqlite://:pw@/x.db` would otherwise
        # become the relative path `pw@/x.db`. Not quoted: that part may be a password.
        if rest and not rest.startswith("/"):
            raise ConfigError(
                "a SQLite URL has no host, user or password part: write "
                "sqlite:///relative/path.db or sqlite:////absolute/path.db"
            )
        return f"sqlite://{rest}" if not driver else url

    def url_from_goose_dbstring(self, dbstring: str) -> str:
        # goose's SQLite driver takes a path, or a `file:` URI of one.
        path = dbstring.removeprefix("file:")
        if not path or path == ":memory:" or path.startswith("file::memory:"):
            raise ConfigError(
                "goose DBSTRING: an in-memory SQLite database vanishes with the command; "
                "give a file"
            )
        if "?" in path:
            raise ConfigError(
                f"goose DBSTRING {path.partition('?')[0]}: SQLite URI parameters (?...) are "
                "not taken; give the file path alone"
            )
        return f"sqlite:///{Path(path).absolute()}"

    def finish_url(self, url: str, schema: str | None) -> tuple[str, str | None]:
        """SQLAlchemy converts these query parameters only when the engine connects,
        after the database file and its lock file exist: check them first."""
        for name, value in urls.query_parameters(url):
            kind = _TYPED_PARAMETERS.get(name)
            if kind is not None and not _parses_as(kind, value):
                raise ConfigError(f"SQLite URL parameter {name}={value} is not {kind}")
        return super().finish_url(url, schema)

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

    def empty_stand_in(self) -> Any:
        import sqlite3

        return sqlite3.connect(":memory:")

    # ------------------------------------------------------------ connections

    def busy_timeout(self, target: Target) -> float:
        # A writer waits this long for another process's write transaction; the
        # lock timeout bounds it, clamped to what SQLite can express.
        return min(max(target.lock_timeout, 1.0), LONGEST_BUSY_TIMEOUT)

    def connect(
        self, target: Target, *, autocommit: bool, create: bool, timeout: float | None = None
    ) -> Any:
        """A sqlite3 connection with transaction control left to the caller (no
        implicit BEGIN, so a failing migration's DDL can be rolled back)."""
        import sqlite3

        path = target.sqlite_path
        if path is None:
            return sqlite3.connect(":memory:", isolation_level=None)
        if not create and not path.exists():
            raise DatabaseUnavailable(f"database file does not exist: {path}")
        if create:
            make_directory(path)
        try:
            busy = self.busy_timeout(target) if timeout is None else timeout
            connection = sqlite3.connect(path, isolation_level=None, timeout=busy)
            connection.execute("SELECT 1 FROM sqlite_master LIMIT 1")
        except sqlite3.DatabaseError as exc:
            raise DatabaseUnavailable(
                f"cannot open SQLite database {path}: {reason(exc, whole=True)}"
            ) from None
        return connection

    def engine_connect_args(self, target: Target) -> dict[str, Any]:
        return {"timeout": self.busy_timeout(target)}

    def interrupt(self, connection: Any) -> None:
        connection.interrupt()  # sqlite3 allows it from another thread

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

    def is_full_error(self, error: BaseException) -> bool:
        driver_error = getattr(error, "orig", None) or error
        return getattr(driver_error, "sqlite_errorcode", None) == SQLITE_FULL

    def alembic_options(self, schema: str | None) -> dict[str, Any]:
        return {"render_as_batch": True}  # autogenerated ALTERs need table rebuilds


SQLITE = SQLiteDialect()

# The sqlite3.connect arguments SQLAlchemy reads from a URL's query, and their types.
_TYPED_PARAMETERS = {
    "timeout": "a number",
    "detect_types": "an integer",
    "cached_statements": "an integer",
    "uri": "true or false",
    "check_same_thread": "true or false",
}
_BOOLEANS = {"true", "yes", "on", "y", "t", "1", "false", "no", "off", "n", "f", "0"}


def _parses_as(kind: str, value: str) -> bool:
    """Whether SQLAlchemy's conversion of `value` to `kind` succeeds."""
    if kind == "true or false":
        return value.strip().lower() in _BOOLEANS
    try:
        float(value) if kind == "a number" else int(value)
    except ValueError:
        return False
    return True


def make_directory(database: Path, mode: int = 0o777) -> None:
    """Create the directory of a database file, parents included. One line naming
    the database and the path in the way: mkdir only says `File exists: /etc/passwd`
    for `/etc/passwd/x.db`."""
    if database.parent.is_dir():
        return
    try:
        database.parent.mkdir(mode=mode, parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = next(
            (p for p in database.parents if p.exists() and not p.is_dir()), database.parent
        )
        raise DatabaseUnavailable(
            f"cannot create SQLite database {database}: {blocker} is not a directory"
        ) from None
    except OSError as exc:
        raise DatabaseUnavailable(
            f"cannot create the directory of SQLite database {database}: "
            f"{exc.strerror or exc}: {exc.filename or database.parent}"
        ) from None


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
