"""ENVSUB expansion of one line of a goose migration (pure: no I/O).

goose v3 expands lines between ``-- +goose ENVSUB ON`` and ``-- +goose ENVSUB OFF`` with a
small shell-like grammar. Supported here, with goose's semantics:

- ``$VAR`` and ``${VAR}``: the value, or empty when unset;
- ``${VAR:-word}``: ``word`` when VAR is unset or empty;
- ``${VAR-word}``: ``word`` when VAR is unset;
- ``${VAR?word}``: error (message ``word``) when VAR is unset;
- ``${VAR:offset}`` / ``${VAR:offset:length}``: substring, negative values count from the end;
- ``$$`` and ``\\$``: a literal ``$``; ``\\\\`` stays as written; ``$(`` stays as written;
  a ``$`` at the very end of the line stays as written.

``word`` may itself contain expansions and is only evaluated when needed. A variable name starts
with a letter and continues with letters, digits or ``_``. Any other ``$`` is an error in goose
(e.g. ``$1``), so it is one here too: write ``$$`` or ``\\$`` for a literal dollar.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["EnvsubError", "expand"]

_TOP_SPECIAL = re.compile(r"[$\\]")
_BRACE_SPECIAL = re.compile(r"[$\\}]")
# goose: a name starts with a letter (not "_" or a digit), then letters, digits or "_".
_NAME = re.compile(r"[^\W\d_]\w*")
_INT = re.compile(r"[+-]?[0-9]+")
# "$" then ${NAME}, $NAME or nothing (the last marks a "$" the fast path cannot handle).
_PLAIN = re.compile(r"\$(?:\{([^\W\d_]\w*)\}|([^\W\d_]\w*)|)")
_LITERAL_DOLLAR_HINT = "write '$$' or '\\$' for a literal '$'"


class EnvsubError(ValueError):
    """An ENVSUB expansion failed; ``variable`` names the variable when one is involved."""

    def __init__(self, message: str, variable: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.variable = variable

    def __reduce__(self) -> tuple[type[EnvsubError], tuple[str, str | None]]:
        return (type(self), (self.message, self.variable))


def expand(line: str, env: Mapping[str, str]) -> str:
    """Expand one line. Raises EnvsubError on bad syntax or an unset ``${VAR?message}``."""
    if "$" not in line:
        # "\\" and "\x" are left as written, so without a "$" nothing can change.
        return line
    if "\\" not in line:
        # Common case, done by one regex pass: only $NAME and ${NAME}; any other "$" bails out.
        def plain(match: re.Match[str]) -> str:
            name = match[1] or match[2]
            if name is None:
                raise _NotPlain
            return env.get(name, "")

        try:
            return _PLAIN.sub(plain, line)
        except _NotPlain:
            pass
    return _expand_full(line, env)


def _expand_full(line: str, env: Mapping[str, str]) -> str:
    """The whole grammar (``expand`` without its fast path)."""
    expander = _Expander(line, env)
    try:
        out, _ = expander.expression(0, in_brace=False, evaluate=True)
    except RecursionError:
        raise EnvsubError("expansions are nested too deeply") from None
    if expander.pending is not None:
        # goose parses the whole line before evaluating: syntax errors take precedence.
        raise expander.pending
    return out


class _NotPlain(Exception):
    pass


class _Expander:
    __slots__ = ("env", "pending", "text")

    def __init__(self, text: str, env: Mapping[str, str]) -> None:
        self.text = text
        self.env = env
        self.pending: EnvsubError | None = None

    def expression(self, pos: int, *, in_brace: bool, evaluate: bool) -> tuple[str, int]:
        """Expand text from ``pos`` up to the end (or the closing '}' when in a brace)."""
        text = self.text
        special = _BRACE_SPECIAL if in_brace else _TOP_SPECIAL
        out: list[str] = []
        end = len(text)
        while pos < end:
            m = special.search(text, pos)
            if m is None:
                out.append(text[pos:])
                pos = end
                break
            i = m.start()
            if i > pos:
                out.append(text[pos:i])
            char = text[i]
            if char == "}":
                return "".join(out), i
            nxt = text[i + 1 : i + 2]
            if char == "\\":
                if nxt == "\\":
                    out.append("\\\\")
                    pos = i + 2
                elif nxt == "$":
                    out.append("$")
                    pos = i + 2
                else:
                    out.append("\\")
                    pos = i + 1
                continue
            # char == "$"
            if nxt == "$":
                out.append("$")
                pos = i + 2
            elif nxt == "(":
                out.append("$(")
                pos = i + 2
            elif nxt == "":
                out.append("$")
                pos = i + 1
            elif nxt == "{":
                value, pos = self.brace(i, evaluate=evaluate)
                out.append(value)
            else:
                name_match = _NAME.match(text, i + 1)
                if name_match is None:
                    raise EnvsubError(
                        f"'$' at column {i + 1} is not followed by a variable name, '{{', '$' "
                        f"or '(' ({_LITERAL_DOLLAR_HINT})"
                    )
                if evaluate:
                    out.append(self.env.get(name_match.group(), ""))
                pos = name_match.end()
        return "".join(out), pos

    def brace(self, start: int, *, evaluate: bool) -> tuple[str, int]:
        """Expand ``${...}`` starting at ``start`` (the '$'); return (value, position after '}')."""
        text = self.text
        name_match = _NAME.match(text, start + 2)
        if name_match is None:
            raise EnvsubError(
                f"'${{' at column {start + 1} is not followed by a variable name "
                f"({_LITERAL_DOLLAR_HINT})"
            )
        name = name_match.group()
        pos = name_match.end()
        op = text[pos : pos + 1]
        value = self.env.get(name) if evaluate else None
        if op == "}":
            return (value or ""), pos + 1
        if op == ":" and text[pos + 1 : pos + 2] == "-":
            use_word = evaluate and not value
            word, pos = self.expression(pos + 2, in_brace=True, evaluate=use_word)
            result = word if use_word else (value or "")
        elif op == "-":
            use_word = evaluate and value is None
            word, pos = self.expression(pos + 1, in_brace=True, evaluate=use_word)
            result = word if use_word else (value or "")
        elif op == "?":
            unset = evaluate and value is None
            word, pos = self.expression(pos + 1, in_brace=True, evaluate=unset)
            result = value or ""
            if unset and self.pending is None:
                message = word or "not set"
                self.pending = EnvsubError(
                    f"required variable {name} is not set: {message}", variable=name
                )
        elif op == ":":
            result, pos = self.substring(name, pos + 1, value or "")
        elif op == "":
            raise EnvsubError(f"'${{{name}' at column {start + 1} is missing its closing '}}'")
        else:
            raise EnvsubError(
                f"unexpected {op!r} after '${{{name}' at column {pos + 1} "
                "(expected '}', ':-', '-', '?' or ':offset')"
            )
        if text[pos : pos + 1] != "}":
            raise EnvsubError(f"'${{{name}' at column {start + 1} is missing its closing '}}'")
        return result, pos + 1

    def substring(self, name: str, pos: int, value: str) -> tuple[str, int]:
        """``${NAME:offset[:length]}`` with pos just after the first ':'."""
        text = self.text
        stop = _first_of(text, pos, ":}")
        offset = _parse_int(text[pos:stop], name, "offset")
        length: int | None = None
        pos = stop
        if text[pos : pos + 1] == ":":
            stop = _first_of(text, pos + 1, "}")
            length = _parse_int(text[pos + 1 : stop], name, "length")
            pos = stop
        size = len(value)
        begin = min(max(offset + size if offset < 0 else offset, 0), size)
        if length is None:
            return value[begin:], pos
        finish = begin + length if length >= 0 else max(length + size, begin)
        return value[begin : min(finish, size)], pos


def _first_of(text: str, pos: int, chars: str) -> int:
    found = [i for i in (text.find(c, pos) for c in chars) if i >= 0]
    return min(found) if found else len(text)


def _parse_int(raw: str, name: str, what: str) -> int:
    cleaned = raw.strip()
    if not _INT.fullmatch(cleaned):
        raise EnvsubError(
            f"invalid substring {what} {raw!r} in '${{{name}:...}}' "
            "(goose supports ':-', '-', '?' and ':offset[:length]')",
            variable=name,
        )
    return int(cleaned)
