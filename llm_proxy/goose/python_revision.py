"""A goose file written out as an Alembic Python revision (pure: text in, text out).

The revision keeps the file's revision id, parents and statements, in order
(a StatementBegin/End block stays one statement), and names the goose file it
came from: its version and name stand in for the file in goose_db_version,
`status` and the graph, and its checksum is the one databases recorded for the
file. ``write_goose_rows`` (on) keeps goose_db_version moving as goose would,
for as long as a goose binary still reads the database.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .migration import GooseMigration

# goose's annotation that turns on ${VAR} expansion (case and spacing as goose accepts).
_ENVSUB_ON = re.compile(r"^\s*--\s*\+goose\s+envsub\s+on\s*$", re.IGNORECASE | re.MULTILINE)
_INDENT = " " * 4


def uses_envsub(text: str) -> bool:
    """Whether a goose file's text turns ENVSUB on anywhere."""
    return _ENVSUB_ON.search(text) is not None


def render(
    migration: GooseMigration,
    parents: tuple[str, ...],
    dialect_name: str,
    *,
    expanded_env: bool = False,
) -> str:
    """The revision file's text (the file must already be parsed without errors)."""
    up, down = migration.sections()
    title = migration.file.description or migration.name
    notes = [
        f"Converted by `llm-proxy migrate convert` from the goose file {migration.name}",
        f"({dialect_name}); statements in the file's order.",
    ]
    if not up.use_tx:
        notes.append("NO TRANSACTION: each statement commits alone, as goose ran it.")
    if expanded_env:
        notes.append("ENVSUB: ${VAR} values were expanded from the environment at conversion.")
    down_revision = None if not parents else parents[0] if len(parents) == 1 else parents
    lines = [
        f'"""{_docstring_safe(title)}',
        "",
        *notes,
        '"""',
        "",
        "from alembic import op",
        "",
        "from llm_proxy.migrate import goose_step",
        "",
        f"revision = {migration.revision!r}",
        f"down_revision = {down_revision!r}",
        "branch_labels = None",
        "depends_on = None",
        "",
        "# The goose file this revision replaces: its version, name and checksum stand in",
        "# for it in goose_db_version, `status` and the checksums databases recorded.",
        f"goose_version = {migration.version!r}",
        f"goose_file = {migration.name!r}",
        f"goose_checksum = {migration.checksum!r}",
        f"goose_dialect = {dialect_name!r}",
        "# While goose still runs against the database: write goose's goose_db_version row",
        "# and skip the statements of a version goose already applied (or rolled back).",
        "write_goose_rows = True",
        "",
        "",
        *_function("upgrade", "up", up.statements, up.use_tx),
        "",
        "",
        *_function("downgrade", "down", down.statements, down.use_tx),
    ]
    return "\n".join(lines) + "\n"


def _function(name: str, direction: str, statements: Sequence[str], use_tx: bool) -> list[str]:
    lines = [
        f"def {name}() -> None:",
        f"{_INDENT}with goose_step({direction!r}, globals()) as step:",
    ]
    indent = _INDENT * 2
    if not use_tx:
        lines.append(f"{indent}with op.get_context().autocommit_block():")
        indent += _INDENT
    if not statements:
        lines.append(f"{indent}pass  # goose's EMPTY: only the version row changes")
    lines.extend(f"{indent}step.execute({_literal(statement)})" for statement in statements)
    return lines


def _literal(statement: str) -> str:
    """A Python literal of the statement, byte for byte, readable when it can be."""
    readable = "\n" in statement and not statement.endswith('"')
    if readable and not any(bad in statement for bad in ('"""', "\\", "\r")):
        return f'"""{statement}"""'
    return repr(statement)


def _docstring_safe(text: str) -> str:
    return text.replace("\\", "/").replace('"""', "'''")
