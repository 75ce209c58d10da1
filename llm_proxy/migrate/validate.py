"""`llm-proxy migrate validate`: find problems in a goose directory before a database does.

Three parts, kept apart:

- the lint (pure, no I/O): ``lint`` and ``lint_file`` check names and versions, parse every file
  and apply the rules below to bytes already read, reporting every problem in every file;
- ``read_directory`` (I/O): the bytes of every ``*.sql`` entry of a directory;
- ``scratch_database`` and ``round_trip`` (I/O): up, down-to 0 and up again on a database made
  for the purpose and thrown away afterwards.

Rules (docs/validation.md describes each): ``parse``, ``encoding``, ``read``, ``filename``,
``duplicate-version``, ``transaction-statement`` and ``invalid-if-exists`` are errors;
``bom``, ``missing-down``, ``empty-down``, ``not-idempotent``, ``down-not-reverse``,
``not-a-file`` and ``no-migrations`` are warnings. ``apply`` (error) and ``apply-leftover``
(warning) come from the round trip.

The SQL checks read statements through a small tokenizer that knows quotes, comments, dollar
quotes and BEGIN ... END bodies of CREATE TRIGGER/FUNCTION/PROCEDURE. They look at the shape of
statements only; anything they cannot read is left alone rather than guessed at.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import secrets
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from urllib.parse import urlsplit, urlunsplit

from llm_proxy import config as llm_config
from llm_proxy.goose import files as goose_files
from llm_proxy.goose.parser import GooseParseError, has_bom, parse_sections

__all__ = [
    "BLOCKING_RULES",
    "Finding",
    "Report",
    "SourceFile",
    "lint",
    "lint_file",
    "read_directory",
    "round_trip",
    "scratch_database",
]

ERROR = "error"
WARNING = "warning"
# Rules after which the files cannot even be loaded as migrations: no round trip then.
BLOCKING_RULES = frozenset({"parse", "encoding", "read", "filename", "duplicate-version"})
SCRATCH_PREFIX = "llmproxy_validate_"
_EMPTY_ENV: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, order=True)
class Finding:
    path: str
    line: int | None
    severity: str  # "error" or "warning"
    rule: str
    message: str

    def render(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{where}: {self.severity}: {self.message} [{self.rule}]"


@dataclass(frozen=True)
class SourceFile:
    """One ``*.sql`` entry: its bytes, or why there are none (unreadable, not a file)."""

    path: str  # as shown to the user
    data: bytes | None
    problem: str | None = None
    is_file: bool = True

    @property
    def name(self) -> str:
        return os.path.basename(self.path)


# Line of each goose statement, per direction, for pointing at a failing statement later.
StatementLines = tuple[list[int | None], list[int | None]]


@dataclass(frozen=True)
class Report:
    findings: tuple[Finding, ...]
    files: int
    statement_lines: Mapping[str, StatementLines] = field(default_factory=dict)  # by file name
    paths: Mapping[str, str] = field(default_factory=dict)  # file name -> shown path

    @property
    def errors(self) -> int:
        return sum(1 for f in self.findings if f.severity == ERROR)

    @property
    def warnings(self) -> int:
        return sum(1 for f in self.findings if f.severity == WARNING)

    @property
    def loadable(self) -> bool:
        """True when every file can be loaded as a migration (a round trip makes sense)."""
        return not any(f.rule in BLOCKING_RULES for f in self.findings)

    def failed(self, strict: bool = False) -> bool:
        return self.errors > 0 or (strict and self.warnings > 0)


# ---------------------------------------------------------------- reading (I/O)


def read_directory(directory: str | Path) -> list[SourceFile]:
    """Every ``*.sql`` entry of ``directory`` (not recursive), sorted by name.

    Raises MigrationFileError when the directory itself is missing or not a directory.
    """
    root = Path(directory)
    try:
        with os.scandir(root) as entries:
            found = sorted(
                (entry.name, entry.is_file())
                for entry in entries
                if entry.name.endswith(goose_files.SUFFIX)
            )
    except FileNotFoundError:
        raise goose_files.MigrationFileError(f"migrations directory not found: {root}") from None
    except NotADirectoryError:
        raise goose_files.MigrationFileError(
            f"migrations path is not a directory: {root}"
        ) from None
    sources = []
    for name, is_file in found:
        path = root / name
        if not is_file:
            sources.append(SourceFile(str(path), None, "not a regular file", is_file=False))
            continue
        try:
            sources.append(SourceFile(str(path), path.read_bytes()))
        except OSError as exc:
            sources.append(SourceFile(str(path), None, f"cannot read: {exc.strerror or exc}"))
    return sources


# ---------------------------------------------------------------- lint (pure)


def lint(
    sources: Sequence[SourceFile],
    env: Mapping[str, str] | None = None,
    *,
    directory: str = ".",
) -> Report:
    """Every problem in every file. ``env`` feeds ENVSUB (default: an empty environment)."""
    environment = _EMPTY_ENV if env is None else env
    findings: list[Finding] = []
    lines: dict[str, StatementLines] = {}
    migrations = [s for s in sources if s.is_file]
    for source in sources:
        if not source.is_file:
            findings.append(
                Finding(
                    source.path,
                    None,
                    WARNING,
                    "not-a-file",
                    f"{source.problem}: not a migration, goose and llm-proxy skip it",
                )
            )
    if not migrations:
        findings.append(
            Finding(directory, None, WARNING, "no-migrations", "no *.sql migration files")
        )
    findings.extend(check_names([s.path for s in migrations]))
    for source in migrations:
        if source.data is None:
            findings.append(Finding(source.path, None, ERROR, "read", source.problem or "unread"))
            continue
        file_findings, statement_lines = lint_file(source.path, source.data, environment)
        findings.extend(file_findings)
        if statement_lines is not None:
            lines[source.name] = statement_lines
    findings.sort(key=lambda f: (f.path, f.line or 0))
    return Report(
        tuple(findings),
        len(migrations),
        statement_lines=lines,
        paths={s.name: s.path for s in migrations},
    )


def check_names(paths: Sequence[str]) -> list[Finding]:
    """Names goose would reject, and versions used by more than one file."""
    findings: list[Finding] = []
    by_version: dict[int, list[str]] = {}
    for path in paths:
        name = os.path.basename(path)
        try:
            parsed = goose_files.parse_filename(name)
        except goose_files.MigrationFileError as exc:
            reason = str(exc).removeprefix(f"{name}: ")
            findings.append(Finding(path, None, ERROR, "filename", reason))
            continue
        if parsed is not None:
            by_version.setdefault(parsed[0], []).append(path)
    for version, group in sorted(by_version.items()):
        for path in group if len(group) > 1 else ():
            others = ", ".join(os.path.basename(p) for p in group if p != path)
            findings.append(
                Finding(
                    path,
                    None,
                    ERROR,
                    "duplicate-version",
                    f"version {version} is also used by {others}",
                )
            )
    return findings


def lint_file(
    path: str, data: bytes, env: Mapping[str, str] | None = None
) -> tuple[list[Finding], StatementLines | None]:
    """The findings for one file, and the line of each statement (None when it does not parse)."""
    findings: list[Finding] = []
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        findings.append(
            Finding(path, line, ERROR, "encoding", f"not valid UTF-8 (byte {exc.start})")
        )
        return findings, None
    if has_bom(text):
        findings.append(
            Finding(
                path,
                1,
                WARNING,
                "bom",
                "file starts with a UTF-8 byte order mark, which goose rejects; save it without",
            )
        )
        text = text[1:]
    try:
        up, down = parse_sections(text, _EMPTY_ENV if env is None else env)
    except GooseParseError as exc:
        findings.append(Finding(path, exc.line, ERROR, "parse", exc.rule))
        return findings, None

    raw_lines = _raw_lines(text)
    up_lines, down_lines = _statement_lines(raw_lines, up.statements, down.statements)
    annotations = _annotation_lines(raw_lines)
    up_section = _Section.read(up.statements, up_lines)
    down_section = _Section.read(down.statements, down_lines)

    def add(line: int | None, severity: str, rule: str, message: str) -> None:
        findings.append(Finding(path, line, severity, rule, message))

    if up.use_tx:
        for section in (up_section, down_section):
            for piece in section.pieces:
                keyword = _transaction_keyword(piece.tokens)
                if keyword:
                    add(
                        piece.line,
                        ERROR,
                        "transaction-statement",
                        f"{keyword} inside a transactional migration breaks goose's own "
                        "transaction (goose already wraps each migration in one); remove it, "
                        "or mark the file '-- +goose NO TRANSACTION'",
                    )
    for section in (up_section, down_section):
        for line, severity, rule, message in section.ddl_findings():
            add(line, severity, rule, message)

    if "down" not in annotations:
        add(
            None,
            WARNING,
            "missing-down",
            "no '-- +goose Down' section: this migration cannot be rolled back",
        )
    elif not down.statements and up.statements:
        add(
            annotations["down"],
            WARNING,
            "empty-down",
            "the Down section is empty: rolling back runs nothing and leaves the Up's changes",
        )
    elif down.statements:
        for line, message in _not_reversed(up_section, down_section):
            add(line, WARNING, "down-not-reverse", message)
    return findings, (up_lines, down_lines)


def _raw_lines(text: str) -> list[str]:
    """Lines as the goose parser numbers them: split on LF, a trailing CR dropped."""
    lines = text.split("\n")
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _statement_lines(
    lines: list[str], up: list[str], down: list[str]
) -> tuple[list[int | None], list[int | None]]:
    """The 1-based line each statement starts on, found by walking the file in order
    (statements are the file's lines, trimmed). None when ENVSUB changed the first line."""
    keys = [line.strip() for line in lines]
    cursor = 0
    result: list[list[int | None]] = []
    for statements in (up, down):
        found: list[int | None] = []
        for statement in statements:
            first = statement.split("\n", 1)[0].strip()
            try:
                index = keys.index(first, cursor)
            except ValueError:
                found.append(None)
                continue
            found.append(index + 1)
            cursor = index + statement.count("\n") + 1
        result.append(found)
    return result[0], result[1]


def _annotation_lines(lines: list[str]) -> dict[str, int]:
    """First line of each annotation ("up", "down", ...); the file already parsed."""
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if "+goose" in line and line.lstrip().startswith("--"):
            word = " ".join(line.replace("--", "").replace("+goose", "", 1).split()).lower()
            seen.setdefault(word, number)
    return seen


# ---------------------------------------------------------------- SQL tokens


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "word", "ident" (quoted identifier), "string", "punct"
    text: str  # a word as written, an identifier unquoted, a string's body, one punct char
    pos: int

    @property
    def upper(self) -> str:
        return self.text.upper() if self.kind == "word" else ""

    @property
    def is_name(self) -> bool:
        return self.kind in ("word", "ident")


_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$")
_WORD_RE = re.compile(r"[^\W\d]\w*|\d\w*", re.UNICODE)


def _tokenize(sql: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, size = 0, len(sql)
    while i < size:
        char = sql[i]
        if char.isspace():
            i += 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            i = size if end < 0 else end + 1
        elif sql.startswith("/*", i):
            i = _block_comment_end(sql, i)
        elif char == "'":
            # E'...' (PostgreSQL) is the only string form read with backslash escapes here.
            escaped = bool(tokens) and tokens[-1].text in ("E", "e") and tokens[-1].pos == i - 1
            if escaped:
                tokens.pop()
            end = _quoted_end(sql, i, "'", escaped)
            tokens.append(_Token("string", sql[i + 1 : end - 1], i))
            i = end
        elif char in '"`':
            end = _quoted_end(sql, i, char, False)
            body = sql[i + 1 : end - 1].replace(char * 2, char)
            tokens.append(_Token("ident", body, i))
            i = end
        elif char == "$" and (match := _DOLLAR_TAG.match(sql, i)):
            close = sql.find(match.group(0), match.end())
            end = size if close < 0 else close + len(match.group(0))
            tokens.append(_Token("string", sql[match.end() : max(close, match.end())], i))
            i = end
        elif char.isalnum() or char == "_":
            j = i + 1
            while j < size and (sql[j].isalnum() or sql[j] in "_$"):
                j += 1
            tokens.append(_Token("word", sql[i:j], i))
            i = j
        else:
            tokens.append(_Token("punct", char, i))
            i += 1
    return tokens


def _block_comment_end(sql: str, start: int) -> int:
    depth, i = 0, start
    while i < len(sql):
        if sql.startswith("/*", i):
            depth += 1
            i += 2
        elif sql.startswith("*/", i):
            depth -= 1
            i += 2
            if depth == 0:
                return i
        else:
            i += 1
    return len(sql)


def _quoted_end(sql: str, start: int, quote: str, backslash: bool) -> int:
    """Index just past the closing quote (a doubled quote is part of the body)."""
    i = start + 1
    while i < len(sql):
        char = sql[i]
        if backslash and char == "\\":
            i += 2
            continue
        if char == quote:
            if i + 1 < len(sql) and sql[i + 1] == quote:
                i += 2
                continue
            return i + 1
        i += 1
    return len(sql)


def _split(tokens: list[_Token]) -> list[list[_Token]]:
    """Top-level statements of one goose statement (a StatementBegin block may hold several).

    A ';' inside the BEGIN ... END body of a CREATE (trigger, function, procedure) does not
    split; `END IF`/`END LOOP`/... close blocks this does not count."""
    pieces: list[list[_Token]] = []
    current: list[_Token] = []
    depth = 0
    compound = False
    for index, token in enumerate(tokens):
        if token.kind == "punct" and token.text == ";" and depth == 0:
            if current:
                pieces.append(current)
                current = []
            continue
        if not current:
            compound = token.upper == "CREATE"
            depth = 0
        current.append(token)
        if compound and token.kind == "word":
            word = token.upper
            if word in ("BEGIN", "CASE"):
                depth += 1
            elif word == "END" and depth:
                following = tokens[index + 1].upper if index + 1 < len(tokens) else ""
                if following not in ("IF", "LOOP", "WHILE", "REPEAT", "FOR"):
                    depth -= 1
    if current:
        pieces.append(current)
    return pieces


def _words(tokens: Sequence[_Token], start: int, count: int) -> list[str]:
    return [t.upper for t in tokens[start : start + count]]


def _transaction_keyword(tokens: list[_Token]) -> str | None:
    """The transaction-control statement this is (BEGIN, COMMIT, ...), else None."""
    first, second, third = (_words(tokens, 0, 3) + ["", "", ""])[:3]
    if first in ("BEGIN", "COMMIT", "END", "ABORT"):
        return first
    if first == "START" and second == "TRANSACTION":
        return "START TRANSACTION"
    if first == "ROLLBACK":
        # ROLLBACK [WORK|TRANSACTION] TO SAVEPOINT stays inside the transaction.
        return None if "TO" in (second, third) else "ROLLBACK"
    return None


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


@dataclass
class _Alter:
    """What an ALTER TABLE (or RENAME TABLE) does that a Down must undo."""

    table: str
    added_columns: list[str] = field(default_factory=list)
    added_names: list[tuple[str, str]] = field(default_factory=list)  # ("constraint", name)
    column_renames: list[tuple[str, str]] = field(default_factory=list)
    table_rename: str | None = None
    invalid: list[str] = field(default_factory=list)  # messages for invalid IF clauses


def _name_at(tokens: list[_Token], index: int) -> tuple[str | None, int]:
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


def _if_clause(tokens: list[_Token], index: int) -> tuple[str, int]:
    """("IF NOT EXISTS" | "IF EXISTS" | "", next index)."""
    words = _words(tokens, index, 3)
    if words[:3] == ["IF", "NOT", "EXISTS"]:
        return "IF NOT EXISTS", index + 3
    if words[:2] == ["IF", "EXISTS"]:
        return "IF EXISTS", index + 2
    return "", index


def _read_ddl(tokens: list[_Token]) -> _Ddl | None:
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
    if index < len(tokens) and tokens[index].upper == "CONCURRENTLY":
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


def _table_after_on(tokens: list[_Token], index: int) -> str | None:
    for position in range(index, len(tokens)):
        if tokens[position].upper == "ON":
            after = position + 1
            if after < len(tokens) and tokens[after].upper == "ONLY":
                after += 1
            return _name_at(tokens, after)[0]
    return None


def _clauses(tokens: list[_Token], start: int) -> Iterator[list[_Token]]:
    """ALTER TABLE clauses: the tokens between top-level commas."""
    depth = 0
    clause: list[_Token] = []
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


def _read_alter(tokens: list[_Token]) -> _Alter | None:
    words = _words(tokens, 0, 2)
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


def _read_clause(alter: _Alter, clause: list[_Token]) -> None:
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


@dataclass
class _Piece:
    tokens: list[_Token]
    line: int | None


@dataclass
class _Section:
    """One direction of a file: its top-level statements and what they do."""

    pieces: list[_Piece]
    mentions: set[str]  # every name the section uses, lowercased
    string_words: set[str]  # words inside strings and dollar bodies (DO blocks, EXECUTE)

    @classmethod
    def read(cls, statements: list[str], lines: list[int | None]) -> _Section:
        pieces: list[_Piece] = []
        mentions: set[str] = set()
        quoted: set[str] = set()
        for statement, line in zip(statements, lines, strict=True):
            tokens = _tokenize(statement)
            for token in tokens:
                if token.is_name:
                    mentions.add(token.text.lower())
                elif token.kind == "string":
                    quoted.update(word.lower() for word in _WORD_RE.findall(token.text))
            for piece in _split(tokens):
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


def _changes(section: _Section) -> _Changes:
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


def _not_reversed(up: _Section, down: _Section) -> Iterator[tuple[int | None, str]]:
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


# ---------------------------------------------------------------- round trip (I/O)


class ValidateError(RuntimeError):
    """Validation could not run (no scratch database); the message is one line."""


def _scratch_settings(
    settings: llm_config.Settings, *, db: str | None = None, url: str | None = None
) -> llm_config.Settings:
    scratch = llm_config.resolve(
        db=db, database_url=url, migrations_dir=str(settings.migrations_dir), env={}
    )
    # The user's Alembic project (Python revisions) takes part, as in `migrate up`.
    return dataclasses.replace(
        scratch, script_location=settings.script_location, alembic_ini=settings.alembic_ini
    )


def describe(settings: llm_config.Settings) -> str:
    """A scratch database for a summary line (never a password)."""
    if settings.dialect == "sqlite":
        return "a scratch SQLite database"
    from llm_proxy import drivers

    kind = "PostgreSQL" if settings.dialect == "postgresql" else "MySQL"
    return f"{kind} scratch database {drivers.describe_server(settings)}"


@contextmanager
def scratch_database(settings: llm_config.Settings) -> Iterator[llm_config.Settings]:
    """Settings for a new, empty database, removed afterwards whatever happens.

    SQLite (and any SQLite ``settings``): a file in a new temporary directory. PostgreSQL and
    MySQL: ``llmproxy_validate_<random>`` created on the server ``settings`` names (through the
    database in its URL) and dropped at the end.
    """
    if settings.dialect == "sqlite":
        with tempfile.TemporaryDirectory(prefix=SCRATCH_PREFIX) as directory:
            scratch = _scratch_settings(settings, db=str(Path(directory) / "scratch.db"))
            yield scratch
        return
    # A fresh random name, and CREATE DATABASE fails rather than reuse an existing database:
    # whatever happens, the round trip never runs in a database that held anything.
    name = f"{SCRATCH_PREFIX}{secrets.token_hex(6)}"
    parts = urlsplit(settings.url)
    scratch = _scratch_settings(settings, url=urlunsplit(parts._replace(path=f"/{name}")))
    _server_execute(settings, _create_sql(settings.dialect, name))
    try:
        yield scratch
    finally:
        _drop_scratch(settings, name)


def _create_sql(dialect: str, name: str) -> list[str]:
    return [f'CREATE DATABASE "{name}"' if dialect == "postgresql" else f"CREATE DATABASE `{name}`"]


def _drop_scratch(settings: llm_config.Settings, name: str) -> None:
    if settings.dialect == "postgresql":
        statements = [
            # Pooled connections of the round trip may still be open.
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{name}' AND pid <> pg_backend_pid()",
            f'DROP DATABASE IF EXISTS "{name}"',
        ]
    else:
        statements = [f"DROP DATABASE IF EXISTS `{name}`"]
    try:
        _server_execute(settings, statements)
    except Exception as exc:
        raise ValidateError(
            f"could not drop the scratch database {name}: {_first_line(exc)}; drop it by hand"
        ) from None


def _server_execute(settings: llm_config.Settings, statements: list[str]) -> None:
    from llm_proxy import drivers

    connection = drivers.connect(settings, autocommit=True)
    try:
        for statement in statements:
            try:
                drivers.rows(connection, statement)
            except Exception as exc:
                raise ValidateError(
                    f"cannot prepare a scratch database on {drivers.describe_server(settings)}: "
                    f"{_first_line(exc)}"
                ) from None
    finally:
        connection.close()


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


_FAILED_STATEMENT = re.compile(r": statement (?P<number>\d+) failed: ")
_BOOKKEEPING_PREFIXES = ("goose_db_version", "alembic_version", "llm_proxy_")


def round_trip(scratch: llm_config.Settings, report: Report, directory: str) -> list[Finding]:
    """Apply everything, roll everything back (down-to 0), apply again, on ``scratch``.

    Returns an ``apply`` error for the first failure (naming its file, line and statement) and
    an ``apply-leftover`` warning when tables survive the full rollback."""
    from llm_proxy.errors import user_message

    from . import commands

    phases: list[tuple[int, str, Callable[[], object]]] = [
        (0, "applying every migration (up)", lambda: commands.up(scratch)),
        (1, "rolling every migration back (down-to 0)", lambda: commands.down_to(scratch, "0")),
        (0, "applying every migration again (up)", lambda: commands.up(scratch)),
    ]
    findings: list[Finding] = []
    for direction, label, action in phases:
        try:
            action()
        except Exception as exc:
            if not _migration_failure(exc):
                raise
            message = user_message(exc) or _first_line(exc)
            findings.append(_failure_finding(message, label, direction, report, directory))
            return findings
        if direction == 1:
            left = _leftover_tables(scratch)
            if left:
                findings.append(
                    Finding(
                        directory,
                        None,
                        WARNING,
                        "apply-leftover",
                        "after rolling every migration back these tables remain: "
                        f"{', '.join(left)} (a Down does not undo its Up)",
                    )
                )
    return findings


def _migration_failure(exc: BaseException) -> bool:
    """A failure of the migrations themselves; anything else (the scratch server went away,
    a lock timeout) is validate's own trouble and propagates."""
    name, module = type(exc).__name__, type(exc).__module__
    if name in ("MigrationError", "MigrateError", "CommandError", "GooseParseError"):
        return True
    return module.startswith("sqlalchemy")


def _failure_finding(
    message: str, label: str, direction: int, report: Report, directory: str
) -> Finding:
    """The loader names the file and the statement's number: point at its line."""
    for name, path in report.paths.items():
        match = _FAILED_STATEMENT.match(message, len(name)) if message.startswith(name) else None
        if match is None:
            continue
        number = int(match.group("number"))
        lines = report.statement_lines.get(name, ([], []))[direction]
        line = lines[number - 1] if number <= len(lines) else None
        detail = message[match.end() :]
        return Finding(
            path, line, ERROR, "apply", f"{label} failed at statement {number}: {detail}"
        )
    return Finding(directory, None, ERROR, "apply", f"{label} failed: {message}")


def _leftover_tables(settings: llm_config.Settings) -> list[str]:
    from llm_proxy import drivers

    query = {
        "sqlite": "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
        "AND name NOT LIKE 'sqlite_%'",
        "postgresql": "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = current_schema()",
        "mysql": "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()",
    }[settings.dialect]
    connection = drivers.connect(settings)
    try:
        names = [str(row[0]) for row in drivers.rows(connection, query)]
    finally:
        with contextlib.suppress(Exception):
            connection.close()
    return sorted(n for n in names if not n.lower().startswith(_BOOKKEEPING_PREFIXES))
