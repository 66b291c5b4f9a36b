"""The planner's order pages and the die bank: list, new order, line edit, allocation and
deallocation, release from the lot page; refused forms change nothing; customers and
operators do not reach them."""

from __future__ import annotations

from sqlalchemy import select

from mes.floor import services as floor
from mes.floor.models import Lot
from mes.orders.models import OrderAllocation, OrderLine, PurchaseOrder
from tests.helpers import as_user, refused
from tests.orders.conftest import need


def _order_id(session, po: str = "PO-1") -> int:
    return session.scalar(select(PurchaseOrder.id).where(PurchaseOrder.po == po))


def test_a_planner_enters_an_order_on_the_page(app, plant, session, make_user):
    client = as_user(app, make_user("planner"))
    assert client.get("/orders/new").status_code == 200
    resp = client.post("/orders/new", data={
        "customer": "OEM", "po": "PO-WEB",
        "lines": f"1 | P1 | 500 | {need(30)} | VP-9 | Plant 4\n2 | P1 | 200 | {need(40)}"})
    assert resp.status_code == 303, resp.get_data(as_text=True)[:2000]
    order_id = _order_id(session, "PO-WEB")
    page = client.get(f"/orders/{order_id}").get_data(as_text=True)
    assert "PO-WEB" in page and "VP-9" in page and 'data-line="2"' in page
    listing = client.get("/orders/").get_data(as_text=True)
    assert f'data-order="{order_id}"' in listing
    # A bad line: 422, nothing stored.
    refused(session, lambda: client.post("/orders/new", data={
        "customer": "OEM", "po": "PO-BAD", "lines": "1 | P1 | many | tomorrow"}), 422)
    refused(session, lambda: client.post("/orders/new", data={
        "customer": "OEM", "po": "PO-WEB", "lines": f"1 | P1 | 5 | {need()}"}), 409)


def test_a_planner_edits_a_line_and_allocates_lots_on_the_page(app, ordered, session,
                                                               make_user, receive):
    client = as_user(app, make_user("planner"))
    order_id = _order_id(session)
    receive(120, lot_no="L-A")
    receive(80, lot_no="L-B")
    page = client.get(f"/orders/{order_id}").get_data(as_text=True)
    assert 'value="L-A"' in page  # offered as free to allocate
    resp = client.post(f"/orders/{order_id}/lines/1/edit", data={
        "commit_date": need(20), "quantity": "450", "need_date": need(30)})
    assert resp.status_code == 303
    line = session.scalars(select(OrderLine).where(OrderLine.line_no == 1)).one()
    session.refresh(line)
    assert (line.quantity, line.commit_date.isoformat()) == (450, need(20))
    resp = client.post(f"/orders/{order_id}/lines/1/allocate", data={"lots": "L-A",
                                                                     "lot": ["L-B"]})
    assert resp.status_code == 303, resp.get_data(as_text=True)[:2000]
    page = client.get(f"/orders/{order_id}").get_data(as_text=True)
    assert 'data-lot="L-A"' in page and 'data-lot="L-B"' in page
    # Refused: already on line 1; a bad quantity.
    refused(session, lambda: client.post(f"/orders/{order_id}/lines/2/allocate",
                                         data={"lots": "L-A"}), 409)
    refused(session, lambda: client.post(f"/orders/{order_id}/lines/1/edit", data={
        "commit_date": "", "quantity": "0", "need_date": need(30)}), 422)
    resp = client.post(f"/orders/{order_id}/lines/1/deallocate", data={"lot": "L-A"})
    assert resp.status_code == 303
    assert session.scalar(select(OrderAllocation.id).join(Lot).where(
        Lot.lot_no == "L-A")) is None
    # The lot page names the line.
    assert "PO-1/1" in client.get("/lots/L-B").get_data(as_text=True)


def test_a_banked_lot_is_released_from_its_lot_page(app, plant, session, make_user):
    floor.receive_lot(session, "planner", {"product": "P1", "customer": "OEM",
                                           "quantity": 90, "fab_lot": "F", "wafers": [],
                                           "lot_no": "L-BANK", "bank": True})
    session.commit()
    client = as_user(app, make_user("planner"))
    assert 'data-lot="L-BANK"' in client.get("/orders/bank").get_data(as_text=True)
    page = client.get("/lots/L-BANK").get_data(as_text=True)
    assert "/orders/bank/L-BANK/release" in page
    resp = client.post("/orders/bank/L-BANK/plan", data={"planned_start": "2030-01-02T08:00",
                                                         "back": "lot"})
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/lots/L-BANK")
    lot = session.scalar(select(Lot).where(Lot.lot_no == "L-BANK"))
    session.refresh(lot)
    assert lot.planned_start is not None
    resp = client.post("/orders/bank/L-BANK/release", data={"back": "lot"})
    assert resp.status_code == 303
    session.refresh(lot)
    assert (lot.state, lot.step_code) == ("queued", "SAW")
    refused(session, lambda: client.post("/orders/bank/L-BANK/release", data={}), 409)
    assert "/orders/bank/L-BANK/release" not in client.get("/lots/L-BANK").get_data(
        as_text=True)


def test_the_receive_page_banks_a_lot(app, plant, session, make_user):
    client = as_user(app, make_user("planner"))
    resp = client.post("/lots/receive", data={"product": "P1", "customer": "OEM",
                                         "fab_lot": "F", "quantity": "50", "priority": "3",
                                         "lot_no": "L-RB", "bank": "true"})
    assert resp.status_code == 303, resp.get_data(as_text=True)[:2000]
    assert session.scalar(select(Lot.state).where(Lot.lot_no == "L-RB")) == "banked"


def test_operators_and_customers_do_not_reach_the_order_pages(app, ordered, session,
                                                             make_user):
    order_id = _order_id(session)
    for user in (make_user("operator"), make_user("customer", customer="OEM")):
        client = as_user(app, user)
        for path in ("/orders/", "/orders/new", f"/orders/{order_id}"):
            assert client.get(path).status_code == 403, (user.role, path)
        # The die bank is a list of lots: plant roles read it, customers do not.
        assert client.get("/orders/bank").status_code == (
            403 if user.role == "customer" else 200)
    reader = as_user(app, make_user("qa"))
    assert reader.get(f"/orders/{order_id}").status_code == 200
    assert reader.post(f"/orders/{order_id}/lines/1/edit", data={}).status_code == 403


