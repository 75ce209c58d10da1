"""goose SQL migration text -> statements (pure: no I/O, no database).

The rules are goose v3's, as its parser applies them. Where goose has a quirk that
changes which SQL runs, the quirk is kept when it is harmless and turned into an error when goose
would silently lose or merge SQL:

- A line holding only whitespace is not "empty" for goose, so it starts a statement: a comment
  after it is kept as statement text (and, if nothing follows before Down or EOF, it is an
  unfinished statement). Kept as goose does it.
- SQL right after a StatementBegin/StatementEnd block that holds no SQL is skipped by goose.
  Error here.
- An unterminated statement followed by StatementBegin is merged into the block by goose.
  Error here.

Decisions beyond goose: a leading UTF-8 BOM is ignored (goose fails on it; ``has_bom`` lets a
validator warn); lines may be of any length (goose stops at 4 MiB); the whole file is validated
whichever direction is asked for.
"""

from __future__ import annotations

import os
import re
from array import array
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from itertools import accumulate

from llm_proxy.errors import LlmProxyError

from .envsub import MASK, EnvsubError, Expansion, expand_masked
from .spaces import GO_SPACE, LEADING_REFUSED
from .statements import OWN, Statements

__all__ = ["GooseParseError", "Masked", "ParsedMigration", "has_bom", "parse", "parse_sections"]

BOM = "\ufeff"

_WS = GO_SPACE

# Lines are split in batches of about this many characters so that a huge file never has all of
# its lines alive at once as separate objects.
_BATCH_CHARS = 1 << 20
# A statement of more lines than this no longer keeps them as strings while it is read, when
# they are one stretch of the text: a huge statement then costs no copy of itself.
_SPILL_LINES = 4096
# Stands for the lines of the pending statement that are only kept as a stretch of the text.
_SPILLED = "<spilled lines>"
_NOT_SPACE = re.compile("[^" + re.escape(GO_SPACE) + "]")

_START, _UP, _DOWN = 0, 1, 2
_A_UP, _A_DOWN, _A_BEGIN, _A_END, _A_NO_TX, _A_ENV_ON, _A_ENV_OFF = range(7)
_ANNOTATIONS = {
    "up": _A_UP,
    "down": _A_DOWN,
    "statementbegin": _A_BEGIN,
    "statementend": _A_END,
    "no transaction": _A_NO_TX,
    "envsub on": _A_ENV_ON,
    "envsub off": _A_ENV_OFF,
}
# Annotations as goose writes them skip the general (slower) validation.
_CANONICAL = {
    "-- +goose Up": _A_UP,
    "-- +goose Down": _A_DOWN,
    "-- +goose StatementBegin": _A_BEGIN,
    "-- +goose StatementEnd": _A_END,
    "-- +goose NO TRANSACTION": _A_NO_TX,
    "-- +goose ENVSUB ON": _A_ENV_ON,
    "-- +goose ENVSUB OFF": _A_ENV_OFF,
}
_KNOWN = "Up, Down, StatementBegin, StatementEnd, NO TRANSACTION, ENVSUB ON, ENVSUB OFF"


class GooseParseError(LlmProxyError, ValueError):
    """A goose migration file breaks a rule; ``line`` is 1-based (None if not line-specific)."""

    def __init__(self, rule: str, line: int | None = None, path: str | None = None) -> None:
        self.rule = rule
        self.line = line
        self.path = path
        super().__init__(self._render())

    def _render(self) -> str:
        if self.path is None:
            return self.rule if self.line is None else f"line {self.line}: {self.rule}"
        if self.line is None:
            return f"{self.path}: {self.rule}"
        return f"{self.path}:{self.line}: {self.rule}"

    def __str__(self) -> str:
        return self._render()

    def with_path(self, path: str) -> GooseParseError:
        """A copy that names the file: ``"<path>:<line>: <rule>"``."""
        err = type(self)(self.rule, self.line, str(path))
        err.__cause__ = self.__cause__
        return err

    def __reduce__(self) -> tuple[type[GooseParseError], tuple[str, int | None, str | None]]:
        return (type(self), (self.rule, self.line, self.path))


@dataclass(frozen=True)
class Masked:
    """A statement that ENVSUB filled from the environment, as it may be shown: each value
    replaced by MASK, and the values themselves (to mask a driver's message about it)."""

    text: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class ParsedMigration:
    """One section of a goose file: its statements, and whether it runs in a transaction.

    ``masked``: by statement index, the statements holding ENVSUB values from the
    environment, which may be secrets: errors show ``shown(i)`` and ``mask(i, ...)``.
    """

    statements: Statements
    use_tx: bool
    masked: Mapping[int, Masked] = field(default_factory=dict)

    def line(self, index: int) -> int | None:
        """The 1-based line of the file statement ``index`` starts on."""
        return self.statements.line(index)

    def shown(self, index: int) -> str:
        """Statement ``index`` (0-based) with its ENVSUB values replaced by ***."""
        masked = self.masked.get(index)
        return self.statements[index] if masked is None else masked.text

    def mask(self, index: int, text: str) -> str:
        """``text`` (a message about statement ``index``) with its ENVSUB values masked."""
        masked = self.masked.get(index)
        if masked is None:
            return text
        for value in sorted(set(masked.values), key=len, reverse=True):
            text = text.replace(value, MASK)
        return text


def has_bom(text: str) -> bool:
    """True when the text starts with a UTF-8 byte order mark (decoded as U+FEFF)."""
    return text.startswith(BOM)


def parse(
    text: str, direction: str = "up", env: Mapping[str, str] | None = None
) -> ParsedMigration:
    """Statements of one direction ("up" or "down"); the whole file is validated either way."""
    if direction not in ("up", "down"):
        raise ValueError(f"direction must be 'up' or 'down', not {direction!r}")
    up, down = parse_sections(text, env)
    return up if direction == "up" else down


def parse_sections(
    text: str, env: Mapping[str, str] | None = None
) -> tuple[ParsedMigration, ParsedMigration]:
    """(up, down) of a goose migration in one pass. ``env`` feeds ENVSUB (default os.environ)."""
    (up, up_masked), (down, down_masked), use_tx = _parse(text, env)
    return ParsedMigration(up, use_tx, up_masked), ParsedMigration(down, use_tx, down_masked)


def _line_batches(text: str, pos: int = 0) -> Iterator[tuple[list[str], int, int]]:
    """Lines from ``pos`` on, split like goose's scanner: on LF, one trailing CR dropped.
    With each batch: the offset of its first line, and the length of the line ends that
    follow its lines (1 or 2; 0 when they vary: offsets are then unknown)."""
    size = len(text)
    while pos < size:
        first = pos
        cut = text.find("\n", pos + _BATCH_CHARS)
        if cut < 0:
            chunk = text[pos:] if pos else text
            pos = size
        else:
            chunk = text[pos : cut + 1]
            pos = cut + 1
        ending = 1
        if "\r" not in chunk:
            lines = chunk.split("\n")
        else:
            ending = 2
            newlines = chunk.count("\n")
            lines = chunk.split("\r\n") if chunk.count("\r") == newlines else []
            if len(lines) != newlines + 1:
                # Not pure CRLF: lone CRs stay in their line, as with goose.
                lines = chunk.replace("\r\n", "\n").split("\n")
                ending = 0
        if not lines[-1]:
            lines.pop()  # the chunk ended with a newline
        elif lines[-1].endswith("\r"):
            lines[-1] = lines[-1][:-1]  # goose drops a final CR even without a newline
        yield lines, first, ending


_Section = tuple[Statements, dict[int, Masked]]


def _parse(text: str, env: Mapping[str, str] | None) -> tuple[_Section, _Section, bool]:
    ws = _WS
    # Per section: each statement's start and end in the text (OWN, OWN: kept as a string,
    # in `own`) and its line; built here, without a call per statement (see Statements).
    # New entries go to plain lists first (append is several times cheaper than an array's)
    # and move to the arrays after each batch of lines.
    up_bounds, up_lines, up_own = array("q"), array("q"), {}
    down_bounds, down_lines, down_own = array("q"), array("q"), {}
    up_masked: dict[int, Masked] = {}
    down_masked: dict[int, Masked] = {}
    bounds, lines_of, own, masked = up_bounds, up_lines, up_own, up_masked
    new_bounds: list[int] = []
    new_lines: list[int] = []
    add, add_line = new_bounds.append, new_lines.append
    buf: list[str] = []
    keep = buf.append
    buf_offset = 0  # where the pending statement's first line starts in the text
    # Past this many lines, the pending statement's lines are spilled: buf then starts with
    # _SPILLED, standing for text[buf_offset:spilled_end], and holds the lines after it.
    spill_at = _SPILL_LINES
    spilled_end = -1
    # The pending statement's lines with ENVSUB values masked, once one line had a value
    # (None until then: statements without values cost nothing), and those values.
    shown: list[str] | None = None
    values: list[str] = []
    section = _START
    in_block = False
    use_tx = True
    envsub = False
    lineno = 0
    buf_start = 0  # line where the pending statement began
    up_line = down_line = block_line = 0
    empty_block_end = 0  # line of a StatementEnd that closed a block holding no SQL

    def count() -> int:
        return (len(bounds) + len(new_bounds)) >> 1

    def flush() -> None:
        bounds.extend(new_bounds)
        new_bounds.clear()
        lines_of.extend(new_lines)
        new_lines.clear()

    def emit_own(statement: str, line: int) -> None:
        own[count()] = statement
        add(OWN)
        add(OWN)
        add_line(line)

    def spill() -> None:
        """Drop the pending statement's lines, if the text holds them as one stretch."""
        nonlocal spill_at, spilled_end
        fresh = buf[1:] if spilled_end >= 0 else buf
        begin = spilled_end + 1 if spilled_end >= 0 else buf_offset
        chunk = "\n".join(fresh)
        if begin < 0 or not text.startswith(chunk, begin):
            spill_at = 1 << 62  # not one stretch (CRLF, ENVSUB, ...): keep the lines
            return
        spilled_end = begin + len(chunk)
        buf[:] = [_SPILLED]

    def pending_lines() -> list[str]:
        """The pending statement's lines, spilled ones read back (for rare checks)."""
        if spilled_end < 0:
            return buf
        return text[buf_offset:spilled_end].split("\n") + buf[1:]

    def holds_text() -> bool:
        if spilled_end >= 0 and _NOT_SPACE.search(text, buf_offset, spilled_end):
            return True
        return any(line.strip(ws) for line in buf if line is not _SPILLED)

    def emit_spilled() -> None:
        """emit_joined for a spilled statement: trimmed by offsets, not copied."""
        tail = "\n".join(buf[1:])
        end = spilled_end + 1 + len(tail) if tail else spilled_end
        if tail and not text.startswith(tail, spilled_end + 1):
            joined = text[buf_offset:spilled_end] + "\n" + tail
            statement = joined.strip(ws)
            lead = joined.find(statement[0])
            emit_own(statement, buf_start + joined.count("\n", 0, lead))
            return
        start = buf_offset
        while text[start] in ws:  # the statement holds more than spaces: this stops
            start += 1
        while text[end - 1] in ws:
            end -= 1
        add(start)
        add(end)
        add_line(buf_start + text.count("\n", buf_offset, start))

    def emit_joined() -> None:
        """Emit the pending statement: its lines joined, trimmed; as offsets when the text
        holds it as one stretch (not so across CRLF, ENVSUB or a skipped annotation)."""
        if spilled_end >= 0:
            emit_spilled()
            return
        joined = "\n".join(buf)
        statement = joined.strip(ws)
        lead = joined.find(statement[0])  # the first character the trim kept
        line = buf_start + joined.count("\n", 0, lead)
        start = buf_offset + lead
        if buf_offset >= 0 and text.startswith(statement, start):
            add(start)
            add(start + len(statement))
            add_line(line)
        else:
            emit_own(statement, line)

    # Skipping the BOM by offset avoids copying a possibly huge text.
    for lines, offset, ending in _line_batches(text, 1 if text.startswith(BOM) else 0):
        # Where each line of the batch starts, summed in C; empty when unknown (statements
        # are then kept as strings).
        starts = list(accumulate(map(ending.__add__, map(len, lines)), initial=offset))
        if not ending:
            starts = [-1] * len(starts)
        first = lineno + 1
        for lineno, line in enumerate(lines, first):  # noqa: B007 (lineno outlives the loop)
            dash = "--" in line
            if dash and line.lstrip(ws).startswith("--"):
                if "+goose" not in line:
                    if not buf:
                        continue  # comment before a statement: dropped, as goose does
                else:
                    kind = _CANONICAL.get(line)
                    if kind is None:
                        kind = _annotation(line, lineno)
                    if kind == _A_UP:
                        if section != _START:
                            raise GooseParseError(
                                f"duplicate '-- +goose Up' (the first is on line {up_line})",
                                lineno,
                            )
                        section = _UP
                        up_line = lineno
                    elif kind == _A_DOWN:
                        if section == _START:
                            raise GooseParseError("'-- +goose Down' before '-- +goose Up'", lineno)
                        if section == _DOWN:
                            raise GooseParseError(
                                f"duplicate '-- +goose Down' (the first is on line {down_line})",
                                lineno,
                            )
                        if in_block:
                            raise GooseParseError(
                                "'-- +goose Down' inside the StatementBegin block opened on "
                                f"line {block_line} (missing '-- +goose StatementEnd')",
                                lineno,
                            )
                        if buf:
                            where = f"'-- +goose Down' on line {lineno}"
                            _check_finished(pending_lines(), buf_start, where)
                            buf.clear()
                            spill_at, spilled_end = _SPILL_LINES, -1
                        shown = None
                        section = _DOWN
                        down_line = lineno
                        flush()
                        bounds, lines_of, own, masked = (
                            down_bounds,
                            down_lines,
                            down_own,
                            down_masked,
                        )
                        empty_block_end = 0
                    elif kind == _A_BEGIN:
                        if section == _START:
                            raise GooseParseError(
                                "'-- +goose StatementBegin' before '-- +goose Up'", lineno
                            )
                        if in_block:
                            raise GooseParseError(
                                "'-- +goose StatementBegin' inside the block opened on line "
                                f"{block_line} (missing '-- +goose StatementEnd')",
                                lineno,
                            )
                        if buf and _holds_sql(pending_lines()):
                            # goose would merge the unterminated statement into the block.
                            raise GooseParseError(
                                "unfinished statement: no line ends with ';' before "
                                f"'-- +goose StatementBegin' on line {lineno}",
                                buf_start,
                            )
                        in_block = True
                        block_line = lineno
                        empty_block_end = 0
                    elif kind == _A_END:
                        if not in_block:
                            raise GooseParseError(
                                "'-- +goose StatementEnd' without a matching StatementBegin",
                                lineno,
                            )
                        in_block = False
                        if buf:
                            if holds_text():  # else: nothing runs
                                emit_joined()
                                if shown is not None:
                                    masked[count() - 1] = _masked(shown, values)
                            buf.clear()
                            spill_at, spilled_end = _SPILL_LINES, -1
                            shown = None
                        else:
                            empty_block_end = lineno
                    elif kind == _A_NO_TX:
                        use_tx = False
                    elif kind == _A_ENV_ON:
                        envsub = True
                    else:
                        envsub = False
                    continue
            elif not buf:
                if section == _START:
                    if line.strip(ws):
                        raise GooseParseError(
                            "SQL before '-- +goose Up' (a migration starts with its Up section)",
                            lineno,
                        )
                    continue
                if not line:
                    continue
                if empty_block_end:
                    if line.strip(ws):
                        raise GooseParseError(
                            "SQL right after a StatementBegin/StatementEnd block that holds no "
                            f"SQL (closed on line {empty_block_end}): goose would skip this line; "
                            "remove the empty block",
                            lineno,
                        )
                    empty_block_end = 0  # goose swallows this whitespace line too
                    continue
                buf_start = lineno
                buf_offset = starts[lineno - first]

            if envsub:
                expansion = _expand(line, env, lineno)
                line = expansion.text
                dash = "--" in line
                if expansion.values and shown is None:
                    shown, values = list(pending_lines()), []
                    spill_at = 1 << 62  # the masked copy needs the lines anyway
                if shown is not None:
                    shown.append(expansion.masked)
                    values.extend(expansion.values)
            elif shown is not None:
                shown.append(line)
            if in_block:
                keep(line)
                if len(buf) >= spill_at:
                    spill()
                continue
            if not (_ends_before_comment(line) if dash else line.rstrip(ws).endswith(";")):
                keep(line)
                if len(buf) >= spill_at:
                    spill()
                continue
            if buf:
                keep(line)
                emit_joined()
                buf.clear()
                spill_at, spilled_end = _SPILL_LINES, -1
            elif envsub or (line_offset := starts[lineno - first]) < 0:
                emit_own(line.strip(ws), lineno)  # the line may not be the text's any more
            elif (statement := line.strip(ws)) is line:  # nothing trimmed: the common case
                add(line_offset)
                add(line_offset + len(line))
                add_line(lineno)
            else:
                start = line_offset + line.find(statement[0])  # it ends with ';': not blank
                add(start)
                add(start + len(statement))
                add_line(lineno)
            if shown is not None:
                masked[count() - 1] = _masked(shown, values)
                shown = None
        flush()

    if section == _START:
        raise GooseParseError("no '-- +goose Up' annotation (a migration starts with one)")
    if in_block:
        raise GooseParseError(
            "'-- +goose StatementBegin' without a matching StatementEnd before the end of the file",
            block_line,
        )
    if buf:
        _check_finished(pending_lines(), buf_start, "the end of the file")
    up = Statements(text, up_bounds, up_lines, up_own)
    down = Statements(text, down_bounds, down_lines, down_own)
    return (up, up_masked), (down, down_masked), use_tx


def _masked(lines: list[str], values: list[str]) -> Masked:
    return Masked("\n".join(lines).strip(_WS), tuple(values))


def _ends_before_comment(line: str) -> bool:
    """goose's end test: the last word before the first word starting with "--" ends with ";"."""
    start = 0
    while True:
        found = line.find("--", start)
        if found < 0:
            return line.rstrip(_WS).endswith(";")
        if found == 0 or line[found - 1] in _WS:
            return line[:found].rstrip(_WS).endswith(";")
        start = found + 1


def _annotation(line: str, lineno: int) -> int:
    if line.startswith(LEADING_REFUSED):
        raise GooseParseError("annotation must start at column 1 (no leading space or tab)", lineno)
    command = line.replace("--", "").replace("+goose", "", 1)
    if "+goose" in command:
        raise GooseParseError("'+goose' appears more than once in the annotation", lineno)
    command = command.strip(_WS)
    if not command:
        raise GooseParseError(f"empty annotation '-- +goose' (expected one of {_KNOWN})", lineno)
    kind = _ANNOTATIONS.get(command.lower())
    if kind is None:
        raise GooseParseError(
            f"unknown annotation '-- +goose {command}' (expected one of {_KNOWN})", lineno
        )
    return kind


def _holds_sql(buf: list[str]) -> bool:
    for line in buf:
        stripped = line.strip(_WS)
        if stripped and not stripped.startswith("--"):
            return True
    return False


def _check_finished(buf: list[str], buf_start: int, where: str) -> None:
    """goose rejects a non-blank leftover buffer at Down and at EOF."""
    if _holds_sql(buf):
        raise GooseParseError(
            f"unfinished statement: no line ends with ';' before {where}", buf_start
        )
    if "\n".join(buf).strip(_WS):
        raise GooseParseError(
            "this line holds only whitespace, so goose starts a statement here and the comment "
            f"after it is left as an unfinished statement at {where}; make this line empty",
            buf_start,
        )


def _expand(line: str, env: Mapping[str, str] | None, lineno: int) -> Expansion:
    try:
        return expand_masked(line, os.environ if env is None else env)
    except EnvsubError as exc:
        raise GooseParseError(f"ENVSUB: {exc.message}", lineno) from exc
