"""Random sequences of stock `alembic` commands (upgrade, downgrade, stamp, with
relative and absolute targets, --purge) and `llm-proxy migrate` commands (up,
down, up-to, stamp) on one SQLite database. After every step goose_db_version
holds the versions tests/goose_model.py's model holds, in id order,
alembic_version agrees, and every migration ran exactly when the model ran it
(the goose files log each run, so a migration run twice shows)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from goose_model import GooseModel
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from two_doors import Doors, open_doors

FILES = (1, 2, 3, 4, 5)
TOP = max(FILES)


@dataclass(frozen=True)
class Step:
    """One command, and what the model says it does (False: it must fail and
    change nothing)."""

    door: str  # "alembic" or "llm-proxy"
    argv: tuple[str, ...]
    apply: Callable[[GooseModel], bool]

    def __str__(self) -> str:
        return f"{self.door} {' '.join(self.argv)}"


def _version(target: str, current: int) -> int:
    """An Alembic target as a goose version, from `current`."""
    if target in ("head", "heads"):
        return TOP
    if target == "base":
        return 0
    if target[0] in "+-":
        return current + int(target)
    return int(target)


def upgrade(target: str) -> Step:
    def apply(model: GooseModel) -> bool:
        current = model.current()
        version = _version(target, current)
        if version > TOP:  # "+k didn't produce k migrations"
            return False
        model.up_to(version)  # an older target is no step at all, as in Alembic
        return True

    return Step("alembic", ("upgrade", target), apply)


def downgrade(target: str) -> Step:
    def apply(model: GooseModel) -> bool:
        current = model.current()
        version = _version(target, current)
        if version < 0 or version > current:  # not a valid downgrade target
            return False
        model.down_to(version)
        return True

    return Step("alembic", ("downgrade", target), apply)


def stamp(door: str, target: str, purge: bool) -> Step:
    def apply(model: GooseModel) -> bool:
        model.stamp(_version(target, model.current()))
        return True

    command = ("stamp", *(("--purge",) if purge else ()), target)
    return Step(door, command, apply)


def up() -> Step:
    def apply(model: GooseModel) -> bool:
        model.up()
        return True

    return Step("llm-proxy", ("up",), apply)


def up_to(version: int) -> Step:
    def apply(model: GooseModel) -> bool:
        model.up_to(version)
        return True

    return Step("llm-proxy", ("up-to", str(version)), apply)


def down() -> Step:
    def apply(model: GooseModel) -> bool:
        if model.current() == 0:  # "no migrations to roll back"
            return False
        model.down()
        return True

    return Step("llm-proxy", ("down",), apply)


REVISIONS = [f"{v:05d}" for v in FILES]
STEPS = st.one_of(
    st.sampled_from(["head", "heads", "+1", "+2", *REVISIONS]).map(upgrade),
    st.sampled_from(["-1", "-2", "base", *REVISIONS]).map(downgrade),
    st.builds(
        stamp,
        st.just("alembic"),
        st.sampled_from(["head", "base", *REVISIONS]),
        st.booleans(),
    ),
    st.builds(stamp, st.just("llm-proxy"), st.sampled_from(["0", *map(str, FILES)]), st.booleans()),
    st.just(up()),
    st.just(down()),
    st.sampled_from(FILES).map(up_to),
)


@settings(
    max_examples=100,
    deadline=None,
    # Each example makes its own project and database under tmp_path; the
    # fixtures only point the working directory and environment at them.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(steps=st.lists(STEPS, min_size=1, max_size=10))
def test_random_commands_through_both_doors_keep_goose_rules(
    steps: list[Step],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    example = Path(tempfile.mkdtemp(dir=tmp_path))
    doors = open_doors(
        "sqlite", tmp_path=example, monkeypatch=monkeypatch, request=request, versions=TOP
    )
    model = GooseModel(FILES)
    for number, step in enumerate(steps, start=1):
        before = (doors.database.goose_versions(), doors.database.alembic_heads())
        expected_ok = step.apply(model)
        outcome = run(doors, step)
        trail = f"step {number}: {step} -> {outcome}"
        assert outcome.ok == expected_ok, trail
        if not expected_ok:
            assert (doors.database.goose_versions(), doors.database.alembic_heads()) == before
            continue
        assert doors.database.goose_versions() == model.versions_by_id, trail
        current = model.current()
        assert doors.database.alembic_heads() == ([f"{current:05d}"] if current else []), trail
        assert doors.database.ran() == model.ran, trail


def run(doors: Doors, step: Step):  # type: ignore[no-untyped-def]
    return doors.alembic(*step.argv) if step.door == "alembic" else doors.llm_proxy(*step.argv)
