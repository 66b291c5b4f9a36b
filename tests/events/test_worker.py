"""`mes worker` as a real process delivering to a real HTTP receiver on loopback: signed
per Standard Webhooks, retried with backoff, failed after the maximum age, redelivered on
request, exactly once with two workers on PostgreSQL, each customer told of their own lots
only."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections import Counter

import pytest
from sqlalchemy import func, select
from standardwebhooks.webhooks import Webhook as Verifier

from mes.db import session_scope, write_intent
from mes.events import services
from mes.events.models import Delivery, Event
from mes.floor import services as floor
from mes.quality import services as quality

PG = bool(os.environ.get("MES_TEST_DATABASE_URL"))


def subscribe(db, customer: str, url: str, events=("lot.hold.placed",)) -> tuple[int, str]:
    with db.app.app_context(), session_scope(db.app) as session:
        hook = services.create_webhook(session, "test", {
            "url": url, "events": list(events), "customer": customer}, allow_private=True)
        return hook.id, hook.secret


def hold_new_lot(db, lot_no: str, customer: str = "OEM", product: str = "P1",
                 comment: str = "Wire sweep seen by Zhang Wei") -> None:
    with db.app.app_context(), session_scope(db.app) as session:
        lot = floor.receive_lot(session, "planner", {
            "product": product, "customer": customer, "quantity": 100, "fab_lot": "FAB-9",
            "wafers": [], "lot_no": lot_no, "priority": 3, "due_date": None})
        quality.hold_lot(session, "qa.zhang", lot, reason="H-ENG", comment=comment)


def deliveries(db) -> list[Delivery]:
    with db.app.app_context(), session_scope(db.app) as session:
        return list(session.scalars(select(Delivery).order_by(Delivery.id)))


def test_deliveries_are_signed_and_each_customer_gets_their_own_lots_only(
        worker_db, receiver, tmp_path):
    with receiver() as oem, receiver() as ind:
        _hid, oem_secret = subscribe(worker_db, "OEM", oem.url)
        _hid, ind_secret = subscribe(worker_db, "IND", ind.url)
        hold_new_lot(worker_db, "L-OEM-1")
        hold_new_lot(worker_db, "L-IND-1", customer="IND", product="P2")
        with worker_db.worker(tmp_path / "worker.log"):
            (got_oem,) = oem.wait_for(1)
            (got_ind,) = ind.wait_for(1)
    for got, secret, lot_no in ((got_oem, oem_secret, "L-OEM-1"),
                                (got_ind, ind_secret, "L-IND-1")):
        body = Verifier(secret).verify(got.body, got.headers)
        assert body["type"] == "lot.hold.placed"
        assert set(body) == {"type", "timestamp", "data"}
        assert body["data"]["lot_no"] == lot_no
        assert got.headers["webhook-id"].startswith("msg_")
        assert got.headers["webhook-signature"].startswith("v1,")
        text = got.body.decode()
        assert "Zhang" not in text and "qa.zhang" not in text and "planner" not in text
    # The other customer's secret does not verify: each is signed with its own.
    with pytest.raises(Exception):  # noqa: B017  # WebhookVerificationError
        Verifier(ind_secret).verify(got_oem.body, got_oem.headers)
    assert len(oem.received) == len(ind.received) == 1
    assert [d.state for d in deliveries(worker_db)] == ["delivered", "delivered"]


def test_a_receiver_failing_twice_gets_the_event_on_the_third_attempt_after_backoff(
        worker_db, receiver, tmp_path):
    with receiver([500, 503, 200]) as hook:
        _hid, secret = subscribe(worker_db, "OEM", hook.url)
        hold_new_lot(worker_db, "L-RETRY")
        with worker_db.worker(tmp_path / "worker.log", WEBHOOK_BACKOFF_BASE_MS=400):
            first, second, third = hook.wait_for(3)
            worker_db.wait_until(lambda s: s.scalar(select(Delivery.state)) == "delivered")
    # The waits doubled: at least the base, then twice the base.
    assert second.at - first.at >= 0.4
    assert third.at - second.at >= 0.8
    assert first.headers["webhook-id"] == third.headers["webhook-id"]
    Verifier(secret).verify(third.body, third.headers)
    (delivery,) = deliveries(worker_db)
    assert (delivery.state, delivery.attempts, delivery.last_status) == ("delivered", 3, 200)
    assert delivery.next_attempt_at is None


def test_a_receiver_that_is_down_is_given_up_after_the_maximum_age(
        worker_db, receiver, tmp_path):
    with receiver() as down:
        url = down.url
    subscribe(worker_db, "OEM", url)  # nothing listens there any more
    hold_new_lot(worker_db, "L-DOWN")
    with worker_db.worker(tmp_path / "worker.log", WEBHOOK_BACKOFF_BASE_MS=100,
                          WEBHOOK_MAX_AGE_SECONDS=2):
        worker_db.wait_until(lambda s: s.scalar(select(Delivery.state)) == "failed")
    (delivery,) = deliveries(worker_db)
    assert delivery.attempts >= 2 and delivery.last_status is None and delivery.last_error
    assert delivery.next_attempt_at is None
    assert delivery.last_attempt_at >= delivery.window_start


def test_a_redelivered_message_comes_again_with_the_same_id(worker_db, receiver, tmp_path):
    with receiver() as hook:
        hid, secret = subscribe(worker_db, "OEM", hook.url)
        hold_new_lot(worker_db, "L-AGAIN")
        with worker_db.worker(tmp_path / "worker.log"):
            (first,) = hook.wait_for(1)
            worker_db.wait_until(lambda s: s.scalar(select(Delivery.state)) == "delivered")
            # Written beside the running worker: on SQLite the transaction takes the write
            # lock at BEGIN, as a writing request's does, instead of upgrading a read.
            with worker_db.app.app_context(), write_intent(), \
                    session_scope(worker_db.app) as session:
                webhook = services.get_webhook(session, hid)
                (delivery,) = session.scalars(services.delivery_query(webhook))
                services.redeliver(session, "test", delivery)
            _first, again = hook.wait_for(2)
            worker_db.wait_until(lambda s: s.scalar(select(Delivery.attempts)) == 2)
    assert again.headers["webhook-id"] == first.headers["webhook-id"]
    assert json.loads(again.body) == json.loads(first.body)
    Verifier(secret).verify(again.body, again.headers)
    (delivery,) = deliveries(worker_db)
    assert (delivery.state, delivery.attempts) == ("delivered", 2)


@pytest.mark.skipif(not PG, reason="several workers need PostgreSQL's row locks; SQLite "
                                   "runs one worker (tested below)")
def test_two_workers_deliver_each_event_exactly_once(worker_db, receiver, tmp_path):
    with receiver() as hook:
        subscribe(worker_db, "OEM", hook.url)
        with worker_db.app.app_context(), session_scope(worker_db.app) as session:
            for n in range(60):
                lot = floor.receive_lot(session, "planner", {
                    "product": "P1", "customer": "OEM", "quantity": 10, "fab_lot": "F",
                    "wafers": [], "lot_no": f"L-RACE-{n}", "priority": 3, "due_date": None})
                quality.hold_lot(session, "qa", lot, reason="H-ENG", comment="x")
        with worker_db.worker(tmp_path / "w1.log", WORKER_POLL_MS=10), \
                worker_db.worker(tmp_path / "w2.log", WORKER_POLL_MS=10):
            hook.wait_for(60)
            worker_db.wait_until(lambda s: s.scalar(select(func.count()).select_from(
                Delivery).where(Delivery.state == "delivered")) == 60)
            # Both ran: on a busy machine the second may start after the first has
            # delivered everything; it must still have started beside it.
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not all(
                    "Worker started" in (tmp_path / name).read_text()
                    for name in ("w1.log", "w2.log")):
                time.sleep(0.1)
    ids = Counter(r.headers["webhook-id"] for r in hook.received)
    assert len(ids) == 60 and set(ids.values()) == {1}
    assert {d.attempts for d in deliveries(worker_db)} == {1}
    logs = [(tmp_path / name).read_text() for name in ("w1.log", "w2.log")]
    assert all("Worker started" in log for log in logs)


@pytest.mark.skipif(PG, reason="on PostgreSQL any number of workers may run")
def test_a_second_worker_on_sqlite_refuses_to_start(worker_db, tmp_path):
    with worker_db.worker(tmp_path / "w1.log") as first:
        worker_db.wait_until(lambda s: "Worker started" in (tmp_path / "w1.log").read_text())
        second = subprocess.run([str(first.args[0]), "worker"], env=worker_db.env(),
                                capture_output=True, text=True, timeout=60)
        assert first.poll() is None
    assert second.returncode != 0
    assert "SQLite allows one worker" in second.stderr


def test_events_of_a_type_not_subscribed_make_no_delivery(worker_db, receiver, tmp_path):
    with receiver() as hook:
        subscribe(worker_db, "OEM", hook.url, events=("shipment.created",))
        hold_new_lot(worker_db, "L-NOT-SUBSCRIBED")
        with worker_db.worker(tmp_path / "worker.log"):
            worker_db.wait_until(lambda s: s.scalar(
                select(Event.dispatched_at)) is not None)
    assert deliveries(worker_db) == [] and hook.received == []


def test_an_event_is_not_sent_before_it_is_due(worker_db, receiver):
    from datetime import timedelta

    from mes.catalog.models import Customer
    from mes.db import utcnow
    from mes.events import publish
    from mes.events.worker import Worker

    with receiver() as hook:
        subscribe(worker_db, "OEM", hook.url)
        with worker_db.app.app_context(), session_scope(worker_db.app) as session:
            customer_id = session.scalars(select(Customer.id).where(
                Customer.code == "OEM")).one()
            publish(session, "lot.hold.placed", customer_id=customer_id, data={"n": 1},
                    due_at=utcnow() + timedelta(hours=1))
        worker = Worker(worker_db.app)
        try:
            with worker_db.app.app_context():
                # (run_once also counts the periodic jobs that were due, e.g. forecasts)
                assert worker.dispatch() == 0 and worker.deliver() == 0
        finally:
            worker.close()
    assert hook.received == [] and deliveries(worker_db) == []
    with worker_db.app.app_context(), session_scope(worker_db.app) as session:
        assert session.scalar(select(Event.dispatched_at)) is None
