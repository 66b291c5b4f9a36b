"""The demo plant's order outlooks (called by mes.demo once orders and shipments are in):
the forecasts of every lot computed, then the demo orders' lines set so that most are on
track, one is at risk (its last lot expected by the need date at P50, not at P90) and the
line holding a lot on hold is short because of it (the held lot is expected after the need
date even at P50). Quantities and need dates are set through the orders services, as a
planner would, relative to the demo's now."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from mes.auth.models import User
from mes.db import simulated_time
from mes.floor import services as floor
from mes.forecast import outlook, services
from mes.orders import services as orders
from mes.orders.models import OrderLine, PurchaseOrder


def _update(session: Session, planner: User, line: OrderLine, quantity: int,
            need_date: object) -> None:
    orders.update_line(session, planner, line.order, line,
                       {"quantity": max(1, quantity), "need_date": need_date})


def load_demo_outlooks(session: Session, now: datetime) -> None:
    """Forecast every lot at `now` and set the demo lines' quantities and need dates (the
    changes dated `now`, the end of the demo's history)."""
    with simulated_time(now):
        _load(session, now)


def _load(session: Session, now: datetime) -> None:
    planner = session.scalars(select(User).where(User.username == "planner")).one()
    services.recompute_all(session, now)
    lines = list(session.scalars(select(OrderLine).join(PurchaseOrder)
                                 .order_by(PurchaseOrder.id, OrderLine.line_no)))
    outlooks = outlook.line_outlooks(session, [line.id for line in lines], now)
    at_risk_done = short_done = False
    for line in lines:
        o = outlooks[line.id]
        lots = [lot for lot in o.lots if lot.state not in outlook.MADE_STATES]
        made = o.made
        held = [lot for lot in lots if lot.on_hold and lot.p50 is not None]
        free = [lot for lot in lots if not lot.on_hold and lot.p90 is not None]
        if held and not short_done:
            # Short because of the hold: needed after the other lots' P90 (or, without
            # others, the day before), before the held lot's P50.
            held_p50 = min(lot.p50 for lot in held if lot.p50 is not None)
            others = [lot.p90 for lot in free if lot.p90 is not None]
            need = (floor.plant_date(max(others) + timedelta(days=1)) if others
                    else max(floor.plant_date(now), floor.plant_date(held_p50)
                             - timedelta(days=1)))
            if outlook.need_deadline(need) < held_p50:
                _update(session, planner, line, made + sum(
                    lot.expected_quantity or 0 for lot in lots), need)
                short_done = True
                continue
        spread = [lot for lot in free if lot.p50 is not None and lot.p90 is not None
                  and outlook.need_deadline(floor.plant_date(lot.p50)) < lot.p90]
        if not at_risk_done and spread and not held:
            # At risk: needed on the day of its last lot's P50, before that lot's P90.
            last = max(spread, key=lambda lot: lot.p50 or now)
            assert last.p50 is not None
            need = floor.plant_date(last.p50)
            deadline = outlook.need_deadline(need)
            by_p50 = sum(lot.expected_quantity or 0 for lot in lots
                         if lot.p50 is not None and lot.p50 <= deadline)
            _update(session, planner, line, made + by_p50, need)
            at_risk_done = True
            continue
        # On track: needed two days after the last lot's P90, for what the lots hold.
        ends = [lot.p90 for lot in lots if lot.p90 is not None]
        need = floor.plant_date(max(ends, default=now) + timedelta(days=2))
        if need < line.need_date:
            need = line.need_date
        _update(session, planner, line, made + sum(
            lot.expected_quantity or 0 for lot in lots if lot.p90 is not None), need)
    session.flush()
