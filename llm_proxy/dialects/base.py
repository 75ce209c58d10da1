"""What llm-proxy needs to know about one kind of database.

A ``Dialect`` holds the facts that differ between SQLite, PostgreSQL and
MySQL/MariaDB: how to quote, which DDL goose uses for its table, which lock
statements exist, how to connect with the plain DBAPI driver. Everything else
in llm-proxy asks the dialect instead of testing its name, so adding or
changing a database touches one module.

Dialects are stateless singletons (see ``llm_proxy.dialects``); methods that
need connection details take a ``Target`` (``config.Settings`` is one).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

from llm_proxy import urls
from llm_proxy.errors import ConfigError, DatabaseUnavailable, StatementFailed, reason

_IDENTIFIER = r'(?:"(?:[^"]|"")+"|`(?:[^`]|``)+`|[A-Za-z_][\w$]*)'
# The table a statement locks follows one of these (what a lock wait is most
# likely about; the database's error does not say).
_LOCKING_PHRASE = re.compile(
    r"\b(?:ALTER\s+TABLE(?:\s+IF\s+EXISTS)?(?:\s+ONLY)?|LOCK\s+TABLE(?:\s+ONLY)?"
    r"|TRUNCATE(?:\s+TABLE)?(?:\s+ONLY)?|DROP\s+TABLE(?:\s+IF\s+EXISTS)?|RENAME\s+TABLE"
    r"|INSERT\s+INTO|UPDATE(?:\s+ONLY)?|DELETE\s+FROM(?:\s+ONLY)?|REFERENCES"
    r"|CREATE\s+(?:UNIQUE\s+)?INDEX(?:\s+CONCURRENTLY)?(?:\s+IF\s+NOT\s+EXISTS)?"
    r"(?:\s+(?!ON\b)" + _IDENTIFIER + r")?\s+ON(?:\s+ONLY)?)"
    r"\s+(" + _IDENTIFIER + r"(?:\." + _IDENTIFIER + r")?)",
    re.IGNORECASE,
)

MIGRATION_SAVEPOINT = "llm_proxy_attempt"


@dataclass(frozen=True)
class SchemaDump:
    """A database's schema as statements that rebuild it, and its tables in an order
    in which they can be filled (each after the tables it references)."""

    statements: list[str]
    tables: list[str]


# Runs one catalog query and returns its rows (the dialect builds the SQL, the
# caller owns the connection: dialects do no I/O of their own).
Query = Callable[[str], list[tuple[Any, ...]]]


def locked_tables(statement: str) -> list[str]:
    """Tables `statement` names where it takes a lock, as written, in order."""
    found: list[str] = []
    for match in _LOCKING_PHRASE.finditer(statement):
        if match.group(1) not in found:
            found.append(match.group(1))
    return found


class Target(Protocol):
    """Where a database is; `config.Settings` satisfies it."""

    @property
    def url(self) -> str: ...
    @property
    def sqlite_path(self) -> Path | None: ...
    @property
    def schema(self) -> str | None: ...
    @property
    def lock_timeout(self) -> float: ...


class Dialect:
    """The facts of one kind of database; subclasses override what differs."""

    name: ClassVar[str]  # SQLAlchemy's name: "sqlite", "postgresql", "mysql"
    label: ClassVar[str]  # for people: "SQLite", "PostgreSQL", "MySQL"
    migrations_subdirectory: ClassVar[str]  # of the packaged sql/ ("" = sql/ itself)
    dbapi_module: ClassVar[str]
    install_extra: ClassVar[str | None] = None  # pip extra that installs the driver
    is_server: ClassVar[bool] = True
    default_port: ClassVar[int | None] = None
    supports_schemas: ClassVar[bool] = False
    transactional_ddl: ClassVar[bool] = True  # False: each DDL statement commits by itself
    # Which lock-hazard rules `validate` applies (validate/hazards.py): "table-locks" for one
    # lock mode per statement inside the transaction, "online-ddl" for ALGORITHM/LOCK clauses.
    lock_hazards: ClassVar[str | None] = None
    true_literal: ClassVar[str] = "true"
    goose_table_columns: ClassVar[str]  # goose v3's DDL, exactly: the real goose reads it
    now_default: ClassVar[str] = "CURRENT_TIMESTAMP"

    def __repr__(self) -> str:
        return f"<dialect {self.name}>"

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        from llm_proxy.dialects import named

        return (named, (self.name,))  # one instance per dialect, also after pickling

    # ------------------------------------------------------------ SQL text

    def quote(self, identifier: str) -> str:
        """An identifier, quoted so that case and punctuation survive."""
        return '"' + identifier.replace('"', '""') + '"'

    def literal(self, text: str) -> str:
        """A string literal."""
        return "'" + text.replace("'", "''") + "'"

    def qualify(self, table: str, schema: str | None) -> str:
        """`table` in the configured schema (only PostgreSQL has one)."""
        return table

    def create_goose_table_sql(self, table: str) -> str:
        """goose_db_version's CREATE TABLE, exactly as goose writes it."""
        return f"CREATE TABLE {table} (\n{self.goose_table_columns}\n)"

    def existing_tables_sql(self, tables: Sequence[str], schema: str | None) -> str:
        """A query whose rows name those of `tables` that exist."""
        raise NotImplementedError

    def schema_exists_sql(self, schema: str) -> str:
        """A query with a row when `schema` exists (dialects with schemas only)."""
        raise NotImplementedError

    def create_schema_sql(self, schema: str) -> str:
        """CREATE SCHEMA for `schema` (dialects with schemas only)."""
        raise NotImplementedError

    def script_schema_sql(self, schema: str, *, create: bool) -> list[str]:
        """What an SQL script begins with to work in `schema` as our connections
        do (create it first when `create`); dialects with schemas only."""
        raise NotImplementedError

    def user_tables_sql(self) -> str:
        """Names of the tables (and views) of the connected database."""
        raise NotImplementedError

    def split_for_driver(self, statement: str) -> list[str]:
        """One goose statement as the DBAPI driver must be called with it."""
        return [statement]

    def parameter_markers(self, sql: str) -> list[str]:
        """Parameters the database reads in `sql` although none is passed (goose passes
        none): statements holding one fail."""
        return []

    def failure_reason(self, statement: str, error: BaseException) -> str:
        """One line saying why `statement` failed, from the driver's error."""
        return reason(error)

    # ------------------------------------------------------------ URLs

    def normalize_url(self, url: str, driver: str, rest: str) -> str:
        """The SQLAlchemy URL for a URL of this dialect (goose/libpq spellings accepted):
        `<dialect>+<dbapi>://rest`. Any other DBAPI is refused: the lock and the plain
        reads use that same library, so a URL may name it but no other."""
        if driver and driver != self.dbapi_module:
            raise ConfigError(
                f"unsupported {self.name} driver {driver!r} in the database URL: "
                f"llm-proxy connects through {self.dbapi_module} "
                f"({self.name}+{self.dbapi_module}://...)"
            )
        url = urls.with_encoded_userinfo(f"{self.name}+{self.dbapi_module}://{rest}")
        return urls.with_encoded_query(url)

    def with_goose_tls_files(self, url: str, files: Mapping[str, str]) -> str:
        """The URL with goose's -certfile/-ssl-cert/-ssl-key (`files`: ca, cert, key).
        goose applies them to MySQL only and ignores them for other drivers."""
        return url

    def url_from_goose_dbstring(self, dbstring: str) -> str:
        """The database URL for goose's DBSTRING of this database (goose's own forms:
        what its Go driver accepts). Messages never quote the string: it may hold a
        password."""
        raise NotImplementedError

    def finish_url(self, url: str, schema: str | None) -> tuple[str, str | None]:
        """Dialect rules for a normalised URL and --schema: (url, schema)."""
        if schema:
            raise ConfigError("--schema is supported on PostgreSQL only")
        return url, schema

    def sqlite_path(self, url: str) -> Path | None:
        """The database file a URL names (SQLite only)."""
        return None

    def describe(self, target: Target) -> str:
        """Where the database is, for messages (never a password)."""
        address = urls.server_address(target.url)
        return f"{address.host}:{address.port or self.default_port}/{address.database or ''}"

    def database_name(self, target: Target) -> str | None:
        """The server-side database the URL names (None for a file database)."""
        return urls.server_address(target.url).database

    def database_missing(self, target: Target) -> bool:
        """True when the database surely holds nothing (a SQLite file not yet made)."""
        return False

    def empty_stand_in(self) -> Any:
        """A DBAPI connection to an empty database of this kind, that creates nothing:
        what a read-only command reads where `database_missing` is True."""
        raise NotImplementedError(f"{self.label} databases are never missing")

    # ------------------------------------------------------------ connections

    def driver(self) -> Any:
        """The DBAPI module, or a one-line error saying which extra installs it."""
        from importlib import import_module

        try:
            return import_module(self.dbapi_module)
        except ImportError:
            raise DatabaseUnavailable(
                f"the {self.dbapi_module} driver is not installed: "
                f"pip install 'llm-proxy[{self.install_extra}]'"
            ) from None

    def connect(
        self, target: Target, *, autocommit: bool, create: bool, timeout: float | None = None
    ) -> Any:
        """A DBAPI connection; DatabaseUnavailable (one line, no password) when it fails.
        `timeout` (seconds): connect within it and let no read wait much longer
        (a health check's bound); None: the long defaults migrations need."""
        raise NotImplementedError

    def statement_timeout_sql(self, seconds: float) -> str | None:
        """A statement bounding every later statement of the current transaction,
        lock waits included, on the server side; None where `connect(timeout=...)`
        already bounds them."""
        return None

    def interrupt(self, connection: Any) -> None:
        """Make a call blocked on `connection` in another thread fail now (the
        connection is unusable afterwards). Where nothing can, the driver's own
        read timeout from `connect(timeout=...)` ends the call."""

    def unavailable(self, target: Target, error: BaseException) -> DatabaseUnavailable:
        """The one-line error for a failed connection, without the password: the
        URL is normalised before the driver sees it (nothing for it to quote), and a
        URL the driver's text still holds is redacted by parsing."""
        text = urls.redact_urls_in(reason(error, whole=True))
        where = self.describe(target)
        return DatabaseUnavailable(f"cannot connect to {self.label} at {where}: {text}")

    def is_connection_lost(self, error: BaseException) -> bool:
        """True for the driver's error of a connection that broke while in use (the
        server, a pooler or a cluster node went away)."""
        return False

    def lost_connection_error(
        self, target: Target, error: BaseException
    ) -> DatabaseUnavailable | None:
        """One line naming the database for a connection that broke mid-command (the
        driver's own text names nothing); None for any other error. A statement's
        failure already names its file and stays as it is."""
        driver_error = getattr(error, "orig", None) or error  # SQLAlchemy wraps it
        if isinstance(error, StatementFailed) or not self.is_connection_lost(driver_error):
            return None
        return DatabaseUnavailable(
            f"lost the connection to {self.label} at {self.describe(target)} "
            f"({reason(driver_error)}): what it had not committed was rolled back; "
            "run the command again"
        )

    def engine_connect_args(self, target: Target) -> dict[str, Any]:
        """`connect_args` for a SQLAlchemy engine of this dialect."""
        return {"connect_timeout": 10}

    def prepare_engine(self, engine: Any) -> None:
        """Adjust a new SQLAlchemy engine (SQLite takes over transaction control)."""

    def prepare_connection(self, connection: Any) -> Callable[[], None]:
        """Adjust a SQLAlchemy Connection the caller opened (and owns) for the
        migrations about to run on it; returns what undoes the adjustment."""
        return lambda: None

    def is_busy_error(self, error: BaseException) -> bool:
        """True for the database's own "locked by another writer" error."""
        return False

    def is_full_error(self, error: BaseException) -> bool:
        """True for the driver's "no room left to write" error (SQLite only so far)."""
        return False

    def full_error(self, target: Target, error: BaseException) -> DatabaseUnavailable | None:
        """One line naming the database when `error` (or one it was raised from) says
        there is no room left to write, with the migration statement that hit it; else
        None. The driver's own text ("database or disk is full") names no file."""
        place = ""
        seen: set[int] = set()
        current: BaseException | None = error
        while current is not None and id(current) not in seen:
            seen.add(id(current))
            if isinstance(current, StatementFailed) and not place:
                place = f" (at {current.file_name}, statement {current.number})"
            if self.is_full_error(current):
                return DatabaseUnavailable(
                    f"cannot write {self.label} database {self.describe(target)}: "
                    f"{reason(current)}{place}; free space on its disk and run the "
                    "command again"
                )
            current = current.__cause__ or current.__context__
        return None

    # ------------------------------------------------------------ a migration's own limits

    def migration_limits_sql(
        self, lock_timeout: float, statement_timeout: float, *, in_transaction: bool
    ) -> tuple[list[str], list[str]]:
        """(statements bounding how long each migration statement waits for a table
        lock and runs, statements restoring the server's values); 0 leaves a limit
        as the server has it. Nothing where the database has no such limit."""
        return [], []

    def gave_up_on_lock(self, error: BaseException) -> bool:
        """True for the error of a statement that stopped waiting for a lock."""
        return False

    def statement_timed_out(self, error: BaseException) -> bool:
        """True for the error of a statement stopped by the statement timeout."""
        return False

    def blockers_sql(self, tables: Sequence[str]) -> str | None:
        """A query for the sessions holding locks on `tables` (any table when empty),
        oldest transaction first: rows of (table, pid, state, since, query)."""
        return None

    # ------------------------------------------------------------ locks and tools

    def lock_statements(self, target: Target) -> tuple[str, str] | None:
        """(try the session lock without waiting, release it); None: a lock file instead."""
        return None

    def transaction_lock_sql(self, target: Target) -> str | None:
        """Try the migration lock without waiting, held until the current
        transaction ends (commit or rollback); None where no such lock exists."""
        return None

    def session_lock_holder_sql(self, target: Target) -> str | None:
        """A query for the session holding the migration's session lock: rows of
        (who, since or NULL); None where there is no session lock."""
        return None

    def session_lock_label_sql(self, label: str) -> str | None:
        """A statement the holder runs once it has the session lock, so that others
        can see who holds it since when (`session_lock_holder_sql`); None: nothing."""
        return None

    def current_database_sql(self) -> str | None:
        """A query for the name of the database a connection reached (past any pooler
        alias); None for a file database."""
        return None

    def pooler_between(self, connection: Any) -> str | None:
        """What shows that a connection pooler answers for the server on this DBAPI
        connection (for messages); None when it seems direct."""
        return None

    def session_lock_unsound(self, connection: Any) -> str | None:
        """Why a session lock taken on this DBAPI connection would not keep other
        migrators out (a connection pooler, a multi-primary cluster), for messages;
        None when it would."""
        return None

    # ------------------------------------------------------------ the lease lock's SQL

    def lease_table_sql(self, table: str) -> str:
        """CREATE TABLE IF NOT EXISTS for the lease lock's table (`table` qualified)."""
        raise NotImplementedError(f"{self.label} has no lease lock")

    def now_sql(self) -> str:
        """The database's clock now (UTC where the type has no zone), to the microsecond:
        every lease time is the database's, never a process's."""
        raise NotImplementedError(f"{self.label} has no lease lock")

    def later_sql(self, seconds: float) -> str:
        """`now_sql()` plus `seconds`."""
        raise NotImplementedError(f"{self.label} has no lease lock")

    def lock_row_nowait_sql(self) -> str:
        """What ends a SELECT that locks its rows, failing at once when one is locked."""
        return "FOR UPDATE NOWAIT"

    def is_contention_error(self, error: BaseException) -> bool:
        """True for an error that means another session got there first (a duplicate
        key, a row locked, a deadlock or a cluster's certification failure)."""
        return False

    # ------------------------------------------------------------ squash (schema dump)

    def dump_schema(self, query: Query, exclude: Collection[str] = ()) -> SchemaDump:
        """The statements that rebuild the user schema of the connected database (not
        tables in `exclude`: the version tables), read from its catalogs through `query`,
        in an order that runs. SquashError for an object the dump does not cover."""
        raise NotImplementedError

    def refusal_sql(self, message: str) -> str:
        """One statement that always fails with `message` (a baseline's Down)."""
        raise NotImplementedError

    def value_literal(self, value: Any) -> str:
        """A row's value as SQL text, for the seed rows a baseline keeps."""
        if value is None:
            return "NULL"
        if isinstance(value, bool):
            return "TRUE" if value else "FALSE"
        if isinstance(value, (int, float)):
            return repr(value)
        if isinstance(value, (bytes, bytearray, memoryview)):
            return self.bytes_literal(bytes(value))
        return self.literal(str(value))  # text, dates, decimals: the database parses them

    def bytes_literal(self, value: bytes) -> str:
        return f"X'{value.hex()}'"

    def create_database_sql(self, name: str) -> list[str]:
        """Statements that create an empty database (for validate's scratch database)."""
        return [f"CREATE DATABASE {self.quote(name)}"]

    def drop_database_sql(self, name: str) -> list[str]:
        """Statements that drop a database made by create_database_sql."""
        return [f"DROP DATABASE IF EXISTS {self.quote(name)}"]

    def alembic_options(self, schema: str | None) -> dict[str, Any]:
        """Options for Alembic's context.configure() on this dialect."""
        return {}
