"""The label of a pack unit (reel, tray, tube, dry bag, box, carton) as a customer's receiving
scanner reads it: human-readable fields beside a QR code holding the ISO/IEC 15434 format 06
message (`mes.shipping.iso15434`), as the ECIA EIGP 114 label does; a dry bag's label also
carries the moisture-sensitive caution block (MSL, floor life, peak reflow temperature, bag
seal date).

Pure computation: no Flask, no ORM. One `PackLabel` is drawn four ways from the same rows,
so the picture on the page, the PDF, and the Zebra printer's ZPL agree: PNG (Pillow), SVG,
PDF (fpdf2) and ZPL (^BQ, QR model 2). Printed labels are in English, the language of the
industry's labels, and the PDF's core fonts carry Latin-1 only: other characters print as ?.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date
from html import escape

import segno
from fpdf import FPDF
from PIL import Image, ImageDraw, ImageFont

from mes.shipping import iso15434
from mes.shipping.labels import LABEL_LENGTH_DOTS, LABEL_WIDTH_DOTS, zpl_field

KIND_TITLES = {"reel": "REEL", "tray": "TRAY", "tube": "TUBE", "bag": "DRY BAG",
               "box": "BOX", "carton": "CARTON"}
# 4 x 6 inch at 203 dpi (LABEL_*_DOTS): one dot is 1/8 mm.
DOT_MM = 25.4 / 203
QR_X = 470
QR_Y = 30
QR_SCALE = 6
MARGIN = 30


@dataclass(frozen=True)
class Caution:
    """The moisture-sensitive caution block of a dry bag (J-STD-033)."""

    msl: str
    floor_life: str                      # e.g. "168 h at <= 30 C / 60 % RH"
    peak_reflow_c: int | None            # the product's peak package body temperature
    sealed_at: date | None               # bag seal date
    shelf_life_until: date | None        # 12 months after sealing


@dataclass(frozen=True)
class PackLabel:
    kind: str
    unit_id: str
    part: str
    part_name: str
    quantity: int
    date_codes: tuple[str, ...]
    lots: tuple[str, ...]
    country: str
    msl: str
    customer: str | None = None
    customer_part: str | None = None
    po: str | None = None
    caution: Caution | None = None

    @property
    def title(self) -> str:
        return KIND_TITLES.get(self.kind, self.kind.upper())

    def payload(self) -> str:
        """The 15434 message the 2D symbol carries."""
        return iso15434.encode(iso15434.label_fields(
            po=self.po, customer_part=self.customer_part, part=self.part,
            quantity=self.quantity, date_codes=self.date_codes, lots=self.lots,
            country=self.country, package_id=self.unit_id))

    def rows(self) -> list[tuple[str, str]]:
        """The human-readable fields, (caption with its data identifier, value)."""
        rows = [("(K) CUSTOMER PO", self.po or "-")]
        if self.customer_part:
            rows.append(("(P) CUSTOMER PART", self.customer_part))
        rows += [("(1P) PART NUMBER", f"{self.part}  {self.part_name}".strip()),
                 ("(Q) QUANTITY", str(self.quantity)),
                 ("(9D) DATE CODE", " ".join(self.date_codes) or "-"),
                 ("(1T) LOT", " ".join(self.lots)),
                 ("(4L) COUNTRY OF ORIGIN", self.country),
                 ("(3S) PACKAGE ID", self.unit_id),
                 ("MSL", self.msl)]
        return rows

    def caution_rows(self) -> list[str]:
        """The caution block's lines (empty unless a dry bag)."""
        c = self.caution
        if c is None:
            return []
        return [
            "CAUTION - MOISTURE-SENSITIVE DEVICES",
            f"MSL {c.msl}   FLOOR LIFE {c.floor_life}",
            "PEAK PACKAGE BODY TEMPERATURE "
            + (f"{c.peak_reflow_c} C" if c.peak_reflow_c is not None else "see data sheet"),
            "BAG SEAL DATE " + (c.sealed_at.isoformat() if c.sealed_at else "not sealed"),
            "SHELF LIFE 12 MONTHS" + (f" (UNTIL {c.shelf_life_until.isoformat()})"
                                      if c.shelf_life_until else ""),
            "BAKE BEFORE USE IF THE HUMIDITY CARD OR FLOOR LIFE SAYS SO (J-STD-033)",
        ]


# --- the 2D symbol ---------------------------------------------------------------------

def symbol(label: PackLabel) -> segno.QRCode:
    """The QR code of the label's message (error correction M, as on the traveler)."""
    return segno.make(label.payload(), error="m", micro=False)


def _symbol_png(label: PackLabel, scale: int = QR_SCALE) -> bytes:
    out = io.BytesIO()
    symbol(label).save(out, kind="png", scale=scale, border=4)
    return out.getvalue()


# --- layout (dots) shared by PNG, SVG and PDF ------------------------------------------

@dataclass(frozen=True)
class _Text:
    x: int
    y: int
    size: int
    text: str
    bold: bool = False


def _wrap(text: str, size: int, width: int) -> list[str]:
    """`text` broken into lines of about `width` dots at font size `size`."""
    per_line = max(int(width / (size * 0.55)), 8)
    lines, line = [], ""
    for word in text.split(" "):
        while len(word) > per_line:
            if line:
                lines.append(line)
                line = ""
            lines.append(word[:per_line])
            word = word[per_line:]
        candidate = f"{line} {word}".strip() if line else word
        if len(candidate) > per_line:
            lines.append(line)
            line = word
        else:
            line = candidate
    if line:
        lines.append(line)
    return lines or [""]


def _layout(label: PackLabel, symbol_size: int) -> list[_Text]:
    texts = [_Text(MARGIN, 40, 44, label.title, bold=True)]
    if label.customer:
        texts.append(_Text(MARGIN, 100, 30, label.customer))
    y = max(170, QR_Y + symbol_size + 20)
    left_y = 160
    for caption, value in label.rows():
        # Beside the symbol the width is short; below it, the label's whole width.
        beside = left_y + 90 < QR_Y + symbol_size
        top = left_y if beside else y
        width = (QR_X - MARGIN - 10) if beside else LABEL_WIDTH_DOTS - 2 * MARGIN
        texts.append(_Text(MARGIN, top, 22, caption))
        lines = _wrap(value, 34, width)
        for i, line in enumerate(lines):
            texts.append(_Text(MARGIN, top + 28 + 38 * i, 34, line, bold=True))
        step = 28 + 38 * len(lines) + 14
        if beside:
            left_y += step
        else:
            y += step
    y = max(y, left_y)
    for i, line in enumerate(label.caution_rows()):
        for part in _wrap(line, 24, LABEL_WIDTH_DOTS - 2 * MARGIN):
            texts.append(_Text(MARGIN, y + 8, 24, part, bold=(i == 0)))
            y += 32
    return texts


def _symbol_dots(label: PackLabel) -> int:
    width, _height = symbol(label).symbol_size(scale=QR_SCALE, border=4)
    return int(width)


# --- PNG -------------------------------------------------------------------------------

def png(label: PackLabel) -> bytes:
    """The label as a PNG of 812 x 1218 dots (4 x 6 inch at 203 dpi)."""
    image = Image.new("L", (LABEL_WIDTH_DOTS, LABEL_LENGTH_DOTS), 255)
    code = Image.open(io.BytesIO(_symbol_png(label)))
    image.paste(code.convert("L"), (QR_X, QR_Y))
    draw = ImageDraw.Draw(image)
    for text in _layout(label, code.width):
        font = ImageFont.load_default(size=text.size)
        draw.text((text.x, text.y), text.text, fill=0, font=font,
                  stroke_width=1 if text.bold else 0, stroke_fill=0)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


# --- SVG -------------------------------------------------------------------------------

def svg(label: PackLabel) -> str:
    """The label as a standalone SVG document, 4 x 6 inch."""
    size = _symbol_dots(label)
    code = symbol(label).svg_inline(scale=QR_SCALE, border=4, svgclass=None, lineclass=None,
                                    omitsize=False)
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="101.6mm" height="152.4mm" '
        f'viewBox="0 0 {LABEL_WIDTH_DOTS} {LABEL_LENGTH_DOTS}">',
        f"<title>{escape(label.title)} {escape(label.unit_id)}</title>",
        f'<rect width="{LABEL_WIDTH_DOTS}" height="{LABEL_LENGTH_DOTS}" fill="#fff"/>',
        f'<g transform="translate({QR_X},{QR_Y})">{code}</g>',
    ]
    for text in _layout(label, size):
        weight = ' font-weight="bold"' if text.bold else ""
        parts.append(f'<text x="{text.x}" y="{text.y + text.size}" font-size="{text.size}" '
                     f'font-family="Helvetica, Arial, sans-serif"{weight}>'
                     f"{escape(text.text)}</text>")
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


# --- PDF -------------------------------------------------------------------------------

def latin1(text: str) -> str:
    """`text` as the PDF core fonts can print it (characters outside Latin-1 become ?)."""
    return text.encode("latin-1", "replace").decode("latin-1")


def pdf(label: PackLabel) -> bytes:
    """The label as a one-page PDF, 4 x 6 inch, the QR code as an image."""
    doc = FPDF(unit="mm", format=(LABEL_WIDTH_DOTS * DOT_MM, LABEL_LENGTH_DOTS * DOT_MM))
    doc.set_auto_page_break(False)
    doc.set_margin(0)
    doc.set_title(latin1(f"{label.title} {label.unit_id}"))
    doc.add_page()
    size = _symbol_dots(label)
    doc.image(io.BytesIO(_symbol_png(label)), x=QR_X * DOT_MM, y=QR_Y * DOT_MM,
              w=size * DOT_MM, h=size * DOT_MM)
    for text in _layout(label, size):
        points = text.size * DOT_MM / 0.3528 * 0.8
        doc.set_font("Helvetica", "B" if text.bold else "", points)
        doc.text(text.x * DOT_MM, (text.y + text.size * 0.85) * DOT_MM, latin1(text.text))
    return bytes(doc.output())


# --- ZPL -------------------------------------------------------------------------------

def zpl(label: PackLabel) -> str:
    """The label as ZPL II: the same rows as text and the same message in a QR code (^BQN,
    model 2, magnification 5, error correction M). The message's control characters go
    through the field hex indicator (^FH_: _1E, _1D, _04)."""
    lines = ["^XA", "^CI28", f"^PW{LABEL_WIDTH_DOTS}", f"^LL{LABEL_LENGTH_DOTS}",
             f"^FO{QR_X},{QR_Y}^BQN,2,5^FH_^FDMA,{zpl_field(label.payload())}^FS"]
    for text in _layout(label, _symbol_dots(label)):
        lines.append(f"^FO{text.x},{text.y}^A0N,{text.size},{text.size}^FH_"
                     f"^FD{zpl_field(text.text)}^FS")
    lines.append("^XZ")
    return "\n".join(lines) + "\n"
