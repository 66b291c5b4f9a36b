"""Order lines against their need dates: projections at P50 / P90, shortfalls, statuses,
and the announcements (lot.eta.changed, order.status.changed) made exactly when the rules
say."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from mes.db import utcnow
from mes.events.models import Event
from mes.floor.services import plant_date
from mes.forecast import outlook, services
from mes.orders import services as orders
from mes.quality.services import holds as holding
from tests.forecast.helpers import hold_history, step_history


@pytest.fixture
def history(session, tested):
    host = tested("L-HOST", 100, 100)
    step_history(session, host, utcnow(), good={"WB": 0.9})
    return host


@pytest.fixture
def order(session, history):
    """PO-1: line 1 of 900 units in 5 days, line 2 of 1000 units in 5 days."""
    in_5 = plant_date() + timedelta(days=5)
    made = orders.create_order(session, "planner", {"customer": "OEM", "po": "PO-1", "lines": [
        {"line": 1, "product": "P1", "quantity": 900, "need_date": in_5},
        {"line": 2, "product": "P1", "quantity": 1000, "need_date": in_5}]})
    session.commit()
    return made


def _allocate(session, order, line_no, *lots):
    orders.allocate(session, "planner", order, orders.get_line(order, line_no),
                    [lot.lot_no for lot in lots])
    session.commit()


def _events(session, kind):
    session.expire_all()
    return session.scalars(select(Event).where(Event.type == kind).order_by(Event.id)).all()


def test_status_follows_the_shortfalls_at_p50_and_p90():
    line = outlook.Outlook(1, 100, date(2027, 1, 1), projected_p50=100, projected_p90=100)
    assert (line.short_p50, line.short_p90, line.status) == (0, 0, "on_track")
    line.projected_p90 = 60
    assert (line.short_p50, line.short_p90, line.status) == (0, 40, "at_risk")
    line.projected_p50 = 99
    assert (line.short_p50, line.status) == (1, "short")
    line.projected_p50 = line.projected_p90 = 150
    assert (line.short_p50, line.short_p90) == (0, 0)


def test_lines_count_the_expected_quantity_of_lots_done_by_the_need_date(
        session, order, receive):
    _allocate(session, order, 1, receive(1000, lot_no="L-A"))
    _allocate(session, order, 2, receive(1000, lot_no="L-B"))
    found = outlook.line_outlooks(session, [line.id for line in order.lines])
    one, two = (found[line.id] for line in order.lines)
    # 1000 units at a 90 % wire bond yield, 11 hours from now: 900 by the need date.
    assert one.fields() == {"projected_p50": 900, "projected_p90": 900, "short_p50": 0,
                            "short_p90": 0, "status": "on_track"}
    assert two.fields() == {"projected_p50": 900, "projected_p90": 900, "short_p50": 100,
                            "short_p90": 100, "status": "short"}
    assert [lot.lot_no for lot in one.lots] == ["L-A"]


def test_a_line_is_at_risk_when_only_its_p50_makes_the_need_date(session, order, receive,
                                                                  history):
    # Holds of H-ENG end within an hour or last three weeks, equally often.
    hold_history(session, history, utcnow(), [1.0, 500.0])
    lot = receive(1000, lot_no="L-RISK")
    _allocate(session, order, 1, lot)
    holding.hold_lot(session, "qa", lot, reason="H-ENG", comment="look")
    session.commit()
    found = outlook.line_outlooks(session, [order.lines[0].id])[order.lines[0].id]
    assert found.projected_p50 == 900 and found.projected_p90 == 0
    assert found.status == "at_risk"


def test_a_lot_with_a_completed_or_shipped_state_counts_as_made(session, order, completed):
    lot = completed("L-DONE", quantity=900)
    _allocate(session, order, 1, lot)
    found = outlook.line_outlooks(session, [order.lines[0].id])[order.lines[0].id]
    assert found.status == "on_track" and found.projected_p90 == 900


def test_a_hold_that_pushes_a_line_short_is_announced_once(session, order, receive, history):
    hold_history(session, history, utcnow(), [500.0])
    lot = receive(1000, lot_no="L-SLIP")
    _allocate(session, order, 1, lot)
    assert not _events(session, "order.status.changed")
    services.refresh_stale_forecasts(session)
    session.commit()
    holding.hold_lot(session, "qa", lot, reason="H-ENG", comment="internal note by qa")
    session.commit()
    changed = _events(session, "order.status.changed")
    assert len(changed) == 1
    assert changed[0].data["status"] == "short"
    assert changed[0].data["previous_status"] == "on_track"
    assert changed[0].data["po"] == "PO-1" and changed[0].data["line"] == 1
    eta = _events(session, "lot.eta.changed")
    assert len(eta) == 1 and eta[0].data["lot_no"] == "L-SLIP"
    assert eta[0].customer_id == lot.customer_id
    # Customer-facing: no staff names, no comments.
    for event in (*changed, *eta):
        assert "qa" not in repr(event.data) and "note" not in repr(event.data)
    # Recomputing without a change announces nothing more.
    services.refresh_stale_forecasts(session, utcnow() + timedelta(hours=2))
    session.commit()
    assert len(_events(session, "order.status.changed")) == 1
    assert len(_events(session, "lot.eta.changed")) == 1


def test_a_small_move_of_the_p90_is_not_announced_and_a_large_one_is(session, history,
                                                                     receive, app):
    receive(1000, lot_no="L-FREE")
    now = utcnow()
    services.refresh_stale_forecasts(session, now)
    session.commit()
    limit = app.config["FORECAST_ETA_CHANGE_HOURS"]
    # A lot at its first step long past every recorded saw: its P90 slides with the clock,
    # a little at a time; the change is measured from the last announced P90.
    services.refresh_stale_forecasts(session, now + timedelta(hours=limit - 1))
    session.commit()
    assert not _events(session, "lot.eta.changed")
    services.refresh_stale_forecasts(session, now + timedelta(hours=limit + 1))
    session.commit()
    moved = _events(session, "lot.eta.changed")
    assert len(moved) == 1 and moved[0].data["po"] is None
    services.refresh_stale_forecasts(session, now + timedelta(hours=limit + 2))
    session.commit()
    assert len(_events(session, "lot.eta.changed")) == 1
