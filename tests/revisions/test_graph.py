"""The revision graph (llm_proxy.revisions.graph), table by table."""

from __future__ import annotations

import pytest
from revision_specs import graph, ids, nodes

from llm_proxy.errors import StateConflict
from llm_proxy.revisions.graph import Graph, Node

# A graph with a bit of everything, used by the query tables below:
#
#   00001 -> 00002 -> p -> q -> 00003 -> 00004 -> m
#                \                              /
#                 b ---------------------------+
#   d: no parent, depends_on 00001 and b
MIXED = "00001 00002 p<00002 q<p 00003<q 00004 b<00002 m<00004,b d<|00001,b"
MIXED_ORDER = ids("00001 00002 b d p q 00003 00004 m")


# ------------------------------------------------------------ the spec helper


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param(
            "00001 00002",
            [
                Node("00001", (), goose_version=1, name="00001.sql"),
                Node("00002", ("00001",), goose_version=2, name="00002.sql"),
            ],
            id="goose-follows-previous-goose",
        ),
        pytest.param(
            "00001 p<00001 00002<p,00001",
            [
                Node("00001", (), goose_version=1, name="00001.sql"),
                Node("p", ("00001",), name="p.py"),
                Node("00002", ("p", "00001"), goose_version=2, name="00002.sql"),
            ],
            id="explicit-parents",
        ),
        pytest.param(
            "00001 00002< a b<|a,00001 py:42<b",
            [
                Node("00001", (), goose_version=1, name="00001.sql"),
                Node("00002", (), goose_version=2, name="00002.sql"),
                Node("a", (), name="a.py"),
                Node("b", (), ("a", "00001"), name="b.py"),
                Node("42", ("b",), name="42.py"),
            ],
            id="no-parents-dependencies-digit-python-id",
        ),
    ],
)
def test_spec_helper_builds_the_nodes_described(spec: str, expected: list[Node]) -> None:
    assert nodes(spec) == expected


# ------------------------------------------------------------ build: the order


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param("", (), id="empty"),
        pytest.param("00001", ids("00001"), id="single-goose"),
        pytest.param("00001 00002 00003", ids("00001 00002 00003"), id="linear-goose"),
        pytest.param(
            "00003<00002 00002<00001 00001<",
            ids("00001 00002 00003"),
            id="goose-listed-backwards",
        ),
        pytest.param(
            "00001 00002 00010 20240101120000",
            ids("00001 00002 00010 20240101120000"),
            id="goose-with-numbering-gaps-and-timestamp",
        ),
        pytest.param(
            "00001 00002 p<00002 00003<p 00004",
            ids("00001 00002 p 00003 00004"),
            id="python-between-goose-files",
        ),
        pytest.param("p 00001<p 00002", ids("p 00001 00002"), id="python-root-below-goose"),
        pytest.param(
            "00001 00002 p<00001",
            ids("00001 00002 p"),
            id="tie-goose-before-python",
        ),
        pytest.param(
            "00001 zeta<00001 alpha<00001 mid<00001",
            ids("00001 alpha mid zeta"),
            id="tie-python-by-id",
        ),
        pytest.param(
            "00001 b<00001 a<00001 m<a,b 00002<m",
            ids("00001 a b m 00002"),
            id="branch-and-merge",
        ),
        pytest.param("z y<|z", ids("z y"), id="depends-on-orders-before-id"),
        pytest.param(
            "00001 q<|00002 00002",
            ids("00001 00002 q"),
            id="depends-on-goose-file",
        ),
        pytest.param("00001 p<00001,00001", ids("00001 p"), id="repeated-parent"),
        pytest.param(
            "00001 p<00001|00001",
            ids("00001 p"),
            id="parent-also-a-dependency",
        ),
        pytest.param(MIXED, MIXED_ORDER, id="mixed"),
    ],
)
@pytest.mark.parametrize("reverse", [False, True], ids=["as-written", "reversed-input"])
def test_order_is_topological_goose_first_then_by_id(
    spec: str, expected: tuple[str, ...], reverse: bool
) -> None:
    given = nodes(spec)
    built = Graph.build(reversed(given) if reverse else given)
    assert built.order == expected
    assert set(built.nodes) == set(expected)


# ------------------------------------------------------------ build: refusals


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param(
            "00001 00002 00003 py:00003<00002",
            "revision id '00003' is used twice: 00003.sql and 00003.py",
            id="python-id-equals-goose-version",
        ),
        pytest.param(
            "00001 a<00001 a<00001",
            "revision id 'a' is used twice: a.py and a.py",
            id="python-id-twice",
        ),
        pytest.param(
            "a<ghost a",
            "revision id 'a' is used twice",
            id="duplicate-reported-before-unknown-parent",
        ),
        pytest.param(
            "00001 00002<nowhere",
            "00002.sql: '-- llm-proxy: after nowhere' names no known revision",
            id="after-line-names-unknown",
        ),
        pytest.param(
            "00001 p<00042",
            "p.py: down_revision/depends_on '00042' names no known revision",
            id="down-revision-names-unknown",
        ),
        pytest.param(
            "00001 p<00001|ghost",
            "p.py: down_revision/depends_on 'ghost' names no known revision",
            id="depends-on-names-unknown",
        ),
        pytest.param(
            "a<b b<a c<ghost",
            "c.py: down_revision/depends_on 'ghost' names no known revision",
            id="unknown-parent-reported-before-cycle",
        ),
        pytest.param("a<a", "revision graph has a cycle through a", id="self-parent"),
        pytest.param("a<b b<a", "revision graph has a cycle through a, b", id="two-cycle"),
        pytest.param(
            "b<a a<b",
            "revision graph has a cycle through a, b",
            id="two-cycle-named-sorted",
        ),
        pytest.param(
            "a<|b b<a",
            "revision graph has a cycle through a, b",
            id="cycle-through-depends-on",
        ),
        pytest.param(
            "00001<00002 00002<00001",
            "revision graph has a cycle through 00001, 00002",
            id="goose-cycle",
        ),
        pytest.param(
            "00001 00002 00003<00001",
            "00003.sql: '-- llm-proxy: after 00001' leaves out 00002.sql: "
            "a goose file must come after the goose file before it",
            id="after-line-skips-previous-goose",
        ),
        pytest.param(
            "00001 00002 p<00001 00003<p",
            "00003.sql: '-- llm-proxy: after p' leaves out 00002.sql",
            id="after-python-on-older-goose",
        ),
        pytest.param(
            "00001 00002 00003 p<00001 00004<p,00002",
            "00004.sql: '-- llm-proxy: after p, 00002' leaves out 00003.sql",
            id="merge-missing-previous-goose",
        ),
        pytest.param(
            "00001 00003<00001 00002<00003",
            "00003.sql: '-- llm-proxy: after 00001' leaves out 00002.sql",
            id="goose-versions-against-graph-order",
        ),
        pytest.param(
            "00001 00002<",
            "leaves out 00001.sql",
            id="later-goose-without-parents",
        ),
        pytest.param(
            f"00001 {'p' * 33}<00001",
            f"{'p' * 33}.py: revision id '{'p' * 33}' is 33 characters; alembic_version "
            "holds at most 32",
            id="id-too-long-for-alembic-version",
        ),
    ],
)
def test_build_refuses_broken_graphs(spec: str, message: str) -> None:
    with pytest.raises(StateConflict) as raised:
        graph(spec)
    assert message in str(raised.value)


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param("00001 p<00001 q<p 00002<q", id="goose-after-python-chain"),
        pytest.param("00001 00002 p<00001 00003<00002,p", id="goose-merge-naming-previous"),
        pytest.param("00001 p<|00001 00002<p", id="previous-goose-reached-by-depends-on"),
        pytest.param("p 00001<p 00002", id="first-goose-after-python"),
        pytest.param("00001 00005 00100", id="version-numbers-with-gaps"),
        pytest.param(f"00001 {'p' * 32}<00001", id="id-of-32-characters-fits"),
        pytest.param("00001 00002 p<2 00003<p", id="goose-named-by-another-padding"),
    ],
)
def test_goose_order_rule_accepts(spec: str) -> None:
    built = graph(spec)
    goose_in_order = [n.revision for n in built.goose_revisions()]
    assert goose_in_order == sorted(goose_in_order, key=int)


# ------------------------------------------------------------ ancestors, descendants


@pytest.mark.parametrize(
    ("revisions", "include_self", "expected"),
    [
        pytest.param(("00001",), True, {"00001"}, id="root-self"),
        pytest.param(("00001",), False, set(), id="root-without-self"),
        pytest.param((), True, set(), id="nothing"),
        pytest.param(("00003",), True, {"00003", "q", "p", "00002", "00001"}, id="through-python"),
        pytest.param(("00003",), False, {"q", "p", "00002", "00001"}, id="without-self"),
        pytest.param(
            ("m",),
            True,
            {"m", "00004", "00003", "q", "p", "b", "00002", "00001"},
            id="merge-both-sides",
        ),
        pytest.param(("d",), True, {"d", "00001", "b", "00002"}, id="follows-depends-on"),
        pytest.param(("d",), False, {"00001", "b", "00002"}, id="depends-on-without-self"),
        pytest.param(
            ("00003", "b"),
            False,
            {"q", "p", "00002", "00001"},
            id="two-starts-without-self",
        ),
        pytest.param(
            ("00004", "00003"),
            False,
            {"00003", "q", "p", "00002", "00001"},
            id="start-below-other-start-kept",
        ),
    ],
)
def test_ancestors(revisions: tuple[str, ...], include_self: bool, expected: set[str]) -> None:
    assert graph(MIXED).ancestors(revisions, include_self=include_self) == expected


def test_ancestors_include_self_by_default() -> None:
    assert graph(MIXED).ancestors(["p"]) == {"p", "00002", "00001"}


@pytest.mark.parametrize(
    ("revisions", "expected"),
    [
        pytest.param((), set(), id="nothing"),
        pytest.param(("m",), set(), id="head"),
        pytest.param(("00004",), {"m"}, id="one-step"),
        pytest.param(("b",), {"m", "d"}, id="merge-and-dependent"),
        pytest.param(
            ("00002",),
            {"p", "q", "00003", "00004", "b", "m", "d"},
            id="everything-above",
        ),
        pytest.param(
            ("00001",),
            {"00002", "p", "q", "00003", "00004", "b", "m", "d"},
            id="from-root",
        ),
        pytest.param(
            ("p", "00004"),
            {"q", "00003", "00004", "m"},
            id="start-above-other-start-included",
        ),
    ],
)
def test_descendants(revisions: tuple[str, ...], expected: set[str]) -> None:
    assert graph(MIXED).descendants(revisions) == expected


# ------------------------------------------------------------ heads


@pytest.mark.parametrize(
    ("applied", "expected"),
    [
        pytest.param("", (), id="none"),
        pytest.param("00001 00002", ("00002",), id="linear-prefix"),
        pytest.param("00002 00001 p q", ("q",), id="python-tip"),
        pytest.param("00001 00002 b p", ("b", "p"), id="two-branches-in-order"),
        pytest.param("00001 00002 b d", ("b", "d"), id="depends-on-does-not-cover"),
        pytest.param("00001 00003", ("00001", "00003"), id="gap-leaves-two"),
        pytest.param(
            "00001 00002 b d p q 00003 00004 m",
            ("d", "m"),
            id="everything",
        ),
        pytest.param(
            "00001 00002 b p q 00003 00004 m",
            ("m",),
            id="everything-but-dependent",
        ),
    ],
)
def test_heads_of(applied: str, expected: tuple[str, ...]) -> None:
    assert graph(MIXED).heads_of(set(applied.split())) == expected


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param("", (), id="empty"),
        pytest.param("00001 00002 00003", ("00003",), id="linear"),
        pytest.param("00001 00002 p<00002", ("p",), id="python-on-top"),
        pytest.param("00001 00002 p<00001", ("00002", "p"), id="branch"),
        pytest.param("00001 a<00001 b<00001 m<a,b", ("m",), id="merged"),
        pytest.param("00001 q<|00001", ("00001", "q"), id="depends-on-only"),
        pytest.param(MIXED, ("d", "m"), id="mixed"),
    ],
)
def test_heads(spec: str, expected: tuple[str, ...]) -> None:
    assert graph(spec).heads == expected


# ------------------------------------------------------------ newest goose below


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param("", {}, id="empty"),
        pytest.param(
            "00001 00002 00003",
            {"00001": 0, "00002": 1, "00003": 2},
            id="linear-goose-counts-parents-only",
        ),
        pytest.param(
            "p 00001<p q<00001",
            {"p": 0, "00001": 0, "q": 1},
            id="python-root-is-zero",
        ),
        pytest.param(
            "00001 00005 p<00005 q<p",
            {"00001": 0, "00005": 1, "p": 5, "q": 5},
            id="carried-up-python-chain",
        ),
        pytest.param(
            "00001 00002 r<|00002",
            {"00001": 0, "00002": 1, "r": 2},
            id="through-depends-on",
        ),
        pytest.param(
            MIXED,
            {
                "00001": 0,
                "00002": 1,
                "b": 2,
                "d": 2,
                "p": 2,
                "q": 2,
                "00003": 2,
                "00004": 3,
                "m": 4,
            },
            id="mixed-merge-takes-highest",
        ),
    ],
)
def test_newest_goose_below(spec: str, expected: dict[str, int]) -> None:
    assert graph(spec).newest_goose_below() == expected


# ------------------------------------------------------------ python tips


@pytest.mark.parametrize(
    ("spec", "revision", "expected"),
    [
        pytest.param("00001", "00001", ("00001",), id="lone-goose"),
        pytest.param("00001 00002", "00001", ("00001",), id="only-goose-grows"),
        pytest.param("00001 p<00001 q<p", "00001", ("q",), id="python-chain"),
        pytest.param("00001 p<00001 q<p", "p", ("q",), id="from-python-revision"),
        pytest.param("00001 p<00001 q<p", "q", ("q",), id="from-tip-itself"),
        pytest.param("00001 b<00001 a<00001", "00001", ("a", "b"), id="two-branches"),
        pytest.param("00001 a<00001 b<00001 m<a,b", "00001", ("m",), id="merged-branches"),
        pytest.param(
            "00001 p<00001 00002<p q<00002",
            "00001",
            ("p",),
            id="stops-at-goose-file",
        ),
        pytest.param(
            "00001 00002 p<00001 q<00002",
            "00001",
            ("p",),
            id="other-goose-branch-ignored",
        ),
        pytest.param("00001 p<|00001", "00001", ("00001",), id="depends-on-is-not-growth"),
        pytest.param(
            "00001 00002 a<00001 b<00002 m<a,b",
            "00002",
            ("m",),
            id="merge-with-other-side",
        ),
    ],
)
def test_python_tips(spec: str, revision: str, expected: tuple[str, ...]) -> None:
    assert graph(spec).python_tips(revision) == expected


# ------------------------------------------------------------ goose revisions


@pytest.mark.parametrize(
    ("spec", "revisions", "by_version"),
    [
        pytest.param("", [], {}, id="empty"),
        pytest.param("a b<a", [], {}, id="python-only"),
        pytest.param(
            "00003<00002 00002<00001 00001<",
            ["00001", "00002", "00003"],
            {1: "00001", 2: "00002", 3: "00003"},
            id="version-order-whatever-the-input",
        ),
        pytest.param(
            MIXED,
            ["00001", "00002", "00003", "00004"],
            {1: "00001", 2: "00002", 3: "00003", 4: "00004"},
            id="mixed-python-left-out",
        ),
        pytest.param(
            "00001 20240101120000",
            ["00001", "20240101120000"],
            {1: "00001", 20240101120000: "20240101120000"},
            id="timestamp-version",
        ),
    ],
)
def test_goose_revisions_and_by_goose_version(
    spec: str, revisions: list[str], by_version: dict[int, str]
) -> None:
    built = graph(spec)
    assert [n.revision for n in built.goose_revisions()] == revisions
    assert all(n.goose_version is not None for n in built.goose_revisions())
    assert built.by_goose_version() == by_version
