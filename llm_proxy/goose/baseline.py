"""The text of a squashed baseline: one goose file that builds, on a new database,
the schema (and seed rows) a run of every file up to its version built (pure).

goose reads it as any other file: its Up holds every statement, each in a
StatementBegin/End block (a dumped statement may hold semicolons: defaults, CHECKs);
its Down is one statement that always fails, so that nobody rolls a database
back past the start of the history it replaced.
"""

from __future__ import annotations

from collections.abc import Sequence

from .directives import BASELINE, PREFIX

BASELINE_DESCRIPTION = "squashed_baseline"


def baseline_name(version_spelling: str) -> str:
    """The baseline's file name, its version spelled as the file it replaces spells it."""
    return f"{version_spelling}_{BASELINE_DESCRIPTION}.sql"


def is_baseline_name(name: str) -> bool:
    """Whether a goose file name is a squashed baseline's (revisions/plan.py refuses
    databases older than it)."""
    return name.endswith(f"_{BASELINE_DESCRIPTION}.sql")


def down_refusal_message(version: int) -> str:
    """What rolling the baseline back says."""
    return (
        f"version {version} is a squashed baseline and cannot be rolled back; "
        "drop the database to start over"
    )


def render_baseline(
    version: int,
    first_name: str,
    last_name: str,
    schema: Sequence[str],
    seed_rows: Sequence[str],
    refusal: str,
) -> str:
    """The baseline file: `schema` then `seed_rows` in Up, `refusal` as the whole Down."""
    lines = [
        f"{PREFIX} {BASELINE}",
        "-- Squashed baseline: the schema these files built",
        f"--   {first_name} .. {last_name}",
        "-- as the database's catalogs showed it after running them on a scratch database",
        f"-- (llm-proxy migrate squash --through {version}), and the rows they inserted",
        "-- (seed data).",
        f"-- Only a new database runs it. A database at version {version} or later keeps its",
        "-- recorded history and never runs it; an older one must first be upgraded to",
        f"-- version {version} by a release that still has the old files.",
        "-- Down is refused: it fails on purpose (nothing before this file exists any more).",
        "",
        "-- +goose Up",
    ]
    for statement in [*schema, *seed_rows]:
        lines += [
            "-- +goose StatementBegin",
            f"{statement.strip().rstrip(';')};",
            "-- +goose StatementEnd",
        ]
        lines.append("")
    lines += [
        "-- +goose Down",
        "-- +goose StatementBegin",
        f"{refusal};",
        "-- +goose StatementEnd",
    ]
    return "\n".join(lines) + "\n"
