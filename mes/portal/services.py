"""What the customer portal reads, always for one customer: WIP by stage with the expected
completion of each lot, holds and dispositions, yields per test step.

Expected completion: the median duration (queue + process: track-out minus arrival at the
step) of each step over the step runs finished in the last `window` (30 days), plant-wide
(cycle times are the plant's, not the customer's). A step with no finished run in the window
takes the median of every step's runs in the window; a plant with no finished run at all
takes `DEFAULT_STEP_HOURS`. A lot still needs its current step's median less the time it has
already spent there (never less than zero), plus the medians of every later step of its own
route version.

The estimate is never earlier than the **remaining steps' minimum** (`remaining_minimum`):
the sum, over the lot's current step and every later step of its route version, of the
shortest process time (track-in to track-out) of the step's runs finished in the window (a
step without such a run: the shortest of every step's runs in the window; none at all:
`DEFAULT_MIN_STEP_HOURS`); at the current step of a running lot, that minimum less the time
since its track-in (never below zero). A lot queued for days, long past its step's median,
is then still at least that far from done, never "now".

The medians are the plant's, the same for every customer, and move slowly: a server process
computes them at most once per `PORTAL_CYCLE_TIME_CACHE_SECONDS` (`cached_cycle_times`).

What a customer sees of holds follows the plant's policy (`mes.portal.visibility`); QA's
notice to the customer is `notify_customer`. The customers' reject Pareto groups by the
reason codes' customer categories (`reject_categories`), never by the codes.
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, func, select, text, tuple_, type_coerce
from sqlalchemy.orm import Session, joinedload

from mes import audit
from mes.auth.actor import Actor, actor_name
from mes.catalog.models import Product, RouteStep
from mes.catalog.services import StepInfo, route_step_infos
from mes.db import UTCDateTime, utcnow
from mes.errors import Conflict, ErrorCode
from mes.events import holds as events
from mes.floor.models import Lot, StepRun
from mes.portal.visibility import Visibility
from mes.quality.models import Hold
from mes.testfloor import figures
from mes.testfloor.models import TestRun
from mes.vocabulary import ACTIVE_LOT_STATES, HoldStatus, LotState

CYCLE_WINDOW = timedelta(days=30)
DEFAULT_STEP_HOURS = 24.0
DEFAULT_MIN_STEP_HOURS = 1.0
YIELD_WINDOW = timedelta(days=90)
FINISHED_LIMIT = 50


@dataclass(frozen=True)
class CycleTimes:
    """Median hours per step code, and the fallback for steps without recent runs; the
    shortest process hours per step code, and its fallback."""

    per_step: dict[str, float]
    fallback: float
    min_per_step: dict[str, float] = field(default_factory=dict)
    min_fallback: float = DEFAULT_MIN_STEP_HOURS

    def hours(self, step_code: str) -> float:
        return self.per_step.get(step_code, self.fallback)

    def minimum(self, step_code: str) -> float:
        return self.min_per_step.get(step_code, self.min_fallback)


def cycle_times(session: Session, now: datetime, window: timedelta = CYCLE_WINDOW
                ) -> CycleTimes:
    """The median step duration (queue + process, hours) per step code over the runs
    finished in the `window` before `now`; see the module's docstring for the fallback.
    PostgreSQL computes the medians (percentile_cont, over the finished_at index range);
    elsewhere (SQLite, the embedded single-plant database) Python does."""
    recent = (StepRun.finished_at >= now - window, StepRun.finished_at <= now)
    if session.get_bind().dialect.name == "postgresql":
        # One pass over the window (a plant of a million lots finishes ~200,000 runs in 30
        # days): the grouping set () gives the overall median beside the per-step ones, in
        # the row whose grouping flag is 1; date_part is double precision (extract's
        # numeric doubles the sort's cost); the sort stays in memory.
        session.execute(text("SET LOCAL work_mem = '64MB'"))
        seconds = func.date_part("epoch", StepRun.finished_at - StepRun.arrived_at)
        median = func.percentile_cont(0.5).within_group(func.greatest(seconds, 0))
        least_process = func.min(func.greatest(
            func.date_part("epoch", StepRun.finished_at - StepRun.started_at), 0))
        per_step: dict[str, float] = {}
        min_per_step: dict[str, float] = {}
        overall = overall_min = None
        for code, whole, value, least in session.execute(
                select(StepRun.step_code, func.grouping(StepRun.step_code), median,
                       least_process)
                .where(*recent).group_by(func.grouping_sets(StepRun.step_code, tuple_()))):
            if whole:
                overall, overall_min = value, least
            else:
                per_step[code] = float(value) / 3600
                min_per_step[code] = float(least) / 3600
        return CycleTimes(per_step, float(overall) / 3600 if overall is not None
                          else DEFAULT_STEP_HOURS, min_per_step,
                          float(overall_min) / 3600 if overall_min is not None
                          else DEFAULT_MIN_STEP_HOURS)
    durations: dict[str, list[float]] = defaultdict(list)
    shortest: dict[str, float] = {}
    # `recent` keeps finished runs only, so finished_at is never NULL here.
    finished_at = type_coerce(StepRun.finished_at, UTCDateTime())
    for code, arrived, started, finished in session.execute(
            select(StepRun.step_code, StepRun.arrived_at, StepRun.started_at, finished_at)
            .where(*recent)):
        durations[code].append(max((finished - arrived).total_seconds(), 0) / 3600)
        process = max((finished - started).total_seconds(), 0) / 3600
        shortest[code] = min(shortest.get(code, process), process)
    every = [v for values in durations.values() for v in values]
    return CycleTimes({code: statistics.median(values) for code, values in durations.items()},
                      statistics.median(every) if every else DEFAULT_STEP_HOURS, shortest,
                      min(shortest.values()) if shortest else DEFAULT_MIN_STEP_HOURS)


# database URL -> (monotonic time it expires, the medians)
_CYCLE_CACHE: dict[str, tuple[float, CycleTimes]] = {}


def cached_cycle_times(session: Session, now: datetime, seconds: float,
                       clock: Callable[[], float] = time.monotonic) -> CycleTimes:
    """`cycle_times` as this process computed it less than `seconds` ago (0: now)."""
    if seconds <= 0:
        return cycle_times(session, now)
    key = str(session.get_bind().engine.url)
    at = clock()
    hit = _CYCLE_CACHE.get(key)
    if hit is not None and at < hit[0]:
        return hit[1]
    times = cycle_times(session, now)
    _CYCLE_CACHE[key] = (at + seconds, times)
    return times


def remaining_hours(steps: Sequence[StepInfo], step_seq: int, in_step_hours: float,
                    times: CycleTimes) -> float:
    """Hours a lot at `step_seq` (1-based) still needs: what its current step's median
    leaves after the `in_step_hours` already spent there, plus every later step's median."""
    current = steps[step_seq - 1]
    later = sum(times.hours(st.code) for st in steps[step_seq:])
    return max(times.hours(current.code) - in_step_hours, 0.0) + later


def remaining_minimum(steps: Sequence[StepInfo], step_seq: int, running_hours: float | None,
                      times: CycleTimes) -> float:
    """The least time a lot at `step_seq` (1-based) can still need: the shortest process
    time of its current step and of every later step; a running lot's current step less the
    `running_hours` since its track-in (never below zero). Queued lots pass None."""
    current = times.minimum(steps[step_seq - 1].code)
    if running_hours is not None:
        current = max(current - running_hours, 0.0)
    return current + sum(times.minimum(st.code) for st in steps[step_seq:])


@dataclass
class WipLot:
    lot: Lot
    steps_left: int
    expected: datetime
    # An open hold the customer sees (mes.portal.visibility).
    on_hold: bool = False
    # The least the lot can still need (remaining_minimum); `expected` is never earlier.
    earliest: datetime | None = None


@dataclass
class Stage:
    code: str
    name: str
    seq: int
    name_zh: str | None = None
    lots: int = 0
    quantity: int = 0
    on_hold: int = 0
    running: int = 0


@dataclass
class Wip:
    lots: list[WipLot]
    stages: list[Stage] = field(default_factory=list)
    times: CycleTimes | None = None


def wip(session: Session, customer_id: int, now: datetime, cache_seconds: float = 0) -> Wip:
    """The customer's lots in the plant (queued or running), each with its expected
    completion, soonest first; and per stage (step code, in route order) the lots, units,
    lots on hold and lots running. The medians may be up to `cache_seconds` old."""
    lots = list(session.scalars(
        select(Lot).where(Lot.customer_id == customer_id, Lot.state.in_(ACTIVE_LOT_STATES))
        .options(joinedload(Lot.product), joinedload(Lot.route))))
    times = cached_cycle_times(session, now, cache_seconds)
    held = held_lots(session, [lot.id for lot in lots if lot.open_holds], now)
    started = track_ins(session, [lot.id for lot in lots if lot.state == LotState.RUNNING])
    rows = []
    stages: dict[str, Stage] = {}
    for lot in lots:
        steps = route_step_infos(session, lot.route)
        in_step = max((now - lot.arrived_at).total_seconds(), 0) / 3600
        hours = remaining_hours(steps, lot.step_seq, in_step, times)
        since = started.get(lot.id)
        least = remaining_minimum(
            steps, lot.step_seq,
            max((now - since).total_seconds(), 0) / 3600 if since is not None else None, times)
        rows.append(WipLot(lot=lot, steps_left=len(steps) - lot.step_seq + 1,
                           expected=now + timedelta(hours=max(hours, least)),
                           on_hold=lot.id in held, earliest=now + timedelta(hours=least)))
        step = steps[lot.step_seq - 1]
        stage = stages.setdefault(step.code, Stage(code=step.code, name=step.name,
                                                   seq=step.seq, name_zh=step.name_zh))
        stage.seq = min(stage.seq, step.seq)
        stage.lots += 1
        stage.quantity += lot.quantity
        stage.on_hold += 1 if lot.id in held else 0
        stage.running += 1 if lot.state == LotState.RUNNING else 0
    rows.sort(key=lambda r: (r.expected, r.lot.lot_no))
    return Wip(lots=rows, stages=sorted(stages.values(), key=lambda s: (s.seq, s.code)),
               times=times)


def held_lots(session: Session, lot_ids: Sequence[int], now: datetime) -> set[int]:
    """Of `lot_ids`, those with an open hold their customer sees now."""
    if not lot_ids:
        return set()
    return set(session.scalars(
        select(Hold.lot_id).where(Hold.lot_id.in_(lot_ids), Hold.status == HoldStatus.OPEN,
                                  Visibility.configured().clause(now)).distinct()))


def track_ins(session: Session, lot_ids: Sequence[int]) -> dict[int, datetime]:
    """The track-in time of each of the running lots `lot_ids` (their open step run)."""
    if not lot_ids:
        return {}
    return {lot_id: started for lot_id, started in session.execute(
        select(StepRun.lot_id, StepRun.started_at)
        .where(StepRun.lot_id.in_(lot_ids), StepRun.finished_at.is_(None)))}


def finished_lots(session: Session, customer_id: int, limit: int = FINISHED_LIMIT
                  ) -> list[Lot]:
    """The customer's completed lots not shipped yet, most recently finished first."""
    return list(session.scalars(
        select(Lot).where(Lot.customer_id == customer_id, Lot.state == LotState.COMPLETED)
        .options(joinedload(Lot.product))
        .order_by(Lot.arrived_at.desc(), Lot.id.desc()).limit(limit)))


def finished_count(session: Session, customer_id: int) -> int:
    """How many of the customer's lots are completed and not shipped yet."""
    return session.scalar(select(func.count()).select_from(Lot).where(
        Lot.customer_id == customer_id, Lot.state == LotState.COMPLETED)) or 0


def hold_query(customer_id: int, now: datetime) -> Select[Any]:
    """Holds on the customer's lots that the customer sees at `now` (the plant's policy,
    mes.portal.visibility), open ones first, then newest first."""
    return (select(Hold).join(Lot, Lot.id == Hold.lot_id)
            .where(Lot.customer_id == customer_id, Visibility.configured().clause(now))
            .options(joinedload(Hold.lot), joinedload(Hold.reason),
                     joinedload(Hold.scrap_reason))
            .order_by((Hold.status == HoldStatus.OPEN).desc(), Hold.id.desc()))


@dataclass
class YieldRow:
    product: str
    step: str
    lots: int
    tested: int
    good: int
    first_pass_good: int = 0

    @property
    def yield_pct(self) -> float | None:
        return 100.0 * self.good / self.tested if self.tested else None

    @property
    def first_pass_yield(self) -> float | None:
        return 100.0 * self.first_pass_good / self.tested if self.tested else None


def yields(session: Session, customer_id: int, since: datetime) -> list[YieldRow]:
    """Per product and test step, over the customer's lots: the test insertion of each lot
    at the step (mes.testfloor.figures) whose last run was imported since `since`, voided
    runs left out — lots, units tested, first-pass good and final good (yield = good /
    tested)."""
    # The lots tested in the window, from ix_test_run_customer_created.
    lot_ids = (select(TestRun.lot_id).where(TestRun.customer_id == customer_id,
                                            TestRun.created_at >= since,
                                            TestRun.voided_at.is_(None))
               .distinct())
    products = dict(session.execute(select(Product.id, Product.code)).all())
    found: dict[tuple[str, str], YieldRow] = {}
    for ins in figures.insertion_figures(session, lot_ids, since=since):
        key = (products[ins.product_id], ins.step)
        row = found.setdefault(key, YieldRow(product=key[0], step=key[1], lots=0, tested=0,
                                             good=0))
        row.lots += 1
        row.tested += ins.units
        row.first_pass_good += ins.first_pass_good
        row.good += ins.final_good
    # Steps in route order (FT-R before FT-H before FT-C), not alphabetical.
    order = dict(session.execute(select(RouteStep.code, func.min(RouteStep.seq))
                                 .group_by(RouteStep.code)).all())
    return sorted(found.values(), key=lambda r: (r.product, order.get(r.step, 0), r.step))


def notify_customer(session: Session, actor: Actor, hold: Hold) -> Hold:
    """QA notifies the lot's customer of `hold`: from now on the customer sees it (the
    portal, their API answers), whatever PORTAL_HOLD_POLICY; the hold keeps when and by
    whom, and the audit trail records it (`hold:notify_customer`). Open and released holds
    alike (a customer may be told of a hold after its disposition).

    Errors: 409 `already_notified` when the customer was notified of it before.
    """
    if hold.customer_notified_at is not None:
        raise Conflict(_l("The customer was already notified of hold %(id)s.", id=hold.id),
                       code=ErrorCode.ALREADY_NOTIFIED)
    hold.customer_notified_at = utcnow()
    hold.customer_notified_by = actor_name(actor)
    audit.record(session, actor=actor, code="hold:notify_customer", subject_type="hold",
                 subject_key=str(hold.id),
                 data={"lot": hold.lot.lot_no, "customer": hold.lot.customer.code,
                       "status": hold.status})
    events.hold_notified(session, hold)
    session.flush()
    return hold
