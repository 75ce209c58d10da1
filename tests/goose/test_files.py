"""Discovery and naming of goose migration files."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from llm_proxy.goose import (
    MigrationFile,
    MigrationFileError,
    discover,
    fix_plan,
    is_timestamp_version,
    new_migration_text,
    next_sequential_name,
    parse,
    parse_filename,
    parse_sections,
    sanitize_description,
    timestamp_name,
)


def touch(directory: Path, *names: str) -> None:
    for name in names:
        (directory / name).write_text("-- +goose Up\n", encoding="utf-8")


def mf(version_text: str, description: str = "x") -> MigrationFile:
    return MigrationFile(
        int(version_text), version_text, description, Path(f"{version_text}_{description}.sql")
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("00001_initial_schema.sql", (1, "00001", "initial_schema")),
        ("20240102150405_add_users.sql", (20240102150405, "20240102150405", "add_users")),
        ("7_x.sql", (7, "7", "x")),
        ("00002_two_parts_here.sql", (2, "00002", "two_parts_here")),
        ("00003_dotted.name.sql", (3, "00003", "dotted.name")),
        ("00004_.sql", (4, "00004", "")),
        ("README.md", None),
        ("00001_x.sql.bak", None),
        ("00001_x.SQL", None),
        ("00001_x.go", None),
    ],
)
def test_parse_filename(name: str, expected: tuple[int, str, str] | None) -> None:
    assert parse_filename(name) == expected


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("00000_zero.sql", "00000_zero.sql: version must be greater than 0"),
        ("abc_x.sql", "abc_x.sql: version 'abc' is not a positive integer"),
        ("v1_x.sql", "version 'v1' is not a positive integer"),
        ("-1_x.sql", "version '-1' is not a positive integer"),
        ("+1_x.sql", "version '+1' is not a positive integer"),
        ("_x.sql", "version '' is not a positive integer"),
        ("00001.sql", "00001.sql: no '_' after the version"),
        ("9223372036854775808_big.sql", "larger than goose's 64-bit limit"),
    ],
)
def test_parse_filename_rejects(name: str, message: str) -> None:
    with pytest.raises(MigrationFileError) as info:
        parse_filename(name)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_largest_int64_version_is_accepted() -> None:
    assert parse_filename("9223372036854775807_max.sql") == (
        2**63 - 1,
        "9223372036854775807",
        "max",
    )


def test_discover_sorts_by_version_and_ignores_other_entries(tmp_path: Path) -> None:
    touch(tmp_path, "00010_ten.sql", "00002_two.sql", "20240102150405_ts.sql", "00001_one.sql")
    touch(tmp_path, "notes.txt", "00003_three.sql.orig", "00004_upper.SQL", "README")
    (tmp_path / "00005_dir.sql").mkdir()  # a directory named like a migration
    nested = tmp_path / "postgres"
    nested.mkdir()
    touch(nested, "00006_nested.sql")
    found = discover(tmp_path)
    assert [f.name for f in found] == [
        "00001_one.sql",
        "00002_two.sql",
        "00010_ten.sql",
        "20240102150405_ts.sql",
    ]
    assert found[0] == MigrationFile(1, "00001", "one", tmp_path / "00001_one.sql")
    assert found[2].version == 10 and found[2].version_text == "00010"


def test_discover_follows_symlinks_to_files(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.txt"
    target.write_text("-- +goose Up\n", encoding="utf-8")
    os.symlink(target, tmp_path / "00001_linked.sql")
    os.symlink(tmp_path / "missing", tmp_path / "00002_dangling.sql")
    assert [f.name for f in discover(tmp_path)] == ["00001_linked.sql"]


def test_discover_accepts_str_and_empty_directory(tmp_path: Path) -> None:
    assert discover(str(tmp_path)) == []


def test_discover_missing_directory(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(MigrationFileError) as info:
        discover(missing)
    assert str(info.value) == f"migrations directory not found: {missing}"


def test_discover_path_is_a_file(tmp_path: Path) -> None:
    touch(tmp_path, "00001_x.sql")
    with pytest.raises(MigrationFileError, match="not a directory"):
        discover(tmp_path / "00001_x.sql")


def test_duplicate_versions_name_both_files(tmp_path: Path) -> None:
    touch(tmp_path, "00001_a.sql", "001_b.sql", "00002_c.sql")
    with pytest.raises(MigrationFileError) as info:
        discover(tmp_path)
    message = str(info.value)
    assert message.startswith("duplicate migration version 1: ")
    assert str(tmp_path / "00001_a.sql") in message and str(tmp_path / "001_b.sql") in message
    assert "00002_c.sql" not in message


def test_bad_names_are_each_reported_on_their_own_line(tmp_path: Path) -> None:
    touch(tmp_path, "00000_zero.sql", "abc_alpha.sql", "00001.sql", "00002_ok.sql")
    touch(tmp_path, "00003_a.sql", "3_b.sql")
    with pytest.raises(MigrationFileError) as info:
        discover(tmp_path)
    lines = str(info.value).split("\n")
    assert len(lines) == 4
    assert list(info.value.problems) == lines
    assert any(
        str(tmp_path / "00000_zero.sql") in line and "greater than 0" in line for line in lines
    )
    assert any("abc_alpha.sql" in line and "'abc'" in line for line in lines)
    assert any("00001.sql" in line and "no '_'" in line for line in lines)
    assert any("duplicate migration version 3" in line for line in lines)
    assert not any("00002_ok.sql" in line for line in lines)


def test_discover_many_files(tmp_path: Path) -> None:
    names = [f"{i:05d}_m{i}.sql" for i in range(1, 1001)]
    touch(tmp_path, *reversed(names))
    found = discover(tmp_path)
    assert [f.name for f in found] == names


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        (20240102150405, True),
        (19700101000001, True),
        (99991231235959, True),
        (19700101000000, False),  # exactly the epoch: not after it
        (19691231235959, False),
        (20241301000000, False),  # month 13
        (20240230000000, False),  # 30 February
        (20240102240000, False),  # hour 24
        (20240102156000, False),  # minute 60
        (20240102150460, False),  # second 60
        (1, False),
        (99999, False),
        (2024010215040, False),  # 13 digits
        (202401021504050, False),  # 15 digits
    ],
)
def test_is_timestamp_version(version: int, expected: bool) -> None:
    assert is_timestamp_version(version) is expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Add Users", "add_users"),
        ("add_users", "add_users"),
        ("  add   users!! ", "add_users"),
        ("AddUsers", "addusers"),
        ("add-users.v2", "add_users_v2"),
        ("__private__", "private"),
        ("Café Crème", "café_crème"),
        ("123 go", "123_go"),
        ("!!!", ""),
    ],
)
def test_sanitize_description(name: str, expected: str) -> None:
    assert sanitize_description(name) == expected


def test_next_sequential_name() -> None:
    files = [mf("00001"), mf("00006"), mf("20240102150405")]
    assert next_sequential_name(files, "Add Users") == "00007_add_users.sql"


def test_next_sequential_name_first_and_width() -> None:
    assert next_sequential_name([], "init") == "00001_init.sql"
    assert next_sequential_name([mf("20240102150405")], "init") == "00001_init.sql"
    assert next_sequential_name([mf("1"), mf("2")], "x") == "3_x.sql"
    assert next_sequential_name([mf("009")], "x") == "010_x.sql"
    assert next_sequential_name([mf("99")], "x") == "100_x.sql"


def test_names_need_a_description() -> None:
    with pytest.raises(ValueError, match="no letters or digits"):
        next_sequential_name([], "!!!")
    with pytest.raises(ValueError, match="no letters or digits"):
        timestamp_name("", datetime(2024, 1, 2, tzinfo=UTC))


def test_timestamp_name_is_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    now = datetime(2024, 1, 2, 17, 4, 5, tzinfo=plus_two)
    assert timestamp_name("Add Users", now) == "20240102150405_add_users.sql"
    assert timestamp_name("x", datetime(2024, 1, 2, 15, 4, 5)) == "20240102150405_x.sql"
    version, _, _ = parse_filename(timestamp_name("x", now)) or (0, "", "")
    assert is_timestamp_version(version)


def test_fix_plan_renumbers_timestamps_in_order() -> None:
    files = [
        mf("20240301000000", "third"),
        mf("00001", "one"),
        mf("20240102150405", "first"),
        mf("00002", "two"),
        mf("20240201000000", "second"),
    ]
    plan = fix_plan(files)
    assert [(f.name, new) for f, new in plan] == [
        ("20240102150405_first.sql", "00003_first.sql"),
        ("20240201000000_second.sql", "00004_second.sql"),
        ("20240301000000_third.sql", "00005_third.sql"),
    ]


def test_fix_plan_edge_cases() -> None:
    assert fix_plan([mf("00001"), mf("00002")]) == []
    assert [new for _, new in fix_plan([mf("20240102150405", "only")])] == ["00001_only.sql"]
    # The rest of the name, even an empty description, is kept as written.
    odd = MigrationFile(20240102150405, "20240102150405", "", Path("20240102150405_.sql"))
    assert fix_plan([mf("7"), odd]) == [(odd, "8_.sql")]


def test_new_migration_text_parses() -> None:
    text = new_migration_text()
    up, down = parse_sections(text)
    assert up.use_tx and down.use_tx
    assert len(up.statements) == 1 and len(down.statements) == 1
    assert "-- +goose StatementBegin" in text and "-- +goose StatementEnd" in text


def test_new_migration_text_no_transaction() -> None:
    text = new_migration_text(no_transaction=True)
    assert parse(text).use_tx is False
    assert parse(text).statements == parse(new_migration_text()).statements


def test_migration_files_order_by_version() -> None:
    assert sorted([mf("00010"), mf("2"), mf("00001")]) == [mf("00001"), mf("2"), mf("00010")]
