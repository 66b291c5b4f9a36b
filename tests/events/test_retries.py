"""The retry rules: each failed attempt waits the base, doubling, capped; the last attempt
is at the end of the window, after which the delivery has failed; a 2xx delivers it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mes.events.models import Delivery
from mes.events.worker import Outcome, Settings, backoff, record_outcome

START = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
SETTINGS = Settings(backoff_base=5, backoff_cap=60, max_age=timedelta(hours=24))


def _delivery() -> Delivery:
    return Delivery(state="pending", attempts=0, window_start=START, next_attempt_at=START,
                    last_error="")


def test_the_wait_doubles_from_the_base_up_to_the_cap():
    assert [backoff(n, SETTINGS).total_seconds() for n in range(1, 8)] == [
        5, 10, 20, 40, 60, 60, 60]
    assert backoff(10_000, SETTINGS) == timedelta(seconds=60)


def test_a_failed_attempt_is_retried_after_the_backoff():
    delivery = _delivery()
    record_outcome(delivery, Outcome(500, "HTTP 500"), START, SETTINGS)
    assert (delivery.state, delivery.attempts, delivery.last_status) == ("pending", 1, 500)
    assert delivery.next_attempt_at == START + timedelta(seconds=5)
    record_outcome(delivery, Outcome(None, "refused"), START + timedelta(seconds=5), SETTINGS)
    assert delivery.next_attempt_at == START + timedelta(seconds=15)
    assert delivery.last_status is None and delivery.last_error == "refused"


def test_the_last_attempt_is_at_the_end_of_the_window_then_it_fails():
    delivery = _delivery()
    near_end = START + timedelta(hours=24) - timedelta(seconds=1)
    record_outcome(delivery, Outcome(503, "HTTP 503"), near_end, SETTINGS)
    assert delivery.state == "pending"
    assert delivery.next_attempt_at == START + timedelta(hours=24)
    record_outcome(delivery, Outcome(503, "HTTP 503"), START + timedelta(hours=24), SETTINGS)
    assert delivery.state == "failed" and delivery.next_attempt_at is None


def test_a_2xx_answer_delivers():
    delivery = _delivery()
    record_outcome(delivery, Outcome(204, ""), START, SETTINGS)
    assert (delivery.state, delivery.delivered_at, delivery.next_attempt_at) == (
        "delivered", START, None)
    for status in (301, 404, 410):
        other = _delivery()
        record_outcome(other, Outcome(status, f"HTTP {status}"), START, SETTINGS)
        assert other.state == "pending"
