"""ENVSUB expansion of one line of a goose migration (pure: no I/O).

goose v3 expands lines between ``-- +goose ENVSUB ON`` and ``-- +goose ENVSUB OFF`` with the
interpolation library it vendors (a small shell-like grammar). Supported here, with its
semantics:

- ``$VAR`` and ``${VAR}``: the value, or empty when unset;
- ``${VAR:-word}``: ``word`` when VAR is unset or empty;
- ``${VAR-word}``: ``word`` when VAR is unset;
- ``${VAR?word}``: error (message ``word``) when VAR is unset;
- ``${VAR:offset}`` / ``${VAR:offset:length}``: substring counted in BYTES of the UTF-8
  value, negative values count from the end;
- ``$$`` and ``\\$``: a literal ``$``; ``\\\\`` stays as written; ``$(`` stays as written;
  a ``$`` at the very end of the line stays as written.

``word`` may itself contain expansions and is only evaluated when needed. A variable name
starts with a Unicode letter and continues with letters, numbers or ``_``. Any other ``$``
is an error in goose (e.g. ``$1``), so it is one here too: write ``$$`` or ``\\$`` for a
literal dollar. So are the operators the library lacks (``:+``, ``+``, ``:=``, ``=``,
``:?``).

One refusal beyond goose: a substring whose byte cut splits a character would reach the
database as broken text in goose; here it is an error naming the variable.

``expand_masked`` also says which parts of the result came from the environment, so that a
statement can be shown with those values replaced by ``***``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from .spaces import GO_SPACE

__all__ = ["MASK", "EnvsubError", "Expansion", "expand", "expand_masked"]

MASK = "***"
_TOP_SPECIAL = re.compile(r"[$\\]")
_BRACE_SPECIAL = re.compile(r"[$\\}]")
# A name: a letter, then letters, numbers or "_". Python's \w is exactly Go's
# IsLetter || IsNumber || "_"; "[^\W\d_]" still lets a non-decimal number (such as "²")
# start a name, which `_starts_with_letter` refuses.
_NAME = re.compile(r"[^\W\d_]\w*")
_INT = re.compile(r"[+-]?[0-9]+")
_INT64 = range(-(2**63), 2**63)
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


@dataclass(frozen=True, slots=True)
class Expansion:
    """One expanded line: ``text`` as goose makes it, ``masked`` with every piece taken
    from the environment replaced by MASK, and those pieces (non-empty ones only)."""

    text: str
    masked: str
    values: tuple[str, ...]


# A piece of output: its text, and whether it came from the environment.
_Piece = tuple[str, bool]


def expand(line: str, env: Mapping[str, str]) -> str:
    """Expand one line. Raises EnvsubError on bad syntax or an unset ``${VAR?message}``."""
    if "$" not in line:
        # "\\" and "\x" are left as written, so without a "$" nothing can change.
        return line
    return _join(_pieces(line, env))


def expand_masked(line: str, env: Mapping[str, str]) -> Expansion:
    """``expand``, and what came from the environment (see Expansion)."""
    if "$" not in line:
        return Expansion(line, line, ())
    pieces = _pieces(line, env)
    values = tuple(text for text, secret in pieces if secret and text)
    text = _join(pieces)
    if not values:
        return Expansion(text, text, ())
    masked = "".join(MASK if secret and piece else piece for piece, secret in pieces)
    return Expansion(text, masked, values)


def _join(pieces: list[_Piece]) -> str:
    return "".join(text for text, _ in pieces)


def _pieces(line: str, env: Mapping[str, str]) -> list[_Piece]:
    if "\\" not in line:
        # Common case, done by one regex pass: only $NAME and ${NAME}; any other "$" bails out.
        plain = _plain_pieces(line, env)
        if plain is not None:
            return plain
    return _expand_full(line, env)


def _plain_pieces(line: str, env: Mapping[str, str]) -> list[_Piece] | None:
    pieces: list[_Piece] = []
    pos = 0
    for match in _PLAIN.finditer(line):
        name = match[1] or match[2]
        if name is None or not _starts_with_letter(name):
            return None
        if match.start() > pos:
            pieces.append((line[pos : match.start()], False))
        pieces.append((env.get(name, ""), True))
        pos = match.end()
    if pos < len(line):
        pieces.append((line[pos:], False))
    return pieces


def _expand_full(line: str, env: Mapping[str, str]) -> list[_Piece]:
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


def _starts_with_letter(name: str) -> bool:
    """Go's unicode.IsLetter for the first character (the regex already checked ASCII)."""
    first = name[0]
    if first.isascii():
        return True
    import unicodedata  # only for names that start outside ASCII

    return unicodedata.category(first).startswith("L")


class _Expander:
    __slots__ = ("env", "pending", "text")

    def __init__(self, text: str, env: Mapping[str, str]) -> None:
        self.text = text
        self.env = env
        self.pending: EnvsubError | None = None

    def name_at(self, pos: int) -> re.Match[str] | None:
        match = _NAME.match(self.text, pos)
        return match if match is not None and _starts_with_letter(match.group()) else None

    def expression(self, pos: int, *, in_brace: bool, evaluate: bool) -> tuple[list[_Piece], int]:
        """Expand text from ``pos`` up to the end (or the closing '}' when in a brace)."""
        text = self.text
        special = _BRACE_SPECIAL if in_brace else _TOP_SPECIAL
        out: list[_Piece] = []
        end = len(text)
        while pos < end:
            m = special.search(text, pos)
            if m is None:
                out.append((text[pos:], False))
                pos = end
                break
            i = m.start()
            if i > pos:
                out.append((text[pos:i], False))
            char = text[i]
            if char == "}":
                return out, i
            nxt = text[i + 1 : i + 2]
            if char == "\\":
                if nxt == "\\":
                    out.append(("\\\\", False))
                    pos = i + 2
                elif nxt == "$":
                    out.append(("$", False))
                    pos = i + 2
                else:
                    out.append(("\\", False))
                    pos = i + 1
                continue
            # char == "$"
            if nxt == "$":
                out.append(("$", False))
                pos = i + 2
            elif nxt == "(":
                out.append(("$(", False))
                pos = i + 2
            elif nxt == "":
                out.append(("$", False))
                pos = i + 1
            elif nxt == "{":
                pieces, pos = self.brace(i, evaluate=evaluate)
                out.extend(pieces)
            else:
                name_match = self.name_at(i + 1)
                if name_match is None:
                    raise EnvsubError(
                        f"'$' at column {i + 1} is not followed by a variable name, '{{', '$' "
                        f"or '(' ({_LITERAL_DOLLAR_HINT})"
                    )
                if evaluate:
                    out.append((self.env.get(name_match.group(), ""), True))
                pos = name_match.end()
        return out, pos

    def brace(self, start: int, *, evaluate: bool) -> tuple[list[_Piece], int]:
        """Expand ``${...}`` starting at ``start`` (the '$'); return (pieces, position after
        '}')."""
        text = self.text
        name_match = self.name_at(start + 2)
        if name_match is None:
            raise EnvsubError(
                f"'${{' at column {start + 1} is not followed by a variable name "
                f"({_LITERAL_DOLLAR_HINT})"
            )
        name = name_match.group()
        pos = name_match.end()
        op = text[pos : pos + 1]
        value = self.env.get(name) if evaluate else None
        own: list[_Piece] = [(value or "", True)]
        if op == "}":
            return own, pos + 1
        result = own
        if op == ":" and text[pos + 1 : pos + 2] == "-":
            use_word = evaluate and not value
            word, pos = self.expression(pos + 2, in_brace=True, evaluate=use_word)
            result = word if use_word else own
        elif op == "-":
            use_word = evaluate and value is None
            word, pos = self.expression(pos + 1, in_brace=True, evaluate=use_word)
            result = word if use_word else own
        elif op == "?":
            unset = evaluate and value is None
            word, pos = self.expression(pos + 1, in_brace=True, evaluate=unset)
            if unset and self.pending is None:
                message = _join(word) or "not set"
                self.pending = EnvsubError(
                    f"required variable {name} is not set: {message}", variable=name
                )
        elif op == ":":
            cut, pos = self.substring(name, pos + 1, value or "")
            result = [(cut, True)]
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
        return _byte_slice(value, offset, length, name), pos


def _byte_slice(value: str, offset: int, length: int | None, name: str) -> str:
    """goose's substring: offset and length count bytes of the UTF-8 value."""
    # ASCII: bytes and characters are the same, no encoding needed.
    data: str | bytes = value if value.isascii() else value.encode("utf-8", "surrogateescape")
    size = len(data)
    begin = min(max(offset + size if offset < 0 else offset, 0), size)
    if length is None:
        finish = size
    else:
        finish = min(begin + length if length >= 0 else max(length + size, begin), size)
    cut = data[begin:finish]
    if isinstance(cut, str):
        return cut
    try:
        return cut.decode("utf-8")
    except UnicodeDecodeError:
        raise EnvsubError(
            f"'${{{name}:...}}' cuts the value of {name} at byte {begin}..{finish}, which is "
            "not whole UTF-8 characters (goose counts offset and length in bytes and would "
            "store broken text); change the offset or length",
            variable=name,
        ) from None


def _first_of(text: str, pos: int, chars: str) -> int:
    found = [i for i in (text.find(c, pos) for c in chars) if i >= 0]
    return min(found) if found else len(text)


def _parse_int(raw: str, name: str, what: str) -> int:
    """strconv.Atoi after strings.TrimSpace: ASCII digits, a sign, 64 bits."""
    cleaned = raw.strip(GO_SPACE)
    if _INT.fullmatch(cleaned) and int(cleaned) in _INT64:
        return int(cleaned)
    raise EnvsubError(
        f"invalid substring {what} {raw!r} in '${{{name}:...}}' "
        "(goose supports ':-', '-', '?' and ':offset[:length]' with 64-bit integers)",
        variable=name,
    )
