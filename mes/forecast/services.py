"""Completion forecasts: the duration distributions rebuilt from the history, and each open
or banked lot's P50 / P90 completion kept in `lot_forecast`, recomputed when the lot has
changed since (its row version), when the forecast has grown old, or on demand.

The floor's moves do not call anything here (a track-in or track-out costs no more for
forecasts): a moved lot's forecast becomes stale through its version counter and is
recomputed by the worker (`refresh_stale_forecasts`) or when it is read. Holds, rare,
recompute their lots' forecasts in their own transaction (mes.floor.lifecycle).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from blinker import Namespace
from flask import current_app, has_app_context
from sqlalchemy import Row, delete, func, literal_column, or_, select, update
from sqlalchemy.orm import Session

from mes.catalog.models import ReasonCode, Route, RouteStep
from mes.config import DEFAULTS
from mes.db import utcnow
from mes.floor import lifecycle
from mes.floor.models import Lot, StepRun
from mes.floor.services import present
from mes.forecast import bulk
from mes.forecast import distributions as d
from mes.forecast.models import ForecastDistribution, LotForecast
from mes.orders.models import OrderLine
from mes.quality.models import Hold
from mes.vocabulary import DistributionKind, DistributionSource, HoldStatus, LotState

# The lot states that have a forecast (banked lots: from their planned start).
OPEN_STATES: tuple[str, ...] = (LotState.QUEUED, LotState.RUNNING)
BANKED = LotState.BANKED
FORECAST_STATES: tuple[str, ...] = (*OPEN_STATES, BANKED)

HOUR = 3600.0

_signals = Namespace()
# Sent after forecasts are computed and stored, with the list of Forecasts as sender and
# keyword arguments `session`, `announced` (lot id -> the P90 last announced, for lots
# that had a stored forecast), `previous` (lot id -> the P50, P90 and expected quantity
# of the forecast stored before, for the same lots) and `now`: the order outlooks
# announce what changed.
forecasts_changed = _signals.signal("forecasts-changed")


def setting(key: str) -> Any:
    """A FORECAST_* configuration value (the default outside an application)."""
    return current_app.config[key] if has_app_context() else DEFAULTS[key]


def need_deadline(need: date) -> datetime:
    """The end of the need date in the plant's calendar (PLANT_TIMEZONE), in UTC."""
    name = current_app.config["PLANT_TIMEZONE"] if has_app_context() \
        else DEFAULTS["PLANT_TIMEZONE"]
    return datetime.combine(need + timedelta(days=1), time(0), ZoneInfo(name)).astimezone(UTC)


@dataclass(slots=True)
class Forecast:
    """A lot's forecast: completion times (None: no forecast, see `reason`), the quantity
    expected out of the remaining steps, how many steps remain, whether it is held."""

    lot_id: int
    lot_version: int
    p50_at: datetime | None
    p90_at: datetime | None
    expected_quantity: int | None
    remaining_steps: int
    on_hold: bool
    computed_at: datetime

    def row(self) -> dict[str, Any]:
        """The lot_forecast row (a new row's announced P90 is its first P90)."""
        return {"lot_id": self.lot_id, "lot_version": self.lot_version,
                "p50_at": self.p50_at, "p90_at": self.p90_at,
                "expected_quantity": self.expected_quantity,
                "remaining_steps": self.remaining_steps, "on_hold": self.on_hold,
                "computed_at": self.computed_at, "announced_p90_at": self.p90_at}


# --- distributions -----------------------------------------------------------------------

def _hours(start: datetime, end: datetime | None) -> float:
    if end is None:
        return 0.0
    return max(0.0, (end - start).total_seconds() / HOUR)


def _step_history(session: Session, since: datetime
                  ) -> tuple[dict[tuple[str, str], tuple[int, list[float], float | None]],
                             dict[str, tuple[int, list[float], float | None]]]:
    """Per (route code, step code) and per step code: how many runs finished since
    `since`, the points of their durations (arrival at the step to track-out, hours) and
    their yield (good out / in)."""
    durations: dict[tuple[str, str], list[float]] = defaultdict(list)
    qty: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    rows = session.execute(
        select(Route.code, StepRun.step_code, StepRun.arrived_at, StepRun.finished_at,
               StepRun.qty_in, StepRun.good_qty)
        .join(Route, Route.id == StepRun.route_id)
        .where(StepRun.finished_at >= since))
    for route, step, arrived, finished, qty_in, good in rows:
        durations[(route, step)].append(_hours(arrived, finished))
        q = qty[(route, step)]
        q[0] += qty_in or 0
        q[1] += good or 0
    own: dict[tuple[str, str], tuple[int, list[float], float | None]] = {}
    pooled_d: dict[str, list[float]] = defaultdict(list)
    pooled_q: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for key, values in durations.items():
        q = qty[key]
        own[key] = (len(values), d.summarise(values), q[1] / q[0] if q[0] else None)
        pooled_d[key[1]].extend(values)
        pooled_q[key[1]][0] += q[0]
        pooled_q[key[1]][1] += q[1]
    pooled = {step: (len(values), d.summarise(values),
                     pooled_q[step][1] / pooled_q[step][0] if pooled_q[step][0] else None)
              for step, values in pooled_d.items()}
    return own, pooled


_FRACTIONS = [(k + 0.5) / d.MAX_POINTS for k in range(d.MAX_POINTS)]


def _step_history_pg(session: Session, since: datetime
                     ) -> tuple[dict[tuple[str, str], tuple[int, list[float], float | None]],
                                dict[str, tuple[int, list[float], float | None]]]:
    """`_step_history` computed by PostgreSQL: the order statistics are taken by the
    database (percentile_disc), so millions of runs are not read into the process."""
    hours = func.extract("epoch", StepRun.finished_at - StepRun.arrived_at) / HOUR
    # The fractions as one literal array: a hundred bound values would be a hundred
    # parameters to compile and send with each query.
    fractions: Any = literal_column(
        "ARRAY[" + ", ".join(repr(f) for f in _FRACTIONS) + "]::float8[]")
    points = func.percentile_disc(fractions).within_group(hours)
    out: list[dict[Any, tuple[int, list[float], float | None]]] = []
    for keys in ((Route.code, StepRun.step_code), (StepRun.step_code,)):
        rows = session.execute(
            select(*keys, func.count(), points, func.sum(StepRun.qty_in),
                   func.sum(StepRun.good_qty))
            .join(Route, Route.id == StepRun.route_id)
            .where(StepRun.finished_at >= since).group_by(*keys))
        found: dict[Any, tuple[int, list[float], float | None]] = {}
        for row in rows:
            *key, n, values, qty_in, good = row
            values = sorted(max(0.0, float(v)) for v in values)
            if n <= d.MAX_POINTS:
                # Few runs: every duration, not percentiles that repeat them.
                values = _distinct_ranks(values, n)
            found[tuple(key) if len(key) > 1 else key[0]] = (
                n, values, float(good) / float(qty_in) if qty_in else None)
        out.append(found)
    return out[0], out[1]


def _distinct_ranks(values: list[float], n: int) -> list[float]:
    """The n order statistics among MAX_POINTS percentiles of n values (each value is the
    percentile of its share of the ranks)."""
    return [values[min(len(values) - 1, int((k + 0.5) * len(values) / n))] for k in range(n)]


def _hold_history(session: Session, since: datetime
                  ) -> tuple[dict[str, tuple[int, list[float]]], tuple[int, list[float]]]:
    """Per hold reason code, and over every reason: how many holds were released since
    `since` and the points of how long they lasted (hours)."""
    by_reason: dict[str, list[float]] = defaultdict(list)
    rows = session.execute(
        select(ReasonCode.code, Hold.placed_at, Hold.released_at)
        .join(ReasonCode, ReasonCode.id == Hold.reason_id)
        .where(Hold.status == HoldStatus.RELEASED, Hold.released_at >= since))
    everything: list[float] = []
    for reason, placed, released in rows:
        hours = _hours(placed, released)
        by_reason[reason].append(hours)
        everything.append(hours)
    return ({reason: (len(v), d.summarise(v)) for reason, v in by_reason.items()},
            (len(everything), d.summarise(everything)))


def build_distributions(session: Session, now: datetime) -> list[dict[str, Any]]:
    """Every step and hold-reason distribution from the history of the last
    FORECAST_WINDOW_DAYS (docs/forecasting.md: own history, else pooled, else the
    default), as forecast_distribution rows; nothing is written."""
    since = now - timedelta(days=setting("FORECAST_WINDOW_DAYS"))
    minimum = setting("FORECAST_MIN_SAMPLES")
    pg = session.get_bind().dialect.name == "postgresql"
    own, pooled = (_step_history_pg if pg else _step_history)(session, since)
    rows: list[dict[str, Any]] = []
    keys = session.execute(select(Route.code, RouteStep.code).join(
        Route, Route.id == RouteStep.route_id).distinct()).all()
    default_step = [float(setting("FORECAST_DEFAULT_STEP_HOURS"))]
    for route_code, step_code in sorted(set(keys)):
        n, points, yld = own.get((route_code, step_code), (0, [], None))
        source = DistributionSource.OWN
        if n < minimum:
            pn, ppoints, pyld = pooled.get(step_code, (0, [], None))
            if pn >= minimum:
                n, points, yld, source = pn, ppoints, pyld, DistributionSource.POOLED
            else:
                yld = yld if yld is not None else pyld
                n, points, source = 0, default_step, DistributionSource.DEFAULT
        rows.append({"kind": DistributionKind.STEP, "key": f"{route_code}/{step_code}",
                     "source": source, "samples": n, "points": points,
                     "expected_yield": yld, "computed_at": now})
    reasons, every = _hold_history(session, since)
    default_hold = [float(setting("FORECAST_DEFAULT_HOLD_HOURS"))]
    codes = session.scalars(select(ReasonCode.code).where(ReasonCode.kind == "hold")).all()
    for code in sorted(set(codes) | set(reasons)):
        n, points = reasons.get(code, (0, []))
        source = DistributionSource.OWN
        if n < minimum:
            if every[0] >= minimum:
                (n, points), source = every, DistributionSource.POOLED
            else:
                n, points, source = 0, default_hold, DistributionSource.DEFAULT
        rows.append({"kind": DistributionKind.HOLD, "key": code, "source": source,
                     "samples": n, "points": points, "expected_yield": None,
                     "computed_at": now})
    return rows


def refresh_distributions(session: Session, now: datetime | None = None) -> int:
    """Rebuild and store every distribution (`build_distributions`) and mark every
    forecast stale. Returns the number of distributions written."""
    now = now or utcnow()
    rows = build_distributions(session, now)
    session.execute(delete(ForecastDistribution))
    if rows:
        session.execute(ForecastDistribution.__table__.insert(), rows)
    # Every forecast was drawn from the old distributions: stale (lot versions start at 1).
    session.execute(update(LotForecast).values(lot_version=0))
    return len(rows)


def forecaster(session: Session, route_ids: Iterable[int], now: datetime) -> Forecaster:
    """A forecaster for reading: from the stored distributions, or, when they are missing
    or old (the worker has not run), from distributions built in memory (nothing is
    written by a read)."""
    if not _distributions_due(session, now):
        return Forecaster(session, route_ids)
    rows = [ForecastDistribution(**row) for row in build_distributions(session, now)]
    return Forecaster(session, route_ids, rows)


def compute(session: Session, lots: Sequence[LotFacts], now: datetime
            ) -> dict[int, Forecast]:
    """The forecasts of these lots computed now, not stored."""
    if not lots:
        return {}
    made = forecaster(session, {lot.route_id for lot in lots}, now)
    held = [lot.id for lot in lots if lot.open_holds]
    holds = open_holds(session, held) if held else {}
    return {lot.id: made.forecast(lot, holds.get(lot.id, ()), now) for lot in lots}


def _distributions_due(session: Session, now: datetime) -> bool:
    newest = session.scalar(select(func.max(ForecastDistribution.computed_at)))
    return newest is None or newest < now - timedelta(
        hours=setting("FORECAST_DISTRIBUTION_MAX_AGE_HOURS"))


# --- forecasting lots --------------------------------------------------------------------

@dataclass(frozen=True)
class LotFacts:
    """What a forecast reads of a lot."""

    id: int
    version: int
    route_id: int
    step_seq: int
    state: str
    quantity: int
    arrived_at: datetime
    open_holds: int
    planned_start: datetime | None = None


class Forecaster:
    """Forecasts lots from the stored distributions: one per refresh, keeping each route's
    suffix sums for every lot of the route."""

    def __init__(self, session: Session, route_ids: Iterable[int],
                 rows: Sequence[ForecastDistribution] | None = None) -> None:
        self.samples = int(setting("FORECAST_SAMPLES"))
        dists = {(row.kind, row.key): row for row in (
            rows if rows is not None else session.scalars(select(ForecastDistribution)))}
        default_step = [float(setting("FORECAST_DEFAULT_STEP_HOURS"))]
        default_hold = [float(setting("FORECAST_DEFAULT_HOLD_HOURS"))]
        self.holds: dict[str, list[float]] = {
            key: list(row.points) or default_hold for (kind, key), row in dists.items()
            if kind == DistributionKind.HOLD}
        self.default_hold = default_hold
        steps: dict[int, list[tuple[str, str]]] = defaultdict(list)
        for route_id, route_code, step_code in session.execute(
                select(Route.id, Route.code, RouteStep.code)
                .join(RouteStep, RouteStep.route_id == Route.id)
                .where(Route.id.in_(set(route_ids))).order_by(Route.id, RouteStep.seq)):
            steps[route_id].append((route_code, step_code))
        self.routes: dict[int, d.RouteForecaster] = {}
        for route_id, codes in steps.items():
            found = [dists.get((DistributionKind.STEP, f"{r}/{s}")) for r, s in codes]
            self.routes[route_id] = d.RouteForecaster(
                key=route_id,
                steps=[list(row.points) if row and row.points else default_step
                       for row in found],
                yields=[row.expected_yield if row and row.expected_yield is not None else 1.0
                        for row in found],
                samples=self.samples)

    def forecast(self, lot: LotFacts, holds: Sequence[tuple[str, datetime]],
                 now: datetime) -> Forecast:
        """The lot's forecast at `now`, its open holds given as (reason code, placed at)."""
        route = self.routes.get(lot.route_id)
        steps = len(route.steps) if route else 0
        if route is None or lot.state not in FORECAST_STATES:
            return Forecast(lot.id, lot.version, None, None, None, 0, bool(holds), now)
        if lot.state == BANKED:
            if lot.planned_start is None:
                return Forecast(lot.id, lot.version, None, None, None, steps, bool(holds), now)
            start = max(lot.planned_start, now)
            total = sorted(route.suffix(1))
            p50, p90 = d.percentiles(total)
            qty = round(lot.quantity * route.expected_yield(1))
            return Forecast(lot.id, lot.version, start + timedelta(hours=p50),
                            start + timedelta(hours=p90), qty, steps, bool(holds), now)
        seq = min(max(lot.step_seq, 1), steps)
        elapsed = _hours(lot.arrived_at, now)
        qty = round(lot.quantity * route.expected_yield(seq))
        if not holds:
            p50, p90 = route.percentiles(seq, elapsed)
            return Forecast(lot.id, lot.version, now + timedelta(hours=p50),
                            now + timedelta(hours=p90), qty, steps - seq + 1, False, now)
        ordered, shift = route.remaining(seq, elapsed)
        if holds:
            # The lot waits out its longest hold, then goes on: hold and route in series.
            waits: list[float] | None = None
            for reason, placed in holds:
                points = self.holds.get(reason, self.default_hold)
                drawn = d.hold_remaining(points, _hours(placed, now), self.samples, reason)
                waits = drawn if waits is None else [max(a, b) for a, b in zip(
                    waits, drawn, strict=True)]
            assert waits is not None
            ordered = sorted(w + r for w, r in zip(waits, ordered, strict=True))
        p50, p90 = d.percentiles(ordered, shift)
        return Forecast(lot.id, lot.version, now + timedelta(hours=p50),
                        now + timedelta(hours=p90), qty, steps - seq + 1, bool(holds), now)


def _facts_columns() -> list[Any]:
    return [Lot.id, Lot.version, Lot.route_id, Lot.step_seq, Lot.state, Lot.quantity,
            Lot.arrived_at, Lot.open_holds, Lot.planned_start]


def _facts(rows: Iterable[Row[Any]]) -> list[LotFacts]:
    return [LotFacts(*row) for row in rows]  # type: ignore[call-arg]  # the columns, in order


def open_holds(session: Session, lot_ids: Sequence[int]
               ) -> dict[int, list[tuple[str, datetime]]]:
    """The open holds of these lots: (reason code, placed at), oldest first."""
    found: dict[int, list[tuple[str, datetime]]] = defaultdict(list)
    for where in bulk.among(session, Hold.lot_id, lot_ids):
        for lot_id, code, placed in session.execute(
                select(Hold.lot_id, ReasonCode.code, Hold.placed_at)
                .join(ReasonCode, ReasonCode.id == Hold.reason_id)
                .where(Hold.status == HoldStatus.OPEN, where).order_by(Hold.id)):
            found[lot_id].append((code, placed))
    return found


def facts(session: Session, lot_ids: Sequence[int]) -> list[LotFacts]:
    """What a forecast reads of these lots."""
    found: list[LotFacts] = []
    for where in bulk.among(session, Lot.id, lot_ids):
        found.extend(_facts(session.execute(select(*_facts_columns()).where(where))))
    return found


def _write(session: Session, forecasts: Sequence[Forecast]) -> None:
    # The announced P90 of a stored forecast is changed by announcements only.
    bulk.upsert(session, LotForecast.__table__, [f.row() for f in forecasts], "lot_id",
                keep=("announced_p90_at",))


def forecast_lots(session: Session, lots: Sequence[LotFacts],
                  now: datetime | None = None,
                  previous: dict[int, tuple[Any, ...]] | None = None) -> list[Forecast]:
    """Compute and store the forecasts of `lots` (rebuilding the distributions first when
    they are missing or older than FORECAST_DISTRIBUTION_MAX_AGE_HOURS). `previous`: the
    stored forecasts of those lots as `_previous` gives them, when the caller has read
    them already."""
    now = now or utcnow()
    if not lots:
        return []
    if _distributions_due(session, now):
        refresh_distributions(session, now)
    forecaster = Forecaster(session, {lot.route_id for lot in lots})
    held = [lot.id for lot in lots if lot.open_holds]
    holds = open_holds(session, held) if held else {}
    forecasts = [forecaster.forecast(lot, holds.get(lot.id, ()), now) for lot in lots]
    if previous is None:
        previous = _previous(session, [f.lot_id for f in forecasts])
    announced = {lot_id: row[0] for lot_id, row in previous.items()}
    _write(session, forecasts)
    forecasts_changed.send(forecasts, session=session, announced=announced, now=now,
                           previous={lot_id: row[1:] for lot_id, row in previous.items()})
    return forecasts


def _stale(now: datetime) -> Any:
    return or_(LotForecast.lot_id.is_(None), LotForecast.lot_version != Lot.version,
               LotForecast.computed_at < now - timedelta(
                   minutes=setting("FORECAST_MAX_AGE_MINUTES")))


def refresh_stale_forecasts(session: Session, now: datetime | None = None,
                            limit: int | None = None) -> int:
    """Recompute the forecasts that are missing or stale (the lot changed since, or the
    forecast is older than FORECAST_MAX_AGE_MINUTES), at most `limit` lots, and drop
    those of lots no longer open or banked. For the worker; the caller commits. Returns
    the number of forecasts written."""
    now = now or utcnow()
    if _distributions_due(session, now):
        refresh_distributions(session, now)
    session.execute(delete(LotForecast).where(LotForecast.lot_id.in_(
        select(Lot.id).join(LotForecast, LotForecast.lot_id == Lot.id)
        .where(Lot.state.not_in(FORECAST_STATES)))))
    written = 0
    if limit is None and session.get_bind().dialect.name == "postgresql":
        written = _refresh_moving_in_database(session, now)
    # The lots' facts and, in the same rows, their stored forecasts (`_previous`).
    stmt = (select(*_facts_columns(), LotForecast.lot_id, *_PREVIOUS)
            .outerjoin(LotForecast, LotForecast.lot_id == Lot.id)
            .where(Lot.state.in_(FORECAST_STATES), _stale(now)).order_by(Lot.id))
    if limit is not None:
        stmt = stmt.limit(limit)
    width = len(_facts_columns())
    lots: list[LotFacts] = []
    previous: dict[int, tuple[Any, ...]] = {}
    for row in session.execute(stmt):
        lots.append(LotFacts(*row[:width]))
        if row[width] is not None:
            previous[row[0]] = tuple(row[width + 1:])
    changed = forecast_lots(session, lots, now, previous)
    return written + len(changed)


# `_refresh_moving_in_database`'s working tables (temporary, emptied at commit): the steps
# of the routes concerned (each step's duration points, the P50 / P90 of the remaining
# hours by points passed — index passed + 1, n + 1 when overdue — the expected yield
# from the step on and the steps left), and the stale moving lots with the points they
# have passed at their step and what was stored of them before.
_TABLES = ("""CREATE TEMPORARY TABLE IF NOT EXISTS _forecast_step (
    route_id bigint, seq integer, points float8[], q50 float8[], q90 float8[],
    expected_yield float8, remaining integer, PRIMARY KEY (route_id, seq))
    ON COMMIT DELETE ROWS""", """CREATE TEMPORARY TABLE IF NOT EXISTS _forecast_moving (
    lot_id bigint, version integer, quantity integer, route_id bigint, seq integer,
    elapsed float8, passed integer, had boolean, announced_p90_at timestamptz,
    old_p50 timestamptz, old_p90 timestamptz, old_quantity integer)
    ON COMMIT DELETE ROWS""")

# The moving lots (queued or running, no open hold, at a step of their route) whose
# forecast is stale: elapsed hours at the step (x.e), the points passed there
# (width_bucket is bisect_right).
_MOVING = """
INSERT INTO _forecast_moving
SELECT l.id, l.version, l.quantity, l.route_id, l.step_seq, x.e, width_bucket(x.e, s.points),
       f.lot_id IS NOT NULL, f.announced_p90_at, f.p50_at, f.p90_at, f.expected_quantity
FROM lot l
JOIN _forecast_step s ON s.route_id = l.route_id AND s.seq = l.step_seq
LEFT JOIN lot_forecast f ON f.lot_id = l.id
CROSS JOIN LATERAL (SELECT GREATEST(0, extract(epoch FROM %(now)s - l.arrived_at)::float8
                                       / 3600) AS e) AS x
WHERE l.state IN ('queued', 'running') AND l.open_holds = 0
  AND (f.lot_id IS NULL OR f.lot_version <> l.version OR f.computed_at < %(oldest)s)"""

# Their forecasts: the step's quantiles for the points passed, less the shift (the
# elapsed hours beyond the last point passed; none when overdue), stored; and those that
# may change what the order outlooks announce or count, returned.
_REFRESH_MOVING = """
WITH new AS (
    SELECT m.lot_id, m.version, s.remaining, m.had, m.announced_p90_at, m.old_p50,
           m.old_p90, m.old_quantity,
           %(now)s + make_interval(secs => 3600 * GREATEST(0, s.q50[m.passed + 1] - x.shift))
               AS p50_at,
           %(now)s + make_interval(secs => 3600 * GREATEST(0, s.q90[m.passed + 1] - x.shift))
               AS p90_at,
           round(m.quantity * s.expected_yield)::integer AS expected_quantity
    FROM _forecast_moving m
    JOIN _forecast_step s USING (route_id, seq)
    CROSS JOIN LATERAL (SELECT CASE WHEN m.passed = cardinality(s.points) THEN 0
                                    WHEN m.passed = 0 THEN m.elapsed
                                    ELSE m.elapsed - s.points[m.passed] END AS shift) AS x),
written AS (
    INSERT INTO lot_forecast (lot_id, lot_version, p50_at, p90_at, expected_quantity,
                              remaining_steps, on_hold, computed_at, announced_p90_at)
    SELECT lot_id, version, p50_at, p90_at, expected_quantity, remaining, false, %(now)s,
           p90_at FROM new
    ON CONFLICT (lot_id) DO UPDATE SET lot_version = excluded.lot_version,
        p50_at = excluded.p50_at, p90_at = excluded.p90_at,
        expected_quantity = excluded.expected_quantity,
        remaining_steps = excluded.remaining_steps, on_hold = excluded.on_hold,
        computed_at = excluded.computed_at
    RETURNING 1),
counted AS (SELECT count(*) AS n FROM written),
deadline (need_date, at) AS (
    SELECT * FROM unnest(%(needs)s::date[], %(deadlines)s::timestamptz[])),
told AS (
    -- A lot without a stored forecast matters only by its line (now counted from
    -- stored forecasts, all fresh): one such lot a line.
    SELECT DISTINCT ON (new.had, CASE WHEN new.had THEN new.lot_id ELSE a.line_id END)
           new.lot_id, new.version, new.p50_at, new.p90_at, new.expected_quantity,
           new.remaining, new.had, new.announced_p90_at, new.old_p50, new.old_p90,
           new.old_quantity
    FROM new
    LEFT JOIN order_allocation a ON a.lot_id = new.lot_id
    LEFT JOIN order_line ol ON ol.id = a.line_id
    LEFT JOIN deadline d ON d.need_date = ol.need_date
    LEFT JOIN order_line_outlook o ON o.line_id = a.line_id
    WHERE (a.line_id IS NOT NULL AND (
               o.line_id IS NULL OR NOT new.had
               OR (new.old_p50 <= d.at) IS DISTINCT FROM (new.p50_at <= d.at)
               OR (new.old_p90 <= d.at) IS DISTINCT FROM (new.p90_at <= d.at)
               OR new.old_quantity IS DISTINCT FROM new.expected_quantity))
       OR (new.announced_p90_at IS NOT NULL AND (
               (new.announced_p90_at <= d.at) IS DISTINCT FROM (new.p90_at <= d.at)
               OR abs(extract(epoch FROM new.p90_at - new.announced_p90_at))
                  >= %(threshold)s)))
SELECT counted.n, told.* FROM counted LEFT JOIN told ON true"""


def _refresh_moving_in_database(session: Session, now: datetime) -> int:
    """PostgreSQL: recompute and store the stale forecasts of the moving lots (queued or
    running, at a step of their route, no open hold: nearly all of a plant's) with the
    arithmetic of `Forecaster.forecast` done by the database, a few statements whatever
    the number of lots: the points each lot has passed at its step, the step's P50 / P90
    for them (computed here, once per step and points passed), less the shift.

    Only the lots whose new forecast may change what the order outlooks announce or
    count come back to Python, as Forecasts sent with `forecasts_changed` (a superset of
    them: moved against the announced P90 or across the need date, or counted
    differently by their line, or on a line with no status yet; the receivers check
    each exactly), and of the lots forecast for the first time one per order line (the
    line is recounted from the stored forecasts, which are all fresh by then). Returns
    the number of forecasts written; the other stale lots (held, banked) are left to the
    caller."""
    connection = session.connection().connection.driver_connection
    assert connection is not None
    route_ids = session.scalars(select(Lot.route_id).where(
        Lot.state.in_(OPEN_STATES), Lot.open_holds == 0).distinct()).all()
    if not route_ids:
        return 0
    made = Forecaster(session, route_ids)
    times = {"now": now,
             "oldest": now - timedelta(minutes=setting("FORECAST_MAX_AGE_MINUTES"))}
    with connection.cursor() as cursor:
        # The planner's costs for a plant's lots would have the statements compiled
        # (JIT): most of a second, for statements that run in less without.
        cursor.execute("SET LOCAL jit = off")
        for table in _TABLES:
            cursor.execute(table)
        cursor.execute("TRUNCATE _forecast_step, _forecast_moving")
        cursor.executemany(
            "INSERT INTO _forecast_step (route_id, seq, points, expected_yield, remaining) "
            "VALUES (%s, %s, %s::float8[], %s, %s)",
            [(route_id, seq, list(points), route.expected_yield(seq),
              len(route.steps) - seq + 1)
             for route_id, route in made.routes.items()
             for seq, points in enumerate(route.steps, start=1)])
        cursor.execute("ANALYZE _forecast_step")
        cursor.execute(_MOVING, times)
        if not cursor.rowcount:
            return 0
        # Statistics for the planner (hash joins for a plant's lots, not a loop per lot).
        cursor.execute("ANALYZE _forecast_moving (lot_id, route_id, seq)")
        # The quantiles of the points passed that some lot has passed.
        cursor.execute("SELECT DISTINCT route_id, seq, passed FROM _forecast_moving")
        wanted: dict[tuple[int, int], list[int]] = defaultdict(list)
        for route_id, seq, passed in cursor.fetchall():
            wanted[(route_id, seq)].append(passed)
        quantiles = []
        for (route_id, seq), counts in wanted.items():
            route = made.routes[route_id]
            q50: list[float | None] = [None] * (len(route.steps[seq - 1]) + 1)
            q90 = list(q50)
            for passed in counts:
                q50[passed], q90[passed] = route.passed_quantiles(seq, passed)
            quantiles.append((q50, q90, route_id, seq))
        cursor.executemany("UPDATE _forecast_step SET q50 = %s::float8[], "
                           "q90 = %s::float8[] WHERE route_id = %s AND seq = %s", quantiles)
        needs = session.scalars(select(OrderLine.need_date).distinct()).all()
        cursor.execute(_REFRESH_MOVING, {
            **times, "needs": list(needs),
            "deadlines": [need_deadline(need) for need in needs],
            "threshold": HOUR * setting("FORECAST_ETA_CHANGE_HOURS")})
        rows = cursor.fetchall()
    told = [row[1:] for row in rows if row[1] is not None]
    if told:
        forecasts = [Forecast(lot_id, version, _utc(p50), _utc(p90), quantity, remaining,
                              False, now)
                     for lot_id, version, p50, p90, quantity, remaining, *_ in told]
        # (announced P90, P50, P90, expected quantity) of the forecasts stored before.
        before = {row[0]: (_utc(row[7]), _utc(row[8]), _utc(row[9]), row[10])
                  for row in told if row[6]}
        forecasts_changed.send(
            forecasts, session=session, now=now,
            announced={lot_id: row[0] for lot_id, row in before.items()},
            previous={lot_id: row[1:] for lot_id, row in before.items()})
    return int(rows[0][0])


def _utc(at: datetime | None) -> datetime | None:
    return at.astimezone(UTC) if at is not None else None


def recompute_all(session: Session, now: datetime | None = None) -> int:
    """Rebuild the distributions and recompute every open and banked lot's forecast
    (`mes forecast recompute`). Returns the number of forecasts written."""
    now = now or utcnow()
    refresh_distributions(session, now)
    return refresh_stale_forecasts(session, now)


def refresh_lots(session: Session, lot_ids: Sequence[int], now: datetime | None = None
                 ) -> list[Forecast]:
    """Recompute the forecasts of these lots now (held or released: their holds changed).
    Lots no longer open lose theirs."""
    now = now or utcnow()
    if not lot_ids:
        return []
    session.flush()
    session.execute(delete(LotForecast).where(LotForecast.lot_id.in_(
        select(Lot.id).where(Lot.id.in_(lot_ids), Lot.state.not_in(FORECAST_STATES)))))
    stmt = select(*_facts_columns()).where(Lot.id.in_(lot_ids),
                                           Lot.state.in_(FORECAST_STATES)).order_by(Lot.id)
    changed = forecast_lots(session, _facts(session.execute(stmt)), now)
    return changed


def lot_forecast(session: Session, lot: Lot, now: datetime | None = None) -> Forecast:
    """The lot's stored forecast, or when it is missing or stale, computed now (and not
    stored: reads do not write; the worker stores it)."""
    now = now or utcnow()
    row = session.get(LotForecast, lot.id)
    fresh = (row is not None and row.lot_version == lot.version
             and row.computed_at >= now - timedelta(minutes=setting("FORECAST_MAX_AGE_MINUTES")))
    if row is not None and fresh:
        return Forecast(row.lot_id, row.lot_version, row.p50_at, row.p90_at,
                        row.expected_quantity, row.remaining_steps, row.on_hold,
                        row.computed_at)
    if lot.state not in FORECAST_STATES:
        return Forecast(lot.id, lot.version, None, None, None, 0, lot.open_holds > 0, now)
    return compute(session, facts(session, [lot.id]), now)[lot.id]


def lot_forecast_view(session: Session, lot: Lot, actor: Any = None) -> dict[str, Any]:
    """The lot's forecast as GET /lots/{lot_no}/forecast answers it. `on_hold` is what
    the reader may see (a customer sees a hold as the portal's hold policy says)."""
    found = lot_forecast(session, lot)
    reason = None
    if found.p50_at is None:
        reason = "no_planned_start" if lot.state == BANKED else "closed"
    return {"lot_no": lot.lot_no, "p50": found.p50_at, "p90": found.p90_at,
            "remaining_steps": found.remaining_steps,
            "on_hold": present(session, [lot], actor)[0].on_hold,
            "expected_quantity": found.expected_quantity,
            "computed_at": found.computed_at, "reason": reason}


_PREVIOUS = (LotForecast.announced_p90_at, LotForecast.p50_at, LotForecast.p90_at,
             LotForecast.expected_quantity)


def _previous(session: Session, lot_ids: Sequence[int]) -> dict[int, tuple[Any, ...]]:
    """Of these lots' stored forecasts: the P90 last announced, the P50, the P90 and the
    expected quantity."""
    found: dict[int, tuple[Any, ...]] = {}
    for where in bulk.among(session, LotForecast.lot_id, lot_ids):
        found.update({row[0]: tuple(row[1:]) for row in session.execute(
            select(LotForecast.lot_id, *_PREVIOUS).where(where))})
    return found


def stored(session: Session, lot_ids: Sequence[int]) -> dict[int, LotForecast]:
    """The stored forecasts of these lots (whatever their age)."""
    found: dict[int, LotForecast] = {}
    for where in bulk.among(session, LotForecast.lot_id, lot_ids):
        for row in session.scalars(select(LotForecast).where(where)):
            found[row.lot_id] = row
    return found



def after_holds_changed(lots: list[Lot], *, session: Session) -> None:
    """Recompute the forecasts of lots just held or released (a receiver of
    `lifecycle.lot_holds_changed`): holds are rare, and a hold moves a forecast most."""
    refresh_lots(session, [lot.id for lot in lots])


lifecycle.lot_holds_changed.connect(after_holds_changed, weak=False)
