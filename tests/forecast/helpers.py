"""Forecast test helpers: a known history of step and hold durations on the test plant."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from mes.catalog.models import Equipment, ReasonCode
from mes.floor.models import Lot, StepRun
from mes.quality.models import Hold

# Hours each step of the test plant's route QFN takes, queue plus process.
STEP_HOURS = {"SAW": 2.0, "WB": 3.0, "FT": 5.0, "PACK": 1.0}


def step_history(session, host: Lot, now: datetime, hours: dict[str, list[float]] | None = None,
                 good: dict[str, float] | None = None, runs: int = 10) -> None:
    """`runs` finished runs of each step of host's route ending an hour before `now`, each
    lasting the given hours in turn (default STEP_HOURS), with the given yields."""
    hours = hours or {code: [h] for code, h in STEP_HOURS.items()}
    tool = session.scalar(select(Equipment.id).limit(1))
    for seq, code in enumerate(STEP_HOURS, start=1):
        spans = hours.get(code, [])
        for i in range(runs if spans else 0):
            span = spans[i % len(spans)]
            end = now - timedelta(hours=1 + i)
            session.add(StepRun(lot_id=host.id, route_id=host.route_id, step_seq=seq,
                                step_code=code, equipment_id=tool,
                                arrived_at=end - timedelta(hours=span), started_at=end,
                                finished_at=end, qty_in=100,
                                good_qty=round(100 * (good or {}).get(code, 1.0))))
    session.commit()


def hold_history(session, host: Lot, now: datetime, hours: list[float], reason: str = "H-ENG",
                 runs: int = 10) -> None:
    """`runs` released holds of `reason` lasting the given hours in turn."""
    reason_id = session.scalar(select(ReasonCode.id).where(ReasonCode.code == reason))
    for i in range(runs):
        end = now - timedelta(hours=1 + i)
        session.add(Hold(lot_id=host.id, reason_id=reason_id, comment="c", placed_by="qa",
                         placed_at=end - timedelta(hours=hours[i % len(hours)]),
                         status="released", released_by="qa2", released_at=end,
                         disposition="release", release_comment="ok"))
    session.commit()
