"""The quality rules of a track-out: a step yield below the step's minimum holds the lot
(automatic yield hold), and a lot arriving at its next step meets that step's future holds.
They subscribe to the floor's `lot_tracked_out` when this module is imported.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from mes.auth.actor import SYSTEM, Actor, actor_name
from mes.catalog import services as catalog
from mes.catalog.models import ReasonCode
from mes.catalog.services import StepInfo
from mes.floor import lifecycle
from mes.floor.models import Lot
from mes.quality.models import Hold
from mes.quality.services.common import CLOSED
from mes.quality.services.future import on_arrival
from mes.quality.services.holds import place_holds
from mes.vocabulary import HoldSource, LotState, ReasonKind, SystemText

# The reason of automatic yield holds, when the plant has it (else its first hold code).
YIELD_REASON = "HOLD-YIELD"


def yield_reason(session: Session) -> ReasonCode:
    """The reason of automatic yield holds: HOLD-YIELD when it is an active hold code, else
    the plant's first active hold code (by code). With no active hold code at all, HOLD-YIELD
    itself, retired or created (audited) when missing: a low yield is never left unheld
    for want of a code."""
    return automatic_reason(session, YIELD_REASON, "Step yield below the minimum")


def automatic_reason(session: Session, code: str, description: str) -> ReasonCode:
    """The reason of a hold a rule places by itself: `code` when it is an active hold code,
    else the plant's first active hold code (by code); with no active hold code at all,
    `code` itself, retired or created (audited, with `description`) when missing."""
    codes = {reason.code: reason for reason in session.scalars(
        select(ReasonCode).where(ReasonCode.kind == ReasonKind.HOLD, ReasonCode.active.is_(True))
        .order_by(ReasonCode.code))}
    if codes:
        return codes.get(code) or next(iter(codes.values()))
    retired = session.scalar(select(ReasonCode).where(ReasonCode.code == code,
                                                      ReasonCode.kind == ReasonKind.HOLD))
    return retired or catalog.create_reason_code(session, SYSTEM, {
        "code": code, "kind": ReasonKind.HOLD, "description": description})


def _below_min_yield(step: StepInfo, qty_in: int, good_qty: int) -> bool:
    # Decimal: 99.95 % of 2000 is exactly 1999, which float arithmetic gets wrong.
    return (step.min_yield is not None and qty_in > 0
            and Decimal(good_qty) * 100 < Decimal(str(step.min_yield)) * qty_in)


def after_track_out(lot: Lot, *, session: Session, actor: Actor, step: StepInfo, qty_in: int,
                    good_qty: int, rules_at_step: bool | None) -> list[Hold]:
    """The quality rules of a track-out, in its transaction, after the lot has moved: a
    step yield (good / quantity in) below the step's minimum holds the lot (source
    `yield`); a lot arriving at a next step meets the future holds of that step. A
    receiver of `lifecycle.lot_tracked_out`."""
    placed: list[Hold] = []
    if lot.state not in CLOSED and step.min_yield is not None \
            and _below_min_yield(step, qty_in, good_qty):
        achieved = round(100.0 * good_qty / qty_in, 3)
        # float: SQLite gives back a whole minimum as an int ("90 %"), PostgreSQL as "90.0 %".
        params = {"step": step.code, "yield": achieved, "min_yield": float(step.min_yield)}
        placed += place_holds(
            session, SYSTEM, [lot], yield_reason(session), "", HoldSource.YIELD,
            placed_by=SYSTEM, text=(SystemText.YIELD_BELOW_MIN, params),
            data={**params, "triggered_by": actor_name(actor)})
    if lot.state == LotState.QUEUED:
        placed += on_arrival(session, actor, lot, rules_at_step=rules_at_step)
    return placed


# Strongly referenced, and once however often the module is imported: blinker keys
# receivers by identity.
lifecycle.lot_tracked_out.connect(after_track_out, weak=False)
