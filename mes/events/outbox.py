"""Publishing an event: a row in the outbox, in the caller's transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from mes.db import utcnow
from mes.events.models import Event
from mes.vocabulary import EventType


def publish(session: Session, type: str, *, customer_id: int, data: dict[str, Any],
            lot_id: int | None = None, due_at: datetime | None = None) -> Event:
    """Add the event `type` for the customer `customer_id` to the outbox, in the caller's
    transaction (it is sent only if that transaction commits; nothing is committed here).

    `data` is the body's `data` as the customer receives it: JSON-serialisable, with only
    that customer's own references (lot_no, product, their PO...), never staff names or
    internal comments. An event concerning several customers is published once per
    customer. `due_at` holds the event back until then (default: now). Raises ValueError
    for a type that is not an EventType."""
    if type not in EventType.codes():
        raise ValueError(f"unknown event type {type!r}")
    now = utcnow()
    event = Event(type=type, customer_id=customer_id, lot_id=lot_id, data=data,
                  occurred_at=now, due_at=due_at or now)
    session.add(event)
    return event


def publish_many(session: Session, events: list[dict[str, Any]]) -> None:
    """Add many events at once (one executemany, no objects): each a dict of `publish`'s
    arguments (`type`, `customer_id`, `data`, optional `lot_id`, `due_at`, and
    `occurred_at`, default now). For the paths that act on thousands of lots."""
    if not events:
        return
    now = utcnow()
    rows = []
    for event in events:
        if event["type"] not in EventType.codes():
            raise ValueError(f"unknown event type {event['type']!r}")
        occurred = event.get("occurred_at") or now
        rows.append({"type": event["type"], "customer_id": event["customer_id"],
                     "lot_id": event.get("lot_id"), "data": event["data"],
                     "occurred_at": occurred, "due_at": event.get("due_at") or occurred,
                     "dispatched_at": None})
    session.connection().execute(insert(Event.__table__), rows)
