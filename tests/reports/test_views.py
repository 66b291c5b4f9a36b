"""The report pages: each renders its chart, table and CSV link, for plant users and,
limited to their own lots, for customers."""

from __future__ import annotations

import json
import re
from html import unescape

import pytest

from tests.reports.helpers import END, START

RANGE = f"from={START.isoformat()}&to={END.isoformat()}"
PAGES = ["/reports/wip", "/reports/yield", "/reports/rejects", "/reports/cycle-time",
         "/reports/holds", "/reports/equipment", "/reports/delivery"]


def test_index_lists_the_reports_and_the_nav_links_it(make_user, login, history):
    client = login(make_user("engineer"))
    html = client.get("/reports").get_data(as_text=True)
    for path in PAGES:
        assert f'href="{path}"' in html
    assert 'href="/reports"' in client.get("/").get_data(as_text=True)


@pytest.mark.parametrize("path", PAGES)
def test_each_page_has_chart_table_and_csv_download(make_user, login, history, path):
    client = login(make_user("planner"))
    resp = client.get(f"{path}?{RANGE}")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "<canvas" in html and "data-spec='" in html
    assert "vendor/chartjs/chart.umd.min.js" in html and "js/charts.js" in html
    assert "<table" in html
    assert "format=csv" in html
    # No inline script or style: the chart data is JSON in an attribute.
    assert "style=" not in html and "<script>" not in html
    for spec in _specs(html):
        assert spec["labels"] and spec["series"]


def _specs(html: str) -> list[dict]:
    """The chart specifications of a page, as js/charts.js reads them."""
    found = re.findall(r"data-spec='([^']*)'", html)
    return [json.loads(unescape(text)) for text in found]


def test_yield_page_shows_hand_computed_yield_and_a_trend_per_product(make_user, login,
                                                                      history):
    html = login(make_user("qa")).get(f"/reports/yield?{RANGE}").get_data(as_text=True)
    assert "95.59" in html  # FT, P1
    steps, trend = _specs(html)
    # Per step, all products: SAW (95+180+50)/(100+200+50) = 92.86; FT (90+170+40)/
    # (92+180+50) = 93.17; PACK 100. The axis: 92.86 - max(1, 7.14/4) = 91.07 -> 91.
    assert steps["labels"] == ["SAW", "FT", "PACK"]
    assert steps["series"][0]["values"] == [92.86, 93.17, 100.0]
    assert steps["y"] == {"min": 91.0, "max": 100, "title": "Yield %"}
    assert "The axis starts at 91 %." in html
    # Final-test yield: only FT (the route's last test step) counts. P1 week 10: A 92->90
    # and B 180->170: 260/272 = 95.59 (all steps added up would give 795/832 = 95.55);
    # P2 week 11: C 50->40 = 80.
    assert trend["labels"] == ["2026-W10", "2026-W11"]
    assert [(s["name"], s["values"]) for s in trend["series"]] == [
        ("P1", [95.59, None]), ("P2", [None, 80.0])]
    assert "Final-test yield per product and week" in html
    assert "last test step of each lot&#39;s route" in html
    assert "/api/v1/reports/yield/final-test?" in html


def test_equipment_page_names_the_e10_states_in_the_chart(make_user, login, history):
    html = login(make_user("engineer")).get(f"/reports/equipment?{RANGE}").get_data(
        as_text=True)
    (spec,) = _specs(html)
    assert [s["name"] for s in spec["series"]][:2] == ["Productive", "Standby"]
    assert spec["stacked"] and spec["horizontal"]


def test_rejects_page_draws_a_pareto_by_reason_with_its_cumulative_line(make_user, login,
                                                                        history):
    html = login(make_user("engineer")).get(f"/reports/rejects?{RANGE}").get_data(
        as_text=True)
    (spec,) = _specs(html)
    # In the range: R-CHIP 5 + 20 + 4 = 29, R-OPEN 2 + 6 + 10 = 18, S-DMG 3; total 50.
    assert spec["type"] == "pareto"
    assert spec["labels"] == ["R-CHIP", "R-OPEN", "S-DMG"]
    assert spec["series"][0]["values"] == [29, 18, 3]
    assert spec["series"][1]["values"] == [58.0, 94.0, 100.0]
    assert spec["pct"] == {"title": "Cumulative %"}


def test_customer_pages_hold_only_their_lots_and_no_equipment(make_user, login, history):
    client = login(make_user("customer", customer="OEM"))
    index = client.get("/reports").get_data(as_text=True)
    assert 'href="/reports/equipment"' not in index
    assert client.get(f"/reports/equipment?{RANGE}").status_code == 403
    html = client.get(f"/reports/rejects?{RANGE}").get_data(as_text=True)
    assert "Figures of your own lots only." in html
    # Total 40 without IND's lot C; the customer filter is not offered.
    assert "Pareto (total 40)" in html
    assert 'name="customer"' not in html


def test_invalid_range_shows_the_error_and_the_default_report(make_user, login, history):
    resp = login(make_user("engineer")).get("/reports/yield?from=2026-03-10&to=2026-03-01")
    assert resp.status_code == 422
    assert "Must be on or before to." in resp.get_data(as_text=True)


def test_chart_data_cannot_break_out_of_its_attribute(make_user, login, history, session):
    from mes.catalog.models import ReasonCode

    session.get(ReasonCode, history["ids"]["R-CHIP"]).code = "'><b>X&"
    session.commit()
    html = login(make_user("engineer")).get(f"/reports/rejects?{RANGE}").get_data(
        as_text=True)
    assert "'><b>X" not in html
    assert _specs(html)[0]["labels"][0] == "'><b>X&"


def test_a_chart_with_nothing_to_draw_says_so_instead(make_user, login, history):
    html = login(make_user("engineer")).get(
        "/reports/rejects?from=2025-01-01&to=2025-01-31").get_data(as_text=True)
    assert _specs(html) == []
    assert "No rejects or scrap in the range." in html


def test_pages_in_chinese_show_codes_in_words_and_times_in_the_plant_zone(session, make_user,
                                                                          login, history):
    user = make_user("planner")
    user.locale = "zh_CN"
    session.commit()
    client = login(user)
    holds = client.get(f"/reports/holds?{RANGE}").get_data(as_text=True)
    # H1 and H5 are open: sources "manual" and "mass", in the reader's words.
    assert "手动" in holds and "批量扣留" in holds
    assert "<td>manual</td>" not in holds and "<td>mass</td>" not in holds
    # H2 was scrapped, H3 released: the dispositions chart names them so.
    names = [s["name"] for s in _specs(holds)[1]["series"]]
    assert "报废部分数量" in names and "scrap" not in names
    rejects = client.get(f"/reports/rejects?{RANGE}").get_data(as_text=True)
    assert "<td>不良</td>" in rejects and "<td>reject</td>" not in rejects
    wip = client.get("/reports/wip").get_data(as_text=True)
    # D arrived at SAW 2026-03-12 09:00 UTC: 17:00 in Asia/Shanghai.
    assert "2026-03-12 17:00" in wip and "2026-03-12 09:00" not in wip


def test_range_figures_are_kept_for_the_configured_seconds_and_say_when(
        app, make_user, login, history, session, monkeypatch):
    from sqlalchemy import update

    from mes.floor.models import StepRun
    from mes.reports import views

    monkeypatch.setitem(app.config, "REPORT_CACHE_SECONDS", 60)
    monkeypatch.setattr(views, "_FIGURES", type(views._FIGURES)())
    clock = [1000.0]
    monkeypatch.setattr(views, "monotonic", lambda: clock[0])
    client = login(make_user("qa"))

    def figures() -> tuple[str, str]:
        html = client.get(f"/reports/yield?{RANGE}").get_data(as_text=True)
        return html[html.index('<div class="stack">'):], html

    first, html = figures()
    assert "95.59" in first and "data-figures-at=" in html
    session.execute(update(StepRun).values(good_qty=0))
    session.commit()
    clock[0] += 59
    assert figures()[0] == first  # kept: the same figures a minute long
    fresh = client.get(f"/api/v1/reports/yield?{RANGE}").get_json()
    assert {row["good"] for row in fresh["rows"]} == {0}  # the API computes on request
    clock[0] += 1
    assert figures()[0] != first
