"""Purchase orders over the API: entering an order, reading it, changing a line, allocating
and deallocating lots; every refusal leaves the database as it was."""

from __future__ import annotations

from sqlalchemy import select

from mes.audit.models import AuditEvent
from mes.floor import services as floor
from mes.orders.models import OrderAllocation
from tests.helpers import refused
from tests.orders.conftest import need, order_body


def test_an_order_is_entered_and_read_back_with_its_lines(planner, ordered, session):
    assert ordered["customer"] == "OEM" and ordered["po"] == "PO-1"
    first, second = ordered["lines"]
    assert first == {"line": 1, "product": "P1", "quantity": 500, "need_date": need(30),
                     "commit_date": None, "vehicle_program": "VP-X", "ship_to": "Plant 4",
                     "shipped": 0, "wip": 0, "finished": 0, "banked": 0, "allocated": 0,
                     "unallocated": 500, "lots": [], "projected_p50": 0,
                     "projected_p90": 0, "short_p50": 500, "short_p90": 500,
                     "status": "short"}
    assert second["line"] == 2 and second["vehicle_program"] is None
    assert planner.get("/orders/PO-1").get_json() == ordered
    assert [o["po"] for o in planner.get("/orders").get_json()["items"]] == ["PO-1"]
    assert session.scalar(select(AuditEvent.code).where(
        AuditEvent.subject_key == "OEM/PO-1")) == "order:create"


def test_a_duplicate_po_of_the_customer_is_409_and_another_customers_po_may_repeat(
        planner, ordered, session):
    refused(session, lambda: planner.post("/orders", json=order_body()), 409, "duplicate")
    other = {"customer": "IND", "po": "PO-1", "lines": [
        {"line": 1, "product": "P2", "quantity": 10, "need_date": need(5)}]}
    assert planner.post("/orders", json=other).status_code == 201
    # Two customers use PO-1: staff name the customer.
    refused(session, lambda: planner.get("/orders/PO-1"), 422, "invalid", "customer")
    assert planner.get("/orders/PO-1?customer=IND").get_json()["lines"][0]["product"] == "P2"
    assert planner.get("/orders/PO-1?customer=OEM").get_json()["lines"][0]["quantity"] == 500


def test_bad_orders_are_422_and_store_nothing(planner, session):
    cases = [
        (order_body(quantity=0), "lines"),
        (order_body(product="NOPE"), "lines"),
        ({**order_body(), "customer": "NOPE"}, "customer"),
        ({**order_body(), "po": ""}, "po"),
        ({**order_body(), "lines": []}, "lines"),
        ({"customer": "OEM", "po": "PO-9", "lines": [
            {"line": 1, "product": "P1", "quantity": 1, "need_date": need()},
            {"line": 1, "product": "P1", "quantity": 2, "need_date": need()}]}, "lines"),
        # P1 is OEM's product.
        ({"customer": "IND", "po": "PO-9", "lines": [
            {"line": 1, "product": "P1", "quantity": 1, "need_date": need()}]}, "lines"),
        ({"customer": "OEM", "po": "PO-9", "lines": [
            {"line": 1, "product": "P1", "quantity": 1}]}, "lines"),
    ]
    for body, field in cases:
        refused(session, lambda body=body: planner.post("/orders", json=body), 422, "invalid",
                field)


def test_a_line_gets_a_commit_date_and_changes(planner, ordered, session):
    resp = planner.patch("/orders/PO-1/lines/1", json={"commit_date": need(25),
                                                       "quantity": 600})
    assert resp.status_code == 200, resp.get_json()
    assert (resp.get_json()["commit_date"], resp.get_json()["quantity"]) == (need(25), 600)
    resp = planner.patch("/orders/PO-1/lines/1", json={"commit_date": None})
    assert resp.get_json()["commit_date"] is None and resp.get_json()["quantity"] == 600
    refused(session, lambda: planner.patch("/orders/PO-1/lines/1", json={"quantity": 0}),
            422, "invalid", "quantity")
    refused(session, lambda: planner.patch("/orders/PO-1/lines/9", json={"quantity": 5}),
            404, "not_found")
    assert session.scalars(select(AuditEvent.code).where(
        AuditEvent.subject_key == "OEM/PO-1").order_by(AuditEvent.id)).all() == [
        "order:create", "order:line_update", "order:line_update"]


def test_lots_are_allocated_all_or_nothing_and_the_line_counts_them(
        planner, ordered, receive, session):
    receive(200, lot_no="L-Q")
    running = receive(100, lot_no="L-R")
    floor.track_in(session, "op", running, step="SAW", equipment="SAW-1")
    session.commit()
    banked = floor.receive_lot(session, "planner", {
        "product": "P1", "customer": "OEM", "quantity": 150, "fab_lot": "FAB2",
        "wafers": [], "bank": True})
    session.commit()
    resp = planner.post("/orders/PO-1/lines/1/allocations",
                        json={"lots": ["L-Q", "L-R", banked.lot_no]})
    assert resp.status_code == 200, resp.get_json()
    line = resp.get_json()
    assert (line["wip"], line["banked"], line["allocated"], line["unallocated"]) == \
        (300, 150, 450, 50)
    assert line["lots"] == sorted(["L-Q", "L-R", banked.lot_no])
    # Again: a lot already on the line stays as it is.
    assert planner.post("/orders/PO-1/lines/1/allocations",
                        json={"lots": ["L-Q"]}).get_json() == line
    # On another line: refused, nothing of the request applies.
    other = receive(50, lot_no="L-FREE")
    refused(session, lambda: planner.post("/orders/PO-1/lines/2/allocations",
                                          json={"lots": ["L-FREE", "L-Q"]}),
            409, "already_allocated")
    assert session.scalar(select(OrderAllocation).where(
        OrderAllocation.lot_id == other.id)) is None
    # Deallocated, it may go to line 2.
    resp = planner.delete("/orders/PO-1/lines/1/allocations/L-Q")
    assert resp.status_code == 200 and resp.get_json()["wip"] == 100
    assert planner.post("/orders/PO-1/lines/2/allocations",
                        json={"lots": ["L-Q"]}).get_json()["wip"] == 200
    refused(session, lambda: planner.delete("/orders/PO-1/lines/1/allocations/L-Q"), 404,
            "not_found")


def test_allocation_refusals_leave_the_database_unchanged(planner, ordered, receive, session):
    receive(10, lot_no="L-OK")
    other_product = receive(10, lot_no="L-P2", product="P2")
    other_customer = receive(10, lot_no="L-IND", product="P2", customer="IND")
    scrapped = receive(10, lot_no="L-GONE")
    scrapped.state = "merged"
    session.commit()
    for lots, status, code in ((["L-OK", "NOPE"], 422, "invalid"),
                               (["L-OK", other_product.lot_no], 409, "wrong_product"),
                               (["L-OK", other_customer.lot_no], 409, "wrong_customer"),
                               (["L-OK", scrapped.lot_no], 409, "lot_closed"),
                               ([], 422, "invalid")):
        refused(session, lambda lots=lots: planner.post(
            "/orders/PO-1/lines/1/allocations", json={"lots": lots}), status, code)


def test_line_quantities_follow_the_lots_to_finished_and_shipped(planner, ordered, session,
                                                                completed, tested):
    from mes.shipping import services as shipping

    done = completed("L-DONE", quantity=100)
    gone = completed("L-GONE", quantity=80)
    planner.post("/orders/PO-1/lines/1/allocations", json={"lots": ["L-DONE", "L-GONE"]})
    shipping.create_shipment(session, "planner", {"customer": "OEM", "po": "PO-1",
                                                  "lots": [gone.lot_no]})
    session.commit()
    line = planner.get("/orders/PO-1").get_json()["lines"][0]
    assert (line["shipped"], line["finished"], line["wip"], line["allocated"],
            line["unallocated"]) == (gone.quantity, done.quantity, 0,
                                     gone.quantity + done.quantity,
                                     500 - gone.quantity - done.quantity)
    # The line may not order less than it shipped.
    refused(session, lambda: planner.patch("/orders/PO-1/lines/1", json={"quantity": 1}),
            422, "invalid", "quantity")
    # A shipped lot cannot be allocated any more.
    planner.delete("/orders/PO-1/lines/1/allocations/L-GONE")
    refused(session, lambda: planner.post("/orders/PO-1/lines/2/allocations",
                                          json={"lots": ["L-GONE"]}), 409, "lot_closed")


def test_a_split_child_stays_on_its_parents_line(planner, ordered, receive, session):
    lot = receive(100, lot_no="L-S")
    planner.post("/orders/PO-1/lines/1/allocations", json={"lots": ["L-S"]})
    resp = planner.post("/lots/L-S/split", json={"quantities": [60, 40]})
    assert resp.status_code == 201, resp.get_json()
    line = planner.get("/orders/PO-1").get_json()["lines"][0]
    assert line["lots"] == ["L-S", "L-S.01"] and line["wip"] == 100
    # The child moves to line 2 once deallocated from line 1.
    planner.delete("/orders/PO-1/lines/1/allocations/L-S.01")
    assert planner.post("/orders/PO-1/lines/2/allocations",
                        json={"lots": ["L-S.01"]}).get_json()["wip"] == 40
    session.refresh(lot)
    assert lot.quantity == 60


def test_roles(plant, api, ordered):
    for role, status in (("operator", 403), ("engineer", 200), ("qa", 200)):
        assert api(role).get("/orders").status_code == status, role
    for role in ("operator", "engineer", "qa"):
        assert api(role).post("/orders", json=order_body("PO-2")).status_code == 403, role
    assert api("admin").post("/orders", json=order_body("PO-2")).status_code == 201
