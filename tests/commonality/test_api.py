"""GET /commonality and POST /complaints/{id}/containments: answers, refusals, isolation."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from mes.complaints.models import ComplaintContainment
from mes.floor.models import Lot
from mes.quality.models import Hold
from tests.commonality.conftest import COMPLAINED
from tests.helpers import audit_codes, refused


def _ids(complaints, *lot_nos):
    return ",".join(str(complaints[no].id) for no in lot_nos)


def test_commonality_of_three_complaints(api, complaints):
    resp = api("qa").get(f"/commonality?complaints={_ids(complaints, *COMPLAINED)}")
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["lots"] == list(COMPLAINED) and body["complained"] == 3 and body["base"] == 20
    first, second = body["factors"][:2]
    assert first == {**first, "kind": "material_lot", "value": "MC-A", "complained_lots": 3,
                     "base_lots": 4, "lift": 5.0, "ranked": True}
    assert (second["kind"], second["value"], second["step"]) == ("equipment", "WB-1", "WB")
    assert second["window"]["since"].startswith("2026-03-04T10:00")
    assert body["period"]["days"] == 14


@pytest.mark.parametrize("role", ["customer", "operator", "planner", "engineer"])
def test_commonality_is_qa_only(api, complaints, role):
    kw = {"customer": "OEM"} if role == "customer" else {}
    resp = api(role, **kw).get(f"/commonality?complaints={_ids(complaints, 'H-03')}")
    assert resp.status_code == 403


def test_commonality_refusals(api, complaints):
    qa = api("qa")
    assert qa.get("/commonality").status_code == 422
    assert qa.get("/commonality?complaints=999999").status_code == 404
    assert qa.get("/commonality?lots=NOPE").status_code == 404
    assert qa.get("/commonality?complaints=x").status_code == 422


def _factor_body(**factor):
    return {"factor": factor, "reason": "H-ENG", "comment": "Mold compound suspect"}


def test_containment_from_a_factor(api, session, complaints, history):
    lots = history["lots"]
    # Two MC-A lots are still in the plant: reopen 03 and 17 as completed.
    for no in ("H-03", "H-17"):
        lots[no].state = "completed"
    session.commit()
    complaint = complaints["H-03"]
    resp = api("qa").post(f"/complaints/{complaint.id}/containments",
                          json=_factor_body(kind="material_lot", value="MC-A"))
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["lots_held"] == ["H-03", "H-17"]
    shipped = {no for entry in body["shipped"] for no in entry["lots"]}
    assert {"H-08", "H-13"} <= shipped and body["customers"] == ["OEM"]
    assert body["match"] == {"material_lot": "MC-A"} and body["complaints"] == [complaint.id]
    link = session.scalar(select(ComplaintContainment).where(
        ComplaintContainment.complaint_id == complaint.id))
    assert link.containment_id == body["id"]
    assert "complaint:contain" in audit_codes(session, "complaint", str(complaint.id))


@pytest.mark.parametrize("factor, match", [
    ({"kind": "fab_lot", "value": "FAB-03"}, {"fab_lot": "FAB-03"}),
    ({"kind": "wafer", "value": "FAB-03/W01"}, {"wafer": "W01", "fab_lot": "FAB-03"}),
    ({"kind": "date_code", "value": "2610"}, {"date_code": "2610"}),
    ({"kind": "route_version", "value": "QFN/1"}, {"route": "QFN", "route_version": 1}),
    ({"kind": "equipment", "value": "WB-1", "step": "WB",
      "window": {"since": "2026-03-04T10:00:00+00:00", "until": "2026-03-04T11:00:00+00:00"}},
     {"equipment": "WB-1", "since": "2026-03-04T10:00:00+00:00",
      "until": "2026-03-04T11:00:00+00:00"}),
])
def test_each_factor_kind_is_a_match(api, session, complaints, history, factor, match):
    history["lots"]["H-03"].state = "completed"
    session.commit()
    resp = api("qa").post(f"/complaints/{complaints['H-03'].id}/containments",
                          json=_factor_body(**factor))
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["match"] == match
    assert "H-03" in resp.get_json()["lots_held"]


def _state(session):
    return (session.scalars(select(Hold.id)).all(),
            session.scalars(select(ComplaintContainment.containment_id)).all(),
            session.scalars(select(Lot.open_holds).order_by(Lot.id)).all())


@pytest.mark.parametrize("factor, field", [
    ({"kind": "equipment", "value": "WB-1"}, "factor"),  # no window
    ({"kind": "wafer", "value": "W01"}, "factor"),  # no fab lot
    ({"kind": "route_version", "value": "QFN/x"}, "factor"),
    ({"kind": "material_lot", "value": "NOPE"}, "match"),
    ({"kind": "bom_revision", "value": "P1/Z"}, "match"),
    ({"kind": "shoe_size", "value": "42"}, "factor"),
])
def test_bad_factors_change_nothing(api, session, complaints, factor, field):
    refused(session, lambda: api("qa").post(f"/complaints/{complaints['H-03'].id}/containments",
                                            json=_factor_body(**factor)),
            422, "invalid", field, state=_state)


def test_factor_matching_no_lot_changes_nothing(api, session, complaints):
    refused(session, lambda: api("qa").post(f"/complaints/{complaints['H-03'].id}/containments",
                                            json=_factor_body(kind="date_code", value="9901")),
            422, "no_match", state=_state)


def test_containment_needs_qa_and_a_known_complaint(api, session, complaints):
    body = _factor_body(kind="material_lot", value="MC-A")
    refused(session, lambda: api("qa").post("/complaints/999999/containments", json=body),
            404, "not_found", state=_state)
    for role in ("engineer", "planner"):
        refused(session, lambda: api(role).post(  # noqa: B023
            f"/complaints/{complaints['H-03'].id}/containments", json=body), 403,
            "forbidden", state=_state)
    refused(session, lambda: api("customer", customer="OEM").post(
        f"/complaints/{complaints['H-03'].id}/containments", json=body), 403, "forbidden",
        state=_state)
