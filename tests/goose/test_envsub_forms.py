"""Every ENVSUB form of the interpolation library goose uses (mfridman/interpolate), with
the output its parser and expander give.

What the library does, as its source reads:

- a name starts with a Unicode letter (unicode.IsLetter) and goes on with letters, numbers
  (unicode.IsNumber: Nd, Nl and No) or "_";
- operators: "}" (value), ":-" (default when unset or empty), "-" (default when unset),
  "?" (error when unset), ":" (substring); anything else after a name is "Expected an
  operator" - so ":+", "+", ":=", "=" and ":?" are errors (":+1" is the substring from 1);
- substring offsets and lengths go through strings.TrimSpace and strconv.Atoi (ASCII digits,
  an optional sign, int64 range) and count BYTES of the UTF-8 value;
- "$$" and "\\$" give "$", "\\\\" stays "\\\\", "$(" stays, a "$" at the end stays.
"""

from __future__ import annotations

import pytest

from llm_proxy.goose.envsub import EnvsubError, expand
from llm_proxy.goose.parser import GooseParseError, parse

ENV = {
    "A": "alpha",
    "EMPTY": "",
    "FZ_U": "éabcd",  # "é" is 2 bytes: C3 A9
    "BEACH": "x🏖y",  # the emoji is 4 bytes
    "X²": "squared",  # "²" is a number (No): a valid name character after the first
    "É": "accent",
    "X١": "arabic-indic one",  # Nd
}


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        # value
        ("$A", "alpha"),
        ("${A}", "alpha"),
        ("$UNSET|", "|"),
        ("${X²}", "squared"),
        ("$X²", "squared"),
        ("${É}", "accent"),
        ("${X١}", "arabic-indic one"),
        # defaults
        ("${A:-d}", "alpha"),
        ("${EMPTY:-d}", "d"),
        ("${UNSET:-d}", "d"),
        ("${A-d}", "alpha"),
        ("${EMPTY-d}", ""),
        ("${UNSET-d}", "d"),
        ("${UNSET:-}", ""),
        ("${UNSET-}", ""),
        ("${UNSET:-1}", "1"),  # ":-1" is a default, not a negative offset
        ("${UNSET:- x}", " x"),
        # required
        ("${A?msg}", "alpha"),
        ("${EMPTY?msg}", ""),
        # nesting
        ("${UNSET:-${A}}", "alpha"),
        ("${UNSET:-${ALSO:-${A}}}", "alpha"),
        ("${UNSET-$A!}", "alpha!"),
        ("${A:-${UNSET?not evaluated}}", "alpha"),
        # escapes and literals
        ("$$", "$"),
        ("$$A", "$A"),
        ("\\$A", "$A"),
        ("\\\\$A", "\\\\alpha"),
        ("\\x", "\\x"),
        ("end\\", "end\\"),
        ("5$", "5$"),
        ("$(cmd)", "$(cmd)"),
        ("${UNSET:-$(x)}", "$(x)"),
        ("${UNSET:-\\$A}", "$A"),
        ("${UNSET:-$$}", "$"),
        ("${UNSET:-\\}}", "\\}"),  # "\" is text, the first "}" closes the brace
        # substring: offsets and lengths in bytes
        ("${A:1}", "lpha"),
        ("${A:+1}", "lpha"),  # Atoi accepts a sign
        ("${A: 1 : 2 }", "lp"),
        ("${A:\xa01}", "lpha"),  # TrimSpace trims a no-break space
        ("${A: -2}", "ha"),
        ("${A:1:-1}", "lph"),
        ("${A:9}", ""),
        ("${A: -9:2}", "al"),
        ("${A:3:-4}", ""),
        ("${A:0:100}", "alpha"),
        ("${UNSET:1}", ""),
        ("${FZ_U:2}", "abcd"),
        ("${FZ_U:0:2}", "é"),
        ("${FZ_U: -4}", "abcd"),
        ("${FZ_U:2:-1}", "abc"),
        ("${FZ_U:0:-4}", "é"),
        ("${BEACH:1:4}", "🏖"),
        ("${BEACH:5}", "y"),
        ("${A:-9223372036854775808}", "alpha"),  # a default, whatever it reads like
        ("${A: -9223372036854775808}", "alpha"),
        ("${A:9223372036854775807}", ""),
    ],
)
def test_form(line: str, expected: str) -> None:
    assert expand(line, ENV) == expected


@pytest.mark.parametrize(
    "line",
    [
        # names: the first character must be a letter
        "${²X}",
        "$²",
        "${Ⅻ}",  # U+216B, a letter-like number (Nl), not a letter
        "${_A}",
        "$_A",
        "${1A}",
        "${}",
        "${A\u05bf}",  # a combining mark (Mn) ends the name; what follows is no operator
        # operators the library does not have
        "${A:+x}",
        "${A+x}",
        "${A:=x}",
        "${A=x}",
        "${A:?x}",
        "${A#x}",
        "${A%x}",
        # substring numbers strconv.Atoi refuses
        "${A:}",
        "${A:1:}",
        "${A:x}",
        "${A:1_0}",
        "${A:0x1}",
        "${A:١}",  # a non-ASCII digit
        "${A:\x1c1}",  # U+001C is whitespace to Python, not to Go
        "${A:9223372036854775808}",  # beyond int64
        "${A:1:-9223372036854775809}",
        "${A:1:2:3}",
        # unfinished
        "${A",
        "${A:-x",
        "x${",
        "${A:-$}",
    ],
)
def test_form_is_an_error(line: str) -> None:
    with pytest.raises(EnvsubError):
        expand(line, ENV)


@pytest.mark.parametrize(
    "line",
    ["${FZ_U:1}", "${FZ_U:0:1}", "${FZ_U: -5}", "${FZ_U:0:-5}", "${BEACH:2}", "${BEACH:0:3}"],
)
def test_substring_that_splits_a_character_is_refused(line: str) -> None:
    # goose would cut the UTF-8 bytes and send broken text to the database.
    with pytest.raises(EnvsubError) as info:
        expand(line, ENV)
    assert info.value.variable == line[2 : line.index(":")]
    assert "byte" in str(info.value)
    assert "é" not in str(info.value) and "🏖" not in str(info.value)  # no value in messages


def test_required_unset_is_an_error_with_its_message() -> None:
    with pytest.raises(EnvsubError) as info:
        expand("${UNSET?set it first}", ENV)
    assert info.value.variable == "UNSET"
    assert str(info.value).endswith("set it first")
    with pytest.raises(EnvsubError, match="not set$"):
        expand("${UNSET?}", ENV)


def test_split_character_error_names_file_line_and_variable() -> None:
    text = "-- +goose Up\n-- +goose ENVSUB ON\nSELECT 1;\nSELECT '${FZ_U:1}';\n"
    with pytest.raises(GooseParseError) as info:
        parse(text, env=ENV)
    assert info.value.line == 4
    assert "FZ_U" in info.value.rule
    assert str(info.value.with_path("m.sql")).startswith("m.sql:4: ENVSUB:")


def test_values_with_bytes_that_are_not_utf8_are_counted_as_bytes() -> None:
    # os.environ hands undecodable bytes over as surrogate escapes: one byte each.
    env = {"RAW": "é\udcffb"}  # bytes C3 A9 FF 62
    assert expand("${RAW:3}", env) == "b"
    with pytest.raises(EnvsubError, match="RAW"):
        expand("${RAW:2}", env)  # 0xFF alone is no UTF-8 text
