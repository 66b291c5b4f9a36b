"""The hold events: `lot.hold.placed` and `lot.hold.released`, told to the lot's customer
when the customer gets to see the hold, as the portal does (mes.portal.visibility): under
the "delay" policy the events wait until PORTAL_HOLD_DELAY_MINUTES after the hold was
placed, under "notify" until QA notifies the customer; a notice sends them at once. A hold
the customer never sees is never told.

The data is what the portal's holds page shows: the lot's references, the reason's code
and description, the disposition and the customer's concession reference; never the names
of who placed or released it, nor the plant's comments.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from flask import has_app_context
from sqlalchemy import select
from sqlalchemy.orm import Session

from mes.catalog.models import Product
from mes.db import utcnow
from mes.events.models import Event
from mes.events.outbox import publish, publish_many
from mes.portal.visibility import Visibility
from mes.quality.models import Hold
from mes.vocabulary import EventType, HoldStatus


def _visibility() -> Visibility | None:
    # Outside an application (a script building data) every hold is seen at once.
    return Visibility.configured() if has_app_context() else None


def _shown_at(visibility: Visibility | None, hold: Hold) -> datetime | None:
    """When the customer sees `hold` (None: not until QA notifies them)."""
    return hold.placed_at if visibility is None else visibility.shown_at(hold)


def _time(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def hold_data(hold: Hold, product: str) -> dict[str, Any]:
    """What the customer is told of `hold` (on their lot of `product`)."""
    lot = hold.lot
    data: dict[str, Any] = {
        "hold": hold.id, "lot_no": lot.lot_no, "fab_lot": lot.fab_lot, "product": product,
        "quantity": lot.quantity, "step": hold.step_code, "reason": hold.reason.code,
        "reason_description": hold.reason.description, "source": hold.source,
        "placed_at": _time(hold.placed_at)}
    if hold.status == HoldStatus.RELEASED:
        data.update(disposition=hold.disposition, rework_step=hold.rework_step,
                    scrap_qty=hold.scrap_qty, concession=hold.concession,
                    released_at=_time(hold.released_at))
    return data


def _products(session: Session, holds: Sequence[Hold]) -> dict[int, str]:
    ids = {hold.lot.product_id for hold in holds}
    return dict(session.execute(select(Product.id, Product.code).where(Product.id.in_(ids)))
                .all()) if ids else {}


def holds_placed(session: Session, holds: Sequence[Hold]) -> None:
    """Publish `lot.hold.placed` for each new hold the customer will see without a notice
    (due when they see it)."""
    visibility = _visibility()
    products = _products(session, holds)
    rows = []
    for hold in holds:
        shown = _shown_at(visibility, hold)
        if shown is None:
            continue
        rows.append({"type": EventType.LOT_HOLD_PLACED, "customer_id": hold.lot.customer_id,
                     "lot_id": hold.lot_id, "occurred_at": hold.placed_at, "due_at": shown,
                     "data": hold_data(hold, products[hold.lot.product_id])})
    publish_many(session, rows)


def hold_released(session: Session, hold: Hold) -> None:
    """Publish `lot.hold.released` for a hold just released, once the customer sees the
    hold (not before its `lot.hold.placed`)."""
    shown = _shown_at(_visibility(), hold)
    if shown is None:
        return
    publish(session, EventType.LOT_HOLD_RELEASED, customer_id=hold.lot.customer_id,
            lot_id=hold.lot_id, data=hold_data(hold, hold.lot.product.code),
            due_at=max(shown, utcnow()))


def hold_notified(session: Session, hold: Hold) -> None:
    """QA notified the customer of `hold`: its events go now. Those already waiting (the
    delay policy) are brought forward; otherwise (the notify policy) they are published."""
    now = utcnow()
    waiting = [event for event in session.scalars(select(Event).where(
        Event.lot_id == hold.lot_id, Event.dispatched_at.is_(None),
        Event.type.in_([EventType.LOT_HOLD_PLACED, EventType.LOT_HOLD_RELEASED])))
        if event.data.get("hold") == hold.id]
    if waiting:
        for event in waiting:
            event.due_at = min(event.due_at, now)
        return
    visibility = _visibility()
    if visibility is not None and visibility.cutoff(now) is not None:
        return  # the delay policy published them when they happened (perhaps sent already)
    data = hold_data(hold, hold.lot.product.code)
    placed = {key: value for key, value in data.items()
              if key not in ("disposition", "rework_step", "scrap_qty", "concession",
                             "released_at")}
    publish(session, EventType.LOT_HOLD_PLACED, customer_id=hold.lot.customer_id,
            lot_id=hold.lot_id, data=placed)
    if hold.status == HoldStatus.RELEASED:
        publish(session, EventType.LOT_HOLD_RELEASED, customer_id=hold.lot.customer_id,
                lot_id=hold.lot_id, data=data)
