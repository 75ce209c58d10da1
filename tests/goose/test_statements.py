"""Statements kept as offsets into the file's text: the same strings, a fraction of the memory."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from llm_proxy.goose.parser import GooseParseError, parse_sections
from llm_proxy.goose.statements import Statements

TEXT = (
    "-- +goose Up\n"
    "CREATE TABLE t (x int);\n"  # line 2
    "  INSERT INTO t VALUES (1);  \n"  # 3: trimmed
    "\n"
    "-- a comment before a statement\n"
    "INSERT INTO t\n"  # 6: two lines, one stretch of the text
    "VALUES (2); -- trailing\n"
    "-- +goose StatementBegin\n"
    "\n"
    "SELECT 1;\n"  # 10: the blank line before it is trimmed
    "SELECT 2;\n"
    "-- +goose StatementEnd\n"
    "-- +goose Down\n"
    "DROP TABLE t;\n"  # 14
)


def test_statements_are_the_parsed_strings_kept_as_offsets() -> None:
    up, down = parse_sections(TEXT, env={})
    assert up.statements == [
        "CREATE TABLE t (x int);",
        "INSERT INTO t VALUES (1);",
        "INSERT INTO t\nVALUES (2); -- trailing",
        "SELECT 1;\nSELECT 2;",
    ]
    assert [up.line(i) for i in range(4)] == [2, 3, 6, 10]
    assert list(down.statements) == ["DROP TABLE t;"] and down.line(0) == 14
    assert up.statements.copies == down.statements.copies == 0


def test_crlf_envsub_and_split_statements_are_kept_as_strings() -> None:
    crlf = TEXT.replace("\n", "\r\n")
    up, _ = parse_sections(crlf, env={})
    assert up.statements == parse_sections(TEXT, env={})[0].statements
    assert up.statements.copies == 2  # the two multi-line ones: "\r\n" in the text, "\n" here
    assert [up.line(i) for i in range(4)] == [2, 3, 6, 10]

    text = (
        "-- +goose Up\n-- +goose ENVSUB ON\nSELECT '$A';\nSELECT 1\n"
        "-- +goose ENVSUB OFF\n;\n"  # an annotation between the lines of one statement
    )
    up, _ = parse_sections(text, env={"A": "a"})
    assert up.statements == ["SELECT 'a';", "SELECT 1\n;"]
    assert up.statements.copies == 2
    assert [up.line(0), up.line(1)] == [3, 4]


def test_bom_offsets() -> None:
    up, _ = parse_sections("\ufeff-- +goose Up\nSELECT 1;\n", env={})
    assert up.statements == ["SELECT 1;"] and up.statements.copies == 0


def test_sequence_behaviour() -> None:
    statements, _ = parse_sections(TEXT, env={})[0].statements, None
    assert statements[-1] == "SELECT 1;\nSELECT 2;"
    assert statements[1:3] == [
        "INSERT INTO t VALUES (1);",
        "INSERT INTO t\nVALUES (2); -- trailing",
    ]
    with pytest.raises(IndexError):
        statements[4]
    assert len(statements) == 4 and "CREATE TABLE t (x int);" in statements
    assert statements != ["CREATE TABLE t (x int);"]
    assert repr(Statements.of(["a;"])) == "['a;']"
    assert Statements.of(["a;", "b;"]) == ("a;", "b;")
    restored = pickle.loads(pickle.dumps(statements))
    assert restored == statements and restored.line(0) == 2


# ---------------------------------------------------------------- long statements


CORPUS = sorted((Path(__file__).parent / "corpus").glob("*.sql"))
LONG = (
    "-- +goose Up\n"
    "INSERT INTO t VALUES\n" + "".join(f"  ({n}, 'row {n}'),\n" for n in range(9)) + "  (9, 'x');\n"
    "-- +goose StatementBegin\n\n"
    + "".join(f"SELECT {n};\n" for n in range(7))
    + "\n-- +goose StatementEnd\n"
    "-- +goose Down\nDROP TABLE t;\n"
)


def _outcome(text: str, env: dict[str, str]) -> object:
    try:
        up, down = parse_sections(text, env=env)
    except GooseParseError as error:
        return ("error", error.line, error.rule)
    return (list(up.statements), list(up.statements.lines), list(down.statements), up.masked)


@pytest.mark.parametrize("spill", [1, 2, 3])
@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_spilling_long_statements_changes_nothing(
    spill: int, path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A statement past _SPILL_LINES lines keeps its lines as a stretch of the text only:
    # every corpus file (CRLF, ENVSUB, blocks, errors) parses the same whatever the limit.
    import json

    from llm_proxy.goose import parser

    text = path.read_bytes().decode("utf-8")
    expected_file = path.with_name(path.stem + ".expected.json")
    env = json.loads(expected_file.read_text(encoding="utf-8")).get("env", {})
    unspilled = _outcome(text, env)
    monkeypatch.setattr(parser, "_SPILL_LINES", spill)
    assert _outcome(text, env) == unspilled


def test_spilled_statements_are_offsets(monkeypatch: pytest.MonkeyPatch) -> None:
    from llm_proxy.goose import parser

    unspilled = parse_sections(LONG, env={})
    monkeypatch.setattr(parser, "_SPILL_LINES", 2)
    up, _ = parse_sections(LONG, env={})
    assert up.statements == unspilled[0].statements
    assert list(up.statements.lines) == [2, 15]
    assert up.statements.copies == 0
    for broken, line in (
        (LONG.replace("  (9, 'x');\n", "  (9, 'x')\n"), 2),  # runs into StatementBegin
        ("-- +goose Up\nSELECT 1;\nSELECT\n" + "1,\n" * 9 + "1\n", 3),  # no ';' at the end
    ):
        with pytest.raises(GooseParseError) as info:
            parse_sections(broken, env={})
        assert info.value.line == line


def test_chunks_rebuild_each_statement() -> None:
    up, _ = parse_sections(TEXT.replace("\n", "\r\n"), env={})  # spans and strings both
    for index, statement in enumerate(up.statements):
        for size in (1, 3, 1 << 20):
            assert "".join(up.statements.chunks(index, size)) == statement
