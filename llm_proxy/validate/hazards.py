"""Lock hazards: DDL that makes a busy table wait, read from the shape of statements.

The outage these rules prevent is a wait, not a failure: a statement that needs a strong lock
queues behind one long transaction, and every later reader and writer of the table queues
behind it. Each rule names the statement, the lock it takes and the safe alternative
(docs/zero-downtime.md). Pure: no I/O; over the pieces ``sqlshape.Section`` reads.

A table created earlier in the same file is new, hence empty: nothing to wait for or rewrite.
So is one created by an earlier file that no deployed database has run yet (``History``): the
same ``up`` creates it and then changes it. A table created by a deployed file has rows.

Which rules apply is the dialect's ``lock_hazards``: ``TABLE_LOCKS`` (PostgreSQL: one lock
mode per statement, DDL inside the migration's transaction) or ``ONLINE_DDL`` (MySQL and
MariaDB: ``ALGORITHM`` and ``LOCK`` clauses, DDL that commits by itself).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .sqlshape import ERROR, WARNING, Piece, clauses, if_clause, name_at, read_ddl
from .sqltokens import Token

TABLE_LOCKS = "table-locks"
ONLINE_DDL = "online-ddl"

# Every rule, with what it is about (an allow comment must name one of these).
RULES: dict[str, str] = {
    "index-not-concurrent": "CREATE INDEX without CONCURRENTLY on an existing table",
    "drop-index-not-concurrent": "DROP INDEX without CONCURRENTLY",
    "needs-no-transaction": "a statement that cannot run inside a transaction",
    "constraint-not-valid": "FOREIGN KEY or CHECK added without NOT VALID",
    "column-type-rewrite": "ALTER COLUMN ... TYPE on an existing table",
    "set-not-null": "SET NOT NULL without a validated CHECK (col IS NOT NULL)",
    "volatile-default": "a new column whose default is computed per row",
    "add-column-not-null": "ADD COLUMN ... NOT NULL without a DEFAULT",
    "rename": "renaming a table or column that running code still uses",
    "online-ddl": "MySQL ALTER TABLE without ALGORITHM=INSTANT or INPLACE, LOCK=NONE",
}


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# PostgreSQL functions a column default evaluates once per row (volatile), so that adding
# the column rewrites the table; now() and CURRENT_TIMESTAMP are stable: no rewrite since 11.
VOLATILE_FUNCTIONS = _words(
    "RANDOM CLOCK_TIMESTAMP TIMEOFDAY GEN_RANDOM_UUID UUID_GENERATE_V1 UUID_GENERATE_V1MC "
    "UUID_GENERATE_V4 UUIDV4 UUIDV7 NEXTVAL"
)
_SERIAL_TYPES = _words("SMALLSERIAL SERIAL BIGSERIAL SERIAL2 SERIAL4 SERIAL8")
_ONLINE_ALGORITHMS = frozenset({"INSTANT", "INPLACE"})
_NOT_A_COLUMN = _words(
    "CONSTRAINT PRIMARY UNIQUE INDEX KEY FOREIGN CHECK FULLTEXT SPATIAL PARTITION EXCLUDE"
)


@dataclass(frozen=True)
class Hazard:
    """One finding of these rules."""

    line: int | None
    severity: str
    rule: str
    message: str


@dataclass
class History:
    """What the files read so far (in version order) leave for the rules of the next one."""

    new_tables: set[str] = field(default_factory=set)  # created by files not deployed yet
    new_indexes: set[str] = field(default_factory=set)
    # CHECK (col IS NOT NULL) constraints added NOT VALID: name -> (table, column).
    not_null_checks: dict[str, tuple[str, str]] = field(default_factory=dict)
    not_null_validated: set[tuple[str, str]] = field(default_factory=set)


def file_hazards(
    up: Iterable[Piece],
    down: Iterable[Piece],
    *,
    model: str,
    transactional: bool,
    history: History,
    deployed: bool = False,
) -> list[Hazard]:
    """The hazards of one file's Up and Down; ``history`` is brought up to date with it.

    ``deployed``: the file has already run on the databases that matter; the tables it
    creates count as existing (with rows) for the files after it."""
    before = History(
        set(history.new_tables),
        set(history.new_indexes),
        dict(history.not_null_checks),
        set(history.not_null_validated),
    )
    up_scan = _Scan(model, transactional, history)
    up_scan.run(up)
    # A Down runs on the tables as the Up left them, since filled: only what the Down itself
    # creates is new. Its constraint bookkeeping is not kept (it undoes the Up's).
    before.new_indexes |= up_scan.created_indexes  # indexes of tables new before the Up
    down_scan = _Scan(model, transactional, before)
    down_scan.run(down)
    if deployed:
        history.new_tables -= up_scan.created_tables
        history.new_indexes -= up_scan.created_indexes
    return up_scan.found + down_scan.found


class _Scan:
    """The rules over one section, keeping ``state`` (what is new, what is validated)."""

    def __init__(self, model: str, transactional: bool, state: History) -> None:
        self.model = model
        self.transactional = transactional
        self.state = state
        self.created_tables: set[str] = set()
        self.created_indexes: set[str] = set()
        self.not_valid_here: set[str] = set()  # constraints added NOT VALID in this section
        self.found: list[Hazard] = []

    @property
    def postgres_like(self) -> bool:
        return self.model == TABLE_LOCKS

    def run(self, pieces: Iterable[Piece]) -> None:
        for piece in pieces:
            self.statement(piece.tokens, piece.line)

    def flag(self, line: int | None, rule: str, message: str, severity: str = WARNING) -> None:
        self.found.append(Hazard(line, severity, rule, message))

    def is_new(self, table: str | None) -> bool:
        return table is not None and table in self.state.new_tables

    def statement(self, tokens: list[Token], line: int | None) -> None:
        first = tokens[0].upper
        words = [t.upper for t in tokens[:8]]
        if first == "VACUUM" or (first == "REINDEX" and "CONCURRENTLY" in words):
            self.no_transaction(line, first if first == "VACUUM" else "REINDEX CONCURRENTLY")
            return
        if words[:2] == ["ALTER", "TYPE"] and _has_run(tokens, ("ADD", "VALUE")):
            if self.postgres_like and self.transactional:
                self.flag(
                    line,
                    "needs-no-transaction",
                    "ALTER TYPE ... ADD VALUE fails inside a transaction before PostgreSQL 12, "
                    "and later the new value cannot be used before the transaction commits: "
                    "put it in a file of its own marked '-- +goose NO TRANSACTION'",
                )
            return
        if words[:2] == ["ALTER", "TABLE"]:
            self.alter_table(tokens, line)
            return
        if words[:2] == ["RENAME", "TABLE"]:  # MySQL: RENAME TABLE a TO b
            old, index = name_at(tokens, 2)
            new = name_at(tokens, index + 1)[0] if index < len(tokens) else None
            self.table_renamed(old, new, line)
            return
        ddl = read_ddl(tokens)
        if ddl is None:
            return
        if ddl.kind == "TABLE":
            for name in ddl.names:
                if ddl.action == "CREATE":
                    self.state.new_tables.add(name)
                    self.created_tables.add(name)
                else:
                    self.state.new_tables.discard(name)
        elif ddl.kind == "DATABASE" and self.postgres_like:
            self.no_transaction(line, f"{ddl.action} DATABASE")
        elif ddl.kind == "INDEX":
            self.index(ddl.action, ddl.names, ddl.table, ddl.concurrently, tokens, line)

    def no_transaction(self, line: int | None, what: str) -> None:
        if self.postgres_like and self.transactional:
            self.flag(
                line,
                "needs-no-transaction",
                f"{what} cannot run inside a transaction, and goose runs this file in one: "
                "put it in a file of its own marked '-- +goose NO TRANSACTION'",
                ERROR,
            )

    def index(
        self,
        action: str,
        names: Sequence[str],
        table: str | None,
        concurrently: bool,
        tokens: list[Token],
        line: int | None,
    ) -> None:
        if action == "CREATE" and self.is_new(table):
            self.state.new_indexes.update(names)
            self.created_indexes.update(names)
            if concurrently:
                self.no_transaction(line, "CREATE INDEX CONCURRENTLY")
            return
        if action == "DROP" and names and all(n in self.state.new_indexes for n in names):
            return  # an index of a new table
        if not self.postgres_like:
            # MySQL's CREATE/DROP INDEX is an ALTER TABLE: the same clauses apply.
            if table is not None and not self.is_new(table) and not _online(tokens):
                self.flag(line, "online-ddl", _online_message(f"{action} INDEX", table))
            return
        if concurrently:
            self.no_transaction(line, f"{action} INDEX CONCURRENTLY")
        elif action == "CREATE" and table is not None:
            self.flag(
                line,
                "index-not-concurrent",
                f"CREATE INDEX on existing table {table} takes a SHARE lock that blocks its "
                "writes for the whole build: use CREATE INDEX CONCURRENTLY in a file marked "
                "'-- +goose NO TRANSACTION'",
            )
        elif action == "DROP":
            self.flag(
                line,
                "drop-index-not-concurrent",
                f"DROP INDEX {', '.join(names)} takes an ACCESS EXCLUSIVE lock on its table, "
                "queueing every reader behind it: use DROP INDEX CONCURRENTLY in a file "
                "marked '-- +goose NO TRANSACTION'",
            )

    def table_renamed(self, old: str | None, new: str | None, line: int | None) -> None:
        if old is None or new is None:
            return
        if self.is_new(old):
            self.state.new_tables.discard(old)
            self.state.new_tables.add(new)
            self.created_tables.add(new)
            return
        self.flag(
            line,
            "rename",
            f"renaming table {old} to {new} breaks the instances still running the old code "
            "during a rolling deploy: create the new table (or a view) and move over in steps",
        )

    def alter_table(self, tokens: list[Token], line: int | None) -> None:
        _, index = if_clause(tokens, 2)
        if index < len(tokens) and tokens[index].upper == "ONLY":
            index += 1
        table, index = name_at(tokens, index)
        if table is None:
            return
        new = self.is_new(table)
        renames_only = True
        for clause in clauses(tokens, index):
            words = [t.upper for t in clause]
            if words[0] in ("ALGORITHM", "LOCK"):
                continue
            renames_only = renames_only and words[:2] in (["RENAME", "TO"], ["RENAME", "AS"])
            if words[0] == "VALIDATE" and len(clause) > 2:
                self.validated(table, clause[2].text.lower(), line)
            elif words[0] == "RENAME" and words[1:2] in (["TO"], ["AS"]):
                self.table_renamed(table, name_at(clause, 2)[0], line)
            elif new:
                if words[0] == "ADD":
                    self.track_constraint(table, clause)
                continue
            elif words[0] == "ADD":
                self.add(table, clause, line)
            elif words[0] == "ALTER":
                self.alter_column(table, clause, line)
            elif words[0] in ("RENAME", "CHANGE"):
                self.column_renamed(table, clause, line)
        if not self.postgres_like and not new and not renames_only and not _online(tokens):
            self.flag(line, "online-ddl", _online_message("ALTER TABLE", table))

    def add(self, table: str, clause: list[Token], line: int | None) -> None:
        words = [t.upper for t in clause]
        index = 2 if words[1:2] == ["COLUMN"] else 1
        index = if_clause(clause, index)[1]
        if index < len(words) and words[index] in _NOT_A_COLUMN:
            self.add_constraint(table, clause, line)
            return
        column, index = name_at(clause, index)
        if column is None:
            return
        rest = words[index:]
        generated = "GENERATED" in rest or "AUTO_INCREMENT" in rest
        has_default = "DEFAULT" in rest
        volatile = self.volatile_default(clause[index:], rest)
        if volatile:
            self.flag(
                line,
                "volatile-default",
                f"adding column {column} to existing table {table} with {volatile} rewrites "
                "the table under an ACCESS EXCLUSIVE lock: add it without the default (or "
                "with a constant one), set the default after, and fill rows in batches",
            )
        elif _has_run(clause[index:], ("NOT", "NULL")) and not has_default and not generated:
            self.flag(
                line,
                "add-column-not-null",
                f"adding NOT NULL column {column} without a DEFAULT to existing table {table} "
                + (
                    "fails when it has rows, and "
                    if self.postgres_like
                    else "fills it with the type's zero value, and "
                )
                + "breaks inserts of the running code that does not know the column: add it "
                "with a DEFAULT, or nullable and set NOT NULL once every row has a value",
            )

    def volatile_default(self, tokens: list[Token], words: list[str]) -> str | None:
        """What makes a new column's value differ per row (PostgreSQL), else None."""
        if not self.postgres_like:
            return None  # InnoDB adds columns in place or instantly; no per-row default rule
        if words and words[0] in _SERIAL_TYPES:
            return f"type {words[0]}"
        if "GENERATED" in words and ("STORED" in words or "IDENTITY" in words):
            return "a generated value"
        if "DEFAULT" in words:
            for position in range(words.index("DEFAULT") + 1, len(tokens) - 1):
                name = words[position]
                if name in VOLATILE_FUNCTIONS and tokens[position + 1].text == "(":
                    return f"the volatile default {tokens[position].text}()"
        return None

    def add_constraint(self, table: str, clause: list[Token], line: int | None) -> None:
        if not self.postgres_like:
            return  # MySQL has no NOT VALID; online-ddl covers the statement
        kind = self.track_constraint(table, clause)
        if kind is None or _has_run(clause, ("NOT", "VALID")):
            return
        lock = (
            "SHARE ROW EXCLUSIVE locks on both tables"
            if kind == "FOREIGN"
            else "an ACCESS EXCLUSIVE lock"
        )
        label = "FOREIGN KEY" if kind == "FOREIGN" else "CHECK"
        self.flag(
            line,
            "constraint-not-valid",
            f"adding a {label} to existing table {table} checks every row under {lock}: "
            "add it NOT VALID, then VALIDATE CONSTRAINT in a later migration",
        )

    def track_constraint(self, table: str, clause: list[Token]) -> str | None:
        """Record a CHECK (col IS NOT NULL); the kind (FOREIGN, CHECK) of the constraint added."""
        words = [t.upper for t in clause]
        name = None
        if "CONSTRAINT" in words[:3]:
            name = name_at(clause, words.index("CONSTRAINT") + 1)[0]
        kind = next((w for w in words if w in ("FOREIGN", "CHECK", "PRIMARY", "UNIQUE")), None)
        if kind not in ("FOREIGN", "CHECK"):
            return None
        column = _not_null_check(clause) if kind == "CHECK" else None
        not_valid = _has_run(clause, ("NOT", "VALID"))
        if not_valid and name:
            self.not_valid_here.add(name)
        if column is not None:
            if not_valid and name:
                self.state.not_null_checks[name] = (table, column)
            elif not not_valid:
                self.state.not_null_validated.add((table, column))
        return kind

    def validated(self, table: str, name: str, line: int | None) -> None:
        if name in self.state.not_null_checks:
            self.state.not_null_validated.add(self.state.not_null_checks[name])
        if name in self.not_valid_here and self.transactional and self.postgres_like:
            self.flag(
                line,
                "constraint-not-valid",
                f"VALIDATE CONSTRAINT {name} in the transaction that added it keeps that "
                f"statement's lock on {table} during the scan: validate in a later migration",
            )

    def alter_column(self, table: str, clause: list[Token], line: int | None) -> None:
        if not self.postgres_like:
            return  # MySQL's ALTER COLUMN only sets or drops a default
        words = [t.upper for t in clause]
        index = 2 if words[1:2] == ["COLUMN"] else 1
        column, index = name_at(clause, index)
        rest = words[index:]
        if rest[:1] == ["TYPE"] or rest[:3] == ["SET", "DATA", "TYPE"]:
            self.flag(
                line,
                "column-type-rewrite",
                f"changing the type of {table}.{column} rewrites the table (and its indexes) "
                "under an ACCESS EXCLUSIVE lock, unless it only widens a varchar or drops its "
                "limit: add a new column, backfill it in batches, and switch over",
            )
        elif rest[:3] == ["SET", "NOT", "NULL"] and (table, column) not in (
            self.state.not_null_validated
        ):
            self.flag(
                line,
                "set-not-null",
                f"SET NOT NULL on {table}.{column} scans the table under an ACCESS EXCLUSIVE "
                f"lock: first add CHECK ({column} IS NOT NULL) NOT VALID and VALIDATE it in a "
                "later migration; PostgreSQL 12+ then skips the scan",
            )

    def column_renamed(self, table: str, clause: list[Token], line: int | None) -> None:
        words = [t.upper for t in clause]
        index = 2 if words[1:2] in (["COLUMN"],) else 1
        if words[1:2] in (["INDEX"], ["KEY"], ["CONSTRAINT"]):
            return  # renaming an index or constraint: no running code names it
        old, index = name_at(clause, index)
        if words[0] == "RENAME":
            if index >= len(clause) or words[index] != "TO":
                return
            new = name_at(clause, index + 1)[0]
        else:  # MySQL: CHANGE [COLUMN] old new type
            new = name_at(clause, index)[0]
        if old is None or new is None or old == new:
            return
        self.flag(
            line,
            "rename",
            f"renaming column {table}.{old} to {new} breaks the instances still running the "
            "old code during a rolling deploy: add the new column, write both, backfill, "
            "move reads, then drop the old one in a later release",
        )


def _has_run(tokens: Sequence[Token], run: tuple[str, ...]) -> bool:
    """Whether the words of ``run`` appear one after the other in ``tokens``."""
    size = len(run)
    return any(
        tuple(t.upper for t in tokens[i : i + size]) == run for i in range(len(tokens) - size + 1)
    )


def _not_null_check(clause: list[Token]) -> str | None:
    """The column of ``CHECK (col IS NOT NULL)``, else None."""
    words = [t.upper for t in clause]
    start = words.index("CHECK")
    body = clause[start + 1 : start + 7]
    shape = [t.text if t.kind == "punct" else t.upper for t in body]
    if len(body) == 6 and shape[0] == "(" and shape[2:] == ["IS", "NOT", "NULL", ")"]:
        return body[1].text.lower() if body[1].is_name else None
    return None


def _online(tokens: Sequence[Token]) -> bool:
    """ALGORITHM=INSTANT, or ALGORITHM=INPLACE with LOCK=NONE, somewhere in the statement."""
    options: dict[str, str] = {}
    for index, token in enumerate(tokens):
        if token.upper in ("ALGORITHM", "LOCK"):
            after = index + 1
            if after < len(tokens) and tokens[after].text == "=":
                after += 1
            if after < len(tokens):
                options.setdefault(token.upper, tokens[after].upper)
    algorithm = options.get("ALGORITHM")
    return algorithm == "INSTANT" or (
        algorithm in _ONLINE_ALGORITHMS and options.get("LOCK") == "NONE"
    )


def _online_message(what: str, table: str) -> str:
    return (
        f"{what} on existing table {table} without ALGORITHM=INSTANT (or ALGORITHM=INPLACE, "
        "LOCK=NONE) may copy the table under a lock that blocks its writes: state them, so "
        "that the server refuses instead of blocking (MySQL 8.0, MariaDB 10.3 and later)"
    )
