"""A lot's moisture clock (J-STD-033 floor life) as the API and the pages show it, and
the actions that move it (open, seal, dry storage, bake). The rule itself is in
`mes.quality.moisture`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from mes.auth.actor import Actor
from mes.db import utcnow
from mes.errors import Conflict, ErrorCode
from mes.floor import services as floor
from mes.floor.models import Lot
from mes.quality import moisture
from mes.quality.models import MoistureClock
from mes.quality.services.common import CLOSED, invalid
from mes.vocabulary import EventKind, MoistureAction, MoistureState

# The state each action leaves the clock in. A bake leaves the lot dry and paused: the clock
# runs again when the lot is opened.
_MOISTURE_TARGET: dict[str, MoistureState] = {
    MoistureAction.OPEN: MoistureState.OPEN, MoistureAction.SEAL: MoistureState.SEALED,
    MoistureAction.DRY_STORAGE: MoistureState.DRY_STORAGE,
    MoistureAction.BAKE: MoistureState.DRY_STORAGE}
# The refusal of an action whose state the clock is in already.
_ALREADY = {MoistureState.OPEN: ErrorCode.ALREADY_OPEN,
            MoistureState.SEALED: ErrorCode.ALREADY_SEALED,
            MoistureState.DRY_STORAGE: ErrorCode.ALREADY_DRY_STORAGE}


@dataclass
class MoistureView:
    """A lot's moisture clock as the API and the pages show it."""

    lot_no: str
    msl: str
    state: str
    exposure_hours: float
    floor_life_hours: float | None
    remaining_hours: float | None
    expired: bool
    open_since: datetime | None
    label_hours: float | None
    baked_at: datetime | None
    updated_at: datetime | None


def moisture_view(session: Session, lot: Lot, clock: MoistureClock | None = None,
                  now: datetime | None = None) -> MoistureView:
    """The lot's clock now; a lot never opened is sealed with no exposure."""
    clock = clock or moisture.clock_of(session, lot.id)
    msl = lot.product.msl
    state: str
    if clock is None:
        life = moisture.remaining(msl, 0, None, now or utcnow())
        state, open_since, label, baked, updated = MoistureState.SEALED, None, None, None, None
    else:
        life = moisture.clock_life(clock, msl, now)
        state, open_since, label = clock.state, clock.open_since, clock.label_hours
        baked, updated = clock.baked_at, clock.updated_at

    def hours(seconds: int | None) -> float | None:
        return None if seconds is None else round(seconds / moisture.HOUR, 3)

    return MoistureView(lot_no=lot.lot_no, msl=msl, state=state,
                        exposure_hours=hours(life.exposure_seconds) or 0.0,
                        floor_life_hours=hours(life.limit_seconds),
                        remaining_hours=hours(life.remaining_seconds), expired=life.expired,
                        open_since=open_since, label_hours=label, baked_at=baked,
                        updated_at=updated)


def moisture_action(session: Session, actor: Actor, lot: Lot, action: str,
                    label_hours: float | None = None) -> MoistureView:
    """Move a lot's moisture clock (J-STD-033): `open` starts or resumes it, `seal` (dry
    pack) and `dry_storage` pause it keeping the exposure, `bake` resets the exposure to 0
    and leaves it paused. Each writes a `moisture_<action>` event in the lot's history.

    Refused with 409 `not_moisture_sensitive` for an MSL 1 product, `lot_closed` for a
    shipped, scrapped or merged lot, and `already_open` / `already_sealed` /
    `already_dry_storage` when the clock is in that state already. `label_hours` (the
    floor life on the label) is required to open an MSL 6 lot whose clock has none, and is
    422 for any other action or level.
    """
    msl = lot.product.msl
    if action not in MoistureAction.codes():
        raise invalid("action", _l("Unknown action %(action)s.", action=action))
    if label_hours is not None and (action != MoistureAction.OPEN or msl != moisture.LABEL_LEVEL):
        raise invalid("label_hours", _l("The time on the label is given only when opening an "
                                         "MSL 6 lot."))
    if msl == "1":
        raise Conflict(_l("Lot %(lot)s is MSL 1: its floor life is unlimited.", lot=lot.lot_no),
                       code=ErrorCode.NOT_MOISTURE_SENSITIVE)
    if lot.state in CLOSED:
        raise Conflict(_l("Lot %(lot)s is %(state)s.", lot=lot.lot_no, state=_l(lot.state)),
                       code=ErrorCode.LOT_CLOSED)
    clock = moisture.clock_of(session, lot.id)
    before = clock.state if clock is not None else MoistureState.SEALED
    target = _MOISTURE_TARGET[action]
    if action != MoistureAction.BAKE and before == target:
        raise Conflict(_l("Lot %(lot)s is %(target)s already.", lot=lot.lot_no,
                          target=target.replace('_', ' ')),
                       code=_ALREADY[target])
    if (action == MoistureAction.OPEN and msl == moisture.LABEL_LEVEL and label_hours is None
            and (clock is None or clock.label_hours is None)):
        raise invalid("label_hours", _l("An MSL 6 lot needs the floor life on its label."))
    now = utcnow()
    if clock is None:
        clock = MoistureClock(lot_id=lot.id, exposure_seconds=0)
        session.add(clock)
    if clock.open_since is not None:
        clock.exposure_seconds = moisture.clock_life(clock, msl, now).exposure_seconds
    clock.open_since = now if target == MoistureState.OPEN else None
    if action == MoistureAction.BAKE:
        clock.exposure_seconds = 0
        clock.baked_at = now
    if label_hours is not None:
        clock.label_hours = label_hours
    clock.state = target
    clock.updated_at = now
    view = moisture_view(session, lot, clock, now)
    floor.record_event(session, lot, EventKind(f"moisture_{action}"), actor, at=now, data={
        "from": before, "state": target, "exposure_hours": view.exposure_hours,
        "remaining_hours": view.remaining_hours, "msl": msl,
        **({"label_hours": label_hours} if label_hours is not None else {})})
    return view
