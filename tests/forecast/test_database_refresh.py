"""PostgreSQL's set-based refresh of the moving lots' forecasts (the database finds the
points each lot has passed and applies the step's quantiles) against the per-lot
arithmetic that SQLite, held lots and banked lots use: the same forecasts, the same line
statuses, the same announcements, from nothing stored and from stored forecasts that
have moved."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from mes.db import utcnow
from mes.events.models import Event
from mes.floor.models import Lot
from mes.floor.services import plant_date
from mes.forecast import services
from mes.forecast.models import LineOutlook, LotForecast
from mes.orders import services as orders
from mes.quality.services import holds as holding
from tests.floor.helpers import advance
from tests.forecast.helpers import hold_history, step_history

# Every lot of the tests at once: the refresh's per-lot arithmetic, not the database's.
PER_LOT = 1_000_000


@pytest.fixture(autouse=True)
def postgresql_only(session):
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("the set-based refresh is PostgreSQL's (SQLite forecasts lot by lot)")


@pytest.fixture
def plant(session, tested, receive):
    """Varied step durations and a hold history; lots at each step with varied times
    there (before every recorded duration, between them, past all of them), one held,
    two order lines with lots allocated, one lot on no line."""
    host = tested("L-HOST", 100, 100)
    now = utcnow()
    step_history(session, host, now, hours={"SAW": [1.0, 2.0, 3.5, 4.0],
                                            "WB": [2.0, 3.0, 5.0], "FT": [4.0, 6.0, 9.0],
                                            "PACK": [1.0, 1.5]},
                 good={"WB": 0.93, "FT": 0.97})
    hold_history(session, host, now, [10.0, 30.0, 70.0])
    # Far enough that the lines are on track whatever the time of day (a line marked short
    # below then changes status).
    need = plant_date() + timedelta(days=10)
    order = orders.create_order(session, "planner", {"customer": "OEM", "po": "PO-9", "lines": [
        {"line": 1, "product": "P1", "quantity": 2000, "need_date": need},
        {"line": 2, "product": "P1", "quantity": 1500, "need_date": need + timedelta(days=1)}]})
    session.commit()
    lots = {}
    for name, steps, hours in [("L-S1A", 0, 0.2), ("L-S1B", 0, 2.5), ("L-S1C", 0, 30.0),
                               ("L-S2A", 1, 1.0), ("L-S2B", 1, 4.0), ("L-S3A", 2, 5.0),
                               ("L-S3B", 2, 0.0), ("L-S4A", 3, 1.2), ("L-S4B", 3, 0.5),
                               ("L-HELD", 2, 3.0),
                               ("L-FREE", 1, 2.2)]:
        lot = receive(1000 + len(lots) * 37, lot_no=name)
        advance(session, lot, steps)
        session.execute(update(Lot).where(Lot.id == lot.id).values(
            arrived_at=now - timedelta(hours=hours)))
        lots[name] = lot
    session.commit()
    holding.hold_lot(session, "qa", lots["L-HELD"], reason="H-ENG", comment="look")
    session.commit()
    for line, names in [(1, ["L-S1A", "L-S2A", "L-S3A", "L-HELD"]),
                        (2, ["L-S1B", "L-S1C", "L-S2B", "L-S3B", "L-S4A", "L-S4B"])]:
        orders.allocate(session, "planner", order, orders.get_line(order, line), names)
    session.commit()
    return lots


def _outcome(session, now, per_lot: bool):
    """Refresh in a savepoint, and what it left: every forecast, every line status, every
    announcement; rolled back."""
    savepoint = session.begin_nested()
    written = services.refresh_stale_forecasts(session, now,
                                               limit=PER_LOT if per_lot else None)
    session.flush()
    forecasts = session.execute(select(
        LotForecast.lot_id, LotForecast.lot_version, LotForecast.p50_at, LotForecast.p90_at,
        LotForecast.expected_quantity, LotForecast.remaining_steps, LotForecast.on_hold,
        LotForecast.computed_at, LotForecast.announced_p90_at)
        .order_by(LotForecast.lot_id)).all()
    lines = session.execute(select(LineOutlook.line_id, LineOutlook.status,
                                   LineOutlook.projected_p50, LineOutlook.projected_p90)
                            .order_by(LineOutlook.line_id)).all()
    events = sorted((e.type, e.lot_id or 0, repr(sorted(e.data.items())))
                    for e in session.scalars(select(Event)))
    savepoint.rollback()
    session.expire_all()
    return written, forecasts, lines, events


def test_from_nothing_stored_both_ways_agree(session, plant):
    now = utcnow()
    per_lot = _outcome(session, now, per_lot=True)
    in_database = _outcome(session, now, per_lot=False)
    # Every lot but the held one, whose forecast was made as it was held.
    assert per_lot[0] == in_database[0] == len(plant) - 1
    assert per_lot == in_database
    # Lines were given statuses, and the held lot was forecast with its hold.
    assert len(in_database[2]) == 2
    held = {row.lot_id: row for row in in_database[1]}[plant["L-HELD"].id]
    assert held.on_hold is True


def test_from_stored_forecasts_that_moved_both_ways_agree(session, plant, app):
    now = utcnow()
    services.refresh_stale_forecasts(session, now, limit=PER_LOT)
    session.commit()
    limit = app.config["FORECAST_ETA_CHANGE_HOURS"]
    # Lots move on: some stale by their version (one of them lost units, so its line is
    # counted again), the rest by age; one lot's last announced P90 lies far from what it
    # will be; a line's status was left wrong.
    for name in ("L-S1A", "L-S3B"):
        session.execute(update(Lot).where(Lot.id == plant[name].id).values(
            version=Lot.version + 1))
    session.execute(update(Lot).where(Lot.id == plant["L-S1A"].id).values(
        quantity=Lot.quantity - 10))
    far = session.get(LotForecast, plant["L-S2B"].id)
    far.announced_p90_at = far.p90_at - timedelta(hours=3 * limit)
    session.execute(update(LineOutlook).values(status="short"))
    session.commit()
    later = now + timedelta(hours=limit + 3)
    per_lot = _outcome(session, later, per_lot=True)
    in_database = _outcome(session, later, per_lot=False)
    assert per_lot == in_database
    types = [event[0] for event in in_database[3]]
    assert "lot.eta.changed" in types and "order.status.changed" in types
    # Only the version-stale lots, at the first time (nothing stale by age yet).
    soon = now + timedelta(minutes=1)
    per_lot = _outcome(session, soon, per_lot=True)
    in_database = _outcome(session, soon, per_lot=False)
    assert per_lot == in_database and in_database[0] == 2


