"""The individuals (n = 1) and X̄–S (n > 10) plans through the services and the API, the
capability of a window, and the event filters."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mes.db import utcnow
from mes.spc import services as spc
from tests.spc.helpers import at_wb, make_plan, sample


def test_individuals_plan_judges_the_moving_range(session, plant, api, receive):
    plan = make_plan(session, code="WB-BLT", n=1, frequency="hours:1")
    assert plan.chart == "i_mr"
    lot = at_wb(session, receive)
    # 10, 11, 10, 11, …: X̄ = 10.48 (13 tens, 12 elevens), every moving range 1 (MR̄ = 1).
    for i in range(25):
        sample(session, plan, lot, [10.0 + (i % 2)])
    limits = spc.freeze_limits(session, "eng", plan)
    assert limits.center == pytest.approx(10.48)
    assert limits.ucl == pytest.approx(10.48 + 2.660)
    assert limits.r_center == pytest.approx(1.0) and limits.r_ucl == pytest.approx(3.267)
    # 11 after 10: moving range 1, in control; 14.5 after 11: 3.5 > 3.267 and 14.5 > 13.14.
    assert sample(session, plan, lot, [11.0]).subgroup.violations == []
    judged = sample(session, plan, lot, [14.5])
    assert judged.subgroup.spread == 3.5
    assert judged.subgroup.violations == [{"rule": 1, "chart": "xbar"},
                                          {"rule": 1, "chart": "spread"}]
    points = api("engineer").get("/spc/plans/WB-BLT").get_json()["subgroups"]
    assert points[0]["range"] is None and points[1]["range"] == 1.0


def test_xbar_s_plan_answers_the_standard_deviation(session, plant, api, receive):
    make_plan(session, code="WB-SHEAR", n=11, frequency="hours:1", lsl=None, usl=None,
              target=None)
    lot = at_wb(session, receive)
    resp = api("operator").post("/spc/plans/WB-SHEAR/samples", json={
        "lot": lot.lot_no, "equipment": "WB-1", "values": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]})
    body = resp.get_json()
    assert resp.status_code == 201, body
    # Mean 6; s = √(110/10) = 3.3166…
    assert body["mean"] == 6.0 and body["range"] is None
    assert body["sd"] == pytest.approx(3.31662479, abs=1e-8)
    summary = api("engineer").get("/spc/plans/WB-SHEAR").get_json()
    assert summary["chart"] == "xbar_s"
    # No specification limits: no capability index; σ within estimated as s/c4.
    cap = summary["capability"]
    assert (cap["cp"], cap["cpk"], cap["pp"], cap["ppk"]) == (None, None, None, None)
    assert cap["sigma_within"] == pytest.approx(3.31662479 / 0.9754, abs=1e-3)


def test_capability_of_a_window(session, plant, receive):
    plan = make_plan(session)
    lot = at_wb(session, receive)
    sample(session, plan, lot, [7.0, 8.0, 9.0, 8.0, 8.0])
    sample(session, plan, lot, [8.0, 8.0, 8.0, 8.0, 8.0])
    # Before limits, σ within = R̄/d2 = (2 + 0)/2/2.326; μ = 8; spec 3..12:
    # Cpk = min(4, 5)/(3σ) = 4·2.326/3 = 3.1013.
    cap = spc.capability(session, plan)
    assert cap.n_values == 10 and cap.mean == 8.0
    assert cap.cpk == pytest.approx(4 * 2.326 / 3, abs=1e-4)
    assert cap.cp == pytest.approx(9 * 2.326 / 6, abs=1e-4)
    assert spc.capability(session, plan, since=utcnow() + timedelta(hours=1)).n_values == 0
    assert spc.capability(session, plan, until=utcnow() + timedelta(hours=1)).n_values == 10


def test_events_filter_by_plan_equipment_and_state(session, plant, api, receive):
    plan = make_plan(session, frequency="hours:8")
    lot = at_wb(session, receive)
    for i in range(25):
        sample(session, plan, lot, [8.0, 8.2, 7.8, 8.1, 7.9 + 0.1 * (i % 2)])
    spc.freeze_limits(session, "eng", plan)
    event = sample(session, plan, lot, [11.0] * 5).event
    qa = api("qa")
    for query, found in [("plan=WB-PULL", [event.id]), ("plan=OTHER", []),
                         ("equipment=WB-1", [event.id]), ("equipment=WB-2", []),
                         ("state=closed", []), ("state=open", [event.id])]:
        assert [e["id"] for e in qa.get(f"/spc/events?{query}").get_json()["items"]] == found
    assert qa.get("/spc/events/999999").status_code == 404
    assert [p["code"] for p in qa.get("/spc/plans?active=false").get_json()["items"]] == []
