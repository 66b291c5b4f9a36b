"""The reports: every figure is computed by one SQL statement per report (grouped and
summed by the database over an index range), for the pages, the JSON/CSV API and the
customer portal alike.

Conventions (docs/decisions.md, "Reports"):
- A range is whole UTC days: `from` 00:00 up to the end of `to` (inclusive).
- Durations are whole seconds (each time truncated to the second before subtracting), so
  SQLite and PostgreSQL give identical figures; hours and percentages are rounded to two
  decimals at the end.
- Percentiles are PostgreSQL's `percentile_cont` (linear interpolation between the two
  nearest ranks); on other databases the two ranks are picked with window functions and
  interpolated the same way, with the same floating-point arithmetic.
- A customer user's query is bound to their customer: filters only narrow it further.
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    ARRAY,
    BigInteger,
    Date,
    Float,
    Integer,
    and_,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    text,
    type_coerce,
    union_all,
)
from sqlalchemy.dialects.postgresql import array as pg_array
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from mes.auth.actor import Actor
from mes.auth.scope import scope_customer
from mes.catalog.models import (
    Customer,
    Equipment,
    EquipmentStateChange,
    Product,
    ReasonCode,
    RouteStep,
)
from mes.db import utcnow
from mes.errors import Forbidden, InvalidInput
from mes.floor.models import Lot, LotReject, StepRun
from mes.floor.services import late_clause, plant_date
from mes.portal.visibility import customer_sees, open_hold_seen
from mes.quality.models import Hold
from mes.shipping.models import Shipment, ShipmentLot
from mes.testfloor import figures
from mes.testfloor.models import TestRun
from mes.vocabulary import (
    ACTIVE_LOT_STATES,
    Disposition,
    EquipmentState,
    HoldStatus,
    LotState,
    ReasonKind,
    StepKind,
)

DEFAULT_DAYS = 30
MAX_DAYS = 731
PERCENTILES = (0.5, 0.9)
# Open hold age buckets: (label, upper bound in days); the last has none.
HOLD_BUCKETS: tuple[tuple[str, int | None], ...] = (
    ("<1d", 1), ("1-3d", 3), ("3-7d", 7), ("7-30d", 30), (">30d", None))
# WIP aging at the step: the same idea, shorter buckets (field name, upper bound in days).
WIP_AGES: tuple[tuple[str, int | None], ...] = (
    ("age_lt_1d", 1), ("age_1_3d", 3), ("age_3_7d", 7), ("age_gt_7d", None))
WIP_GROUPS = ("step", "product", "customer")
PERIODS = ("day", "week")
CLOSED_DONE = (LotState.COMPLETED, LotState.SHIPPED)
EPOCH_DAY = date(1970, 1, 1)
# Report dates: a range and its default start stay inside what every database and
# Python's datetime can hold.
MIN_DATE, MAX_DATE = date(1970, 1, 1), date(9998, 12, 31)


@dataclass(frozen=True)
class ReportQuery:
    """A report's date range (whole days, `end` inclusive) and filters. `customer_id` is
    the scope of a customer user, applied on top of every filter."""

    start: date
    end: date
    product: str | None = None
    customer: str | None = None
    step: str | None = None
    customer_id: int | None = None
    by: str = "step"
    period: str = "week"
    kind: str | None = None
    limit: int = 500
    # The time zone whose days the range and the day and week buckets are: UTC for the
    # API (its contract), the plant's (PLANT_TIMEZONE) on the pages.
    zone: str = "UTC"

    @property
    def lo(self) -> datetime:
        return datetime.combine(self.start, time(), ZoneInfo(self.zone)).astimezone(UTC)

    @property
    def hi(self) -> datetime:
        return datetime.combine(self.end + timedelta(days=1), time(),
                                ZoneInfo(self.zone)).astimezone(UTC)

    @property
    def offset(self) -> int:
        """The zone's offset from UTC in seconds at the range's start: the day and week
        buckets are shifted by it (exact for a zone without daylight saving time, as the
        default Asia/Shanghai)."""
        shift = self.lo.astimezone(ZoneInfo(self.zone)).utcoffset()
        return int(shift.total_seconds()) if shift else 0


@dataclass
class Report:
    """Rows in column order, plus figures over all rows (`extra`, JSON only)."""

    columns: list[str]
    rows: list[dict[str, Any]]
    extra: dict[str, Any] = field(default_factory=dict)


def make_query(actor: Actor, args: dict[str, Any], *, today: date | None = None,
               zone: str = "UTC") -> ReportQuery:
    """The query of `args` (loaded by schemas.ReportArgs) for `actor`, its days those of
    `zone`. Without dates: the last 30 days up to today (in `zone`). InvalidInput when
    `from` is after `to` or the range is longer than two years."""
    for name in ("from", "to"):
        given = args.get(name)
        if given is not None and not MIN_DATE <= given <= MAX_DATE:
            raise InvalidInput(_l("The date is out of range."), fields={
                name: [_l("Must be between %(first)s and %(last)s.", first=MIN_DATE.isoformat(),
                          last=MAX_DATE.isoformat())]})
    end = args.get("to") or today or utcnow().astimezone(ZoneInfo(zone)).date()
    start = args.get("from") or end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise InvalidInput(_l("The range starts after it ends."),
                           fields={"from": [_l("Must be on or before to.")]})
    if (end - start).days >= MAX_DAYS:
        raise InvalidInput(_l("The range is too long."),
                           fields={"from": [_l("At most %(days)s days.", days=MAX_DAYS)]})
    return ReportQuery(start=start, end=end, product=args.get("product"),
                       customer=args.get("customer"), step=args.get("step"),
                       customer_id=scope_customer(actor), by=args.get("by") or "step",
                       period=args.get("period") or "week", kind=args.get("kind"),
                       limit=args.get("limit") or 500, zone=zone)


# --- SQL helpers -----------------------------------------------------------------------

def _pg(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _epoch(session: Session, col: Any) -> ColumnElement[int]:
    """Seconds since 1970 of a UTC time, truncated to the second."""
    if _pg(session):
        # date_part is double precision (extract is numeric, several times slower to sum
        # and sort); a microsecond fraction never rounds up to the next second at today's
        # epoch values.
        return cast(func.floor(func.date_part("epoch", col)), BigInteger)
    return cast(func.strftime("%s", col), Integer)


def _day(session: Session, col: Any, offset: int = 0) -> ColumnElement[int]:
    """The day of a time as days since 1970-01-01, in UTC or `offset` seconds ahead of it
    (a query's zone): grouping by a number is much cheaper than by a formatted date
    (day_start turns it back into a date)."""
    return (_epoch(session, col) + offset) // 86400


def _week(session: Session, col: Any, offset: int = 0) -> ColumnElement[int]:
    """The ISO week (Monday to Sunday, UTC or `offset` seconds ahead) of a time as a
    number: 1970-01-01 was a Thursday, so days + 3 count from a Monday (week_start turns
    it back into a date)."""
    return (_day(session, col, offset) + 3) // 7


def day_start(day: int) -> str:
    return (EPOCH_DAY + timedelta(days=int(day))).isoformat()


def week_start(week: int) -> str:
    return (EPOCH_DAY + timedelta(days=int(week) * 7 - 3)).isoformat()


def _date(session: Session, col: Any) -> ColumnElement[Any]:
    """The UTC date of a time, comparable with a Date column."""
    if _pg(session):
        return cast(func.timezone("UTC", col), Date)
    return func.date(col)


def iso_week(monday: str) -> str:
    """'2026-W03' for the Monday '2026-01-12'."""
    year, week, _ = date.fromisoformat(monday).isocalendar()
    return f"{year}-W{week:02d}"


def _lot_conditions(q: ReportQuery) -> list[ColumnElement[bool]]:
    """Conditions on `Lot` for the product and customer filters and the customer scope.
    An unknown product or customer code matches nothing."""
    conds: list[ColumnElement[bool]] = []
    if q.product:
        conds.append(Lot.product_id == select(Product.id).where(
            Product.code == q.product).scalar_subquery())
    if q.customer:
        conds.append(Lot.customer_id == select(Customer.id).where(
            Customer.code == q.customer).scalar_subquery())
    if q.customer_id is not None:
        conds.append(Lot.customer_id == q.customer_id)
    return conds


def _touched(q: ReportQuery) -> ColumnElement[bool]:
    """The lot was updated since the range began: true of every lot with a track-out,
    reject, hold release or shipment in the range, because each of those updates the lot
    row and `updated_at` is set on every update. A redundant condition that lets a range
    report join the few lots of the range (an index range on lot.updated_at) instead of
    all lots; tests/reports/test_invariant.py holds the services to it."""
    return Lot.updated_at >= q.lo


def _of_lots(lot_id: Any, q: ReportQuery) -> list[ColumnElement[bool]]:
    """`lot_id` belongs to a lot passing the lot filters (nothing when there are none);
    the events it is used for are in the range, so their lots were touched in it."""
    conds = _lot_conditions(q)
    return [lot_id.in_(select(Lot.id).where(_touched(q), *conds))] if conds else []


def _of_any_lots(lot_id: Any, q: ReportQuery) -> list[ColumnElement[bool]]:
    """As `_of_lots`, for events that need not update the lot row (test runs)."""
    conds = _lot_conditions(q)
    return [lot_id.in_(select(Lot.id).where(*conds))] if conds else []


def _codes(session: Session, model: Any) -> dict[int, str]:
    return dict(session.execute(select(model.id, model.code)).all())


def _hours(seconds: float | None) -> float | None:
    return None if seconds is None else round(float(seconds) / 3600, 2)


def _pct(part: float, whole: float) -> float | None:
    return round(100.0 * part / whole, 2) if whole else None


def _lerp(lo: float, hi: float, pct: float) -> float:
    # PostgreSQL's float8_lerp, so that both paths round the same way.
    return lo + (hi - lo) * pct


def _portable_percentiles(session: Session, base: Any, key: str, value: str,
                          ps: Sequence[float] = PERCENTILES) -> dict[Any, dict[float, float]]:
    """percentile_cont of `value` per `key` of the subquery `base`, for any database with
    window functions: only the (at most two) ranks around each percentile's position come
    back from the database, then they are interpolated as PostgreSQL does."""
    ranked = select(
        base.c[key].label("k"), base.c[value].label("v"),
        (func.row_number().over(partition_by=base.c[key], order_by=base.c[value]) - 1)
        .label("r"),
        func.count().over(partition_by=base.c[key]).label("n"),
    ).subquery()
    # Rank r (from 0) is needed when it is the floor or the ceiling of p * (n - 1). The
    # position is computed in double precision on both sides, as percentile_cont does.
    near = [(ranked.c.r > literal(p, Float) * (ranked.c.n - 1) - 1)
            & (ranked.c.r < literal(p, Float) * (ranked.c.n - 1) + 1) for p in ps]
    picked: dict[Any, dict[int, float]] = defaultdict(dict)
    counts: dict[Any, int] = {}
    for k, v, r, n in session.execute(
            select(ranked.c.k, ranked.c.v, ranked.c.r, ranked.c.n).where(or_(*near))):
        picked[k][r] = float(v)
        counts[k] = n
    out: dict[Any, dict[float, float]] = {}
    for k, ranks in picked.items():
        out[k] = {}
        for p in ps:
            pos = p * (counts[k] - 1)
            first, second = math.floor(pos), math.ceil(pos)
            out[k][p] = _lerp(ranks[first], ranks[second], pos - first)
    return out


def distribution(session: Session, base: Any, key: str, values: Sequence[str], *,
                 portable: bool | None = None, least: str | None = None
                 ) -> dict[Any, dict[str, Any]]:
    """Per `key` of the subquery `base`: the count, the smallest `least` (when given), and
    for each column of `values` its sum and its percentiles (PERCENTILES).
    percentile_cont on PostgreSQL; the window function method elsewhere (or when
    `portable`)."""
    if portable is None:
        portable = not _pg(session)
    cols: list[Any] = [base.c[key], func.count(),
                       func.min(base.c[least]) if least else literal(None),
                       *(func.sum(base.c[v]) for v in values)]
    if not portable:
        # One sort per column for all its percentiles, in memory.
        session.execute(text("SET LOCAL work_mem = '64MB'"))
        wanted = cast(pg_array([literal(p, Float) for p in PERCENTILES]), ARRAY(Float))
        cols += [func.percentile_cont(wanted).within_group(base.c[v]) for v in values]
    out: dict[Any, dict[str, Any]] = {}
    for row in session.execute(select(*cols).group_by(base.c[key])):
        k, n, smallest, sums = row[0], row[1], row[2], row[3:3 + len(values)]
        entry: dict[str, Any] = {"n": n, "least": smallest}
        for i, v in enumerate(values):
            entry[f"{v}_sum"] = int(sums[i])  # PostgreSQL sums bigints as numeric
            if not portable:
                entry[v] = {p: float(x) for p, x in zip(PERCENTILES, row[3 + len(values) + i],
                                                        strict=True)}
        out[k] = entry
    if portable:
        for v in values:
            for k, pcts in _portable_percentiles(session, base, key, v).items():
                out[k][v] = pcts
    return out


# --- WIP -------------------------------------------------------------------------------

def wip(session: Session, q: ReportQuery, *, now: datetime | None = None) -> Report:
    """Work in progress now (queued and running lots), per step (or product, customer):
    lots, quantity, lots on hold, running, late (`floor.is_late`), the oldest arrival
    at the step and the lots by time at the step. The date range does not apply: WIP is
    a snapshot."""
    now = now or utcnow()
    by = q.by if q.by in WIP_GROUPS else "step"
    key: Any = {"step": Lot.step_code, "product": Product.code, "customer": Customer.code}[by]
    ages = []
    low = None
    for name, days in WIP_AGES:
        high = now - timedelta(days=days) if days is not None else None
        cond = [Lot.arrived_at > high] if high is not None else []
        if low is not None:
            cond.append(Lot.arrived_at <= low)
        ages.append(func.sum(case((_all(cond), 1), else_=0)).label(name))
        low = high
    stmt = (select(key.label("key"), func.min(Lot.step_seq).label("seq"),
                   func.count().label("lots"), func.sum(Lot.quantity).label("quantity"),
                   func.sum(case((_held(q, now), 1), else_=0)).label("on_hold"),
                   func.sum(case((Lot.state == LotState.RUNNING, 1), else_=0)).label("running"),
                   func.sum(case((late_clause(plant_date(now)), 1), else_=0)).label("late"),
                   func.min(Lot.arrived_at).label("oldest"), *ages)
            .where(Lot.state.in_(ACTIVE_LOT_STATES), *_lot_conditions(q))
            .group_by(key))
    if by == "product":
        stmt = stmt.join(Product, Product.id == Lot.product_id)
    elif by == "customer":
        stmt = stmt.join(Customer, Customer.id == Lot.customer_id)
    if q.step:
        stmt = stmt.where(Lot.step_code == q.step)
    rows = []
    for r in sorted(session.execute(stmt),
                    key=lambda r: (r.seq, r.key) if by == "step" else (r.key,)):
        rows.append({by: r.key, "lots": r.lots, "quantity": int(r.quantity),
                     "on_hold": int(r.on_hold), "running": int(r.running),
                     "late": int(r.late), "oldest_at_step": r.oldest.isoformat(),
                     "oldest_age_h": _hours((now - r.oldest).total_seconds()),
                     **{name: int(getattr(r, name)) for name, _d in WIP_AGES}})
    columns = [by, "lots", "quantity", "on_hold", "running", "late", "oldest_at_step",
               "oldest_age_h", *(name for name, _d in WIP_AGES)]
    return Report(columns, rows)


def _seen(q: ReportQuery, now: datetime | None = None) -> list[ColumnElement[bool]]:
    """For a customer user, only the holds the plant's policy lets them see
    (mes.portal.visibility); nothing for plant users."""
    return [customer_sees(now)] if q.customer_id is not None else []


def _held(q: ReportQuery, now: datetime) -> ColumnElement[bool]:
    """The lot is on hold, as the report's reader sees it: a customer user counts only the
    holds the plant's policy lets them see."""
    if q.customer_id is None:
        return Lot.open_holds > 0
    return (Lot.open_holds > 0) & open_hold_seen(Lot.id, now)


def _all(conds: list[ColumnElement[bool]]) -> ColumnElement[bool]:
    out = conds[0]
    for c in conds[1:]:
        out = out & c
    return out


def late_lots(session: Session, q: ReportQuery, *, now: datetime | None = None) -> Report:
    """Late lots (`floor.is_late`: in WIP, due before the plant's date), the most overdue
    first, at most `q.limit`."""
    now = now or utcnow()
    today = plant_date(now)
    stmt = (select(Lot.lot_no, Product.code.label("product"),
                   Customer.code.label("customer"), Lot.step_code, Lot.state, Lot.quantity,
                   Lot.due_date, Lot.arrived_at, _held(q, now).label("held"))
            .join(Product, Product.id == Lot.product_id)
            .join(Customer, Customer.id == Lot.customer_id)
            .where(late_clause(today), *_lot_conditions(q))
            .order_by(Lot.due_date, Lot.id).limit(q.limit))
    if q.step:
        stmt = stmt.where(Lot.step_code == q.step)
    rows = [{"lot_no": r.lot_no, "product": r.product, "customer": r.customer,
             "step": r.step_code, "state": r.state, "quantity": r.quantity,
             "due_date": r.due_date.isoformat(), "days_late": (today - r.due_date).days,
             "on_hold": bool(r.held),
             "at_step_h": _hours((now - r.arrived_at).total_seconds())}
            for r in session.execute(stmt)]
    return Report(["lot_no", "product", "customer", "step", "state", "quantity", "due_date",
                   "days_late", "on_hold", "at_step_h"], rows)


# --- yield and rejects -----------------------------------------------------------------

def yield_report(session: Session, q: ReportQuery) -> Report:
    """Per step and product, over the track-outs in the range: quantity in, good,
    rejected and yield (good / in, percent). At test steps, first-pass and final yield
    over the units of the lots' test insertions whose last run was imported in the range
    (a retest adds good parts, never units)."""
    # A finished run always has its good and reject quantities (only open runs lack them).
    stmt = (select(StepRun.step_code, Lot.product_id, func.min(StepRun.step_seq),
                   func.count(), func.sum(StepRun.qty_in),
                   type_coerce(func.sum(StepRun.good_qty), Integer),
                   type_coerce(func.sum(StepRun.reject_qty), Integer))
            .join(Lot, Lot.id == StepRun.lot_id)
            .where(StepRun.finished_at >= q.lo, StepRun.finished_at < q.hi, _touched(q),
                   *_lot_conditions(q))
            .group_by(StepRun.step_code, Lot.product_id))
    # At test steps: the insertions (mes.testfloor.figures) whose last run was imported in
    # the range, summed per step and product: a retest adds good parts, never units.
    tested_lots = (select(TestRun.lot_id)
                   .where(TestRun.created_at >= q.lo, TestRun.created_at < q.hi,
                          TestRun.voided_at.is_(None), *_of_any_lots(TestRun.lot_id, q))
                   .distinct())
    if q.step:
        stmt = stmt.where(StepRun.step_code == q.step)
        tested_lots = tested_lots.where(TestRun.step_code == q.step)
    tested: dict[tuple[str, int], tuple[int, int, int]] = {}
    for ins in figures.insertion_figures(session, tested_lots, since=q.lo, until=q.hi,
                                         step=q.step or None):
        sums = tested.get((ins.step, ins.product_id), (0, 0, 0))
        tested[(ins.step, ins.product_id)] = (sums[0] + ins.units,
                                              sums[1] + ins.first_pass_good,
                                              sums[2] + ins.final_good)
    products = _codes(session, Product)
    rows = []
    for step, pid, _seq, runs, qty_in, good, rejected in sorted(
            session.execute(stmt), key=lambda r: (r[2], r[0], products[r[1]])):
        test = tested.get((step, pid))
        units, fp, final = test if test is not None else (None, 0, 0)
        rows.append({"step": step, "product": products[pid], "runs": runs,
                     "quantity_in": int(qty_in), "good": int(good),
                     "rejected": int(rejected), "yield": _pct(good, qty_in),
                     "tested_units": int(units) if units is not None else None,
                     "first_pass_yield": _pct(fp, units) if units else None,
                     "final_yield": _pct(final, units) if units else None})
    return Report(["step", "product", "runs", "quantity_in", "good", "rejected", "yield",
                   "tested_units", "first_pass_yield", "final_yield"], rows)


def yield_trend(session: Session, q: ReportQuery) -> Report:
    """Yield per product and period (UTC day or ISO week) over the track-outs in the
    range, optionally at one step."""
    return _trend(session, q, final_test=False)


def final_test_yield_trend(session: Session, q: ReportQuery) -> Report:
    """Final-test yield per product and period (UTC day or ISO week): good / in over the
    track-outs in the range at the last test step of each lot's route (the quantities of
    several steps are not added up: that weighs every step by the units it saw and is no
    yield). With a step filter, the yield at that step instead. Lots whose route has no
    test step do not count. `extra["measure"]` says which: final_test or step."""
    report = _trend(session, q, final_test=not q.step)
    report.extra["measure"] = "step" if q.step else "final_test"
    return report


def _trend(session: Session, q: ReportQuery, *, final_test: bool) -> Report:
    period = (_day if q.period == "day" else _week)(session, StepRun.finished_at, q.offset)
    inner = (select(period.label("period"), Lot.product_id.label("product_id"),
                    StepRun.qty_in, StepRun.good_qty)
             .join(Lot, Lot.id == StepRun.lot_id)
             .where(StepRun.finished_at >= q.lo, StepRun.finished_at < q.hi, _touched(q),
                    *_lot_conditions(q)))
    if q.step:
        inner = inner.where(StepRun.step_code == q.step)
    if final_test:
        last_test = (select(RouteStep.route_id, func.max(RouteStep.seq).label("seq"))
                     .where(RouteStep.kind == StepKind.TEST).group_by(RouteStep.route_id)
                     .subquery())
        inner = inner.join(last_test, (last_test.c.route_id == StepRun.route_id)
                           & (last_test.c.seq == StepRun.step_seq))
    sub = inner.subquery()
    stmt = (select(sub.c.period, sub.c.product_id, func.sum(sub.c.qty_in),
                   func.sum(sub.c.good_qty))
            .group_by(sub.c.period, sub.c.product_id))
    products = _codes(session, Product)
    rows = []
    for number, pid, qty_in, good in sorted(session.execute(stmt),
                                            key=lambda r: (products[r[1]], r[0])):
        start = day_start(number) if q.period == "day" else week_start(number)
        rows.append({"product": products[pid],
                     "period": start if q.period == "day" else iso_week(start),
                     "period_start": start, "quantity_in": int(qty_in), "good": int(good),
                     "yield": _pct(good, qty_in)})
    return Report(["product", "period", "period_start", "quantity_in", "good", "yield"], rows)


def rejects(session: Session, q: ReportQuery) -> Report:
    """The reject and scrap Pareto: quantity per reason code and step, largest first.
    Rejects are those of track-outs in the range; scrap is what scrap dispositions
    released in the range took out."""
    rej = (select(LotReject.reason_id, LotReject.step_code, func.sum(LotReject.qty))
           .where(LotReject.at >= q.lo, LotReject.at < q.hi, *_of_lots(LotReject.lot_id, q))
           .group_by(LotReject.reason_id, LotReject.step_code))
    # Scrap dispositions always name their quantity (and scrap_qty > 0 below).
    scrap = (select(Hold.scrap_reason_id, Hold.step_code,
                    type_coerce(func.sum(Hold.scrap_qty), Integer))
             .where(Hold.released_at >= q.lo, Hold.released_at < q.hi,
                    Hold.disposition == Disposition.SCRAP, Hold.scrap_qty > 0,
                    *_of_lots(Hold.lot_id, q))
             .group_by(Hold.scrap_reason_id, Hold.step_code))
    if q.step:
        rej = rej.where(LotReject.step_code == q.step)
        scrap = scrap.where(Hold.step_code == q.step)
    reasons = _codes(session, ReasonCode)
    categories = dict(session.execute(
        select(ReasonCode.id, ReasonCode.customer_category)).all())
    found: list[tuple[str | None, str | None, int, str, str | None]] = [
        (reasons.get(rid) if rid is not None else None, step, int(qty), kind,
         categories.get(rid) if rid is not None else None)
        for kind, stmt in ((ReasonKind.REJECT, rej), (ReasonKind.SCRAP, scrap))
        for rid, step, qty in session.execute(stmt)]
    if q.customer_id is not None:
        # A customer reads the Pareto by customer category only: never the plant's reason
        # codes, nor the step (docs/decisions.md, "Customer portal").
        merged: dict[tuple[str | None, str], int] = defaultdict(int)
        for _reason, _step, qty, kind, category in found:
            merged[(category, kind)] += qty
        found = [(category, None, qty, kind, category)
                 for (category, kind), qty in merged.items()]
    found.sort(key=lambda r: (-r[2], r[0] or "", r[1] or "", r[3]))
    total = sum(r[2] for r in found)
    rows, running = [], 0
    for reason, step, qty, kind, category in found:
        running += qty
        rows.append({"reason": reason, "step": step, "category": category, "quantity": qty,
                     "kind": kind, "share": _pct(qty, total),
                     "cumulative": _pct(running, total)})
    return Report(["reason", "step", "category", "quantity", "kind", "share", "cumulative"],
                  rows, {"total": total})


# --- cycle time ------------------------------------------------------------------------

def cycle_time(session: Session, q: ReportQuery, *, portable: bool | None = None) -> Report:
    """Per step, over the track-outs in the range: lot passes, and the median, 90th
    percentile and mean of the queue time (arrival at the step to track-in) and the
    process time (track-in to track-out), in hours."""
    base = (select(StepRun.step_code.label("step"), StepRun.step_seq.label("seq"),
                   (_epoch(session, StepRun.started_at) - _epoch(session, StepRun.arrived_at))
                   .label("queue"),
                   (_epoch(session, StepRun.finished_at) - _epoch(session, StepRun.started_at))
                   .label("process"))
            .where(StepRun.finished_at >= q.lo, StepRun.finished_at < q.hi,
                   *_of_lots(StepRun.lot_id, q)))
    if q.step:
        base = base.where(StepRun.step_code == q.step)
    dist = distribution(session, base.subquery(), "step", ("queue", "process"),
                        portable=portable, least="seq")
    rows = []
    for step in sorted(dist, key=lambda s: (dist[s]["least"], s)):
        d = dist[step]
        rows.append({"step": step, "lots": d["n"],
                     "queue_median_h": _hours(d["queue"][0.5]),
                     "queue_p90_h": _hours(d["queue"][0.9]),
                     "process_median_h": _hours(d["process"][0.5]),
                     "process_p90_h": _hours(d["process"][0.9]),
                     "queue_mean_h": _hours(d["queue_sum"] / d["n"]),
                     "process_mean_h": _hours(d["process_sum"] / d["n"])})
    return Report(["step", "lots", "queue_median_h", "queue_p90_h", "process_median_h",
                   "process_p90_h", "queue_mean_h", "process_mean_h"], rows)


def lot_cycle_time(session: Session, q: ReportQuery, *,
                   portable: bool | None = None) -> Report:
    """Per product, over the lots that finished their route in the range (completed,
    since shipped or not): the time from receipt (or split) to the last track-out, in
    hours: lots, median, 90th percentile, mean."""
    base = (select(Lot.product_id.label("product_id"),
                   (_epoch(session, Lot.arrived_at) - _epoch(session, Lot.created_at))
                   .label("cycle"))
            .where(Lot.state.in_(CLOSED_DONE), Lot.arrived_at >= q.lo, Lot.arrived_at < q.hi,
                   *_lot_conditions(q)))
    dist = distribution(session, base.subquery(), "product_id", ("cycle",),
                        portable=portable)
    products = _codes(session, Product)
    rows = []
    for pid in sorted(dist, key=lambda p: products[p]):
        d = dist[pid]
        rows.append({"product": products[pid], "lots": d["n"],
                     "cycle_median_h": _hours(d["cycle"][0.5]),
                     "cycle_p90_h": _hours(d["cycle"][0.9]),
                     "cycle_mean_h": _hours(d["cycle_sum"] / d["n"])})
    return Report(["product", "lots", "cycle_median_h", "cycle_p90_h", "cycle_mean_h"], rows)


# --- holds -----------------------------------------------------------------------------

def holds(session: Session, q: ReportQuery, *, now: datetime | None = None) -> Report:
    """Open holds now, per age bucket, reason and source. The date range does not apply
    (open holds are a snapshot); product, customer and step (where held) filter."""
    now = now or utcnow()
    whens = [(Hold.placed_at > now - timedelta(days=days), label)
             for label, days in HOLD_BUCKETS if days is not None]
    inner = (select(case(*whens, else_=HOLD_BUCKETS[-1][0]).label("bucket"),
                    Hold.reason_id, Hold.source, Hold.placed_at)
             .where(Hold.status == HoldStatus.OPEN, *_of_lots(Hold.lot_id, q),
                    *_seen(q, now)))
    if q.step:
        inner = inner.where(Hold.step_code == q.step)
    sub = inner.subquery()
    stmt = (select(sub.c.bucket, sub.c.reason_id, sub.c.source, func.count(),
                   func.min(sub.c.placed_at))
            .group_by(sub.c.bucket, sub.c.reason_id, sub.c.source))
    reasons = _codes(session, ReasonCode)
    order = {label: i for i, (label, _d) in enumerate(HOLD_BUCKETS)}
    found = sorted(session.execute(stmt),
                   key=lambda r: (order[r[0]], reasons[r[1]], r[2]))
    rows = [{"bucket": bucket, "reason": reasons[rid], "source": source, "count": n,
             "oldest_placed_at": _aware(oldest).isoformat()}
            for bucket, rid, source, n, oldest in found]
    return Report(["bucket", "reason", "source", "count", "oldest_placed_at"], rows,
                  {"open": sum(r["count"] for r in rows)})


def _aware(value: Any) -> datetime:
    """A time read through a subquery column (SQLite hands back its text)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def dispositions(session: Session, q: ReportQuery) -> Report:
    """Holds released in the range, per ISO week and disposition: how many, and the mean
    time from placing to disposition in hours; `extra` has the mean over all of them."""
    week = _week(session, Hold.released_at, q.offset)
    inner = (select(week.label("week"), Hold.disposition,
                    (_epoch(session, Hold.released_at) - _epoch(session, Hold.placed_at))
                    .label("seconds"))
             .where(Hold.status == HoldStatus.RELEASED, Hold.released_at >= q.lo,
                    Hold.released_at < q.hi, *_of_lots(Hold.lot_id, q), *_seen(q)))
    if q.step:
        inner = inner.where(Hold.step_code == q.step)
    sub = inner.subquery()
    found = [(week, disp, n, int(total)) for week, disp, n, total in session.execute(
        select(sub.c.week, sub.c.disposition, func.count(), func.sum(sub.c.seconds))
        .group_by(sub.c.week, sub.c.disposition))]
    rows = [{"week": iso_week(week_start(week)), "week_start": week_start(week),
             "disposition": disp, "count": n, "mean_hours_to_disposition": _hours(total / n)}
            for week, disp, n, total in sorted(found, key=lambda r: (r[0], r[1]))]
    count = sum(r[2] for r in found)
    seconds = sum(r[3] for r in found)
    return Report(["week", "week_start", "disposition", "count", "mean_hours_to_disposition"],
                  rows, {"released": count,
                         "mean_hours_to_disposition": _hours(seconds / count) if count
                         else None})


# --- equipment -------------------------------------------------------------------------

def equipment(session: Session, q: ReportQuery, *, now: datetime | None = None) -> Report:
    """Hours in each E10 state per tool (or per kind, `by="kind"`) over the range, up to
    now: from the state change records, the state at the start of the range being the last
    change before it. Utilisation = productive / (all recorded time - non-scheduled), in
    percent; lots processed = track-outs on the tool in the range. Time before a tool
    existed counts in no state. Forbidden for customer users (plant capacity is not theirs
    to see)."""
    if q.customer_id is not None:
        raise Forbidden(_l("Equipment states are for plant users."))
    now = now or utcnow()
    lo, end = q.lo, min(q.hi, now)
    esc = EquipmentStateChange
    tools = select(Equipment.id, Equipment.code, Equipment.kind).order_by(Equipment.kind,
                                                                           Equipment.code)
    if q.kind:
        tools = tools.where(Equipment.kind == q.kind)
    seconds: dict[int, dict[str, int]] = defaultdict(
        lambda: dict.fromkeys(EquipmentState.codes(), 0))
    if end > lo:
        lo_s, end_s = int(lo.timestamp()), int(end.timestamp())
        before = (select(esc.id).where(esc.equipment_id == Equipment.id, esc.at < lo)
                  .order_by(esc.at.desc(), esc.id.desc()).limit(1)
                  .correlate(Equipment).scalar_subquery())
        first = select(esc.equipment_id, esc.to_state,
                       cast(literal(lo_s), BigInteger).label("t"), esc.id).where(
            esc.id.in_(select(before).select_from(Equipment)))
        within = select(esc.equipment_id, esc.to_state, _epoch(session, esc.at).label("t"),
                        esc.id).where(esc.at >= lo, esc.at < end)
        changes = union_all(first, within).subquery()
        nxt = func.lead(changes.c.t).over(partition_by=changes.c.equipment_id,
                                          order_by=(changes.c.t, changes.c.id))
        seg = select(changes.c.equipment_id, changes.c.to_state,
                     (func.coalesce(nxt, end_s) - changes.c.t).label("d")).subquery()
        for tool_id, state, total in session.execute(
                select(seg.c.equipment_id, seg.c.to_state, func.sum(seg.c.d))
                .group_by(seg.c.equipment_id, seg.c.to_state)):
            seconds[tool_id][state] = int(total)
    # Per tool, the track-outs of the range: how many, units in, good units, and the ideal
    # seconds of the units in at their step's ideal rate (steps without one add none).
    ideal = case((RouteStep.ideal_uph > 0, StepRun.qty_in * 3600.0 / RouteStep.ideal_uph))
    processed: dict[int, _Work] = {
        tid: _Work(int(n), int(units or 0), int(good or 0),
                   float(secs) if secs is not None else None)
        for tid, n, units, good, secs in session.execute(
            select(StepRun.equipment_id, func.count(), func.sum(StepRun.qty_in),
                   func.sum(StepRun.good_qty), func.sum(ideal))
            .join(RouteStep, and_(RouteStep.route_id == StepRun.route_id,
                                  RouteStep.seq == StepRun.step_seq))
            .where(StepRun.finished_at >= q.lo, StepRun.finished_at < q.hi)
            .group_by(StepRun.equipment_id))}
    per_tool = [(code, kind, seconds[tid], processed.get(tid, _Work()))
                for tid, code, kind in session.execute(tools)]
    if q.by == "kind":
        kinds: dict[str, tuple[int, dict[str, int], _Work]] = {}
        for _code, kind, secs, work in per_tool:
            n, acc, done = kinds.get(kind, (0, dict.fromkeys(EquipmentState.codes(), 0),
                                            _Work()))
            kinds[kind] = (n + 1, {s: acc[s] + secs[s] for s in EquipmentState.codes()},
                           done + work)
        rows = [{"kind": kind, "tools": n, **_state_hours(secs), "lots_processed": done.lots,
                 **_oee(secs, done)}
                for kind, (n, secs, done) in kinds.items()]
        return Report(["kind", "tools", *_STATE_COLUMNS, "lots_processed", *_OEE_COLUMNS],
                      rows)
    rows = [{"equipment": code, "kind": kind, **_state_hours(secs),
             "lots_processed": work.lots, **_oee(secs, work)}
            for code, kind, secs, work in per_tool]
    return Report(["equipment", "kind", *_STATE_COLUMNS, "lots_processed", *_OEE_COLUMNS],
                  rows)


_STATE_COLUMNS = [*(f"{s}_h" for s in EquipmentState.codes()), "total_h", "utilisation"]
_OEE_COLUMNS = ["availability", "performance", "quality", "oee"]


@dataclass(frozen=True)
class _Work:
    """What a tool (or a kind of tools) tracked out in a range: lots, units in, good units
    and the ideal seconds of those units (None when no step of them has an ideal rate)."""

    lots: int = 0
    units: int = 0
    good: int = 0
    ideal_s: float | None = None

    def __add__(self, other: _Work) -> _Work:
        ideal = None if self.ideal_s is None and other.ideal_s is None else \
            (self.ideal_s or 0.0) + (other.ideal_s or 0.0)
        return _Work(self.lots + other.lots, self.units + other.units,
                     self.good + other.good, ideal)


def _oee(secs: dict[str, int], work: _Work) -> dict[str, float | None]:
    """OEE in percent and its factors (docs/decisions.md, "OEE"): availability = productive
    time / planned time (all recorded time - non-scheduled - scheduled down); performance =
    ideal time of the units tracked out / productive time; quality = good / units tracked
    out; OEE = their product. A factor without a denominator (or performance without an
    ideal rate) is None, and so is OEE then."""
    productive = secs[EquipmentState.PRODUCTIVE]
    planned = sum(secs.values()) - secs[EquipmentState.NON_SCHEDULED] \
        - secs[EquipmentState.SCHEDULED_DOWN]
    availability = productive / planned if planned > 0 else None
    performance = work.ideal_s / productive \
        if work.ideal_s is not None and productive > 0 else None
    quality = work.good / work.units if work.units else None
    oee = availability * performance * quality \
        if availability is not None and performance is not None and quality is not None \
        else None

    def pct(value: float | None) -> float | None:
        return None if value is None else round(100.0 * value, 2)

    return {"availability": pct(availability), "performance": pct(performance),
            "quality": pct(quality), "oee": pct(oee)}


def _state_hours(secs: dict[str, int]) -> dict[str, Any]:
    total = sum(secs.values())
    return {**{f"{s}_h": _hours(secs[s]) for s in EquipmentState.codes()},
            "total_h": _hours(total),
            "utilisation": _pct(secs[EquipmentState.PRODUCTIVE],
                                total - secs[EquipmentState.NON_SCHEDULED])}


# --- delivery --------------------------------------------------------------------------

def delivery(session: Session, q: ReportQuery) -> Report:
    """Shipments in the range per customer and ISO week: shipments, lots, quantity, and
    the lots shipped on or before their due date (on_time), after it (late) or without
    one; on_time_pct = on_time / (on_time + late)."""
    day = _date(session, Shipment.shipped_at)
    week = _week(session, Shipment.shipped_at, q.offset)
    inner = (select(Shipment.customer_id, week.label("week"),
                    Shipment.id.label("sid"), ShipmentLot.quantity,
                    case((Lot.due_date.is_(None), None), (day <= Lot.due_date, 1), else_=0)
                    .label("on_time"))
             .join(ShipmentLot, ShipmentLot.shipment_id == Shipment.id)
             .join(Lot, Lot.id == ShipmentLot.lot_id)
             .where(Shipment.shipped_at >= q.lo, Shipment.shipped_at < q.hi, _touched(q),
                    *_lot_conditions(q)))
    sub = inner.subquery()
    stmt = (select(sub.c.customer_id, sub.c.week, func.count(sub.c.sid.distinct()),
                   func.count(), func.sum(sub.c.quantity), func.sum(sub.c.on_time),
                   func.count(sub.c.on_time))
            .group_by(sub.c.customer_id, sub.c.week))
    customers = _codes(session, Customer)
    rows = []
    for cid, week, shipments, lots, qty, on_time, dated in sorted(
            session.execute(stmt), key=lambda r: (customers[r[0]], r[1])):
        monday = week_start(week)
        on_time = int(on_time or 0)
        rows.append({"customer": customers[cid], "week": iso_week(monday),
                     "week_start": monday, "shipments": shipments, "lots": lots,
                     "quantity": int(qty), "on_time": on_time, "late": dated - on_time,
                     "no_due_date": lots - dated, "on_time_pct": _pct(on_time, dated)})
    return Report(["customer", "week", "week_start", "shipments", "lots", "quantity",
                   "on_time", "late", "no_due_date", "on_time_pct"], rows)


# --- CSV -------------------------------------------------------------------------------

def to_csv(report: Report) -> str:
    """The rows as CSV with a header line; empty cells for None, true/false for booleans."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(report.columns)
    for row in report.rows:
        writer.writerow(["" if row.get(c) is None else
                         ("true" if row[c] else "false") if isinstance(row[c], bool)
                         else row[c] for c in report.columns])
    return out.getvalue()
