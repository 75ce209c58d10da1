"""ENVSUB expansion of single lines (goose v3 semantics)."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_proxy.goose.envsub import MASK, EnvsubError, _expand_full, expand, expand_masked

ENV = {"NAME": "alice", "EMPTY": "", "SCHEMA": "tenant", "DOLLAR": "$X", "ÉTÉ": "summer"}


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("no variables here", "no variables here"),
        ("$NAME", "alice"),
        ("${NAME}", "alice"),
        ("$NAME.table", "alice.table"),
        ("$NAME_x", ""),  # the name runs on through "_x"
        ("${NAME}_x", "alice_x"),
        ("$NAME1", ""),
        ("$UNSET", ""),
        ("${UNSET}", ""),
        ("${UNSET:-default}", "default"),
        ("${EMPTY:-default}", "default"),
        ("${NAME:-default}", "alice"),
        ("${UNSET-default}", "default"),
        ("${EMPTY-default}", ""),
        ("${NAME-default}", "alice"),
        ("${UNSET:-}", ""),
        ("${UNSET-}", ""),
        ("${UNSET:-a b: c-d}", "a b: c-d"),
        ("${UNSET:-${NAME}}", "alice"),
        ("${UNSET:-${ALSO_UNSET:-deep}}", "deep"),
        ("${UNSET:-$NAME!}", "alice!"),
        ("${NAME?must be set}", "alice"),
        ("${EMPTY?must be set}", ""),
        ("${SCHEMA:1}", "enant"),
        ("${SCHEMA:1:3}", "ena"),
        ("${SCHEMA: -2}", "nt"),
        ("${SCHEMA:2:-1}", "nan"),
        ("${SCHEMA:10}", ""),
        ("${SCHEMA: -10:2}", "te"),
        ("${SCHEMA:0:100}", "tenant"),
        ("${SCHEMA:3:-5}", ""),
        ("${UNSET:0:2}", ""),
        ("$$", "$"),
        ("$$NAME", "$NAME"),
        ("\\$NAME", "$NAME"),
        ("\\\\$NAME", "\\\\alice"),
        ("\\n $NAME", "\\n alice"),
        ("$(date)", "$(date)"),
        ("cost: 5$", "cost: 5$"),
        ("$", "$"),
        ("$DOLLAR", "$X"),  # values are not expanded again
        ("$ÉTÉ", "summer"),
        ("}{ $NAME }", "}{ alice }"),
        ("DO $$ BEGIN END $$;", "DO $ BEGIN END $;"),
        ("'${NAME}' || '${SCHEMA}'", "'alice' || 'tenant'"),
    ],
)
def test_expand(line: str, expected: str) -> None:
    assert expand(line, ENV) == expected


def test_no_dollar_returns_same_object() -> None:
    line = "INSERT INTO t VALUES (1, 'a\\b');"
    assert expand(line, ENV) is line


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("SELECT $1;", "'$' at column 8 is not followed by a variable name"),
        ("$ 5", "'$' at column 1 is not followed by a variable name"),
        ("$_private", "not followed by a variable name"),
        ("${1}", "'${' at column 1 is not followed by a variable name"),
        ("${}", "'${' at column 1 is not followed by a variable name"),
        ("${NAME", "'${NAME' at column 1 is missing its closing '}'"),
        ("${NAME:-x", "missing its closing '}'"),
        ("${NAME x}", "unexpected ' ' after '${NAME'"),
        ("${NAME+x}", "unexpected '+' after '${NAME'"),
        ("${NAME:?x}", "invalid substring offset '?x'"),
        ("${NAME:1:x}", "invalid substring length 'x'"),
        ("${NAME:-$}", "not followed by a variable name"),
    ],
)
def test_syntax_errors(line: str, message: str) -> None:
    with pytest.raises(EnvsubError) as info:
        expand(line, ENV)
    assert message in str(info.value)


def test_required_variable_error() -> None:
    with pytest.raises(EnvsubError) as info:
        expand("CREATE SCHEMA ${TENANT?set TENANT first};", ENV)
    assert info.value.variable == "TENANT"
    assert str(info.value) == "required variable TENANT is not set: set TENANT first"


def test_required_message_is_expanded_and_defaults() -> None:
    with pytest.raises(EnvsubError, match="TENANT is not set: ask alice"):
        expand("${TENANT?ask $NAME}", ENV)
    with pytest.raises(EnvsubError, match="TENANT is not set: not set$"):
        expand("${TENANT?}", ENV)


def test_unused_default_is_not_evaluated() -> None:
    # NAME is set, so the default (which would fail) is never evaluated.
    assert expand("${NAME:-${TENANT?boom}}", ENV) == "alice"
    assert expand("${NAME-${TENANT?boom}}", ENV) == "alice"
    with pytest.raises(EnvsubError, match="TENANT"):
        expand("${UNSET:-${TENANT?boom}}", ENV)


def test_unused_default_is_still_checked_for_syntax() -> None:
    with pytest.raises(EnvsubError, match="not followed by a variable name"):
        expand("${NAME:-$1}", ENV)


def test_syntax_error_wins_over_unset_required_variable() -> None:
    # goose parses the whole line before evaluating it.
    with pytest.raises(EnvsubError) as info:
        expand("${TENANT?missing} $1", ENV)
    assert info.value.variable is None
    assert "column 19" in str(info.value)


def test_first_required_variable_is_reported() -> None:
    with pytest.raises(EnvsubError) as info:
        expand("${A?first} ${B?second}", {})
    assert info.value.variable == "A"


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    line = "${U:-" * 5000 + "x" + "}" * 5000
    with pytest.raises(EnvsubError, match="nested too deeply"):
        expand(line, {})


def test_error_pickles() -> None:
    err = EnvsubError("required variable X is not set: not set", variable="X")
    restored = pickle.loads(pickle.dumps(err))
    assert (str(restored), restored.variable) == (str(err), "X")


def test_long_line_is_linear() -> None:
    line = "$NAME," * 200_000
    assert expand(line, ENV) == "alice," * 200_000


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet="$${}\\AB_1:-? x", max_size=24))
def test_fast_path_agrees_with_full_grammar(line: str) -> None:
    env = {"A": "a", "B": ""}
    try:
        pieces = _expand_full(line, env)
        text = "".join(piece for piece, _ in pieces)
        masked = "".join(MASK if secret and piece else piece for piece, secret in pieces)
        expected: tuple[str, str] | tuple[str, str | None] = (text, masked)
    except EnvsubError as err:
        expected = (str(err), err.variable)
    try:
        expansion = expand_masked(line, env)
        actual: tuple[str, str] | tuple[str, str | None] = (expansion.text, expansion.masked)
        assert expand(line, env) == expansion.text
    except EnvsubError as err:
        actual = (str(err), err.variable)
    assert actual == expected
