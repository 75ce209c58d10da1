"""The goose model's rules, checked on the cases goose's own behaviour pins down."""

import pytest
from goose_model import GooseError, GooseModel


def test_fresh_database_gets_the_zero_row_then_every_file() -> None:
    model = GooseModel((1, 2, 3))
    assert model.up() == [1, 2, 3]
    assert model.versions_by_id == [0, 1, 2, 3]
    assert model.current() == 3


def test_out_of_order_apply_makes_the_last_applied_row_current() -> None:
    model = GooseModel.with_rows((1, 2, 3, 4, 5), (0, 1, 2, 3, 5))
    with pytest.raises(GooseError, match="found 1 missing migrations before current version 5"):
        model.up()
    assert model.up_to(5, allow_missing=True) == [4]
    assert model.versions_by_id == [0, 1, 2, 3, 5, 4]
    assert model.current() == 4
    assert model.down() == 4
    assert model.current() == 5


def test_redo_acts_on_the_last_applied_row() -> None:
    model = GooseModel.with_rows((1, 2, 3), (0, 1, 3, 2))
    assert model.redo() == 2
    assert model.versions_by_id == [0, 1, 3, 2]
    assert model.ran == [("down", 2), ("up", 2)]


def test_down_to_follows_row_order_and_stops_at_the_first_current_at_or_below_target() -> None:
    model = GooseModel.with_rows((1, 2, 3, 4, 5), (0, 1, 2, 4, 5, 3))
    assert model.down_to(3) == []  # current is 3: goose stops at once
    assert model.down_to(0) == [3, 5, 4, 2, 1]
    assert model.versions_by_id == [0]


def test_reset_rolls_back_applied_files_highest_version_first() -> None:
    model = GooseModel.with_rows((1, 2, 3, 4), (0, 1, 4, 2))
    assert model.reset() == [4, 2, 1]
    assert model.versions_by_id == [0]


def test_up_to_ignores_missing_files_above_the_target() -> None:
    model = GooseModel.with_rows((1, 2, 3, 4, 5), (0, 1, 2, 5))
    assert model.missing(2) == []
    assert model.up_to(2) == []
    with pytest.raises(GooseError):
        model.up_to(4)


def test_up_to_a_version_without_a_file_applies_everything_below_it() -> None:
    model = GooseModel((10, 20, 30))
    assert model.up_to(25) == [10, 20]


def test_up_to_below_every_file_is_an_error_that_creates_nothing() -> None:
    model = GooseModel((10, 20))
    for target in (0, 5, -1):
        with pytest.raises(GooseError, match="no migration files found"):
            model.up_to(target)
    assert model.rows is None


def test_down_without_an_applied_file_is_an_error_and_changes_nothing() -> None:
    model = GooseModel((1, 2))
    with pytest.raises(GooseError):
        model.down()
    assert model.versions_by_id == [0]
    with pytest.raises(GooseError, match="failed to get status"):
        GooseModel((1,)).reset()


def test_stamp_records_without_running_and_never_fills_gaps() -> None:
    model = GooseModel.with_rows((1, 2, 3, 4, 5), (0, 1, 3))
    model.stamp(5)
    assert model.versions_by_id == [0, 1, 3, 4, 5]
    model.stamp(1)
    assert model.versions_by_id == [0, 1]
    assert model.ran == []


def test_ids_are_not_reused_after_a_rollback() -> None:
    model = GooseModel((1, 2))
    model.up()
    model.down()
    model.up()
    assert [row.id for row in model.rows or []] == [1, 2, 4]
