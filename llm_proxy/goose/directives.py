"""Per-file settings a goose file carries in comment lines goose ignores (pure).

    -- llm-proxy: lock-timeout 10s
    -- llm-proxy: statement-timeout 5m

Only the comment block before the file's first statement is read (as for the
``-- llm-proxy: after`` line, which ``revisions/sources.py`` reads): the
settings belong to the whole file, and a big data file costs nothing more.
Other ``-- llm-proxy:`` words (``after``, ``allow``) are read elsewhere and
passed over here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass

from llm_proxy.errors import MigrationError

PREFIX = "-- llm-proxy:"
LOCK_TIMEOUT = "lock-timeout"
STATEMENT_TIMEOUT = "statement-timeout"
# `-- llm-proxy: allow RULE reason` silences a lint finding (validate/allow.py); it
# may stand before the first statement too, so the `after` reader must pass over it.
ALLOW = "allow"
# `-- llm-proxy: baseline` marks a squashed baseline (goose/baseline.py): databases that
# ran the files it replaced recorded their checksums, not its own.
BASELINE = "baseline"

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h)?\s*$", re.IGNORECASE)


def parse_duration(text: str) -> float:
    """Seconds from '10s', '500ms', '5m', '1h' or a bare number of seconds ('0' is
    off); ValueError naming what is accepted otherwise."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"expected a duration such as 5s, 500ms, 2m or 0 (off), not {text!r}")
    seconds = float(match.group(1)) * _UNITS[(match.group(2) or "s").lower()]
    if not math.isfinite(seconds):
        raise ValueError(f"expected a finite duration, not {text!r}")
    return seconds


@dataclass(frozen=True)
class FileDirectives:
    """What a file's own lines say; None: the command's setting applies."""

    lock_timeout: float | None = None
    statement_timeout: float | None = None
    baseline: bool = False


def read_directives(text: str, path: str) -> FileDirectives:
    """The lock-timeout and statement-timeout lines of a file's leading comments.
    A bad value or a word given twice is a MigrationError naming path:line."""
    found: dict[str, float] = {}
    baseline = False
    for number, raw in enumerate(_lines(text), start=1):
        line = raw.lstrip("\ufeff").strip()
        if line and not line.startswith("--"):
            break  # the first statement: the header is over
        if "+goose" in line:
            if "statementbegin" in line.lower().replace(" ", ""):
                break
            continue
        if not line.replace(" ", "").startswith(PREFIX.replace(" ", "")):
            continue
        word, _, value = line.split(":", 1)[1].strip().partition(" ")
        baseline = baseline or word == BASELINE
        if word not in (LOCK_TIMEOUT, STATEMENT_TIMEOUT):
            continue
        if word in found:
            raise MigrationError(f"{path}:{number}: a second '{PREFIX} {word}' line")
        try:
            found[word] = parse_duration(value)
        except ValueError as exc:
            raise MigrationError(f"{path}:{number}: {PREFIX} {word}: {exc}") from None
    return FileDirectives(found.get(LOCK_TIMEOUT), found.get(STATEMENT_TIMEOUT), baseline)


def _lines(text: str) -> Iterator[str]:
    """Lines one at a time: the header is short, the file may be huge."""
    start = 0
    while start < len(text):
        end = text.find("\n", start)
        if end < 0:
            end = len(text)
        yield text[start:end]
        start = end + 1
