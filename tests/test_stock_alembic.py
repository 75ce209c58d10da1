"""The stock `alembic` command keeps both version tables true, and agrees with
`llm-proxy migrate` (issue 14): stamp, read-only commands, and the rules both
doors share. tests/goose_model.py is the oracle for goose_db_version's rows."""

from __future__ import annotations

from pathlib import Path

import pytest
from goose_model import GooseModel
from two_doors import DIALECTS, Doors, open_doors

FILES = (1, 2, 3, 4, 5, 6)


@pytest.fixture(params=DIALECTS)
def doors(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Doors:
    return open_doors(request.param, tmp_path=tmp_path, monkeypatch=monkeypatch, request=request)


def expect_ok(outcome) -> str:  # type: ignore[no-untyped-def]
    assert outcome.ok, f"{outcome.stdout}\n{outcome.stderr}"
    return outcome.stdout


def agree(doors: Doors, model: GooseModel, heads: list[str]) -> None:
    """goose's rows are the model's; alembic_version, `alembic current` and
    `llm-proxy migrate version` all say the same."""
    db = doors.database
    assert db.goose_versions() == model.versions_by_id
    assert db.alembic_heads() == heads
    current = expect_ok(doors.alembic("current")).split()
    assert current[:1] == heads[:1]
    version = expect_ok(doors.llm_proxy("version"))
    assert version.strip() == f"Current migration version: {model.current()}"


# ---------------------------------------------------------------- 1. stamp (14.1)


def test_stamp_head_on_an_empty_database_is_kept(doors: Doors) -> None:
    model = GooseModel(FILES)
    expect_ok(doors.alembic("stamp", "head"))
    model.stamp(6)
    agree(doors, model, ["00006"])
    assert doors.database.journal() == ["00001", "00002", "00003", "00004", "00005", "00006"]

    expect_ok(doors.alembic("upgrade", "head"))
    assert doors.database.ran() == []  # stamped means applied: nothing runs
    agree(doors, model, ["00006"])


def test_stamp_over_a_migration_run_by_hand_does_not_run_it_again(doors: Doors) -> None:
    model = GooseModel(FILES)
    expect_ok(doors.alembic("upgrade", "00003"))
    model.up_to(3)
    doors.database.execute("INSERT INTO ran_log (direction, version) VALUES ('up', 4)")
    expect_ok(doors.alembic("stamp", "00004"))
    model.stamp(4)
    agree(doors, model, ["00004"])

    expect_ok(doors.alembic("upgrade", "head"))
    model.up()
    assert doors.database.ran() == [("up", v) for v in FILES]
    agree(doors, model, ["00006"])


def test_stamp_down_then_downgrade_rolls_back_the_stamped_version(doors: Doors) -> None:
    model = GooseModel(FILES)
    expect_ok(doors.alembic("upgrade", "head"))
    model.up()
    expect_ok(doors.alembic("stamp", "00003"))
    model.stamp(3)
    agree(doors, model, ["00003"])
    assert doors.database.journal() == ["00001", "00002", "00003"]

    expect_ok(doors.alembic("downgrade", "-1"))
    model.down()
    assert doors.database.ran()[-1] == ("down", 3)
    agree(doors, model, ["00002"])


@pytest.mark.parametrize("target,version", [("head", 6), ("00002", 2), ("base", 0)])
def test_stamp_purge_on_a_migrated_database(doors: Doors, target: str, version: int) -> None:
    model = GooseModel(FILES)
    expect_ok(doors.alembic("upgrade", "00004"))
    model.up_to(4)
    expect_ok(doors.alembic("stamp", "--purge", target))
    model.stamp(version)
    agree(doors, model, [f"{version:05d}"] if version else [])
    assert doors.database.journal() == [f"{v:05d}" for v in FILES if v <= version]
    assert doors.database.ran() == [("up", v) for v in (1, 2, 3, 4)]


def test_migrate_stamp_command(doors: Doors) -> None:
    model = GooseModel(FILES)
    result = doors.llm_proxy("stamp", "4")
    assert expect_ok(result).strip() == (
        "stamped 4 without running any migration; current migration version: 4"
    )
    model.stamp(4)
    agree(doors, model, ["00004"])

    expect_ok(doors.llm_proxy("stamp", "00002"))
    model.stamp(2)
    agree(doors, model, ["00002"])

    expect_ok(doors.llm_proxy("stamp", "--purge", "5"))
    model.stamp(5)
    agree(doors, model, ["00005"])

    expect_ok(doors.llm_proxy("stamp", "0"))
    model.stamp(0)
    agree(doors, model, [])
    assert doors.database.ran() == []
    assert doors.database.journal() == []


def test_migrate_stamp_of_an_unknown_version_is_one_line(doors: Doors) -> None:
    result = doors.llm_proxy("stamp", "42")
    assert result.code == 1
    assert result.stderr.strip() == "Error: no migration with version '42'"
    assert doors.database.goose_versions() is None
