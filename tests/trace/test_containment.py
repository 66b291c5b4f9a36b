"""Containment: everything the forward trace reaches that is still in the plant is held in
one transaction; what shipped is listed by shipment and customer; bad input holds nothing."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import select

from mes.audit.models import AuditEvent
from mes.errors import InvalidInput
from mes.floor.models import Lot
from mes.quality.models import Hold
from mes.trace import services
from tests.floor.helpers import hold
from tests.helpers import refused
from tests.quality.helpers import QA, quality_state


def _open_holds(session) -> list[tuple[str, str]]:
    return sorted(session.execute(select(Lot.lot_no, Hold.source).join(Lot, Lot.id == Hold.lot_id)
                                  .where(Hold.status == "open")).all())


def test_containment_holds_exactly_the_lots_still_in_the_plant(api, tree, session):
    resp = api("qa").post("/containments", json={
        "reason": "H-ENG", "comment": "Bad fab lot", "match": {"fab_lot": "FAB1"}})
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert set(body) >= {"holds", "lots_held", "shipped", "customers"}
    # R, R.01 (queued) and M (reached through R.01.01's merge); not R.02, R.01.01 (merged),
    # not M.01 (shipped), not U (unrelated).
    assert body["lots_held"] == ["M", "R", "R.01"]
    assert sorted(h["lot_no"] for h in body["holds"]) == ["M", "R", "R.01"]
    assert {h["source"] for h in body["holds"]} == {"containment"}
    assert body["shipped"] == [{"shipment": tree["shipment"].id, "customer": "OEM",
                                "po": "PO-1", "vehicle_program": "EV-7 inverter",
                                "shipped_at": body["shipped"][0]["shipped_at"],
                                "lots": ["M.01"]}]
    assert body["customers"] == ["OEM"]
    assert _open_holds(session) == [("M", "containment"), ("R", "containment"),
                                    ("R.01", "containment")]
    # Audited: the containment itself and each hold.
    codes = [code for (code,) in session.execute(
        select(AuditEvent.code).where(AuditEvent.subject_type.in_(("containment", "hold"))))]
    assert codes.count("containment:run") == 1 and codes.count("hold:place") == 3
    recorded = api("qa").get(f"/containments/{body['id']}").get_json()
    assert recorded["lots_held"] == ["M", "R", "R.01"] and recorded["customers"] == ["OEM"]


def test_containment_holds_a_lot_on_hold_again(session, tree):
    hold(session, tree["lots"]["R.01"])
    done = services.contain(session, QA, reason="H-ENG", comment="again",
                            match={"lots": ["R.01"]})
    assert done.lots_held == ["M", "R.01"]
    assert session.scalar(select(Lot.open_holds).where(Lot.lot_no == "R.01")) == 2


def test_containment_when_everything_shipped_holds_nothing_and_lists_customers(session, tree):
    done = services.contain(session, QA, reason="H-ENG", comment="field return",
                            match={"lots": ["M.01"]})
    assert done.holds == [] and done.lots_held == []
    assert [(s["shipment"], s["lots"]) for s in done.shipped] == [(tree["shipment"].id,
                                                                   ["M.01"])]
    assert done.customers == ["OEM"]
    assert services.get_containment(session, done.id)["customers"] == ["OEM"]


@pytest.mark.parametrize("body", [
    {"reason": "NOPE", "comment": "x", "match": {"fab_lot": "FAB1"}},
    {"reason": "R-SCRATCH", "comment": "x", "match": {"fab_lot": "FAB1"}},
    {"reason": "H-ENG", "comment": "  ", "match": {"fab_lot": "FAB1"}},
    {"reason": "H-ENG", "comment": "x", "match": {"fab_lot": "NO-SUCH-FAB"}},
    {"reason": "H-ENG", "comment": "x", "match": {"material_lot": "NOPE"}},
    {"reason": "H-ENG", "comment": "x", "match": {"fab_lot": "FAB1", "lots": ["R"]}},
    {"reason": "H-ENG", "comment": "x", "match": {"lots": ["R", "NOPE"]}},
    {"reason": "H-ENG", "comment": "x", "match": {"equipment": "WB-1"}},
    {"reason": "H-ENG", "comment": "x"},
])
def test_containment_refuses_bad_input_and_holds_nothing(api, tree, session, body):
    qa = api("qa")
    before = quality_state(session)
    resp = qa.post("/containments", json=body)
    assert resp.status_code == 422, resp.get_json()
    assert quality_state(session) == before


def test_containment_service_refusal_changes_nothing(session, tree):
    err = refused(session, lambda: services.contain(
        session, QA, reason="H-ENG", comment="x", match={"fab_lot": "NONE"}),
                  InvalidInput, "no_match")
    assert "match" in err.fields


def test_containment_needs_hold_place(api, tree):
    for role in ("operator", "engineer", "planner"):
        resp = api(role).post("/containments", json={
            "reason": "H-ENG", "comment": "x", "match": {"fab_lot": "FAB1"}})
        assert resp.status_code == 403
    assert api("admin").post("/containments", json={
        "reason": "H-ENG", "comment": "x", "match": {"fab_lot": "FAB1"}}).status_code == 201


def test_notification_csv_lists_each_shipped_lot_by_customer(api, tree, client, make_user,
                                                             login):
    body = api("qa").post("/containments", json={
        "reason": "H-ENG", "comment": "x", "match": {"fab_lot": "FX"}}).get_json()
    login(make_user("qa"))
    resp = client.get(f"/trace/containments/{body['id']}/notifications.csv")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    assert [(r["customer"], r["shipment"], r["po"], r["vehicle_program"], r["lot_no"],
             r["quantity"]) for r in rows] == [
        ("OEM", str(tree["shipment"].id), "PO-1", "EV-7 inverter", "M.01", "50")]
    page = client.get(f"/trace/containments/{body['id']}")
    assert page.status_code == 200 and "M.01" in page.get_data(as_text=True)
    assert "EV-7 inverter" in page.get_data(as_text=True)
    assert client.get("/trace/containments/NOPE").status_code == 404
