"""What a migration's SQL does, read from its shape: the statement shapes the
validator's rules look at (CREATE/DROP/ALTER, idempotence, and whether a Down
undoes its Up), over the tokens of ``sqltokens``. Pure: no I/O.

Anything it cannot read is left alone rather than guessed at.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from .sqltokens import WORD_PATTERN, Token, leading_words, split_statements, tokenize

# Severities of the findings these checks report.
ERROR = "error"
WARNING = "warning"


# ---------------------------------------------------------------- statement shapes


def _words_of(text: str) -> frozenset[str]:
    return frozenset(text.split())


_KINDS = _words_of(
    "TABLE INDEX VIEW TRIGGER SEQUENCE SCHEMA DATABASE TYPE DOMAIN FUNCTION PROCEDURE "
    "EXTENSION EVENT"
)
# Words allowed between CREATE/DROP and the object kind.
_MODIFIERS = _words_of(
    "OR REPLACE TEMP TEMPORARY GLOBAL LOCAL UNLOGGED UNIQUE FULLTEXT SPATIAL MATERIALIZED "
    "RECURSIVE VIRTUAL CONSTRAINT SQL SECURITY INVOKER DEFINER ALGORITHM AGGREGATE"
)
# Kinds a CREATE can make idempotent (IF NOT EXISTS or OR REPLACE in some dialect).
_IDEMPOTENT_CREATE = _KINDS - {"TYPE", "DOMAIN"}
_REPLACEABLE = frozenset({"VIEW", "FUNCTION", "PROCEDURE", "TRIGGER"})
# Words after ADD that start something other than a column.
_NOT_A_COLUMN = _words_of(
    "CONSTRAINT PRIMARY UNIQUE INDEX KEY FOREIGN CHECK FULLTEXT SPATIAL PARTITION EXCLUDE "
    "PERIOD SYSTEM"
)


@dataclass
class _Ddl:
    """A CREATE or DROP of a named object."""

    action: str  # "CREATE" or "DROP"
    kind: str  # "TABLE", "MATERIALIZED VIEW", ...
    names: list[str]
    table: str | None = None  # the table an index or trigger is on
    if_not_exists: bool = False
    if_exists: bool = False
    or_replace: bool = False
    temporary: bool = False
    concurrently: bool = False  # PostgreSQL: CREATE/DROP INDEX CONCURRENTLY


@dataclass
class _Alter:
    """What an ALTER TABLE (or RENAME TABLE) does that a Down must undo."""

    table: str
    added_columns: list[str] = field(default_factory=list)
    added_names: list[tuple[str, str]] = field(default_factory=list)  # ("constraint", name)
    column_renames: list[tuple[str, str]] = field(default_factory=list)
    table_rename: str | None = None
    invalid: list[str] = field(default_factory=list)  # messages for invalid IF clauses


def _name_at(tokens: list[Token], index: int) -> tuple[str | None, int]:
    """A possibly qualified name starting at ``index``: (last part lowercased, next index)."""
    if index >= len(tokens) or not tokens[index].is_name:
        return None, index
    name = tokens[index].text
    index += 1
    while (
        index + 1 < len(tokens)
        and tokens[index].text == "."
        and tokens[index].kind == "punct"
        and tokens[index + 1].is_name
    ):
        name = tokens[index + 1].text
        index += 2
    return name.lower(), index


def _if_clause(tokens: list[Token], index: int) -> tuple[str, int]:
    """("IF NOT EXISTS" | "IF EXISTS" | "", next index)."""
    words = leading_words(tokens, index, 3)
    if words[:3] == ["IF", "NOT", "EXISTS"]:
        return "IF NOT EXISTS", index + 3
    if words[:2] == ["IF", "EXISTS"]:
        return "IF EXISTS", index + 2
    return "", index


def _read_ddl(tokens: list[Token]) -> _Ddl | None:
    action = tokens[0].upper
    if action not in ("CREATE", "DROP"):
        return None
    modifiers: set[str] = set()
    index = 1
    skipping_value = False  # DEFINER = user@host, ALGORITHM = MERGE
    while index < len(tokens) and index < 16:
        word = tokens[index].upper
        if word in _KINDS:
            break
        if word in _MODIFIERS:
            modifiers.add(word)
            skipping_value = word in ("DEFINER", "ALGORITHM")
        elif not skipping_value:
            return None  # CREATE USER, CREATE POLICY, ...: not an object this lint follows
        index += 1
    else:
        return None
    kind = tokens[index].upper
    if kind == "VIEW" and "MATERIALIZED" in modifiers:
        kind = "MATERIALIZED VIEW"
    index += 1
    concurrently = index < len(tokens) and tokens[index].upper == "CONCURRENTLY"
    if concurrently:
        index += 1
    condition, index = _if_clause(tokens, index)
    ddl = _Ddl(
        action,
        kind,
        [],
        if_not_exists=condition == "IF NOT EXISTS",
        if_exists=condition == "IF EXISTS",
        or_replace="REPLACE" in modifiers,
        temporary=bool(modifiers & {"TEMP", "TEMPORARY"}),
        concurrently=concurrently,
    )
    if kind == "INDEX" and index < len(tokens) and tokens[index].upper == "ON":
        name: str | None = None  # PostgreSQL: CREATE INDEX ON t (c) names it for you
    else:
        name, index = _name_at(tokens, index)
    if name is not None:
        ddl.names.append(name)
    while action == "DROP" and index < len(tokens) and tokens[index].text == ",":
        name, index = _name_at(tokens, index + 1)
        if name is None:
            break
        ddl.names.append(name)
    if kind in ("INDEX", "TRIGGER"):
        ddl.table = _table_after_on(tokens, index)
    return ddl


def _table_after_on(tokens: list[Token], index: int) -> str | None:
    for position in range(index, len(tokens)):
        if tokens[position].upper == "ON":
            after = position + 1
            if after < len(tokens) and tokens[after].upper == "ONLY":
                after += 1
            return _name_at(tokens, after)[0]
    return None


def _clauses(tokens: list[Token], start: int) -> Iterator[list[Token]]:
    """ALTER TABLE clauses: the tokens between top-level commas."""
    depth = 0
    clause: list[Token] = []
    for token in tokens[start:]:
        if token.kind == "punct":
            if token.text == "(":
                depth += 1
            elif token.text == ")":
                depth -= 1
            elif token.text == "," and depth == 0:
                if clause:
                    yield clause
                clause = []
                continue
        clause.append(token)
    if clause:
        yield clause


def _read_alter(tokens: list[Token]) -> _Alter | None:
    words = leading_words(tokens, 0, 2)
    if words == ["RENAME", "TABLE"]:  # MySQL: RENAME TABLE a TO b
        old, index = _name_at(tokens, 2)
        if old is None or index >= len(tokens) or tokens[index].upper != "TO":
            return None
        new = _name_at(tokens, index + 1)[0]
        return _Alter(old, table_rename=new) if new else None
    if words != ["ALTER", "TABLE"]:
        return None
    _, index = _if_clause(tokens, 2)
    if index < len(tokens) and tokens[index].upper == "ONLY":
        index += 1
    table, index = _name_at(tokens, index)
    if table is None:
        return None
    alter = _Alter(table)
    for clause in _clauses(tokens, index):
        _read_clause(alter, clause)
    return alter


def _read_clause(alter: _Alter, clause: list[Token]) -> None:
    action = clause[0].upper
    if action == "ADD":
        index = 1
        if index < len(clause) and clause[index].upper == "COLUMN":
            index += 1
        condition, index = _if_clause(clause, index)
        if condition == "IF EXISTS":
            alter.invalid.append("ADD ... IF EXISTS is not valid SQL: ADD takes IF NOT EXISTS")
        word = clause[index].upper if index < len(clause) else ""
        if word == "CONSTRAINT":
            name = _name_at(clause, index + 1)[0]
            if name:
                alter.added_names.append(("constraint", name))
        elif word in ("INDEX", "KEY", "UNIQUE", "FULLTEXT", "SPATIAL"):
            index += 1
            while index < len(clause) and clause[index].upper in ("INDEX", "KEY"):
                index += 1
            name = _name_at(clause, index)[0]
            if name:
                alter.added_names.append(("index", name))
        elif word not in _NOT_A_COLUMN:
            name = _name_at(clause, index)[0]
            if name:
                alter.added_columns.append(name)
    elif action == "DROP":
        index = 1
        if index < len(clause) and clause[index].upper in ("COLUMN", "CONSTRAINT", "INDEX", "KEY"):
            index += 1
        if _if_clause(clause, index)[0] == "IF NOT EXISTS":
            alter.invalid.append("DROP ... IF NOT EXISTS is not valid SQL: DROP takes IF EXISTS")
    elif action == "RENAME":
        second = clause[1].upper if len(clause) > 1 else ""
        if second in ("TO", "AS"):
            alter.table_rename = _name_at(clause, 2)[0]
            return
        index = 2 if second in ("COLUMN", "INDEX", "KEY", "CONSTRAINT") else 1
        old, index = _name_at(clause, index)
        if old and index < len(clause) and clause[index].upper == "TO":
            new = _name_at(clause, index + 1)[0]
            if new:
                alter.column_renames.append((old, new))


# First words of the statements a rule reads: DDL shapes, transaction control, and the
# maintenance statements that cannot run in a transaction (the lock-hazard rules).
SHAPED = _words_of("CREATE DROP ALTER RENAME BEGIN COMMIT END ABORT START ROLLBACK VACUUM REINDEX")
_FIRST_WORD = re.compile(r"[A-Za-z_]+")
_COMMENT_AFTER = re.compile(r"[^\S\n]*(?:--[^\n]*)?")


def _unshaped(statement: str) -> bool:
    """True when ``statement`` is surely one piece that no rule reads, seen without
    tokenizing it: it starts with a word outside SHAPED, and holds no ';' but (perhaps) a
    final one, followed by nothing or a comment."""
    first = _FIRST_WORD.match(statement)
    if first is None or first.group().upper() in SHAPED:
        return False
    end = statement.find(";")
    if end < 0:
        return True
    only_one = statement.find(";", end + 1) < 0
    return only_one and _COMMENT_AFTER.fullmatch(statement, end + 1) is not None


@dataclass
class _Piece:
    tokens: list[Token]
    line: int | None


@dataclass
class Section:
    """One direction of a file: its top-level statements and what they do."""

    pieces: list[_Piece]
    mentions: set[str]  # every name the section uses, lowercased
    string_words: set[str]  # words inside strings and dollar bodies (DO blocks, EXECUTE)

    @classmethod
    def read(
        cls, statements: Sequence[str], lines: Sequence[int | None], *, names: bool = True
    ) -> Section:
        """The pieces the rules look at (those starting with a word of SHAPED: the others
        are dropped, so that a data migration's INSERTs cost nothing here), and with
        ``names`` every name and quoted word of the section."""
        pieces: list[_Piece] = []
        mentions: set[str] = set()
        quoted: set[str] = set()
        for statement, line in zip(statements, lines, strict=True):
            if not names and _unshaped(statement):
                continue
            tokens = tokenize(statement)
            if names:
                for token in tokens:
                    if token.is_name:
                        mentions.add(token.text.lower())
                    elif token.kind == "string":
                        quoted.update(word.lower() for word in WORD_PATTERN.findall(token.text))
            for piece in split_statements(tokens):
                if piece[0].upper not in SHAPED:
                    continue
                offset = statement.count("\n", 0, piece[0].pos)
                pieces.append(_Piece(piece, None if line is None else line + offset))
        return cls(pieces, mentions, quoted)

    def ddl_findings(self) -> Iterator[tuple[int | None, str, str, str]]:
        """(line, severity, rule, message) for IF [NOT] EXISTS problems."""
        shapes = [(piece, _read_ddl(piece.tokens), _read_alter(piece.tokens)) for piece in self]
        # The SQLite rebuild idiom (CREATE t_new; copy; DROP t; ALTER t_new RENAME TO t) needs
        # neither IF NOT EXISTS on t_new nor IF EXISTS on t: a leftover t_new must not be reused.
        created = {n for _, ddl, _ in shapes if ddl and ddl.action == "CREATE" for n in ddl.names}
        temporary = {a.table for _, _, a in shapes if a and a.table_rename and a.table in created}
        replaced = {a.table_rename for _, _, a in shapes if a and a.table in temporary}
        for piece, ddl, alter in shapes:
            if alter:
                for message in alter.invalid:
                    yield piece.line, ERROR, "invalid-if-exists", f"ALTER TABLE {message}"
            if ddl is None:
                continue
            label = f"{ddl.action} {ddl.kind}"
            names = ", ".join(ddl.names) or "(unnamed)"
            if ddl.action == "DROP" and ddl.if_not_exists:
                yield (
                    piece.line,
                    ERROR,
                    "invalid-if-exists",
                    f"{label} IF NOT EXISTS is not valid SQL: DROP takes IF EXISTS",
                )
            elif ddl.action == "CREATE" and ddl.if_exists:
                yield (
                    piece.line,
                    ERROR,
                    "invalid-if-exists",
                    f"{label} IF EXISTS is not valid SQL: CREATE takes IF NOT EXISTS",
                )
            elif ddl.action == "DROP" and not ddl.if_exists:
                if ddl.kind == "TABLE" and set(ddl.names) <= replaced:
                    continue
                yield (
                    piece.line,
                    WARNING,
                    "not-idempotent",
                    f"{label} {names} without IF EXISTS fails when it is already gone",
                )
            elif (
                ddl.action == "CREATE"
                and ddl.kind in _IDEMPOTENT_CREATE
                and not (ddl.if_not_exists or ddl.or_replace or ddl.temporary)
            ):
                if ddl.kind == "TABLE" and set(ddl.names) <= temporary:
                    continue
                fix = "IF NOT EXISTS or OR REPLACE" if ddl.kind in _REPLACEABLE else "IF NOT EXISTS"
                yield (
                    piece.line,
                    WARNING,
                    "not-idempotent",
                    f"{label} {names} without {fix} fails when it already exists",
                )

    def __iter__(self) -> Iterator[_Piece]:
        return iter(self.pieces)


@dataclass
class _Changes:
    """What an Up leaves behind that its Down must undo."""

    created: dict[tuple[str, str], tuple[int | None, str | None]]  # (kind, name) -> line, table
    table_renames: list[tuple[str, str, int | None]]
    columns: list[tuple[str, str, int | None]]  # table, column, line
    named: list[tuple[str, str, str, int | None]]  # table, what, name, line
    column_renames: list[tuple[str, str, str, int | None]]


def _changes(section: Section) -> _Changes:
    created: dict[tuple[str, str], tuple[int | None, str | None]] = {}
    dropped: set[str] = set()  # tables that existed before and were dropped
    changes = _Changes(created, [], [], [], [])
    for piece in section:
        ddl = _read_ddl(piece.tokens)
        if ddl is not None:
            for name in ddl.names:
                key = (ddl.kind, name)
                if ddl.action == "CREATE" and not ddl.temporary:
                    created[key] = (piece.line, ddl.table)
                elif ddl.action == "DROP":
                    if key in created:
                        del created[key]
                    elif ddl.kind == "TABLE":
                        dropped.add(name)
            continue
        alter = _read_alter(piece.tokens)
        if alter is None:
            continue
        new = alter.table_rename
        if new:
            source = ("TABLE", alter.table)
            if source in created:
                line, _ = created.pop(source)
                if new in dropped:
                    dropped.discard(new)  # a rebuild: the table is replaced, not new
                else:
                    created[("TABLE", new)] = (line, None)
            else:
                changes.table_renames.append((alter.table, new, piece.line))
        for column in alter.added_columns:
            changes.columns.append((alter.table, column, piece.line))
        for what, name in alter.added_names:
            changes.named.append((alter.table, what, name, piece.line))
        for old, renamed in alter.column_renames:
            changes.column_renames.append((alter.table, old, renamed, piece.line))
    return changes


def not_reversed(up: Section, down: Section) -> Iterator[tuple[int | None, str]]:
    """Cheap signs that the Down does not undo the Up: (line in Up, message)."""
    made = _changes(up)
    down_drops: set[tuple[str, str]] = set()
    for piece in down:
        ddl = _read_ddl(piece.tokens)
        if ddl is not None and ddl.action == "DROP":
            down_drops.update((ddl.kind, name) for name in ddl.names)
    dropped_tables = {name for kind, name in down_drops if kind == "TABLE"}
    new_tables = {name for kind, name in made.created if kind == "TABLE"}

    def gone(table: str | None) -> bool:
        return table is not None and (table in dropped_tables or table in new_tables)

    def mentioned(name: str) -> bool:
        return name in down.mentions or name in down.string_words

    for (kind, name), (line, table) in made.created.items():
        if kind in ("INDEX", "TRIGGER") and gone(table):
            continue  # dropping (or never keeping) the table drops its indexes and triggers
        if (kind, name) in down_drops or name in down.string_words:
            continue
        yield line, f"Up creates {kind.lower()} {name} but Down does not drop it"
    for old, new, line in made.table_renames:
        if not mentioned(new):
            yield line, f"Up renames table {old} to {new} but Down does not rename it back"
    for table, column, line in made.columns:
        if not gone(table) and not mentioned(column):
            yield line, f"Up adds column {column} to {table} but Down does not drop or mention it"
    for table, what, name, line in made.named:
        if not gone(table) and not mentioned(name):
            yield line, f"Up adds {what} {name} to {table} but Down does not drop or mention it"
    for table, old, new, line in made.column_renames:
        if not gone(table) and not mentioned(new):
            yield line, f"Up renames {old} to {new} on {table} but Down does not rename it back"


# The statement readers the lock-hazard rules (``hazards``) share with the rules above.
Ddl = _Ddl
Piece = _Piece
read_ddl = _read_ddl
name_at = _name_at
if_clause = _if_clause
clauses = _clauses
