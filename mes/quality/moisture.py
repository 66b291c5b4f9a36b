"""Moisture floor life (J-STD-033): how long a moisture-sensitive lot may stay out of its dry
bag at ≤ 30 °C / 60 % RH before it must be baked.

`remaining` is the rule itself, a pure function of the product's MSL, the exposure already
accumulated and the time the clock was last opened. The clock of a lot (`MoistureClock`) is
read here too, so the floor can refuse a pack track-in without importing quality's services.
A lot without a clock has none started: no exposure was recorded for it.

The packaging house's part (J-STD-033 §3-4): a lot's exposure runs from the track-out of its
route's moisture start step (post-mold cure) to the sealing of its dry bag, a bake that
meets the bake table (`mes.quality.bake_table`) resets it, and at dry pack the exposure
since the last bake may not exceed the product's manufacturer's exposure time (MET). A
sealed bag keeps for 12 months from its seal date.
"""

from __future__ import annotations

from calendar import monthrange
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString
from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from mes.db import utcnow
from mes.errors import Conflict, ErrorCode
from mes.quality.models import MoistureClock
from mes.shipping.models import PackUnit
from mes.vocabulary import MoistureState, PackKind

if TYPE_CHECKING:
    from mes.floor.models import Lot

HOUR = 3600
# A sealed dry bag's shelf life (J-STD-033: at < 40 °C / 90 % RH).
SHELF_LIFE_MONTHS = 12
# Floor life in seconds per MSL; None is unlimited (MSL 1). MSL 6 is "time on label".
FLOOR_LIFE: dict[str, int | None] = {
    "1": None, "2": 365 * 24 * HOUR, "2a": 672 * HOUR, "3": 168 * HOUR, "4": 72 * HOUR,
    "5": 48 * HOUR, "5a": 24 * HOUR, "6": None,
}
LABEL_LEVEL = "6"


@dataclass(frozen=True)
class FloorLife:
    exposure_seconds: int
    # None when the floor life is unlimited (MSL 1).
    limit_seconds: int | None

    @property
    def remaining_seconds(self) -> int | None:
        if self.limit_seconds is None:
            return None
        return max(self.limit_seconds - self.exposure_seconds, 0)

    @property
    def expired(self) -> bool:
        """Expired once the exposure reaches the floor life: at the limit the lot is out."""
        return self.limit_seconds is not None and self.exposure_seconds >= self.limit_seconds


def floor_life_seconds(msl: str, label_hours: float | None = None) -> int | None:
    """The floor life of `msl` in seconds (None: unlimited). MSL 6 takes the label's time;
    until a label is given (when the pack is first opened) it has none to count against.
    Raises ValueError for an unknown level."""
    if msl not in FLOOR_LIFE:
        raise ValueError(f"Unknown MSL {msl!r}.")
    if msl == LABEL_LEVEL:
        return round(label_hours * HOUR) if label_hours else None
    return FLOOR_LIFE[msl]


def remaining(msl: str, exposure_seconds: int, open_since: datetime | None, now: datetime,
              label_hours: float | None = None) -> FloorLife:
    """The floor life left: the exposure kept so far plus the time since the clock was last
    opened (`open_since`, None when it is paused), against the MSL's floor life."""
    exposure = exposure_seconds
    if open_since is not None:
        exposure += max(int((now - open_since) // timedelta(seconds=1)), 0)
    return FloorLife(exposure, floor_life_seconds(msl, label_hours))


# --- a lot's clock ---------------------------------------------------------------------

def clock_of(session: Session, lot_id: int) -> MoistureClock | None:
    """The lot's moisture clock, if it was ever opened."""
    return session.scalar(select(MoistureClock).where(MoistureClock.lot_id == lot_id))


def clock_life(clock: MoistureClock, msl: str, now: datetime | None = None) -> FloorLife:
    """The floor life of a clock now."""
    return remaining(msl, clock.exposure_seconds, clock.open_since, now or utcnow(),
                     clock.label_hours)


def floor_life_expired(session: Session, lot: Lot) -> bool:
    """Whether the lot's floor life has run out (a lot never opened has not)."""
    msl = lot.product.msl
    if msl == "1":
        return False
    clock = clock_of(session, lot.id)
    return clock is not None and clock_life(clock, msl).expired


def expired_message(lot_no: str) -> LazyString:
    return _l("Lot %(lot)s has used up its moisture floor life; bake it first.", lot=lot_no)


def check_floor_life(session: Session, lot: Lot) -> None:
    """Rule: a lot whose moisture floor life has run out is neither packed nor shipped until
    it is baked. Raises Conflict `floor_life_expired`."""
    if floor_life_expired(session, lot):
        raise Conflict(expired_message(lot.lot_no),
                       code=ErrorCode.FLOOR_LIFE_EXPIRED)


# --- dry pack and shelf life -----------------------------------------------------------

def add_months(at: datetime, months: int) -> datetime:
    """`at` plus whole calendar months (a day the month lacks becomes its last day)."""
    index = at.month - 1 + months
    year, month = at.year + index // 12, index % 12 + 1
    return at.replace(year=year, month=month, day=min(at.day, monthrange(year, month)[1]))


def shelf_life_until(sealed_at: datetime) -> datetime:
    """When a dry bag sealed at `sealed_at` reaches the end of its shelf life."""
    return add_months(sealed_at, SHELF_LIFE_MONTHS)


def first_seal_pending(clock: MoistureClock) -> bool:
    """Whether sealing the clock's lot is its dry pack: the first seal since its exposure
    started or since its last bake (a re-seal of a bag opened afterwards is not)."""
    return clock.sealed_at is None or (clock.baked_at is not None
                                       and clock.baked_at > clock.sealed_at)


def exposure_exceeded(lot: Lot, clock: MoistureClock | None, now: datetime) -> bool:
    """Whether the exposure since the last bake (or since the clock started) is beyond the
    product's manufacturer's exposure time."""
    if clock is None or lot.product.msl == "1" or not first_seal_pending(clock):
        return False
    exposure = clock_life(clock, lot.product.msl, now).exposure_seconds
    return exposure > float(lot.product.met_hours) * HOUR


def check_dry_pack(session: Session, lot: Lot, now: datetime | None = None) -> None:
    """Rule: a lot is dry-packed only while the exposure since its last bake is within the
    product's manufacturer's exposure time (MET, 24 h unless the product says otherwise);
    beyond it the lot is baked first. Raises Conflict `exposure_exceeded`."""
    if lot.product.msl == "1":
        return
    clock = clock_of(session, lot.id)
    now = now or utcnow()
    if exposure_exceeded(lot, clock, now):
        assert clock is not None
        hours = clock_life(clock, lot.product.msl, now).exposure_seconds / HOUR
        raise Conflict(_l("Lot %(lot)s has been exposed for %(hours)s h since its last bake, "
                          "more than the %(met)s h its product allows at dry pack; bake it "
                          "first.", lot=lot.lot_no, hours=round(hours, 1),
                          met=float(lot.product.met_hours)),
                       code=ErrorCode.EXPOSURE_EXCEEDED)


def shelf_life_expired(session: Session, lot: Lot, now: datetime | None = None) -> bool:
    """Whether the lot sits in a sealed dry bag past its shelf life."""
    clock = clock_of(session, lot.id)
    return (clock is not None and clock.state == MoistureState.SEALED
            and clock.sealed_at is not None
            and shelf_life_until(clock.sealed_at) <= (now or utcnow()))


def check_shelf_life(session: Session, lot: Lot) -> None:
    """Rule: a dry bag past its 12-month shelf life does not ship; it is opened, baked and
    sealed again. Raises Conflict `shelf_life_expired`."""
    if shelf_life_expired(session, lot):
        raise Conflict(_l("The dry bag of lot %(lot)s is past its 12-month shelf life; "
                          "bake the lot and seal it in a new bag.", lot=lot.lot_no),
                       code=ErrorCode.SHELF_LIFE_EXPIRED)


# Carriers that do not take a 125 °C bake (J-STD-033: tape and reel, tubes).
HEAT_LIMITED = (PackKind.REEL, PackKind.TUBE)


def on_heat_limited_carriers(session: Session, lot: Lot) -> bool:
    """Whether units of the lot are on reels or in tubes (which do not take 125 °C)."""
    return session.scalar(select(exists().where(PackUnit.lot_id == lot.id,
                                                PackUnit.kind.in_(HEAT_LIMITED)))) or False


def check_bags_shelf_life(bags: Sequence[PackUnit], now: datetime | None = None) -> None:
    """Rule: a dry bag past its 12-month shelf life (from its seal) does not ship. Raises
    Conflict `shelf_life_expired` naming the first such bag."""
    now = now or utcnow()
    for bag in bags:
        if bag.sealed_at is not None and shelf_life_until(bag.sealed_at) <= now:
            raise Conflict(_l("Dry bag %(bag)s was sealed on %(sealed)s and is past its "
                              "12-month shelf life; open it, bake its reels and seal them in "
                              "a new bag.", bag=bag.code, sealed=bag.sealed_at.date().isoformat()),
                           code=ErrorCode.SHELF_LIFE_EXPIRED)
