"""The ISO/IEC 15434 format 06 message of the 2D labels, without a database."""

from __future__ import annotations

import pytest

from mes.shipping import iso15434 as m

FIELDS = m.label_fields(po="PO-4711", customer_part="ACM 778", part="QFN48-A", quantity=5000,
                        date_codes=["2648", "2649"], lots=["L0001", "L0002"], country="CN",
                        package_id="C-000004")


def test_envelope_is_header_format_fields_and_trailer():
    text = m.encode(FIELDS)
    assert text == ("[)>\x1e06\x1dKPO-4711\x1dPACM 778\x1d1PQFN48-A\x1dQ5000\x1d9D2648"
                    "\x1d9D2649\x1d1TL0001\x1d1TL0002\x1d4LCN\x1d3SC-000004\x1e\x04")


def test_parse_gives_back_every_field_in_order():
    message = m.parse(m.encode(FIELDS))
    assert message.fields == tuple((di, v) for di, v in FIELDS)
    assert message.values(m.DATE_CODE) == ["2648", "2649"]
    assert message.first(m.PACKAGE_ID) == "C-000004"
    assert message.first("20Z") is None
    assert message.as_dict()[m.LOT] == ["L0001", "L0002"]


def test_missing_customer_part_and_po_are_left_out():
    fields = m.label_fields(po=None, customer_part=None, part="X", quantity=1,
                            date_codes=["2601"], lots=["L1"], country="CN", package_id="R-1")
    text = m.encode(fields)
    assert "\x1dK" not in text and "\x1dP" not in text.replace("\x1d1P", "")
    assert m.parse(text).first(m.SUPPLIER_PART) == "X"


@pytest.mark.parametrize("form", [
    lambda t: m.human(t),                                                      # ␞ ␝ ␄
    lambda t: t.replace("\x1e", "<RS>").replace("\x1d", "<GS>").replace("\x04", "<EOT>"),
    lambda t: t.replace("\x1e", "{rs}").replace("\x1d", "{gs}").replace("\x04", "{eot}"),
    lambda t: "  " + t[:-1] + "\n",                                            # no EOT
])
def test_what_scanners_and_keyboards_hand_over_parses_the_same(form):
    text = m.encode(FIELDS)
    assert m.looks_like_message(form(text))
    assert m.parse(form(text)).fields == m.parse(text).fields


@pytest.mark.parametrize("text", [
    "L0001",                                     # not a message
    "[)>06\x1d1PX",                              # no record separator after the header
    "[)>\x1e05\x1d1PX\x1e\x04",                  # format 05 (application identifiers)
    "[)>\x1e06\x1d1PX\x1e12\x1dY\x1e\x04",       # two envelopes
    "[)>\x1e06\x1dlowercase\x1e\x04",            # no data identifier
    "[)>\x1e06\x1d\x1e\x04",                     # no fields
    "[)>\x1e06\x1d1PA\x07B\x1e\x04",             # a control character in a value
])
def test_malformed_messages_are_refused(text):
    with pytest.raises(m.MessageError):
        m.parse(text)
    assert not m.looks_like_message(text) or text.startswith("[)>\x1e")


def test_encode_refuses_what_a_message_cannot_carry():
    with pytest.raises(m.MessageError):
        m.encode([("1p", "X")])
    with pytest.raises(m.MessageError):
        m.encode([("1P", "A\x1dB")])
    with pytest.raises(m.MessageError):
        m.encode([("1P", "")])
    # Letters beyond ASCII travel as they are (the QR code carries UTF-8).
    assert m.parse(m.encode([("K", "订单-1")])).first("K") == "订单-1"
    assert m.label_fields(po="PO\t1", customer_part=None, part="X", quantity=1, date_codes=[],
                          lots=[], country="CN", package_id="R-1")[0] == ("K", "PO1")
