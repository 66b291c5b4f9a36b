"""Pack unit labels through the API and the page: the 2D symbol read back with zbar gives
the same values, every format, the dry bag's caution, and customer isolation."""

from __future__ import annotations

import io

import pytest

from mes.shipping import iso15434
from tests.shipping.packed import mark, pack


def _decoded(png: bytes) -> iso15434.Message:
    zbar = pytest.importorskip("pyzbar.pyzbar", reason="zbar (Debian libzbar0) not installed")
    from PIL import Image

    symbols = zbar.decode(Image.open(io.BytesIO(png)))
    assert [s.type for s in symbols] == ["QRCODE"]
    return iso15434.parse(symbols[0].data.decode("utf-8"))


def test_carton_label_decodes_to_the_same_values(session, api, completed):
    packed = pack(session, api, completed, "LOT-A", quantity=30000, date_code="2649")
    op = api("operator")
    resp = op.get(f"/pack-units/{packed.carton}/label?format=png")
    assert resp.status_code == 200 and resp.mimetype == "image/png"
    message = _decoded(resp.get_data())
    assert message.values("1P") == ["P1"]
    assert message.values("P") == ["OEM-778-A"]
    assert message.values("Q") == ["30000"]
    assert message.values("9D") == ["2649"]
    assert message.values("1T") == ["LOT-A"]
    assert message.values("4L") == ["CN"]
    assert message.values("3S") == [packed.carton]
    assert message.values("K") == []          # not shipped: no purchase order yet
    reel = _decoded(op.get(f"/pack-units/{packed.reels[5]}/label").get_data())
    assert reel.values("Q") == ["5000"] and reel.values("3S") == [packed.reels[5]]


def test_a_box_of_two_lots_lists_both_date_codes_and_lots(session, api, completed):
    c = _bags_only(session, api, completed, "LOT-C", "2648")
    d = _bags_only(session, api, completed, "LOT-D", "2649")
    op = api("operator")
    box = op.post("/pack-units", json={"kind": "box", "children": c + d})
    assert box.status_code == 201, box.get_json()
    code = box.get_json()["id"]
    message = _decoded(op.get(f"/pack-units/{code}/label").get_data())
    assert message.values("9D") == ["2648", "2649"]
    assert message.values("1T") == ["LOT-C", "LOT-D"]
    assert message.values("Q") == ["10000"]


def _bags_only(session, api, completed, lot_no, date_code):
    from mes.catalog import services as cat

    cat.update_product(session, "eng", cat.get_product(session, "P1"),
                       {"standard_pack_qty": {"reel": 5000}})
    session.commit()
    completed(lot_no, quantity=5000)
    mark(session, lot_no, date_code, "TC" + lot_no[-1] * 3)
    op = api("operator")
    reels = [u["id"] for u in op.post(f"/lots/{lot_no}/pack", json={"carrier": "reel"})
             .get_json()["units"]]
    return [op.post("/pack-units", json={"kind": "bag", "children": reels}).get_json()["id"]]


def test_bag_label_carries_the_moisture_caution_with_its_seal_date(session, api, completed):
    packed = pack(session, api, completed)
    op = api("operator")
    sealed = op.get(f"/pack-units/{packed.bags[0]}").get_json()["sealed_at"]
    resp = op.get(f"/pack-units/{packed.bags[0]}/label?format=svg")
    assert resp.status_code == 200 and resp.mimetype == "image/svg+xml"
    svg = resp.get_data(as_text=True)
    assert "CAUTION - MOISTURE-SENSITIVE DEVICES" in svg
    assert "MSL 3" in svg and "168 HOURS" in svg
    assert "PEAK PACKAGE BODY TEMPERATURE" in svg
    assert "BAG SEAL DATE 20" in svg and "SHELF LIFE 12 MONTHS (UNTIL 20" in svg
    assert sealed
    # Reels, boxes and cartons carry none.
    assert "CAUTION" not in op.get(f"/pack-units/{packed.box}/label?format=svg").get_data(
        as_text=True)
    message = _decoded(op.get(f"/pack-units/{packed.bags[0]}/label").get_data())
    assert message.values("Q") == ["15000"] and message.values("3S") == [packed.bags[0]]


def test_every_format_and_the_refusals(session, api, completed):
    packed = pack(session, api, completed)
    op = api("operator")
    reel = packed.reels[0]
    pdf = op.get(f"/pack-units/{reel}/label?format=pdf")
    assert pdf.mimetype == "application/pdf" and pdf.get_data().startswith(b"%PDF-")
    zpl = op.get(f"/pack-units/{reel}/label?format=zpl")
    assert zpl.mimetype == "text/plain"
    assert zpl.headers["Content-Disposition"] == f'attachment; filename="{reel}.zpl"'
    text = zpl.get_data(as_text=True)
    assert "^BQN,2,5^FH_^FDMA,[)>_1E06_1D" in text and f"_1D3S{reel}_1E_04^FS" in text
    resp = op.get(f"/pack-units/{reel}/label?format=gif")
    assert (resp.status_code, resp.get_json()["error"]["code"]) == (422, "invalid")
    for missing in ("R-999999", "Q-000001", "nonsense"):
        resp = op.get(f"/pack-units/{missing}/label")
        assert (resp.status_code, resp.get_json()["error"]["code"]) == (404, "not_found")


def test_customers_get_their_own_labels_only(session, api, completed):
    own = pack(session, api, completed, "LOT-A")
    other = pack(session, api, completed, "LOT-I", customer="IND", product="P2",
                 customer_part=None)
    oem = api("customer", customer="OEM")
    assert oem.get(f"/pack-units/{own.carton}/label").status_code == 200
    for code in (other.carton, other.reels[0]):
        resp = oem.get(f"/pack-units/{code}/label?format=zpl")
        assert (resp.status_code, resp.get_json()["error"]["code"]) == (404, "not_found")


def test_label_page_shows_the_picture_fields_and_payload(session, api, completed, make_user,
                                                         login):
    packed = pack(session, api, completed)
    client = login(make_user("operator"))
    resp = client.get(f"/pack-units/{packed.carton}/label")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert f'src="/pack-units/{packed.carton}/label.png"' in html
    assert "[)&gt;\u241e06\u241d" in html and f"3S{packed.carton}\u241e\u2404" in html
    png = client.get(f"/pack-units/{packed.carton}/label.png")
    assert png.mimetype == "image/png"
    assert _decoded(png.get_data()).values("3S") == [packed.carton]
    assert client.get(f"/pack-units/{packed.carton}/label.pdf?download=1").headers[
        "Content-Disposition"] == f'attachment; filename="{packed.carton}.pdf"'
    assert client.get(f"/pack-units/{packed.carton}/label.gif").status_code == 404
    assert client.get("/pack-units/C-999999/label").status_code == 404
    other = pack(session, api, completed, "LOT-I", customer="IND", product="P2",
                 customer_part=None)
    # The page is the plant's; customers take their labels from the API.
    customer = login(make_user("customer", customer="OEM", username="oem1"))
    assert customer.get(f"/pack-units/{packed.carton}/label").status_code == 403
    assert customer.get(f"/pack-units/{other.carton}/label.png").status_code == 403
