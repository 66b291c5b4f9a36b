"""The process control charts as data: the control chart (X̄ or individuals), its spread
chart (range, standard deviation or moving range) and the histogram of the values, as
specifications that mes/static/js/charts.js draws with the vendored Chart.js (the page
puts each in a `data-spec` attribute, like the report charts).

Pure computation: no Flask, no ORM. Every text (titles, series names, the tooltip lines)
comes translated from the caller; numbers are formatted by the browser in the page's
language, with `digits` fraction digits at most.

Control chart specification: {"type": "control", "title", "labels": [...], "unit",
"digits", "y": {"title"}, "series": [{"name", "values", "color", "role": "data" | "center"
| "limit" | "spec", "marked"?: [bool, ...]}], "points": [{"title", "lines": [...]}]}. The
centre line and control limits are given per point (the version of the limits that judged
it), so they step where a new version was frozen; a point without limits has none.

Histogram specification: {"type": "histogram", "title", "unit", "digits", "name", "y":
{"title"}, "bins": [{"from", "to", "count"}], "marks": [{"name", "x", "color"}]}.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

COLOURS = {"data": "#1f5fa8", "marked": "#b3261e", "center": "#2e7d32", "limit": "#b3261e",
           "spec": "#c77700", "target": "#6b7280", "bar": "#7fa7d4"}
MAX_DIGITS = 4
MIN_BINS, MAX_BINS = 5, 30


@dataclass(frozen=True)
class Point:
    """One subgroup as a chart shows it: its value on the chart (mean or spread; None: no
    value, such as the first moving range), the centre and limits of the version that
    judged it (None: not judged), whether a rule marked it on this chart, and its tooltip."""

    label: str
    value: float | None
    center: float | None
    ucl: float | None
    lcl: float | None
    marked: bool
    title: str
    lines: tuple[str, ...] = ()


def decimals(values: Sequence[float]) -> int:
    """The fraction digits the values were measured to (at most MAX_DIGITS), plus one for
    means and limits computed from them."""
    most = 0
    for v in values:
        if v is None or not math.isfinite(v):
            continue
        text = f"{v:.{MAX_DIGITS}f}".rstrip("0")
        most = max(most, len(text.partition(".")[2]))
    return min(MAX_DIGITS, most + 1)


def control(points: Sequence[Point], *, title: str, unit: str, digits: int, names: dict[str, str],
            lsl: float | None = None, usl: float | None = None) -> dict[str, Any]:
    """A control chart: the points, the centre line and the control limits of each point's
    version, the specification limits (when given: on the X̄ or individuals chart only).
    `names` gives the series' names: value, center, ucl, lcl, usl, lsl, and y (the axis)."""
    series: list[dict[str, Any]] = [
        {"name": names["value"], "values": [p.value for p in points], "role": "data",
         "color": COLOURS["data"], "marked": [p.marked for p in points]},
        {"name": names["center"], "values": [p.center for p in points], "role": "center",
         "color": COLOURS["center"]},
        {"name": names["ucl"], "values": [p.ucl for p in points], "role": "limit",
         "color": COLOURS["limit"]},
        {"name": names["lcl"], "values": [p.lcl for p in points], "role": "limit",
         "color": COLOURS["limit"]},
    ]
    for key, limit in (("usl", usl), ("lsl", lsl)):
        if limit is not None:
            series.append({"name": names[key], "values": [limit] * len(points),
                           "role": "spec", "color": COLOURS["spec"]})
    return {"type": "control", "title": title, "unit": unit, "digits": digits,
            "labels": [p.label for p in points], "y": {"title": names["y"]},
            "series": series,
            "points": [{"title": p.title, "lines": list(p.lines)} for p in points]}


def bins(values: Sequence[float], count: int | None = None) -> list[tuple[float, float, int]]:
    """(from, to, count) of equal-width bins over the values' range; √n bins (5 to 30)
    unless `count` says. A value on an inner edge falls in the upper bin, the largest value
    in the last bin. All values equal: one bin around them."""
    seen = sorted(v for v in values if v is not None and math.isfinite(v))
    if not seen:
        return []
    low, high = seen[0], seen[-1]
    if high == low:
        half = max(abs(low) * 1e-3, 1e-6)
        return [(low - half, high + half, len(seen))]
    n = count or max(MIN_BINS, min(MAX_BINS, math.ceil(math.sqrt(len(seen)))))
    width = (high - low) / n
    counts = [0] * n
    for v in seen:
        counts[min(n - 1, int((v - low) / width))] += 1
    return [(low + i * width, low + (i + 1) * width, counts[i]) for i in range(n)]


def histogram(values: Sequence[float], *, title: str, unit: str, digits: int, name: str,
              y_title: str, marks: Sequence[tuple[str, float | None, str]]) -> dict[str, Any]:
    """The values' histogram with vertical marks (name, position, colour key) such as the
    specification limits and the target; a mark without a position is left out."""
    return {"type": "histogram", "title": title, "unit": unit, "digits": digits, "name": name,
            "y": {"title": y_title},
            "bins": [{"from": a, "to": b, "count": c} for a, b, c in bins(values)],
            "marks": [{"name": label, "x": x, "color": COLOURS.get(key, key)}
                      for label, x, key in marks if x is not None]}


def empty(spec: dict[str, Any]) -> bool:
    """True when the chart has nothing to draw."""
    if spec["type"] == "histogram":
        return not spec["bins"]
    return not any(v is not None for v in spec["series"][0]["values"])
