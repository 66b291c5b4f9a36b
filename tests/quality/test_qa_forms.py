"""What the QA forms offer before anything is submitted: who may release a hold and why the
reader may not, a hold placed from a lot's page, the mass-hold preview's table of lots, the
rework steps a release may return to, and equipment windows typed in plant time."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from mes.db import simulated_time
from mes.floor.models import Lot
from mes.quality import services as quality
from mes.quality.match_form import _when, plant_time, window
from mes.quality.models import FutureHold, Hold
from mes.shipping import services as shipping
from tests.floor.helpers import advance, track_in, track_out
from tests.helpers import refused
from tests.quality.helpers import ADMIN, QA, QA2, quality_state


def text(resp: Any) -> str:
    return resp.get_data(as_text=True)


def hold_on(session, actor: Any, lot_no: str) -> Hold:
    lot = session.scalar(select(Lot).where(Lot.lot_no == lot_no))
    placed = quality.hold_lot(session, actor, lot, reason="H-ENG", comment="Suspect bonds")
    session.commit()
    return placed


def release_form(body: str) -> bool:
    return 'name="disposition"' in body


# --- who may release ------------------------------------------------------------------

def test_the_person_who_placed_a_hold_is_told_why_and_offered_no_form(
        client, session, receive, make_user, login):
    placer = make_user("qa", username="qa-placer")
    make_user("qa", username="qa-second")
    make_user("admin", username="boss")
    make_user("qa", username="qa-gone", active=False)
    receive(100, lot_no="LOT-1")
    placed = hold_on(session, placer, "LOT-1")
    login(placer)
    body = text(client.get(f"/holds/{placed.id}/view"))
    assert not release_form(body)
    assert "You may not release this hold." in body and "two-person rule" in body
    names = re.search(r'data-releasers="([^"]*)"', body)
    assert names and names.group(1).split(",") == ["boss", "qa-second"]
    # Posting anyway is still refused by the service, and changes nothing.
    page = refused(session, lambda: client.post(f"/holds/{placed.id}/view", data={
        "disposition": "release", "comment": "mine"}), 409, state=quality_state)
    assert "may not release" in page


def test_another_qa_engineer_gets_the_form_and_the_line_naming_who_may(
        client, session, receive, make_user, login):
    placer = make_user("qa", username="qa-placer")
    receive(100, lot_no="LOT-1")
    placed = hold_on(session, placer, "LOT-1")
    login(make_user("qa", username="qa-second"))
    body = text(client.get(f"/holds/{placed.id}/view"))
    assert release_form(body)
    assert "You may not release" not in body
    assert "other than qa-placer, who placed it" in body
    # Only an admin releasing their own hold is asked for an override reason.
    assert 'name="override_reason"' not in body


def test_a_role_that_does_not_release_holds_sees_who_does_and_no_form(
        client, session, receive, make_user, login):
    receive(100, lot_no="LOT-1")
    placed = hold_on(session, QA, "LOT-1")
    login(make_user("engineer"))
    body = text(client.get(f"/holds/{placed.id}/view"))
    assert not release_form(body)
    assert "Releasing holds is for QA engineers and admins." in body


def test_an_admin_who_placed_a_hold_is_asked_for_the_override_reason(
        client, session, receive, make_user, login):
    admin = make_user("admin", username="boss")
    receive(100, lot_no="LOT-1")
    placed = hold_on(session, admin, "LOT-1")
    login(admin)
    body = text(client.get(f"/holds/{placed.id}/view"))
    assert release_form(body)
    assert re.search(r'name="override_reason"[^>]*required', body)
    refused(session, lambda: client.post(f"/holds/{placed.id}/view", data={
        "disposition": "release", "comment": "mine"}), 409, state=quality_state)
    resp = client.post(f"/holds/{placed.id}/view", data={
        "disposition": "release", "comment": "mine", "override_reason": "QA away all week"})
    assert resp.status_code == 303
    session.expire_all()
    assert session.get(Hold, placed.id).override_reason == "QA away all week"


def test_release_refusal_names_each_rule(session, receive):
    receive(100, lot_no="LOT-1")
    placed = hold_on(session, QA, "LOT-1")
    assert quality.release_refusal(QA2, placed) is None
    assert "two-person" in str(quality.release_refusal(QA, placed))
    assert "QA engineers" in str(quality.release_refusal(
        type(QA)("op", "operator"), placed))
    assert quality.release_refusal("system", placed) is not None
    quality.release_hold(session, QA2, placed, {"disposition": "release", "comment": "ok"})
    assert "not open" in str(quality.release_refusal(QA2, placed))


def test_an_admin_may_release_their_own_hold_with_an_override(session, receive):
    receive(100, lot_no="LOT-1")
    placed = hold_on(session, ADMIN, "LOT-1")
    assert quality.release_refusal(ADMIN, placed) is None


# --- rework steps ---------------------------------------------------------------------

def test_rework_offers_only_the_steps_before_the_current_one(
        client, session, receive, make_user, login):
    lot = receive(100, lot_no="LOT-1")
    advance(session, lot, 2)  # at FT
    placed = hold_on(session, QA, "LOT-1")
    assert [s.code for s in quality.rework_steps(lot)] == ["SAW", "WB"]
    login(make_user("qa", username="qa-second"))
    body = text(client.get(f"/holds/{placed.id}/view"))
    select_html = re.search(r'<select id="f-rework_step".*?</select>', body, re.S)
    assert select_html
    offered = re.findall(r'<option value="([^"]+)"', select_html.group(0))
    assert offered == ["SAW", "WB"]


def test_a_completed_lot_may_go_back_to_its_last_step(session, receive):
    lot = receive(100, lot_no="LOT-1")
    advance(session, lot, 4)
    assert lot.state == "completed"
    assert [s.code for s in quality.rework_steps(lot)] == ["SAW", "WB", "FT", "PACK"]


def test_rework_is_not_offered_at_the_first_step(client, session, receive, make_user, login):
    receive(100, lot_no="LOT-1")
    placed = hold_on(session, QA, "LOT-1")
    login(make_user("qa", username="qa-second"))
    body = text(client.get(f"/holds/{placed.id}/view"))
    assert 'name="rework_step"' not in body
    assert '<option value="rework"' not in body
    assert "no earlier step to return to" in body


# --- a hold from the lot's page -------------------------------------------------------

def test_the_lot_page_offers_place_hold_to_qa_only(client, session, receive, make_user, login):
    receive(100, lot_no="LOT-1")
    login(make_user("qa"))
    assert "/lots/LOT-1/hold" in text(client.get("/lots/LOT-1"))
    login(make_user("operator"))
    assert "/lots/LOT-1/hold" not in text(client.get("/lots/LOT-1"))
    assert client.get("/lots/LOT-1/hold").status_code == 403
    assert client.post("/lots/LOT-1/hold", data={"reason": "H-ENG",
                                                 "comment": "x"}).status_code == 403


def test_a_qa_engineer_places_a_hold_from_the_lot_page(client, session, receive, make_user,
                                                       login):
    receive(100, lot_no="LOT-1")
    login(make_user("qa", username="qa-page"))
    form = text(client.get("/lots/LOT-1/hold"))
    assert 'name="reason"' in form and "H-ENG" in form
    resp = client.post("/lots/LOT-1/hold", data={"reason": "H-ENG",
                                                 "comment": "Cracked die seen at AOI"})
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/lots/LOT-1")
    session.expire_all()
    placed = session.scalars(select(Hold)).one()
    assert (placed.lot.lot_no, placed.reason.code, placed.comment, placed.placed_by,
            placed.source, placed.lot.open_holds) == (
        "LOT-1", "H-ENG", "Cracked die seen at AOI", "qa-page", "manual", 1)


@pytest.mark.parametrize("data,field", [({"reason": "H-ENG", "comment": " "}, "comment"),
                                        ({"reason": "R-BALL", "comment": "x"}, "reason"),
                                        ({"comment": "x"}, "reason")])
def test_a_hold_without_reason_or_comment_is_refused_on_the_page(
        client, session, receive, make_user, login, data, field):
    receive(100, lot_no="LOT-1")
    login(make_user("qa"))
    body = refused(session, lambda: client.post("/lots/LOT-1/hold", data=data), 422,
                   state=quality_state)
    assert f'id="f-{field}"' in body and "has-error" in body


def test_a_shipped_lot_is_not_offered_a_hold(client, session, completed, make_user, login):
    completed("LOT-S")
    shipping.create_shipment(session, "planner1", {"customer": "OEM", "po": "PO-1",
                                                  "lots": ["LOT-S"]})
    session.commit()
    login(make_user("qa"))
    assert "/lots/LOT-S/hold" not in text(client.get("/lots/LOT-S"))
    body = text(client.get("/lots/LOT-S/hold"))
    assert 'name="reason"' not in body and "can no longer be held" in body
    refused(session, lambda: client.post("/lots/LOT-S/hold", data={
        "reason": "H-ENG", "comment": "late find"}), 409, state=quality_state)


# --- the mass-hold preview ------------------------------------------------------------

def test_the_mass_hold_preview_lists_each_lot_with_what_it_is(
        client, session, receive, completed, make_user, login):
    completed("LOT-S")
    shipping.create_shipment(session, "planner1", {"customer": "OEM", "po": "PO-1",
                                                  "lots": ["LOT-S"]})
    lot = receive(250, lot_no="LOT-Q", fab_lot="FAB-Z")
    advance(session, lot, 1)
    session.commit()
    login(make_user("qa"))
    before = quality_state(session)
    body = text(client.post("/holds/mass", data={
        "kind": "lots", "value": "LOT-Q LOT-S", "reason": "H-ENG", "comment": "complaint"}))
    session.expire_all()
    assert quality_state(session) == before
    rows = {lot_no: re.findall(r"<td[^>]*>(.*?)</td>", row, re.S) for lot_no, row in
            re.findall(r'<tr data-lot="([^"]+)"[^>]*>(.*?)</tr>', body, re.S)}
    assert list(rows) == ["LOT-Q", "LOT-S"]
    cells = [re.sub(r"<[^>]+>", "", c).strip() for c in rows["LOT-Q"]]
    assert cells[1:] == ["Queued", "WB", "OEM", "250", "no", "held"]
    shipped = [re.sub(r"<[^>]+>", "", c).strip() for c in rows["LOT-S"]]
    assert shipped[1:] == ["Shipped", "PACK", "OEM", "100", "yes",
                           "listed, not held (shipped)"]
    assert '<strong data-count="to_hold">1</strong>' in body
    assert '<strong data-count="shipped">1</strong>' in body


def test_match_preview_keeps_counts_past_its_limit(session, receive):
    for n in range(3):
        receive(10, lot_no=f"LOT-{n}", fab_lot="FAB-L")
    found, rows = quality.match_preview(session, {"fab_lot": "FAB-L"}, limit=2)
    assert len(found["to_hold"]) == 3
    assert [(r.lot_no, r.quantity, r.customer, r.action, r.shipped) for r in rows] == [
        ("LOT-0", 10, "OEM", "to_hold", False), ("LOT-1", 10, "OEM", "to_hold", False)]


# --- equipment windows in plant time --------------------------------------------------

# 07:45 on 9 March in Shanghai is 23:45 on 8 March in UTC: the dates differ.
RAN_AT = datetime(2026, 3, 8, 23, 45, tzinfo=UTC)


def _ran_on_saw(session, receive, lot_no: str, at: datetime) -> Lot:
    with simulated_time(at):
        lot = receive(100, lot_no=lot_no)
        track_in(session, lot, "SAW-1")
        track_out(session, lot)
    return lot


def test_a_mass_hold_window_is_typed_in_plant_time_and_stored_in_utc(
        client, session, receive, make_user, login):
    _ran_on_saw(session, receive, "LOT-NIGHT", RAN_AT)
    # Ran at 07:45 UTC, which is 15:45 plant time: outside the window typed below.
    _ran_on_saw(session, receive, "LOT-DAY", datetime(2026, 3, 9, 7, 45, tzinfo=UTC))
    login(make_user("qa"))
    data = {"kind": "equipment", "value": "SAW-1", "since": "2026-03-09T07:30",
            "until": "2026-03-09T08:00", "reason": "H-ENG", "comment": "Blade wear"}
    body = text(client.post("/holds/mass", data=data))
    assert re.findall(r'<tr data-lot="([^"]+)"', body) == ["LOT-NIGHT"]
    assert "2026-03-09 07:30 to 2026-03-09 08:00 plant time (Asia/Shanghai)" in body
    assert "2026-03-08 23:30 to 2026-03-09 00:00 UTC" in body
    assert "Since (plant time)" in body
    assert client.post("/holds/mass", data={**data, "confirm": "1"}).status_code == 303
    session.expire_all()
    placed = session.scalars(select(Hold)).one()
    assert placed.lot.lot_no == "LOT-NIGHT"
    assert placed.data["match"] == {"equipment": "SAW-1", "since": "2026-03-08T23:30:00+00:00",
                                    "until": "2026-03-09T00:00:00+00:00"}


def test_the_api_keeps_times_with_their_offset(api, session, receive):
    _ran_on_saw(session, receive, "LOT-NIGHT", RAN_AT)
    resp = api("qa").get("/holds/preview?equipment=SAW-1"
                         "&since=2026-03-09T07:30:00%2B08:00&until=2026-03-09T00:00:00Z")
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["to_hold"] == ["LOT-NIGHT"]
    utc = api("qa").get("/holds/preview?equipment=SAW-1"
                        "&since=2026-03-09T07:30:00Z")
    assert utc.get_json()["to_hold"] == []


def test_a_future_hold_window_is_plant_time_and_shown_in_plant_time(
        client, session, receive, make_user, login):
    _ran_on_saw(session, receive, "LOT-NIGHT", RAN_AT)
    login(make_user("qa"))
    data = {"kind": "equipment", "value": "SAW-1", "since": "2026-03-09T07:30",
            "at_step": "FT", "reason": "H-ENG", "comment": "Blade wear"}
    assert client.post("/holds/future", data={**data, "confirm": "1"}).status_code == 303
    rule = session.scalars(select(FutureHold)).one()
    assert rule.match["since"] == "2026-03-08T23:30:00+00:00"
    page = text(client.get("/holds/future"))
    assert "2026-03-09 07:30" in page and "2026-03-08T23:30" not in page


def test_typed_times(app):
    with app.app_context():
        assert _when("") is None
        assert _when("2026-03-09T07:30") == "2026-03-08T23:30:00+00:00"
        assert _when("2026-03-09T07:30+02:00") == "2026-03-09T07:30+02:00"
        assert _when("yesterday") == "yesterday"
        assert plant_time("2026-03-08T23:30:00+00:00") == "2026-03-09 07:30"
        assert plant_time("2026-03-08T23:30:00") == "2026-03-09 07:30"
        assert plant_time("") == "" and plant_time("soon") == "soon"
        assert window({"kind": "lots", "since": "2026-03-09T07:30"}) is None
        assert window({"kind": "equipment", "since": "soon"}) is None
        assert window({"kind": "equipment", "since": "2026-03-09T07:30"}) == {
            "since": "2026-03-09 07:30", "since_utc": "2026-03-08 23:30"}
