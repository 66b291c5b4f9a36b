"""Moisture control where lots meet pack units (J-STD-033): sealing a dry bag is the dry pack
(refused beyond the product's exposure time, the lot's clock sealed once its last reel is
bagged), reels do not take a 125 °C bake, and a bag past its 12-month shelf life does not
ship. Every refusal leaves the database as it was."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mes.catalog import services as cat
from mes.db import simulated_time
from mes.quality import services as quality
from tests.helpers import refused

T0 = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


def _at(hours: float):
    return simulated_time(T0 + timedelta(hours=hours))


@pytest.fixture
def reeled(session, make_lot, api):
    """LOT-R: 30,000 units of P1 (MSL 3, 1.0 mm) on six reels, its exposure clock started
    at T0 (as the moisture start step would); returns the operator and the reel ids."""
    cat.update_product(session, "eng", cat.get_product(session, "P1"),
                       {"body_thickness_mm": 1.0})
    lot = make_lot("LOT-R", quantity=30000)
    with _at(0):
        quality.moisture_action(session, "op1", lot, "open")
    session.commit()
    op = api("operator")
    with _at(0.5):
        resp = op.post("/lots/LOT-R/pack", json={"carrier": "reel"})
    assert resp.status_code == 201, resp.get_json()
    return op, [u["id"] for u in resp.get_json()["units"]]


def _bag(op, reels, hours):
    with _at(hours):
        return op.post("/pack-units", json={"kind": "bag", "children": reels})


def test_bagging_beyond_the_exposure_time_is_refused(session, reeled):
    op, reels = reeled
    assert _bag(op, reels[:3], 1).status_code == 201
    # Three reels still out: the clock runs on, and the next bag is a dry pack again.
    assert op.get("/lots/LOT-R/moisture").get_json()["state"] == "open"
    err = refused(session, lambda: _bag(op, reels[3:], 24.01), 409, "exposure_exceeded")
    assert "LOT-R" in err["message"]


def test_the_last_bag_seals_the_lots_clock(session, reeled):
    op, reels = reeled
    _bag(op, reels[:3], 1)
    bag = _bag(op, reels[3:], 24).get_json()
    with _at(30):
        got = op.get("/lots/LOT-R/moisture").get_json()
    assert (got["state"], got["exposure_h"]) == ("sealed", 24)
    assert got["seal"]["sealed_at"][:19] == bag["sealed_at"][:19] == "2026-12-08T08:00:00"
    assert got["seal"]["shelf_life_until"][:10] == "2027-12-08"


def test_a_bake_clears_the_way_to_the_bag(session, reeled):
    op, reels = reeled
    with _at(30):
        resp = op.post("/lots/LOT-R/bakes", json={"temperature_c": 90, "hours": 23})
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["required_hours"] == 23   # ≤ 1.4 mm, MSL 3, within floor life
    assert _bag(op, reels, 40).status_code == 201


def test_reels_do_not_take_a_125_c_bake(session, reeled):
    op, _reels = reeled
    with _at(30):
        err = refused(session, lambda: op.post("/lots/LOT-R/bakes", json={
            "temperature_c": 125, "hours": 48}), 409, "carrier_temperature")
    assert "reels" in err["message"]


def test_a_bag_past_its_shelf_life_does_not_ship(session, reeled, api):
    op, reels = reeled
    bag = _bag(op, reels, 1).get_json()["id"]
    box = op.post("/pack-units", json={"kind": "box", "children": [bag]}).get_json()["id"]
    planner = api("planner")
    body = {"customer": "OEM", "po": "PO-S", "pack_units": [box]}
    with simulated_time(datetime(2027, 12, 7, 9, 0, tzinfo=UTC)):
        refused(session, lambda: planner.post("/shipments", json=body), 409,
                "shelf_life_expired")
    with simulated_time(datetime(2027, 12, 7, 8, 59, tzinfo=UTC)):
        resp = planner.post("/shipments", json=body)
    assert resp.status_code == 201, resp.get_json()
