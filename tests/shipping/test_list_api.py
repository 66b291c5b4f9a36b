"""Filters of GET /shipments (the same as the list page's)."""

from __future__ import annotations

from datetime import timedelta

from tests.shipping.test_shipments import ship


def test_list_filters_by_customer_po_program_lot_and_date(api, session, completed):
    first = ship(session, [completed("LOT-A").lot_no], vehicle_program="EV-7")
    second = ship(session, [completed("LOT-B").lot_no], po="PO-2")
    other = ship(session, [completed("LOT-I", product="P2", customer="IND").lot_no],
                 customer="IND")
    planner = api("planner")

    def ids(query: str) -> list[int]:
        resp = planner.get(f"/shipments?{query}")
        assert resp.status_code == 200, resp.get_json()
        return [item["id"] for item in resp.get_json()["items"]]

    assert ids("") == [other.id, second.id, first.id]
    assert ids("customer=OEM") == [second.id, first.id]
    assert ids("po=PO-2") == [second.id]
    assert ids("vehicle_program=EV-7") == [first.id]
    assert ids("lot=LOT-I") == [other.id]
    day = first.shipped_at.date()
    assert ids(f"since={day}&until={day + timedelta(days=1)}") == [other.id, second.id,
                                                                   first.id]
    assert ids(f"since={day + timedelta(days=2)}") == []
    assert ids("until=2000-01-01") == []
    resp = planner.get("/shipments?since=soon")
    assert (resp.status_code, list(resp.get_json()["error"]["fields"])) == (422, ["since"])
    # A customer's filters only narrow their own shipments.
    oem = api("customer", customer="OEM")
    assert [i["id"] for i in oem.get("/shipments?customer=IND").get_json()["items"]] == []
