"""SVG charts of the report pages, in the house style of mes.testfloor.charts (whose bar
and line charts they reuse): a stacked bar chart for time in E10 states and queue versus
process time. Pure functions: numbers and labels in, an SVG string out, text escaped;
colours come from CSS classes (reports.css), never from style attributes."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from mes.testfloor.charts import (
    BOTTOM,
    HEIGHT,
    LEFT,
    RIGHT,
    TOP,
    WIDTH,
    _empty,
    _num,
    _open,
    _y_axis,
    bar_chart,
    line_chart,
)

__all__ = ["bar_chart", "line_chart", "stacked_bars"]


def stacked_bars(categories: Sequence[str], series: Sequence[tuple[str, str]],
                 values: Sequence[Sequence[float]], *, title: str, empty: str,
                 unit: str = "") -> str:
    """One bar per category, stacked from the series (label, css class) in order;
    `values[i][j]` is series j of category i. Each segment's tooltip names its series; the
    page shows the legend (the slanted labels of many bars leave no room for it here)."""
    if not categories or not any(v > 0 for row in values for v in row):
        return _empty(title, "stacked", empty)
    high = max(sum(max(v, 0) for v in row) for row in values) or 1.0
    parts = _open(title, "stacked")
    _y_axis(parts, 0.0, high, unit)
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    base_y = TOP + plot_h
    slot = plot_w / len(categories)
    width = slot * 0.7
    longest = max(len(c) for c in categories)
    for i, label in enumerate(categories):
        x = LEFT + slot * i + (slot - width) / 2
        y: float = base_y
        parts.append(f'<g class="chart-stack" data-label="{escape(label)}">')
        for (name, css), value in zip(series, values[i], strict=True):
            if value <= 0:
                continue
            h = plot_h * value / high
            y -= h
            parts.append(f'<rect class="seg-{escape(css)}" x="{x:.1f}" y="{y:.1f}" '
                         f'width="{width:.1f}" height="{h:.1f}"><title>{escape(label)} · '
                         f'{escape(name)}: {escape(_num(value) + unit)}</title></rect>')
        cx = x + width / 2
        # Labels wider than their slot are slanted, as in the line chart.
        turn = (f' text-anchor="end" transform="rotate(-30 {cx:.1f} {base_y + 14:.1f})"'
                if slot < 6.5 * longest else ' text-anchor="middle"')
        parts.append(f'<text class="chart-label" x="{cx:.1f}" y="{base_y + 14:.1f}"{turn}>'
                     f"{escape(label)}</text></g>")
    return "".join(parts) + "</svg>"
