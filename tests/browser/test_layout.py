"""What a person sees on the main pages at the two common desk screens, 1366 x 768 and
1920 x 1080: the header on one line for every demo role, no page wider than the window,
the WIP board's totals row not hidden below an inner scroll, one number format, and report
charts that can be read (labels that do not overlap, ticks like 30,000, the Pareto's
cumulative line, yield axes that do not start at 0, the page's language)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.helpers import shot, skip_without_browser

skip_without_browser()

PASSWORDS = {"admin": "demo-admin-2026", "qa": "demo-qa-2026",
             "engineer": "demo-engineer-2026", "planner": "demo-planner-2026",
             "op1": "demo-op1-2026", "cyanlake": "demo-cyanlake-2026"}
SCREENS = {"1366": (1366, 768), "1920": (1920, 1080)}
REPORTS = ["/reports/wip", "/reports/yield", "/reports/rejects", "/reports/cycle-time",
           "/reports/holds", "/reports/equipment", "/reports/delivery"]


@pytest.fixture
def open_at(browser: Any, live: dict[str, Any]) -> Iterator[Any]:
    """open_at(user, screen, locale="en-US") -> a page logged in at that window size."""
    contexts = []

    def login(user: str, screen: str, locale: str = "en-US") -> Any:
        width, height = SCREENS[screen]
        context = browser.new_context(locale=locale,
                                      viewport={"width": width, "height": height})
        context.set_default_timeout(15000)
        contexts.append(context)
        page = context.new_page()
        page.csp_errors = []  # type: ignore[attr-defined]
        page.on("console", lambda msg: page.csp_errors.append(msg.text)
                if "Content Security Policy" in msg.text or msg.type == "error" else None)
        page.on("pageerror", lambda err: page.csp_errors.append(str(err)))
        page.goto(f"{live['url']}/login")
        page.fill("input[name=username]", user)
        page.fill("input[name=password]", PASSWORDS[user])
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert "/login" not in page.url
        return page

    yield login
    for context in contexts:
        context.close()


def _rows_of_header(page: Any) -> int:
    """How many lines the header's items take: the distinct tops of the brand, every nav
    link and the user menu (to the pixel, within 4 px)."""
    tops = page.evaluate("""() => Array.from(document.querySelectorAll(
        '.brand, .site-nav li, .user-menu summary')).map(e => e.getBoundingClientRect().top)""")
    lines: list[float] = []
    for top in sorted(tops):
        if not lines or top - lines[-1] > 4:
            lines.append(top)
    return len(lines)


def _overflow(page: Any) -> int:
    """By how many pixels the page is wider than its window (0: no sideways scroll)."""
    return page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth")


@pytest.mark.parametrize("screen", SCREENS)
@pytest.mark.parametrize("user", PASSWORDS)
def test_header_stays_on_one_line_for_every_role(open_at, live, user, screen):
    page = open_at(user, screen)
    assert page.locator(".site-nav li").count() >= 3
    assert _rows_of_header(page) == 1
    # One line: the header is as tall as a touch target and its padding, not two.
    assert page.eval_on_selector(".site-header",
                                 "e => e.getBoundingClientRect().height") < 70
    # The menu behind the user name still holds the profile and logging out.
    page.click(".user-menu summary")
    assert page.locator(".user-menu-panel a[href='/profile']").is_visible()
    assert page.locator(".user-menu-panel .logout-form button").is_visible()
    page.keyboard.press("Escape")
    assert not page.locator(".user-menu-panel").is_visible()
    if screen == "1366" and user in ("admin", "qa"):
        shot(page, f"header-{screen}-{user}")


def test_header_stays_on_one_line_in_chinese(open_at, live):
    page = open_at("admin", "1366", locale="zh-CN")
    assert page.evaluate("document.documentElement.lang").startswith("zh")
    assert _rows_of_header(page) == 1


@pytest.mark.parametrize(("user", "screen"), [("admin", "1366"), ("admin", "1920"),
                                            ("cyanlake", "1366")])
def test_main_pages_fit_the_window_and_write_numbers_one_way(open_at, live, user, screen):
    page = open_at(user, screen)
    links = page.eval_on_selector_all(".site-nav a", "els => els.map(e => e.href)")
    for url in [*links, *(live["url"] + path for path in REPORTS)]:
        page.goto(url)
        assert _overflow(page) <= 0, url
        # Quantities in the locale's format: no number of four digits or more without its
        # thousands separator in a number cell.
        cells = page.eval_on_selector_all("td.num, th.num", "els => els.map(e => e.innerText)")
        bare = [c for c in cells if re.fullmatch(r"\s*-?\d{4,}(\.\d+)?\s*", c)]
        assert not bare, (url, bare[:5])


def test_wip_board_totals_row_is_in_view_without_an_inner_scroll(open_at, live):
    page = open_at("planner", "1366")
    page.goto(f"{live['url']}/wip")
    box = page.evaluate("""() => {
        const foot = document.querySelector('table.wip-steps tfoot td');
        const wrap = foot.closest('.table-wrap');
        const f = foot.getBoundingClientRect(), w = wrap.getBoundingClientRect();
        return {footTop: f.top, footBottom: f.bottom, wrapTop: w.top, wrapBottom: w.bottom,
                scrolled: wrap.scrollTop, inner: wrap.scrollHeight > wrap.clientHeight,
                text: foot.closest('tr').innerText};
    }""")
    assert box["scrolled"] == 0
    assert "In WIP" in box["text"]
    # Within the scroll box's visible part, not hidden below it, however long the table.
    assert box["wrapTop"] <= box["footTop"] and box["footBottom"] <= box["wrapBottom"] + 1
    # And the page brings it into the window by scrolling the page alone.
    page.locator("table.wip-steps tfoot td").first.scroll_into_view_if_needed()
    assert page.evaluate("document.querySelector('table.wip-steps').closest('.table-wrap')"
                         ".scrollTop") == 0
    assert page.locator("table.wip-steps tfoot td").first.is_visible()
    shot(page, "wip-1366")


def _chart(page: Any, figure: str) -> dict[str, Any]:
    """What Chart.js drew in a figure: its scales' tick labels, the labels skipped, the
    datasets' names and the value axis' range."""
    page.wait_for_selector(f"{figure}[data-drawn]")
    return page.evaluate("""(sel) => {
        const c = document.querySelector(sel).chart;
        const scales = {};
        for (const [id, s] of Object.entries(c.scales)) {
            scales[id] = {min: s.min, max: s.max, ticks: s.ticks.map(t => t.label),
                          rotation: s.labelRotation};
        }
        return {scales: scales, labels: c.data.labels,
                datasets: c.data.datasets.map(d => ({label: d.label, data: d.data})),
                width: c.width, box: document.querySelector(sel).clientWidth};
    }""", figure)


def test_reports_are_readable_at_1366(open_at, live):
    page = open_at("engineer", "1366")
    page.goto(f"{live['url']}/reports/rejects")
    pareto = _chart(page, "#chart-rejects")
    bars, cumulative = pareto["datasets"]
    # Every category named on the axis (none skipped), at most 15 bars, largest first.
    assert pareto["scales"]["x"]["ticks"] == pareto["labels"]
    assert 2 <= len(pareto["labels"]) <= 15
    assert bars["data"] == sorted(bars["data"][:-1], reverse=True) + bars["data"][-1:]
    # Ticks in the locale's format, never 3e+04; the cumulative line ends at 100 %.
    ticks = pareto["scales"]["y"]["ticks"]
    assert not any("e+" in t for t in ticks)
    assert any(re.fullmatch(r"\d{1,3}(,\d{3})+", t) for t in ticks), ticks
    assert cumulative["data"][-1] == 100
    assert pareto["scales"]["pct"]["max"] == 100 and pareto["scales"]["pct"]["ticks"][-1] == "100%"
    assert pareto["width"] <= pareto["box"]
    shot(page, "reports-pareto-1366")
    # The PNG export.
    with page.expect_download() as download:
        page.click("#chart-rejects .chart-export")
    assert download.value.suggested_filename == "chart-rejects.png"

    page.goto(f"{live['url']}/reports/yield")
    steps = _chart(page, "#chart-yield")
    low = steps["scales"]["y"]["min"]
    values = [v for v in steps["datasets"][0]["data"] if v is not None]
    # The axis starts below the lowest yield, not at 0, and ends at 100 %.
    assert 0 < low < min(values) and steps["scales"]["y"]["max"] == 100
    assert steps["scales"]["x"]["ticks"] == steps["labels"]
    trend = _chart(page, "#chart-trend")
    assert trend["scales"]["y"]["min"] > 0
    assert "Final-test yield" in page.inner_text("#sec-trend")
    shot(page, "reports-yield-1366")

    for path in REPORTS:
        page.goto(live["url"] + path)
        for figure in page.eval_on_selector_all("figure[data-chart]",
                                                "els => els.map(e => '#' + e.id)"):
            drawn = _chart(page, figure)
            for scale in drawn["scales"].values():
                assert not any("e+" in str(t) for t in scale["ticks"]), (path, scale)
        assert _overflow(page) <= 0, path
    assert page.csp_errors == []


def test_reports_in_chinese_name_their_series_in_chinese(open_at, live):
    page = open_at("qa", "1366", locale="zh-CN")
    page.goto(f"{live['url']}/reports/rejects")
    pareto = _chart(page, "#chart-rejects")
    names = [d["label"] for d in pareto["datasets"]]
    assert names == ["数量", "累计 %"]
    assert "其他" in pareto["labels"] or len(pareto["labels"]) < 15
    shot(page, "reports-pareto-zh-1366")
    page.goto(f"{live['url']}/reports/yield")
    assert "最终测试良率" in page.inner_text("#sec-trend")
    assert page.csp_errors == []
