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


# ------------------------------------------------ 2. read-only commands (14.5)

READ_ONLY = [
    ("current",),
    ("current", "--verbose"),
    ("history", "--indicate-current"),
    ("history", "-r", "current:"),
    ("heads",),
    ("branches",),
    ("show", "00001"),
    ("show", "current"),
]


def goose_only(doors: Doors, versions: tuple[int, ...]) -> None:
    """A database only goose has migrated: its table and rows, nothing of Alembic's."""
    from llm_proxy.store import goose_table
    from llm_proxy.store.tables import Tables

    tables = Tables(doors.database.settings.dialect)
    doors.database.execute(
        goose_table.create_sql(tables), *(goose_table.insert_sql(tables, v) for v in (0, *versions))
    )


@pytest.mark.parametrize("argv", READ_ONLY, ids=" ".join)
def test_read_only_commands_create_nothing(
    argv: tuple[str, ...],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    doors = open_doors("sqlite", tmp_path=tmp_path, monkeypatch=monkeypatch, request=request)
    missing = tmp_path / "nowhere" / "missing.db"
    monkeypatch.setenv("DATABASE_PATH", str(missing))
    outcome = doors.alembic(*argv)
    assert outcome.ok, outcome.stdout
    assert not missing.parent.exists()

    # From another directory, the ini's relative sqlite:///data/llm-proxy.db.
    monkeypatch.delenv("DATABASE_PATH")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert doors.alembic(*argv).ok
    assert list(elsewhere.iterdir()) == []


@pytest.mark.parametrize(
    "argv", [("current",), ("history", "-i"), ("show", "current")], ids=" ".join
)
def test_read_only_commands_neither_lock_nor_write(
    doors: Doors, argv: tuple[str, ...], monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from llm_proxy.db import locks

    goose_only(doors, (1, 2, 3, 4, 5, 6))
    before = doors.database.tables()
    monkeypatch.setenv("LLM_PROXY_LOCK_TIMEOUT", "1")
    with locks.for_database(doors.database.settings).hold():  # another migration runs
        outcome = doors.alembic(*argv)
    assert outcome.ok, outcome.stdout
    assert doors.database.tables() == before  # no alembic_version, no table of ours
    assert doors.database.goose_versions() == [0, 1, 2, 3, 4, 5, 6]


def test_current_says_what_alembic_version_holds_and_when_goose_disagrees(doors: Doors) -> None:
    goose_only(doors, (1, 2, 3, 4, 5, 6))
    outcome = doors.alembic("current")
    assert outcome.ok and outcome.stdout == ""
    assert (
        "alembic_version holds nothing, but goose_db_version puts the database at 00006; "
        "the next command that writes"
    ) in outcome.stderr

    # The first command that writes adopts the database, under the lock.
    expect_ok(doors.alembic("upgrade", "heads"))
    assert doors.database.alembic_heads() == ["00006"]
    assert doors.database.ran() == []
    outcome = doors.alembic("current")
    assert outcome.stdout.strip() == "00006 (head)"
    assert "goose_db_version" not in outcome.stderr


def test_a_lost_goose_table_is_refused_by_both_doors_until_stamped(doors: Doors) -> None:
    expect_ok(doors.alembic("upgrade", "head"))
    doors.database.execute("DROP TABLE goose_db_version")
    way_out = (
        "goose_db_version does not exist, but alembic_version says 00006 is applied: nothing "
        "runs until goose's table is back; restore it from a backup or, if the schema really "
        "is at 00006, record that with `llm-proxy migrate stamp 00006` (or `alembic stamp 00006`)"
    )

    current = doors.alembic("current")
    assert current.stdout.strip() == "00006 (head)"
    assert way_out in current.stderr
    assert doors.database.alembic_heads() == ["00006"]

    upgrade = doors.alembic("upgrade", "head")
    assert upgrade.code == 1 and upgrade.stdout.strip() == f"FAILED: {way_out}"
    for argv in (("up",), ("down",), ("down-to", "0"), ("redo",)):
        refused = doors.llm_proxy(*argv)
        assert refused.code == 1 and refused.stderr.strip() == f"Error: {way_out}", argv
    downgrade = doors.alembic("downgrade", "-1")
    assert downgrade.code == 1 and way_out in downgrade.stdout
    assert doors.database.ran() == [("up", v) for v in FILES]  # nothing ran again
    assert doors.database.goose_versions() is None
    assert doors.database.alembic_heads() == ["00006"]

    expect_ok(doors.llm_proxy("stamp", "00006"))
    assert doors.database.goose_versions() == [0, 1, 2, 3, 4, 5, 6]
    assert "no migrations to run" in expect_ok(doors.llm_proxy("up"))
    expect_ok(doors.alembic("upgrade", "head"))
    assert doors.database.ran() == [("up", v) for v in FILES]


def test_a_lost_goose_table_is_restored_by_the_stock_stamp_too(doors: Doors) -> None:
    expect_ok(doors.alembic("upgrade", "00004"))
    doors.database.execute("DROP TABLE goose_db_version")
    expect_ok(doors.alembic("stamp", "00004"))
    model = GooseModel(FILES)
    model.stamp(4)
    agree(doors, model, ["00004"])
    expect_ok(doors.alembic("upgrade", "head"))
    assert doors.database.ran() == [("up", v) for v in FILES]
