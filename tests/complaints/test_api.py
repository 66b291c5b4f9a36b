"""Complaints through the API: intake resolves every unit as scanned (label, pack unit id,
mark, lot number) to the customer's lots or refuses naming each unresolved one; the 8D's
steps get owners and due times; D4, D6 and D8 refuse to finish without what they need;
lists filter by state and overdue. Every refusal leaves the database as it was."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest

from mes.complaints import services
from mes.complaints.models import Complaint, EightDStepRow
from mes.db import utcnow
from mes.quality import services as quality
from mes.quality.models import Hold
from mes.shipping import iso15434
from mes.trace import services as trace
from tests.complaints.conftest import body
from tests.helpers import audit_codes, refused


def _label(api, code):
    zbar = pytest.importorskip("pyzbar.pyzbar", reason="zbar (Debian libzbar0) not installed")
    from PIL import Image

    png = api("operator").get(f"/pack-units/{code}/label").get_data()
    return zbar.decode(Image.open(io.BytesIO(png)))[0].data.decode("utf-8")


def _open(caller, **kw):
    resp = caller.post("/complaints", json=body(**kw))
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def _patch(caller, complaint_id, step, **data):
    return caller.patch(f"/complaints/{complaint_id}/eightd/{step}", json=data)


# --- intake ----------------------------------------------------------------------------

def test_units_resolve_to_lots_whatever_form_they_take(session, api, qa, packed):
    own, _other = packed
    label = iso15434.encode([("1P", "P1"), ("1T", "LOT-A"), ("3S", own.reels[1])])
    shown = _open(qa, units=[
        {"scan": own.carton, "failure_mode": "open", "count": 1},
        {"scan": label, "failure_mode": "short", "count": 2},
        {"scan": "P1\n2649 00RS4", "failure_mode": "leakage", "count": 3},
        {"scan": "LOT-A", "failure_mode": "open", "count": 1}])
    assert shown["lots"] == ["LOT-A"] and shown["customer"] == "OEM"
    assert [u["kind"] for u in shown["units"]] == ["pack_unit", "label", "mark", "lot"]
    assert shown["state"] == "open" and shown["returns"] == [] and shown["containments"] == []
    assert [s["step"] for s in shown["eightd"]] == [f"D{i}" for i in range(9)]
    assert all(s["owner"] == "quinn-qa" and s["done_at"] is None for s in shown["eightd"])
    assert audit_codes(session, "complaint", str(shown["id"])) == ["complaint:open"]


def test_a_label_read_off_the_picture_resolves(api, qa, packed):
    own, _other = packed
    shown = _open(qa, units=[{"scan": _label(api, own.bags[0]), "failure_mode": "open",
                              "count": 1}])
    assert shown["lots"] == ["LOT-A"] and shown["units"][0]["kind"] == "label"


def test_due_times_follow_the_configuration(app, qa, packed):
    received = (utcnow() - timedelta(hours=2)).replace(microsecond=0)
    shown = _open(qa, received_at=received.isoformat())
    due = {s["step"]: s["due_at"] for s in shown["eightd"]}
    assert due["D3"] == (received + timedelta(hours=24)).isoformat()
    assert due["D5"] == (received + timedelta(days=10)).isoformat()
    assert due["D0"] == due["D3"] and due["D4"] == due["D5"]
    assert due["D8"] == (received + timedelta(days=60)).isoformat()
    app.config.update(COMPLAINT_D3_HOURS=48, COMPLAINT_D5_DAYS=5)
    try:
        again = _open(qa, reference="8D-OEM-2", received_at=received.isoformat())
    finally:
        app.config.update(COMPLAINT_D3_HOURS=24, COMPLAINT_D5_DAYS=10)
    due = {s["step"]: s["due_at"] for s in again["eightd"]}
    assert due["D3"] == (received + timedelta(hours=48)).isoformat()
    assert due["D5"] == (received + timedelta(days=5)).isoformat()


def test_unresolved_units_are_named_and_nothing_is_stored(session, qa, packed):
    _own, other = packed
    error = refused(session, lambda: qa.post("/complaints", json=body(units=[
        {"scan": "LOT-A", "failure_mode": "open", "count": 1},
        {"scan": "NO-SUCH-LOT", "failure_mode": "open", "count": 1},
        {"scan": other.carton, "failure_mode": "open", "count": 1}])),
        422, "unresolved_units", "units")
    # Another customer's unit reads as one that does not exist.
    assert error["unresolved"] == ["NO-SUCH-LOT", other.carton]
    assert "NO-SUCH-LOT" in error["message"] and other.carton in error["message"]
    assert set(error["fields"]["units"]) == {"1", "2"}


def test_customer_users_name_their_own_units_only(session, api, packed):
    _own, other = packed
    oem = api("customer", customer="OEM")
    foreign = refused(session, lambda: oem.post("/complaints", json=body(
        customer=None, units=[{"scan": other.lot_no, "failure_mode": "open", "count": 1}])),
        422, "unresolved_units")
    missing = refused(session, lambda: oem.post("/complaints", json=body(
        customer=None, units=[{"scan": "LOT-ZZZ", "failure_mode": "open", "count": 1}])),
        422, "unresolved_units")
    assert foreign["message"].replace(other.lot_no, "X") == \
        missing["message"].replace("LOT-ZZZ", "X")
    refused(session, lambda: oem.post("/complaints", json=body(customer="IND")),
            422, "invalid", "customer")
    shown = _open(oem, customer=None)
    assert shown["customer"] == "OEM" and shown["lots"] == ["LOT-A"]
    # No owner yet: QA assigns them; the customer sees neither owners nor notes.
    complaint = session.get(Complaint, shown["id"])
    assert all(step.owner_id is None for step in complaint.steps)
    assert [s["step"] for s in shown["eightd"]] == ["D3", "D4", "D5", "D6", "D8"]
    assert all("owner" not in s and "internal_note" not in s for s in shown["eightd"])
    assert "internal_notes" not in shown and "created_by" not in shown


def test_a_plant_user_names_units_of_the_complaints_customer_only(session, qa, packed):
    refused(session, lambda: qa.post("/complaints", json=body(customer="IND")),
            422, "unresolved_units")


@pytest.mark.parametrize("change, field", [
    ({"received_at": (utcnow() + timedelta(days=1)).isoformat()}, "received_at"),
    ({"units": []}, "units"), ({"customer": "NOPE"}, "customer"),
    ({"customer": None}, "customer"), ({"reference": ""}, "reference"),
    ({"units": [{"scan": "LOT-A", "failure_mode": "open", "count": 0}]}, "units"),
    ({"received_at": "2026-12-01T10:00:00"}, "received_at")])
def test_bad_intake_is_refused(session, qa, packed, change, field):
    refused(session, lambda: qa.post("/complaints", json=body(**change)), 422, "invalid",
            field)


def test_a_reference_is_recorded_once_per_customer(session, qa, packed):
    _open(qa)
    refused(session, lambda: qa.post("/complaints", json=body()), 409, "duplicate")


def test_operators_cannot_record_complaints(session, api, packed):
    operator, planner = api("operator"), api("planner")
    refused(session, lambda: operator.post("/complaints", json=body()), 403, "forbidden")
    refused(session, lambda: planner.patch("/complaints/1/eightd/D1", json={}), 403,
            "forbidden")


# --- the 8D ----------------------------------------------------------------------------

def test_steps_take_owner_text_and_done(session, api, qa, packed):
    shown = _open(qa)
    other = api("qa", username="olga-qa")
    resp = _patch(qa, shown["id"], "D1", owner=other.user.username, text="Team: QA, process",
                  internal_note="Olga leads", done=True)
    assert resp.status_code == 200, resp.get_json()
    step = resp.get_json()
    assert (step["owner"], step["text"], step["done_by"]) == (
        "olga-qa", "Team: QA, process", "quinn-qa")
    assert step["done_at"] is not None
    assert audit_codes(session, "complaint", str(shown["id"])) == [
        "complaint:open", "complaint:8d"]
    error = refused(session, lambda: _patch(qa, shown["id"], "D1", done=True), 409,
                    "step_done")
    assert "D1" in error["message"]
    refused(session, lambda: _patch(qa, shown["id"], "D2", owner="nobody"), 422, "invalid",
            "owner")
    customer = api("customer", customer="OEM")
    refused(session, lambda: _patch(qa, shown["id"], "D2", owner=customer.user.username),
            422, "invalid", "owner")
    refused(session, lambda: _patch(qa, shown["id"], "D2", root_cause_escape="x"), 422,
            "invalid", "root_cause_escape")
    refused(session, lambda: _patch(qa, shown["id"], "D2", done=False), 422, "invalid",
            "done")
    refused(session, lambda: _patch(qa, shown["id"], "D9", text="x"), 404, "not_found")
    refused(session, lambda: _patch(qa, 999999, "D1", text="x"), 404, "not_found")


def test_d4_needs_both_root_causes(session, qa, packed):
    shown = _open(qa)
    cid = shown["id"]
    _patch(qa, cid, "D4", root_cause_occurrence="Bond lift from plasma clean skipped")
    error = refused(session, lambda: _patch(qa, cid, "D4", done=True), 409,
                    "root_cause_missing")
    assert error["missing"] == ["root_cause_escape"]
    resp = _patch(qa, cid, "D4", root_cause_escape="Pull test sample too small", done=True)
    assert resp.status_code == 200 and resp.get_json()["done_at"]


def test_d6_needs_verification_evidence(session, qa, packed):
    cid = _open(qa)["id"]
    refused(session, lambda: _patch(qa, cid, "D6", text="Implemented", done=True), 409,
            "verification_missing")


def _finish(qa, cid, *, skip=()):
    """Do every step but D8 (and those in `skip`), with what D4 and D6 need."""
    for step in ("D0", "D1", "D2", "D3", "D4", "D5", "D6", "D7"):
        data = {"text": f"{step} done"}
        if step == "D4":
            data.update(root_cause_occurrence="Occurred", root_cause_escape="Escaped")
        if step == "D6":
            data.update(verification="3 lots, 0 fails")
        if step not in skip:
            data["done"] = True
        resp = _patch(qa, cid, step, **data)
        assert resp.status_code == 200, resp.get_json()


def _contained(session, cid):
    """A containment of LOT-A linked to complaint `cid`: its hold."""
    done = trace.contain(session, "qa-c", reason="H-ENG", comment="complaint",
                         match={"lots": ["LOT-A"]})
    services.link_containment(session, "qa-c", session.get(Complaint, cid), done.id)
    session.commit()
    return done.holds[0]


def test_d8_closes_once_all_is_there(session, api, qa, packed):
    cid = _open(qa)["id"]
    hold = _contained(session, cid)
    # Nothing yet: the first code names D4's root cause, `missing` lists everything.
    error = refused(session, lambda: _patch(qa, cid, "D8", done=True), 409,
                    "root_cause_missing")
    assert error["missing"] == ["root_cause_occurrence", "root_cause_escape",
                                "verification", "containment_holds", "steps"]
    _finish(qa, cid)
    error = refused(session, lambda: _patch(qa, cid, "D8", done=True), 409,
                    "containment_open")
    assert error["missing"] == ["containment_holds"] and str(hold.id) in error["message"]
    quality.release_hold(session, "qa-r", session.get(Hold, hold.id),
                         {"disposition": "release", "comment": "Sorted, fine"})
    session.commit()
    resp = _patch(qa, cid, "D8", text="Closed with the customer", done=True)
    assert resp.status_code == 200, resp.get_json()
    shown = qa.get(f"/complaints/{cid}").get_json()
    assert shown["state"] == "closed" and shown["closed_at"]
    assert shown["containments"][0]["open_holds"] == []
    # A closed complaint changes no more.
    refused(session, lambda: _patch(qa, cid, "D7", text="later"), 409, "complaint_closed")


def test_d8_needs_the_steps_before_it(session, qa, packed):
    cid = _open(qa)["id"]
    _finish(qa, cid, skip=("D7",))
    error = refused(session, lambda: _patch(qa, cid, "D8", done=True), 409, "steps_open")
    assert error["missing"] == ["steps"] and "D7" in error["message"]


def test_d8_needs_the_verification(session, qa, packed):
    cid = _open(qa)["id"]
    _finish(qa, cid, skip=("D6",))
    step = session.get(EightDStepRow, (cid, "D6"))
    step.verification = None
    session.commit()
    error = refused(session, lambda: _patch(qa, cid, "D8", done=True), 409,
                    "verification_missing")
    assert error["missing"] == ["verification", "steps"]


def test_a_scrapped_lot_disposes_of_its_containment_hold(session, qa, packed):
    cid = _open(qa)["id"]
    hold = _contained(session, cid)
    _finish(qa, cid)
    quality.release_hold(session, "qa-r", session.get(Hold, hold.id), {
        "disposition": "scrap", "comment": "Scrap all", "scrap_qty": 30000,
        "scrap_reason": "S-DMG"})
    session.commit()
    assert _patch(qa, cid, "D8", done=True).status_code == 200


# --- lists -----------------------------------------------------------------------------

def test_lists_filter_by_state_and_overdue(session, qa, packed):
    late = _open(qa, reference="LATE", received_at=(utcnow() - timedelta(days=12)).isoformat())
    fresh = _open(qa, reference="FRESH")
    closed = _open(qa, reference="DONE", received_at=(utcnow() - timedelta(days=90))
                   .isoformat())
    _finish(qa, closed["id"])
    assert _patch(qa, closed["id"], "D8", done=True).status_code == 200

    def ids(**query):
        resp = qa.get("/complaints", query_string=query)
        assert resp.status_code == 200, resp.get_json()
        return [c["id"] for c in resp.get_json()["items"]]

    assert ids() == [fresh["id"], late["id"], closed["id"]]
    assert ids(state="open") == [fresh["id"], late["id"]]
    assert ids(state="closed") == [closed["id"]]
    assert ids(overdue="true") == [late["id"]]
    overdue = {s.step for s in services.overdue_steps(session)}
    assert overdue == {f"D{i}" for i in range(6)}
    resp = qa.get("/complaints", query_string={"state": "nope"})
    assert resp.status_code == 422
