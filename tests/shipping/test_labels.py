"""Label rendering without a database: the date code, the QR content and ZPL."""

from __future__ import annotations

from datetime import UTC, date, datetime

from mes.shipping import labels

REEL = labels.Label(kind="reel", part_number="GD-5532", part_name="Gate driver",
                    quantity=2500, lots=("L261122-0001",), date_code="2647", msl="3",
                    customer="OEM", po="PO^7~_1", shipment=12, vehicle_program="EV-7")


def test_date_code_is_iso_year_and_week():
    assert labels.date_code(date(2026, 3, 4)) == "2610"
    assert labels.date_code(datetime(2026, 11, 22, 23, 0, tzinfo=UTC)) == "2647"
    # ISO weeks cross the calendar year: 29 Dec 2025 is week 1 of 2026, 1 Jan 2027 is
    # week 53 of 2026.
    assert labels.date_code(date(2025, 12, 29)) == "2601"
    assert labels.date_code(date(2027, 1, 1)) == "2653"


def test_qr_carries_the_label_fields():
    assert REEL.qr_data() == ("[)>\x1e06\x1dKPO^7~_1\x1d1PGD-5532\x1dQ2500\x1d9D2647"
                              "\x1d1TL261122-0001\x1e\x04")
    svg = labels.qr_svg(REEL.qr_data(), "reel")
    assert svg.startswith("<svg") and 'class="qr"' in svg


def test_zpl_has_one_label_with_fields_and_a_qr_field():
    text = labels.zpl(REEL)
    assert text.startswith("^XA\n") and text.endswith("^XZ\n")
    assert text.count("^XA") == text.count("^XZ") == 1
    for value in ("^FDGD-5532^FS", "^FD2500^FS", "^FDL261122-0001^FS", "^FD2647^FS",
                  "^FD3^FS", "^FDPROGRAM EV-7^FS"):
        assert value in text
    # The purchase order's ^ ~ _ are hex-escaped (^FH_), so they cannot end the field or
    # start a command.
    assert "^FDPO PO_5E7_7E_5F1^FS" in text
    # Long values wrap in field blocks: the lots across the label, below the QR code.
    assert "^FO40,465^A0N,45,45^FB732,3,0,L^FH_^FDL261122-0001^FS" in text
    qr = [line for line in text.splitlines() if "^BQN" in line]
    assert qr == ["^FO560,40^BQN,2,5^FH_^FDMA,[)>_1E06_1DKPO_5E7_7E_5F1_1D1PGD-5532"
                  "_1DQ2500_1D9D2647_1D1TL261122-0001_1E_04^FS"]


def test_zpl_escapes_non_ascii_as_utf8_bytes():
    label = labels.Label(kind="reel", part_number="P", part_name="Ü", quantity=1, lots=("L",),
                         date_code="2601", msl="1", customer="C", po="P", shipment=1)
    assert "^FD_C3_9C^FS" in labels.zpl(label)


def test_carton_label_adds_up_reels_of_a_product_and_takes_the_oldest_date_code():
    second = labels.Label(**{**REEL.__dict__, "lots": ("L2",), "quantity": 500,
                             "date_code": "2552"})
    other = labels.Label(**{**REEL.__dict__, "part_number": "LIN-3316", "lots": ("L3",),
                            "quantity": 7})
    cartons = labels.carton_labels([REEL, second, other])
    assert [(c.kind, c.part_number, c.quantity, c.lots, c.date_code) for c in cartons] == [
        ("carton", "GD-5532", 3000, ("L261122-0001", "L2"), "2552"),
        ("carton", "LIN-3316", 7, ("L3",), "2647")]
    assert labels.zpl_many(cartons).count("^XA") == 2
