"""Shipments: which lots may leave the plant (each refusal with its code and nothing changed),
what a shipment writes, and the API's permissions and customer isolation."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from mes import audit
from mes.db import get_db, simulated_time
from mes.errors import Conflict, InvalidInput, translate_db_error
from mes.floor.models import Lot, LotEvent
from mes.quality import services as quality
from mes.quality.models import MoistureClock
from mes.shipping import services
from mes.shipping.models import Shipment, ShipmentLot
from tests.floor.helpers import track_in
from tests.helpers import audit_codes, refused, row_counts
from tests.quality.helpers import QA, quality_state

PLANNER = "planner1"
SHIPMENT_FIELDS = {"id", "customer", "po", "vehicle_program", "shipped_at", "lots", "pack_units"}


def ship_state(session) -> dict[str, Any]:
    """What a refused shipment must leave as it was: every lot row, history, hold and audit
    record, moisture clocks, and the shipment tables."""
    state = quality_state(session)
    state["counts"].update(row_counts(session, Shipment, ShipmentLot, MoistureClock))
    return state


def ship(session, lots: list[str], customer: str = "OEM", **extra: Any) -> Shipment:
    shipment = services.create_shipment(session, PLANNER, {
        "customer": customer, "po": "PO-1", "lots": lots, **extra})
    session.commit()
    return shipment


def ship_refused(session, code: str, lots: list[str], customer: str = "OEM",
                 error: type[Exception] = Conflict) -> Any:
    """Ship and expect a refusal with `code`, the database unchanged."""
    return refused(session, lambda: services.create_shipment(
        session, PLANNER, {"customer": customer, "po": "PO-1", "lots": lots}), error, code)


def state_of(session, lot_no: str) -> str:
    return session.scalar(select(Lot.state).where(Lot.lot_no == lot_no))


# --- shipping --------------------------------------------------------------------------

def test_completed_free_qualified_lot_ships(session, completed):
    completed("LOT-A", quantity=90)
    shipment = ship(session, ["LOT-A"], vehicle_program="EV-7")
    assert state_of(session, "LOT-A") == "shipped"
    assert session.execute(select(ShipmentLot.shipment_id, ShipmentLot.quantity)).all() == [
        (shipment.id, 90)]
    assert (shipment.customer.code, shipment.po, shipment.vehicle_program,
            shipment.shipped_by) == ("OEM", "PO-1", "EV-7", PLANNER)
    event = session.scalars(select(LotEvent).order_by(LotEvent.id.desc())).first()
    assert (event.kind, event.by, event.data["shipment"], event.data["quantity"]) == (
        "ship", PLANNER, shipment.id, 90)
    assert audit_codes(session, "lot", "LOT-A")[-1] == "lot:ship"
    assert audit_codes(session, "shipment", str(shipment.id)) == ["shipment:create"]
    assert audit.verify(session).ok


def test_shipment_refused_for_another_customers_lot(session, completed):
    completed("LOT-I", product="P2", customer="IND")
    ship_refused(session, "wrong_customer", ["LOT-I"], customer="OEM")


def test_shipment_refused_for_lots_not_completed(session, completed, receive):
    receive(100, lot_no="LOT-Q")
    track_in(session, receive(100, lot_no="LOT-R"))
    ship_refused(session, "not_completed", ["LOT-Q"])
    ship_refused(session, "not_completed", ["LOT-R"])


def test_shipment_refused_for_a_lot_shipped_already(session, completed):
    completed("LOT-A")
    ship(session, ["LOT-A"])
    ship_refused(session, "already_shipped", ["LOT-A"])


def test_shipment_refused_while_lot_on_hold(session, completed):
    lot = completed("LOT-A")
    quality.hold_lot(session, QA, lot, reason="H-ENG", comment="Voids on X-ray")
    session.commit()
    ship_refused(session, "lot_on_hold", ["LOT-A"])


def test_shipment_refused_when_floor_life_expired_and_allowed_after_bake(session, completed):
    lot = completed("LOT-M")
    quality.moisture_action(session, "op1", lot, "open")
    session.commit()
    opened = session.scalar(select(MoistureClock.open_since))
    with simulated_time(opened + timedelta(hours=168)):
        ship_refused(session, "floor_life_expired", ["LOT-M"])
    with simulated_time(opened + timedelta(hours=170)):
        quality.moisture_action(session, "op1", lot, "bake",
                                bake={"temperature_c": 125, "hours": 48})
        session.commit()
        ship(session, ["LOT-M"])
    assert state_of(session, "LOT-M") == "shipped"


def test_unqualified_product_refused_to_automotive_customer_but_ships_to_others(
        session, completed):
    completed("LOT-U", product="P2", customer="OEM")
    completed("LOT-I", product="P2", customer="IND")
    ship_refused(session, "not_qualified", ["LOT-U"])
    ship(session, ["LOT-I"], customer="IND")
    assert state_of(session, "LOT-I") == "shipped"


def test_shipment_mixing_a_good_and_a_held_lot_ships_nothing(session, completed):
    completed("LOT-A")
    held = completed("LOT-B")
    quality.hold_lot(session, QA, held, reason="H-ENG", comment="Voids on X-ray")
    session.commit()
    ship_refused(session, "lot_on_hold", ["LOT-A", "LOT-B"])
    assert state_of(session, "LOT-A") == "completed"


def test_first_refusal_wins_in_the_order_of_lots_and_rules(session, completed):
    completed("LOT-I", product="P2", customer="IND")
    held = completed("LOT-H")
    quality.hold_lot(session, QA, held, reason="H-ENG", comment="Voids on X-ray")
    session.commit()
    assert "LOT-H" in ship_refused(session, "lot_on_hold", ["LOT-H", "LOT-I"]).message
    assert "LOT-I" in ship_refused(session, "wrong_customer", ["LOT-I", "LOT-H"]).message
    # A lot of another customer that is on hold too is refused for the customer first.
    quality.hold_lot(session, QA, session.scalar(select(Lot).where(Lot.lot_no == "LOT-I")),
                     reason="H-ENG", comment="Voids on X-ray")
    session.commit()
    ship_refused(session, "wrong_customer", ["LOT-I"])


def test_shipment_refuses_unknown_customer_unknown_and_repeated_lots(session, completed):
    completed("LOT-A")
    err = ship_refused(session, "invalid", ["LOT-A"], customer="NOPE", error=InvalidInput)
    assert "customer" in err.fields
    err = ship_refused(session, "invalid", ["LOT-A", "LOT-X"], error=InvalidInput)
    assert err.fields == {"lots": ["Unknown lot LOT-X."]}
    assert "lots" in ship_refused(session, "invalid", ["LOT-A", "LOT-A"], error=InvalidInput).fields
    assert "lots" in ship_refused(session, "invalid", [], error=InvalidInput).fields


def test_shipment_of_a_lot_held_meanwhile_fails_as_stale(app, session, completed):
    """The shipping session read the lot before a hold committed: its write to the lot (the
    audit chain kept on the row, the versioned UPDATE) collides with the hold's, and the
    shipment is lost as a whole with 409 stale."""
    completed("LOT-A")
    shipper = get_db(app).sessionmaker()
    try:
        seen = shipper.scalar(select(Lot).where(Lot.lot_no == "LOT-A"))
        shipper.commit()
        quality.hold_lot(session, QA, session.scalar(select(Lot).where(Lot.lot_no == "LOT-A")),
                         reason="H-ENG", comment="Voids on X-ray")
        session.commit()
        before = ship_state(session)
        with pytest.raises((StaleDataError, IntegrityError)) as caught:
            services.create_shipment(shipper, PLANNER, {"customer": "OEM", "po": "PO-1",
                                                        "lots": ["LOT-A"]})
            shipper.flush()
        assert translate_db_error(caught.value).code == "stale"
        assert seen.open_holds == 0
        shipper.rollback()
    finally:
        shipper.close()
    assert ship_state(session) == before
    assert state_of(session, "LOT-A") == "completed"


# --- API -------------------------------------------------------------------------------

def test_planner_posts_a_shipment_and_reads_it(api, session, completed):
    completed("LOT-A", quantity=90)
    completed("LOT-B", quantity=80)
    planner = api("planner")
    resp = planner.post("/shipments", json={"customer": "OEM", "po": "PO-7",
                                            "vehicle_program": "EV-7",
                                            "lots": ["LOT-A", "LOT-B"]})
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert set(body) == SHIPMENT_FIELDS
    assert (body["customer"], body["po"], body["vehicle_program"]) == ("OEM", "PO-7", "EV-7")
    assert sorted((x["lot_no"], x["quantity"]) for x in body["lots"]) == [
        ("LOT-A", 90), ("LOT-B", 80)]
    assert planner.get(f"/shipments/{body['id']}").get_json() == body
    assert planner.get("/lots/LOT-A").get_json()["state"] == "shipped"


def test_api_refusals_answer_their_codes_and_change_nothing(api, session, completed):
    completed("LOT-A")
    held = completed("LOT-H")
    quality.hold_lot(session, QA, held, reason="H-ENG", comment="Voids on X-ray")
    session.commit()
    planner = api("planner")
    before = ship_state(session)
    for body, status, code, field in [
        ({"customer": "OEM", "po": "PO-1", "lots": ["LOT-A", "LOT-H"]}, 409, "lot_on_hold",
         None),
        ({"customer": "NOPE", "po": "PO-1", "lots": ["LOT-A"]}, 422, "invalid", "customer"),
        ({"customer": "OEM", "po": "PO-1", "lots": ["LOT-X"]}, 422, "invalid", "lots"),
        ({"customer": "OEM", "po": "PO-1", "lots": ["LOT-A", "LOT-A"]}, 422, "invalid",
         "lots"),
        ({"customer": "OEM", "po": "PO-1", "lots": []}, 422, "invalid", "lots"),
        ({"customer": "OEM", "po": "", "lots": ["LOT-A"]}, 422, "invalid", "po"),
        ({"customer": "OEM", "po": "P" * 61, "lots": ["LOT-A"]}, 422, "invalid", "po"),
    ]:
        resp = planner.post("/shipments", json=body)
        error = resp.get_json()["error"]
        assert (resp.status_code, error["code"]) == (status, code), (body, error)
        if field:
            assert field in error["fields"], error
        assert ship_state(session) == before


def test_operator_may_not_ship(api, session, completed):
    completed("LOT-A")
    operator = api("operator")
    before = ship_state(session)
    resp = operator.post("/shipments", json={"customer": "OEM", "po": "PO-1",
                                             "lots": ["LOT-A"]})
    assert (resp.status_code, resp.get_json()["error"]["code"]) == (403, "forbidden")
    assert ship_state(session) == before


def test_customers_see_only_their_own_shipments_and_may_not_ship(api, session, completed):
    completed("LOT-A")
    completed("LOT-I", product="P2", customer="IND")
    own = ship(session, ["LOT-A"], customer="OEM")
    other = ship(session, ["LOT-I"], customer="IND")
    later = ship(session, [completed("LOT-B").lot_no], customer="OEM")
    oem = api("customer", customer="OEM")
    listed = oem.get("/shipments").get_json()
    assert [s["id"] for s in listed["items"]] == [later.id, own.id]
    assert oem.get(f"/shipments/{own.id}").status_code == 200
    resp = oem.get(f"/shipments/{other.id}")
    assert (resp.status_code, resp.get_json()["error"]["code"]) == (404, "not_found")
    before = ship_state(session)
    resp = oem.post("/shipments", json={"customer": "OEM", "po": "PO-1",
                                        "lots": ["LOT-A"]})
    assert (resp.status_code, resp.get_json()["error"]["code"]) == (403, "forbidden")
    assert ship_state(session) == before
    planner_list = api("planner").get("/shipments?limit=2").get_json()
    assert [s["id"] for s in planner_list["items"]] == [later.id, other.id]
    assert planner_list["next"] is not None
