"""Golden files: tests/goose/corpus/<case>.sql with <case>.expected.json next to it.

Expected JSON: {"up": [...], "down": [...], "use_tx": bool} for a valid file, or
{"error": {"line": int | null, "contains": str}} for a file goose rejects; an optional
"env" object is the ENVSUB environment (default: empty), "note" says why the case exists.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from llm_proxy.goose import GooseParseError, parse, parse_sections

CORPUS = Path(__file__).parent / "corpus"
CASES = sorted(p.name[: -len(".sql")] for p in CORPUS.glob("*.sql"))


def _load(case: str) -> tuple[str, dict[str, Any]]:
    # Bytes, not read_text(): universal newlines would hide the CRLF cases.
    text = (CORPUS / f"{case}.sql").read_bytes().decode("utf-8")
    expected = json.loads((CORPUS / f"{case}.expected.json").read_text(encoding="utf-8"))
    return text, expected


def test_corpus_is_complete() -> None:
    expectations = sorted(p.name[: -len(".expected.json")] for p in CORPUS.glob("*.expected.json"))
    assert expectations == CASES
    assert len(CASES) >= 40
    # The line-ending cases only test something if the bytes survived checkout.
    assert b"\r\n" in (CORPUS / "crlf_line_endings.sql").read_bytes()
    assert (CORPUS / "bom_is_ignored.sql").read_bytes().startswith(b"\xef\xbb\xbf")


@pytest.mark.parametrize("case", CASES)
def test_corpus_case(case: str) -> None:
    text, expected = _load(case)
    env = expected.get("env", {})
    if "error" in expected:
        want = expected["error"]
        for direction in ("up", "down"):
            with pytest.raises(GooseParseError) as info:
                parse(text, direction, env=env)
            assert info.value.line == want["line"], str(info.value)
            assert want["contains"] in info.value.rule
            prefix = "" if want["line"] is None else f"line {want['line']}: "
            assert str(info.value) == prefix + info.value.rule
        return
    up, down = parse_sections(text, env=env)
    assert up.statements == expected["up"]
    assert down.statements == expected["down"]
    assert up.use_tx is down.use_tx is expected["use_tx"]
    assert parse(text, "up", env=env) == up
    assert parse(text, "down", env=env) == down
