"""The report pages: each renders its chart, table and CSV link, for plant users and,
limited to their own lots, for customers."""

from __future__ import annotations

import pytest

from mes.reports import charts
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
    assert "<svg" in html
    assert "<table" in html
    assert "format=csv" in html
    assert "style=" not in html and "<script>" not in html


def test_yield_page_shows_hand_computed_yield_and_a_trend_per_product(make_user, login,
                                                                      history):
    html = login(make_user("qa")).get(f"/reports/yield?{RANGE}").get_data(as_text=True)
    assert "95.59" in html  # FT, P1
    assert "Yield of P1" in html and "Yield of P2" in html


def test_equipment_page_names_the_e10_states_beside_the_chart(make_user, login, history):
    html = login(make_user("engineer")).get(f"/reports/equipment?{RANGE}").get_data(
        as_text=True)
    assert 'class="key key-unscheduled_down"' in html
    assert "seg-productive" in html


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


def test_stacked_bars_draw_each_series_and_escape_labels():
    svg = charts.stacked_bars(["<T1>", "T2"], [("Up", "productive"), ("Down", "standby")],
                              [(3.0, 1.0), (0.0, 2.0)], title="E10", empty="none")
    assert svg.count('class="seg-productive"') == 1
    assert svg.count('class="seg-standby"') == 2
    assert "&lt;T1&gt;" in svg and "<T1>" not in svg
    assert "none" in charts.stacked_bars([], [], [], title="E10", empty="none")


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
    # H2 was scrapped, H3 released: the legend of the dispositions chart names them so.
    assert '<li class="key key-disp-scrap">报废部分数量</li>' in holds
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
