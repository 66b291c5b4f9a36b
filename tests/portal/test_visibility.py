"""What customers see, per the plant's settings: a hold only after PORTAL_HOLD_DELAY_MINUTES
or once QA notifies them (PORTAL_HOLD_POLICY), on the portal and in their API answers
alike; QA's notice (audited, refused twice and to other roles with nothing changed); the
reject Pareto by customer category, never by the plant's reason codes; and an expected
completion never earlier than the remaining steps' minimum."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from mes.audit.models import AuditEvent
from mes.catalog.models import ReasonCode
from mes.catalog.services import StepInfo
from mes.config import ConfigError, load_config
from mes.db import simulated_time, utcnow
from mes.portal import services
from mes.quality.models import Hold
from tests.floor.helpers import track_in, track_out
from tests.helpers import as_user, refused

HOURS_AGO_5 = timedelta(hours=5)


def _rows(html: str, attr: str) -> list[str]:
    return re.findall(rf'<tr data-{attr}="([^"]+)"', html)


@pytest.fixture
def policy(app, monkeypatch):
    """Set the plant's policy for one test: policy("delay", 240) or policy("notify")."""
    def set_policy(name: str, minutes: int = 240) -> None:
        monkeypatch.setitem(app.config, "PORTAL_HOLD_POLICY", name)
        monkeypatch.setitem(app.config, "PORTAL_HOLD_DELAY_MINUTES", minutes)
    return set_policy


def _placed_ago(session, holds, ago: timedelta) -> None:
    session.execute(update(Hold).where(Hold.id.in_([h.id for h in holds]))
                    .values(placed_at=utcnow() - ago))
    session.commit()
    for h in holds:
        session.refresh(h)


def _customer_view(app, client, token_for, side) -> dict:
    """Everything a customer reads of the lot's holds: portal, API, history, reports."""
    headers = token_for(side.user)
    portal = as_user(app, side.user)
    lot = client.get(f"/api/v1/lots/{side.wip.lot_no}", headers=headers).get_json()
    held = client.get("/api/v1/lots?on_hold=true", headers=headers).get_json()["items"]
    free = client.get("/api/v1/lots?on_hold=false", headers=headers).get_json()["items"]
    history = client.get(f"/api/v1/lots/{side.wip.lot_no}/history?limit=500",
                         headers=headers).get_json()["items"]
    report = client.get("/api/v1/reports/holds", headers=headers).get_json()
    wip_report = client.get("/api/v1/reports/wip", headers=headers).get_json()["rows"]
    index = portal.get("/portal/").get_data(as_text=True)
    stage = re.search(r'<tr data-stage="WB">(.*?)</tr>', index, re.S).group(1)
    return {"holds_page": _rows(portal.get("/portal/holds").get_data(as_text=True), "hold"),
            "on_hold": lot["on_hold"], "holds": lot["holds"],
            "listed_held": [x["lot_no"] for x in held],
            "listed_free": side.wip.lot_no in [x["lot_no"] for x in free],
            "hold_events": [e["kind"] for e in history if e["kind"] in ("hold", "release")],
            "report_open": report["open"],
            "wip_on_hold": sum(r["on_hold"] for r in wip_report),
            "stage_on_hold": re.search(r"data-on-hold>([^<]*)<", stage).group(1).strip()}


def test_under_the_delay_a_customer_sees_a_hold_only_once_the_delay_has_passed(
        app, session, world, client, token_for, api, policy):
    a, _b = world
    policy("delay", 240)
    fresh = _customer_view(app, client, token_for, a)
    assert fresh == {"holds_page": [], "on_hold": False, "holds": [], "listed_held": [],
                     "listed_free": True, "hold_events": [], "report_open": 0,
                     "wip_on_hold": 0, "stage_on_hold": ""}
    # The plant sees the hold at once.
    plant = api("qa").get(f"/lots/{a.wip.lot_no}").get_json()
    assert plant["on_hold"] is True and plant["holds"] == [a.open_hold.id]

    _placed_ago(session, [a.open_hold, a.released_hold], HOURS_AGO_5)
    later = _customer_view(app, client, token_for, a)
    assert later == {"holds_page": [str(a.open_hold.id), str(a.released_hold.id)],
                     "on_hold": True, "holds": [a.open_hold.id],
                     "listed_held": [a.wip.lot_no], "listed_free": False,
                     "hold_events": ["hold", "release", "hold"], "report_open": 1,
                     "wip_on_hold": 1, "stage_on_hold": "1"}


def test_under_the_notice_policy_only_the_holds_qa_notified_the_customer_of_are_seen(
        app, session, world, client, token_for, api, policy):
    a, _b = world
    policy("notify")
    _placed_ago(session, [a.open_hold, a.released_hold], timedelta(days=5))
    assert _customer_view(app, client, token_for, a)["holds"] == []

    resp = api("qa").post(f"/holds/{a.open_hold.id}/notify-customer")
    assert resp.status_code == 200, resp.get_json()
    answer = resp.get_json()
    assert answer["customer_notified_at"] and answer["customer_notified_by"]
    seen = _customer_view(app, client, token_for, a)
    assert (seen["holds"], seen["holds_page"], seen["hold_events"]) == (
        [a.open_hold.id], [str(a.open_hold.id)], ["hold"])
    # The notice is audited; the customer's answers still name no one.
    session.expire_all()
    record = session.scalars(select(AuditEvent).where(
        AuditEvent.code == "hold:notify_customer")).one()
    assert record.subject_key == str(a.open_hold.id)
    assert record.data["customer"] == a.customer
    hold = session.get(Hold, a.open_hold.id)
    assert hold.customer_notified_by == record.actor
    assert record.actor not in as_user(app, a.user).get("/portal/holds").get_data(as_text=True)


def test_notifying_twice_or_without_the_permission_is_refused_and_changes_nothing(
        app, session, world, api, policy, make_user):
    a, _b = world
    policy("notify")
    path = f"/holds/{a.open_hold.id}/notify-customer"
    callers = {role: api(role) for role in ("operator", "planner", "engineer", "qa", "admin")}
    customer = api("customer", customer=a.customer)
    qa = as_user(app, make_user("qa"))
    for role in ("operator", "planner", "engineer"):
        refused(session, lambda role=role: callers[role].post(path), 403, code="forbidden")
    refused(session, lambda: customer.post(path), 403, code="forbidden")
    refused(session, lambda: callers["qa"].post("/holds/999999/notify-customer"), 404,
            code="not_found")
    assert callers["qa"].post(path).status_code == 200
    refused(session, lambda: callers["admin"].post(path), 409, code="already_notified")
    # The page's action: refused the same way, with the hold page's link.
    page = refused(session, lambda: qa.post(f"/portal{path}"), 409)
    assert "already notified" in page
    session.expire_all()
    assert session.scalar(select(AuditEvent.id).where(
        AuditEvent.code == "hold:notify_customer").limit(2).offset(1)) is None


def test_the_hold_page_says_what_the_customer_sees_and_offers_the_notice(
        app, session, world, make_user, policy):
    a, _b = world
    qa = as_user(app, make_user("qa"))
    policy("delay", 240)
    page = qa.get(f"/holds/{a.open_hold.id}/view").get_data(as_text=True)
    assert 'data-customer-sees="no"' in page and "data-notify-customer" in page
    policy("notify")
    page = qa.get(f"/holds/{a.open_hold.id}/view").get_data(as_text=True)
    assert "only the holds QA notifies them of" in page
    resp = qa.post(f"/portal/holds/{a.open_hold.id}/notify-customer")
    assert resp.status_code == 303
    assert resp.headers["Location"].endswith(f"/holds/{a.open_hold.id}/view")
    page = qa.get(f"/holds/{a.open_hold.id}/view").get_data(as_text=True)
    assert 'data-customer-sees="yes"' in page and "data-notify-customer" not in page
    # An operator reads the panel without the button.
    op = as_user(app, make_user("operator"))
    page = op.get(f"/holds/{a.open_hold.id}/view").get_data(as_text=True)
    assert 'data-customer-sees="yes"' in page and "data-notify-customer" not in page


def test_customers_read_the_reject_pareto_by_category_never_by_reason_code(
        app, session, world, receive, client, token_for, api):
    a, _b = world
    session.execute(update(ReasonCode).where(ReasonCode.code == "R-BALL")
                    .values(customer_category="assembly"))
    session.commit()
    lot = receive(100, lot_no="AAA-REJ-1", product="P1", customer=a.customer)
    track_out(session, track_in(session, lot), good=90,
              rejects=[{"reason": "R-BALL", "qty": 6}, {"reason": "R-SCRATCH", "qty": 4}])
    rows = client.get("/api/v1/reports/rejects", headers=token_for(a.user)).get_json()["rows"]
    assert [(r["reason"], r["category"], r["step"], r["quantity"], r["kind"])
            for r in rows] == [("assembly", "assembly", None, 6, "reject"),
                               ("other", "other", None, 4, "reject"),
                               # The failures of the world's tested lot at final test.
                               ("test", "test", None, 4, "reject")]
    csv_text = client.get("/api/v1/reports/rejects?format=csv",
                          headers=token_for(a.user)).get_data(as_text=True)
    portal = as_user(app, a.user)
    page = portal.get("/portal/rejects").get_data(as_text=True)
    report_page = portal.get("/reports/rejects").get_data(as_text=True)
    assert _rows(page, "category") == ["assembly", "other", "test"]
    assert "Assembly" in page and 'data-total>14<' in page
    for text in (csv_text, page, report_page):
        assert "R-BALL" not in text and "R-SCRATCH" not in text
    # The plant keeps the reason codes and steps, with their category beside them.
    plant = api("qa").get("/reports/rejects").get_json()["rows"]
    assert {(r["reason"], r["category"]) for r in plant} >= {("R-BALL", "assembly"),
                                                             ("R-SCRATCH", "other")}
    assert all(r["step"] for r in plant)


def test_a_reason_codes_customer_category_is_one_of_the_categories(session, api):
    engineer = api("engineer")
    refused(session, lambda: engineer.post("/reason-codes", json={
        "code": "R-NEW", "kind": "reject", "description": "New",
        "customer_category": "secret"}), 422, code="invalid", field="customer_category")
    made = engineer.post("/reason-codes", json={
        "code": "R-NEW", "kind": "reject", "description": "New", "customer_category": "test"})
    assert made.status_code == 201 and made.get_json()["customer_category"] == "test"
    refused(session, lambda: engineer.patch("/reason-codes/R-NEW", json={
        "customer_category": "nope"}), 422, code="invalid", field="customer_category")
    patched = engineer.patch("/reason-codes/R-NEW", json={"customer_category": "visual"})
    assert patched.get_json()["customer_category"] == "visual"
    default = engineer.post("/reason-codes", json={
        "code": "R-NEW2", "kind": "reject", "description": "New"}).get_json()
    assert default["customer_category"] == "other"


def test_the_policy_settings_are_checked_at_start():
    with pytest.raises(ConfigError, match="PORTAL_HOLD_POLICY must be one of delay, notify"):
        load_config({"PORTAL_HOLD_POLICY": "never"}, environ={})
    with pytest.raises(ConfigError, match="PORTAL_HOLD_DELAY_MINUTES must be at least 0"):
        load_config({"PORTAL_HOLD_DELAY_MINUTES": -5}, environ={})
    config = load_config({"PORTAL_HOLD_POLICY": "notify"}, environ={})
    assert (config["PORTAL_HOLD_POLICY"], config["PORTAL_HOLD_DELAY_MINUTES"]) == ("notify",
                                                                                   240)


# --- expected completion: never before the remaining steps' minimum ----------------------

STEPS = tuple(StepInfo(seq=i, code=c, name=c, kind="assembly", equipment_kind=None,
                       min_yield=None, materials=()) for i, c in
              enumerate(("SAW", "WB", "FT", "PACK"), start=1))


def test_the_remaining_minimum_sums_the_shortest_process_times_ahead():
    times = services.CycleTimes({"SAW": 3.0}, 3.0, {"SAW": 0.5, "WB": 2.0, "FT": 1.0}, 0.25)
    # Queued at WB: WB 2 + FT 1 + PACK (no run: the shortest of all, 0.25).
    assert services.remaining_minimum(STEPS, 2, None, times) == 3.25
    # Running at WB for 1.5 h: 0.5 of WB left.
    assert services.remaining_minimum(STEPS, 2, 1.5, times) == 1.75
    # Running longer than the shortest run: the current step adds nothing, never below 0.
    assert services.remaining_minimum(STEPS, 4, 9.0, times) == 0.0
    empty = services.CycleTimes({}, services.DEFAULT_STEP_HOURS)
    assert services.remaining_minimum(STEPS, 3, None, empty) == (
        2 * services.DEFAULT_MIN_STEP_HOURS)


def test_a_lot_queued_for_days_is_never_expected_now(session, receive):
    now = utcnow().replace(microsecond=0)
    base = now - timedelta(days=3)
    with simulated_time(base):
        history = receive(10, lot_no="H-MIN", product="P2", customer="IND")
    # History: SAW processed in 1 h, WB in 2 h, FT in 30 min (queues before each).
    for start, end in ((1, 2), (4, 6), (8, 8.5)):
        with simulated_time(base + timedelta(hours=start)):
            track_in(session, history)
        with simulated_time(base + timedelta(hours=end)):
            track_out(session, history)
    times = services.cycle_times(session, now)
    assert times.min_per_step == {"SAW": 1.0, "WB": 2.0, "FT": 0.5}
    assert times.min_fallback == 0.5
    # OEM's lot arrived at FT 40 days ago (far beyond FT's median) and still waits.
    old = now - timedelta(days=40)
    with simulated_time(old):
        waiting = receive(20, lot_no="W-MIN")
    for start, end in ((0, 0.1), (1, 1.1)):
        with simulated_time(old + timedelta(hours=start)):
            track_in(session, waiting)
        with simulated_time(old + timedelta(hours=end)):
            track_out(session, waiting)
    assert services.cycle_times(session, now) == times  # 40 days ago: outside the window
    wip = services.wip(session, waiting.customer_id, now)
    row = next(r for r in wip.lots if r.lot.lot_no == "W-MIN")
    # FT 0.5 h + PACK (no run: the shortest of all, 0.5 h) = 1 h; the median estimate
    # alone would be PACK's fallback median only, not less than this.
    assert row.earliest == now + timedelta(hours=1)
    assert row.expected >= row.earliest > now
    # Running at FT for 10 minutes: 20 minutes of FT left, plus PACK's 30.
    with simulated_time(now - timedelta(minutes=10)):
        track_in(session, waiting)
    row = next(r for r in services.wip(session, waiting.customer_id, now).lots
               if r.lot.lot_no == "W-MIN")
    assert row.earliest == now + timedelta(minutes=50)
    assert row.expected >= row.earliest
