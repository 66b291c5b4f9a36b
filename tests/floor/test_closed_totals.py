"""The lots out of WIP, counted by triggers on `lot` into `lot_closed_total`: every kind of
write keeps the totals equal to the lots (on SQLite and PostgreSQL), the WIP board's "out of
WIP" line reads them under each filter, and `mes check` reports totals that disagree."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import delete, func, insert, select, update

from mes.floor.models import Lot, LotClosedTotal
from mes.integrity import check
from mes.vocabulary import CLOSED_LOT_STATES
from tests.floor.helpers import hold


def _kept(session) -> dict[tuple[Any, ...], tuple[int, int]]:
    t = LotClosedTotal
    return {(r.state, r.step_code, r.customer_id, r.held): (r.lots, r.quantity)
            for r in session.scalars(select(t).where(t.lots > 0))}


def _counted(session) -> dict[tuple[Any, ...], tuple[int, int]]:
    held = Lot.open_holds > 0
    rows = session.execute(
        select(Lot.state, Lot.step_code, Lot.customer_id, held, func.count(),
               func.sum(Lot.quantity)).where(Lot.state.in_(CLOSED_LOT_STATES))
        .group_by(Lot.state, Lot.step_code, Lot.customer_id, held))
    return {(s, step, c, bool(h)): (n, int(q)) for s, step, c, h, n, q in rows}


def _set(session, lot: Lot, **values: Any) -> None:
    session.execute(update(Lot).where(Lot.id == lot.id).values(**values))


def test_every_write_of_a_lot_keeps_the_closed_totals(session, receive):
    a, b, c = receive(100, fab_lot="F1"), receive(200, fab_lot="F2"), receive(300, fab_lot="F3")
    d = receive(40, fab_lot="F4", product="P2", customer="IND")
    oem, ind = a.customer_id, d.customer_id
    assert _kept(session) == {}
    _set(session, a, state="shipped", step_code="PACK")
    _set(session, b, state="shipped", step_code="PACK")
    _set(session, c, state="scrapped")
    _set(session, d, state="merged")
    assert _kept(session) == _counted(session) == {
        ("shipped", "PACK", oem, False): (2, 300), ("scrapped", "SAW", oem, False): (1, 300),
        ("merged", "SAW", ind, False): (1, 40)}
    # A closed lot's units, hold and step change; a lot in WIP moving touches nothing.
    _set(session, b, quantity=150)
    _set(session, c, open_holds=1)
    _set(session, d, step_code="WB")
    e = receive(70, fab_lot="F5")
    _set(session, e, state="running", step_code="WB", quantity=60)
    assert _kept(session) == _counted(session) == {
        ("shipped", "PACK", oem, False): (2, 250), ("scrapped", "SAW", oem, True): (1, 300),
        ("merged", "WB", ind, False): (1, 40)}
    # Back into WIP (a return), a closed lot inserted and deleted.
    _set(session, a, state="queued")
    row = dict(session.execute(select(Lot.__table__).where(Lot.id == b.id)).mappings().one())
    row.pop("id")
    session.execute(insert(Lot.__table__).values(**{**row, "lot_no": "COPY-1",
                                                     "quantity": 5}))
    assert _kept(session) == _counted(session) == {
        ("shipped", "PACK", oem, False): (2, 155), ("scrapped", "SAW", oem, True): (1, 300),
        ("merged", "WB", ind, False): (1, 40)}
    session.execute(delete(Lot).where(Lot.lot_no == "COPY-1"))
    assert _kept(session) == _counted(session) == {
        ("shipped", "PACK", oem, False): (1, 150), ("scrapped", "SAW", oem, True): (1, 300),
        ("merged", "WB", ind, False): (1, 40)}


def _out_of_wip(page: str) -> str:
    found = re.search(r'<p class="muted closed-counts">(.*?)</p>', page, re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", found.group(1)).split()) if found else ""


def test_the_wip_board_shows_the_closed_lots_its_filters_select(login, make_user, session,
                                                                receive):
    planner = login(make_user("planner"))
    a, b = receive(100, fab_lot="F1"), receive(200, fab_lot="F2")
    c = receive(40, fab_lot="F4", product="P2", customer="IND")
    receive(70, fab_lot="F5")
    _set(session, a, state="shipped", step_code="PACK")
    _set(session, b, state="scrapped")
    _set(session, c, state="shipped", step_code="PACK")
    hold(session, b)
    session.commit()

    def line(query: str) -> str:
        resp = planner.get(f"/wip?{query}")
        assert resp.status_code == 200
        return _out_of_wip(resp.get_data(as_text=True))

    assert line("") == "Out of WIP: scrapped 1 lots, 200 units · shipped 2 lots, 140 units"
    assert line("customer=IND") == "Out of WIP: shipped 1 lots, 40 units"
    assert line("product=P1") == ("Out of WIP: scrapped 1 lots, 200 units · "
                                  "shipped 1 lots, 100 units")
    assert line("step=PACK") == "Out of WIP: shipped 2 lots, 140 units"
    assert line("state=scrapped") == "Out of WIP: scrapped 1 lots, 200 units"
    assert line("on_hold=true") == "Out of WIP: scrapped 1 lots, 200 units"
    assert line("on_hold=false") == "Out of WIP: shipped 2 lots, 140 units"
    assert line("fab_lot=F4") == "Out of WIP: shipped 1 lots, 40 units"
    assert line("state=queued") == ""


def test_mes_check_reports_closed_totals_that_disagree_with_the_lots(session, receive):
    a = receive(100, fab_lot="F1")
    _set(session, a, state="shipped", step_code="PACK")
    assert not [p for p in check(session, ["quantity"]).problems if "closed-lot" in p.message]
    session.execute(update(LotClosedTotal).values(lots=LotClosedTotal.lots + 1))
    problems = [p.line() for p in check(session, ["quantity"]).problems]
    assert [line for line in problems if "closed-lot" in line] == [
        f"quantity: closed-lot totals: shipped lots at step PACK of product {a.product_id}, "
        f"customer {a.customer_id}: kept (2, 100) (lots, units), counted (1, 100)"]
