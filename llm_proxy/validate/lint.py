"""`llm-proxy migrate validate`: find problems in a goose directory before a database does.

Four parts, kept apart:

- the lint (pure, no I/O): ``lint`` and ``lint_file`` check names and versions, parse every file
  and apply the rules below to bytes already read, reporting every problem in every file;
- ``read_directory`` (I/O): the bytes of every ``*.sql`` entry of a directory, and
  ``read_revision_ids`` (I/O): the ids of the project's Python revisions;
- ``rows.check_database`` (I/O, its own module): a database's goose_db_version rows;
- ``roundtrip.scratch_database`` and ``roundtrip.round_trip`` (I/O, their own module): up,
  down-to 0 and up again on a database made for the purpose and thrown away afterwards.

Rules (docs/validation.md describes each): ``parse``, ``encoding``, ``read``, ``filename``,
``duplicate-version``, ``revision-id``, ``transaction-statement`` and ``invalid-if-exists`` are
errors;
``bom``, ``missing-down``, ``empty-down``, ``not-idempotent``, ``down-not-reverse``,
``sql-parameter``, ``not-a-file`` and ``no-migrations`` are warnings. When the dialect is
known, the lock-hazard rules of ``hazards`` apply too (``needs-no-transaction`` is an error,
the others warnings), each silenced by an ``allow`` comment (``allow``: ``allow-invalid`` and
``allow-unused`` are warnings). ``apply`` (error) and
``apply-leftover`` (warning) come from the round trip; ``duplicate-row``, ``unknown-version``
(errors) and ``rolled-back-row`` (warning) from a database's goose_db_version (``rows``,
--check-db).

The SQL checks read statements through ``sqltokens`` and ``sqlshape``.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

from llm_proxy.errors import MigrationError
from llm_proxy.goose import files as goose_files
from llm_proxy.goose.directives import read_directives
from llm_proxy.goose.parser import GooseParseError, has_bom, parse_sections
from llm_proxy.revisions.graph import MAX_REVISION_ID
from llm_proxy.revisions.sources import python_nodes

from . import hazards
from .allow import read_allows, silenced
from .sqlshape import ERROR, WARNING, Section, not_reversed
from .sqltokens import transaction_keyword

if TYPE_CHECKING:
    from llm_proxy.dialects import Dialect

__all__ = [
    "BLOCKING_RULES",
    "Finding",
    "Report",
    "SourceFile",
    "iter_directory",
    "lint",
    "lint_file",
    "read_directory",
]

# Rules after which the files cannot even be loaded as migrations: no round trip then.
BLOCKING_RULES = frozenset(
    {"parse", "encoding", "read", "filename", "duplicate-version", "revision-id"}
)
SCRATCH_PREFIX = "llmproxy_validate_"
_EMPTY_ENV: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, order=True)
class Finding:
    """One problem: where, how bad, which rule, and what to do."""

    path: str
    line: int | None
    severity: str  # "error" or "warning"
    rule: str
    message: str

    def render(self) -> str:
        """`path:line: severity: message [rule]`."""
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
StatementLines = tuple[Sequence[int | None], Sequence[int | None]]


@dataclass(frozen=True)
class Report:
    """Every finding of a directory, and what the round trip needs to point at lines."""

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
        """True when errors were found (or warnings, with `strict`)."""
        return self.errors > 0 or (strict and self.warnings > 0)


# ---------------------------------------------------------------- reading (I/O)


def read_directory(directory: str | Path) -> list[SourceFile]:
    """Every ``*.sql`` entry of ``directory`` (not recursive), sorted by name.

    Raises MigrationFileError when the directory itself is missing or not a directory.
    """
    return list(iter_directory(directory))


def iter_directory(directory: str | Path) -> Iterator[SourceFile]:
    """``read_directory`` one file at a time: each file is read when its turn comes, so
    a directory of big files never has them all in memory. The directory is listed (and
    a missing one refused) before the first file is yielded. Files come in version order,
    as goose applies them (the lock-hazard rules follow what earlier files created); names
    that are not a version come last."""
    return _read_each(_list_directory(directory))


def _list_directory(directory: str | Path) -> list[tuple[Path, bool]]:
    root = Path(directory)
    try:
        with os.scandir(root) as entries:
            found = sorted(
                (entry.name, _is_file(entry))
                for entry in entries
                if entry.name.endswith(goose_files.SUFFIX)
            )
    except FileNotFoundError:
        raise goose_files.MigrationFileError(f"migrations directory not found: {root}") from None
    except NotADirectoryError:
        raise goose_files.MigrationFileError(
            f"migrations path is not a directory: {root}"
        ) from None
    found.sort(key=lambda entry: _version_order(entry[0]))
    return [(root / name, is_file) for name, is_file in found]


def _version_order(name: str) -> tuple[int, int, str]:
    try:
        parsed = goose_files.parse_filename(name)
    except goose_files.MigrationFileError:
        parsed = None
    return (0, parsed[0], name) if parsed else (1, 0, name)


def _read_each(entries: list[tuple[Path, bool]]) -> Iterator[SourceFile]:
    for path, is_file in entries:
        if not is_file:
            yield SourceFile(str(path), None, "not a regular file", is_file=False)
            continue
        try:
            data = path.read_bytes()
        except OSError as exc:
            yield SourceFile(str(path), None, f"cannot read: {exc.strerror or exc}")
            continue
        yield SourceFile(str(path), data)
        del data  # this frame must not keep the file's bytes while the next one is read


def _is_file(entry: os.DirEntry[str]) -> bool:
    """Whether the entry is (a symlink to) a file; True when following it fails (a
    symlink loop), so that reading it reports the error against its name."""
    try:
        return entry.is_file()
    except OSError:
        return True


def read_revision_ids(versions_dir: Path) -> list[tuple[str, str]]:
    """``(path, revision id)`` of each Python revision in ``versions_dir`` that can be
    read literally (one that needs Alembic to read is checked when it runs)."""
    nodes = python_nodes(versions_dir) or []
    return [(str(versions_dir / node.name), node.revision) for node in nodes]


# ---------------------------------------------------------------- lint (pure)


def lint(
    sources: Iterable[SourceFile],
    env: Mapping[str, str] | None = None,
    *,
    directory: str = ".",
    revision_ids: Sequence[tuple[str, str]] = (),
    dialect: Dialect | None = None,
    deployed_through: int = 0,
) -> Report:
    """Every problem in every file. ``env`` feeds ENVSUB (default: an empty environment);
    ``revision_ids``: ``(path, id)`` of the project's Python revisions; ``dialect``, when
    known, adds the rules of that database (``sql-parameter``, the lock hazards).
    ``deployed_through``: files up to this version have run on deployed databases already:
    no lock hazards are reported for them, and the tables they create have rows.

    ``sources`` is read once, one file at a time: given ``iter_directory``, only one
    file's bytes are held at once."""
    environment = _EMPTY_ENV if env is None else env
    skipped: list[Finding] = []
    file_findings: list[Finding] = []
    lines: dict[str, StatementLines] = {}
    paths: dict[str, str] = {}
    history = hazards.History()
    for source in sources:
        if not source.is_file:
            skipped.append(
                Finding(
                    source.path,
                    None,
                    WARNING,
                    "not-a-file",
                    f"{source.problem}: not a migration, goose and llm-proxy skip it",
                )
            )
        elif source.data is None:
            paths[source.name] = source.path
            problem = source.problem or "unread"
            file_findings.append(Finding(source.path, None, ERROR, "read", problem))
        else:
            paths[source.name] = source.path
            found, statement_lines = lint_file(
                source.path,
                source.data,
                environment,
                dialect=dialect,
                history=history,
                deployed=_version(source.name) <= deployed_through,
            )
            file_findings.extend(found)
            if statement_lines is not None:
                lines[source.name] = statement_lines
        del source  # not held while the next file is read
    findings = skipped
    if not paths:
        findings.append(
            Finding(directory, None, WARNING, "no-migrations", "no *.sql migration files")
        )
    findings.extend(check_names(list(paths.values())))
    findings.extend(check_revision_ids(revision_ids))
    findings.extend(file_findings)
    findings.sort(key=lambda f: (f.path, f.line or 0))
    return Report(tuple(findings), len(paths), statement_lines=lines, paths=paths)


def _version(name: str) -> int:
    """The version of a file name, 0 when it has none (findings of its own say why)."""
    try:
        parsed = goose_files.parse_filename(name)
    except goose_files.MigrationFileError:
        return 0
    return parsed[0] if parsed else 0


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


def check_revision_ids(revision_ids: Sequence[tuple[str, str]]) -> list[Finding]:
    """Python revision ids too long for alembic_version (goose files' ids, derived from
    a 64-bit version, always fit)."""
    return [
        Finding(
            path,
            None,
            ERROR,
            "revision-id",
            f"revision id {revision!r} is {len(revision)} characters; alembic_version "
            f"holds at most {MAX_REVISION_ID}: choose a shorter id",
        )
        for path, revision in revision_ids
        if len(revision) > MAX_REVISION_ID
    ]


# Rules that do not apply to a squashed baseline (goose/baseline.py).
BASELINE_EXEMPT = frozenset({"not-idempotent", "down-not-reverse"})


def lint_file(
    path: str,
    data: bytes,
    env: Mapping[str, str] | None = None,
    dialect: Dialect | None = None,
    *,
    history: hazards.History | None = None,
    deployed: bool = False,
) -> tuple[list[Finding], StatementLines | None]:
    """The findings for one file, and the line of each statement (None when it does not parse).

    ``history``: what the files before this one (in version order) created, brought up to
    date with this one; ``deployed``: this file has run on deployed databases already."""
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
        )  # the parser skips it itself (no copy of a possibly huge text here)
    try:
        up, down = parse_sections(text, _EMPTY_ENV if env is None else env)
    except GooseParseError as exc:
        findings.append(Finding(path, exc.line, ERROR, "parse", exc.rule))
        return findings, None

    up_lines, down_lines = up.statements.lines, down.statements.lines
    annotations = _annotation_lines(text)
    # Only the Down's names are compared (with what the Up creates): the Up's statements
    # that no rule reads are not even tokenized.
    up_section = Section.read(up.statements, up_lines, names=False)
    down_section = Section.read(down.statements, down_lines)

    def add(line: int | None, severity: str, rule: str, message: str) -> None:
        findings.append(Finding(path, line, severity, rule, message))

    if up.use_tx:
        for section in (up_section, down_section):
            for piece in section.pieces:
                keyword = transaction_keyword(piece.tokens)
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
    model = dialect.lock_hazards if dialect is not None else None
    if model is not None:
        found = hazards.file_hazards(
            up_section,
            down_section,
            model=model,
            transactional=up.use_tx,
            history=hazards.History() if history is None else history,
            deployed=deployed,
        )
    else:
        found = []
    if not deployed:
        kept, problems = silenced(
            found,
            read_allows(text),
            itertools.chain(up_lines, down_lines),
            hazards.RULES,
            report_unused=model is not None,
        )
        for hazard in kept:
            add(hazard.line, hazard.severity, hazard.rule, hazard.message)
        for line, severity, rule, message in problems:
            add(line, severity, rule, message)
    if dialect is not None:
        for statements, lines in ((up.statements, up_lines), (down.statements, down_lines)):
            for statement, line in zip(statements, lines, strict=True):
                found = dialect.parameter_markers(statement)
                if found:
                    add(
                        line,
                        WARNING,
                        "sql-parameter",
                        f"{dialect.label} reads {found[0]} as a parameter, and migrations run "
                        "without any (goose passes none): the statement fails; write the "
                        "value (or NULL) instead",
                    )

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
        for line, message in not_reversed(up_section, down_section):
            add(line, WARNING, "down-not-reverse", message)
    if _is_baseline(text, path):
        # A squashed baseline runs only on a new database, and its Down refuses on purpose.
        findings = [f for f in findings if f.rule not in BASELINE_EXEMPT]
    return findings, (up_lines, down_lines)


def _is_baseline(text: str, path: str) -> bool:
    try:
        return read_directives(text, path).baseline
    except MigrationError:
        return False  # a bad lock-timeout line: reported where the file runs


# An annotation line, as the parser accepted it: "--" (after spaces), then "+goose".
_ANNOTATION_LINE = re.compile(r"^\ufeff?[^\S\n]*--[^\n]*\+goose[^\n]*", re.MULTILINE)


def _annotation_lines(text: str) -> dict[str, int]:
    """First line of each annotation ("up", "down", ...); the file already parsed. Found by
    a search over the text: a huge file is not split into a list of lines for it."""
    seen: dict[str, int] = {}
    number, counted = 1, 0
    for match in _ANNOTATION_LINE.finditer(text):
        number += text.count("\n", counted, match.start())
        counted = match.start()
        line = match.group().removesuffix("\r")
        word = " ".join(line.replace("--", "").replace("+goose", "", 1).split()).lower()
        seen.setdefault(word, number)
    return seen
