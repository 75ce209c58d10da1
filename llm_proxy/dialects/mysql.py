"""MySQL and MariaDB: PyMySQL, a named GET_LOCK, non-transactional DDL."""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from llm_proxy import urls
from llm_proxy.errors import ConfigError, SquashError

from .base import Dialect, Query, SchemaDump, Target

LOCK_NAME_PREFIX = "llm-proxy-migrations"
_LOCK_NAME_LIMIT = 64  # MariaDB's limit on GET_LOCK names


# Parameters of Go's MySQL driver that change only how Go talks to the server or
# converts values: they mean nothing to PyMySQL and are left out.
_GO_ONLY_PARAMETERS = frozenset(
    {
        "parseTime", "loc", "multiStatements", "interpolateParams", "timeout", "readTimeout",
        "writeTimeout", "allowNativePasswords", "allowCleartextPasswords", "allowOldPasswords",
        "clientFoundRows", "columnsWithAlias", "maxAllowedPacket", "rejectReadOnly",
        "checkConnLiveness", "collation", "time_zone", "sql_mode", "autocommit",
    }
)  # fmt: skip


def parse_go_dsn(dsn: str) -> tuple[str | None, str | None, str, str, list[tuple[str, str]]]:
    """Go's MySQL DSN `[user[:password]@][tcp[(host:port)]]/dbname[?params]` as (user,
    password, host:port, database, params). Messages never quote the user part."""
    head, slash, tail = dsn.rpartition("/")
    if not slash:
        raise ConfigError("goose DBSTRING: a MySQL DSN is user:password@tcp(host:port)/dbname")
    database, _, raw_query = tail.partition("?")
    userinfo, at, address = head.rpartition("@")
    user = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        password = secret if colon else None
    protocol, paren, rest = address.partition("(")
    if protocol not in ("", "tcp"):
        raise ConfigError(
            f"goose DBSTRING: MySQL over {protocol!r} is not supported; use tcp(host:port)"
        )
    if paren and not rest.endswith(")"):
        raise ConfigError("goose DBSTRING: tcp( without its closing )")
    hostport = rest[:-1] if paren else ""
    params = [
        (name, value)
        for name, _, value in (piece.partition("=") for piece in raw_query.split("&") if piece)
    ]
    return user, password, hostport or "127.0.0.1:3306", database, params


def _tls(query: Mapping[str, str]) -> dict[str, Any]:
    """PyMySQL's ssl argument from the URL's ssl_ca/ssl_cert/ssl_key, as SQLAlchemy
    builds it for the engine: the plain connections then use TLS exactly as it does."""
    files = {kind: query[f"ssl_{kind}"] for kind in ("ca", "cert", "key") if f"ssl_{kind}" in query}
    return {"ssl": files} if files else {}


class MySQLDialect(Dialect):
    name = "mysql"
    label = "MySQL"
    migrations_subdirectory = "mysql"
    dbapi_module = "pymysql"
    install_extra = "mysql"
    default_port = 3306
    transactional_ddl = False  # CREATE, ALTER, DROP commit the open transaction
    lock_hazards = "online-ddl"
    goose_table_columns = (
        "\tid bigint(20) unsigned NOT NULL AUTO_INCREMENT,\n"
        "\tversion_id bigint NOT NULL,\n"
        "\tis_applied boolean NOT NULL,\n"
        "\ttstamp timestamp NULL default now(),\n"
        "\tPRIMARY KEY(id)"
    )

    def quote(self, identifier: str) -> str:
        return "`" + identifier.replace("`", "``") + "`"

    def literal(self, text: str) -> str:
        # A backslash escapes in MySQL strings (unless NO_BACKSLASH_ESCAPES).
        return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"

    def existing_tables_sql(self, tables: Sequence[str], schema: str | None) -> str:
        names = ", ".join(self.literal(t) for t in tables)
        return (
            "SELECT table_name FROM information_schema.tables "
            f"WHERE table_schema = DATABASE() AND table_name IN ({names})"
        )

    def user_tables_sql(self) -> str:
        return "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()"

    def dump_schema(self, query: Query, exclude: Collection[str] = ()) -> SchemaDump:
        # SHOW CREATE TABLE is the server's own catalog rendering, foreign keys inline:
        # tables are ordered so that each comes after the tables it references, else by
        # name (create_time has whole seconds: no stable order).
        kinds = query(
            "SELECT table_name, table_type FROM information_schema.tables "
            "WHERE table_schema = DATABASE() ORDER BY table_name"
        )
        uncovered = [f"view {name}" for name, kind in kinds if kind != "BASE TABLE"]
        uncovered += [
            f"{str(kind).lower()} {name}"
            for kind, name in query(
                "SELECT routine_type, routine_name FROM information_schema.routines "
                "WHERE routine_schema = DATABASE() UNION ALL SELECT 'trigger', trigger_name "
                "FROM information_schema.triggers WHERE trigger_schema = DATABASE()"
            )
        ]
        if uncovered:
            raise SquashError(
                f"cannot squash: the schema holds objects the dump does not rebuild "
                f"({', '.join(sorted(uncovered))}); keep the history as it is"
            )
        tables = [str(name) for name, kind in kinds if kind == "BASE TABLE" and name not in exclude]
        references: dict[str, set[str]] = {name: set() for name in tables}
        for table, referenced in query(
            "SELECT table_name, referenced_table_name FROM "
            "information_schema.referential_constraints WHERE constraint_schema = DATABASE()"
        ):
            if table in references and referenced != table:
                references[table].add(str(referenced))
        ordered = _parents_first(tables, references)
        statements = []
        for name in ordered:
            text = str(query(f"SHOW CREATE TABLE {self.quote(name)}")[0][1])
            # The next AUTO_INCREMENT value is data, not schema.
            statements.append(re.sub(r" AUTO_INCREMENT=\d+", "", text))
        return SchemaDump(statements=statements, tables=ordered)

    def refusal_sql(self, message: str) -> str:
        return f"SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = {self.literal(message)}"

    def with_goose_tls_files(self, url: str, files: Mapping[str, str]) -> str:
        # SQLAlchemy's PyMySQL dialect reads ssl_ca/ssl_cert/ssl_key from the query;
        # connect() below does the same for the plain connections.
        pieces = [f"ssl_{kind}={urls.quote_value(path)}" for kind, path in files.items()]
        if not pieces:
            return url
        return url + ("&" if "?" in url else "?") + "&".join(pieces)

    def url_from_goose_dbstring(self, dbstring: str) -> str:
        if "://" in dbstring:  # goose's driver takes only the Go DSN; a URL is ours
            return dbstring
        user, password, hostport, database, params = parse_go_dsn(dbstring)
        query: list[tuple[str, str]] = []
        for name, value in params:
            if name == "charset":  # Go takes a list to try in turn; PyMySQL one
                query.append((name, value.split(",")[0]))
            elif name == "tls" and value.lower() == "false":
                continue
            elif name == "tls":
                raise ConfigError(
                    f"goose DBSTRING: tls={value} is not supported: give the CA file with "
                    "-certfile (and -ssl-cert, -ssl-key for a client certificate)"
                )
            elif name not in _GO_ONLY_PARAMETERS:
                raise ConfigError(f"goose DBSTRING: unknown MySQL DSN parameter {name!r}")
        host, colon, port = hostport.rpartition(":") if ":" in hostport else (hostport, "", "")
        return urls.server_url(
            "mysql",
            host=host.strip("[]"),
            port=port or None,
            user=user,
            password=password,
            database=database,
            query=query,
        )

    def finish_url(self, url: str, schema: str | None) -> tuple[str, str | None]:
        url, schema = super().finish_url(url, schema)
        if not urls.database_of(url):
            raise ConfigError(f"the MySQL database URL names no database: {urls.redact(url)}")
        return url, schema

    def connect(
        self, target: Target, *, autocommit: bool, create: bool, timeout: float | None = None
    ) -> Any:
        pymysql = self.driver()
        address = urls.server_address(target.url)
        charset = address.query.get("charset", "utf8mb4")
        from pymysql.charset import charset_by_name

        if charset_by_name(charset) is None:
            # PyMySQL itself fails on it with an AttributeError.
            raise ConfigError(
                f"unknown MySQL charset {charset!r} in the database URL (?charset=); "
                "llm-proxy's default is utf8mb4"
            )
        bounds: dict[str, Any] = {"connect_timeout": 10}
        if timeout is not None:
            bounds = {
                "connect_timeout": timeout,
                # Client side: a read or write waits no longer than this.
                "read_timeout": timeout,
                "write_timeout": timeout,
                # Server side: a statement waiting for a table lock (LOCK TABLES,
                # DDL) gives up too, instead of waiting on after the client left.
                "init_command": f"SET SESSION lock_wait_timeout = {max(1, math.ceil(timeout))}",
            }
        try:
            return pymysql.connect(
                host=address.host,
                port=address.port or self.default_port,
                user=address.user or "root",
                password=self.password(address),
                database=address.database,
                autocommit=autocommit,
                charset=charset,
                # goose sends a statement string whole ("a; b;" on one line is one), which
                # its MySQL driver runs with multiStatements=true in the DSN.
                client_flag=pymysql.constants.CLIENT.MULTI_STATEMENTS,
                **_tls(address.query),
                **bounds,
            )
        except pymysql.Error as exc:
            raise self.unavailable(target, exc) from None

    def migration_limits_sql(
        self, lock_timeout: float, statement_timeout: float, *, in_transaction: bool
    ) -> tuple[list[str], list[str]]:
        # Session scope either way: DDL commits by itself, there is no LOCAL.
        # lock_wait_timeout bounds metadata-lock waits (what DDL queues on) in whole
        # seconds; max_statement_time is MariaDB's (MySQL's max_execution_time bounds
        # SELECT only, so on MySQL the SET fails and says so).
        sets: list[str] = []
        resets: list[str] = []
        if lock_timeout > 0:
            sets.append(f"SET SESSION lock_wait_timeout = {max(1, math.ceil(lock_timeout))}")
            resets.append("SET SESSION lock_wait_timeout = DEFAULT")
        if statement_timeout > 0:
            sets.append(f"SET SESSION max_statement_time = {statement_timeout:.3f}")
            resets.append("SET SESSION max_statement_time = DEFAULT")
        return sets, resets

    def gave_up_on_lock(self, error: BaseException) -> bool:
        return _error_code(error) == 1205  # ER_LOCK_WAIT_TIMEOUT (metadata or row lock)

    def statement_timed_out(self, error: BaseException) -> bool:
        return _error_code(error) == 1969  # ER_STATEMENT_TIMEOUT (max_statement_time)

    def blockers_sql(self, tables: Sequence[str]) -> str:
        # Who holds a metadata lock is only known with performance_schema (often off):
        # open InnoDB transactions, oldest first, are the likely holders.
        table = self.literal(", ".join(tables))
        return (
            f"SELECT {table}, t.trx_mysql_thread_id, "
            "CONCAT('transaction open, ', COALESCE(p.COMMAND, '?')), "
            "DATE_FORMAT(t.trx_started, '%Y-%m-%d %H:%i:%s'), COALESCE(p.INFO, '') "
            "FROM information_schema.INNODB_TRX t LEFT JOIN information_schema.PROCESSLIST p "
            "ON p.ID = t.trx_mysql_thread_id WHERE t.trx_mysql_thread_id <> CONNECTION_ID() "
            "ORDER BY t.trx_started, t.trx_mysql_thread_id"
        )

    @staticmethod
    def password(address: urls.ServerAddress) -> str:
        """The password as SQLAlchemy hands it to PyMySQL (the URL's query overrides
        the userinfo; `passwd` counts only when nothing else gives one), so the
        lock's plain connection logs in exactly as the engine does."""
        query = address.query
        return query.get("password") or address.password or query.get("passwd") or ""

    def lock_name(self, target: Target) -> str:
        """GET_LOCK names are server-wide, unlike PostgreSQL advisory locks (which are
        per database): the database name is part of the name, so migrations of two
        databases on one server do not wait for each other. A name over MariaDB's
        limit keeps a digest of the database name instead."""
        database = self.database_name(target) or ""
        name = f"{LOCK_NAME_PREFIX}:{database}"
        if len(name) <= _LOCK_NAME_LIMIT:
            return name
        import hashlib

        digest = hashlib.sha256(database.encode("utf-8")).hexdigest()[:32]
        return f"{LOCK_NAME_PREFIX}:{digest}"

    def lock_statements(self, target: Target) -> tuple[str, str]:
        name = self.literal(self.lock_name(target))
        return f"SELECT GET_LOCK({name}, 0)", f"SELECT RELEASE_LOCK({name})"

    def current_database_sql(self) -> str:
        return "SELECT DATABASE()"

    def session_lock_holder_sql(self, target: Target) -> str:
        name = self.literal(self.lock_name(target))
        return (
            "SELECT CONCAT('connection ', p.ID, ' (', p.USER, '@', p.HOST, ')'), NULL "
            f"FROM information_schema.PROCESSLIST p WHERE p.ID = IS_USED_LOCK({name})"
        )

    def session_lock_unsound(self, connection: Any) -> str | None:
        # Galera replicates rows, not GET_LOCK: each node grants it on its own.
        cursor = connection.cursor()
        try:
            cursor.execute("SELECT @@wsrep_on")
            value = cursor.fetchone()[0]
        except Exception as exc:
            if _error_code(exc) == 1193:  # unknown system variable: no wsrep at all
                return None
            raise
        finally:
            cursor.close()
        if str(value).upper() in ("1", "ON"):
            return "a Galera cluster (wsrep_on): GET_LOCK holds on one node only"
        return None

    def lease_table_sql(self, table: str) -> str:
        # Galera certifies rows by primary key: the key is what makes two nodes' claims
        # conflict.
        return (
            f"CREATE TABLE IF NOT EXISTS {table} (lock_name VARCHAR(64) NOT NULL PRIMARY KEY, "
            "holder VARCHAR(255) NOT NULL, acquired_at DATETIME(6) NOT NULL, "
            "renewed_at DATETIME(6) NOT NULL, expires_at DATETIME(6) NOT NULL) ENGINE=InnoDB"
        )

    def now_sql(self) -> str:
        return "UTC_TIMESTAMP(6)"  # NOW() follows each session's time_zone

    def later_sql(self, seconds: float) -> str:
        return f"UTC_TIMESTAMP(6) + INTERVAL {round(seconds * 1_000_000)} MICROSECOND"

    def is_connection_lost(self, error: BaseException) -> bool:
        # server gone away, lost connection during query, lost connection (reading
        # the reply), server shutdown in progress, connection killed
        return _error_code(error) in {2006, 2013, 2055, 1053, 1927}

    def is_contention_error(self, error: BaseException) -> bool:
        # duplicate key, lock wait (MariaDB's NOWAIT), deadlock (also Galera's
        # certification failure), MySQL's NOWAIT
        return _error_code(error) in {1062, 1205, 1213, 3572}


def _error_code(error: BaseException) -> int | None:
    args = getattr(error, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


MYSQL = MySQLDialect()


def _parents_first(tables: list[str], references: Mapping[str, set[str]]) -> list[str]:
    """`tables` in their order, but each after the tables it references."""
    ordered: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in ordered or name not in references:
            return
        if name in visiting:
            raise SquashError(f"cannot squash: tables reference each other in a cycle ({name})")
        visiting.add(name)
        for parent in sorted(references[name]):
            visit(parent)
        visiting.discard(name)
        ordered.append(name)

    for table in tables:
        visit(table)
    return ordered
