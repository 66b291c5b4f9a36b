"""Packing through the API: a lot into reels of the standard pack quantity, reels into dry
bags, bags into boxes, boxes into cartons; every refusal with its code and nothing changed."""

from __future__ import annotations

from sqlalchemy import select

from mes.catalog import services as cat
from mes.floor.models import Lot
from tests.floor.helpers import advance
from tests.helpers import refused


def test_pack_lot_into_reels_bags_box_carton(session, api, receive, completed):
    cat.update_product(session, "eng", cat.get_product(session, "P1"),
                       {"standard_pack_qty": {"reel": 5000}})
    session.commit()
    completed("LOT-A", quantity=30000)
    op = api("operator")
    resp = op.post("/lots/LOT-A/pack", json={"carrier": "reel"})
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["lot_no"] == "LOT-A"
    assert [u["quantity"] for u in body["units"]] == [5000] * 6
    reels = [u["id"] for u in body["units"]]
    assert all(r.startswith("R-") for r in reels)
    bag1 = op.post("/pack-units", json={"kind": "bag", "children": reels[:3]}).get_json()
    bag2 = op.post("/pack-units", json={"kind": "bag", "children": reels[3:]}).get_json()
    assert bag1["quantity"] == 15000 and bag1["sealed_at"]
    box = op.post("/pack-units", json={"kind": "box", "children": [bag1["id"], bag2["id"]],
                                       "quantity": 30000})
    assert box.status_code == 201, box.get_json()
    carton = op.post("/pack-units", json={"kind": "carton",
                                          "children": [box.get_json()["id"]]}).get_json()
    assert carton["quantity"] == 30000
    assert carton["lots"] == [{"lot_no": "LOT-A", "quantity": 30000}]
    got = op.get(f"/pack-units/{reels[0]}").get_json()
    assert got["parent"] == bag1["id"]
    lot = op.get("/lots/LOT-A").get_json()
    assert lot["packed"] == 30000 and lot["shipped"] == 0


def test_packing_twice_is_refused(session, api, completed):
    completed("LOT-B", quantity=100)
    op = api("operator")
    assert op.post("/lots/LOT-B/pack", json={"carrier": "reel", "quantity_per": 40}
                   ).status_code == 201
    refused(session, lambda: op.post("/lots/LOT-B/pack", json={"carrier": "reel",
                                                              "quantity_per": 40}),
            409, "already_packed")
    assert session.scalar(select(Lot.packed_qty).where(Lot.lot_no == "LOT-B")) == 100


def test_not_at_pack_step(session, api, receive):
    lot = receive(100, lot_no="LOT-C")
    advance(session, lot, 1)
    op = api("operator")
    refused(session, lambda: op.post("/lots/LOT-C/pack", json={
        "carrier": "reel", "quantity_per": 40}), 409, "wrong_step")
