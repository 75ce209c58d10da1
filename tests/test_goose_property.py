"""Random directories and command sequences, run on a real database and on the
goose model (tests/goose_model.py): after every step goose_db_version's
versions in id order, which migrations ran, the schema, success or failure,
and alembic_version must agree with what goose would have done.

Commands: up, up --allow-missing, up-to N, down, down-to N, redo, reset, and
"goose applies V out of order" (goose_db_version row and the file's Up, as the
goose binary run with another set of files would). N need not be a file's
version. Each example starts with goose's table in place (a fresh database's
differences are tested in tests/test_gaps.py).
"""

from __future__ import annotations

from pathlib import Path

from gaps_harness import Harness
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

HIGHEST = 12  # versions are drawn from 1..HIGHEST, so gaps between numbers are common

versions = st.lists(st.integers(1, HIGHEST), min_size=2, max_size=5, unique=True).map(
    lambda drawn: tuple(sorted(drawn))
)
targets = st.integers(0, HIGHEST + 1)
commands = st.one_of(
    st.just(("up",)),
    st.just(("up", "--allow-missing")),
    st.tuples(st.just("up-to"), targets),
    st.tuples(st.just("up-to"), targets, st.just("--allow-missing")),
    st.just(("down",)),
    st.tuples(st.just("down-to"), targets),
    st.just(("redo",)),
    st.just(("reset",)),
    st.tuples(st.just("goose"), st.integers(1, HIGHEST)),
)


def model_call(command: tuple) -> tuple:
    """The model's method and arguments for a CLI command."""
    name, *rest = command
    allow_missing = "--allow-missing" in rest
    if name == "up":
        return ("up", allow_missing)
    if name == "up-to":
        return ("up_to", rest[0], allow_missing)
    if name == "down-to":
        return ("down_to", rest[0])
    return (name,)


def step(harness: Harness, command: tuple) -> None:
    if command[0] == "goose":
        version = command[1]
        if version not in harness.model.files or version in harness.model.applied():
            return  # goose never applies a version twice
        harness.goose(version)
    else:
        ran_before = len(harness.ran())
        outcome = harness.cli(*(str(part) for part in command))
        expected = harness.model_runs(*model_call(command))
        assert outcome.failed == expected.failed, (command, outcome.output, expected.output)
        if len(harness.ran()) != ran_before:
            harness.check_alembic()
    harness.check()
    harness.check_alembic_claims_nothing_unapplied()


def run_example(harness: Harness, sequence: list[tuple]) -> None:
    harness.create_goose_table()
    for command in sequence:
        step(harness, command)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(files=versions, sequence=st.lists(commands, min_size=1, max_size=10))
def test_llm_proxy_keeps_goose_db_version_as_goose_on_sqlite(
    tmp_path: Path, files: tuple[int, ...], sequence: list[tuple]
) -> None:
    run_example(Harness.sqlite(tmp_path, files), sequence)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(files=versions, sequence=st.lists(commands, min_size=1, max_size=8))
def test_llm_proxy_keeps_goose_db_version_as_goose_on_postgres(
    tmp_path: Path, postgres_url: str, files: tuple[int, ...], sequence: list[tuple]
) -> None:
    harness = Harness.postgres(postgres_url, tmp_path, files, fresh_schema=True)
    run_example(harness, sequence)
