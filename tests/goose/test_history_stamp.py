"""goose_db_version's rows read as goose reads them, and the rows a stamp writes
(llm_proxy.goose.history), held against the model of tests/goose_model.py."""

from __future__ import annotations

import pytest
from goose_model import GooseModel
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_proxy.goose.history import StampChanges, VersionRow, stamp_changes

FILES = (1, 2, 3, 4, 5)


def rows_of(model: GooseModel) -> list[VersionRow]:
    return [VersionRow(r.id, r.version, r.applied, None) for r in model.rows or []]


def stamped(model: GooseModel, target: int) -> list[int]:
    """The versions, in id order, after applying stamp_changes to the model's rows."""
    changes = stamp_changes(rows_of(model), model.files, target)
    versions = [v for v in model.versions_by_id if v not in changes.delete]
    return versions + list(changes.insert)


@pytest.mark.parametrize(
    ("files", "rows", "target", "expected"),
    [
        pytest.param(FILES, (0,), 3, StampChanges(insert=(1, 2, 3)), id="up-from-zero"),
        pytest.param(FILES, (0, 1, 3), 5, StampChanges(insert=(4, 5)), id="gap-stays-missing"),
        pytest.param(FILES, (0, 1, 2, 3), 3, StampChanges(), id="at-target"),
        pytest.param(FILES, (0, 1, 2, 3), 1, StampChanges(delete=(3, 2)), id="down"),
        pytest.param(FILES, (0, 1, 2, 4, 3), 2, StampChanges(delete=(3, 4)), id="row-order"),
        pytest.param(FILES, (0, 1, 2, 4, 3), 3, StampChanges(), id="current-is-the-newest-row"),
        pytest.param((10, 20, 30), (0,), 25, StampChanges(insert=(10, 20)), id="between-files"),
        pytest.param(FILES, (0, 1, 2), 0, StampChanges(delete=(2, 1)), id="base"),
    ],
)
def test_stamp_changes(
    files: tuple[int, ...], rows: tuple[int, ...], target: int, expected: StampChanges
) -> None:
    model = GooseModel.with_rows(files, rows)
    assert stamp_changes(rows_of(model), files, target) == expected


@settings(max_examples=300, deadline=None)
@given(
    applied=st.lists(st.sampled_from(FILES), unique=True, max_size=len(FILES)),
    target=st.integers(min_value=0, max_value=6),
)
def test_stamp_changes_write_what_the_model_stamps(applied: list[int], target: int) -> None:
    model = GooseModel.with_rows(FILES, [0, *applied])
    expected = GooseModel.with_rows(FILES, [0, *applied])
    expected.stamp(target)
    assert stamped(model, target) == expected.versions_by_id
