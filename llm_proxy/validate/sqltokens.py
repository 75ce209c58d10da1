"""SQL as tokens: quotes, comments, dollar quotes, and the top-level statements
of one goose statement (BEGIN ... END bodies of triggers and functions kept
whole). Pure: no I/O. What it cannot read it leaves alone rather than guess.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Token:
    """One token of SQL text."""

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
# A word inside a string literal (for names a statement quotes).
WORD_PATTERN = re.compile(r"[^\W\d]\w*|\d\w*", re.UNICODE)


def tokenize(sql: str) -> list[Token]:
    """The tokens of `sql`; comments and whitespace dropped."""
    tokens: list[Token] = []
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
            tokens.append(Token("string", sql[i + 1 : end - 1], i))
            i = end
        elif char in '"`':
            end = _quoted_end(sql, i, char, False)
            body = sql[i + 1 : end - 1].replace(char * 2, char)
            tokens.append(Token("ident", body, i))
            i = end
        elif char == "$" and (match := _DOLLAR_TAG.match(sql, i)):
            close = sql.find(match.group(0), match.end())
            end = size if close < 0 else close + len(match.group(0))
            tokens.append(Token("string", sql[match.end() : max(close, match.end())], i))
            i = end
        elif char.isalnum() or char == "_":
            j = i + 1
            while j < size and (sql[j].isalnum() or sql[j] in "_$"):
                j += 1
            tokens.append(Token("word", sql[i:j], i))
            i = j
        else:
            tokens.append(Token("punct", char, i))
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


def split_statements(tokens: list[Token]) -> list[list[Token]]:
    """Top-level statements of one goose statement (a StatementBegin block may hold several).

    A ';' inside the BEGIN ... END body of a CREATE (trigger, function, procedure) does not
    split; `END IF`/`END LOOP`/... close blocks this does not count."""
    pieces: list[list[Token]] = []
    current: list[Token] = []
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


def leading_words(tokens: Sequence[Token], start: int, count: int) -> list[str]:
    """Up to `count` tokens from `start`, uppercased words ('' for anything else)."""
    return [t.upper for t in tokens[start : start + count]]


def transaction_keyword(tokens: list[Token]) -> str | None:
    """The transaction-control statement this is (BEGIN, COMMIT, ...), else None."""
    first, second, third = (leading_words(tokens, 0, 3) + ["", "", ""])[:3]
    if first in ("BEGIN", "COMMIT", "END", "ABORT"):
        return first
    if first == "START" and second == "TRANSACTION":
        return "START TRANSACTION"
    if first == "ROLLBACK":
        # ROLLBACK [WORK|TRANSACTION] TO SAVEPOINT stays inside the transaction.
        return None if "TO" in (second, third) else "ROLLBACK"
    return None
