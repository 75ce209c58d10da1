"""Table-driven parser tests: error objects, line handling, limits, environment."""

from __future__ import annotations

import pickle

import pytest

from llm_proxy.goose import GooseParseError, ParsedMigration, has_bom, parse, parse_sections
from llm_proxy.goose import parser as parser_module


def test_error_str_without_path() -> None:
    err = GooseParseError("'-- +goose StatementEnd' without a matching StatementBegin", 7)
    assert str(err) == "line 7: '-- +goose StatementEnd' without a matching StatementBegin"
    assert err.line == 7
    assert err.path is None
    assert isinstance(err, ValueError)


def test_error_without_line() -> None:
    err = GooseParseError("no '-- +goose Up' annotation")
    assert str(err) == "no '-- +goose Up' annotation"
    assert str(err.with_path("sql/00001_x.sql")) == "sql/00001_x.sql: no '-- +goose Up' annotation"


def test_with_path_returns_a_copy() -> None:
    err = GooseParseError("duplicate '-- +goose Up' (the first is on line 1)", 3)
    named = err.with_path("sql/00002_b.sql")
    assert str(named) == "sql/00002_b.sql:3: duplicate '-- +goose Up' (the first is on line 1)"
    assert (named.path, named.line, named.rule) == ("sql/00002_b.sql", 3, err.rule)
    assert err.path is None and str(err).startswith("line 3: ")
    assert type(named) is GooseParseError


def test_error_from_parse_names_line_and_survives_pickling() -> None:
    with pytest.raises(GooseParseError) as info:
        parse("-- +goose Up\nSELECT 1;\n-- +goose StatementEnd\n")
    restored = pickle.loads(pickle.dumps(info.value.with_path("a.sql")))
    assert str(restored) == "a.sql:3: '-- +goose StatementEnd' without a matching StatementBegin"
    assert restored.line == 3


@pytest.mark.parametrize("direction", ["UP", "Down", "", "both", None])
def test_bad_direction(direction: object) -> None:
    with pytest.raises(ValueError, match="direction must be 'up' or 'down'"):
        parse("-- +goose Up\n", direction)  # type: ignore[arg-type]


def test_direction_error_is_not_a_parse_error() -> None:
    with pytest.raises(ValueError) as info:
        parse("-- +goose Up\n", "sideways")
    assert not isinstance(info.value, GooseParseError)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("\ufeff-- +goose Up\n", True), ("-- +goose Up\n", False), ("-- \ufeff", False), ("", False)],
)
def test_has_bom(text: str, expected: bool) -> None:
    assert has_bom(text) is expected


def test_bom_only_stripped_at_start() -> None:
    # A BOM anywhere else is ordinary text: here it makes the line non-blank SQL before Up.
    with pytest.raises(GooseParseError) as info:
        parse("\n\ufeff\n-- +goose Up\n")
    assert info.value.line == 2


def test_bom_does_not_shift_line_numbers() -> None:
    with pytest.raises(GooseParseError) as info:
        parse("\ufeff-- +goose Up\n-- +goose Up\n")
    assert info.value.line == 2


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("-- +goose Up\r\nSELECT 1;\r\n-- +goose Up\r\n", 3),
        ("-- +goose Up\nSELECT 1;\r\n\r\n\r\n-- +goose StatementEnd", 5),
        # A lone CR is not a line break for goose, so everything is on line 1.
        ("-- +goose Up\rSELECT 1;\r-- +goose Down\r", 1),
    ],
)
def test_line_numbers_follow_lf(text: str, line: int) -> None:
    with pytest.raises(GooseParseError) as info:
        parse(text)
    assert info.value.line == line


def test_only_one_trailing_cr_is_dropped() -> None:
    up = parse("-- +goose Up\nSELECT 1;\r\r\n-- +goose Down\n")
    assert up.statements == ["SELECT 1;"]  # the remaining CR is whitespace, trimmed


def test_crlf_and_lf_parse_identically() -> None:
    lf = (
        "-- +goose Up\nCREATE TABLE t (\n  id int -- x;\n);\n-- +goose StatementBegin\n"
        "DO $$ BEGIN\nPERFORM 1;\nEND $$;\n-- +goose StatementEnd\n-- +goose Down\nDROP TABLE t;\n"
    )
    assert parse_sections(lf.replace("\n", "\r\n")) == parse_sections(lf)


@pytest.mark.parametrize(
    "line",
    ["SELECT 1;\x1c", "SELECT 1;\x1f"],
)
def test_python_only_whitespace_is_not_trimmed(line: str) -> None:
    # U+001C..U+001F are whitespace for Python but not for Go: the line does not end with ';'.
    with pytest.raises(GooseParseError, match="unfinished statement"):
        parse(f"-- +goose Up\n{line}\n")


@pytest.mark.parametrize(
    ("line", "ends"),
    [
        ("SELECT 1;", True),
        ("SELECT 1 ;", True),
        ("SELECT 1; -- c", True),
        ("SELECT 1;\t--c", True),
        ("SELECT 1; --", True),
        ("SELECT 1 -- c;", False),
        ("SELECT 1;--c", False),
        ("SELECT 1; a--b", False),
        ("SELECT '--';", True),
        ("SELECT ';' --;", False),
        ("SELECT ';' ; --;", True),
        ("SELECT 1; -- a; -- b;", True),
        ("SELECT 'a;' b", False),
        (";", True),
        ("  ;  ", True),
    ],
)
def test_statement_end_rule(line: str, ends: bool) -> None:
    text = f"-- +goose Up\n{line}\nSELECT 2;\n"
    statements = parse(text).statements
    if ends:
        assert statements == [line.strip(), "SELECT 2;"]
    else:
        assert statements == [f"{line.strip()}\nSELECT 2;"]


def test_lines_longer_than_goose_buffer() -> None:
    # goose stops at 4 MiB per line; we accept any length.
    values = ", ".join(f"({i}, 'row {i}')" for i in range(300_000))
    line = f"INSERT INTO t VALUES {values};"
    assert len(line) > 5 * 1024 * 1024
    up = parse(f"-- +goose Up\n{line}\n-- +goose Down\nDELETE FROM t;\n")
    assert up.statements == [line]


def test_statements_across_batch_boundaries(monkeypatch: pytest.MonkeyPatch) -> None:
    # Small batches force statements, CRLF pairs and errors to straddle batch edges.
    monkeypatch.setattr(parser_module, "_BATCH_CHARS", 7)
    body = [f"INSERT INTO t VALUES ({i},\r\n  'v{i}');\r\n" for i in range(50)]
    text = "-- +goose Up\r\n" + "".join(body) + "-- +goose Down\r\nDELETE FROM t;"
    up, down = parse_sections(text)
    assert up.statements == [f"INSERT INTO t VALUES ({i},\n  'v{i}');" for i in range(50)]
    assert down.statements == ["DELETE FROM t;"]
    assert parse_sections("\ufeff" + text) == (up, down)
    with pytest.raises(GooseParseError) as info:
        parse(text + "\r\n-- +goose Up\r\n")
    assert info.value.line == 1 + 2 * 50 + 3


def test_many_statements_line_numbers_in_errors() -> None:
    lines = ["-- +goose Up"] + [f"INSERT INTO t VALUES ({i});" for i in range(10_000)]
    lines.append("INSERT INTO t VALUES (-1)")
    with pytest.raises(GooseParseError) as info:
        parse("\n".join(lines) + "\n")
    assert info.value.line == 10_002


def test_env_defaults_to_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_PROXY_TEST_SCHEMA", "from_environ")
    text = "-- +goose Up\n-- +goose ENVSUB ON\nCREATE SCHEMA $LLM_PROXY_TEST_SCHEMA;\n"
    assert parse(text).statements == ["CREATE SCHEMA from_environ;"]
    # An explicit mapping replaces the environment entirely.
    assert parse(text, env={}).statements == ["CREATE SCHEMA ;"]
    assert parse(text, env={"LLM_PROXY_TEST_SCHEMA": "x"}).statements == ["CREATE SCHEMA x;"]


def test_env_error_names_line_and_variable() -> None:
    text = "-- +goose Up\nSELECT 1;\n-- +goose ENVSUB ON\n\nSELECT '${API_KEY?needed}';\n"
    with pytest.raises(GooseParseError) as info:
        parse(text, env={})
    assert info.value.line == 5
    assert "API_KEY" in str(info.value) and "needed" in str(info.value)
    assert str(info.value).startswith("line 5: ENVSUB: ")


def test_envsub_not_applied_without_annotation() -> None:
    text = "-- +goose Up\nSELECT '$1 ${X?boom} $$';\n"
    assert parse(text, env={}).statements == ["SELECT '$1 ${X?boom} $$';"]


def test_parse_sections_is_one_parse() -> None:
    text = "-- +goose Up\nSELECT 1;\n-- +goose Down\nSELECT 2;\n"
    up, down = parse_sections(text)
    assert up == ParsedMigration(["SELECT 1;"], True)
    assert down == ParsedMigration(["SELECT 2;"], True)


@pytest.mark.parametrize("direction", ["up", "down"])
def test_errors_do_not_depend_on_direction(direction: str) -> None:
    # goose (legacy, one direction at a time) would miss the up-section error when going down.
    with pytest.raises(GooseParseError, match="unfinished statement"):
        parse("-- +goose Up\nSELECT 1\n-- +goose Down\nSELECT 2;\n", direction)


def test_parsed_migration_is_frozen() -> None:
    parsed = parse("-- +goose Up\nSELECT 1;\n")
    with pytest.raises(AttributeError):
        parsed.use_tx = False  # type: ignore[misc]


def test_distinct_messages_for_each_rule() -> None:
    broken = {
        "no_up": "",
        "sql_before_up": "SELECT 1;\n-- +goose Up\n",
        "dup_up": "-- +goose Up\n-- +goose Up\n",
        "down_before_up": "-- +goose Down\n",
        "dup_down": "-- +goose Up\n-- +goose Down\n-- +goose Down\n",
        "begin_before_up": "-- +goose StatementBegin\n",
        "nested_begin": "-- +goose Up\n-- +goose StatementBegin\n-- +goose StatementBegin\n",
        "end_without_begin": "-- +goose Up\n-- +goose StatementEnd\n",
        "missing_end": "-- +goose Up\n-- +goose StatementBegin\nSELECT 1;\n",
        "down_in_block": "-- +goose Up\n-- +goose StatementBegin\n-- +goose Down\n",
        "unfinished_at_down": "-- +goose Up\nSELECT 1\n-- +goose Down\n",
        "unfinished_at_eof": "-- +goose Up\nSELECT 1\n",
        "unfinished_at_begin": "-- +goose Up\nSELECT 1\n-- +goose StatementBegin\n",
        "whitespace_then_comment": "-- +goose Up\n \n-- c\n",
        "sql_after_empty_block": (
            "-- +goose Up\n-- +goose StatementBegin\n-- +goose StatementEnd\nSELECT 1;\n"
        ),
        "leading_whitespace": " -- +goose Up\n",
        "twice": "-- +goose Up +goose\n",
        "empty": "-- +goose\n",
        "unknown": "-- +goose Sideways\n",
        "envsub": "-- +goose Up\n-- +goose ENVSUB ON\nSELECT ${X?};\n",
    }
    messages = {}
    for name, text in broken.items():
        with pytest.raises(GooseParseError) as info:
            parse(text, env={})
        messages[name] = info.value.rule
    assert len(set(messages.values())) == len(messages), messages
