"""When a customer sees a hold on their lots (PORTAL_HOLD_POLICY): under "delay", once
PORTAL_HOLD_DELAY_MINUTES have passed since it was placed; under "notify", only once QA has
notified the customer of it. A notified hold is seen at once under either policy. Until
then the customer's pages and API answers read the lot as if the hold were not there (its
state, `on_hold`, `holds`, history and trace, the portal, the reports); the plant sees
every hold at once.

The rule has one definition for queries (`customer_sees`) and one for a loaded hold
(`seen_by_customer`), both reading the policy from the application's configuration.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import ColumnElement, exists, false, or_, select

from mes.db import utcnow
from mes.quality.models import Hold
from mes.vocabulary import HoldPolicy, HoldStatus


@dataclass(frozen=True)
class Visibility:
    """The plant's policy: `policy` (a HoldPolicy code) and, under "delay", `delay`."""

    policy: str
    delay: timedelta

    @classmethod
    def configured(cls) -> Visibility:
        config = current_app.config
        return cls(config["PORTAL_HOLD_POLICY"],
                   timedelta(minutes=config["PORTAL_HOLD_DELAY_MINUTES"]))

    def cutoff(self, now: datetime) -> datetime | None:
        """Holds placed at or before this time are seen without a notice (None: none)."""
        return now - self.delay if self.policy == HoldPolicy.DELAY else None

    def clause(self, now: datetime | None = None) -> ColumnElement[bool]:
        """The holds a customer sees now, as a condition on `Hold`."""
        cutoff = self.cutoff(now or utcnow())
        by_time = Hold.placed_at <= cutoff if cutoff is not None else false()
        return or_(Hold.customer_notified_at.is_not(None), by_time)

    def sees(self, hold: Hold, now: datetime | None = None) -> bool:
        if hold.customer_notified_at is not None:
            return True
        cutoff = self.cutoff(now or utcnow())
        return cutoff is not None and hold.placed_at <= cutoff

    def shown_at(self, hold: Hold) -> datetime | None:
        """When the customer sees (or saw) `hold`: its notice or the end of the delay,
        whichever comes first; None while neither is due."""
        times = [t for t in (hold.customer_notified_at,
                             hold.placed_at + self.delay
                             if self.policy == HoldPolicy.DELAY else None) if t is not None]
        return min(times) if times else None


def customer_sees(now: datetime | None = None) -> ColumnElement[bool]:
    """The holds a customer sees now under the configured policy (a condition on Hold)."""
    return Visibility.configured().clause(now)


def seen_by_customer(hold: Hold, now: datetime | None = None) -> bool:
    return Visibility.configured().sees(hold, now)


def open_hold_seen(lot_id: ColumnElement[int] | object,
                   now: datetime | None = None) -> ColumnElement[bool]:
    """The lot (by its id column) has an open hold its customer sees."""
    return exists(select(Hold.id).where(Hold.lot_id == lot_id,
                                        Hold.status == HoldStatus.OPEN,
                                        customer_sees(now)))


def held_as_seen(on_hold: bool, lot_id: ColumnElement[int] | object,
                 now: datetime | None = None) -> ColumnElement[bool]:
    """The `on_hold` filter as a customer sees it."""
    seen = open_hold_seen(lot_id, now)
    return seen if on_hold else ~seen


__all__ = ["Visibility", "customer_sees", "held_as_seen", "open_hold_seen",
           "seen_by_customer"]
