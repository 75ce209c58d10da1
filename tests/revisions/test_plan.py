"""Plans and refusals (llm_proxy.revisions.plan), from graphs and reconciled views."""

from __future__ import annotations

import pytest
from revision_specs import graph, view_of

from llm_proxy.errors import MigrateError
from llm_proxy.revisions import plan
from llm_proxy.revisions.graph import Graph, Node
from llm_proxy.revisions.reconcile import DatabaseView

LINEAR = "00001 00002 00003"
BETWEEN = "00001 00002 p<00002 00003<p"
BRANCH = "00001 00002 p<00001"
MERGED = "00001 a<00001 b<00001 m<a,b"
DEPENDS = "00001 00002 q<|00001"
# Goose numbers with gaps, a Python revision between, and a Python id made of digits.
TARGETS = "00001 00002 p<00002 00010<p py:4242<00010"

UNKNOWN_HEAD = "which no migration file defines: it was migrated by newer code"
UNKNOWN_CURRENT = "the database is at version 7, which no migration file defines"


def bare_view(**fields: object) -> DatabaseView:
    """A view with nothing applied, changed by `fields`."""
    values: dict[str, object] = {"applied": frozenset(), "alembic_heads": (), "goose_current": 0}
    values.update(fields)
    return DatabaseView(**values)  # type: ignore[arg-type]


# ------------------------------------------------------------ name_of


@pytest.mark.parametrize(
    ("revision", "expected"),
    [
        pytest.param("00001", "00001.sql", id="goose-file-name"),
        pytest.param("p", "p.py", id="python-file-name"),
        pytest.param("nameless", "nameless", id="no-name-falls-back-to-id"),
    ],
)
def test_name_of(revision: str, expected: str) -> None:
    built = Graph.build(
        [
            Node("00001", (), goose_version=1, name="00001.sql"),
            Node("p", ("00001",), name="p.py"),
            Node("nameless", ("p",)),
        ]
    )
    assert plan.name_of(built, revision) == expected


# ------------------------------------------------------------ resolve_target


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        pytest.param("0", None, id="zero-is-base"),
        pytest.param("00000", None, id="zero-padded-is-base"),
        pytest.param(" 0\n", None, id="zero-with-whitespace"),
        pytest.param("2", "00002", id="goose-number-unpadded"),
        pytest.param("00002", "00002", id="goose-number-as-written"),
        pytest.param("002", "00002", id="goose-number-other-padding"),
        pytest.param(" 00002 ", "00002", id="goose-number-with-whitespace"),
        pytest.param("10", "00010", id="goose-number-after-gap"),
        pytest.param("3", "00002", id="goose-number-in-gap-means-the-file-below"),
        pytest.param("11", "00010", id="goose-number-above-head-means-the-last-file"),
        pytest.param("+2", "00002", id="plus-sign-as-goose-reads-it"),
        pytest.param("p", "p", id="python-id"),
        pytest.param("\tp ", "p", id="python-id-with-whitespace"),
        pytest.param("4242", "4242", id="digit-python-id-not-a-goose-version"),
    ],
)
def test_resolve_target(target: str, expected: str | None) -> None:
    assert plan.resolve_target(graph(TARGETS), target) == expected


@pytest.mark.parametrize(
    ("target", "message"),
    [
        pytest.param("²", "no migration with version '²'", id="superscript-digit"),
        pytest.param("٣", "no migration with version '٣'", id="arabic-indic-digit"),
        pytest.param("1_0", "no migration with version '1_0'", id="underscore"),
        pytest.param(
            "9223372036854775808",
            "version '9223372036854775808' is out of range: goose versions are 64-bit",
            id="int64",
        ),
        pytest.param("q", "no migration with version 'q'", id="unknown-python-id"),
        pytest.param("", "no migration with version ''", id="empty"),
        pytest.param("-1", "no migration with version '-1'", id="negative"),
        pytest.param("2.0", "no migration with version '2.0'", id="decimal"),
        pytest.param("00002.sql", "no migration with version '00002.sql'", id="file-name"),
        pytest.param(" q ", "no migration with version ' q '", id="message-shows-input-as-given"),
    ],
)
def test_resolve_target_refuses(target: str, message: str) -> None:
    with pytest.raises(MigrateError) as raised:
        plan.resolve_target(graph(TARGETS), target)
    assert str(raised.value) == message


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        pytest.param("0", None, id="zero-is-base"),
        pytest.param("2", "00002", id="goose-number-unpadded"),
        pytest.param("p", "p", id="python-id"),
        pytest.param("3", MigrateError, id="goose-number-in-gap-names-no-file"),
        pytest.param("²", MigrateError, id="superscript-digit"),
    ],
)
def test_resolve_revision_needs_a_file(target: str, expected: object) -> None:
    """Where a VERSION must name a migration (--sql --from), no number stands for
    the file below it."""
    if expected is MigrateError:
        with pytest.raises(MigrateError, match="no migration with version"):
            plan.resolve_revision(graph(TARGETS), target)
    else:
        assert plan.resolve_revision(graph(TARGETS), target) == expected


# ------------------------------------------------------------ check_runnable, check_rollback


@pytest.mark.parametrize(
    ("view", "runnable", "rollback"),
    [
        pytest.param(bare_view(), None, None, id="empty-db"),
        pytest.param(
            bare_view(unknown_heads=("f00dcafe",), alembic_heads=("f00dcafe",)),
            "the database is at revision f00dcafe, " + UNKNOWN_HEAD,
            "the database is at revision f00dcafe, " + UNKNOWN_HEAD,
            id="unknown-alembic-head",
        ),
        pytest.param(
            bare_view(unknown_heads=("f00d", "beef")),
            "the database is at revision f00d, beef, which",
            "the database is at revision f00d, beef, which",
            id="two-unknown-alembic-heads",
        ),
        pytest.param(
            bare_view(goose_current=7, unknown_versions=(7,)),
            None,
            UNKNOWN_CURRENT + ": roll it back with the llm-proxy (or files) that applied it",
            id="current-goose-version-without-file",
        ),
        pytest.param(
            bare_view(goose_current=3, unknown_versions=(7,)),
            None,
            None,
            id="unknown-goose-version-not-current",
        ),
        pytest.param(
            bare_view(goose_current=7, unknown_versions=(7,), unknown_heads=("f00dcafe",)),
            "the database is at revision f00dcafe",
            "the database is at revision f00dcafe",
            id="unknown-head-reported-first",
        ),
    ],
)
def test_checks(view: DatabaseView, runnable: str | None, rollback: str | None) -> None:
    for check, message in ((plan.check_runnable, runnable), (plan.check_rollback, rollback)):
        if message is None:
            check(view)
        else:
            with pytest.raises(MigrateError) as raised:
                check(view)
            assert message in str(raised.value)


# ------------------------------------------------------------ plan_up


@pytest.mark.parametrize(
    ("spec", "goose", "alembic", "to", "allow_missing", "expected"),
    [
        pytest.param("", (), (), None, False, (None, []), id="empty-graph"),
        pytest.param(
            LINEAR, (), (), None, False, (None, ["00001", "00002", "00003"]), id="fresh-all"
        ),
        pytest.param(LINEAR, (), (), "2", False, ("00002", ["00001", "00002"]), id="fresh-to-2"),
        pytest.param(
            LINEAR, (1,), (), "00003", False, ("00003", ["00002", "00003"]), id="partial-to-head"
        ),
        pytest.param(LINEAR, (1, 2, 3), (), None, False, (None, []), id="up-to-date"),
        pytest.param(LINEAR, (1, 2), (), "1", False, ("00001", []), id="target-already-applied"),
        pytest.param(
            LINEAR, (1,), (), "9", False, ("00003", ["00002", "00003"]), id="to-past-head"
        ),
        pytest.param(
            "00010 00020 00030", (), (), "25", False, ("00020", ["00010", "00020"]), id="to-gap"
        ),
        pytest.param(LINEAR, (1, 3), (), "1", False, ("00001", []), id="missing-above-target"),
        pytest.param(
            "00001 00002 00003 00004 a<00001",
            (1, 2, 3),
            (),
            "00004",
            False,
            ("00004", ["00004"]),
            id="missing-off-the-targets-path-left-alone",
        ),
        pytest.param(
            BETWEEN,
            (),
            (),
            None,
            False,
            (None, ["00001", "00002", "p", "00003"]),
            id="between-fresh",
        ),
        pytest.param(
            BETWEEN, (), (), "p", False, ("p", ["00001", "00002", "p"]), id="between-to-python"
        ),
        pytest.param(
            BETWEEN, (1, 2), ("p",), None, False, (None, ["00003"]), id="between-after-python"
        ),
        pytest.param(
            BRANCH, (), (), None, False, (None, ["00001", "00002", "p"]), id="branch-all-heads"
        ),
        pytest.param(BRANCH, (), (), "p", False, ("p", ["00001", "p"]), id="branch-to-one-head"),
        pytest.param(
            MERGED, (1,), ("a",), "m", False, ("m", ["b", "m"]), id="merge-other-side-first"
        ),
        pytest.param(
            DEPENDS, (), (), "q", False, ("q", ["00001", "q"]), id="depends-on-brought-along"
        ),
        pytest.param(LINEAR, (1, 3), (), None, True, (None, ["00002"]), id="gap-allowed-fills-it"),
        pytest.param(BRANCH, (1, 2), (), None, True, (None, ["p"]), id="missing-python-allowed"),
    ],
)
def test_plan_up(
    spec: str,
    goose: tuple[int, ...],
    alembic: tuple[str, ...],
    to: str | None,
    allow_missing: bool,
    expected: tuple[str | None, list[str]],
) -> None:
    built = graph(spec)
    assert plan.plan_up(built, view_of(built, goose, alembic), to, allow_missing) == expected


@pytest.mark.parametrize(
    ("spec", "goose", "alembic", "to", "message"),
    [
        pytest.param(
            LINEAR,
            (1, 3),
            (),
            None,
            "found 1 missing migrations before current version 3: 00002.sql "
            "(use --allow-missing to apply them)",
            id="goose-gap",
        ),
        pytest.param(
            BRANCH,
            (1, 2),
            (),
            None,
            "found 1 missing migrations before current version 2: p.py (use",
            id="python-written-below-current",
        ),
        pytest.param(
            "00001 00002 00003 a<00001 b<00002",
            (1, 2, 3),
            (),
            None,
            "found 2 missing migrations before current version 3: a.py, b.py (use",
            id="two-missing-in-order",
        ),
        pytest.param(
            LINEAR,
            (1, 3),
            (),
            "9",
            "found 1 missing migrations before current version 3: 00002.sql",
            id="missing-below-a-target-past-head",
        ),
        pytest.param(
            LINEAR,
            (3, 1),
            (),
            None,
            "found 1 missing migrations before current version 3: 00002.sql",
            id="current-version-in-message-is-the-highest",
        ),
        pytest.param(
            LINEAR, (1,), (), "0", "no migration files found at or below version 0", id="to-zero"
        ),
        pytest.param(
            "00005 00006", (), (), "4", "no migration files found at or below version 4", id="low"
        ),
        pytest.param(
            LINEAR,
            (1,),
            ("f00dcafe",),
            "9",
            "the database is at revision f00dcafe, " + UNKNOWN_HEAD,
            id="unknown-head-before-target",
        ),
    ],
)
def test_plan_up_refuses(
    spec: str, goose: tuple[int, ...], alembic: tuple[str, ...], to: str | None, message: str
) -> None:
    built = graph(spec)
    with pytest.raises(MigrateError) as raised:
        plan.plan_up(built, view_of(built, goose, alembic), to, False)
    assert message in str(raised.value)


def test_plan_up_ignores_unknown_goose_versions() -> None:
    """A goose row with no file is not refused by `up` (only by a rollback from it)."""
    built = graph("00001 00008")
    assert plan.plan_up(built, view_of(built, (1, 7)), None, False) == (None, ["00008"])


# ------------------------------------------------------------ plan_down
# goose rolls back its current version: the newest applied row. view_of takes the
# goose versions in row order, so (1, 3, 2) is 00003 applied before 00002.


@pytest.mark.parametrize(
    ("spec", "goose", "alembic", "expected"),
    [
        pytest.param(LINEAR, (1, 2), (), "00002", id="goose-current"),
        pytest.param(LINEAR, (1,), (), "00001", id="first"),
        pytest.param(LINEAR, (1, 3, 2), (), "00002", id="out-of-order-row-is-current"),
        pytest.param(LINEAR, (1, 3), (), "00003", id="above-a-gap"),
        pytest.param(BETWEEN, (1, 2), ("p",), "p", id="python-built-on-current-first"),
        pytest.param(BETWEEN, (1, 2, 3), ("00003",), "00003", id="goose-above-python"),
        pytest.param("a b<a", (), ("b",), "b", id="python-only"),
        pytest.param(LINEAR, (1, 2, 3), ("00001",), "00003", id="goose-ahead-of-alembic"),
        pytest.param(BRANCH, (1, 2), ("00002", "p"), "00002", id="branch-goose-current-first"),
        pytest.param(BRANCH, (1,), ("p",), "p", id="branch-python-on-current"),
        pytest.param(MERGED, (1,), ("m",), "m", id="merge-head"),
    ],
)
def test_plan_down(
    spec: str, goose: tuple[int, ...], alembic: tuple[str, ...], expected: str
) -> None:
    built = graph(spec)
    assert plan.plan_down(built, view_of(built, goose, alembic)) == expected


@pytest.mark.parametrize(
    ("spec", "goose", "alembic", "message"),
    [
        pytest.param(
            LINEAR,
            (),
            (),
            "no migrations to roll back: the database is at version 0",
            id="empty-db",
        ),
        pytest.param(
            "00001 a<00001 b<00001",
            (1,),
            ("a", "b"),
            "several heads are applied (a, b); use down-to VERSION to choose",
            id="two-python-heads-on-current",
        ),
        pytest.param(
            LINEAR,
            (1, 2),
            ("f00dcafe",),
            "the database is at revision f00dcafe, " + UNKNOWN_HEAD,
            id="unknown-alembic-head",
        ),
        pytest.param(
            "00001 00002",
            (1, 2, 7),
            (),
            UNKNOWN_CURRENT + ": roll it back with the llm-proxy (or files) that applied it",
            id="current-goose-version-without-file",
        ),
    ],
)
def test_plan_down_refuses(
    spec: str, goose: tuple[int, ...], alembic: tuple[str, ...], message: str
) -> None:
    built = graph(spec)
    with pytest.raises(MigrateError) as raised:
        plan.plan_down(built, view_of(built, goose, alembic))
    assert message in str(raised.value)


# ------------------------------------------------------------ plan_down_to


@pytest.mark.parametrize(
    ("spec", "goose", "alembic", "target", "expected"),
    [
        pytest.param(LINEAR, (1, 2, 3), (), "00001", ["00003", "00002"], id="linear-to-1"),
        pytest.param(LINEAR, (1, 2, 3), (), None, ["00003", "00002", "00001"], id="linear-to-base"),
        pytest.param(LINEAR, (1, 2, 3), (), "00003", [], id="to-current"),
        pytest.param(LINEAR, (1,), (), "00003", [], id="target-not-yet-applied"),
        pytest.param(LINEAR, (), (), None, [], id="empty-db"),
        pytest.param(
            BETWEEN, (1, 2, 3), ("00003",), "00002", ["00003", "p"], id="between-to-goose"
        ),
        pytest.param(BETWEEN, (1, 2, 3), ("00003",), "p", ["00003"], id="between-to-python"),
        pytest.param(
            BRANCH, (1, 2), ("00002", "p"), "00001", ["00002", "p"], id="branch-both-sides"
        ),
        pytest.param(
            BRANCH, (1, 2), ("00002", "p"), "00002", [], id="branch-current-at-target-stops"
        ),
        pytest.param(BRANCH, (1, 2), ("00002", "p"), "p", ["00002"], id="branch-keeps-target-side"),
        pytest.param(MERGED, (1,), ("m",), "a", ["m", "b"], id="merge-to-one-side"),
        pytest.param(
            DEPENDS, (1, 2), ("q",), "00001", ["00002", "q"], id="depends-on-before-dependency"
        ),
        pytest.param(LINEAR, (1, 3), (), None, ["00003", "00001"], id="gap-to-base"),
        pytest.param(LINEAR, (1, 3), (), "00001", ["00003"], id="gap-to-1"),
        pytest.param(
            LINEAR, (1, 3, 2), (), None, ["00002", "00003", "00001"], id="rows-newest-first"
        ),
        pytest.param(LINEAR, (1, 3, 2), (), "00002", [], id="current-below-target-stops-at-once"),
        pytest.param(LINEAR, (1, 3, 2), (), "00001", ["00002", "00003"], id="out-of-order-to-1"),
    ],
)
def test_plan_down_to(
    spec: str,
    goose: tuple[int, ...],
    alembic: tuple[str, ...],
    target: str | None,
    expected: list[str],
) -> None:
    built = graph(spec)
    assert plan.plan_down_to(built, view_of(built, goose, alembic), target) == expected


@pytest.mark.parametrize(
    ("view", "message"),
    [
        pytest.param(
            bare_view(unknown_heads=("f00dcafe",)),
            "the database is at revision f00dcafe, " + UNKNOWN_HEAD,
            id="unknown-alembic-head",
        ),
        pytest.param(
            bare_view(goose_current=7, unknown_versions=(7,)),
            UNKNOWN_CURRENT,
            id="current-goose-version-without-file",
        ),
    ],
)
def test_plan_down_to_refuses(view: DatabaseView, message: str) -> None:
    with pytest.raises(MigrateError) as raised:
        plan.plan_down_to(graph(LINEAR), view, None)
    assert message in str(raised.value)


def test_plan_down_to_refuses_before_reaching_a_version_without_file() -> None:
    """Rows 1, 7, 2 with no file for 7: goose's down-to 1 would roll back 00002 and
    then fail on 7; the plan refuses before anything is rolled back."""
    built = graph("00001 00002")
    view = view_of(built, (1, 7, 2), (), current=2)
    assert plan.plan_down_to(built, view, "00002") == []
    with pytest.raises(MigrateError, match="rolling back reaches version 7, which no migration"):
        plan.plan_down_to(built, view, "00001")


# ------------------------------------------------------------ plan_reset


@pytest.mark.parametrize(
    ("spec", "goose", "alembic", "expected"),
    [
        pytest.param(LINEAR, (1, 3, 2), (), ["00003", "00002", "00001"], id="highest-first"),
        pytest.param(LINEAR, (1, 3), (), ["00003", "00001"], id="gap"),
        pytest.param(
            BETWEEN, (1, 2, 3), ("00003",), ["00003", "p", "00002", "00001"], id="python-between"
        ),
        pytest.param(BRANCH, (1, 2), ("00002", "p"), ["00002", "p", "00001"], id="branch"),
        pytest.param("a b<a", (), ("b",), ["b", "a"], id="python-only"),
        pytest.param(LINEAR, (), (), [], id="empty-db"),
    ],
)
def test_plan_reset(
    spec: str, goose: tuple[int, ...], alembic: tuple[str, ...], expected: list[str]
) -> None:
    built = graph(spec)
    assert plan.plan_reset(built, view_of(built, goose, alembic)) == expected


def test_plan_reset_refuses_an_applied_version_without_file() -> None:
    """goose's reset skips it and leaves it applied; we say so instead."""
    built = graph("00001 00002")
    with pytest.raises(MigrateError, match="reset would leave version 7, which no migration"):
        plan.plan_reset(built, view_of(built, (1, 7, 2), (), current=2))


# ------------------------------------------------------------ single_head


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param(LINEAR, "00003", id="linear"),
        pytest.param(BETWEEN, "00003", id="goose-on-top"),
        pytest.param("00001 00002 p<00002", "p", id="python-on-top"),
        pytest.param(MERGED, "m", id="merged"),
    ],
)
def test_single_head(spec: str, expected: str) -> None:
    assert plan.single_head(graph(spec)) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param(BRANCH, "several heads (00002, p): name the start with --from", id="branch"),
        pytest.param(DEPENDS, "several heads (00002, q): name", id="depends-on-leaves-two"),
    ],
)
def test_single_head_refuses(spec: str, message: str) -> None:
    with pytest.raises(MigrateError) as raised:
        plan.single_head(graph(spec))
    assert message in str(raised.value)
