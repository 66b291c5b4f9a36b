"""The process control report: per plan the last 30 days' Cpk, the out-of-control events
opened and their time to close, against figures worked out by hand; the page, the JSON and
the CSV agree."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest

from mes.db import utcnow
from mes.spc import services as spc
from mes.spc.models import SpcEvent
from tests.spc.helpers import at_wb, make_plan, sample

IN_CONTROL = [7.8, 7.9, 8.0, 8.1, 8.2]


@pytest.fixture
def history(session, receive, app):
    """WB-PULL: 25 subgroups of mean 8.0 and range 0.4 in the range, limits frozen (σ =
    0.4/2.326), and one old subgroup 40 days ago far off (outside the default range).
    Events of WB-PULL opened in the range: closed after 2 h, 4 h and 9 h, and one open;
    one closed event opened 40 days ago (outside the range). WB-SHEAR: no subgroups."""
    with app.app_context():
        plan = make_plan(session)
        make_plan(session, code="WB-SHEAR", lsl=None, usl=None, target=None)
        lot = at_wb(session, receive)
        old = sample(session, plan, lot, [2.0, 2.1, 2.2, 2.3, 2.4]).subgroup
        old.at = utcnow() - timedelta(days=40)
        for _ in range(25):
            sample(session, plan, lot, IN_CONTROL)
        spc.freeze_limits(session, "engineer-1", plan)
        session.commit()
    tool = lot.equipment_id
    now = utcnow()
    for opened_h_ago, closed_after_h in ((30, 2), (20, 4), (12, 9), (3, None),
                                         (40 * 24, 1)):
        opened = now - timedelta(hours=opened_h_ago)
        session.add(SpcEvent(
            plan_id=plan.id, equipment_id=tool, rule=1, hits=[], subgroups=[], since=opened,
            opened_at=opened, state="open" if closed_after_h is None else "closed",
            closed_at=None if closed_after_h is None else
            opened + timedelta(hours=closed_after_h)))
    session.commit()
    return plan


def _expected_cpk() -> float:
    # 125 values, mean 8.0; LSL 3, USL 12; σ within = R̄/d2 = 0.4/2.326.
    sigma = 0.4 / 2.326
    return round(min(12.0 - 8.0, 8.0 - 3.0) / (3 * sigma), 4)


def test_report_rows_are_the_hand_worked_figures(api, history):
    body = api("qa").get("/reports/spc").get_json()
    rows = {r["plan"]: r for r in body["rows"]}
    pull = rows["WB-PULL"]
    assert pull["subgroups"] == 25
    assert pull["cpk"] == pytest.approx(_expected_cpk(), abs=1e-4)
    # Ppk: all 125 values; sample sd of five values 7.8 ... 8.2 repeated 25 times:
    # Σ(x − 8)² = 25·0.1 = 2.5 over 124 degrees of freedom.
    overall = (2.5 / 124) ** 0.5
    assert pull["ppk"] == pytest.approx(round(4.0 / (3 * overall), 4), abs=1e-4)
    # Events in the range: 4 (the one 40 days ago is not); closed ones took 2, 4, 9 h.
    assert (pull["events"], pull["open_events"], pull["closed_events"]) == (4, 1, 3)
    assert pull["mean_hours_to_close"] == pytest.approx(5.0)
    assert pull["median_hours_to_close"] == pytest.approx(4.0)
    # A plan without subgroups and events in the range still has its row, with no Cpk.
    shear = rows["WB-SHEAR"]
    assert (shear["subgroups"], shear["cpk"], shear["events"],
            shear["mean_hours_to_close"]) == (0, None, 0, None)
    assert (body["events"], body["open_events"], body["median_hours_to_close"]) == (4, 1, 4.0)


def test_a_range_over_the_old_subgroup_counts_it(api, history):
    today = utcnow().date()
    start = (today - timedelta(days=45)).isoformat()
    rows = {r["plan"]: r for r in api("engineer").get(
        f"/reports/spc?from={start}&to={today.isoformat()}").get_json()["rows"]}
    assert rows["WB-PULL"]["subgroups"] == 26
    assert rows["WB-PULL"]["events"] == 5
    # 1, 2, 4, 9 h: mean 4, median 3.
    assert rows["WB-PULL"]["mean_hours_to_close"] == pytest.approx(4.0)
    assert rows["WB-PULL"]["median_hours_to_close"] == pytest.approx(3.0)


def test_csv_and_page_show_the_same_figures(api, make_user, login, history):
    resp = api("engineer").get("/reports/spc?format=csv")
    assert resp.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    pull = next(r for r in rows if r["plan"] == "WB-PULL")
    assert float(pull["cpk"]) == pytest.approx(_expected_cpk(), abs=1e-4)
    assert pull["median_hours_to_close"] == "4.0"
    html = login(make_user("qa")).get("/reports/spc").get_data(as_text=True)
    assert "data-spec='" in html and "WB-PULL" in html
    assert f"{_expected_cpk():,.2f}" in html
    assert "Median time to close: 4.00 h." in html


@pytest.mark.parametrize("role", ["operator", "customer"])
def test_roles_without_reports_or_process_control_are_refused(api, make_user, login, role,
                                                              history):
    assert api(role).get("/reports/spc").status_code == 403
    assert login(make_user(role)).get("/reports/spc").status_code == 403


def test_reports_index_lists_the_report_for_plant_users(make_user, login, history):
    assert 'href="/reports/spc"' in login(make_user("planner")).get("/reports").get_data(
        as_text=True)

