"""A trace costs a fixed number of SQL statements, whatever the size of the tree: the
genealogy is walked by one recursive query per direction, the rest read set by set."""

from __future__ import annotations

import pytest

from mes.floor import services as floor
from mes.quality import services as quality
from tests.floor.helpers import advance
from tests.floor.test_genealogy import statements
from tests.quality.helpers import QA


def _chain(session, make, size: int, name: str) -> str:
    """`size` lots: a root split into one-unit lots, then split down a chain, the wide
    children merged into the chain's last lot (the leaf), every lot held."""
    depth = 2 if size < 10 else 8
    wide = size - 1 - depth
    root = make(1000, lot_no=name, fab_lot=f"F-{name}")
    children = floor.split_lot(session, "op", root, [1000 - wide] + [1] * wide)
    lot = root
    for _ in range(depth):
        [lot] = floor.split_lot(session, "op", lot, [1, lot.quantity - 1])
    floor.merge_lots(session, "op", [lot, *children])
    session.commit()
    quality.mass_hold(session, QA, reason="H-ENG", comment="all", match={"lots": [name]})
    session.commit()
    return lot.lot_no


@pytest.fixture
def chains(request, session):
    make = request.getfixturevalue("receive")
    request.getfixturevalue("hold_codes")
    return {size: _chain(session, make, size, f"S{size}") for size in (5, 50)}


def _count(session, call) -> int:
    with statements(session) as seen:
        resp = call()
        assert resp.status_code == 200, resp.get_json()
    return len(seen)


@pytest.mark.parametrize("path", ["/lots/{leaf}/trace?direction=backward",
                                  "/lots/{root}/trace?direction=forward",
                                  "/trace?fab_lot={fab}"])
def test_trace_statements_do_not_grow_with_the_tree(api, session, chains, path):
    qa = api("qa")
    counts = {}
    for size, leaf in chains.items():
        root = f"S{size}"
        url = path.format(leaf=leaf, root=root, fab=f"F-{root}")
        counts[size] = _count(session, lambda url=url: qa.get(url))
    assert counts[5] == counts[50]
    big = qa.get(path.format(leaf=chains[50], root="S50", fab="F-S50")).get_json()
    reached = big.get("ancestors") or big.get("descendants")
    assert len(reached) + len(big.get("lots", [])) >= 49


def test_backward_statements_with_history_do_not_grow(api, session, chains):
    from sqlalchemy import select

    from mes.floor.models import Lot
    qa = api("qa")
    counts = {}
    for size, leaf in chains.items():
        lot = session.scalar(select(Lot).where(Lot.lot_no == leaf))
        lot.open_holds = 0  # let it run one step
        session.commit()
        advance(session, lot)
        counts[size] = _count(session, lambda leaf=leaf: qa.get(f"/lots/{leaf}/trace"))
    assert counts[5] == counts[50]
