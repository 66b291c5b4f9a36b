"""Moisture control in the packaging house (J-STD-033): the bake table as reference data, the
exposure clock started at the route's moisture start step, bakes that meet the table reset
it (by hand, through the API, or at a bake step's track-out), dry pack refused beyond the
product's manufacturer's exposure time, the bag seal and its 12-month shelf life at
shipment. Every refusal leaves the database as it was."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from mes.catalog import services as cat
from mes.db import simulated_time
from mes.errors import Conflict, InvalidInput
from mes.floor import services as floor
from mes.floor.models import LotEvent
from mes.quality import bake_table, moisture
from mes.quality import services as quality
from mes.quality.models import MoistureBake, MoistureClock
from mes.shipping import services as shipping
from tests.helpers import audit_codes, refused

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
DAY = 24


# --- the bake table alone --------------------------------------------------------------

@pytest.mark.parametrize("temperature,rh,hours", [(125, None, 9), (90, 5, 33),
                                                  (40, 5, 13 * DAY)])
def test_bake_table_thin_msl3_exposure_unknown_is_product_md(temperature, rh, hours):
    # PRODUCT.md: ≤ 1.4 mm, MSL 3: 9 h at 125 °C, 33 h at 90 °C ≤ 5 % RH, 13 days at 40 °C
    # ≤ 5 % RH, from the "floor life exceeded by more than 72 h" column when unknown.
    need = bake_table.required("3", 1.4, temperature, rh)
    assert (need.temperature_c, need.hours, need.short_exposure) == (temperature, hours, False)


@pytest.mark.parametrize("thickness,msl,temperature,long,short", [
    (1.0, "2a", 125, 5, 3), (1.4, "4", 90, 37, 23), (0.8, "5", 40, 17 * DAY, 10 * DAY),
    (1.2, "5a", 90, 54, 24), (1.5, "2a", 125, 21, 16), (2.0, "3", 90, 4 * DAY, 2 * DAY),
    (1.9, "4", 40, 47 * DAY, 28 * DAY), (2.0, "5", 125, 40, 25), (3.0, "3", 125, 48, 48),
    (4.5, "5a", 40, 79 * DAY, 67 * DAY)])
def test_bake_table_rows_from_domain_md(thickness, msl, temperature, long, short):
    assert bake_table.required(msl, thickness, temperature).hours == long
    assert bake_table.required(msl, thickness, temperature, excess_hours=72).hours == short
    assert bake_table.required(msl, thickness, temperature,
                               excess_hours=72.001).hours == long


def test_bake_table_columns_thickness_and_levels():
    # The hottest column at or below the oven: 100 °C counts as 90 °C, 39 °C as none.
    assert bake_table.required("3", 1.0, 100).temperature_c == 90
    assert bake_table.required("3", 1.0, 39).hours is None
    # Below 125 °C a humid oven does not count; at 125 °C humidity does not matter.
    assert bake_table.required("3", 1.0, 90, 5.1).hours is None
    assert bake_table.required("3", 1.0, 125, 50).hours == 9
    # Unknown or too thick a body takes the thickest row.
    assert bake_table.required("3", None, 125).hours == 48
    assert bake_table.required("3", 6.0, 125).hours == 48
    # MSL 2 reads the 2a row, MSL 6 the 5a row; MSL 1 needs no bake.
    assert bake_table.required("2", 1.0, 125).hours == 5
    assert bake_table.required("6", 1.0, 125).hours == 16
    with pytest.raises(ValueError):
        bake_table.required("1", 1.0, 125)
    assert bake_table.meets(bake_table.required("3", 1.0, 125), 9)
    assert not bake_table.meets(bake_table.required("3", 1.0, 125), 8.99)


def test_shelf_life_is_twelve_calendar_months():
    assert moisture.shelf_life_until(datetime(2026, 3, 31, 9, tzinfo=UTC)) == datetime(
        2027, 3, 31, 9, tzinfo=UTC)
    assert moisture.shelf_life_until(datetime(2028, 2, 29, tzinfo=UTC)) == datetime(
        2029, 2, 28, tzinfo=UTC)


# --- a route with a moisture start step and a bake step --------------------------------

STEPS = {"MOLD": ("MOLD-1", "mold_press"), "PMC": ("OVEN-1", "oven"),
         "BAKE": ("OVEN-2", "oven"), "PACK": ("TR-1", "taper")}


@pytest.fixture
def line(session, plant):
    """Route MSLR: MOLD, PMC (the moisture start), BAKE (125 °C for 9 h), PACK; product PM
    (MSL 3, 1.0 mm body, MET 24 h) and PM1 (MSL 1) on it."""
    actor = "test"
    cat.create_route(session, actor, {"code": "MSLR", "name": "Moisture line", "steps": [
        {"code": "MOLD", "name": "Mold", "kind": "assembly", "equipment_kind": "mold_press"},
        {"code": "PMC", "name": "Post-mold cure", "kind": "assembly", "equipment_kind": "oven",
         "moisture_start": True},
        {"code": "BAKE", "name": "Bake", "kind": "assembly", "equipment_kind": "oven",
         "bake": {"temperature_c": 125, "hours": 9}},
        {"code": "PACK", "name": "Dry pack", "kind": "pack", "equipment_kind": "taper"},
    ]})
    for code, msl in (("PM", "3"), ("PM1", "1")):
        cat.create_product(session, actor, {"code": code, "name": code, "package": "QFN",
                                            "route": "MSLR", "msl": msl, "customer": "IND",
                                            "body_thickness_mm": 1.0, "peak_reflow_c": 260})
    for code, kind in (("MOLD-1", "mold_press"), ("OVEN-1", "oven"), ("OVEN-2", "oven")):
        cat.create_equipment(session, actor, {"code": code, "kind": kind, "name": code,
                                              "state": "standby"})
    session.commit()


@pytest.fixture
def make(session, receive, line):
    def lot(lot_no: str = "LOT-X", product: str = "PM"):
        return receive(100, lot_no=lot_no, product=product, customer="IND")
    return lot


def _move(session, lot, hours: float, *, out: bool = True):
    with simulated_time(T0 + timedelta(hours=hours)):
        tool, _kind = STEPS[lot.step_code]
        floor.track_in(session, "op1", lot, step=lot.step_code, equipment=tool)
        session.commit()
        if out:
            floor.track_out(session, "op2", lot, step=lot.step_code, good_qty=lot.quantity)
            session.commit()
    return lot


def _view(session, lot, hours: float):
    with simulated_time(T0 + timedelta(hours=hours)):
        return quality.moisture_view(session, lot)


def test_a_lot_without_a_clock_is_not_shown_as_sealed(session, make):
    lot = make()
    view = _view(session, lot, 0)
    assert (view.state, view.exposure_h, view.seal, view.met_h) == ("not_started", None, None,
                                                                     24)


def test_the_clock_starts_at_the_moisture_start_track_out(session, make):
    lot = make()
    _move(session, lot, 0)   # MOLD: nothing yet
    assert session.scalar(select(MoistureClock.id)) is None
    _move(session, lot, 1)   # PMC's track-out starts the exposure
    view = _view(session, lot, 6)
    assert (view.state, view.exposure_h, view.since_bake_h) == ("open", 5, None)
    assert view.started_at == T0 + timedelta(hours=1)
    event = session.scalars(select(LotEvent).where(LotEvent.kind == "moisture_open")).one()
    assert event.data["step"] == "PMC"


def test_no_clock_for_an_msl1_lot(session, make):
    lot = make(product="PM1")
    _move(session, lot, 0)
    _move(session, lot, 1)
    assert session.scalar(select(MoistureClock.id)) is None


def test_the_bake_step_records_its_bake_and_resets_the_exposure(session, make):
    lot = make()
    _move(session, lot, 0)
    _move(session, lot, 1)
    _move(session, lot, 40)  # BAKE, out at 40 h: 39 h of exposure reset
    bake = session.scalars(select(MoistureBake)).one()
    assert (bake.temperature_c, bake.hours, bake.required_hours, bake.step_code) == (
        125, 9, 7, "BAKE")   # exposure known, within the floor life: the "≤ 72 h" column
    view = _view(session, lot, 42)
    assert (view.exposure_h, view.since_bake_h, view.state) == (2, 2, "open")


def test_a_bake_step_whose_recipe_misses_the_table_is_refused(session, make):
    lot = make()
    lot.product.body_thickness_mm = 1.8  # ≤ 2.0 mm, MSL 3: 17 h at 125 °C (≤ 72 h column)
    session.commit()
    _move(session, lot, 0)
    _move(session, lot, 1)
    _move(session, lot, 2, out=False)
    with simulated_time(T0 + timedelta(hours=12)):
        err = refused(session, lambda: floor.track_out(
            session, "op2", lot, step="BAKE", good_qty=100), InvalidInput, "insufficient_bake")
    assert err.extra["required_hours"] == 17


# --- POST /lots/{lot_no}/bakes ---------------------------------------------------------

def test_bake_api_meets_the_table(api, session, make):
    make()
    with simulated_time(T0):
        resp = api("operator").post("/lots/LOT-X/bakes", json={"temperature_c": 125,
                                                                 "hours": 9})
    assert resp.status_code == 201, resp.json
    # No exposure recorded: unknown, the "> 72 h" column (PRODUCT.md: 9 h at 125 °C).
    assert (resp.json["meets_table"], resp.json["required_hours"],
            resp.json["table_temperature_c"]) == (True, 9, 125)
    assert resp.json["moisture"]["state"] == "open"
    assert audit_codes(session, "lot", "LOT-X")[-1] == "lot:moisture_bake"


@pytest.mark.parametrize("body,required", [
    ({"temperature_c": 125, "hours": 8.5}, 9), ({"temperature_c": 90, "hours": 32}, 33),
    ({"temperature_c": 40, "hours": 13 * DAY - 1, "rh_pct": 5}, 13 * DAY),
    ({"temperature_c": 90, "hours": 40, "rh_pct": 10}, None),
    ({"temperature_c": 35, "hours": 400}, None)])
def test_bake_api_refuses_a_bake_that_misses_the_table(api, session, make, body, required):
    make()
    operator = api("operator")
    err = refused(session, lambda: operator.post("/lots/LOT-X/bakes", json=body), 422,
                  "insufficient_bake", "hours")
    assert err["required_hours"] == required


def test_bake_api_refuses_msl1_and_customers(api, session, make):
    make(product="PM1")
    operator = api("operator")
    refused(session, lambda: operator.post("/lots/LOT-X/bakes", json={
        "temperature_c": 125, "hours": 48}), 409, "not_moisture_sensitive")
    before = session.scalar(select(MoistureBake.id))
    assert api("customer").post("/lots/LOT-X/bakes", json={
        "temperature_c": 125, "hours": 48}).status_code == 403
    assert session.scalar(select(MoistureBake.id)) == before is None


def test_bake_api_validates_its_input(api, session, make):
    make()
    operator = api("operator")
    refused(session, lambda: operator.post("/lots/LOT-X/bakes", json={
        "temperature_c": 125}), 422, "invalid", "hours")
    refused(session, lambda: operator.post("/lots/LOT-X/bakes", json={
        "temperature_c": 125, "hours": -1}), 422, "invalid", "hours")


def test_a_bake_action_needs_its_parameters(session, make):
    lot = make()
    err = refused(session, lambda: quality.moisture_action(session, "op1", lot, "bake"),
                  InvalidInput, "invalid")
    assert set(err.fields) == {"temperature_c", "hours"}


# --- dry pack: the manufacturer's exposure time ----------------------------------------

def _started(session, make, product: str = "PM"):
    lot = make(product=product)
    _move(session, lot, 0)
    _move(session, lot, 1)   # exposure from T0 + 1 h
    return lot


def _seal(session, lot, hours: float):
    with simulated_time(T0 + timedelta(hours=hours)):
        view = quality.moisture_action(session, "op1", lot, "seal")
    session.commit()
    return view


def test_dry_pack_refused_beyond_the_exposure_time(session, make):
    lot = _started(session, make)
    with simulated_time(T0 + timedelta(hours=25, seconds=1)):
        refused(session, lambda: quality.moisture_action(session, "op1", lot, "seal"),
                Conflict, "exposure_exceeded")


def test_dry_pack_at_exactly_the_exposure_time_seals_and_starts_the_shelf_life(session, make):
    lot = _started(session, make)
    view = _seal(session, lot, 25)
    sealed_at = T0 + timedelta(hours=25)
    assert (view.state, view.exposure_h) == ("sealed", 24)
    assert (view.seal.sealed_at, view.seal.shelf_life_until) == (
        sealed_at, datetime(2027, 11, 3, 9, 0, tzinfo=UTC))
    # Re-sealing a bag opened later is not a dry pack: the MET does not apply again.
    with simulated_time(T0 + timedelta(hours=30)):
        quality.moisture_action(session, "op1", lot, "open")
    assert _seal(session, lot, 60).exposure_h == 54


def test_a_bake_clears_the_way_to_dry_pack(session, make):
    lot = _started(session, make)
    with simulated_time(T0 + timedelta(hours=50)):
        quality.record_bake(session, "op1", lot, temperature_c=125, hours=9)
    session.commit()
    assert _seal(session, lot, 60).exposure_h == 10


def test_the_exposure_time_is_the_products(session, make):
    lot = _started(session, make)
    lot.product.met_hours = 48
    session.commit()
    assert _seal(session, lot, 40).state == "sealed"


def test_moisture_api_shows_exposure_met_and_seal(api, session, make):
    lot = _started(session, make)
    _seal(session, lot, 11)
    with simulated_time(T0 + timedelta(hours=12)):
        got = api("operator").get("/lots/LOT-X/moisture").json
    assert (got["state"], got["exposure_h"], got["met_h"], got["since_bake_h"]) == (
        "sealed", 10, 24, None)
    assert got["seal"]["sealed_at"].startswith("2026-11-02T19:00")
    assert got["seal"]["shelf_life_until"].startswith("2027-11-02T19:00")


def test_dry_pack_api_refusal_is_a_documented_409(api, session, make):
    _started(session, make)
    operator = api("operator")
    with simulated_time(T0 + timedelta(hours=30)):
        refused(session, lambda: operator.post("/lots/LOT-X/moisture",
                                                      json={"action": "seal"}),
                409, "exposure_exceeded")


# --- shelf life at shipment ------------------------------------------------------------

def test_shipping_a_bag_past_its_shelf_life_is_refused(session, completed):
    lot = completed("LOT-S")
    with simulated_time(T0):
        quality.moisture_action(session, "op1", lot, "seal")
    session.commit()
    data = {"customer": "OEM", "po": "PO-1", "lots": ["LOT-S"]}
    with simulated_time(datetime(2027, 11, 2, 8, 0, tzinfo=UTC)):
        refused(session, lambda: shipping.create_shipment(session, "ship", data), Conflict,
                "shelf_life_expired")
    with simulated_time(datetime(2027, 11, 2, 7, 59, tzinfo=UTC)):
        shipping.create_shipment(session, "ship", data)
    assert lot.state == "shipped"


def test_shipment_api_refuses_an_expired_bag_with_a_documented_409(api, session, completed):
    lot = completed("LOT-S")
    with simulated_time(T0):
        quality.moisture_action(session, "op1", lot, "seal")
    session.commit()
    planner = api("planner")
    with simulated_time(T0 + timedelta(days=400)):
        refused(session, lambda: planner.post("/shipments", json={
            "customer": "OEM", "po": "PO-1", "lots": ["LOT-S"]}), 409, "shelf_life_expired")
