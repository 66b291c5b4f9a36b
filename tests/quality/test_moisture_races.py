"""Moisture actions at once, with real concurrent connections: a lot's clock is created
once, a bake and a dry pack are written once per winner, and the losers get 409 with nothing
half-applied."""

from __future__ import annotations

from sqlalchemy import func, select

from mes.catalog import services as cat
from mes.db import session_scope
from mes.floor.models import Lot, LotEvent
from mes.quality.models import MoistureBake, MoistureClock
from tests.floor.races import LOST_RACE, audit_chains_intact, fire, read, receive

LOST = LOST_RACE | {"already_sealed"}


def _sensitive(app, lot_no: str) -> None:
    """A lot of the race plant's P1, made MSL 3."""
    with app.app_context(), session_scope(app) as session:
        cat.update_product(session, "test", cat.get_product(session, "P1"), {"msl": "3"})
    receive(app, lot_no, 100)


def test_simultaneous_seals_create_one_clock(race_app, race_plant):
    _sensitive(race_app, "LOT-M")
    answers = fire(race_app, race_plant["headers"], [
        ("/lots/LOT-M/moisture", {"action": "seal"}) for _ in range(4)])
    won = [body for status, body in answers if status == 200]
    assert len(won) == 1, answers
    assert all(status == 409 and body["error"]["code"] in LOST
               for status, body in answers if status != 200), answers

    def check(session) -> None:
        assert session.scalar(select(func.count()).select_from(MoistureClock)) == 1
        assert session.scalar(select(func.count()).select_from(LotEvent).where(
            LotEvent.kind == "moisture_seal")) == 1
        assert audit_chains_intact(session)

    read(race_app, check)


def test_simultaneous_bakes_write_one_bake_per_winner(race_app, race_plant):
    _sensitive(race_app, "LOT-B")
    answers = fire(race_app, race_plant["headers"], [
        ("/lots/LOT-B/bakes", {"temperature_c": 125, "hours": 48}) for _ in range(4)])
    won = [body for status, body in answers if status == 201]
    assert won, answers
    assert all(status == 409 and body["error"]["code"] in LOST_RACE
               for status, body in answers if status != 201), answers

    def check(session) -> None:
        lot_id = session.scalar(select(Lot.id).where(Lot.lot_no == "LOT-B"))
        assert session.scalar(select(func.count()).select_from(MoistureClock)) == 1
        assert session.scalar(select(func.count()).select_from(MoistureBake).where(
            MoistureBake.lot_id == lot_id)) == len(won)
        assert session.scalar(select(func.count()).select_from(LotEvent).where(
            LotEvent.lot_id == lot_id, LotEvent.kind == "moisture_bake")) == len(won)
        assert audit_chains_intact(session)

    read(race_app, check)
