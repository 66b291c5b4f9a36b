"""Trace pages: the search box, a lot's trace with its picture and tables, the CSV export,
a shipment's trace, the criterion trace, containment; customers see their own lots only."""

from __future__ import annotations

import csv
import io

from sqlalchemy import select

from mes.floor.models import Lot
from mes.quality.models import Hold


def _page(client, path: str, status: int = 200) -> str:
    resp = client.get(path)
    assert resp.status_code == status, resp.get_data(as_text=True)[:800]
    return resp.get_data(as_text=True)


def test_search_box_leads_to_each_kind_of_trace(client, make_user, login, tree):
    login(make_user("qa"))
    sid = tree["shipment"].id
    for query, target in [("R.01", "/trace/lots/R.01"), (str(sid), f"/trace/shipments/{sid}"),
                          ("FAB1", "/trace/match?fab_lot=FAB1"),
                          ("W1", "/trace/match?wafer=W1"),
                          ("AU-1", "/trace/match?material_lot=AU-1")]:
        resp = client.get("/trace/", query_string={"q": query})
        assert resp.status_code == 303 and resp.headers["Location"].endswith(target), query
    assert "Nothing found" in _page(client, "/trace/?q=NOPE", 404)
    assert 'name="q"' in _page(client, "/trace/")


def test_lot_trace_page_draws_the_genealogy_and_lists_the_records(client, make_user, login,
                                                                  tree):
    login(make_user("engineer"))
    html = _page(client, "/trace/lots/M.01")
    assert "<svg" in html and 'class="genealogy"' in html
    for lot_no in ("R", "R.01", "R.01.01", "M", "M.01"):
        assert f'href="/trace/lots/{lot_no}"' in html
    assert "g-shipped" in html and "g-merged" in html
    assert f'href="/trace/shipments/{tree["shipment"].id}"' in html
    assert "EV-7 inverter" in html  # the vehicle program that received it
    assert "AU-1" in html and "WB-1" in html and "op1" in html and "FAB1/W1" in html
    assert "AEC-Q100" in html


def test_held_lots_are_marked_in_the_picture(client, make_user, login, tree, session):
    from tests.floor.helpers import hold
    hold(session, tree["lots"]["R"])
    login(make_user("qa"))
    html = _page(client, "/trace/lots/R")
    assert "g-held" in html and 'class="g-hold"' in html


def test_trace_csv_has_a_row_per_record(client, make_user, login, tree):
    login(make_user("qa"))
    resp = client.get("/trace/lots/M.01/trace.csv")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    lots = {r["lot_no"]: r["relation"] for r in rows if r["kind"] == "lot"}
    assert lots == {"R": "ancestor", "M": "ancestor", "R.01": "ancestor", "R.02": "ancestor",
                    "R.01.01": "ancestor", "M.01": "traced"}
    steps = [(r["lot_no"], r["step"], r["equipment"]) for r in rows if r["kind"] == "step"]
    assert ("M", "WB", "WB-1") in steps and ("M.01", "PACK", "TR-1") in steps
    assert [(r["lot_no"], r["material_lot"]) for r in rows if r["kind"] == "material"] == [
        ("M", "AU-1"), ("R.01", "AU-1")]
    assert [r["reference"] for r in rows if r["kind"] == "wafer"] == ["FAB1/W1", "FAB1/W2"]
    [ship] = [r for r in rows if r["kind"] == "shipment"]
    assert ship["lot_no"] == "M.01" and "OEM" in ship["reference"]


def test_shipment_and_criterion_pages(client, make_user, login, tree):
    login(make_user("planner"))
    html = _page(client, f"/trace/shipments/{tree['shipment'].id}")
    assert "PO-1" in html and 'href="/trace/lots/R"' in html and "EV-7 inverter" in html
    html = _page(client, "/trace/match?fab_lot=FAB1")
    assert 'href="/trace/lots/M.01"' in html and "<svg" in html
    assert "Unknown material lot" in _page(client, "/trace/match?material_lot=NOPE", 422)
    _page(client, "/trace/match?fab_lot=FAB1&material_lot=AU-1", 422)


def test_customer_pages_show_own_lots_only(client, make_user, login, tree):
    login(make_user("customer", customer="OEM"))
    html = _page(client, "/trace/lots/M.01")
    assert 'href="/trace/lots/R"' in html
    _page(client, f"/trace/shipments/{tree['shipment'].id}")
    assert client.get("/trace/?q=M.01").status_code == 303
    # A fab lot is not a customer's search.
    _page(client, "/trace/?q=FAB1", 404)
    assert client.get("/trace/match?fab_lot=FAB1").status_code == 403
    assert client.get("/trace/containments").status_code == 403


def test_other_customer_gets_404_like_a_missing_lot(client, make_user, login, tree):
    login(make_user("customer", customer="IND"))
    _page(client, "/trace/lots/M.01", 404)
    _page(client, "/trace/lots/M.01/trace.csv", 404)
    _page(client, f"/trace/shipments/{tree['shipment'].id}", 404)
    _page(client, "/trace/?q=M.01", 404)


def test_containment_page_previews_then_holds(client, make_user, login, tree, session):
    login(make_user("qa"))
    assert 'name="kind"' in _page(client, "/trace/containments")
    form = {"kind": "fab_lot", "value": "FAB1", "reason": "H-ENG", "comment": "Suspect fab"}
    resp = client.post("/trace/containments", data=form)
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert 'data-count="to_hold">3<' in html and "OEM" in html
    assert session.scalar(select(Hold.id).limit(1)) is None
    resp = client.post("/trace/containments", data={**form, "confirm": "1"})
    assert resp.status_code == 303
    assert "/trace/containments/C" in resp.headers["Location"]
    held = sorted(session.scalars(select(Lot.lot_no).join(Hold, Hold.lot_id == Lot.id)))
    assert held == ["M", "R", "R.01"]
    html = _page(client, resp.headers["Location"])
    assert "M.01" in html and "notifications.csv" in html


def test_containment_page_refusal_holds_nothing(client, make_user, login, tree, session):
    login(make_user("qa"))
    resp = client.post("/trace/containments", data={
        "kind": "fab_lot", "value": "NOPE", "reason": "H-ENG", "comment": "x", "confirm": "1"})
    assert resp.status_code == 422
    assert session.scalar(select(Hold.id).limit(1)) is None
