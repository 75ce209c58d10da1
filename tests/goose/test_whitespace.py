"""Unicode whitespace in annotation and blank lines, one case per code point.

goose trims lines with Go's strings.TrimSpace (unicode.IsSpace) and splits words with
bufio.ScanWords (the same set). Its annotation check refuses only a line that starts with
a space or a tab; any other leading space is trimmed away like a trailing one.
"""

from __future__ import annotations

import pytest

from llm_proxy.goose.parser import GooseParseError, parse

# Go's unicode.IsSpace, written out (not imported from the code under test). "\n" is
# left out: it ends a line before the parser sees it.
GO_SPACES = [
    "\t",
    "\v",
    "\f",
    "\r",
    " ",
    "\x85",
    "\xa0",
    "\u1680",
    *(chr(cp) for cp in range(0x2000, 0x200B)),
    "\u2028",
    "\u2029",
    "\u202f",
    "\u205f",
    "\u3000",
]
# goose's extractAnnotation: `HasPrefix(line, " ") || HasPrefix(line, "\t")` is an error.
REFUSED_LEADING = {" ", "\t"}


def _ids(spaces: list[str]) -> list[str]:
    return [f"U+{ord(space):04X}" for space in spaces]


@pytest.mark.parametrize("space", GO_SPACES, ids=_ids(GO_SPACES))
def test_leading_space_before_an_annotation(space: str) -> None:
    text = f"{space}-- +goose Up\nSELECT 1;\n{space}-- +goose Down\nSELECT 2;\n"
    if space in REFUSED_LEADING:
        with pytest.raises(GooseParseError, match="column 1"):
            parse(text)
        return
    assert parse(text, "up").statements == ["SELECT 1;"]
    assert parse(text, "down").statements == ["SELECT 2;"]


@pytest.mark.parametrize("space", GO_SPACES, ids=_ids(GO_SPACES))
def test_trailing_space_after_an_annotation(space: str) -> None:
    text = (
        f"-- +goose Up{space}\n-- +goose StatementBegin{space}\nSELECT 1;\n"
        f"-- +goose StatementEnd{space}\n-- +goose Down{space}\nSELECT 2;\n"
    )
    assert parse(text, "up").statements == ["SELECT 1;"]
    assert parse(text, "down").statements == ["SELECT 2;"]


@pytest.mark.parametrize("space", GO_SPACES, ids=_ids(GO_SPACES))
def test_space_inside_an_annotation_word_gap(space: str) -> None:
    # The text between "--", "+goose" and the command is trimmed, whatever the space.
    text = f"--{space}+goose{space}Up\nSELECT 1;\n"
    assert parse(text).statements == ["SELECT 1;"]


@pytest.mark.parametrize("space", GO_SPACES, ids=_ids(GO_SPACES))
def test_space_only_lines(space: str) -> None:
    # Before Up: skipped. Between statements: a line that is not "" starts the next
    # statement, which is trimmed. After a statement's ';': still the end of it.
    text = (
        f"{space}\n-- +goose Up\nSELECT 1;{space}\n{space * 2}\nSELECT 2;\n"
        f"{space}-- a comment before a statement\nSELECT 3;\n"
    )
    assert parse(text).statements == ["SELECT 1;", "SELECT 2;", "SELECT 3;"]


@pytest.mark.parametrize("space", GO_SPACES, ids=_ids(GO_SPACES))
def test_space_only_line_then_comment_is_unfinished(space: str) -> None:
    # goose keeps the comment after a whitespace-only line as an unfinished statement.
    text = f"-- +goose Up\n{space}\n-- c\n"
    if space == "\r":  # "\r\n" ends a line: goose's scanner drops the CR, the line is empty
        assert parse(text).statements == []
        return
    with pytest.raises(GooseParseError, match="holds only whitespace"):
        parse(text)


@pytest.mark.parametrize("char", ["\x1c", "\x1d", "\x1e", "\x1f", "\u200b", "\ufeff"])
def test_python_only_or_no_space_is_not_trimmed_before_an_annotation(char: str) -> None:
    # Not unicode.IsSpace in Go: once trimmed, the line does not start with "--", so it is
    # no annotation but SQL, and the statement runs on to the next ';'.
    text = f"-- +goose Up\nSELECT 1;\n{char}-- +goose Down\nSELECT 2;\n"
    up = parse(text)
    assert up.statements == ["SELECT 1;", f"{char}-- +goose Down\nSELECT 2;"]
    assert parse(text, "down").statements == []
