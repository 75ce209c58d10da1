"""Property tests: generated goose files parse back into the statements they were built from."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from llm_proxy.goose import GooseParseError, parse, parse_sections

WORDS = st.sampled_from(
    [
        "SELECT",
        "INSERT",
        "INTO",
        "t",
        "VALUES",
        "(1,",
        "'a;b'",
        "x=1",
        "$$",
        "$body$",
        "NULL)",
        "BEGIN;",
        "END;",
        "'--'",
        '"col"',
        "a-b",
        "é",
        "1;2",
    ]
)
INDENT = st.sampled_from(["", "  ", "\t", "    "])
COMMENT = st.builds(lambda text: f"-- {text}", st.sampled_from(["note", "a; b;", "", "x --;"]))


@st.composite
def sql_line(draw: st.DrawFn, *, last: bool) -> str:
    """One SQL line; only the last line of a plain statement may end it."""
    words = draw(st.lists(WORDS, min_size=1, max_size=6))
    body = " ".join(words)
    if last:
        line = body + draw(st.sampled_from([";", " ;", ";  "]))
        if draw(st.booleans()):
            line += " -- " + draw(st.sampled_from(["done", "trailing; comment", ""]))
        return draw(INDENT) + line
    if body.endswith(";"):
        body += " x"  # keep inner lines from ending the statement
    if draw(st.booleans()):
        body += " -- inner; comment;"
    return draw(INDENT) + body


@dataclass
class Statement:
    lines: list[str]
    block: bool

    def expected(self) -> str:
        return "\n".join(self.lines).strip()


@st.composite
def statement(draw: st.DrawFn) -> Statement:
    block = draw(st.booleans())
    inner = draw(st.lists(sql_line(last=False), max_size=3))
    if block:
        # Inside a block anything goes, semicolons included; it must hold some SQL.
        lines = [*inner, draw(sql_line(last=True))]
        if draw(st.booleans()):
            lines.insert(draw(st.integers(0, len(lines) - 1)) + 1, draw(COMMENT))
        return Statement(lines, block=True)
    lines = [*inner, draw(sql_line(last=True))]
    if len(lines) > 1 and draw(st.booleans()):
        lines.insert(draw(st.integers(1, len(lines) - 1)), draw(COMMENT))  # kept comment
    return Statement(lines, block=False)


FILLER = st.lists(st.one_of(st.just(""), COMMENT), max_size=3)


@st.composite
def section(draw: st.DrawFn) -> tuple[list[str], list[Statement]]:
    out: list[str] = []
    statements = draw(st.lists(statement(), max_size=5))
    for stmt in statements:
        out += draw(FILLER)
        if stmt.block:
            out += ["-- +goose StatementBegin", *stmt.lines, "-- +goose StatementEnd"]
        else:
            out += stmt.lines
    out += draw(FILLER)
    return out, statements


@st.composite
def migration(draw: st.DrawFn) -> tuple[str, list[Statement], list[Statement], bool]:
    up_lines, up = draw(section())
    down_lines, down = draw(section())
    lines = [*draw(FILLER), "-- +goose Up", *up_lines]
    if down or draw(st.booleans()):
        lines += ["-- +goose Down", *down_lines]
    no_tx = draw(st.booleans())
    if no_tx:
        # NO TRANSACTION is valid on any line once Up has started, or before it.
        lines.insert(draw(st.integers(0, len(lines))), "-- +goose NO TRANSACTION")
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    text = newline.join(lines) + draw(st.sampled_from(["", newline]))
    return text, up, down, not no_tx


def without_comment_lines(statement: str) -> str:
    return "\n".join(line for line in statement.split("\n") if not line.strip().startswith("--"))


@settings(max_examples=300, deadline=None)
@given(migration())
def test_generated_files_round_trip(
    case: tuple[str, list[Statement], list[Statement], bool],
) -> None:
    text, up, down, use_tx = case
    parsed_up, parsed_down = parse_sections(text, env={})
    assert [without_comment_lines(s) for s in parsed_up.statements] == [
        without_comment_lines(s.expected()) for s in up
    ]
    assert [without_comment_lines(s) for s in parsed_down.statements] == [
        without_comment_lines(s.expected()) for s in down
    ]
    assert parsed_up.use_tx is parsed_down.use_tx is use_tx


@settings(max_examples=300, deadline=None)
@given(migration())
def test_statement_text_is_exact(case: tuple[str, list[Statement], list[Statement], bool]) -> None:
    # Comments that start a statement are dropped; everything after the first SQL line is kept.
    text, up, down, _ = case
    parsed_up, parsed_down = parse_sections(text, env={})

    def expected(stmt: Statement) -> str:
        lines = list(stmt.lines)
        while lines and lines[0].strip().startswith("--"):
            lines.pop(0)
        return "\n".join(lines).strip()

    assert parsed_up.statements == [expected(s) for s in up]
    assert parsed_down.statements == [expected(s) for s in down]


@settings(max_examples=200, deadline=None)
@given(migration())
def test_parse_matches_parse_sections(
    case: tuple[str, list[Statement], list[Statement], bool],
) -> None:
    text = case[0]
    up, down = parse_sections(text, env={})
    assert parse(text, "up", env={}) == up
    assert parse(text, "down", env={}) == down


GOOSEISH_LINE = st.one_of(
    st.sampled_from(
        [
            "-- +goose Up",
            "-- +goose Down",
            "-- +goose StatementBegin",
            "-- +goose StatementEnd",
            "-- +goose NO TRANSACTION",
            "-- +goose ENVSUB ON",
            "-- +goose ENVSUB OFF",
            " -- +goose Up",
            "-- +goose",
            "SELECT 1;",
            "SELECT $1, ${A:-x}, ${B?}, $$;",
            "SELECT '${A:1:2}' -- ${",
            "",
            "  ",
            "-- c",
            "\ufeff",
            "x\r",
        ]
    ),
    st.text(max_size=20),
)


@settings(max_examples=500, deadline=None)
@given(st.lists(GOOSEISH_LINE, max_size=12), st.sampled_from(["\n", "\r\n", "\r"]))
def test_arbitrary_text_parses_or_raises_parse_error(lines: list[str], newline: str) -> None:
    text = newline.join(lines)
    try:
        up, down = parse_sections(text, env={"A": "abc"})
    except GooseParseError as err:
        assert err.line is None or err.line >= 1
        assert str(err)
        return
    for stmt in [*up.statements, *down.statements]:
        assert stmt and stmt == stmt.strip(" \t\n")
