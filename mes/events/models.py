"""The outbox of events, the customers' webhook subscriptions and their deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mes.catalog.models import Customer
from mes.db import Base, BigID, one_of, utcnow
from mes.vocabulary import DeliveryState, EventType


class Event(Base):
    """Something a customer is told of, written in the transaction of the change it reports
    (so it exists exactly when the change does). `data` is what the customer receives:
    only that customer's references, never staff names or internal comments. The worker
    fans it out into one delivery per matching subscription and stamps `dispatched_at`."""

    __tablename__ = "outbox_event"
    __table_args__ = (one_of("type", EventType),)

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    type: Mapped[str] = mapped_column(String(40))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    lot_id: Mapped[int | None] = mapped_column(BigID, ForeignKey("lot.id"), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Not delivered before this time: when the customer gets to see what it reports (a hold
    # under the portal's delay policy); usually `occurred_at`.
    due_at: Mapped[datetime] = mapped_column(default=utcnow)
    # NULL until the worker has made its deliveries: the worker's queue of new events.
    dispatched_at: Mapped[datetime | None] = mapped_column(index=True)


class Webhook(Base):
    """A customer's subscription: the URL events of the listed types are POSTed to, signed
    with the subscription's secret. Disabled subscriptions keep their delivery log."""

    __tablename__ = "webhook"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[list[Any]] = mapped_column(default=list)
    # The Standard Webhooks secret, "whsec_" + base64 of 24 random bytes (docs/decisions.md,
    # "Events and webhooks": why it is kept readable).
    secret: Mapped[str] = mapped_column(String(100))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(80))
    disabled_at: Mapped[datetime | None]
    disabled_by: Mapped[str | None] = mapped_column(String(80))

    customer: Mapped[Customer] = relationship()


class Delivery(Base):
    """One event for one subscription: tried until delivered (a 2xx answer) or, once
    `max_age` has passed since `window_start`, failed. Made once per event and subscription
    (the unique key), whichever worker makes it."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        UniqueConstraint("webhook_id", "event_id"),
        one_of("state", DeliveryState),
        Index("ix_webhook_delivery_state_next_attempt_at", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhook.id"), index=True)
    event_id: Mapped[int] = mapped_column(BigID, ForeignKey("outbox_event.id"), index=True)
    state: Mapped[str] = mapped_column(String(10), default=DeliveryState.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    last_status: Mapped[int | None]
    last_error: Mapped[str] = mapped_column(String(500), default="")
    last_attempt_at: Mapped[datetime | None]
    # When the next attempt is due; NULL once delivered or failed.
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=utcnow)
    # Retries stop `max_age` after this: the delivery's creation, or its last redelivery.
    window_start: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    webhook: Mapped[Webhook] = relationship()
    event: Mapped[Event] = relationship()


class JobRun(Base):
    """When a periodic job (mes.events.jobs) last ran, whichever worker ran it: a worker
    runs a job only when its row is due and it holds the row's lock, so several workers
    run each job once per period between them."""

    __tablename__ = "worker_job"

    name: Mapped[str] = mapped_column(String(80), primary_key=True)
    last_run_at: Mapped[datetime | None]
    last_error: Mapped[str] = mapped_column(String(500), default="")
