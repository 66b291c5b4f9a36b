"""Reel and carton labels: the date code, the QR code's content, the QR picture (SVG) and
ZPL for Zebra label printers.

Pure computation: no Flask, no ORM. A label is a plain `Label`; the pages and the ZPL
download are built from the same objects, so a printed label and a screen label agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache

import segno

from mes.shipping import iso15434

# ZPL field data may not contain the command prefixes ^ and ~; with ^FH_ they (and the
# escape character itself) are written as _ plus two hex digits.
_ZPL_ESCAPES = {"_": "_5F", "^": "_5E", "~": "_7E"}
# 4 x 6 inch labels at 203 dpi (the common Zebra shipping label).
LABEL_WIDTH_DOTS = 812
LABEL_LENGTH_DOTS = 1218


def date_code(moment: date | datetime) -> str:
    """The JEDEC-style date code YYWW: the ISO year's last two digits and the ISO week.
    (29 December 2025 is in ISO week 1 of 2026: `2601`.)"""
    year, week, _day = moment.isocalendar()
    return f"{year % 100:02d}{week:02d}"


@dataclass(frozen=True)
class Label:
    """One label. `kind` is `reel` (one lot) or `carton` (one product of a shipment)."""

    kind: str
    part_number: str
    part_name: str
    quantity: int
    lots: tuple[str, ...]
    date_code: str
    msl: str
    customer: str
    po: str
    shipment: int
    vehicle_program: str | None = None
    extra: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    @property
    def lot_text(self) -> str:
        return ", ".join(self.lots)

    def qr_data(self) -> str:
        """What the QR code carries: the ISO/IEC 15434 format 06 message a receiving
        scanner reads (K purchase order, 1P part number, Q quantity, 9D date code, 1T each
        lot; `mes.shipping.iso15434`)."""
        fields = [(iso15434.PO, self.po), (iso15434.SUPPLIER_PART, self.part_number),
                  (iso15434.QUANTITY, str(self.quantity)),
                  (iso15434.DATE_CODE, self.date_code)]
        fields += [(iso15434.LOT, lot) for lot in self.lots]
        return iso15434.encode([(di, iso15434.clean(value)) for di, value in fields])


@lru_cache(maxsize=4096)
def qr_svg(data: str, title: str, scale: int = 3) -> str:
    """The QR code of `data` as inline SVG (segno, error correction M), as on the lot
    traveler. Encoding (choosing the best of eight masks) costs about 20 ms a code; a label
    sheet shows the same codes each time it is opened, so the last 4,096 are kept."""
    return segno.make(data, error="m").svg_inline(scale=scale, svgclass="qr", title=title)


def zpl_field(text: str) -> str:
    """Field data safe for ^FH_: printable ASCII kept, ^ ~ _ escaped, others as hex bytes."""
    out = []
    for char in text:
        if char in _ZPL_ESCAPES:
            out.append(_ZPL_ESCAPES[char])
        elif " " <= char <= "}":
            out.append(char)
        else:
            out.append("".join(f"_{byte:02X}" for byte in char.encode("utf-8")))
    return "".join(out)


def _text(x: int, y: int, height: int, text: str, block: tuple[int, int] | None = None
          ) -> str:
    """A text field at (x, y) in dots; `block` (width, lines) wraps it in a field block
    (^FB) so a long value wraps instead of running off the label or under the QR code."""
    wrap = f"^FB{block[0]},{block[1]},0,L" if block else ""
    return f"^FO{x},{y}^A0N,{height},{height}{wrap}^FH_^FD{zpl_field(text)}^FS"


def zpl(label: Label) -> str:
    """One label as ZPL II: ^XA ... ^XZ, UTF-8 (^CI28), the fields as text and a QR code
    (^BQN, model 2, magnification 5) of `qr_data()` in the top right corner."""
    title = "REEL" if label.kind == "reel" else "CARTON"
    left = (480, 1)     # beside the QR code
    full = (732, 3)     # below it, the label's whole width
    lines = [
        "^XA",
        "^CI28",
        f"^PW{LABEL_WIDTH_DOTS}",
        f"^LL{LABEL_LENGTH_DOTS}",
        _text(40, 40, 50, f"{title} - {label.customer}", left),
        # ^BQ data: the error correction level and input mode (M = medium, A = automatic),
        # then the data itself.
        f"^FO560,40^BQN,2,5^FH_^FDMA,{zpl_field(label.qr_data())}^FS",
        _text(40, 120, 30, "PART NUMBER (P)"),
        _text(40, 155, 60, label.part_number, left),
        _text(40, 230, 30, label.part_name, (480, 2)),
        _text(40, 310, 30, "QUANTITY (Q)"),
        _text(40, 345, 60, str(label.quantity), left),
        _text(40, 430, 30, "LOT (L)"),
        _text(40, 465, 45, label.lot_text, full),
        _text(40, 620, 30, "DATE CODE (D)"),
        _text(40, 655, 60, label.date_code),
        _text(420, 620, 30, "MSL (M)"),
        _text(420, 655, 60, label.msl),
        _text(40, 750, 30, f"PO {label.po}", (732, 1)),
        _text(40, 790, 30, f"SHIPMENT {label.shipment}", (732, 1)),
    ]
    if label.vehicle_program:
        lines.append(_text(40, 830, 30, f"PROGRAM {label.vehicle_program}", (732, 1)))
    lines.append("^XZ")
    return "\n".join(lines) + "\n"


def zpl_many(labels: Iterable[Label]) -> str:
    """Several labels in one print job."""
    return "".join(zpl(label) for label in labels)


def carton_labels(reels: Sequence[Label]) -> list[Label]:
    """One carton label per product: the reels' quantities added up, their lots listed, the
    oldest date code (a carton is as old as its oldest reel) and the product's MSL."""
    by_part: dict[str, list[Label]] = {}
    for reel in reels:
        by_part.setdefault(reel.part_number, []).append(reel)
    cartons = []
    for part, group in by_part.items():
        first = group[0]
        cartons.append(Label(
            kind="carton", part_number=part, part_name=first.part_name,
            quantity=sum(r.quantity for r in group),
            lots=tuple(lot for r in group for lot in r.lots),
            date_code=min(r.date_code for r in group), msl=first.msl,
            customer=first.customer, po=first.po, shipment=first.shipment,
            vehicle_program=first.vehicle_program))
    return cartons
