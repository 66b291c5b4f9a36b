"""Customer isolation of orders: a customer user reads their own orders only (another
customer's PO is not found, even where both use the same number), sees nothing of the other
customer's lines or lots, and changes nothing."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from mes.floor import services as floor
from mes.orders import services as orders
from mes.orders.models import PurchaseOrder
from tests.helpers import as_user, database_state
from tests.orders.conftest import need


def _order(session, customer: str, product: str, po: str, program: str, lots: list[str]
           ) -> PurchaseOrder:
    order = orders.create_order(session, "planner", {"customer": customer, "po": po, "lines": [
        {"line": 1, "product": product, "quantity": 100, "need_date": date.fromisoformat(need()),
         "vehicle_program": program}]})
    orders.allocate(session, "planner", order, order.lines[0], lots)
    session.commit()
    return order


@pytest.fixture
def two(plant, session, receive, make_user) -> dict[str, Any]:
    receive(50, lot_no="A-LOT-1")
    receive(50, lot_no="B-LOT-1", product="P2", customer="IND")
    floor.receive_lot(session, "planner", {"product": "P2", "customer": "IND", "quantity": 70,
                                           "fab_lot": "F", "wafers": [], "lot_no": "B-BANK-1",
                                           "bank": True})
    a_same = _order(session, "OEM", "P1", "PO-SAME", "VP-AAA", ["A-LOT-1"])
    b_same = _order(session, "IND", "P2", "PO-SAME", "VP-BBB", ["B-LOT-1", "B-BANK-1"])
    b_only = _order(session, "IND", "P2", "PO-BONLY", "VP-BBB2", [])
    return {"user": make_user("customer", customer="OEM"), "a_same": a_same,
            "b_same": b_same, "b_only": b_only}


SECRETS = ("B-LOT-1", "B-BANK-1", "VP-BBB", "PO-BONLY")


def test_a_customer_reads_their_own_orders_only(app, session, two, token_for, client):
    headers = token_for(two["user"])

    def get(path: str) -> Any:
        return client.get("/api/v1" + path, headers=headers)

    listed = get("/orders").get_json()["items"]
    assert [(o["customer"], o["po"]) for o in listed] == [("OEM", "PO-SAME")]
    own = get("/orders/PO-SAME")
    assert own.status_code == 200 and own.get_json()["lines"][0]["lots"] == ["A-LOT-1"]
    for query in ("?customer=IND", "?customer=OEM"):
        resp = get("/orders/PO-SAME" + query)
        assert resp.status_code in (200, 404), query
        assert not any(s in resp.get_data(as_text=True) for s in SECRETS), query
    assert get("/orders/PO-SAME?customer=IND").status_code == 404
    assert get("/orders/PO-BONLY").status_code == 404
    for query in ("", "?customer=IND", "?product=P2", "?vehicle_program=VP-BBB"):
        text = get("/orders" + query).get_data(as_text=True)
        assert not any(s in text for s in SECRETS), query


def test_a_customer_changes_nothing(app, session, two, token_for, client):
    headers = token_for(two["user"])
    pages = as_user(app, two["user"])
    before = database_state(session)
    calls = [("patch", "/orders/PO-SAME/lines/1", {"quantity": 5}),
             ("patch", "/orders/PO-BONLY/lines/1", {"quantity": 5}),
             ("post", "/orders/PO-SAME/lines/1/allocations", {"lots": ["A-LOT-1"]}),
             ("post", "/orders/PO-BONLY/lines/1/allocations", {"lots": ["B-LOT-1"]}),
             ("delete", "/orders/PO-SAME/lines/1/allocations/A-LOT-1", None),
             ("delete", "/orders/PO-SAME/lines/1/allocations/B-LOT-1", None),
             ("post", "/orders", {"customer": "IND", "po": "X", "lines": []}),
             ("post", "/lots/B-BANK-1/release", {}),
             ("patch", "/lots/B-BANK-1", {"planned_start": None})]
    for method, path, body in calls:
        resp = getattr(client, method)("/api/v1" + path, headers=headers,
                                       **({"json": body} if body is not None else {}))
        assert resp.status_code in (403, 404), (method, path, resp.status_code)
        assert not any(s in resp.get_data(as_text=True) for s in SECRETS), path
    for path in ("/orders/", f"/orders/{two['b_same'].id}", f"/orders/{two['a_same'].id}",
                 "/orders/bank", "/orders/new"):
        resp = pages.get(path)
        assert resp.status_code in (403, 404), path
        assert not any(s in resp.get_data(as_text=True) for s in SECRETS), path
    for path, data in ((f"/orders/{two['b_same'].id}/lines/1/deallocate", {"lot": "B-LOT-1"}),
                       (f"/orders/{two['b_same'].id}/lines/1/allocate", {"lots": "B-LOT-1"}),
                       ("/orders/bank/B-BANK-1/release", {})):
        assert pages.post(path, data=data).status_code in (403, 404), path
    assert database_state(session) == before
