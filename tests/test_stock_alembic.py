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


def test_stamp_waits_for_the_migration_lock(doors: Doors, monkeypatch: pytest.MonkeyPatch) -> None:
    from llm_proxy.db import locks

    monkeypatch.setenv("LLM_PROXY_LOCK_TIMEOUT", "1")
    with locks.for_database(doors.database.settings).hold():  # another migration runs
        ours = doors.llm_proxy("stamp", "3")
        stock = doors.alembic("stamp", "00003")
    assert ours.code == 1 and "timed out after 1s waiting for the migration lock" in ours.stderr
    assert stock.code == 1
    assert stock.stdout.startswith("FAILED: timed out after 1s waiting for the migration lock")
    assert doors.database.goose_versions() is None
    assert doors.database.alembic_heads() == []


def test_migrate_stamp_of_an_unknown_version_is_one_line(doors: Doors) -> None:
    result = doors.llm_proxy("stamp", "4x2")
    assert result.code == 1
    assert result.stderr.strip() == "Error: no migration with version '4x2'"
    assert doors.database.goose_versions() is None


def test_migrate_stamp_takes_a_version_as_up_to_does(doors: Doors) -> None:
    # As `up-to 42`: every goose file at or below 42, no file 42 needed.
    result = doors.llm_proxy("stamp", "42")
    assert result.code == 0, result.stderr
    assert doors.database.goose_versions() == [0, 1, 2, 3, 4, 5, 6]


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
    for argv in (("downgrade", "-1"), ("check",)):
        refused = doors.alembic(*argv)
        assert refused.code == 1 and refused.stdout.strip() == f"FAILED: {way_out}", argv
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


# ------------------------------------------------ 3. the same rules through both doors (14.6)


def applied_out_of_order_by_goose(doors: Doors) -> GooseModel:
    """goose applied 00001, 00002 and 00004 (00003 was added later, below them)."""
    for version in (1, 2, 4):
        doors.goose("up", version)
    model = GooseModel.with_rows(FILES, (0, 1, 2, 4))
    model.ran = [("up", 1), ("up", 2), ("up", 4)]
    return model


MISSING = "found 1 missing migrations before current version 4: 00003_step_3.sql"


@pytest.mark.parametrize(
    "argv", [("upgrade", "head"), ("upgrade", "+1"), ("upgrade", "00003")], ids=" ".join
)
def test_missing_migrations_are_refused_by_the_stock_door_too(
    doors: Doors, argv: tuple[str, ...]
) -> None:
    model = applied_out_of_order_by_goose(doors)
    ours = doors.llm_proxy("up")
    assert ours.code == 1
    assert ours.stderr.strip() == f"Error: {MISSING} (use --allow-missing to apply them)"

    stock = doors.alembic(*argv)
    assert stock.code == 1
    assert stock.stdout.strip() == f"FAILED: {MISSING} (use -x allow_missing=true to apply them)"
    assert doors.database.ran() == model.ran
    assert doors.database.goose_versions() == model.versions_by_id


@pytest.mark.parametrize("door", ["alembic", "llm-proxy"])
def test_allow_missing_applies_them_as_goose_does_through_either_door(
    doors: Doors, door: str
) -> None:
    model = applied_out_of_order_by_goose(doors)
    if door == "alembic":
        expect_ok(doors.alembic("-x", "allow_missing=true", "upgrade", "head"))
    else:
        expect_ok(doors.llm_proxy("up", "--allow-missing"))
    model.up(allow_missing=True)
    assert doors.database.ran() == model.ran
    assert doors.database.goose_versions() == model.versions_by_id
    assert doors.database.alembic_heads() == ["00006"]


PYTHON_ON_00006 = "feedface0001"


def goose_rolled_back_under_a_python_revision(doors: Doors) -> str:
    """00001-00006 and a Python revision on 00006 applied; then goose rolled back
    00006. Returns the message every refusal gives."""
    doors.add_python_revision(PYTHON_ON_00006, "00006", logged_as=100)
    expect_ok(doors.alembic("upgrade", "head"))
    doors.goose("down", 6)
    return (
        "goose_db_version says 00006_step_6.sql is not applied, but Python revision(s) "
        f"{PYTHON_ON_00006} built on it are: roll them back with `llm-proxy migrate down-to "
        "00005` (or `alembic downgrade 00005`), re-apply it with goose, or record where the "
        "schema really is with `llm-proxy migrate stamp VERSION`"
    )


def test_python_revision_on_a_rolled_back_goose_file_is_one_line_naming_the_way_out(
    doors: Doors,
) -> None:
    message = goose_rolled_back_under_a_python_revision(doors)
    before = doors.database.ran()

    stock = doors.alembic("upgrade", "head")
    assert stock.code == 1 and stock.stdout.strip() == f"FAILED: {message}"
    ours = doors.llm_proxy("up")
    assert ours.code == 1 and ours.stderr.strip() == f"Error: {message}"
    current = doors.alembic("current")
    assert current.ok and current.stdout.strip() == f"{PYTHON_ON_00006} (head)"
    assert message in current.stderr
    assert expect_ok(doors.llm_proxy("version")).strip() == "Current migration version: 5"
    assert doors.database.ran() == before
    assert doors.database.alembic_heads() == [PYTHON_ON_00006]


@pytest.mark.parametrize(
    "way_out",
    [
        ("llm-proxy", "down-to", "00005"),
        ("alembic", "downgrade", "00005"),
        ("llm-proxy", "stamp", "00005"),
    ],
    ids=" ".join,
)
def test_following_the_advice_gets_out(doors: Doors, way_out: tuple[str, ...]) -> None:
    goose_rolled_back_under_a_python_revision(doors)
    before = doors.database.ran()
    door, *argv = way_out
    expect_ok(doors.alembic(*argv) if door == "alembic" else doors.llm_proxy(*argv))

    rolled_back = [("down", 100)] if argv[0] != "stamp" else []
    assert doors.database.ran() == before + rolled_back  # 00006's Down does not run twice
    assert doors.database.alembic_heads() == ["00005"]
    assert doors.database.goose_versions() == [0, 1, 2, 3, 4, 5]

    expect_ok(doors.llm_proxy("up"))
    assert doors.database.ran()[-2:] == [("up", 6), ("up", 100)]
    assert doors.database.alembic_heads() == [PYTHON_ON_00006]
    assert doors.database.goose_versions() == [0, 1, 2, 3, 4, 5, 6]


def test_an_offline_stamp_script_moves_goose_rows_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    import sqlite3

    doors = open_doors("sqlite", tmp_path=tmp_path, monkeypatch=monkeypatch, request=request)
    model = GooseModel(FILES)
    expect_ok(doors.alembic("upgrade", "00002"))
    model.up_to(2)
    path = Path(doors.database.env["DATABASE_PATH"])
    for start, end in (("00002", "00005"), ("00005", "00001")):
        script = expect_ok(doors.alembic("stamp", "--sql", f"{start}:{end}"))
        with sqlite3.connect(path, isolation_level=None) as connection:
            connection.executescript(script)
        model.stamp(int(end))
        agree(doors, model, [end])
    assert doors.database.ran() == [("up", 1), ("up", 2)]
