"""``-- llm-proxy: allow RULE reason``: silence one lock-hazard finding, saying why.

The comment applies to the statement that follows it (other comment lines may come between);
goose reads it as a comment. A reason is required, so that the next reader knows why the
hazard is acceptable; an allow that silences nothing is reported, so that none outlives the
statement it was written for. Pure: no I/O.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from .sqlshape import WARNING

MARKER = "llm-proxy:"
_ALLOW_LINE = re.compile(
    r"^[^\S\n]*--[^\S\n]*llm-proxy:[^\S\n]*allow\b(?P<rest>[^\n]*)$", re.MULTILINE
)


@dataclass(frozen=True)
class Allow:
    line: int
    rule: str
    reason: str


class Located(Protocol):
    """What this module needs of a finding: where, and which rule."""

    @property
    def line(self) -> int | None: ...

    @property
    def rule(self) -> str: ...


F = TypeVar("F", bound=Located)


def read_allows(text: str) -> list[Allow]:
    """Every allow comment of a file, in order. A search over the text: a huge file is not
    split into lines for it, and one without the marker is not searched at all."""
    if MARKER not in text:
        return []
    allows: list[Allow] = []
    number, counted = 1, 0
    for match in _ALLOW_LINE.finditer(text):
        number += text.count("\n", counted, match.start())
        counted = match.start()
        rule, _, reason = match.group("rest").strip().partition(" ")
        allows.append(Allow(number, rule, reason.strip()))
    return allows


def silenced(
    findings: Iterable[F],
    allows: Sequence[Allow],
    statement_lines: Iterable[int | None],
    rules: Collection[str],
    *,
    report_unused: bool,
) -> tuple[list[F], list[tuple[int, str, str, str]]]:
    """The findings no allow silences, and the allows' own problems as (line, severity,
    rule, message): unknown rule or no reason (``allow-invalid``, silences nothing), and
    with ``report_unused`` an allow that silenced nothing (``allow-unused``)."""
    if not allows:
        return list(findings), []  # a big data migration's lines are not even sorted
    starts = sorted(line for line in statement_lines if line is not None)
    problems: list[tuple[int, str, str, str]] = []
    wanted: dict[tuple[int, str], Allow] = {}  # (statement line, rule) -> allow
    for allow in allows:
        if allow.rule not in rules:
            known = ", ".join(sorted(rules))
            problems.append(
                (
                    allow.line,
                    WARNING,
                    "allow-invalid",
                    f"'allow {allow.rule}' names no lock-hazard rule (one of: {known})",
                )
            )
        elif not allow.reason:
            problems.append(
                (
                    allow.line,
                    WARNING,
                    "allow-invalid",
                    f"'allow {allow.rule}' gives no reason: write why the hazard is "
                    "acceptable after the rule name",
                )
            )
        else:
            after = bisect_right(starts, allow.line)
            if after < len(starts):
                wanted[(starts[after], allow.rule)] = allow
            elif report_unused:
                problems.append(_unused(allow))
    used: set[int] = set()
    kept: list[F] = []
    for finding in findings:
        allow = None
        if finding.line is not None and starts:
            at = bisect_left(starts, finding.line + 1) - 1
            if at >= 0:
                allow = wanted.get((starts[at], finding.rule))
        if allow is None:
            kept.append(finding)
        else:
            used.add(allow.line)
    if report_unused:
        problems.extend(_unused(a) for a in wanted.values() if a.line not in used)
    problems.sort()
    return kept, problems


def _unused(allow: Allow) -> tuple[int, str, str, str]:
    return (
        allow.line,
        WARNING,
        "allow-unused",
        f"'allow {allow.rule}' silences nothing: the next statement has no {allow.rule} "
        "finding; remove the comment",
    )
