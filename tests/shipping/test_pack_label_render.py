"""A pack unit's label drawn four ways (PNG, SVG, PDF, ZPL), and its 2D symbol read back
with zbar as a customer's receiving scanner reads it."""

from __future__ import annotations

import io
from datetime import date

import pytest

from mes.shipping import iso15434, packlabels

CARTON = packlabels.PackLabel(
    kind="carton", unit_id="C-000004", part="QFN48-A", part_name="Automotive QFN 48",
    quantity=30000, date_codes=("2648", "2649"), lots=("L261201-0001", "L261202-0002"),
    country="CN", msl="3", customer="OEM", customer_part="OEM-778-A", po="PO-4711")
BAG = packlabels.PackLabel(
    kind="bag", unit_id="B-000002", part="QFN48-A", part_name="Automotive QFN 48",
    quantity=15000, date_codes=("2649",), lots=("L261202-0002",), country="CN", msl="3",
    caution=packlabels.Caution(msl="3", floor_life="168 h at <= 30 C / 60 % RH",
                               peak_reflow_c=260, sealed_at=date(2026, 12, 6),
                               shelf_life_until=date(2027, 12, 6)))


def _decode(png: bytes) -> str:
    zbar = pytest.importorskip("pyzbar.pyzbar", reason="zbar (Debian libzbar0) not installed")
    from PIL import Image

    symbols = zbar.decode(Image.open(io.BytesIO(png)))
    assert len(symbols) == 1 and symbols[0].type == "QRCODE"
    return symbols[0].data.decode("utf-8")


@pytest.mark.parametrize("label", [CARTON, BAG], ids=["carton", "bag"])
def test_png_label_decodes_to_the_same_data_identifiers(label):
    message = iso15434.parse(_decode(packlabels.png(label)))
    assert message.values("K") == ([label.po] if label.po else [])
    assert message.values("P") == ([label.customer_part] if label.customer_part else [])
    assert message.values("1P") == [label.part]
    assert message.values("Q") == [str(label.quantity)]
    assert message.values("9D") == list(label.date_codes)
    assert message.values("1T") == list(label.lots)
    assert message.values("4L") == ["CN"]
    assert message.values("3S") == [label.unit_id]


def test_png_is_a_4_by_6_inch_label_at_203_dpi():
    from PIL import Image

    image = Image.open(io.BytesIO(packlabels.png(CARTON)))
    assert image.format == "PNG" and image.size == (812, 1218)


def test_human_readable_rows_carry_every_field():
    rows = dict(CARTON.rows())
    assert rows["(K) CUSTOMER PO"] == "PO-4711"
    assert rows["(P) CUSTOMER PART"] == "OEM-778-A"
    assert rows["(9D) DATE CODE"] == "2648 2649"
    assert rows["(1T) LOT"] == "L261201-0001 L261202-0002"
    assert rows["(3S) PACKAGE ID"] == "C-000004"
    assert CARTON.caution_rows() == []
    # No customer part number: no P row.
    assert not any(caption.startswith("(P)") for caption, _ in BAG.rows())


def test_bag_label_has_the_moisture_caution():
    caution = " ".join(BAG.caution_rows())
    for text in ("CAUTION - MOISTURE-SENSITIVE DEVICES", "MSL 3", "168 h",
                 "PEAK PACKAGE BODY TEMPERATURE 260 C", "BAG SEAL DATE 2026-12-06",
                 "UNTIL 2027-12-06"):
        assert text in caution
    svg = packlabels.svg(BAG)
    assert "BAG SEAL DATE 2026-12-06" in svg


def test_unsealed_bag_without_reflow_temperature_says_so():
    bag = packlabels.PackLabel(**{**BAG.__dict__, "caution": packlabels.Caution(
        msl="2a", floor_life="672 h", peak_reflow_c=None, sealed_at=None,
        shelf_life_until=None)})
    caution = " ".join(bag.caution_rows())
    assert "see data sheet" in caution and "not sealed" in caution


def test_svg_is_a_document_with_the_symbol_and_escaped_text():
    label = packlabels.PackLabel(**{**CARTON.__dict__, "customer": "A&B <C>"})
    svg = packlabels.svg(label)
    assert svg.startswith("<?xml") and svg.rstrip().endswith("</svg>")
    assert 'width="101.6mm"' in svg and "<path" in svg
    assert "A&amp;B &lt;C&gt;" in svg and "A&B" not in svg


def test_pdf_is_one_page():
    body = packlabels.pdf(CARTON)
    assert body.startswith(b"%PDF-") and body.count(b"/Type /Page\n") == 1
    # Letters the core fonts lack print as ?, never fail.
    label = packlabels.PackLabel(**{**CARTON.__dict__, "customer": "客户"})
    assert packlabels.pdf(label).startswith(b"%PDF-")
    assert packlabels.latin1("Müller 客") == "Müller ?"


def test_zpl_carries_the_same_message_in_a_qr_field():
    text = packlabels.zpl(CARTON)
    assert text.startswith("^XA\n") and text.endswith("^XZ\n")
    qr = next(line for line in text.splitlines() if "^BQN" in line)
    data = qr.split("^FDMA,", 1)[1].removesuffix("^FS")
    unescaped = (data.replace("_1E", "\x1e").replace("_1D", "\x1d").replace("_04", "\x04")
                 .replace("_5F", "_"))
    assert unescaped == CARTON.payload()
    assert "^FD(9D) DATE CODE^FS" in text and "^FD2648 2649^FS" in text
