"""The process control API: plans, samples, limits, the track-out's sample due, the
reaction plan (tool stopped, lots held, shipped lots listed) and closing an event; every
refusal leaves the database as it was."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from mes.catalog.models import Equipment, EquipmentStateChange
from mes.floor import services as floor
from mes.floor.models import Lot
from mes.quality.models import Hold
from mes.spc import services as spc
from mes.spc.models import SpcEvent, SpcSubgroup
from tests.helpers import refused
from tests.spc.helpers import at_wb, finish_wb, make_plan, sample

PLAN = {"code": "WB-PULL", "step": "WB", "characteristic": "Wire pull", "unit": "gf",
        "subgroup_size": 5, "frequency": "lot", "lsl": 3.0, "usl": 12.0, "target": 8.0,
        "equipment_kind": "wire_bonder"}
NARROW = [9.8, 9.9, 10.0, 10.1, 10.2]
WIDE = [9.7, 9.9, 10.0, 10.1, 10.3]


def tool_state(session, code: str) -> str:
    return session.scalar(select(Equipment.state).where(Equipment.code == code))


def holds_of(session, lot_no: str) -> list[tuple[str, dict]]:
    return [(h.source, h.data) for h in session.scalars(
        select(Hold).join(Lot, Lot.id == Hold.lot_id).where(Lot.lot_no == lot_no))]


# --- plans -----------------------------------------------------------------------------

def test_an_engineer_creates_a_plan(session, plant, api):
    resp = api("engineer").post("/spc/plans", json={**PLAN, "rules": [4, 1]})
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert (body["code"], body["step"], body["chart"], body["frequency"], body["rules"]) == \
        ("WB-PULL", "WB", "xbar_r", "lot", [1, 4])
    got = api("operator").get("/spc/plans/WB-PULL").get_json()
    assert got["limits"] is None and got["subgroups"] == [] and got["versions"] == []
    assert [p["code"] for p in api("qa").get("/spc/plans?step=WB").get_json()["items"]] == \
        ["WB-PULL"]


@pytest.mark.parametrize("role", ["operator", "qa", "planner", "customer"])
def test_only_engineers_create_plans(session, plant, api, role):
    caller = api(role)
    refused(session, lambda: caller.post("/spc/plans", json=PLAN), 403, "forbidden")


def test_customers_read_no_plan_nor_event(session, plant, api):
    make_plan(session)
    customer = api("customer")
    assert customer.get("/spc/plans/WB-PULL").status_code == 403
    assert customer.get("/spc/events").status_code == 403


@pytest.mark.parametrize("change, status, code, field", [
    ({"step": "NOPE"}, 422, "invalid", "step"),
    ({"product": "NOPE"}, 422, "invalid", "product"),
    ({"lsl": 12.0, "usl": 3.0}, 422, "invalid", "usl"),
    ({"target": 20.0}, 422, "invalid", "target"),
    ({"frequency": "weekly"}, 422, "invalid", "frequency"),
    ({"frequency": "hours:0"}, 422, "invalid", "frequency"),
    ({"subgroup_size": 26}, 422, "invalid", "subgroup_size"),
    ({"subgroup_size": 0}, 422, "invalid", "subgroup_size"),
    ({"rules": [5]}, 422, "invalid", "rules"),
    ({"lsl": 1e300}, 422, "invalid", "lsl"),
])
def test_a_bad_plan_is_refused(session, plant, api, change, status, code, field):
    eng = api("engineer")
    refused(session, lambda: eng.post("/spc/plans", json={**PLAN, **change}),
            status, code, field)


def test_a_duplicate_plan_code_is_refused(session, plant, api):
    make_plan(session)
    eng = api("engineer")
    refused(session, lambda: eng.post("/spc/plans", json=PLAN), 409, "duplicate")


def test_a_plan_changes_and_retires(session, plant, api, receive):
    make_plan(session)
    eng = api("engineer")
    resp = eng.patch("/spc/plans/WB-PULL", json={"rules": [1], "usl": 13.0, "active": False})
    assert resp.status_code == 200 and resp.get_json()["rules"] == [1]
    assert resp.get_json()["active"] is False
    refused(session, lambda: eng.patch("/spc/plans/WB-PULL", json={"lsl": 20.0}), 422,
            "invalid", "usl")
    lot = at_wb(session, receive)
    op = api("operator")
    refused(session, lambda: op.post("/spc/plans/WB-PULL/samples", json={
        "lot": lot.lot_no, "equipment": "WB-1", "values": NARROW}), 409, "not_active")


# --- samples ---------------------------------------------------------------------------

def test_a_sample_answers_mean_range_and_spec_flags(session, plant, api, receive):
    make_plan(session)
    lot = at_wb(session, receive)
    resp = api("operator").post("/spc/plans/WB-PULL/samples", json={
        "lot": lot.lot_no, "equipment": "WB-1", "values": [2.5, 8, 8, 8, 12.5]})
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert (body["mean"], body["range"], body["sd"]) == (7.8, 10.0, None)
    assert body["out_of_spec"] == [2.5, 12.5]
    assert (body["violations"], body["event"], body["limits_version"]) == ([], None, None)


@pytest.mark.parametrize("change, field", [
    ({"values": [1, 2, 3]}, "values"),
    ({"values": []}, "values"),
    ({"values": [1, 2, 3, 4, "x"]}, "values"),
    ({"lot": "NOPE"}, "lot"),
    ({"equipment": "NOPE"}, "equipment"),
    ({"equipment": "SAW-1"}, "equipment"),   # a saw, the plan measures wire bonders
    ({"equipment": "WB-2"}, "lot"),          # the lot did not run on WB-2
])
def test_a_bad_sample_is_refused(session, plant, api, receive, change, field):
    make_plan(session)
    lot = at_wb(session, receive)
    body = {"lot": lot.lot_no, "equipment": "WB-1", "values": NARROW, **change}
    op = api("operator")
    refused(session, lambda: op.post("/spc/plans/WB-PULL/samples", json=body),
            422, "invalid", field)


def test_a_lot_of_another_product_is_refused(session, plant, api, receive):
    make_plan(session, product="P2")
    lot = at_wb(session, receive)
    op = api("operator")
    refused(session, lambda: op.post("/spc/plans/WB-PULL/samples", json={
        "lot": lot.lot_no, "equipment": "WB-1", "values": NARROW}), 422, "invalid", "lot")


def test_unknown_plan_is_404(session, plant, api):
    assert api("operator").post("/spc/plans/NOPE/samples", json={
        "lot": "L", "equipment": "WB-1", "values": [1]}).status_code == 404


# --- limits ----------------------------------------------------------------------------

def test_limits_need_25_subgroups(session, plant, api, receive):
    plan = make_plan(session)
    lot = at_wb(session, receive)
    for _ in range(24):
        sample(session, plan, lot, NARROW)
    eng, op = api("engineer"), api("operator")
    refused(session, lambda: eng.post("/spc/plans/WB-PULL/limits", json={}), 422,
            "too_few_subgroups", "from_subgroups")
    refused(session, lambda: eng.post("/spc/plans/WB-PULL/limits",
                                      json={"from_subgroups": 10}), 422, "invalid",
            "from_subgroups")
    refused(session, lambda: op.post("/spc/plans/WB-PULL/limits", json={}),
            403, "forbidden")
    sample(session, plan, lot, WIDE)
    resp = eng.post("/spc/plans/WB-PULL/limits", json={})
    assert resp.status_code == 201, resp.get_json()
    # X̿ = 10.0; R̄ = (24·0.4 + 0.6)/25 = 0.408; UCL = 10 + 0.577·0.408 = 10.235416.
    body = resp.get_json()
    assert (body["version"], body["subgroups"]) == (1, 25)
    assert body["center"] == pytest.approx(10.0) and body["r_center"] == pytest.approx(0.408)
    assert body["ucl"] == pytest.approx(10.235416) and body["r_ucl"] == pytest.approx(0.862512)
    summary = api("operator").get("/spc/plans/WB-PULL").get_json()
    assert summary["limits"]["version"] == 1 and len(summary["subgroups"]) == 25
    assert summary["capability"]["cp"] is not None


# --- the track-out's sample due --------------------------------------------------------

def test_every_lot_plan_holds_back_the_track_out_until_its_subgroup(session, plant, api,
                                                                     receive):
    make_plan(session, frequency="lot")
    lot = at_wb(session, receive)
    op = api("operator")
    out = {"step": "WB", "good_qty": 1000}
    error = refused(session, lambda: op.post(f"/lots/{lot.lot_no}/track-out", json=out),
                    409, "sample_due")
    assert "WB-PULL" in error["message"]
    assert op.post("/spc/plans/WB-PULL/samples", json={
        "lot": lot.lot_no, "equipment": "WB-1", "values": NARROW}).status_code == 201
    resp = op.post(f"/lots/{lot.lot_no}/track-out", json=out)
    assert resp.status_code == 200, resp.get_json()


def test_the_subgroup_of_an_earlier_pass_does_not_count(session, plant, receive):
    plan = make_plan(session, frequency="lot")
    lot = at_wb(session, receive)
    sample(session, plan, lot, NARROW)
    finish_wb(session, lot)
    # Back through WB (a second run): its own subgroup is due again.
    other = at_wb(session, receive)
    with pytest.raises(Exception) as caught:
        floor.track_out(session, "op", other, step="WB", good_qty=1000)
    assert caught.value.code == "sample_due"


@pytest.mark.parametrize("kw", [{"frequency": "hours:8"}, {"product": "P2"},
                                {"equipment_kind": "saw", "step": "SAW"}])
def test_plans_that_do_not_apply_do_not_hold_back_the_track_out(session, plant, receive, kw):
    make_plan(session, **kw)
    lot = at_wb(session, receive)
    finish_wb(session, lot)
    assert lot.step_code == "FT"


def test_a_retired_plan_asks_for_nothing(session, plant, receive):
    plan = make_plan(session, frequency="lot")
    spc.update_plan(session, "eng", plan, {"active": False})
    lot = at_wb(session, receive)
    assert spc.due_samples(session, lot) == []
    finish_wb(session, lot)


def test_due_samples_for_the_station(session, plant, receive):
    lot_plan = make_plan(session, frequency="lot")
    hours = make_plan(session, code="WB-SHEAR", frequency="hours:4")
    lot = at_wb(session, receive)
    assert [p.code for p in spc.due_samples(session, lot)] == ["WB-PULL", "WB-SHEAR"]
    sample(session, hours, lot, NARROW)
    assert [p.code for p in spc.due_samples(session, lot)] == ["WB-PULL"]
    sample(session, lot_plan, lot, NARROW)
    assert spc.due_samples(session, lot) == []


# --- the reaction plan -----------------------------------------------------------------

@pytest.fixture
def history(session, plant, receive):
    """An every-8-hours plan at WB with frozen limits (X̿ 10.0, UCL 10.235416) from a lot
    on WB-1, then on WB-1: a lot measured in control, a lot not measured, a lot shipped
    since, and on WB-2 another lot."""
    plan = make_plan(session, frequency="hours:8")
    base = at_wb(session, receive)
    for i in range(25):
        sample(session, plan, base, WIDE if i == 24 else NARROW)
    finish_wb(session, base)
    spc.freeze_limits(session, "eng", plan)
    session.commit()
    good = at_wb(session, receive)
    assert sample(session, plan, good, NARROW).subgroup.in_control is True
    finish_wb(session, good)
    unmeasured = at_wb(session, receive)
    finish_wb(session, unmeasured)
    shipped = at_wb(session, receive)
    finish_wb(session, shipped)
    session.execute(update(Lot).where(Lot.id == shipped.id).values(state="shipped"))
    elsewhere = at_wb(session, receive, tool="WB-2")
    finish_wb(session, elsewhere)
    session.commit()
    return {"plan": plan, "base": base.lot_no, "good": good.lot_no,
            "unmeasured": unmeasured.lot_no, "shipped": shipped.lot_no,
            "elsewhere": elsewhere.lot_no}


def test_an_out_of_control_subgroup_stops_the_tool_and_holds_its_lots(session, api, receive,
                                                                        history):
    bad = at_wb(session, receive)
    resp = api("operator").post("/spc/plans/WB-PULL/samples", json={
        "lot": bad.lot_no, "equipment": "WB-1", "values": [11.0] * 5})
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["violations"][0] == {"rule": 1, "chart": "xbar"}
    detail = body["event_detail"]
    assert detail["id"] == body["event"] and detail["state"] == "open"
    assert detail["equipment"] == "WB-1" and detail["rule"] == 1
    assert detail["held_lots"] == sorted([history["unmeasured"], bad.lot_no])
    assert detail["shipped_lots"] == [history["shipped"]]
    assert tool_state(session, "WB-1") == "engineering"
    change = session.scalars(select(EquipmentStateChange).order_by(
        EquipmentStateChange.id.desc())).first()
    assert (change.to_state, change.by) == ("engineering", "system")
    for lot_no in detail["held_lots"]:
        assert holds_of(session, lot_no) == [
            ("spc", {"spc_event": body["event"], "plan": "WB-PULL", "triggered_by":
                     holds_of(session, lot_no)[0][1]["triggered_by"]})]
    for lot_no in (history["base"], history["good"], history["elsewhere"],
                   history["shipped"]):
        assert holds_of(session, lot_no) == []
    # The stopped tool refuses track-in.
    other = receive(500)
    floor.track_in(session, "op", other, step="SAW", equipment="SAW-1")
    floor.track_out(session, "op", other, step="SAW", good_qty=500)
    session.commit()
    op = api("operator")
    refused(session, lambda: op.post(f"/lots/{other.lot_no}/track-in", json={
        "step": "WB", "equipment": "WB-1", "materials": ["AU-1"]}), 409,
        "equipment_unavailable")
    listed = api("qa").get("/spc/events?state=open").get_json()["items"]
    assert [e["id"] for e in listed] == [body["event"]]


def test_a_second_violation_joins_the_open_event(session, receive, history):
    bad = at_wb(session, receive)
    first = sample(session, history["plan"], bad, [11.0] * 5)
    second = sample(session, history["plan"], bad, [11.5] * 5)
    assert second.event.id == first.event.id
    assert session.scalar(select(SpcEvent.id).where(SpcEvent.id != first.event.id)) is None
    assert len(holds_of(session, bad.lot_no)) == 1
    assert second.subgroup.id in first.event.subgroups
    # The second: beyond the UCL again, two of two beyond 2σ, and two ranges of 0 below
    # R̄ − 2·R̄/3 on the range chart.
    assert [(h["rule"], h["chart"]) for h in first.event.hits] == \
        [(1, "xbar"), (1, "xbar"), (2, "xbar"), (2, "spread")]


def test_closing_an_event_records_cause_and_action(session, api, receive, history):
    bad = at_wb(session, receive)
    event = sample(session, history["plan"], bad, [11.0] * 5).event
    path = f"/spc/events/{event.id}/close"
    body = {"cause": "Worn capillary", "action": "Capillary replaced, 5 lots re-pulled"}
    op, qa, eng = api("operator"), api("qa"), api("engineer")
    refused(session, lambda: op.post(path, json=body), 403, "forbidden")
    refused(session, lambda: qa.post(path, json={"cause": "", "action": "x"}), 422,
            "invalid", "cause")
    resp = qa.post(path, json=body)
    assert resp.status_code == 200, resp.get_json()
    closed = resp.get_json()
    assert (closed["state"], closed["cause"], closed["action"]) == \
        ("closed", "Worn capillary", body["action"])
    assert closed["closed_by"] and closed["closed_at"]
    # The measured lot still runs on the tool: back to productive. The holds stay.
    assert tool_state(session, "WB-1") == "productive"
    assert len(holds_of(session, bad.lot_no)) == 1
    refused(session, lambda: eng.post(path, json=body), 409, "not_open")
    assert qa.get(f"/spc/events/{event.id}").get_json()["state"] == "closed"


def test_a_subgroup_shows_the_limits_version_that_judged_it(session, api, receive, history):
    plan = history["plan"]
    lot = at_wb(session, receive)
    sample(session, plan, lot, NARROW)
    spc.freeze_limits(session, "eng", plan)
    sample(session, plan, lot, NARROW)
    points = api("engineer").get("/spc/plans/WB-PULL").get_json()["subgroups"]
    assert [p["limits_version"] for p in points[-3:]] == [1, 1, 2]
    assert [v["version"] for v in
            api("engineer").get("/spc/plans/WB-PULL").get_json()["versions"]] == [1, 2]
    assert session.scalar(select(SpcSubgroup.limits_id).order_by(SpcSubgroup.id.desc())
                          .limit(1)) == plan.limits_id


def test_a_tool_in_engineering_before_the_event_stays_there(session, receive, history):
    from mes.catalog import services as cat

    bad = at_wb(session, receive)
    tool = session.scalar(select(Equipment).where(Equipment.code == "WB-1"))
    cat.update_equipment(session, "eng", tool, {"state": "engineering",
                                                "comment": "Trial of a new capillary"})
    session.commit()
    event = sample(session, history["plan"], bad, [11.0] * 5).event
    assert event.equipment_state_before == "engineering"
    spc.close_event(session, "qa", event, cause="Trial settings", action="Trial ended")
    session.commit()
    assert tool_state(session, "WB-1") == "engineering"


def test_the_last_open_event_of_a_tool_releases_it(session, receive, history):
    bad = at_wb(session, receive)
    first = sample(session, history["plan"], bad, [11.0] * 5).event
    other = make_plan(session, code="WB-SHEAR", frequency="hours:8")
    for _ in range(25):
        sample(session, other, bad, NARROW)
    spc.freeze_limits(session, "eng", other)
    second = sample(session, other, bad, [11.0] * 5).event
    assert second.id != first.id and second.held_lots == [bad.lot_no]
    spc.close_event(session, "qa", first, cause="c", action="a")
    session.commit()
    assert tool_state(session, "WB-1") == "engineering"
    spc.close_event(session, "qa", second, cause="c", action="a")
    session.commit()
    assert tool_state(session, "WB-1") == "productive"


def test_the_station_page_refuses_the_track_out_with_the_plan_named(session, plant, receive,
                                                                      login, make_user):
    make_plan(session, frequency="lot")
    lot = at_wb(session, receive)
    station = login(make_user("operator"))
    page = refused(session, lambda: station.post("/station", data={
        "lot": lot.lot_no, "step": "WB", "good_qty": "1000", "action": "track_out"}), 409)
    assert f"Lot {lot.lot_no} has a sample due before track-out: WB-PULL." in page
