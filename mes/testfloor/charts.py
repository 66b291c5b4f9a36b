"""Server-rendered SVG charts for the test-floor pages: a bar chart (bin Pareto, yields), a
histogram with vertical limit lines (spec and PAT limits) and a line chart with horizontal
limit lines (yield trend with SYL1 and SYL2).

Pure functions: plain numbers and labels in, an SVG string out, every text escaped. The
pages embed the string inline (the Content-Security-Policy allows inline SVG; colours come
from classes styled in testfloor.css, not from style attributes).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH = 640
HEIGHT = 260
# Plot area margins: left for the value axis labels, bottom for the category labels.
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 16, 48


@dataclass(frozen=True)
class Line:
    """A limit line at `value`, labelled, drawn with the CSS class `kind`."""

    value: float
    label: str
    kind: str = "limit"


def _num(value: float) -> str:
    """A value with up to two decimals and thousands separators: 37,275 or 98.5."""
    text = f"{value:,.2f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _label(value: float) -> str:
    """A short axis label: up to 4 significant digits below 1,000, whole numbers with
    thousands separators above (30,000, never 3e+04)."""
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def _open(title: str, css: str) -> list[str]:
    return [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart {escape(css)}" '
            f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}">',
            f"<title>{escape(title)}</title>"]


def _empty(title: str, css: str, message: str) -> str:
    parts = _open(title, css)
    parts.append(f'<text class="chart-empty" x="{WIDTH / 2:g}" y="{HEIGHT / 2:g}" '
                 f'text-anchor="middle">{escape(message)}</text>')
    return "".join(parts) + "</svg>"


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About `count` round tick values covering low..high."""
    span = high - low
    if span <= 0:
        return [low]
    raw = span / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    return ticks


def _y_axis(parts: list[str], low: float, high: float, unit: str = "") -> None:
    plot_h = HEIGHT - TOP - BOTTOM
    for tick in _ticks(low, high):
        y = TOP + plot_h * (1 - (tick - low) / (high - low)) if high > low else TOP + plot_h
        parts.append(f'<line class="chart-grid" x1="{LEFT}" y1="{y:.1f}" '
                     f'x2="{WIDTH - RIGHT}" y2="{y:.1f}"/>')
        parts.append(f'<text class="chart-tick" x="{LEFT - 6}" y="{y + 4:.1f}" '
                     f'text-anchor="end">{escape(_label(tick) + unit)}</text>')
    parts.append(f'<line class="chart-axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" '
                 f'y2="{HEIGHT - BOTTOM}"/>')
    parts.append(f'<line class="chart-axis" x1="{LEFT}" y1="{HEIGHT - BOTTOM}" '
                 f'x2="{WIDTH - RIGHT}" y2="{HEIGHT - BOTTOM}"/>')


def bar_chart(bars: Sequence[tuple[str, float]], *, title: str, empty: str,
              unit: str = "", sort: bool = True, css: str = "bars") -> str:
    """Bars of (label, value), the largest first when `sort` (a Pareto), each labelled with
    its value; `empty` is shown when there is no bar."""
    if not bars:
        return _empty(title, css, empty)
    items = sorted(bars, key=lambda b: -b[1]) if sort else list(bars)
    high = max(max(v for _label_, v in items), 0) or 1.0
    parts = _open(title, css)
    _y_axis(parts, 0.0, high, unit)
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    slot = plot_w / len(items)
    width = slot * 0.7
    # Labels wider than their slot (about 6.5 px a character) are slanted, and values are
    # left to the tooltip when the bars are too narrow to carry them without overlapping.
    longest = max(len(label) for label, _v in items)
    slanted = slot < 6.5 * longest
    values_fit = slot >= 6.5 * max(len(_num(v) + unit) for _l, v in items)
    for i, (label, value) in enumerate(items):
        x = LEFT + slot * i + (slot - width) / 2
        h = plot_h * max(value, 0) / high
        y = TOP + plot_h - h
        parts.append(f'<g class="chart-bar" data-label="{escape(label)}">'
                     f'<title>{escape(label)}: {escape(_num(value) + unit)}</title>'
                     f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{h:.1f}"/>')
        if values_fit:
            parts.append(f'<text class="chart-value" x="{x + width / 2:.1f}" '
                         f'y="{y - 3:.1f}" text-anchor="middle">'
                         f"{escape(_num(value) + unit)}</text>")
        cx, ly = x + width / 2, HEIGHT - BOTTOM + 16
        turn = (f' text-anchor="end" transform="rotate(-30 {cx:.1f} {ly})"' if slanted
                else ' text-anchor="middle"')
        parts.append(f'<text class="chart-label" x="{cx:.1f}" y="{ly}"{turn}>'
                     f"{escape(label)}</text></g>")
    return "".join(parts) + "</svg>"


def x_position(value: float, low: float, high: float) -> float:
    """The x coordinate of `value` on a horizontal axis from `low` to `high`."""
    plot_w = WIDTH - LEFT - RIGHT
    if high <= low:
        return LEFT + plot_w / 2
    return LEFT + plot_w * (value - low) / (high - low)


def histogram(values: Sequence[float], *, title: str, empty: str,
              lines: Sequence[Line] = (), bins: int = 30, unit: str = "") -> str:
    """A histogram of `values` with vertical `lines` (spec and PAT limits). The x range
    covers the values and every line, with a small margin; `empty` when no value."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return _empty(title, "histogram", empty)
    drawn = [ln for ln in lines if ln.value is not None and math.isfinite(ln.value)]
    low = min([*finite, *(ln.value for ln in drawn)])
    high = max([*finite, *(ln.value for ln in drawn)])
    if high == low:
        low, high = low - 0.5, high + 0.5
    margin = (high - low) * 0.05
    low, high = low - margin, high + margin
    width = (high - low) / bins
    counts = [0] * bins
    for v in finite:
        counts[min(int((v - low) / width), bins - 1)] += 1
    top = max(counts)
    parts = _open(title, "histogram")
    _y_axis(parts, 0.0, float(top))
    plot_h = HEIGHT - TOP - BOTTOM
    for i, count in enumerate(counts):
        if not count:
            continue
        x0 = x_position(low + i * width, low, high)
        x1 = x_position(low + (i + 1) * width, low, high)
        h = plot_h * count / top
        parts.append(f'<rect class="chart-bin" x="{x0:.1f}" y="{TOP + plot_h - h:.1f}" '
                     f'width="{max(x1 - x0 - 1, 0.5):.1f}" height="{h:.1f}">'
                     f"<title>{escape(_label(low + i * width))} … "
                     f"{escape(_label(low + (i + 1) * width))}: {count}</title></rect>")
    for tick in _ticks(low, high, 6):
        x = x_position(tick, low, high)
        parts.append(f'<text class="chart-tick" x="{x:.1f}" y="{HEIGHT - BOTTOM + 14}" '
                     f'text-anchor="middle">{escape(_label(tick))}</text>')
    if unit:
        parts.append(f'<text class="chart-tick" x="{WIDTH - RIGHT}" y="{HEIGHT - 4}" '
                     f'text-anchor="end">{escape(unit)}</text>')
    for n, ln in enumerate(drawn):
        x = x_position(ln.value, low, high)
        parts.append(f'<g class="chart-line {escape(ln.kind)}" data-value="{ln.value!r}">'
                     f'<title>{escape(ln.label)}: {escape(_label(ln.value))}</title>'
                     f'<line x1="{x:.2f}" y1="{TOP}" x2="{x:.2f}" y2="{HEIGHT - BOTTOM}"/>'
                     f'<text x="{x + 3:.1f}" y="{TOP + 10 + 11 * (n % 4)}">'
                     f"{escape(ln.label)}</text></g>")
    return "".join(parts) + "</svg>"


def y_position(value: float, low: float, high: float) -> float:
    """The y coordinate of `value` on a vertical axis from `low` to `high`."""
    plot_h = HEIGHT - TOP - BOTTOM
    if high <= low:
        return TOP + plot_h / 2
    return TOP + plot_h * (1 - (value - low) / (high - low))


def line_chart(points: Sequence[tuple[str, float]], *, title: str, empty: str,
               lines: Sequence[Line] = (), unit: str = "") -> str:
    """Points (label, value) in order joined by a line, with horizontal `lines` (SYL1,
    SYL2); the y range covers the points and the lines. `empty` when there is no point."""
    if not points:
        return _empty(title, "trend", empty)
    drawn = [ln for ln in lines if ln.value is not None and math.isfinite(ln.value)]
    values = [v for _label_, v in points] + [ln.value for ln in drawn]
    low, high = min(values), max(values)
    if high == low:
        low, high = low - 1, high + 1
    margin = (high - low) * 0.08
    low, high = low - margin, high + margin
    parts = _open(title, "trend")
    _y_axis(parts, low, high, unit)
    plot_w = WIDTH - LEFT - RIGHT
    step = plot_w / max(len(points) - 1, 1)
    coords = [(LEFT + (step * i if len(points) > 1 else plot_w / 2),
               y_position(v, low, high)) for i, (_label_, v) in enumerate(points)]
    for ln in drawn:
        y = y_position(ln.value, low, high)
        parts.append(f'<g class="chart-line {escape(ln.kind)}" data-value="{ln.value!r}">'
                     f'<title>{escape(ln.label)}: {escape(_num(ln.value) + unit)}</title>'
                     f'<line x1="{LEFT}" y1="{y:.2f}" x2="{WIDTH - RIGHT}" y2="{y:.2f}"/>'
                     f'<text x="{WIDTH - RIGHT - 2}" y="{y - 3:.1f}" text-anchor="end">'
                     f"{escape(ln.label)}</text></g>")
    path = " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in
                    enumerate(coords))
    parts.append(f'<path class="chart-trend" d="{path}"/>')
    every = max(1, math.ceil(len(points) / 12))
    for i, ((label, value), (x, y)) in enumerate(zip(points, coords, strict=True)):
        parts.append(f'<circle class="chart-point" cx="{x:.1f}" cy="{y:.1f}" r="3">'
                     f"<title>{escape(label)}: {escape(_num(value) + unit)}</title></circle>")
        if i % every == 0:
            parts.append(f'<text class="chart-label" x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" '
                         f'text-anchor="end" transform="rotate(-30 {x:.1f} '
                         f'{HEIGHT - BOTTOM + 16})">{escape(label)}</text>')
    return "".join(parts) + "</svg>"
