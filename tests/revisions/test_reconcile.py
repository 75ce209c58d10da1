"""Both version tables reconciled into one view (llm_proxy.revisions.reconcile)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from revision_specs import graph, ids, view_of

from llm_proxy.errors import StateConflict
from llm_proxy.revisions import plan
from llm_proxy.revisions.reconcile import DatabaseView, goose_version_reached, reconcile

LINEAR = "00001 00002 00003"
# 00001 -> 00002 -> p -> 00003: a Python revision written between two goose files.
BETWEEN = "00001 00002 p<00002 00003<p"
# p branches off 00001 while 00002 follows 00001 (rule 2): two heads.
BRANCH = "00001 00002 p<00001"
MERGE = "00001 a<00001 b<00001 m<a,b 00002<m"
# q has no parent of its own and depends_on 00002.
DEPENDS = "00001 00002 q<|00002"


@dataclass(frozen=True)
class Row:
    """One database state and the view expected of it (revision lists as 'a b c')."""

    spec: str
    goose: tuple[int, ...]
    alembic: tuple[str, ...]
    applied: str
    heads: str
    pending: str = ""
    missing: str = ""
    unknown_versions: tuple[int, ...] = ()
    unknown_heads: str = ""
    current: int | None = None  # goose's current version; default: highest applied

    def expected(self) -> DatabaseView:
        return DatabaseView(
            applied=frozenset(self.applied.split()),
            alembic_heads=ids(self.heads),
            goose_current=self.current if self.current is not None else max(self.goose, default=0),
            missing=ids(self.missing),
            unknown_versions=self.unknown_versions,
            unknown_heads=ids(self.unknown_heads),
            pending=ids(self.pending),
            goose_order=tuple(dict.fromkeys(v for v in self.goose if v)),
        )


ROWS = [
    # ---- empty database
    pytest.param(Row("", (), (), applied="", heads=""), id="empty-graph-empty-db"),
    pytest.param(
        Row(LINEAR, (), (), applied="", heads="", pending="00001 00002 00003"),
        id="linear-empty-db",
    ),
    pytest.param(
        Row("a b<a", (), (), applied="", heads="", pending="a b"),
        id="python-only-empty-db",
    ),
    pytest.param(
        Row(BETWEEN, (), (), applied="", heads="", pending="00001 00002 p 00003"),
        id="between-empty-db",
    ),
    # ---- linear goose histories: goose rows win
    pytest.param(
        Row(LINEAR, (1, 2, 3), (), applied="00001 00002 00003", heads="00003"),
        id="goose-applied-all-alembic-empty",
    ),
    pytest.param(
        Row(LINEAR, (1, 2), (), applied="00001 00002", heads="00002", pending="00003"),
        id="goose-applied-some-alembic-empty",
    ),
    pytest.param(
        Row(LINEAR, (1, 2), ("00002",), applied="00001 00002", heads="00002", pending="00003"),
        id="tables-agree",
    ),
    pytest.param(
        Row(LINEAR, (1, 2, 3), ("00001",), applied="00001 00002 00003", heads="00003"),
        id="alembic-behind-goose",
    ),
    pytest.param(
        Row(LINEAR, (1, 2), ("00003",), applied="00001 00002", heads="00002", pending="00003"),
        id="alembic-ahead-goose-rolled-back",
    ),
    pytest.param(
        Row(LINEAR, (), ("00003",), applied="", heads="", pending="00001 00002 00003"),
        id="goose-rolled-back-everything",
    ),
    pytest.param(
        Row(
            "00001 00002 00003 p<00003",
            (1, 2),
            ("00003",),
            applied="00001 00002",
            heads="00002",
            pending="00003 p",
        ),
        id="goose-rolled-back-below-unapplied-python",
    ),
    # ---- gaps (allow-missing histories)
    pytest.param(
        Row(
            LINEAR,
            (1, 3),
            (),
            applied="00001 00003",
            heads="00001",
            pending="00002",
            missing="00002",
        ),
        id="gap-goose-applied-1-and-3",
    ),
    pytest.param(
        Row(
            LINEAR,
            (1, 3),
            ("00001",),
            applied="00001 00003",
            heads="00001",
            pending="00002",
            missing="00002",
        ),
        id="gap-alembic-at-1",
    ),
    pytest.param(
        Row(
            "00001 00002 00003 00004",
            (2, 4),
            (),
            applied="00002 00004",
            heads="",
            pending="00001 00003",
            missing="00001 00003",
        ),
        id="gap-first-file-never-applied",
    ),
    pytest.param(
        Row(
            LINEAR,
            (1, 3),
            ("00003",),
            applied="00001 00003",
            heads="00001",
            pending="00002",
            missing="00002",
        ),
        id="gap-alembic-at-3-goose-lacks-2",
    ),
    pytest.param(
        Row(
            LINEAR,
            (2,),
            (),
            applied="00002",
            heads="",
            pending="00001 00003",
            missing="00001",
        ),
        id="legacy-rollback-row-for-00001",
    ),
    # ---- goose + Python interleaved
    pytest.param(
        Row(BETWEEN, (1, 2), ("p",), applied="00001 00002 p", heads="p", pending="00003"),
        id="between-python-applied",
    ),
    pytest.param(
        Row(BETWEEN, (1, 2, 3), ("00003",), applied="00001 00002 p 00003", heads="00003"),
        id="between-all-applied",
    ),
    pytest.param(
        Row(
            BETWEEN,
            (1, 2, 3),
            ("00002",),
            applied="00001 00002 00003",
            heads="00002",
            pending="p",
            missing="p",
        ),
        id="between-goose-binary-skipped-python",
    ),
    pytest.param(
        Row(
            BETWEEN,
            (1, 2, 3),
            (),
            applied="00001 00002 00003",
            heads="00002",
            pending="p",
            missing="p",
        ),
        id="between-goose-binary-only",
    ),
    pytest.param(
        Row(
            "00001 p<00001 00002<p",
            (1,),
            ("00002",),
            applied="00001 p",
            heads="p",
            pending="00002",
        ),
        id="goose-after-python-rolled-back-by-goose",
    ),
    pytest.param(
        Row(
            "p 00001<p 00002",
            (1, 2),
            (),
            applied="00001 00002",
            heads="",
            pending="p",
            missing="p",
        ),
        id="python-root-below-goose-never-run",
    ),
    pytest.param(
        Row(
            "00001 00002 p",
            (1, 2),
            (),
            applied="00001 00002",
            heads="00002",
            pending="p",
            missing="p",
        ),
        id="unrelated-python-root-counts-as-written-on-0",
    ),
    pytest.param(
        Row("a b<a", (), ("b",), applied="a b", heads="b"),
        id="python-only-applied",
    ),
    # ---- branches and merges
    pytest.param(
        Row(
            BRANCH,
            (1, 2),
            (),
            applied="00001 00002",
            heads="00002",
            pending="p",
            missing="p",
        ),
        id="branch-python-written-below-current",
    ),
    pytest.param(
        Row(BRANCH, (1, 2), ("00002", "p"), applied="00001 00002 p", heads="00002 p"),
        id="branch-both-heads-applied",
    ),
    pytest.param(
        Row(BRANCH, (1,), ("p",), applied="00001 p", heads="p", pending="00002"),
        id="branch-python-first",
    ),
    pytest.param(
        Row(
            "00001 00002 p<00002",
            (1, 2),
            (),
            applied="00001 00002",
            heads="00002",
            pending="p",
        ),
        id="python-written-on-current-not-missing",
    ),
    pytest.param(
        Row(MERGE, (1,), ("a",), applied="00001 a", heads="a", pending="b m 00002"),
        id="merge-one-side-applied",
    ),
    pytest.param(
        Row(MERGE, (1, 2), ("m",), applied="00001 a b m 00002", heads="00002"),
        id="merge-all-applied-goose-added-above",
    ),
    # ---- depends_on
    pytest.param(
        Row(DEPENDS, (1, 2), ("q",), applied="00001 00002 q", heads="00002 q"),
        id="depends-on-applied-keeps-two-heads",
    ),
    pytest.param(
        Row(DEPENDS, (1,), (), applied="00001", heads="00001", pending="00002 q"),
        id="depends-on-pending",
    ),
    pytest.param(
        Row(
            "00001 00002 00003 q<|00002",
            (1, 2, 3),
            (),
            applied="00001 00002 00003",
            heads="00003",
            pending="q",
            missing="q",
        ),
        id="depends-on-places-python-at-dependency",
    ),
    # ---- alembic_version naming unknown revisions
    pytest.param(
        Row(
            LINEAR,
            (1, 2),
            ("f00dcafe",),
            applied="00001 00002",
            heads="00002 f00dcafe",
            pending="00003",
            unknown_heads="f00dcafe",
        ),
        id="alembic-unknown-head",
    ),
    pytest.param(
        Row(
            LINEAR,
            (1, 2),
            ("zz", "00002", "aa"),
            applied="00001 00002",
            heads="00002 zz aa",
            pending="00003",
            unknown_heads="zz aa",
        ),
        id="alembic-unknown-heads-keep-their-order",
    ),
    pytest.param(
        Row(
            "",
            (),
            ("f00dcafe",),
            applied="",
            heads="f00dcafe",
            unknown_heads="f00dcafe",
        ),
        id="alembic-unknown-head-no-files",
    ),
    # ---- alembic_version spelling a goose version otherwise (an older release's ids)
    pytest.param(
        Row(LINEAR, (1, 2), ("2",), applied="00001 00002", heads="00002", pending="00003"),
        id="alembic-head-unpadded",
    ),
    pytest.param(
        Row(LINEAR, (1, 2, 3), ("0000000003",), applied="00001 00002 00003", heads="00003"),
        id="alembic-head-overpadded",
    ),
    pytest.param(
        Row(
            "00001 00002 py:0002<00001",
            (1, 2),
            ("0002",),
            applied="00001 0002 00002",
            heads="00002 0002",
        ),
        id="alembic-head-is-a-python-id-spelled-like-a-number",
    ),
    pytest.param(
        Row(
            LINEAR,
            (1, 2),
            ("7",),
            applied="00001 00002",
            heads="00002 7",
            pending="00003",
            unknown_heads="7",
        ),
        id="alembic-head-number-no-file-defines",
    ),
    # ---- goose rows naming versions with no file
    pytest.param(
        Row(
            "00001 00002",
            (1, 2, 7),
            (),
            applied="00001 00002",
            heads="00002",
            unknown_versions=(7,),
        ),
        id="goose-version-without-file",
    ),
    pytest.param(
        Row(
            LINEAR,
            (1, 2, 9, 7),
            (),
            applied="00001 00002",
            heads="00002",
            pending="00003",
            missing="00003",
            unknown_versions=(7, 9),
        ),
        id="goose-versions-without-files-sorted-file-below-is-missing",
    ),
]


@pytest.mark.parametrize("row", ROWS)
def test_reconcile(row: Row) -> None:
    assert view_of(row.spec, row.goose, row.alembic, row.current) == row.expected()


@pytest.mark.parametrize(
    ("spec", "goose", "alembic", "message"),
    [
        pytest.param(
            "00001 00002 p<00002",
            (),
            ("p",),
            "goose_db_version says 00001.sql is not applied, but Python revision(s) p built "
            "on it are: roll them back with `llm-proxy migrate down-to 0` (or `alembic "
            "downgrade base`), re-apply it with goose, or record where the schema really is "
            "with `llm-proxy migrate stamp VERSION`",
            id="python-applied-goose-empty",
        ),
        pytest.param(
            "00001 00002 p<00002 q<p",
            (1,),
            ("q",),
            "goose_db_version says 00002.sql is not applied, but Python revision(s) p, q",
            id="python-chain-named-sorted",
        ),
        pytest.param(
            "00001 00002 00003 p<00003",
            (1,),
            ("p",),
            "says 00002.sql is not applied, but Python revision(s) p built on it are: roll "
            "them back with `llm-proxy migrate down-to 00001` (or `alembic downgrade 00001`)",
            id="names-lowest-undone-goose-file",
        ),
        pytest.param(
            BETWEEN,
            (1, 3),
            ("00003",),
            "says 00002.sql is not applied, but Python revision(s) p built",
            id="python-between-undone-and-applied-goose",
        ),
        pytest.param(
            DEPENDS,
            (1,),
            ("q",),
            "says 00002.sql is not applied, but Python revision(s) q built",
            id="python-depends-on-undone-goose",
        ),
        pytest.param(
            "00001 00002 a<00002 b<00002 m<a,b",
            (1,),
            ("m",),
            "Python revision(s) a, b, m built",
            id="merge-above-undone-goose",
        ),
    ],
)
def test_python_revision_on_unapplied_goose_revision_is_a_conflict(
    spec: str, goose: tuple[int, ...], alembic: tuple[str, ...], message: str
) -> None:
    """Not a rule but a conflict: alembic_version is kept as it is, applying is
    refused with the way out, and rolling back (the way out) is allowed."""
    view = view_of(spec, goose, alembic)
    assert view.conflict is not None and view.conflict.rollback_helps
    assert message in view.conflict.message
    assert view.alembic_heads == alembic
    with pytest.raises(StateConflict) as raised:
        plan.check_consistent(view)
    assert message in str(raised.value)
    plan.check_consistent(view, rolling_back=True)


def test_python_revisions_stay_applied_in_a_conflict() -> None:
    view = view_of("00001 00002 00003 p<00003", (1, 2), ("p",))
    assert view.applied == frozenset(ids("00001 00002 p"))
    assert view.pending == ids("00003")


@pytest.mark.parametrize(
    ("spec", "alembic", "message"),
    [
        pytest.param(
            LINEAR,
            ("00003",),
            "goose_db_version does not exist, but alembic_version says 00003 is applied: "
            "nothing runs until goose's table is back; restore it from a backup or, if the "
            "schema really is at 00003, record that with `llm-proxy migrate stamp 00003` "
            "(or `alembic stamp 00003`)",
            id="goose-head",
        ),
        pytest.param(
            BETWEEN, ("p",), "record that with `llm-proxy migrate stamp p`", id="python-head"
        ),
        pytest.param(BRANCH, ("00002", "p"), "with `alembic stamp 00002 p`", id="two-heads"),
    ],
)
def test_lost_goose_table_is_a_conflict_rolling_back_cannot_solve(
    spec: str, alembic: tuple[str, ...], message: str
) -> None:
    built = graph(spec)
    view = reconcile(built, (), 0, alembic, goose_table=False)
    assert view.conflict is not None and not view.conflict.rollback_helps
    assert message in view.conflict.message
    assert view.alembic_heads == alembic  # nothing is taken back: it would run again
    for rolling_back in (False, True):
        with pytest.raises(StateConflict):
            plan.check_consistent(view, rolling_back=rolling_back)


@pytest.mark.parametrize(
    ("spec", "alembic"),
    [
        pytest.param(LINEAR, (), id="empty-alembic-version"),
        pytest.param("00001 p<", ("p",), id="python-revision-on-no-goose-file"),
    ],
)
def test_no_goose_table_without_goose_revisions_applied_is_no_conflict(
    spec: str, alembic: tuple[str, ...]
) -> None:
    assert reconcile(graph(spec), (), 0, alembic, goose_table=False).conflict is None


@pytest.mark.parametrize(
    ("spec", "heads", "expected"),
    [
        pytest.param(LINEAR, (), 0, id="base"),
        pytest.param(LINEAR, ("00002",), 2, id="goose-head"),
        pytest.param(BETWEEN, ("p",), 2, id="python-head-on-goose"),
        pytest.param(BRANCH, ("00002", "p"), 2, id="highest-of-heads"),
        pytest.param(LINEAR, ("gone",), 0, id="unknown-head"),
    ],
)
def test_goose_version_reached(spec: str, heads: tuple[str, ...], expected: int) -> None:
    assert goose_version_reached(graph(spec), heads) == expected


def test_goose_current_is_taken_as_given() -> None:
    """goose's current version comes from goose_db_version's newest row, which need
    not be the highest version applied (00003 applied before 00001 here); reconcile
    keeps it, keeps the rows' order, and measures `missing` against the highest
    applied version, as goose does."""
    view = view_of(LINEAR, (3, 1), (), current=1)
    assert view.goose_current == 1
    assert view.goose_order == (3, 1)
    assert view.goose_highest == 3
    assert view.missing == ("00002",)
    assert view.pending == ("00002",)


@pytest.mark.parametrize(
    ("spec", "goose", "alembic", "goose_table", "applied", "current"),
    [
        pytest.param(LINEAR, (1, 2, 3), ("00002",), True, "00001 00002", 2, id="rows-ahead"),
        pytest.param(LINEAR, (1,), ("00003",), True, "00001 00002 00003", 3, id="rows-behind"),
        pytest.param(LINEAR, (), ("00003",), False, "00001 00002 00003", 3, id="table-dropped"),
        pytest.param(BETWEEN, (1, 2), ("p",), True, "00001 00002 p", 2, id="python-head"),
        pytest.param(LINEAR, (1, 2, 3), (), True, "", 0, id="nothing-recorded"),
    ],
)
def test_a_retired_project_reads_alembic_version_alone(
    spec: str,
    goose: tuple[int, ...],
    alembic: tuple[str, ...],
    goose_table: bool,
    applied: str,
    current: int,
) -> None:
    """Once goose is retired its rows are history nobody writes: neither ahead of
    alembic_version (a rollback deletes no row) nor behind it (an apply writes
    none), nor gone, do they change what is applied; no conflict either way."""
    built = graph(spec)
    view = reconcile(
        built, goose, max(goose, default=0), alembic, goose_table=goose_table, goose_retired=True
    )
    assert view.conflict is None
    assert view.applied == frozenset(ids(applied))
    assert view.pending == tuple(r for r in built.order if r not in view.applied)
    assert view.goose_current == current
    assert view.alembic_heads == alembic
    assert view.missing == ()
