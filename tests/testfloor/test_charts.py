"""The SVG charts: valid SVG, bars largest first, limit lines where their values are, text
escaped, empty data shown as a message."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from mes.testfloor import charts
from mes.testfloor.charts import Line

NS = {"s": "http://www.w3.org/2000/svg"}


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    return root


def bar_labels(root: ET.Element) -> list[str]:
    return [g.get("data-label") for g in root.iterfind(".//s:g[@class='chart-bar']", NS)]


def bar_heights(root: ET.Element) -> list[float]:
    return [float(g.find("s:rect", NS).get("height"))
            for g in root.iterfind(".//s:g[@class='chart-bar']", NS)]


def line_xs(root: ET.Element, kind: str) -> list[float]:
    return [float(g.find("s:line", NS).get("x1"))
            for g in root.iterfind(f".//s:g[@class='chart-line {kind}']", NS)]


def test_bar_chart_orders_bars_largest_first():
    root = parse(charts.bar_chart([("Bin 8", 5), ("Bin 2", 40), ("Bin 9", 12)],
                                  title="Pareto", empty="none"))
    assert bar_labels(root) == ["Bin 2", "Bin 9", "Bin 8"]
    heights = bar_heights(root)
    assert heights == sorted(heights, reverse=True)
    assert heights[0] == pytest.approx(charts.HEIGHT - charts.TOP - charts.BOTTOM)


def test_bar_chart_keeps_the_given_order_when_not_sorted():
    root = parse(charts.bar_chart([("First pass", 90.0), ("Final", 95.0)], title="Yield",
                                  empty="none", sort=False, unit=" %"))
    assert bar_labels(root) == ["First pass", "Final"]


def test_bar_chart_without_bars_shows_the_empty_message():
    root = parse(charts.bar_chart([], title="Pareto", empty="No failing units."))
    assert root.find(".//s:rect", NS) is None
    assert root.find(".//s:text[@class='chart-empty']", NS).text == "No failing units."


def test_chart_text_is_escaped():
    svg = charts.bar_chart([('<script>&"', 1.0)], title="<b>t</b>", empty="")
    root = parse(svg)
    assert "<script>" not in svg
    assert bar_labels(root) == ['<script>&"']
    assert root.find("s:title", NS).text == "<b>t</b>"


def test_histogram_draws_limit_lines_at_their_x_positions():
    values = [float(v) for v in range(0, 101)]
    root = parse(charts.histogram(values, title="h", empty="", lines=[
        Line(0.0, "spec low", "spec"), Line(100.0, "spec high", "spec"),
        Line(25.0, "PAT low", "pat-static"), Line(75.0, "PAT high", "pat-static")]))
    # The axis spans 0..100 with a 5 % margin each side: -5..105.
    assert line_xs(root, "spec") == pytest.approx(
        [charts.x_position(0, -5, 105), charts.x_position(100, -5, 105)], abs=0.01)
    plot_w = charts.WIDTH - charts.LEFT - charts.RIGHT
    assert line_xs(root, "pat-static") == pytest.approx(
        [charts.LEFT + plot_w * 30 / 110, charts.LEFT + plot_w * 80 / 110], abs=0.01)
    assert sum(int(r.find("s:title", NS).text.rsplit(": ", 1)[1])
               for r in root.iterfind(".//s:rect[@class='chart-bin']", NS)) == 101


def test_histogram_range_covers_a_limit_outside_the_values():
    root = parse(charts.histogram([1.0, 1.1, 1.2], title="h", empty="",
                                  lines=[Line(2.0, "hi", "spec")]))
    x = line_xs(root, "spec")[0]
    assert charts.LEFT < x < charts.WIDTH - charts.RIGHT


def test_histogram_of_equal_values_and_of_no_values():
    assert parse(charts.histogram([3.0] * 10, title="h", empty="")).find(
        ".//s:rect[@class='chart-bin']", NS) is not None
    root = parse(charts.histogram([], title="h", empty="No values."))
    assert root.find(".//s:text[@class='chart-empty']", NS).text == "No values."


def test_line_chart_draws_syl_lines_at_their_y_positions_and_points_in_order():
    points = [("L1", 95.0), ("L2", 96.0), ("L3", 94.0), ("L4", 97.0)]
    root = parse(charts.line_chart(points, title="t", empty="", lines=[
        Line(93.0, "SYL1", "syl1"), Line(92.0, "SYL2", "syl2")]))
    # y spans 92..97 with an 8 % margin: 91.6..97.4.
    y1 = float(root.find(".//s:g[@class='chart-line syl1']/s:line", NS).get("y1"))
    y2 = float(root.find(".//s:g[@class='chart-line syl2']/s:line", NS).get("y1"))
    assert y1 == pytest.approx(charts.y_position(93.0, 91.6, 97.4), abs=0.01)
    assert y2 == pytest.approx(charts.y_position(92.0, 91.6, 97.4), abs=0.01)
    assert y2 > y1
    circles = root.findall(".//s:circle", NS)
    assert [c.find("s:title", NS).text.split(":")[0] for c in circles] == ["L1", "L2", "L3",
                                                                            "L4"]
    xs = [float(c.get("cx")) for c in circles]
    assert xs == sorted(xs)


def test_line_chart_with_one_point_and_with_none():
    assert len(parse(charts.line_chart([("L1", 90.0)], title="t", empty="")).findall(
        ".//s:circle", NS)) == 1
    root = parse(charts.line_chart([], title="t", empty="No runs."))
    assert root.find(".//s:text[@class='chart-empty']", NS).text == "No runs."


def test_ticks_and_values_carry_thousands_separators_never_exponents():
    root = parse(charts.bar_chart([("Bin 8", 37275), ("Bin 2", 1432)], title="Pareto",
                                  empty="none"))
    ticks = [t.text for t in root.iterfind(".//s:text[@class='chart-tick']", NS)]
    # 0..37,275 in steps of 10,000 (37,275 / 5 = 7,455, rounded up to 10,000).
    assert ticks == ["0", "10,000", "20,000", "30,000"]
    values = [t.text for t in root.iterfind(".//s:text[@class='chart-value']", NS)]
    assert values == ["37,275", "1,432"]
    assert charts._label(2.5) == "2.5" and charts._num(98.5) == "98.5"
    assert charts._num(1000) == "1,000" and charts._num(0) == "0"


def test_many_bars_slant_their_labels_and_leave_values_to_the_tooltip():
    bars = [(f"Reason {n:02d} at FT-H", float(1000 + n)) for n in range(30)]
    root = parse(charts.bar_chart(bars, title="Pareto", empty="none"))
    labels = list(root.iterfind(".//s:text[@class='chart-label']", NS))
    assert len(labels) == 30
    assert all(t.get("transform", "").startswith("rotate(-30") for t in labels)
    assert root.find(".//s:text[@class='chart-value']", NS) is None
    assert len(root.findall(".//s:g[@class='chart-bar']/s:title", NS)) == 30
    few = parse(charts.bar_chart([("B1", 3.0), ("B2", 1.0)], title="t", empty="none"))
    assert all(t.get("text-anchor") == "middle"
               for t in few.iterfind(".//s:text[@class='chart-label']", NS))
