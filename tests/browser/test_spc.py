"""Process control in the browser, on the demo plant: an engineer opens a plan's control
chart at 1366 x 768 and sees the violating point marked; an operator is asked for a due
sample at the station and enters it."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from mes.db import session_scope
from mes.floor.models import Lot
from tests.browser.helpers import SHOTS, shot, skip_without_browser, submit

skip_without_browser()

def _open(browser: Any, live: dict[str, Any], user: str, password: str,
          locale: str = "en-US") -> Any:
    context = browser.new_context(locale=locale, viewport={"width": 1366, "height": 768})
    context.set_default_timeout(15000)
    page = context.new_page()
    page.errors = []  # type: ignore[attr-defined]
    page.on("console", lambda msg: page.errors.append(msg.text)
            if msg.type == "error" else None)
    page.on("pageerror", lambda err: page.errors.append(str(err)))
    page.goto(f"{live['url']}/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "/login" not in page.url
    return page


def test_engineer_sees_the_violating_point_marked_on_the_control_chart(browser, live):
    page = _open(browser, live, "engineer", "demo-engineer-2026")
    try:
        # From the navigation: SPC, then the wire-pull plan (its open event is flagged).
        submit(page, lambda: page.click(".site-nav a[href='/spc']"))
        assert page.locator("tr[data-plan='WB-PULL'] .spc-flag").count() == 1
        submit(page, lambda: page.click("tr[data-plan='WB-PULL'] a[href='/spc/plans/WB-PULL']"))
        page.wait_for_selector("#chart-xbar[data-drawn]")
        drawn = page.evaluate("""() => {
            const chart = document.querySelector('#chart-xbar').chart;
            const data = chart.data.datasets[0];
            const marked = data.pointStyle.map((s, i) => s === 'triangle' ? i : -1)
                .filter(i => i >= 0);
            const x = chart.scales.x, y = chart.scales.y;
            return {marked: marked, colours: marked.map(i => data.pointBackgroundColor[i]),
                    points: data.data.length, legend: chart.data.datasets.map(d => d.label),
                    xTicks: x.ticks.length, yTitle: y.options.title.text};
        }""")
        # The subgroup of WB-02 that broke rule 1 is the one marked, in red.
        assert len(drawn["marked"]) == 1
        assert set(drawn["colours"]) == {"#b3261e"}
        assert drawn["legend"][:4] == ["Subgroup mean", "Centre line", "UCL", "LCL"]
        assert "LSL (specification)" in drawn["legend"]
        assert drawn["yTitle"] == "Wire pull strength (gf)"
        # Readable at 1366 px: a few time labels, not one per point.
        assert 2 <= drawn["xTicks"] <= 16 < drawn["points"]
        # The table under the chart holds the same point, with its lot, tool and version.
        row = page.locator("tr.spc-violation").first
        assert "WB-02" in row.inner_text() and "Rule 1" in row.inner_text()
        # Hovering the marked point shows its lot, tool and limits version.
        page.locator("#chart-xbar").scroll_into_view_if_needed()
        box = page.evaluate("""(i) => {
            const chart = document.querySelector('#chart-xbar').chart;
            const p = chart.getDatasetMeta(0).data[i];
            const r = chart.canvas.getBoundingClientRect();
            return {x: r.left + p.x, y: r.top + p.y};
        }""", drawn["marked"][0])
        page.mouse.move(box["x"], box["y"])
        page.wait_for_function("() => document.querySelector('#chart-xbar').chart"
                               ".tooltip.opacity > 0")
        tooltip = page.evaluate("() => { const t = document.querySelector('#chart-xbar')"
                                ".chart.tooltip; return [t.title.join(' '), "
                                "t.afterBody.join(' ')]; }")
        assert "WB-02" in tooltip[0]
        assert "Limits version 1" in tooltip[1] and "Rule 1" in tooltip[1]
        # The header stays one line on the plan page.
        tops = page.evaluate("""() => Array.from(document.querySelectorAll(
            '.brand, .site-nav li, .user-menu summary')).map(e => e.getBoundingClientRect().top)""")
        assert max(tops) - min(tops) <= 4
        assert page.evaluate("() => document.documentElement.scrollWidth "
                             "- document.documentElement.clientWidth") <= 0
        assert not page.errors, page.errors
        shot(page, "spc-plan-wb-pull")
        # The chart alone (docs/screens/spc-control-chart.png is one of these).
        page.mouse.move(0, 0)
        page.locator("#chart-xbar").screenshot(path=str(SHOTS / "spc-control-chart.png"))
    finally:
        page.context.close()


def test_plan_page_in_chinese_draws_its_charts(browser, live):
    page = _open(browser, live, "qa2", "demo-qa2-2026", locale="zh-CN")
    try:
        page.goto(f"{live['url']}/spc/plans/MOLD-THK")
        page.wait_for_selector("#chart-histogram[data-drawn]")
        legend = page.evaluate("() => document.querySelector('#chart-xbar').chart.data"
                               ".datasets.map(d => d.label)")
        assert legend[:2] == ["子组均值", "中心线"]
        assert not page.errors, page.errors
        shot(page, "spc-plan-mold-zh")
    finally:
        page.context.close()


def _running_lot(app: Any) -> tuple[str, str, str, str]:
    """A running lot of the demo on a tool: (lot, step, tool kind, product)."""
    with app.app_context(), session_scope(app) as sess:
        lot = sess.scalars(select(Lot).where(Lot.state == "running",
                                             Lot.equipment_id.is_not(None))
                           .order_by(Lot.id)).first()
        assert lot is not None and lot.equipment is not None
        return lot.lot_no, lot.step_code, lot.equipment.kind, lot.product.code


def test_operator_enters_a_due_sample_from_the_station(browser, live):
    from mes.spc import services as spc

    app = live["app"]
    lot_no, step, kind, product = _running_lot(app)
    with app.app_context(), session_scope(app) as sess:
        spc.create_plan(sess, "test", {
            "code": "BRW-SPC", "step": step, "characteristic": "Browser check", "unit": "µm",
            "subgroup_size": 3, "frequency": "lot", "lsl": 10.0, "usl": 30.0,
            "equipment_kind": kind, "product": product})
    page = _open(browser, live, "op1", "demo-op1-2026")
    try:
        page.goto(f"{live['url']}/station?lot={lot_no}")
        prompt = page.locator("[data-sample-due]")
        assert "BRW-SPC" in prompt.inner_text()
        submit(page, lambda: prompt.locator("a.btn").first.click())
        assert "/spc/plans/BRW-SPC/sample" in page.url
        # Lot and tool come filled in; the first value has the focus.
        assert page.input_value("#f-lot") == lot_no
        for n, value in enumerate(["20.1", "19.8", "31.2"], 1):
            page.fill(f"#f-value-{n}", value)
        submit(page, lambda: page.click("button[type=submit].btn-primary"))
        assert f"/station?lot={lot_no}" in page.url
        flash = page.locator(".flash").first.inner_text()
        assert "Outside the specification limits: 31.2." in flash
        assert page.locator("[data-sample-due]").count() == 0
        assert not page.errors, page.errors
        shot(page, "spc-station-sample-entered")
    finally:
        page.context.close()
        with app.app_context(), session_scope(app) as sess:
            spc.update_plan(sess, "test", spc.get_plan(sess, "BRW-SPC"), {"active": False})


def test_process_control_pages_are_readable_at_1366(browser, live):
    """Every plan of the demo, the events and the report: charts drawn with ticks in the
    locale's format, no page wider than the window, no bare number of four digits."""
    page = _open(browser, live, "admin", "demo-admin-2026")
    try:
        paths = [f"/spc/plans/{code}" for code in ("WB-PULL", "WB-SHEAR", "DA-SHEAR",
                                                   "MOLD-THK")]
        for path in ["/spc", "/spc/events?state=", *paths, "/reports/spc"]:
            page.goto(live["url"] + path)
            for figure in page.eval_on_selector_all("figure[data-chart]",
                                                    "els => els.map(e => '#' + e.id)"):
                page.wait_for_selector(f"{figure}[data-drawn]")
                ticks = page.evaluate("""(sel) => Object.values(document.querySelector(sel)
                    .chart.scales).flatMap(s => s.ticks.map(t => String(t.label)))""", figure)
                assert ticks and not any("e+" in t or "e-" in t for t in ticks), (path, ticks)
            assert page.evaluate("() => document.documentElement.scrollWidth "
                                 "- document.documentElement.clientWidth") <= 0, path
            cells = page.eval_on_selector_all("td.num, th.num",
                                              "els => els.map(e => e.innerText)")
            assert not [c for c in cells if re.fullmatch(r"\s*-?\d{4,}(\.\d+)?\s*", c)], path
        assert not page.errors, page.errors
        shot(page, "spc-report")
    finally:
        page.context.close()
