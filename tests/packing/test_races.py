"""Packing and shipping pack units at once, with real concurrent connections: a lot is
packed once, a reel goes into one package, a carton ships once; the losers get 409 and
nothing half-applied."""

from __future__ import annotations

from sqlalchemy import func, select

from mes.auth import services as auth
from mes.catalog import services as cat
from mes.db import session_scope
from mes.floor import services as floor
from mes.floor.models import Lot
from mes.shipping import packing
from mes.shipping.models import PackUnit, Shipment
from tests.floor.helpers import ready_test_step
from tests.floor.races import LOST_RACE, audit_chains_intact, fire, read, receive
from tests.helpers import PASSWORD

LOST = LOST_RACE | {"already_packed", "already_shipped"}


def _completed(app, lot_no: str) -> None:
    """A completed lot of 1,000 units of P1, qualified for its automotive customer."""
    receive(app, lot_no, 1000)
    with app.app_context(), session_scope(app) as session:
        lot = floor.get_lot(session, lot_no)
        for step in ("SAW", "FT"):
            floor.track_in(session, "op", lot, step=step, equipment="SAW-1")
            ready_test_step(session, lot, lot.quantity)
            floor.track_out(session, "op", lot, step=step, good_qty=lot.quantity)
        cat.add_qualification(session, "eng", cat.get_product(session, "P1"), {
            "standard": "AEC-Q100", "grade": 1, "report": "QR-1", "tests": [
                {"test": "HTOL", "group": "B", "sample_size": 77, "lots": 3, "fails": 0}]})


def _lost(answers, won_status: int = 201) -> list:
    won = [body for status, body in answers if status == won_status]
    assert len(won) == 1, answers
    assert all(status == 409 and body["error"]["code"] in LOST
               for status, body in answers if status != won_status), answers
    return won


def test_a_lot_is_packed_once_a_reel_goes_into_one_package(race_app, race_plant):
    _completed(race_app, "LOT-A")
    answers = fire(race_app, race_plant["headers"], [
        ("/lots/LOT-A/pack", {"carrier": "reel", "quantity_per": 250 * (1 + i % 2)})
        for i in range(4)])
    (won,) = _lost(answers)
    reels = [unit["id"] for unit in won["units"]]
    answers = fire(race_app, race_plant["headers"], [
        ("/pack-units", {"kind": "box" if i % 2 else "bag", "children": reels})
        for i in range(4)])
    (box,) = _lost(answers)

    def check(session) -> None:
        assert session.scalar(select(func.count()).select_from(PackUnit).where(
            PackUnit.lot_id.is_not(None))) == len(reels)
        assert session.scalar(select(func.count()).select_from(PackUnit).where(
            PackUnit.lot_id.is_(None))) == 1
        assert {u.parent.code for u in session.scalars(
            select(PackUnit).where(PackUnit.lot_id.is_not(None)))} == {box["id"]}
        assert session.scalar(select(Lot.packed_qty).where(Lot.lot_no == "LOT-A")) == 1000
        assert audit_chains_intact(session)

    read(race_app, check)

    with race_app.app_context(), session_scope(race_app) as session:
        user = auth.create_user(session, "test", username="planner", role="planner",
                                password=PASSWORD)
        token = auth.create_token(session, "test", user)
        # The race's winner is a bag or a box; a carton holds boxes.
        outer = box["id"] if box["kind"] == "box" else packing.make_package(
            session, "op", kind="box", children=[box["id"]]).code
        carton = packing.make_package(session, "op", kind="carton", children=[outer]).code
    answers = fire(race_app, {"Authorization": f"Bearer {token}"}, [
        ("/shipments", {"customer": "OEM", "po": f"PO-{i}", "pack_units": [carton]})
        for i in range(4)])
    _lost(answers)

    def shipped(session) -> None:
        assert session.scalar(select(func.count()).select_from(Shipment)) == 1
        lot = session.scalar(select(Lot).where(Lot.lot_no == "LOT-A"))
        assert (lot.state, lot.shipped_qty) == ("shipped", 1000)
        assert audit_chains_intact(session)

    read(race_app, shipped)
