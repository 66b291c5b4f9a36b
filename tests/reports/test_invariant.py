"""The reports join only the lots updated since a range began (services._touched): this
holds because every move, reject, hold change and shipment updates the lot row, whose
updated_at is set on each update. Driven here through the real services, one simulated
hour apart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from mes.db import simulated_time
from mes.floor.models import Lot
from mes.quality import services as quality
from mes.shipping import services as shipping
from tests.floor.helpers import track_in, track_out

START = datetime(2026, 3, 2, 8, tzinfo=UTC)


def updated(session, lot: Lot) -> datetime:
    return session.scalar(select(Lot.updated_at).where(Lot.id == lot.id))


def test_every_event_of_a_lot_moves_its_updated_at_up_to_the_event(session, receive):  # noqa: F811
    clock = iter(START + timedelta(hours=h) for h in range(100))

    def at() -> datetime:
        return next(clock)

    with simulated_time(at()):
        lot = receive(100, product="P2", customer="IND")
    for step in ("SAW", "WB", "FT", "PACK"):
        with simulated_time(at()):
            track_in(session, lot)
        assert updated(session, lot) >= START
        with simulated_time(now := at()):
            rejects = [{"reason": "R-SCRATCH", "qty": 2}] if step == "SAW" else []
            track_out(session, lot, good=lot.quantity - 2 if rejects else None,
                      rejects=rejects)
        assert updated(session, lot) >= now, step
        if step == "WB":
            with simulated_time(now := at()):
                hold = quality.hold_lot(session, "qa1", lot, reason="H-ENG", comment="look")
                session.commit()
            assert updated(session, lot) >= now
            with simulated_time(now := at()):
                quality.release_hold(session, "qa2", hold, {
                    "disposition": "release", "comment": "fine", "rework_step": None,
                    "scrap_qty": None, "scrap_reason": None, "concession": None,
                    "override_reason": None})
                session.commit()
            assert updated(session, lot) >= now
    with simulated_time(now := at()):
        shipping.create_shipment(session, "planner", {"customer": "IND", "po": "PO-1",
                                                       "vehicle_program": None,
                                                       "lots": [lot.lot_no]})
        session.commit()
    assert updated(session, lot) >= now
