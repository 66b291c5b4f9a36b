"""Descendant and ancestor walks: every depth, through splits and merges, each lot once, in
one query whatever the size of the tree."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event, select

from mes.floor import services as floor
from mes.floor.genealogy import EdgeFrom, ancestors, backward, descendants
from mes.floor.models import Lot


@pytest.fixture
def tree(session, receive) -> dict[str, Lot]:
    """R splits into R, R.01, R.02; R.01 splits into R.01, R.01.01; R.01.01 merges into
    M (another fab lot); R.02 merges back into R (a cycle in the graph); M splits into M,
    M.01. U is unrelated."""
    r, m, u = receive(100, lot_no="R"), receive(100, lot_no="M", fab_lot="FX"), \
        receive(100, lot_no="U")
    r01, r02 = floor.split_lot(session, "op", r, [50, 30, 20])
    [r0101] = floor.split_lot(session, "op", r01, [20, 10])
    floor.merge_lots(session, "op", [m, r0101])
    floor.merge_lots(session, "op", [r, r02])
    [m01] = floor.split_lot(session, "op", m, [60, 50])
    session.commit()
    return {lot.lot_no: lot for lot in (r, m, u, r01, r02, r0101, m01)}


def lot_nos(session, ids_select) -> list[str]:
    return sorted(session.scalars(select(Lot.lot_no).where(Lot.id.in_(ids_select))))


def seeds(*numbers: str):
    return select(Lot.id).where(Lot.lot_no.in_(numbers))


@contextmanager
def statements(session) -> Iterator[list[str]]:
    seen: list[str] = []
    engine = session.get_bind().engine

    def count(_conn, _cursor, statement, *_args) -> None:
        if not statement.startswith(("SAVEPOINT", "RELEASE SAVEPOINT")):  # the test harness
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_descendants_reach_every_depth_through_splits_and_merges(session, tree):
    assert lot_nos(session, descendants(session, seeds("R"))) == [
        "M", "M.01", "R", "R.01", "R.01.01", "R.02"]
    assert lot_nos(session, descendants(session, seeds("R.01.01"))) == ["M", "M.01",
                                                                       "R.01.01"]
    assert lot_nos(session, descendants(session, seeds("U"))) == ["U"]


def test_ancestors_reach_every_depth_through_splits_and_merges(session, tree):
    assert lot_nos(session, ancestors(session, seeds("M.01"))) == [
        "M", "M.01", "R", "R.01", "R.01.01", "R.02"]
    assert lot_nos(session, ancestors(session, seeds("R.01"))) == ["R", "R.01", "R.02"]


def test_a_walk_from_several_seeds_lists_each_lot_once(session, tree):
    found = list(session.scalars(descendants(session, seeds("R", "R.01", "M", "U"))))
    assert len(found) == len(set(found)) == 7


def test_a_walk_is_one_query_whatever_the_tree(session, tree):
    with statements(session) as seen:
        found = list(session.scalars(descendants(session, seeds("R"))))
    assert len(found) == 6
    assert len(seen) == 1 and "RECURSIVE" in seen[0].upper()


def test_the_backward_tree_names_where_each_ancestor_went(session, tree):
    found = {ancestor.lot_no: edges for ancestor, edges in backward(session, tree["M.01"])}
    assert found == {
        "R": [EdgeFrom("split", 30, "R.01"), EdgeFrom("split", 20, "R.02")],
        "R.02": [EdgeFrom("merge", 20, "R")],
        "R.01": [EdgeFrom("split", 10, "R.01.01")],
        "R.01.01": [EdgeFrom("merge", 10, "M")],
        "M": [EdgeFrom("split", 50, "M.01")],
    }
