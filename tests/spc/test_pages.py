"""The process control pages: the plan's charts with the figures worked out by hand, the
permissions of each role (a refusal changes nothing), entering a subgroup from the page and
from the station's prompt, closing an event, Chinese rendering."""

from __future__ import annotations

import json
import re
from html import unescape

import pytest
from sqlalchemy import select

from mes.catalog.models import Equipment
from mes.floor import services as floor
from mes.spc import services as spc
from mes.spc.models import SpcEvent, SpcLimits, SpcPlan, SpcSubgroup
from tests.helpers import refused
from tests.spc.helpers import at_wb, make_plan, sample

# A fixed data set, n = 5: 25 subgroups of mean 8.0 and range 0.4, so X̿ = 8.0, R̄ = 0.4,
# UCL = 8.0 + 0.577·0.4 = 8.2308, LCL = 7.7692; range chart UCL = 2.114·0.4 = 0.8456, LCL
# 0; σ = R̄/d2 = 0.4/2.326. Then one subgroup of mean 8.4: beyond the UCL (rule 1).
IN_CONTROL = [7.8, 7.9, 8.0, 8.1, 8.2]
OUT = [8.3, 8.4, 8.5, 8.4, 8.4]


def specs(html: str) -> dict[str, dict]:
    """The chart specifications of a page by figure id, as js/charts.js reads them."""
    found = re.findall(r"<figure [^>]*id=\"([^\"]+)\" data-spec='([^']*)'", html)
    return {fid: json.loads(unescape(text)) for fid, text in found}


@pytest.fixture
def charted(session, receive, plant, app):
    """Plan WB-PULL (n = 5, LSL 3, USL 12) with 25 subgroups, limits frozen from them, and
    a 26th subgroup beyond the UCL that opened an event (WB-1 stopped, the lot held)."""
    with app.app_context():
        plan = make_plan(session)
        lot = at_wb(session, receive)
        for _ in range(25):
            sample(session, plan, lot, IN_CONTROL)
        spc.freeze_limits(session, "engineer-1", plan)
        session.commit()
        judged = sample(session, plan, lot, OUT)
    assert judged.event is not None
    return {"plan": plan, "lot": lot, "event": judged.event}


def test_plan_page_draws_the_hand_worked_limits_and_marks_the_violating_point(
        make_user, login, charted):
    html = login(make_user("engineer")).get("/spc/plans/WB-PULL").get_data(as_text=True)
    charts = specs(html)
    xbar, spread, hist = charts["chart-xbar"], charts["chart-spread"], charts["chart-histogram"]
    assert xbar["type"] == "control" and hist["type"] == "histogram"
    means, center, ucl, lcl, usl, lsl = (s["values"] for s in xbar["series"])
    assert means == [8.0] * 25 + [8.4]
    # The baseline was entered before any limits (not judged); the 26th is judged by v1.
    assert center == [None] * 25 + [8.0]
    assert ucl[-1] == pytest.approx(8.0 + 0.577 * 0.4)
    assert lcl[-1] == pytest.approx(8.0 - 0.577 * 0.4)
    assert usl == [12.0] * 26 and lsl == [3.0] * 26
    assert xbar["series"][0]["marked"] == [False] * 25 + [True]
    ranges, r_center, r_ucl, r_lcl = (s["values"] for s in spread["series"])
    assert ranges[-1] == pytest.approx(0.2) and r_center[-1] == pytest.approx(0.4)
    assert r_ucl[-1] == pytest.approx(2.114 * 0.4) and r_lcl[-1] == 0
    assert spread["series"][0]["marked"] == [False] * 26
    # The tooltip names the lot, the tool, the limits version and the rule.
    last = xbar["points"][-1]
    assert charted["lot"].lot_no in last["title"] and "WB-1" in last["title"]
    assert "Limits version 1" in last["lines"]
    assert "Rule 1 on the Mean / individuals chart" in last["lines"]
    assert xbar["points"][0]["lines"][1] == "Not judged: no control limits yet"
    # The histogram counts every value: 130, 25 each at 7.8 ... 8.2 and the last five.
    assert sum(b["count"] for b in hist["bins"]) == 130
    assert [m["x"] for m in hist["marks"]] == [3.0, 12.0, 8.0]
    # Capability: σ within = 0.4/2.326; μ = (125·8.0 + 42.0)/130.
    sigma = 0.4 / 2.326
    mu = (125 * 8.0 + 42.0) / 130
    cp = (12.0 - 3.0) / (6 * sigma)
    cpk = min(12.0 - mu, mu - 3.0) / (3 * sigma)
    assert f'data-cap="cp">{cp:,.2f}<' in html
    assert f'data-cap="cpk">{cpk:,.2f}<' in html
    # The table holds the same points, the violating one flagged, and links the event.
    assert html.count('class="spc-violation"') == 1
    assert f'href="/spc/events/{charted["event"].id}"' in html
    assert "<script>" not in html and "style=" not in html
    # The engineer may freeze limits and edit; the nav links the plans.
    assert 'action="/spc/plans/WB-PULL/limits"' in html
    assert 'href="/spc"' in html


def test_operator_sees_the_chart_without_engineer_actions(make_user, login, charted):
    html = login(make_user("operator")).get("/spc/plans/WB-PULL").get_data(as_text=True)
    assert "chart-xbar" in html
    assert "/spc/plans/WB-PULL/limits" not in html and "/spc/plans/WB-PULL/edit" not in html
    assert 'href="/spc/plans/WB-PULL/sample"' in html


@pytest.mark.parametrize("role", ["operator", "qa", "planner"])
def test_only_engineers_create_plans_and_freeze_limits(session, make_user, login, charted,
                                                      role):
    client = login(make_user(role))
    assert client.get("/spc/plans/new").status_code == 403
    refused(session, lambda: client.post("/spc/plans/new", data={
        "code": "X-1", "step": "WB", "characteristic": "x", "unit": "gf",
        "subgroup_size": "5", "frequency": "lot"}), 403)
    refused(session, lambda: client.post("/spc/plans/WB-PULL/limits", data={}), 403)
    refused(session, lambda: client.post("/spc/plans/WB-PULL/edit", data={
        "frequency": "lot"}), 403)


def test_customers_see_no_process_control(session, make_user, login, charted):
    client = login(make_user("customer"))
    for path in ("/spc", "/spc/plans/WB-PULL", "/spc/events", "/reports/spc",
                 f"/spc/events/{charted['event'].id}"):
        assert client.get(path).status_code == 403, path
    assert 'href="/spc"' not in client.get("/").get_data(as_text=True)


def test_engineer_creates_and_edits_a_plan(session, make_user, login, plant):
    client = login(make_user("engineer"))
    assert client.get("/spc/plans/new").status_code == 200
    resp = client.post("/spc/plans/new", data={
        "code": "DA-SHEAR", "step": "WB", "characteristic": "Die shear", "unit": "kgf",
        "subgroup_size": "3", "frequency": "hours", "hours": "8", "lsl": "5.0",
        "target": "9.5", "equipment_kind": "wire_bonder", "rule1": "1", "rule4": "1"})
    assert resp.status_code == 303, resp.get_data(as_text=True)[:2000]
    plan = session.scalars(select(SpcPlan).where(SpcPlan.code == "DA-SHEAR")).one()
    assert (plan.frequency_hours, plan.lsl, plan.usl, plan.rules, plan.chart) == (
        8, 5.0, None, [1, 4], "xbar_r")
    resp = client.post("/spc/plans/DA-SHEAR/edit", data={
        "frequency": "lot", "lsl": "4.5", "usl": "", "target": "9.5", "rule1": "1",
        "rule2": "1", "active": "1"})
    assert resp.status_code == 303
    session.refresh(plan)
    assert (plan.frequency_hours, plan.lsl, plan.rules, plan.active) == (None, 4.5, [1, 2],
                                                                          True)


def test_bad_plan_forms_are_refused_and_change_nothing(session, make_user, login, plant):
    client = login(make_user("engineer"))
    page = refused(session, lambda: client.post("/spc/plans/new", data={
        "code": "BAD", "step": "WB", "characteristic": "x", "unit": "gf",
        "subgroup_size": "5", "frequency": "lot", "lsl": "9", "usl": "3"}), 422)
    assert "The upper specification limit must be above the lower." in unescape(page)
    refused(session, lambda: client.post("/spc/plans/new", data={
        "code": "BAD", "step": "WB", "characteristic": "x", "unit": "gf",
        "subgroup_size": "40", "frequency": "lot"}), 422)
    refused(session, lambda: client.post("/spc/plans/new", data={
        "code": "BAD", "step": "NOPE", "characteristic": "x", "unit": "gf",
        "subgroup_size": "5", "frequency": "hours", "hours": "x"}), 422)


def test_freezing_from_too_few_subgroups_is_refused_and_changes_nothing(session, make_user,
                                                                        login, receive, app):
    with app.app_context():
        plan = make_plan(session)
        lot = at_wb(session, receive)
        for _ in range(10):
            sample(session, plan, lot, IN_CONTROL)
    client = login(make_user("engineer"))
    page = refused(session, lambda: client.post("/spc/plans/WB-PULL/limits", data={}), 422)
    assert "Control limits need 25 subgroups; plan WB-PULL has 10." in unescape(page)
    assert session.scalar(select(SpcLimits.id)) is None


def test_engineer_freezes_limits_from_the_page(session, make_user, login, receive, app):
    with app.app_context():
        plan = make_plan(session)
        lot = at_wb(session, receive)
        for _ in range(30):
            sample(session, plan, lot, IN_CONTROL)
    client = login(make_user("engineer"))
    resp = client.post("/spc/plans/WB-PULL/limits", data={"from_subgroups": "25"})
    assert resp.status_code == 303
    limits = session.scalars(select(SpcLimits)).one()
    assert (limits.version, limits.subgroups) == (1, 25)
    assert limits.ucl == pytest.approx(8.0 + 0.577 * 0.4)


def test_operator_enters_a_subgroup_and_sees_it_flagged(session, make_user, login, receive,
                                                        app):
    with app.app_context():
        make_plan(session)
    lot = at_wb(session, receive)
    client = login(make_user("operator"))
    page = client.get(f"/spc/plans/WB-PULL/sample?lot={lot.lot_no}&equipment=WB-1")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert html.count('name="value"') == 5 and f'value="{lot.lot_no}"' in html
    resp = client.post("/spc/plans/WB-PULL/sample", data={
        "lot": lot.lot_no, "equipment": "WB-1", "value": ["8", "8.1", "2.5", "8", "8"]},
        follow_redirects=True)
    text = unescape(resp.get_data(as_text=True))
    assert "Outside the specification limits: 2.5." in text
    assert "flash-warning" in text
    sg = session.scalars(select(SpcSubgroup)).one()
    assert sg.values == [8, 8.1, 2.5, 8, 8] and sg.out_of_spec == [2.5]


def test_a_bad_subgroup_is_refused_and_changes_nothing(session, make_user, login, receive,
                                                       app):
    with app.app_context():
        make_plan(session)
    lot = at_wb(session, receive)
    client = login(make_user("operator"))
    page = refused(session, lambda: client.post("/spc/plans/WB-PULL/sample", data={
        "lot": lot.lot_no, "equipment": "WB-1", "value": ["8", "8.1"]}), 422)
    assert "takes subgroups of 5 values; 2 given" in unescape(page)
    refused(session, lambda: client.post("/spc/plans/WB-PULL/sample", data={
        "lot": lot.lot_no, "equipment": "WB-1", "value": ["8", "x", "8", "8", "8"]}), 422)
    refused(session, lambda: client.post("/spc/plans/WB-PULL/sample", data={
        "lot": lot.lot_no, "equipment": "SAW-1", "value": ["8"] * 5}), 422)
    refused(session, lambda: make_user("planner") and login(make_user("planner")).post(
        "/spc/plans/WB-PULL/sample", data={"lot": lot.lot_no, "equipment": "WB-1",
                                          "value": ["8"] * 5}), 403,
            state=lambda s: s.scalar(select(SpcSubgroup.id)))


def test_station_prompts_for_a_due_sample_and_returns_after_it(session, make_user, login,
                                                               receive, app):
    with app.app_context():
        make_plan(session, frequency="lot")
    lot = at_wb(session, receive)
    client = login(make_user("operator"))
    html = client.get(f"/station?lot={lot.lot_no}").get_data(as_text=True)
    assert "data-sample-due" in html
    link = f"/spc/plans/WB-PULL/sample?lot={lot.lot_no}&amp;equipment=WB-1&amp;back=station"
    assert link in html
    # The track-out is refused until the subgroup is entered; nothing moves.
    page = refused(session, lambda: client.post("/station", data={
        "lot": lot.lot_no, "step": "WB", "action": "track_out",
        "good_qty": str(lot.quantity)}), 409)
    assert "has a sample due before track-out" in unescape(page)
    resp = client.post("/spc/plans/WB-PULL/sample", data={
        "lot": lot.lot_no, "equipment": "WB-1", "value": ["8"] * 5, "back": "station"})
    assert resp.status_code == 303 and resp.location == f"/station?lot={lot.lot_no}"
    assert "data-sample-due" not in client.get(f"/station?lot={lot.lot_no}").get_data(
        as_text=True)
    resp = client.post("/station", data={"lot": lot.lot_no, "step": "WB",
                                         "action": "track_out", "good_qty": str(lot.quantity)})
    assert resp.status_code == 303
    session.refresh(lot)
    assert lot.step_code != "WB"


def test_events_list_and_page_show_the_held_lots(make_user, login, charted):
    client = login(make_user("qa"))
    html = client.get("/spc/events").get_data(as_text=True)
    assert f'data-event="{charted["event"].id}"' in html
    html = client.get(f"/spc/events/{charted['event'].id}").get_data(as_text=True)
    assert f'href="/lots/{charted["lot"].lot_no}"' in html
    assert "Rule 1 on the Mean / individuals chart" in unescape(html)
    assert f'action="/spc/events/{charted["event"].id}/close"' in html


@pytest.mark.parametrize("role", ["engineer", "qa"])
def test_engineer_or_qa_closes_an_event_with_cause_and_action(session, make_user, login,
                                                              charted, role):
    event = charted["event"]
    client = login(make_user(role))
    resp = client.post(f"/spc/events/{event.id}/close", data={
        "cause": "Capillary worn", "action": "Capillary changed, lots re-measured"})
    assert resp.status_code == 303
    session.expire_all()
    assert (event.state, event.cause) == ("closed", "Capillary worn")
    assert session.scalars(select(Equipment).where(Equipment.code == "WB-1")).one().state \
        != "engineering"
    # Closing it again is refused and changes nothing.
    page = refused(session, lambda: client.post(f"/spc/events/{event.id}/close", data={
        "cause": "again", "action": "again"}), 409)
    assert "is closed already" in page


@pytest.mark.parametrize("role", ["operator", "planner"])
def test_other_roles_cannot_close_an_event(session, make_user, login, charted, role):
    event = charted["event"]
    client = login(make_user(role))
    assert "/close" not in client.get(f"/spc/events/{event.id}").get_data(as_text=True)
    refused(session, lambda: client.post(f"/spc/events/{event.id}/close", data={
        "cause": "x", "action": "y"}), 403)


def test_closing_without_a_cause_is_refused_and_changes_nothing(session, make_user, login,
                                                                charted):
    event = charted["event"]
    client = login(make_user("engineer"))
    page = refused(session, lambda: client.post(f"/spc/events/{event.id}/close", data={
        "cause": "", "action": "changed"}), 422)
    assert 'id="f-cause-error"' in page
    assert session.get(SpcEvent, event.id).state == "open"


def test_plans_list_and_pages_render_in_chinese(session, make_user, login, charted):
    user = make_user("engineer")
    user.locale = "zh_CN"
    session.commit()
    client = login(user)
    html = client.get("/spc").get_data(as_text=True)
    assert '<html lang="zh' in html
    assert "数据采集计划" in html
    html = client.get("/spc/plans/WB-PULL").get_data(as_text=True)
    charts = specs(html)
    assert charts["chart-xbar"]["series"][1]["name"] == "中心线"
    assert "控制限" in html
    html = client.get(f"/spc/events/{charted['event'].id}").get_data(as_text=True)
    assert "失控事件" in html


def test_unknown_plan_or_event_is_404(make_user, login, plant):
    client = login(make_user("engineer"))
    assert client.get("/spc/plans/NOPE").status_code == 404
    assert client.get("/spc/events/12345").status_code == 404
    assert client.get("/spc/plans/NOPE/sample").status_code == 404


def test_floor_track_out_still_works_without_a_plan(session, receive, plant):
    lot = at_wb(session, receive)
    floor.track_out(session, "op", lot, step="WB", good_qty=lot.quantity)
    assert lot.step_code != "WB"


def test_a_subgroup_entered_on_the_page_that_breaks_a_rule_says_what_it_did(
        session, make_user, login, receive, app):
    with app.app_context():
        plan = make_plan(session)
        lot = at_wb(session, receive)
        for _ in range(25):
            sample(session, plan, lot, IN_CONTROL)
        spc.freeze_limits(session, "engineer-1", plan)
        session.commit()
    client = login(make_user("engineer"))
    resp = client.post("/spc/plans/WB-PULL/sample", data={
        "lot": lot.lot_no, "equipment": "WB-1", "value": [str(v) for v in OUT]},
        follow_redirects=True)
    text = unescape(resp.get_data(as_text=True))
    event = session.scalars(select(SpcEvent)).one()
    assert (f"Out of control (Rule 1 on the Mean / individuals chart): event {event.id}; "
            f"WB-1 is stopped (engineering) and 1 lot(s) are held.") in text
    assert client.get("/spc/plans/WB-PULL/edit").status_code == 200


def test_an_individuals_plan_draws_the_moving_range(session, make_user, login, receive, app):
    with app.app_context():
        plan = make_plan(session, code="DA-BLT", n=1)
        lot = at_wb(session, receive)
        for value in (10.0, 10.4, 10.1):
            sample(session, plan, lot, [value])
    html = login(make_user("qa")).get("/spc/plans/DA-BLT").get_data(as_text=True)
    charts = specs(html)
    assert charts["chart-xbar"]["title"] == "Individuals chart: Wire pull"
    assert charts["chart-spread"]["title"] == "Moving range chart"
    moving = charts["chart-spread"]["series"][0]["values"]
    assert moving[0] is None and moving[1:] == [pytest.approx(0.4), pytest.approx(0.3)]
