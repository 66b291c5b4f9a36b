"""A lot's moisture clock (J-STD-033 floor life) as the API and the pages show it, and
the actions that move it (open, seal, dry storage, bake): by hand, and in the packaging
house at the track-out of the route's moisture start step (the clock starts) and of a bake
step (the bake is recorded). The rules themselves are in `mes.quality.moisture` and the
bake table in `mes.quality.bake_table`. Importing this module subscribes the track-out
rules to the floor's lot lifecycle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from mes.auth.actor import Actor, actor_name
from mes.catalog.services import StepInfo
from mes.db import utcnow
from mes.errors import Conflict, ErrorCode, InvalidInput
from mes.floor import lifecycle
from mes.floor import services as floor
from mes.floor.models import Lot
from mes.quality import bake_table, moisture
from mes.quality.models import MoistureBake, MoistureClock
from mes.quality.services.common import CLOSED, invalid
from mes.shipping.models import PackUnit
from mes.vocabulary import CARRIERS, EventKind, MoistureAction, MoistureState

# The state each action leaves the clock in. A bake resets the exposure and the lot, out of
# the oven, is exposed again: the clock runs from the bake's end.
_MOISTURE_TARGET: dict[str, MoistureState] = {
    MoistureAction.OPEN: MoistureState.OPEN, MoistureAction.SEAL: MoistureState.SEALED,
    MoistureAction.DRY_STORAGE: MoistureState.DRY_STORAGE,
    MoistureAction.BAKE: MoistureState.OPEN}
# The refusal of an action whose state the clock is in already.
_ALREADY = {MoistureState.OPEN: ErrorCode.ALREADY_OPEN,
            MoistureState.SEALED: ErrorCode.ALREADY_SEALED,
            MoistureState.DRY_STORAGE: ErrorCode.ALREADY_DRY_STORAGE}


@dataclass
class SealView:
    sealed_at: datetime
    shelf_life_until: datetime


@dataclass
class MoistureView:
    """A lot's moisture clock as the API and the pages show it. A lot with no clock is
    `not_started`: no exposure was recorded (`exposure_h` None)."""

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
    # The packaging house: the exposure since the last bake (or since the clock started),
    # the hours since the last bake, the product's manufacturer's exposure time, the seal.
    exposure_h: float | None = None
    since_bake_h: float | None = None
    met_h: float = 24.0
    seal: SealView | None = None
    started_at: datetime | None = None
    exposure_exceeded: bool = False


def _hours(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / moisture.HOUR, 3)


def moisture_view(session: Session, lot: Lot, clock: MoistureClock | None = None,
                  now: datetime | None = None) -> MoistureView:
    """The lot's clock now; a lot without a clock is `not_started`, with no exposure."""
    clock = clock or moisture.clock_of(session, lot.id)
    msl = lot.product.msl
    now = now or utcnow()
    met = float(lot.product.met_hours)
    if clock is None:
        life = moisture.remaining(msl, 0, None, now)
        return MoistureView(lot_no=lot.lot_no, msl=msl, state=MoistureState.NOT_STARTED,
                            exposure_hours=0.0, floor_life_hours=_hours(life.limit_seconds),
                            remaining_hours=_hours(life.remaining_seconds), expired=False,
                            open_since=None, label_hours=None, baked_at=None, updated_at=None,
                            met_h=met)
    life = moisture.clock_life(clock, msl, now)
    seal = None
    if clock.state == MoistureState.SEALED and clock.sealed_at is not None:
        seal = SealView(clock.sealed_at, moisture.shelf_life_until(clock.sealed_at))
    since_bake = None if clock.baked_at is None else _hours(
        max((now - clock.baked_at).total_seconds(), 0))
    exposure = _hours(life.exposure_seconds) or 0.0
    return MoistureView(lot_no=lot.lot_no, msl=msl, state=clock.state, exposure_hours=exposure,
                        floor_life_hours=_hours(life.limit_seconds),
                        remaining_hours=_hours(life.remaining_seconds), expired=life.expired,
                        open_since=clock.open_since, label_hours=clock.label_hours,
                        baked_at=clock.baked_at, updated_at=clock.updated_at,
                        exposure_h=exposure, since_bake_h=since_bake, met_h=met, seal=seal,
                        started_at=clock.started_at,
                        exposure_exceeded=moisture.exposure_exceeded(lot, clock, now))


def _refuse_closed(lot: Lot) -> None:
    if lot.product.msl == "1":
        raise Conflict(_l("Lot %(lot)s is MSL 1: its floor life is unlimited.", lot=lot.lot_no),
                       code=ErrorCode.NOT_MOISTURE_SENSITIVE)
    if lot.state in CLOSED:
        raise Conflict(_l("Lot %(lot)s is %(state)s.", lot=lot.lot_no, state=_l(lot.state)),
                       code=ErrorCode.LOT_CLOSED)


def moisture_action(session: Session, actor: Actor, lot: Lot, action: str,
                    label_hours: float | None = None,
                    bake: dict[str, Any] | None = None) -> MoistureView:
    """Move a lot's moisture clock (J-STD-033): `open` starts or resumes it, `seal` (dry
    pack) and `dry_storage` pause it keeping the exposure, `bake` (with its `bake`
    parameters {temperature_c, hours, rh_pct?}, see `record_bake`) resets the exposure to 0,
    the clock running again from the bake's end. Each writes a `moisture_<action>` event in
    the lot's history. Sealing records the seal time (the bag's 12-month shelf life starts).

    Refused with 409 `not_moisture_sensitive` for an MSL 1 product, `lot_closed` for a
    shipped, scrapped or merged lot, and `already_open` / `already_sealed` /
    `already_dry_storage` when the clock is in that state already; the first seal after the
    exposure started or after a bake (the dry pack) with 409 `exposure_exceeded` when the
    exposure is beyond the product's MET. A bake is refused as `record_bake` refuses it. 422
    when a bake comes without its parameters or other actions with them. `label_hours` (the
    floor life on the label) is required to open an MSL 6 lot whose clock has none, and is
    422 for any other action or level.
    """
    msl = lot.product.msl
    if action not in MoistureAction.codes():
        raise invalid("action", _l("Unknown action %(action)s.", action=action))
    if label_hours is not None and (action != MoistureAction.OPEN or msl != moisture.LABEL_LEVEL):
        raise invalid("label_hours", _l("The time on the label is given only when opening an "
                                         "MSL 6 lot."))
    if action == MoistureAction.BAKE:
        missing = [name for name in ("temperature_c", "hours") if not (bake or {}).get(name)]
        if missing or bake is None:
            message = _l("A bake needs its oven temperature and hours.")
            raise InvalidInput(message, fields={name: [message] for name in missing})
        return record_bake(session, actor, lot, temperature_c=bake["temperature_c"],
                           hours=bake["hours"], rh_pct=bake.get("rh_pct")).view
    if bake is not None:
        raise invalid("temperature_c", _l("Temperature and hours are given only for a bake."))
    _refuse_closed(lot)
    clock = moisture.clock_of(session, lot.id)
    before = clock.state if clock is not None else MoistureState.NOT_STARTED
    target = _MOISTURE_TARGET[action]
    if before == target:
        raise Conflict(_l("Lot %(lot)s is %(target)s already.", lot=lot.lot_no,
                          target=target.replace('_', ' ')),
                       code=_ALREADY[target])
    if (action == MoistureAction.OPEN and msl == moisture.LABEL_LEVEL and label_hours is None
            and (clock is None or clock.label_hours is None)):
        raise invalid("label_hours", _l("An MSL 6 lot needs the floor life on its label."))
    now = utcnow()
    if action == MoistureAction.SEAL:
        moisture.check_dry_pack(session, lot, now)
    clock = _move(session, lot, clock, target, now)
    if action == MoistureAction.SEAL:
        clock.sealed_at = now
    if label_hours is not None:
        clock.label_hours = label_hours
    view = moisture_view(session, lot, clock, now)
    _event(session, actor, lot, action, before, view, now,
           {"label_hours": label_hours} if label_hours is not None else {})
    return view


def _move(session: Session, lot: Lot, clock: MoistureClock | None, target: MoistureState,
          now: datetime) -> MoistureClock:
    """The clock (created when missing) with its exposure kept up to `now` and moved to
    `target`."""
    if clock is None:
        clock = MoistureClock(lot_id=lot.id, exposure_seconds=0)
        session.add(clock)
    if clock.open_since is not None:
        clock.exposure_seconds = moisture.clock_life(clock, lot.product.msl, now).exposure_seconds
    clock.open_since = now if target == MoistureState.OPEN else None
    clock.state = target
    clock.updated_at = now
    return clock


def _event(session: Session, actor: Actor, lot: Lot, action: str, before: str,
           view: MoistureView, now: datetime, data: dict[str, Any]) -> None:
    floor.record_event(session, lot, EventKind(f"moisture_{action}"), actor, at=now, data={
        "from": before, "state": view.state, "exposure_hours": view.exposure_hours,
        "remaining_hours": view.remaining_hours, "msl": view.msl, **data})


# --- dry pack by bag ------------------------------------------------------------------

def check_dry_packs(session: Session, lots: Sequence[Lot], now: datetime) -> None:
    """Rule: every moisture-sensitive lot going into a dry bag is within its product's
    exposure time since its last bake (`moisture.check_dry_pack`, 409
    `exposure_exceeded`)."""
    for lot in lots:
        moisture.check_dry_pack(session, lot, now)


def seal_lots(session: Session, actor: Actor, lots: Sequence[Lot], now: datetime,
              bag: str) -> None:
    """Seal the moisture clocks of the moisture-sensitive lots sealed in dry bag `bag` once
    the last of a lot's carriers is in a bag (until then its other reels are still exposed
    and its clock runs): the clock pauses and keeps the seal time, with a `moisture_seal`
    event naming the bag. Call `check_dry_packs` first (with the carriers already in the
    bag)."""
    for lot in lots:
        if lot.product.msl == "1" or lot.state in CLOSED:
            continue
        if session.scalar(select(exists().where(
                PackUnit.lot_id == lot.id, PackUnit.parent_id.is_(None),
                PackUnit.kind.in_(CARRIERS)))):
            continue
        clock = moisture.clock_of(session, lot.id)
        if clock is not None and clock.state == MoistureState.SEALED:
            continue
        before = clock.state if clock is not None else MoistureState.NOT_STARTED
        clock = _move(session, lot, clock, MoistureState.SEALED, now)
        clock.sealed_at = now
        view = moisture_view(session, lot, clock, now)
        _event(session, actor, lot, MoistureAction.SEAL, before, view, now, {"bag": bag})


# --- bakes -----------------------------------------------------------------------------

@dataclass
class BakeResult:
    """A recorded bake: it met the table (`required_hours` at its column)."""

    lot_no: str
    temperature_c: float
    hours: float
    rh_pct: float | None
    meets_table: bool
    required_hours: float
    table_temperature_c: int
    short_exposure: bool
    baked_at: datetime
    step: str | None
    view: MoistureView


def bake_requirement(session: Session, lot: Lot, temperature_c: float,
                     rh_pct: float | None, now: datetime) -> bake_table.BakeRequirement:
    """What the bake table asks of this lot's bake: its product's MSL and body thickness; the
    "exceeded by ≤ 72 h" column when the lot's exposure is known and within its floor life
    plus 72 h, else the "> 72 h or unknown" column."""
    clock = moisture.clock_of(session, lot.id)
    excess = None
    if clock is not None:
        life = moisture.clock_life(clock, lot.product.msl, now)
        limit = life.limit_seconds
        # Without a floor life to exceed (MSL 6 without a label) the exposure is unknown.
        if limit is not None:
            excess = (life.exposure_seconds - limit) / moisture.HOUR
    return bake_table.required(lot.product.msl, lot.product.body_thickness_mm, temperature_c,
                               rh_pct, excess_hours=excess)


def check_bake(session: Session, lot: Lot, *, temperature_c: float, hours: float,
               rh_pct: float | None = None,
               now: datetime | None = None) -> bake_table.BakeRequirement:
    """The rules of a bake, before anything is written: 409 `not_moisture_sensitive` (MSL 1)
    and `lot_closed`; 409 `carrier_temperature` for a bake at 125 °C or more of a lot already
    on reels or in tubes (the carriers do not take it); 422 `insufficient_bake` (with
    `required_hours`) when the bake does not meet the table for the product's MSL and body
    thickness: too short, too cool (below 40 °C) or too humid below 125 °C."""
    _refuse_closed(lot)
    if temperature_c >= bake_table.TEMPERATURES[0] and moisture.on_heat_limited_carriers(
            session, lot):
        raise Conflict(_l("Lot %(lot)s is on reels or in tubes, which do not take "
                          "%(temperature)s °C; bake it at 90 °C or 40 °C (dry), or take it "
                          "off the carriers first.", lot=lot.lot_no, temperature=temperature_c),
                       code=ErrorCode.CARRIER_TEMPERATURE)
    need = bake_requirement(session, lot, temperature_c, rh_pct, now or utcnow())
    if not bake_table.meets(need, hours):
        if need.hours is None:
            message = _l("A bake at %(temperature)s °C%(rh)s does not count in the J-STD-033 "
                         "bake table: it takes 125 °C, or 90 °C or 40 °C at most 5 %% RH.",
                         temperature=temperature_c,
                         rh="" if rh_pct is None else f" / {rh_pct} % RH")
        else:
            message = _l("Lot %(lot)s (MSL %(msl)s) needs %(required)s h at %(column)s °C; "
                         "%(hours)s h does not meet the bake table.", lot=lot.lot_no,
                         msl=lot.product.msl, required=need.hours, column=need.temperature_c,
                         hours=hours)
        raise InvalidInput(message, code=ErrorCode.INSUFFICIENT_BAKE,
                           fields={"hours": [message]},
                           extra={"required_hours": need.hours,
                                  "table_temperature_c": need.temperature_c})
    return need


def record_bake(session: Session, actor: Actor, lot: Lot, *, temperature_c: float,
                hours: float, rh_pct: float | None = None,
                step: str | None = None) -> BakeResult:
    """Record a bake of the lot that meets the J-STD-033 bake table: the exposure is reset
    and the clock runs again from the bake's end (a lot without a clock gets one). Writes
    the bake, a `moisture_bake` event in the lot's history and its audit record.

    Refused as `check_bake` refuses (409 `not_moisture_sensitive`, `lot_closed`,
    `carrier_temperature`; 422 `insufficient_bake` with `required_hours`)."""
    now = utcnow()
    need = check_bake(session, lot, temperature_c=temperature_c, hours=hours, rh_pct=rh_pct,
                      now=now)
    assert need.hours is not None and need.temperature_c is not None
    clock = moisture.clock_of(session, lot.id)
    before = clock.state if clock is not None else MoistureState.NOT_STARTED
    clock = _move(session, lot, clock, MoistureState.OPEN, now)
    clock.exposure_seconds = 0
    clock.baked_at = now
    if clock.started_at is None:
        clock.started_at = now
    session.add(MoistureBake(lot_id=lot.id, temperature_c=temperature_c, hours=hours,
                             rh_pct=rh_pct, required_hours=need.hours,
                             short_exposure=need.short_exposure, step_code=step, baked_at=now,
                             baked_by=actor_name(actor)))
    view = moisture_view(session, lot, clock, now)
    _event(session, actor, lot, MoistureAction.BAKE, before, view, now, {
        "temperature_c": temperature_c, "hours": hours, "rh_pct": rh_pct,
        "required_hours": need.hours, "table_temperature_c": need.temperature_c,
        **({"step": step} if step else {})})
    return BakeResult(lot_no=lot.lot_no, temperature_c=temperature_c, hours=hours,
                      rh_pct=rh_pct, meets_table=True, required_hours=need.hours,
                      table_temperature_c=need.temperature_c,
                      short_exposure=need.short_exposure, baked_at=now, step=step, view=view)


# --- the packaging house's track-outs --------------------------------------------------

def before_track_out(lot: Lot, *, session: Session, actor: Actor, run: Any,
                     **_: Any) -> None:
    """Refuse the track-out of a bake step whose recipe would not count for the lot (see
    `check_bake`), before anything is written. A receiver of
    `lifecycle.lot_tracking_out`."""
    step = floor.current_step(lot)
    if step.bake is None or lot.product.msl == "1":
        return
    check_bake(session, lot, temperature_c=step.bake["temperature_c"],
               hours=step.bake["hours"], rh_pct=step.bake.get("rh_pct"))


def after_track_out(lot: Lot, *, session: Session, actor: Actor, step: StepInfo,
                    **_kw: Any) -> None:
    """The moisture rules of a track-out, after the lot has moved: the route's moisture
    start step starts the exposure clock of a moisture-sensitive lot (a clock already
    running keeps its exposure; a paused one runs again), and a bake step records its bake.
    A receiver of `lifecycle.lot_tracked_out`."""
    if lot.product.msl == "1" or lot.state in CLOSED:
        return
    if step.bake is not None:
        record_bake(session, actor, lot, temperature_c=step.bake["temperature_c"],
                    hours=step.bake["hours"], rh_pct=step.bake.get("rh_pct"), step=step.code)
    if step.moisture_start:
        clock = moisture.clock_of(session, lot.id)
        if clock is not None and clock.state == MoistureState.OPEN:
            return
        before = clock.state if clock is not None else MoistureState.NOT_STARTED
        now = utcnow()
        clock = _move(session, lot, clock, MoistureState.OPEN, now)
        if clock.started_at is None:
            clock.started_at = now
        view = moisture_view(session, lot, clock, now)
        _event(session, actor, lot, MoistureAction.OPEN, before, view, now,
               {"step": step.code})


# Strongly referenced, and once however often the module is imported.
lifecycle.lot_tracking_out.connect(before_track_out, weak=False)
lifecycle.lot_tracked_out.connect(after_track_out, weak=False)
