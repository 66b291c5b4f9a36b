"""Shipping by pack units: a shipment names cartons, boxes, bags or reels, or lots (all their
reels); a lot is shipped when its last reel leaves; every shipping rule applies per lot."""

from __future__ import annotations

from sqlalchemy import select

from mes.shipping.models import PackUnit
from tests.floor.helpers import hold
from tests.helpers import refused
from tests.packing.test_packing import pack, package


def ship(planner, **body):
    resp = planner.post("/shipments", json={"customer": "OEM", "po": "PO-9", **body})
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def carton_of(op, reels: list[str]) -> str:
    bags = [package(op, "bag", reels[i:i + 3])["id"] for i in range(0, len(reels), 3)]
    box = package(op, "box", bags)
    return package(op, "carton", [box["id"]])["id"]


def test_ship_a_carton(session, make_lot, api):
    make_lot("LOT-A", quantity=30000)
    op, planner = api("operator"), api("planner")
    carton = carton_of(op, pack(op, "LOT-A"))
    shipment = ship(planner, pack_units=[carton])
    assert shipment["pack_units"] == [carton]
    assert shipment["lots"] == [{"lot_no": "LOT-A", "quantity": 30000}]
    lot = planner.get("/lots/LOT-A").get_json()
    assert (lot["state"], lot["shipped"]) == ("shipped", 30000)
    assert {u.shipment_id for u in session.scalars(select(PackUnit))} == {shipment["id"]}
    assert op.get(f"/pack-units/{carton}").get_json()["shipment"] == shipment["id"]
    refused(session, lambda: planner.post("/shipments", json={
        "customer": "OEM", "po": "PO-10", "pack_units": [carton]}), 409, "already_shipped")
    refused(session, lambda: planner.post("/shipments", json={
        "customer": "OEM", "po": "PO-10", "lots": ["LOT-A"]}), 409, "already_shipped")


def test_partly_shipped_lot_shows_what_left(session, make_lot, api):
    make_lot("LOT-B", quantity=12000, product="P2", customer="IND")
    op, planner = api("operator"), api("planner")
    reels = pack(op, "LOT-B", quantity_per=5000)
    first = ship(planner, customer="IND", pack_units=reels[:2])
    assert first["lots"] == [{"lot_no": "LOT-B", "quantity": 10000}]
    lot = planner.get("/lots/LOT-B").get_json()
    assert (lot["state"], lot["packed"], lot["shipped"]) == ("completed", 12000, 10000)
    # Naming the lot ships what remains.
    second = ship(planner, customer="IND", lots=["LOT-B"])
    assert second["lots"] == [{"lot_no": "LOT-B", "quantity": 2000}]
    assert second["pack_units"] == [reels[2]]
    lot = planner.get("/lots/LOT-B").get_json()
    assert (lot["state"], lot["shipped"]) == ("shipped", 12000)
    listed = planner.get("/shipments?lot=LOT-B").get_json()["items"]
    assert {s["id"] for s in listed} == {first["id"], second["id"]}


def test_a_unit_inside_a_package_ships_with_its_package(session, make_lot, api):
    make_lot("LOT-C", quantity=10000)
    op, planner = api("operator"), api("planner")
    reels = pack(op, "LOT-C")
    bag = package(op, "bag", reels)
    refused(session, lambda: planner.post("/shipments", json={
        "customer": "OEM", "po": "PO-1", "pack_units": [reels[0]]}), 409, "packed_in_parent")
    shipment = ship(planner, lots=["LOT-C"])  # the lot: its reels, with their bag
    assert shipment["pack_units"] == [bag["id"]]


def test_a_lot_named_in_a_package_with_other_lots(session, make_lot, api):
    make_lot("LOT-D1", quantity=1000, product="P2", customer="IND")
    make_lot("LOT-D2", quantity=1000, product="P2", customer="IND")
    op, planner = api("operator"), api("planner")
    box = package(op, "box", pack(op, "LOT-D1") + pack(op, "LOT-D2"))
    refused(session, lambda: planner.post("/shipments", json={
        "customer": "IND", "po": "PO-1", "lots": ["LOT-D1"]}), 409, "packed_in_parent")
    shipment = ship(planner, customer="IND", lots=["LOT-D1", "LOT-D2"])
    assert shipment["pack_units"] == [box["id"]]


def test_every_shipping_rule_applies_per_lot_in_a_carton(session, make_lot, api):
    make_lot("LOT-E1", quantity=500, product="P2", customer="IND")
    held = make_lot("LOT-E2", quantity=500, product="P2", customer="IND")
    op, planner = api("operator"), api("planner")
    box = package(op, "box", pack(op, "LOT-E1") + pack(op, "LOT-E2"))
    session.refresh(held)
    hold(session, held)
    refused(session, lambda: planner.post("/shipments", json={
        "customer": "IND", "po": "PO-1", "pack_units": [box["id"]]}), 409, "lot_on_hold")
    refused(session, lambda: planner.post("/shipments", json={
        "customer": "OEM", "po": "PO-1", "pack_units": [box["id"]]}), 409, "wrong_customer")


def test_reels_of_a_lot_not_completed_do_not_ship(session, make_lot, api):
    make_lot("LOT-F", quantity=1000, product="P2", customer="IND", steps=3)
    op, planner = api("operator"), api("planner")
    reels = pack(op, "LOT-F")
    refused(session, lambda: planner.post("/shipments", json={
        "customer": "IND", "po": "PO-1", "pack_units": reels}), 409, "not_completed")


def test_shipment_input(session, make_lot, api):
    make_lot("LOT-G", quantity=1000, product="P2", customer="IND")
    planner = api("planner")
    refused(session, lambda: planner.post("/shipments", json={
        "customer": "IND", "po": "PO-1"}), 422, "invalid", "lots")
    refused(session, lambda: planner.post("/shipments", json={
        "customer": "IND", "po": "PO-1", "pack_units": ["R-999999"]}), 422, "invalid",
        "pack_units")
    refused(session, lambda: planner.post("/shipments", json={
        "customer": "IND", "po": "PO-1", "pack_units": ["R-1", "r-1"]}), 422, "invalid",
        "pack_units")


def test_unpacked_lot_ships_as_before(session, make_lot, api):
    make_lot("LOT-H", quantity=700, product="P2", customer="IND")
    shipment = ship(api("planner"), customer="IND", lots=["LOT-H"])
    assert shipment["lots"] == [{"lot_no": "LOT-H", "quantity": 700}]
    assert shipment["pack_units"] == []
    lot = api("planner").get("/lots/LOT-H").get_json()
    assert (lot["state"], lot["packed"], lot["shipped"]) == ("shipped", 0, 700)


def test_integrity_check_accepts_lots_shipped_reel_by_reel(session, make_lot, api):
    from mes.integrity import check
    make_lot("LOT-I", quantity=12000, product="P2", customer="IND")
    op, planner = api("operator"), api("planner")
    reels = pack(op, "LOT-I", quantity_per=5000)
    ship(planner, customer="IND", pack_units=reels[:1])
    report = check(session)
    assert report.ok, report.lines()
    ship(planner, customer="IND", pack_units=reels[1:])
    report = check(session)
    assert report.ok, report.lines()
