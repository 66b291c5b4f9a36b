"""The server-rendered SVG chart of an order line's outlook: the quantity expected over
time at P50 and at P90 (cumulative steps, the band between them shaded) against the
ordered quantity and the need date.

A pure function: numbers, times and labels in, an SVG string out, every text escaped;
colours come from classes (forecast.css), as the test floor's charts do.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape

from mes.testfloor.charts import _label, _ticks

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 16, 40


def _steps(points: Sequence[tuple[float, float]], x0: float, y0: float, x_end: float
           ) -> list[tuple[float, float]]:
    """The corners of a cumulative step line from (x0, y0) through `points` to x_end."""
    corners = [(x0, y0)]
    level = y0
    for x, y in points:
        corners.append((x, level))
        corners.append((x, y))
        level = y
    corners.append((x_end, level))
    return corners


def _path(corners: Sequence[tuple[float, float]]) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in corners)


def outlook_chart(curve: Sequence[tuple[datetime, int, int]], *, made: int, ordered: int,
                  need: datetime, now: datetime, title: str, labels: dict[str, str],
                  date_format: str = "%m-%d") -> str:
    """The chart: `curve` is (time, cumulative at P50, cumulative at P90) after `made`
    units already made; `labels` names "p50", "p90", "need" and "ordered"."""
    last = max([need, *(t for t, _a, _b in curve)])
    start = min(now, need)
    span = (last - start).total_seconds() * 1.08 or 86400.0
    high = 1.1 * float(max([ordered, made, *(p for _t, p, _q in curve),
                            *(q for _t, _p, q in curve)]) or 1)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(at: datetime) -> float:
        return LEFT + plot_w * (at - start).total_seconds() / span

    def y(value: float) -> float:
        return TOP + plot_h * (1 - value / high)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart outlook" '
             f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}">',
             f"<title>{escape(title)}</title>"]
    for tick in _ticks(0.0, high):
        parts.append(f'<line class="chart-grid" x1="{LEFT}" y1="{y(tick):.1f}" '
                     f'x2="{WIDTH - RIGHT}" y2="{y(tick):.1f}"/>')
        parts.append(f'<text class="chart-tick" x="{LEFT - 6}" y="{y(tick) + 4:.1f}" '
                     f'text-anchor="end">{escape(_label(tick))}</text>')
    parts.append(f'<line class="chart-axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" '
                 f'y2="{HEIGHT - BOTTOM}"/>')
    parts.append(f'<line class="chart-axis" x1="{LEFT}" y1="{HEIGHT - BOTTOM}" '
                 f'x2="{WIDTH - RIGHT}" y2="{HEIGHT - BOTTOM}"/>')
    for at in (start, need, last):
        parts.append(f'<text class="chart-label" x="{x(at):.1f}" y="{HEIGHT - BOTTOM + 16}" '
                     f'text-anchor="middle">{escape(at.strftime(date_format))}</text>')
    x0, x_end = x(start), WIDTH - RIGHT
    p50 = _steps([(x(t), y(a)) for t, a, _b in curve], x0, y(made), x_end)
    p90 = _steps([(x(t), y(b)) for t, _a, b in curve], x0, y(made), x_end)
    # The band between the two step lines: P50 forward, P90 back.
    parts.append(f'<polygon class="outlook-band" points="{_path(p50 + p90[::-1])}"/>')
    parts.append(f'<polyline class="outlook-p90" points="{_path(p90)}">'
                 f"<title>{escape(labels['p90'])}</title></polyline>")
    parts.append(f'<polyline class="outlook-p50" points="{_path(p50)}">'
                 f"<title>{escape(labels['p50'])}</title></polyline>")
    parts.append(f'<g class="outlook-ordered"><line x1="{LEFT}" y1="{y(ordered):.1f}" '
                 f'x2="{x_end}" y2="{y(ordered):.1f}"/><text x="{x_end - 4}" '
                 f'y="{y(ordered) - 4:.1f}" text-anchor="end">'
                 f"{escape(labels['ordered'])} {ordered:,}</text></g>")
    parts.append(f'<g class="outlook-need"><line x1="{x(need):.1f}" y1="{TOP}" '
                 f'x2="{x(need):.1f}" y2="{HEIGHT - BOTTOM}"/><text x="{x(need) + 4:.1f}" '
                 f'y="{TOP + 10}">{escape(labels["need"])}</text></g>')
    legend_y = HEIGHT - 6
    parts.append(f'<g class="outlook-legend"><line class="outlook-p50" x1="{LEFT}" '
                 f'y1="{legend_y - 4}" x2="{LEFT + 20}" y2="{legend_y - 4}"/>'
                 f'<text x="{LEFT + 24}" y="{legend_y}">{escape(labels["p50"])}</text>'
                 f'<line class="outlook-p90" x1="{LEFT + 150}" y1="{legend_y - 4}" '
                 f'x2="{LEFT + 170}" y2="{legend_y - 4}"/>'
                 f'<text x="{LEFT + 174}" y="{legend_y}">{escape(labels["p90"])}</text></g>')
    return "".join(parts) + "</svg>"
