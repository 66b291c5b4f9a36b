"""Moisture floor life (J-STD-033): how long a moisture-sensitive lot may stay out of its dry
bag at ≤ 30 °C / 60 % RH before it must be baked.

`remaining` is the rule itself, a pure function of the product's MSL, the exposure already
accumulated and the time the clock was last opened. The clock of a lot (`MoistureClock`) is
read here too, so the floor can refuse a pack track-in without importing quality's services.
A lot without a clock has never been opened: it has no exposure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString
from sqlalchemy import select
from sqlalchemy.orm import Session

from mes.db import utcnow
from mes.errors import Conflict, ErrorCode
from mes.quality.models import MoistureClock

if TYPE_CHECKING:
    from mes.floor.models import Lot

HOUR = 3600
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
