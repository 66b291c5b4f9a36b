"""Fan-out: a subscription receives the events that occur from its creation on, never the
customer's earlier events still waiting in the outbox."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from mes.catalog.models import Customer
from mes.db import session_scope, utcnow
from mes.events import publish
from mes.events.models import Delivery, Event, Webhook
from mes.events.worker import Worker


def test_a_new_subscription_gets_no_delivery_of_events_that_occurred_before_it(worker_db):
    app = worker_db.app
    with app.app_context(), session_scope(app) as session:
        oem = session.scalars(select(Customer).where(Customer.code == "OEM")).one()
        before = publish(session, "lot.hold.placed", customer_id=oem.id, data={"n": 1})
        before.occurred_at = utcnow() - timedelta(hours=2)
        session.add(Webhook(customer_id=oem.id, url="http://127.0.0.1:9/hook",
                            events=["lot.hold.placed"], secret="whsec_" + "A" * 32,
                            created_at=utcnow() - timedelta(hours=1)))
        publish(session, "lot.hold.placed", customer_id=oem.id, data={"n": 2})
    worker = Worker(app)
    try:
        with app.app_context():
            assert worker.dispatch() == 2
    finally:
        worker.close()
    with app.app_context(), session_scope(app) as session:
        delivered = session.execute(select(Event.data).join(
            Delivery, Delivery.event_id == Event.id)).scalars().all()
        assert delivered == [{"n": 2}]
        # Both events left the queue: the earlier one is never sent to that subscription.
        assert session.scalar(select(Event.id).where(Event.dispatched_at.is_(None))) is None
