"""Scan anything to the lot: GET /scan and the trace page's search box resolve a lot number,
a pack unit id, a whole 2D label and a package mark to the lots and pack units they mean;
customers resolve their own only."""

from __future__ import annotations

import io

import pytest

from mes.shipping import iso15434
from tests.shipping.packed import mark, pack


@pytest.fixture
def packed(session, api, completed):
    return pack(session, api, completed, "LOT-A", date_code="2649", trace_code="00RS4")


def _scan(caller, code):
    return caller.get("/scan", query_string={"code": code})


def _label(api, code):
    """The 15434 message of a pack unit's label, read off its picture."""
    zbar = pytest.importorskip("pyzbar.pyzbar", reason="zbar (Debian libzbar0) not installed")
    from PIL import Image

    png = api("operator").get(f"/pack-units/{code}/label").get_data()
    return zbar.decode(Image.open(io.BytesIO(png)))[0].data.decode("utf-8")


def test_a_lot_number_answers_the_lot_and_its_reels(api, packed):
    body = _scan(api("qa"), "LOT-A").get_json()
    assert body["kind"] == "lot" and body["lots"] == ["LOT-A"]
    assert body["pack_units"] == packed.reels
    assert body["traces"] == [{"lot_no": "LOT-A", "trace": "/api/v1/lots/LOT-A/trace"}]


def test_a_pack_unit_id_answers_its_lots(api, packed):
    for code in (packed.carton, packed.box, packed.bags[1], packed.reels[0],
                 packed.carton.lower(), f"  {packed.carton}\n"):
        body = _scan(api("qa"), code).get_json()
        assert body["kind"] == "pack_unit", code
        assert body["lots"] == ["LOT-A"]
        assert body["pack_units"] == [code.strip().upper()]


def test_a_whole_label_answers_its_pack_unit_and_lots(api, packed):
    payload = _label(api, packed.reels[2])
    for form in (payload, iso15434.human(payload),
                 payload.replace("\x1d", "<GS>").replace("\x1e", "<RS>")):
        body = _scan(api("planner"), form).get_json()
        assert body["kind"] == "label"
        assert body["lots"] == ["LOT-A"] and body["pack_units"] == [packed.reels[2]]
        assert body["code"] == form.strip()


def test_a_label_of_an_unknown_unit_still_answers_its_lots(api, packed):
    payload = iso15434.encode([("1P", "P1"), ("1T", "LOT-A"), ("3S", "R-999999")])
    body = _scan(api("qa"), payload).get_json()
    assert (body["kind"], body["lots"], body["pack_units"]) == ("label", ["LOT-A"], [])


def test_a_mark_answers_the_lots_with_that_trace_code(session, api, packed, receive):
    for text in ("00RS4", "2649 00RS4", "P1\n2649 00RS4", "p1 2649 00rs4"):
        body = _scan(api("qa"), text).get_json()
        assert (body["kind"], body["lots"]) == ("mark", ["LOT-A"]), text
        assert body["pack_units"] == packed.reels
    # A split child carries its parent's marking: the mark answers both.
    child = receive(100, lot_no="LOT-A1")
    mark(session, child.lot_no, "2649", "00RS4")
    assert _scan(api("qa"), "2649 00RS4").get_json()["lots"] == ["LOT-A", "LOT-A1"]


def test_unknown_codes_are_404_naming_what_was_tried(session, api, packed):
    from tests.helpers import refused

    qa = api("qa")
    for code in ("NOPE", "R-999999", "2648 00RS4", "ZZZZZ", "LOT-A\x00",
                 "[)>\x1e06\x1d1TLOT-NONE\x1e\x04", "[)>\x1e05\x1d1TLOT-A\x1e\x04"):
        error = refused(session, lambda code=code: _scan(qa, code), 404, "not_found")
        assert "tried a lot number, a pack unit id" in error["message"], code
    resp = qa.get("/scan")
    assert (resp.status_code, resp.get_json()["error"]["code"]) == (422, "invalid")
    assert _scan(qa, "x" * 2001).status_code == 422


def test_customers_resolve_their_own_only(session, api, completed, packed):
    other = pack(session, api, completed, "LOT-I", customer="IND", product="P2",
                 date_code="2649", trace_code="00ZZ9", customer_part=None)
    oem = api("customer", customer="OEM")
    assert _scan(oem, packed.carton).get_json()["lots"] == ["LOT-A"]
    assert _scan(oem, "2649 00RS4").get_json()["lots"] == ["LOT-A"]
    foreign = [other.lot_no, other.carton, other.reels[0], "2649 00ZZ9",
               _label(api, other.carton)]
    for code in foreign:
        resp = _scan(oem, code)
        assert (resp.status_code, resp.get_json()["error"]["code"]) == (404, "not_found"), code
    # A label naming both customers' lots answers only the own one.
    mixed = iso15434.encode([("1T", "LOT-A"), ("1T", "LOT-I"), ("3S", other.carton)])
    body = _scan(oem, mixed).get_json()
    assert (body["lots"], body["pack_units"]) == (["LOT-A"], [])
    assert _scan(api("operator"), other.carton).status_code == 200


def test_trace_search_box_lists_what_a_label_or_mark_means(session, api, packed, make_user,
                                                           login):
    client = login(make_user("qa"))
    human = iso15434.human(_label(api, packed.carton))
    resp = client.get("/trace/", query_string={"q": human})
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert 'data-scan-kind="label"' in html
    assert f'data-pack-unit="{packed.carton}"' in html
    assert 'href="/trace/lots/LOT-A"' in html or 'data-scan-lot="LOT-A"' in html
    resp = client.get("/trace/", query_string={"q": packed.reels[0]})
    assert resp.status_code == 200 and 'data-scan-kind="pack_unit"' in resp.get_data(
        as_text=True)
    resp = client.get("/trace/", query_string={"q": "P1 2649 00RS4"})
    assert 'data-scan-kind="mark"' in resp.get_data(as_text=True)
    # A lot number still opens its trace; nothing found is still 404.
    resp = client.get("/trace/", query_string={"q": "LOT-A"})
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/trace/lots/LOT-A")
    assert client.get("/trace/", query_string={"q": "R-999999"}).status_code == 404


def test_trace_search_box_of_a_customer_hides_other_customers(session, api, completed,
                                                              packed, make_user, login):
    other = pack(session, api, completed, "LOT-I", customer="IND", product="P2",
                 date_code="2649", trace_code="00ZZ9", customer_part=None)
    client = login(make_user("customer", customer="OEM", username="oem1"))
    assert client.get("/trace/", query_string={"q": packed.carton}).status_code == 200
    for code in (other.carton, "2649 00ZZ9", iso15434.human(_label(api, other.box))):
        resp = client.get("/trace/", query_string={"q": code})
        assert resp.status_code == 404
        assert "data-scan-lot" not in resp.get_data(as_text=True)
