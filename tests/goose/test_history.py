"""goose_db_version rows read the way goose reads them (llm_proxy.goose.history),
and the rows goose and llm-proxy would read differently, or that show a
migration ran twice."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from llm_proxy.goose.history import GooseState, VersionRow


def rows(*spec: tuple[int, bool]) -> list[VersionRow]:
    """Rows with ids 1, 2, ... in the order given: (version, is_applied)."""
    return [VersionRow(i, v, a, None) for i, (v, a) in enumerate(spec, start=1)]


T, F = True, False


@dataclass(frozen=True)
class Case:
    rows: tuple[tuple[int, bool], ...]
    known: tuple[int, ...]  # versions a file defines
    current: int
    applied: tuple[int, ...]
    problems: tuple[tuple[str, int, tuple[int, ...]], ...] = ()  # (kind, version, row ids)


CASES = {
    "clean": Case(((0, T), (1, T), (2, T)), (1, 2), 2, (1, 2)),
    "empty": Case((), (1,), 0, ()),
    # goose `up` and llm-proxy `up` at the same moment: every version twice.
    "raced": Case(
        ((0, T), (1, T), (1, T), (2, T), (2, T)),
        (1, 2),
        2,
        (1, 2),
        (("duplicate", 1, (2, 3)), ("duplicate", 2, (4, 5))),
    ),
    "duplicate-initial-row-is-harmless": Case(((0, T), (0, T), (1, T)), (1,), 1, (1,)),
    # An older goose recorded `down` as a row with is_applied = false.
    "rolled-back-newest": Case(
        ((0, T), (1, T), (2, T), (2, F)),
        (1, 2),
        1,
        (1,),
        (("rolled back", 2, (4,)),),
    ),
    "rolled-back-below-applied": Case(
        ((0, T), (1, T), (2, T), (1, F)),
        (1, 2),
        2,
        (2,),
        (("rolled back", 1, (4,)),),
    ),
    "rolled-back-then-applied-again-is-history": Case(
        ((0, T), (1, T), (1, F), (1, T)), (1,), 1, (1,)
    ),
    "rolled-back-then-applied-twice": Case(
        ((0, T), (1, T), (1, F), (1, T), (1, T)),
        (1,),
        1,
        (1,),
        (("duplicate", 1, (4, 5)),),
    ),
    "no-file": Case(
        ((0, T), (1, T), (7, T)),
        (1,),
        7,
        (1, 7),
        (("no file", 7, (3,)),),
    ),
    "no-file-rolled-back-is-only-rolled-back": Case(
        ((0, T), (1, T), (7, T), (7, F)),
        (1,),
        1,
        (1,),
        (("rolled back", 7, (4,)),),
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_rows_and_their_problems(case: Case) -> None:
    state = GooseState.from_rows(rows(*case.rows))
    assert state.current_version == case.current
    assert sorted(state.applied) == list(case.applied)
    found = state.problems(case.known)
    assert [(p.kind, p.version, p.row_ids) for p in found] == list(case.problems)
    for problem in found:
        assert f"version {problem.version}" in problem.message and "\n" not in problem.message


def test_rolled_back_message_says_what_goose_reads_as_current() -> None:
    state = GooseState.from_rows(rows((0, T), (1, T), (2, T), (2, F)))
    (problem,) = state.problems([1, 2])
    assert "current version is 1, not 2" in problem.message
    assert "never apply version 2 again" in problem.message


def test_duplicate_message_names_the_rows_and_the_cause() -> None:
    state = GooseState.from_rows(rows((0, T), (1, T), (1, T)))
    (problem,) = state.problems([1])
    assert "applied 2 times" in problem.message and "ids 2, 3" in problem.message
    assert "goose and llm-proxy" in problem.message
