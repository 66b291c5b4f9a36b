"""Packing: a lot into carriers of the standard pack quantity, carriers into dry bags, boxes
and cartons; every refusal with its code and nothing changed."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from mes.errors import Conflict, InvalidInput
from mes.floor import services as floor
from mes.floor.models import Lot
from mes.shipping import packing
from tests.floor.helpers import hold
from tests.helpers import refused


def pack(api_caller, lot_no: str, **body):
    resp = api_caller.post(f"/lots/{lot_no}/pack", json={"carrier": "reel", **body})
    assert resp.status_code == 201, resp.get_json()
    return [unit["id"] for unit in resp.get_json()["units"]]


def package(api_caller, kind: str, children: list[str], **body):
    resp = api_caller.post("/pack-units", json={"kind": kind, "children": children, **body})
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def test_worked_example_six_reels_two_bags_one_box_one_carton(session, make_lot, api):
    make_lot("LOT-A", quantity=30000)
    op = api("operator")
    resp = op.post("/lots/LOT-A/pack", json={"carrier": "reel"})
    assert resp.status_code == 201
    units = resp.get_json()["units"]
    assert [u["quantity"] for u in units] == [5000] * 6
    assert all(u["kind"] == "reel" and u["id"].startswith("R-") for u in units)
    assert units[0]["lots"] == [{"lot_no": "LOT-A", "quantity": 5000}]
    assert units[0]["date_codes"] == ["2649"]
    reels = [u["id"] for u in units]
    bag1 = package(op, "bag", reels[:3])
    bag2 = package(op, "bag", reels[3:])
    assert bag1["id"].startswith("B-") and bag1["quantity"] == 15000 and bag1["sealed_at"]
    box = package(op, "box", [bag1["id"], bag2["id"]], quantity=30000)
    assert box["id"].startswith("X-") and box["children"] == [bag1["id"], bag2["id"]]
    carton = package(op, "carton", [box["id"]])
    assert carton["id"].startswith("C-")
    assert (carton["quantity"], carton["product"], carton["date_codes"]) == (
        30000, "P1", ["2649"])
    assert carton["lots"] == [{"lot_no": "LOT-A", "quantity": 30000}]
    reel = op.get(f"/pack-units/{reels[0].lower()}").get_json()
    assert reel["parent"] == bag1["id"] and reel["shipment"] is None
    lot = op.get("/lots/LOT-A").get_json()
    assert (lot["packed"], lot["shipped"]) == (30000, 0)
    kinds = [e["kind"] for e in op.get("/lots/LOT-A/history").get_json()["items"]]
    # The second bag holds the lot's last reels: its moisture clock is sealed (dry pack).
    assert kinds[-2:] == ["pack", "moisture_seal"]
    moisture = op.get("/lots/LOT-A/moisture").get_json()
    assert (moisture["state"], moisture["seal"]["sealed_at"][:19]) == (
        "sealed", bag2["sealed_at"][:19])


def test_last_carrier_is_partial_and_quantity_per_overrides(session, make_lot, api):
    make_lot("LOT-B", quantity=2350, product="P2", customer="IND")
    units = api("operator").post("/lots/LOT-B/pack", json={
        "carrier": "tube", "quantity_per": 1000}).get_json()["units"]
    assert [(u["kind"], u["quantity"]) for u in units] == [
        ("tube", 1000), ("tube", 1000), ("tube", 350)]
    assert units[0]["id"].startswith("U-")


def test_mixed_date_codes_in_a_box_are_all_listed(session, make_lot, api):
    from datetime import UTC, datetime
    make_lot("LOT-W1", quantity=1000, product="P2", customer="IND")
    make_lot("LOT-W2", quantity=500, product="P2", customer="IND",
             at=datetime(2026, 12, 9, 2, 0, tzinfo=UTC))
    op = api("operator")
    reels = pack(op, "LOT-W1") + pack(op, "LOT-W2")
    box = package(op, "box", reels)  # MSL 1: reels go straight into a box
    assert box["date_codes"] == ["2649", "2650"]
    assert box["lots"] == [{"lot_no": "LOT-W1", "quantity": 1000},
                           {"lot_no": "LOT-W2", "quantity": 500}]


@pytest.mark.parametrize("body, code, field", [
    ({"carrier": "reel", "quantities": [10000, 10000, 9999]}, "quantity_mismatch",
     "quantities"),
    ({"carrier": "tray"}, "invalid", "quantity_per"),
    ({"carrier": "reel", "quantity_per": 1}, "invalid", "quantity_per"),
    ({"carrier": "bag"}, "invalid", "carrier"),
])
def test_packing_input_refused(session, make_lot, api, body, code, field):
    make_lot("LOT-C")
    op = api("operator")
    refused(session, lambda: op.post("/lots/LOT-C/pack", json=body), 422, code, field)


def test_packing_state_refused(session, make_lot, api):
    lot = make_lot("LOT-D", quantity=100, steps=2)
    op = api("operator")
    refused(session, lambda: op.post("/lots/LOT-D/pack", json={"carrier": "reel"}), 409,
            "wrong_step")
    lot = make_lot("LOT-E", quantity=100, steps=3)  # queued at PACK: may be packed
    hold(session, lot)
    refused(session, lambda: op.post("/lots/LOT-E/pack", json={"carrier": "reel"}), 409,
            "lot_on_hold")
    make_lot("LOT-F", quantity=100)
    pack(op, "LOT-F")
    refused(session, lambda: op.post("/lots/LOT-F/pack", json={"carrier": "reel"}), 409,
            "already_packed")
    assert session.scalar(select(Lot.packed_qty).where(Lot.lot_no == "LOT-F")) == 100


def test_packed_lot_is_neither_split_nor_merged(session, make_lot, api):
    first = make_lot("LOT-G", quantity=100, steps=3)
    second = make_lot("LOT-H", quantity=100, steps=3)
    pack(api("operator"), "LOT-G")
    session.refresh(first)
    refused(session, lambda: floor.split_lot(session, "op1", first, [50, 50]), Conflict,
            "already_packed")
    refused(session, lambda: floor.merge_lots(session, "op1", [second, first]), Conflict,
            "already_packed")


def test_package_rules(session, make_lot, api):
    make_lot("LOT-P1", quantity=10000)
    make_lot("LOT-P2", quantity=1000, product="P2", customer="IND")
    op = api("operator")
    p1 = pack(op, "LOT-P1")
    p2 = pack(op, "LOT-P2")
    # A moisture-sensitive product's reel goes into a dry bag first.
    refused(session, lambda: op.post("/pack-units", json={"kind": "box", "children": p1[:1]}),
            409, "wrong_packing")
    # A carton holds boxes.
    refused(session, lambda: op.post("/pack-units", json={"kind": "carton",
                                                          "children": p2}), 409,
            "wrong_packing")
    # One product per package.
    refused(session, lambda: op.post("/pack-units", json={"kind": "bag",
                                                          "children": [p1[0], p2[0]]}),
            409, "mixed_products")
    # Quantities balance.
    refused(session, lambda: op.post("/pack-units", json={"kind": "bag", "children": p1,
                                                          "quantity": 9999}),
            422, "quantity_mismatch", "quantity")
    # Unknown and repeated children.
    refused(session, lambda: op.post("/pack-units", json={"kind": "bag",
                                                          "children": ["R-999999"]}),
            422, "invalid", "children")
    refused(session, lambda: op.post("/pack-units", json={"kind": "bag",
                                                          "children": [p1[0], p1[0]]}),
            422, "invalid", "children")
    bag = package(op, "bag", p1[:1])
    # A unit is in one package only; a bag does not go into a bag.
    refused(session, lambda: op.post("/pack-units", json={"kind": "bag",
                                                          "children": p1[:1]}),
            409, "already_packed")
    refused(session, lambda: op.post("/pack-units", json={"kind": "bag",
                                                          "children": [bag["id"]]}),
            409, "wrong_packing")


def test_package_never_mixes_customers(session, make_lot, api):
    make_lot("LOT-Q1", quantity=1000, product="P2", customer="IND")
    make_lot("LOT-Q2", quantity=1000, product="P2", customer="OEM")
    op = api("operator")
    reels = pack(op, "LOT-Q1") + pack(op, "LOT-Q2")
    refused(session, lambda: op.post("/pack-units", json={"kind": "box", "children": reels}),
            409, "wrong_customer")


def test_customer_reads_only_its_own_pack_units(session, make_lot, api):
    make_lot("LOT-R1", quantity=1000, product="P2", customer="IND")
    (reel,) = pack(api("operator"), "LOT-R1")
    assert api("customer", customer="IND").get(f"/pack-units/{reel}").status_code == 200
    assert api("customer", customer="OEM").get(f"/pack-units/{reel}").status_code == 404
    assert api("engineer").get("/pack-units/Q-12").status_code == 404
    assert api("customer", customer="IND").post(
        "/pack-units", json={"kind": "box", "children": [reel]}).status_code == 403


def test_pack_code_round_trip():
    from mes.shipping.models import pack_code, parse_pack_code
    assert pack_code("carton", 12) == "C-000012"
    assert parse_pack_code(" c-000012 ") == ("carton", 12)
    assert parse_pack_code("R-1234567") == ("reel", 1234567)
    assert parse_pack_code("LOT-1") is None and parse_pack_code("R-") is None
    assert packing.split_quantity(30000, 5000) == [5000] * 6
    assert packing.split_quantity(5001, 5000) == [5000, 1]


def test_service_refuses_unknown_children(session, make_lot):
    make_lot("LOT-S1", quantity=100)
    refused(session, lambda: packing.make_package(session, "op1", kind="bag",
                                                  children=["X-0000001", "nonsense"]),
            InvalidInput, "invalid")
