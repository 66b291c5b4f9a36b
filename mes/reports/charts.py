"""The charts of the report pages as data: each function returns a chart specification
(a plain dict) that the page embeds as JSON in a `<script type="application/json">` and
mes/static/js/charts.js draws with the vendored Chart.js (mes/static/vendor/README.md).

Nothing here formats a number for display: the browser formats ticks and tooltips in the
page's language (Intl.NumberFormat), so the axis of a Pareto reads "30,000", never "3e+04".
Every text in a specification (titles, series names, "Other") comes translated from the
caller. The figures a chart shows beyond the table's (the Pareto's cumulative line, the
lower end of a yield axis) are computed here, in pure functions the tests check by hand.

Specification: {"type": "bar" | "line" | "pareto", "title", "labels": [...], "series":
[{"name", "values": [...], "color", "axis"?: "pct", "type"?: "line"}], "unit": "" | "%" |
" h", "stacked"?: bool, "horizontal"?: bool, "y": {"min"?, "max"?, "title"?}, "pct":
{"title"}?  (the Pareto's right-hand axis, 0-100 %)}. `empty(spec)` is true when there is
nothing to draw; the page then says so instead of drawing an empty frame.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

# Colours by meaning, those of the pages (mes.css); a canvas cannot take CSS classes.
COLOURS = {
    "reject": "#b3261e", "accent": "#1f5fa8", "cumulative": "#1b1f24",
    "productive": "#2e7d32", "standby": "#f2c94c", "engineering": "#1f5fa8",
    "scheduled_down": "#8e6bbf", "unscheduled_down": "#b3261e", "non_scheduled": "#9e9e9e",
    "queue": "#f2c94c", "process": "#1f5fa8",
    "disp-release": "#2e7d32", "disp-rework": "#f2c94c", "disp-scrap": "#b3261e",
    "disp-use_as_is": "#8e6bbf",
}
# Lines of a trend chart with several products, told apart by colour.
SERIES = ["#1f5fa8", "#b3261e", "#2e7d32", "#8e6bbf", "#c77700", "#00838f"]

# A Pareto shows this many categories and lumps the rest into one "Other" bar.
PARETO_TOP = 15


def colour(key: str) -> str:
    return COLOURS.get(key, "#9e9e9e")


def pareto_rows(items: Iterable[tuple[str, float]], *, top: int = PARETO_TOP,
                other: str = "Other") -> list[tuple[str, float, float]]:
    """(label, quantity, cumulative percent of the total), largest first; quantities of
    equal labels are added; beyond `top` categories the rest become one last `other` bar
    (so the cumulative line ends at 100 %). Ties keep the order of their labels."""
    totals: dict[str, float] = {}
    for label, qty in items:
        totals[label] = totals.get(label, 0.0) + qty
    ranked = sorted(((k, v) for k, v in totals.items() if v > 0), key=lambda kv: (-kv[1], kv[0]))
    whole = sum(v for _k, v in ranked)
    if not whole:
        return []
    if len(ranked) > top:
        rest = sum(v for _k, v in ranked[top - 1:])
        ranked = [*ranked[:top - 1], (other, rest)]
    rows = []
    running = 0.0
    for label, qty in ranked:
        running += qty
        rows.append((label, qty, round(100.0 * running / whole, 2)))
    return rows


def pareto(items: Iterable[tuple[str, float]], *, title: str, quantity: str,
           cumulative: str, other: str, top: int = PARETO_TOP) -> dict[str, Any]:
    """Bars of quantity, largest first, with the cumulative share as a line on a 0-100 %
    axis of its own (right)."""
    rows = pareto_rows(items, top=top, other=other)
    return {"type": "pareto", "title": title, "labels": [r[0] for r in rows], "unit": "",
            "series": [{"name": quantity, "values": [r[1] for r in rows],
                        "color": colour("reject")},
                       {"name": cumulative, "values": [r[2] for r in rows], "axis": "pct",
                        "type": "line", "color": colour("cumulative")}],
            "y": {"min": 0, "title": quantity}, "pct": {"title": cumulative}}


def yield_axis_min(values: Iterable[float | None]) -> float:
    """The lower end of a yield axis (percent): below the lowest yield by a quarter of its
    distance to 100 % (at least one point), rounded down to a whole 1, 2, 5 or 10 %, never
    below 0. Yields of 92-99 % then fill the chart instead of being bars of equal height
    on a 0-100 % axis."""
    seen = [v for v in values if v is not None and math.isfinite(v)]
    if not seen:
        return 0.0
    low = min(seen)
    if low <= 0:
        return 0.0
    reach = low - max(1.0, (100.0 - low) * 0.25)
    span = 100.0 - reach
    step = next(s for s in (1, 2, 5, 10) if span / s <= 12)
    return float(max(0, math.floor(reach / step) * step))


def bar(labels: Sequence[str], values: Sequence[float | None], *, title: str, name: str,
        unit: str = "", css: str = "accent", y_min: float | None = None,
        y_max: float | None = None, y_title: str | None = None,
        horizontal: bool = False) -> dict[str, Any]:
    y: dict[str, Any] = {}
    if y_min is not None:
        y["min"] = y_min
    if y_max is not None:
        y["max"] = y_max
    if y_title:
        y["title"] = y_title
    return {"type": "bar", "title": title, "labels": list(labels), "unit": unit,
            "horizontal": horizontal, "y": y,
            "series": [{"name": name, "values": list(values), "color": colour(css)}]}


def yield_bars(labels: Sequence[str], values: Sequence[float | None], *, title: str,
               name: str) -> dict[str, Any]:
    """Yields in percent on an axis from yield_axis_min to 100 %."""
    return bar(labels, values, title=title, name=name, unit="%",
               y_min=yield_axis_min(values), y_max=100, y_title=name)


def stacked(labels: Sequence[str], series: Sequence[tuple[str, str]],
            values: Sequence[Sequence[float]], *, title: str, unit: str = "",
            horizontal: bool = False) -> dict[str, Any]:
    """One bar per label, stacked from the series (name, colour key) in order;
    `values[i][j]` is series j of label i."""
    return {"type": "bar", "title": title, "labels": list(labels), "unit": unit,
            "stacked": True, "horizontal": horizontal, "y": {"min": 0},
            "series": [{"name": name, "color": colour(key),
                        "values": [row[j] for row in values]}
                       for j, (name, key) in enumerate(series)]}


def trend(series: dict[str, list[tuple[str, float | None]]], *, title: str,
          unit: str = "%", y_title: str | None = None) -> dict[str, Any]:
    """One line per series name over the union of their labels (sorted); a series without
    a value at a label has a gap there. A percent trend's axis starts at yield_axis_min."""
    labels = sorted({label for points in series.values() for label, _v in points})
    lines = []
    for n, (name, points) in enumerate(series.items()):
        at = dict(points)
        lines.append({"name": name, "values": [at.get(label) for label in labels],
                      "type": "line", "color": SERIES[n % len(SERIES)]})
    y: dict[str, Any] = {}
    if unit == "%":
        y = {"min": yield_axis_min(v for _n, pts in series.items() for _l, v in pts),
             "max": 100}
    if y_title:
        y["title"] = y_title
    return {"type": "line", "title": title, "labels": labels, "unit": unit, "y": y,
            "series": lines}


def empty(spec: dict[str, Any]) -> bool:
    """True when the chart would have nothing to draw."""
    return not spec["labels"] or not any(
        v for s in spec["series"] for v in s["values"] if v is not None)
