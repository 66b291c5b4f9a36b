"""Packing pages: the lot page packs and lists its carriers, the packing page builds bags,
boxes and cartons (refusals shown, nothing changed), a pack unit's page, shipping cartons
from the new-shipment form."""

from __future__ import annotations

import re

from sqlalchemy import select

from mes.shipping.models import PackUnit
from tests.helpers import refused


def _units(html: str) -> list[str]:
    return re.findall(r'data-unit="([^"]+)"', html)


def test_lot_page_packs_and_packing_page_builds_packages(session, make_lot, make_user,
                                                         login):
    make_lot("LOT-A", quantity=12000)
    client = login(make_user("operator"))
    page = client.get("/lots/LOT-A").get_data(as_text=True)
    assert 'data-date-code' in page and "2649" in page
    resp = client.post("/packing/lots/LOT-A", data={"carrier": "reel", "quantity_per": ""})
    assert resp.status_code == 303
    page = client.get("/lots/LOT-A").get_data(as_text=True)
    reels = _units(page)
    assert len(reels) == 3 and 'data-packed' in page
    packing_page = client.get("/packing").get_data(as_text=True)
    assert set(reels) <= set(_units(packing_page))
    # MSL 3: a reel goes into a dry bag before a box; refused, nothing changed.
    refused(session, lambda: client.post("/packing", data={"kind": "box",
                                                           "children": reels}), 409)
    resp = client.post("/packing", data={"kind": "bag", "children": reels, "quantity": ""})
    assert resp.status_code == 303
    bag = session.scalar(select(PackUnit).where(PackUnit.kind == "bag"))
    shown = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert bag.code in shown and "12,000" in shown and "LOT-A" in shown
    assert client.get(f"/packing/find?code={bag.code.lower()}").headers["Location"].endswith(
        f"/packing/units/{bag.code}")
    assert client.get("/packing/find?code=C-999999").status_code == 404


def test_pack_form_refusal_is_shown(session, make_lot, make_user, login):
    make_lot("LOT-B", quantity=100, steps=2)
    client = login(make_user("operator"))
    text = refused(session, lambda: client.post("/packing/lots/LOT-B", data={
        "carrier": "reel"}), 409)
    assert 'data-refusal="wrong_step"' in text


def test_shipment_form_ships_a_carton(session, make_lot, make_user, login, api):
    make_lot("LOT-C", quantity=5000)
    op = api("operator")
    (reel,) = [u["id"] for u in op.post("/lots/LOT-C/pack", json={"carrier": "reel"}
                                        ).get_json()["units"]]
    bag = op.post("/pack-units", json={"kind": "bag", "children": [reel]}).get_json()["id"]
    box = op.post("/pack-units", json={"kind": "box", "children": [bag]}).get_json()["id"]
    carton = op.post("/pack-units", json={"kind": "carton", "children": [box]}).get_json()["id"]
    client = login(make_user("planner"))
    form = client.get("/shipments/new?customer=OEM").get_data(as_text=True)
    assert carton in _units(form)
    resp = client.post("/shipments/new", data={"customer": "OEM", "po": "PO-7",
                                               "pack_units": [carton]})
    assert resp.status_code == 303
    detail = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert carton in _units(detail)
    assert client.get("/packing").status_code == 200  # planners pack too


def test_packing_pages_are_for_plant_roles(session, make_lot, make_user, login, client):
    login(make_user("customer", customer="OEM"))
    for path in ("/packing", "/packing/lots/LOT-X", "/packing/units/R-000001"):
        assert client.get(path).status_code == 403, path


def test_traveler_and_trace_show_the_mark(session, make_lot, make_user, login):
    lot = make_lot("LOT-T", quantity=100, steps=2)
    client = login(make_user("engineer"))
    for path in ("/lots/LOT-T/traveler", "/trace/lots/LOT-T"):
        resp = client.get(path)
        assert resp.status_code == 200, path
        html = resp.get_data(as_text=True)
        assert "2649" in html and lot.trace_code in html, path


def test_product_form_sets_mark_template_and_pack_quantities(session, marked_plant,
                                                             make_user, login):
    from mes.catalog import services as cat
    client = login(make_user("engineer"))
    path = "/catalog/products/P2/edit"
    assert client.get(path).status_code == 200
    base = {"name": "Other", "package": "QFN", "route": "QFN", "msl": "1", "aec_grade": "",
            "customer": ""}
    resp = client.post(path, data={**base, "standard_pack_qty": "reel 3000, tube 80",
                                   "mark_template": "{device}\n{date_code}",
                                   "customer_part_number": "X-1"})
    assert resp.status_code == 303, resp.get_data(as_text=True)[:500]
    product = cat.get_product(session, "P2")
    session.refresh(product)
    assert product.standard_pack_qty == {"reel": 3000, "tube": 80}
    assert product.mark_template == "{device}\n{date_code}"
    refused(session, lambda: client.post(path, data={**base, "standard_pack_qty": "lots",
                                                     "mark_template": "{oops}"}), 422)
