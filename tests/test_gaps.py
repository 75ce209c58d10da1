"""goose's rules for histories with gaps, version targets and edge states, held
against the goose model (tests/goose_model.py) on SQLite and PostgreSQL.

Each test runs the same commands on a real database (through the CLI) and on
the model, and compares goose_db_version's versions in id order, which
migrations ran (ran_log), the schema and whether the command failed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import settings_for
from gaps_harness import Harness
from test_mixed_graph import goose_file, python_revision
from test_models import copy_project, run_alembic

from llm_proxy import migrate
from llm_proxy.errors import MigrateError

Make = Callable[[tuple[int, ...]], Harness]


@pytest.fixture(params=["sqlite", "postgres"])
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Make:
    """Harness factory on each database (PostgreSQL skips when unreachable)."""
    if request.param == "sqlite":
        return lambda versions: Harness.sqlite(tmp_path, versions)
    url = request.getfixturevalue("postgres_url")
    return lambda versions: Harness.postgres(url, tmp_path, versions)


def run(harness: Harness, command: str, *arguments: str, model: tuple = ()) -> str:
    """Run `command` on both; same failure status; everything else compared, and
    alembic_version too once llm-proxy ran a migration (goose never writes it)."""
    ran_before = len(harness.ran())
    outcome = harness.cli(command, *arguments)
    action, *model_arguments = model or (command.replace("-", "_"),)
    expected = harness.model_runs(action, *model_arguments)
    assert outcome.failed == expected.failed, (command, outcome.output, expected.output)
    harness.check()
    if len(harness.ran()) != ran_before:
        harness.check_alembic()
    return outcome.output


def allow_missing_history(make: Make) -> Harness:
    """Rows by id 0,1,2,3,5,4: 00005 applied, then the missing 00004 with
    `up-to 5 --allow-missing`."""
    harness = make((1, 2, 3, 4, 5))
    for version in (1, 2, 3, 5):
        harness.goose(version)
    harness.check()
    run(harness, "up-to", "5", "--allow-missing", model=("up_to", 5, True))
    assert harness.versions_by_id() == [0, 1, 2, 3, 5, 4]
    return harness


# ------------------------------------------------------------ 1: gaps in the history


def test_version_is_the_last_applied_row(make: Make) -> None:
    harness = allow_missing_history(make)
    assert "Current migration version: 4" in harness.cli("version").output


def test_down_rolls_back_the_last_applied_row(make: Make) -> None:
    harness = allow_missing_history(make)
    output = run(harness, "down")
    assert "00004_t4.sql" in output and "00005_t5.sql" not in output
    assert harness.versions_by_id() == [0, 1, 2, 3, 5]
    run(harness, "down")  # now 00005: goose's next current version
    assert harness.versions_by_id() == [0, 1, 2, 3]


def test_redo_redoes_the_last_applied_row(make: Make) -> None:
    harness = allow_missing_history(make)
    run(harness, "redo")
    assert harness.ran()[-2:] == [("down", 4), ("up", 4)]
    assert harness.versions_by_id() == [0, 1, 2, 3, 5, 4]


def test_down_to_follows_the_rows_newest_first(make: Make) -> None:
    harness = allow_missing_history(make)
    run(harness, "down-to", "3", model=("down_to", 3))
    assert harness.ran()[-2:] == [("down", 4), ("down", 5)]
    run(harness, "down-to", "0", model=("down_to", 0))


def test_reset_rolls_back_every_applied_file_highest_first(make: Make) -> None:
    harness = allow_missing_history(make)
    run(harness, "reset")
    assert harness.ran()[-5:] == [("down", v) for v in (5, 4, 3, 2, 1)]


@pytest.mark.parametrize("arguments", [("reset",), ("down-to", "0")])
def test_reset_and_down_to_zero_over_an_unapplied_file(make: Make, arguments: tuple) -> None:
    """goose applied 00003 without 00002: nothing may stay applied after either."""
    harness = make((1, 2, 3))
    harness.goose(1)
    harness.goose(3)
    model = ("reset",) if arguments == ("reset",) else ("down_to", 0)
    output = run(harness, *arguments, model=model)
    assert harness.versions_by_id() == [0]
    assert harness.ran()[-2:] == [("down", 3), ("down", 1)]
    assert "Migration rolled back successfully" in output


def test_down_to_with_a_gap_is_not_refused_by_alembic(make: Make) -> None:
    """goose applied 00005 out of order over 00003 and 00004: down-to 3 rolls back 00005."""
    harness = make((1, 2, 3, 4, 5))
    for version in (1, 2, 5):
        harness.goose(version)
    run(harness, "down-to", "3", model=("down_to", 3))
    assert harness.versions_by_id() == [0, 1, 2]


def test_tools_take_turns(make: Make) -> None:
    """llm-proxy fills a gap, goose rolls back its current version, llm-proxy goes on."""
    harness = allow_missing_history(make)
    harness.goose(4, "down")  # goose's own `down`: its current version is 4
    harness.check()
    assert "Current migration version: 5" in harness.cli("version").output
    run(harness, "down")  # 00005
    run(harness, "up")  # 00004 and 00005 again, in version order
    assert harness.versions_by_id() == [0, 1, 2, 3, 4, 5]
    harness.goose(5, "down")
    run(harness, "redo")  # 00004
    assert harness.ran()[-2:] == [("down", 4), ("up", 4)]


# ------------------------------------------------------------ 2: targets are versions


def test_up_to_a_version_without_a_file(make: Make) -> None:
    """Timestamp-style versions: up-to 42 applies everything at or below 42."""
    harness = make((10, 20, 30, 50))
    run(harness, "up-to", "42", model=("up_to", 42))
    assert harness.versions_by_id() == [0, 10, 20, 30]


def test_down_to_above_the_current_version_is_a_no_op(make: Make) -> None:
    harness = make((10, 20, 30, 50))
    run(harness, "up-to", "30", model=("up_to", 30))
    output = run(harness, "down-to", "42", model=("down_to", 42))
    assert "goose: no migrations to run. current version: 30" in output
    output = run(harness, "down-to", "15", model=("down_to", 15))
    assert "goose: no migrations to run. current version: 10" in output
    assert harness.versions_by_id() == [0, 10]


@pytest.mark.parametrize("target", ["0", "5"])
def test_up_to_below_every_file_is_goose_error(make: Make, target: str) -> None:
    harness = make((10, 20))
    output = run(harness, "up-to", target, model=("up_to", int(target)))
    assert f"Error: no migration files found at or below version {target}" in output
    assert harness.versions_by_id() is None  # nothing was created


@pytest.mark.parametrize("target", ["²", "١٠", "1_0", "ten"])
def test_up_to_a_number_goose_cannot_read_is_one_line(make: Make, target: str) -> None:
    """goose reads versions with strconv.ParseInt: ASCII digits only (Python's int()
    takes '²' and Arabic-Indic digits)."""
    harness = make((10, 20))
    outcome = harness.cli("up-to", target)
    assert outcome.failed
    assert outcome.output.splitlines() == [f"Error: no migration with version '{target}'"]
    assert harness.versions_by_id() is None


# ------------------------------------------------------------ 3: missing above the target


def test_up_to_ignores_missing_versions_above_the_target(make: Make) -> None:
    harness = make((1, 2, 3, 4, 5))
    for version in (1, 2, 5):  # goose, run with other files, left 3 and 4 missing
        harness.goose(version)
    output = run(harness, "up-to", "2", model=("up_to", 2))
    assert "no migrations to run" in output
    output = run(harness, "up-to", "3", model=("up_to", 3))
    assert "found 1 missing migrations before current version 5: 00003_t3.sql" in output
    run(harness, "up-to", "3", "--allow-missing", model=("up_to", 3, True))
    assert harness.versions_by_id() == [0, 1, 2, 5, 3]


# ------------------------------------------------------------ rolling back, revision by revision


def test_failing_down_leaves_both_version_tables_as_they_were(make: Make) -> None:
    harness = make((1, 2, 3))
    run(harness, "up")
    harness.sql("DROP TABLE t3")  # its Down (DROP TABLE t3) now fails
    before = (harness.versions_by_id(), harness.alembic_heads(), harness.ran())
    outcome = harness.cli("down-to", "1")
    assert outcome.failed
    assert outcome.output.splitlines()[-1].startswith("Error: 00003_t3.sql: statement 1 failed")
    assert (harness.versions_by_id(), harness.alembic_heads(), harness.ran()) == before


def test_no_transaction_file_rolls_back_and_redoes(postgres_url: str, tmp_path: Path) -> None:
    harness = Harness.postgres(postgres_url, tmp_path, (1,))
    (harness.directory / "00002_index.sql").write_text(
        "-- +goose NO TRANSACTION\n-- +goose Up\nCREATE INDEX CONCURRENTLY t1_id ON t1 (id);\n"
        "-- +goose Down\nDROP INDEX CONCURRENTLY t1_id;\n",
        encoding="utf-8",
    )
    assert not harness.cli("up").failed
    outcome = harness.cli("redo")
    assert not outcome.failed, outcome.output
    assert outcome.output.count("OK   00002_index.sql") == 2
    assert not harness.cli("down").failed
    assert harness.versions_by_id() == [0, 1]
    assert harness.sql("SELECT count(*) FROM pg_indexes WHERE indexname = 't1_id'") == [(0,)]
    assert harness.alembic_heads() == ["00001"]


def test_python_revisions_roll_back_before_the_goose_file_they_build_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """00001 -> 00002 -> p1 (Python) -> 00003: goose's order, with p1 undone before
    the goose file it is built on."""
    root = copy_project(tmp_path / "project")
    for file in (root / "sql").glob("*.sql"):
        file.unlink()
    goose_file(root, "00001_a.sql", "a")
    goose_file(root, "00002_b.sql", "b")
    python_revision(root, "p1", "00002", table="p_one")
    goose_file(root, "00003_c.sql", "c", marker="-- llm-proxy: after p1")
    monkeypatch.chdir(root)
    db = ("--db", str(tmp_path / "mixed.db"))
    harness = Harness(settings_for(db=db[1]), db, root / "sql")

    def ok(*command: str) -> list[str]:
        outcome = harness.cli(*command)
        assert not outcome.failed, outcome.output
        return [line.split()[1] for line in outcome.output.splitlines() if line.startswith("OK")]

    assert ok("up") == ["00001_a.sql", "00002_b.sql", "p1_rev.py", "00003_c.sql"]
    assert ok("down") == ["00003_c.sql"]
    assert harness.alembic_heads() == ["p1"]
    assert ok("redo") == ["p1_rev.py", "p1_rev.py"]
    assert harness.alembic_heads() == ["p1"]
    assert ok("down") == ["p1_rev.py"]
    assert harness.alembic_heads() == ["00002"]
    assert ok("up") == ["p1_rev.py", "00003_c.sql"]
    assert ok("reset") == ["00003_c.sql", "p1_rev.py", "00002_b.sql", "00001_a.sql"]
    assert harness.versions_by_id() == [0]
    assert harness.alembic_heads() == []


# ------------------------------------------------------------ 4: edge states


def test_reset_without_a_goose_table_is_gooses_error(make: Make) -> None:
    harness = make((1, 2))
    output = run(harness, "reset")  # goose: "failed to get status of migrations"
    assert "goose_db_version does not exist" in output
    assert "failed to get status of migrations" in output


@pytest.mark.parametrize("command", ["redo", "down"])
def test_redo_and_down_on_a_fresh_database_fail_and_create_nothing(
    make: Make, command: str
) -> None:
    """Both fail, as in goose ("no current version found"); goose also creates its
    table on the way, llm-proxy creates nothing (a deliberate difference)."""
    harness = make((1, 2))
    outcome = harness.cli(command)
    assert outcome.failed and harness.model_runs(command).failed
    assert "no migrations to roll back: the database is at version 0" in outcome.output
    assert harness.versions_by_id() is None
    assert harness.model.versions_by_id == [0]


def test_down_at_version_zero_fails_like_goose(make: Make) -> None:
    harness = make((1, 2))
    run(harness, "up")
    run(harness, "reset")
    output = run(harness, "down")
    assert "no migrations to roll back: the database is at version 0" in output
    run(harness, "redo")


def test_down_to_on_a_fresh_database_is_a_no_op(make: Make) -> None:
    harness = make((1, 2))
    outcome = harness.cli("down-to", "0")
    assert not outcome.failed and not harness.model_runs("down_to", 0).failed
    assert "goose: no migrations to run. current version: 0" in outcome.output
    assert harness.versions_by_id() is None  # goose would have created its table


# ------------------------------------------------------------ 6: deliberate differences

BROKEN = {
    "unterminated-statement-begin": (
        "-- +goose Up\n-- +goose StatementBegin\nSELECT 1;\n",
        "00003_broken.sql:2:",
    ),
    "unknown-annotation": ("-- +goose Up\nSELECT 1;\n-- +goose Sideways\n", "00003_broken.sql:3:"),
    "indented-annotation": ("-- +goose Up\nSELECT 1;\n  -- +goose Down\n", "00003_broken.sql:3:"),
    "missing-envsub-variable": (
        "-- +goose Up\n-- +goose ENVSUB ON\nSELECT '${LLM_PROXY_TEST_UNSET?needed}';\n",
        "00003_broken.sql:3:",
    ),
    "broken-down-section": (
        "-- +goose Up\nSELECT 1;\n-- +goose Down\nDROP TABLE t1\n",
        "00003_broken.sql:4:",
    ),
}


@pytest.mark.parametrize("broken", BROKEN)
def test_a_broken_file_stops_up_before_anything_runs(make: Make, broken: str) -> None:
    """goose would apply 00001 and 00002, then fail on 00003 (and would not even
    read a broken Down section until `down`); llm-proxy parses every pending file
    first. `up-to 2` applies what comes before the broken file, as goose would."""
    harness = make((1, 2))
    text, where = BROKEN[broken]
    (harness.directory / "00003_broken.sql").write_text(text, encoding="utf-8")
    outcome = harness.cli("up")
    assert outcome.failed
    assert outcome.output.splitlines() == [outcome.output.strip()]
    assert where in outcome.output
    assert harness.versions_by_id() is None and harness.ran() == []
    assert not harness.cli("up-to", "2").failed
    assert harness.versions_by_id() == [0, 1, 2]


@pytest.mark.parametrize("command", [("reset",), ("down-to", "0")])
def test_an_applied_version_without_its_file_is_refused(make: Make, command: tuple) -> None:
    """00002's file was deleted after it ran. goose's reset skips it (its row stays)
    and goose's down-to rolls back 00003, then fails at 00002; llm-proxy refuses
    before rolling anything back."""
    harness = make((1, 2, 3))
    run(harness, "up")
    (harness.directory / "00002_t2.sql").unlink()
    outcome = harness.cli(*command)
    assert outcome.failed
    assert "version 2, which no migration file defines" in outcome.output
    assert harness.versions_by_id() == [0, 1, 2, 3]
    assert harness.ran() == [("up", 1), ("up", 2), ("up", 3)]


def test_a_negative_version_is_refused(make: Make) -> None:
    """goose reads down-to -1 as down-to 0, Alembic reads -1 as one step down."""
    harness = make((1, 2))
    run(harness, "up")
    with pytest.raises(MigrateError, match="no migration with version '-1'"):
        migrate.down_to(harness.settings, "-1")
    assert harness.cli("down-to", "-1").failed  # click reads it as an option
    assert harness.versions_by_id() == [0, 1, 2]


def test_stock_alembic_takes_revision_ids_and_says_so_for_a_bare_number(tmp_path: Path) -> None:
    root = copy_project(tmp_path / "project")
    db = tmp_path / "stock.db"
    refused = run_alembic("upgrade", "3", cwd=root, db=db)
    assert refused.returncode != 0
    assert "Can't locate revision identified by '3'" in refused.stderr
    assert run_alembic("upgrade", "00003", cwd=root, db=db).returncode == 0
