"""The genealogy picture: lots as boxes coloured by state (holds marked), split and merge
edges between them with the units each carried, and the shipments and their customers at
the right-hand edge.

Pure: plain nodes, edges and shipments in, an SVG string out, every text escaped, colours
from CSS classes (trace.css), each lot a link. Lots are laid out in columns by generation:
the longest chain of genealogy edges leading to them, ignoring an edge that closes a cycle
(a split child merged back into its parent), and within a column in the order given.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

NODE_W, NODE_H = 132, 38
COL_GAP, ROW_GAP = 56, 14
PAD = 16
# Past this many lots the picture would be unreadable; the tables still list them all.
MAX_NODES = 400


@dataclass(frozen=True)
class Node:
    key: str
    label: str
    state: str
    href: str
    on_hold: bool = False
    note: str = ""
    start: bool = False


@dataclass(frozen=True)
class Link:
    parent: str
    child: str
    kind: str
    # The units that went along the edge (a split child's or a merged lot's), written on it.
    qty: int | None = None


@dataclass(frozen=True)
class Outbound:
    """A shipment: the lots it carried and its customer."""

    key: str
    label: str
    customer: str
    lots: tuple[str, ...] = ()
    href: str = ""
    # Units shipped per lot, written on the lot's edge to the shipment.
    quantities: tuple[tuple[str, int], ...] = ()


@dataclass
class _Layout:
    column: dict[str, int] = field(default_factory=dict)
    back: set[tuple[str, str]] = field(default_factory=set)


def layout(keys: Sequence[str], links: Sequence[Link]) -> _Layout:
    """Each node's column: 0 for a node nothing leads to, else one more than the deepest
    node leading to it; an edge that closes a cycle is set aside (and drawn backwards)."""
    out: dict[str, list[str]] = defaultdict(list)
    for link in links:
        out[link.parent].append(link.child)
    result = _Layout()
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    order: list[str] = []
    for root in keys:
        if root in state:
            continue
        # An explicit stack: a deep genealogy must not hit Python's recursion limit.
        stack: list[tuple[str, int]] = [(root, 0)]
        state[root] = 1
        while stack:
            node, i = stack[-1]
            children = out.get(node, [])
            if i < len(children):
                stack[-1] = (node, i + 1)
                child = children[i]
                if state.get(child) == 1:
                    result.back.add((node, child))
                elif child not in state:
                    state[child] = 1
                    stack.append((child, 0))
            else:
                state[node] = 2
                order.append(node)
                stack.pop()
    column = {key: 0 for key in keys}
    for node in reversed(order):  # a topological order of the edges kept
        for child in out.get(node, []):
            if (node, child) not in result.back and child in column:
                column[child] = max(column[child], column[node] + 1)
    result.column = column
    return result


def _text(x: float, y: float, text: str, css: str, anchor: str = "middle") -> str:
    return (f'<text class="{css}" x="{x:g}" y="{y:g}" text-anchor="{anchor}">'
            f"{escape(text)}</text>")


def _short(text: str, limit: int = 18) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def genealogy(nodes: Sequence[Node], links: Sequence[Link],
              shipments: Sequence[Outbound] = (), *, title: str = "Genealogy",
              too_large: str = "Too many lots to draw; the tables list them all.") -> str:
    """The picture as an SVG document fragment."""
    if len(nodes) > MAX_NODES:
        return (f'<svg xmlns="http://www.w3.org/2000/svg" class="genealogy" '
                f'viewBox="0 0 640 60" role="img" aria-label="{escape(title)}">'
                f"<title>{escape(title)}</title>{_text(320, 34, too_large, 'g-empty')}</svg>")
    keys = [n.key for n in nodes]
    known = set(keys)
    links = [link for link in links if link.parent in known and link.child in known]
    placed = layout(keys, links)
    rows: dict[int, int] = defaultdict(int)
    pos: dict[str, tuple[float, float]] = {}
    for node in nodes:
        col = placed.column[node.key]
        pos[node.key] = (PAD + col * (NODE_W + COL_GAP), PAD + rows[col] * (NODE_H + ROW_GAP))
        rows[col] += 1
    lot_cols = max(placed.column.values(), default=-1) + 1
    ship_x = PAD + lot_cols * (NODE_W + COL_GAP)
    cust_x = ship_x + NODE_W + COL_GAP
    ship_pos = {s.key: (ship_x, PAD + i * (NODE_H + ROW_GAP)) for i, s in enumerate(shipments)}
    customers = sorted({s.customer for s in shipments})
    cust_pos = {c: (cust_x, PAD + i * (NODE_H + ROW_GAP)) for i, c in enumerate(customers)}
    columns = lot_cols + (2 if shipments else 0)
    height = max([*rows.values(), len(shipments), len(customers), 1])
    width = PAD * 2 + max(columns, 1) * (NODE_W + COL_GAP) - COL_GAP
    total_h = PAD * 2 + height * (NODE_H + ROW_GAP) - ROW_GAP
    if placed.back:  # room for the arcs drawn under the boxes
        total_h += ROW_GAP * 2

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="genealogy" '
             f'viewBox="0 0 {width:g} {total_h:g}" width="{width:g}" height="{total_h:g}" '
             f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>',
             '<defs><marker id="g-arrow" viewBox="0 0 10 10" refX="10" refY="5" '
             'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
             '<path class="g-arrowhead" d="M0,0 L10,5 L0,10 z"/></marker></defs>']

    labels: list[str] = []

    def label(x: float, y: float, qty: int | None, css: str) -> None:
        """The quantity on an edge, on a light plate so that crossing lines do not hide it
        (drawn after every edge)."""
        if qty is None:
            return
        shown = f"{qty:,}"
        w = 7 * len(shown) + 8
        labels.append(f'<g class="g-qty {css}"><rect x="{x - w / 2:g}" y="{y - 8:g}" '
                      f'width="{w:g}" height="15" rx="3"/>' + _text(x, y + 3.5, shown, "g-qty-text")
                      + "</g>")

    def connect(a: tuple[float, float], b: tuple[float, float], css: str,
                backwards: bool = False, qty: int | None = None) -> None:
        x1, y1 = a[0] + NODE_W, a[1] + NODE_H / 2
        x2, y2 = b[0], b[1] + NODE_H / 2
        if backwards:
            # Under the boxes, from the child's column back to the parent's.
            x1, y1 = a[0] + NODE_W / 2, a[1] + NODE_H
            x2, y2 = b[0] + NODE_W / 2, b[1] + NODE_H
            low = max(y1, y2) + ROW_GAP
            parts.append(f'<path class="g-edge {css} g-back" d="M{x1:g},{y1:g} '
                         f'C{x1:g},{low:g} {x2:g},{low:g} {x2:g},{y2:g}" '
                         f'marker-end="url(#g-arrow)"/>')
            label((x1 + x2) / 2, y1 + (low - y1) * 0.75, qty, css)
            return
        mid = (x1 + x2) / 2
        parts.append(f'<path class="g-edge {css}" d="M{x1:g},{y1:g} C{mid:g},{y1:g} '
                     f'{mid:g},{y2:g} {x2:g},{y2:g}" marker-end="url(#g-arrow)"/>')
        label(mid, (y1 + y2) / 2, qty, css)

    for link in links:
        connect(pos[link.parent], pos[link.child], f"g-{escape(link.kind)}",
                (link.parent, link.child) in placed.back, link.qty)
    for ship in shipments:
        shipped = dict(ship.quantities)
        for lot in ship.lots:
            if lot in pos:
                connect(pos[lot], ship_pos[ship.key], "g-ship", qty=shipped.get(lot))
        connect(ship_pos[ship.key], cust_pos[ship.customer], "g-ship")
    parts.extend(labels)

    for node in nodes:
        x, y = pos[node.key]
        css = f"g-node g-{escape(node.state)}" + (" g-held" if node.on_hold else "") + \
            (" g-start" if node.start else "")
        parts.append(f'<a href="{escape(node.href)}"><g class="{css}">'
                     f"<title>{escape(node.label)} · {escape(node.note or node.state)}</title>"
                     f'<rect x="{x:g}" y="{y:g}" width="{NODE_W}" height="{NODE_H}" rx="5"/>'
                     + _text(x + NODE_W / 2, y + 16, _short(node.label), "g-label")
                     + _text(x + NODE_W / 2, y + 31, _short(node.note or node.state, 22),
                             "g-note"))
        if node.on_hold:
            parts.append(f'<circle class="g-hold" cx="{x + NODE_W - 2:g}" cy="{y + 2:g}" '
                         f'r="9"/>' + _text(x + NODE_W - 2, y + 6, "H", "g-hold-text"))
        parts.append("</g></a>")
    for ship in shipments:
        x, y = ship_pos[ship.key]
        box = (f'<g class="g-node g-shipment"><title>{escape(ship.label)}</title>'
               f'<rect x="{x:g}" y="{y:g}" width="{NODE_W}" height="{NODE_H}" rx="5"/>'
               + _text(x + NODE_W / 2, y + 23, _short(ship.label), "g-label") + "</g>")
        parts.append(f'<a href="{escape(ship.href)}">{box}</a>' if ship.href else box)
    for code in customers:
        x, y = cust_pos[code]
        parts.append(f'<g class="g-node g-customer"><title>{escape(code)}</title>'
                     f'<rect x="{x:g}" y="{y:g}" width="{NODE_W}" height="{NODE_H}" rx="19"/>'
                     + _text(x + NODE_W / 2, y + 23, _short(code), "g-label") + "</g>")
    parts.append("</svg>")
    return "".join(parts)
