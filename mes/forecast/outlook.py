"""Order lines against their need dates: the quantity expected by the need date at P50 and
at P90 from the forecasts of the line's lots, the shortfalls and the line's status; and the
announcements when they change (lot.eta.changed, order.status.changed).

A line's projection at P50 (P90) is what its lots have already made (shipped or completed
lots: their quantity) plus the expected quantity of each open or banked lot whose P50 (P90)
completion falls by the end of the need date (the plant's calendar day). The line is on
track when not short at P90, at risk when short at P90 only, short when short at P50.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session, selectinload

from mes.auth.scope import scoped
from mes.catalog.models import Product
from mes.db import utcnow
from mes.events import publish
from mes.events.jobs import register_periodic
from mes.floor.models import Lot
from mes.forecast import bulk, services
from mes.forecast.models import LineOutlook, LotForecast
from mes.orders.models import OrderAllocation, OrderLine, PurchaseOrder
from mes.vocabulary import EventType, LineStatus, LotState

# Lots whose units are made: they count at their quantity, whatever the forecasts.
MADE_STATES = (LotState.COMPLETED, LotState.SHIPPED)


need_deadline = services.need_deadline


@dataclass
class LotOutlook:
    """An allocated lot as a line's outlook shows it."""

    lot_id: int
    lot_no: str
    state: str
    quantity: int
    expected_quantity: int | None
    p50: datetime | None
    p90: datetime | None
    on_hold: bool


@dataclass
class Outlook:
    """A line's projection against its need date."""

    line_id: int
    quantity: int
    need_date: date
    projected_p50: int = 0
    projected_p90: int = 0
    lots: list[LotOutlook] = field(default_factory=list)

    @property
    def short_p50(self) -> int:
        return max(0, self.quantity - self.projected_p50)

    @property
    def short_p90(self) -> int:
        return max(0, self.quantity - self.projected_p90)

    @property
    def status(self) -> str:
        if self.short_p50:
            return LineStatus.SHORT
        return LineStatus.AT_RISK if self.short_p90 else LineStatus.ON_TRACK

    def fields(self) -> dict[str, Any]:
        """The line fields GET /orders adds."""
        return {"projected_p50": self.projected_p50, "projected_p90": self.projected_p90,
                "short_p50": self.short_p50, "short_p90": self.short_p90,
                "status": self.status}

    @property
    def made(self) -> int:
        """Units of the line's lots already made (completed or shipped lots)."""
        return sum(lot.quantity for lot in self.lots if lot.state in MADE_STATES)

    def curve(self) -> list[tuple[datetime, int, int]]:
        """Cumulative expected quantity over time: (time, at P50, at P90) at each lot's
        completion, after what is already made (at the first point's time)."""
        made = self.made
        times = sorted({t for lot in self.lots for t in (lot.p50, lot.p90) if t is not None})
        points = []
        for t in times:
            p50 = made + sum(lot.expected_quantity or 0 for lot in self.lots
                             if lot.p50 is not None and lot.p50 <= t)
            p90 = made + sum(lot.expected_quantity or 0 for lot in self.lots
                             if lot.p90 is not None and lot.p90 <= t)
            points.append((t, p50, p90))
        return points


def orders_query(actor: Any) -> Select[Any]:
    """Orders with their lines and products, newest first (customers: their own), without
    their lots (the outlooks read them)."""
    return scoped(select(PurchaseOrder).options(
        selectinload(PurchaseOrder.lines).joinedload(OrderLine.product))
        .order_by(PurchaseOrder.id.desc()), PurchaseOrder.customer_id, actor)


def _forecasts_of(session: Session, lots: Sequence[Any], given: dict[int, services.Forecast],
                  now: datetime) -> dict[int, services.Forecast]:
    """The current forecast of each open or banked lot: given, else stored and fresh,
    else computed now (not stored: a read does not write)."""
    found = dict(given)
    wanted = [lot.id for lot in lots if lot.state in services.FORECAST_STATES
              and lot.id not in found]
    oldest = now - timedelta(minutes=services.setting("FORECAST_MAX_AGE_MINUTES"))
    versions = {lot.id: lot.version for lot in lots}
    missing = set(wanted)
    for where in bulk.among(session, LotForecast.lot_id, wanted):
        for row in session.execute(select(
                LotForecast.lot_id, LotForecast.lot_version, LotForecast.p50_at,
                LotForecast.p90_at, LotForecast.expected_quantity, LotForecast.remaining_steps,
                LotForecast.on_hold, LotForecast.computed_at).where(where)):
            if row.lot_version == versions[row.lot_id] and row.computed_at >= oldest:
                found[row.lot_id] = services.Forecast(*row)
                missing.discard(row.lot_id)
    if missing:
        found.update(services.compute(session, services.facts(session, sorted(missing)), now))
    return found


def line_outlooks(session: Session, line_ids: Iterable[int], now: datetime | None = None,
                  given: dict[int, services.Forecast] | None = None,
                  with_lots: bool = True) -> dict[int, Outlook]:
    """The outlook of each of these order lines, from its allocated lots' forecasts
    (`given` ones first, then the stored ones, computing those missing or stale).
    `with_lots=False`: the projections only (Outlook.lots left empty), for the statuses."""
    now = now or utcnow()
    if not with_lots:
        return _projections(session, line_ids, now, given or {})
    ids = sorted(set(line_ids))
    outlooks: dict[int, Outlook] = {}
    lots: list[Any] = []
    for where in bulk.among(session, OrderLine.id, ids):
        for line_id, quantity, need in session.execute(
                select(OrderLine.id, OrderLine.quantity, OrderLine.need_date).where(where)):
            outlooks[line_id] = Outlook(line_id, quantity, need)
    for where in bulk.among(session, OrderAllocation.line_id, ids):
        lots.extend(session.execute(
            select(OrderAllocation.line_id, Lot.id, Lot.lot_no, Lot.state, Lot.quantity,
                   Lot.version, Lot.open_holds)
            .join(Lot, Lot.id == OrderAllocation.lot_id).where(where)))
    lots.sort(key=lambda lot: lot.id)
    forecasts = _forecasts_of(session, lots, given or {}, now)
    deadlines = {o.need_date: need_deadline(o.need_date) for o in outlooks.values()}
    for lot in lots:
        outlook = outlooks[lot.line_id]
        deadline = deadlines[outlook.need_date]
        f = forecasts.get(lot.id)
        if lot.state in MADE_STATES:
            shown = LotOutlook(lot.id, lot.lot_no, lot.state, lot.quantity, lot.quantity,
                               None, None, lot.open_holds > 0)
            outlook.projected_p50 += lot.quantity
            outlook.projected_p90 += lot.quantity
        else:
            shown = LotOutlook(lot.id, lot.lot_no, lot.state, lot.quantity,
                               f.expected_quantity if f else None, f.p50_at if f else None,
                               f.p90_at if f else None, lot.open_holds > 0)
            expected = shown.expected_quantity or 0
            if shown.p50 is not None and shown.p50 <= deadline:
                outlook.projected_p50 += expected
            if shown.p90 is not None and shown.p90 <= deadline:
                outlook.projected_p90 += expected
        outlook.lots.append(shown)
    return outlooks


def _projections(session: Session, line_ids: Iterable[int] | None, now: datetime,
                 given: dict[int, services.Forecast]) -> dict[int, Outlook]:
    """`line_outlooks` without the lots' details: the same projections, read in one query
    with the lots' stored forecasts and summed with as little as possible per lot (a
    plant's refresh sums 100,000 lots). `line_ids` None: every line."""
    outlooks: dict[int, Outlook] = {}
    lines = select(OrderLine.id, OrderLine.quantity, OrderLine.need_date)
    lots = (select(OrderAllocation.line_id, Lot.id, Lot.state, Lot.quantity, Lot.version,
                   LotForecast.lot_version, LotForecast.p50_at, LotForecast.p90_at,
                   LotForecast.expected_quantity, LotForecast.computed_at)
            .join(Lot, Lot.id == OrderAllocation.lot_id)
            .outerjoin(LotForecast, LotForecast.lot_id == Lot.id))
    conn = session.connection()
    rows: list[Any] = []
    if line_ids is None:
        outlooks = {line_id: Outlook(line_id, quantity, need)
                    for line_id, quantity, need in conn.execute(lines)}
        rows.extend(conn.execute(lots).all())
    else:
        ids = sorted(set(line_ids))
        for where in bulk.among(session, OrderLine.id, ids):
            for line_id, quantity, need in conn.execute(lines.where(where)):
                outlooks[line_id] = Outlook(line_id, quantity, need)
        for where in bulk.among(session, OrderAllocation.line_id, ids):
            rows.extend(conn.execute(lots.where(where)).all())
    oldest = now - timedelta(minutes=services.setting("FORECAST_MAX_AGE_MINUTES"))
    deadlines = {o.need_date: need_deadline(o.need_date) for o in outlooks.values()}
    made_states = frozenset(MADE_STATES)
    forecast_states = frozenset(services.FORECAST_STATES)
    found: list[tuple[Outlook, Any, Any, Any]] = []
    missing: dict[int, Outlook] = {}
    for (line_id, lot_id, state, quantity, version, stored_version, p50, p90, expected,
         computed_at) in rows:
        outlook = outlooks[line_id]
        if state in made_states:
            outlook.projected_p50 += quantity
            outlook.projected_p90 += quantity
        elif state in forecast_states:
            f = given.get(lot_id)
            if f is not None:
                found.append((outlook, f.p50_at, f.p90_at, f.expected_quantity))
            elif stored_version == version and computed_at >= oldest:
                found.append((outlook, p50, p90, expected))
            else:
                missing[lot_id] = outlook
    if missing:
        computed = services.compute(session, services.facts(session, sorted(missing)), now)
        found.extend((missing[lot_id], f.p50_at, f.p90_at, f.expected_quantity)
                     for lot_id, f in computed.items())
    for outlook, p50, p90, expected in found:
        if not expected:
            continue
        deadline = deadlines[outlook.need_date]
        if p50 is not None and p50 <= deadline:
            outlook.projected_p50 += expected
        if p90 is not None and p90 <= deadline:
            outlook.projected_p90 += expected
    return outlooks


def refresh_line_outlooks(session: Session, line_ids: Iterable[int] | None = None,
                          now: datetime | None = None,
                          given: dict[int, services.Forecast] | None = None) -> int:
    """Recompute and store the status of these order lines (every line when None) and
    announce each change of status (order.status.changed) to the line's customer. For
    the order services after a change of a line's lots, quantity or need date, and for
    forecasts as they change. Returns the number of lines whose status changed."""
    now = now or utcnow()
    session.flush()
    outlooks = _projections(session, line_ids, now, given or {})
    if not outlooks:
        return 0
    before: dict[int, str] = {}
    for where in bulk.among(session, LineOutlook.line_id, list(outlooks)):
        before.update({line_id: status for line_id, status in session.execute(
            select(LineOutlook.line_id, LineOutlook.status).where(where))})
    bulk.upsert(session, LineOutlook.__table__, [
        {"line_id": o.line_id, "status": o.status, "projected_p50": o.projected_p50,
         "projected_p90": o.projected_p90, "computed_at": now} for o in outlooks.values()],
        "line_id")
    changed = [o for o in outlooks.values()
               if o.line_id in before and before[o.line_id] != o.status]
    if changed:
        _announce_lines(session, changed, before)
    return len(changed)


def _line_facts(session: Session, line_ids: Sequence[int]) -> dict[int, Any]:
    found: dict[int, Any] = {}
    for where in bulk.among(session, OrderLine.id, line_ids):
        found.update({row.id: row for row in session.execute(
            select(OrderLine.id, OrderLine.line_no, OrderLine.need_date,
                   OrderLine.commit_date, OrderLine.quantity, PurchaseOrder.po,
                   PurchaseOrder.customer_id, Product.code.label("product"))
            .join(PurchaseOrder, PurchaseOrder.id == OrderLine.order_id)
            .join(Product, Product.id == OrderLine.product_id).where(where))})
    return found


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def _announce_lines(session: Session, changed: Sequence[Outlook],
                    before: dict[int, str]) -> None:
    facts = _line_facts(session, [o.line_id for o in changed])
    for o in changed:
        line = facts[o.line_id]
        publish(session, EventType.ORDER_STATUS_CHANGED, customer_id=line.customer_id, data={
            "po": line.po, "line": line.line_no, "product": line.product,
            "quantity": line.quantity, "need_date": line.need_date.isoformat(),
            "commit_date": line.commit_date.isoformat() if line.commit_date else None,
            "status": o.status, "previous_status": before[o.line_id],
            "projected_p50": o.projected_p50, "projected_p90": o.projected_p90,
            "short_p50": o.short_p50, "short_p90": o.short_p90})


def _eta_moved(previous: datetime, new: datetime, deadline: datetime | None,
               threshold: timedelta | None = None) -> bool:
    """The rule of lot.eta.changed: the P90 crossed the line's need date, or moved by
    more than FORECAST_ETA_CHANGE_HOURS since it was last announced."""
    if deadline is not None and (previous <= deadline) != (new <= deadline):
        return True
    if threshold is None:
        threshold = timedelta(hours=services.setting("FORECAST_ETA_CHANGE_HOURS"))
    return abs(new - previous) > threshold


def _counted(f: tuple[Any, Any, Any], deadline: datetime) -> tuple[int, int]:
    """What a lot's forecast (P50, P90, expected quantity) adds to its line's projections
    at P50 and at P90."""
    p50, p90, expected = f
    expected = expected or 0
    return (expected if p50 is not None and p50 <= deadline else 0,
            expected if p90 is not None and p90 <= deadline else 0)


def _lines_to_refresh(session: Session, forecasts: Sequence[services.Forecast],
                      lines: dict[int, int], deadlines: dict[int, datetime],
                      previous: dict[int, tuple[Any, ...]] | None) -> set[int]:
    """The lines whose projections the new forecasts may change: those with a lot whose
    forecast adds something else to them than the one stored before (or that had none),
    and those with no stored status yet. A line's status is stored from its lots' stored
    forecasts, so the others' are already right."""
    if previous is None:
        return set(lines.values())
    dirty: set[int] = set()
    for f in forecasts:
        line_id = lines.get(f.lot_id)
        if line_id is None or line_id in dirty:
            continue
        old = previous.get(f.lot_id)
        deadline = deadlines.get(line_id)
        if old is None or deadline is None or _counted(old, deadline) != _counted(
                (f.p50_at, f.p90_at, f.expected_quantity), deadline):
            dirty.add(line_id)
    rest = sorted(set(lines.values()) - dirty)
    known: set[int] = set()
    for where in bulk.among(session, LineOutlook.line_id, rest):
        known.update(session.scalars(select(LineOutlook.line_id).where(where)))
    return dirty | (set(rest) - known)


def after_forecasts(forecasts: list[services.Forecast], *, session: Session,
                    announced: dict[int, datetime | None], now: datetime,
                    previous: dict[int, tuple[Any, ...]] | None = None) -> None:
    """Announce the lots whose P90 moved (lot.eta.changed) and recompute the status of
    their order lines whose projections may have changed (a receiver of
    `services.forecasts_changed`)."""
    lines: dict[int, int] = {}
    needs: dict[int, date] = {}
    conn = session.connection()
    for where in bulk.among(session, OrderAllocation.lot_id, [f.lot_id for f in forecasts]):
        for lot_id, line_id, need in conn.execute(
                select(OrderAllocation.lot_id, OrderAllocation.line_id, OrderLine.need_date)
                .join(OrderLine, OrderLine.id == OrderAllocation.line_id).where(where)):
            lines[lot_id] = line_id
            needs[line_id] = need
    by_date = {need: need_deadline(need) for need in set(needs.values())}
    deadlines = {line_id: by_date[need] for line_id, need in needs.items()}
    moved = []
    threshold = timedelta(hours=services.setting("FORECAST_ETA_CHANGE_HOURS"))
    for f in forecasts:
        last = announced.get(f.lot_id)
        if last is None or f.p90_at is None:
            continue
        on_line = lines.get(f.lot_id)
        if _eta_moved(last, f.p90_at, deadlines.get(on_line) if on_line else None,
                      threshold):
            moved.append((f, last))
    if moved:
        facts = _line_facts(session, sorted({lines[f.lot_id] for f, _ in moved
                                             if f.lot_id in lines}))
        _announce_lots(session, moved, lines, facts)
    refresh = _lines_to_refresh(session, forecasts, lines, deadlines, previous)
    if refresh:
        refresh_line_outlooks(session, refresh, now, {f.lot_id: f for f in forecasts})


def _announce_lots(session: Session, moved: Sequence[tuple[services.Forecast, datetime]],
                   lines: dict[int, int], facts: dict[int, Any]) -> None:
    lots = {row.id: row for row in session.execute(
        select(Lot.id, Lot.lot_no, Lot.customer_id, Product.code.label("product"))
        .join(Product, Product.id == Lot.product_id)
        .where(Lot.id.in_([f.lot_id for f, _ in moved])))}
    by_p90: dict[datetime, list[int]] = defaultdict(list)
    for f, previous in moved:
        lot = lots[f.lot_id]
        line = facts.get(lines.get(f.lot_id, -1))
        publish(session, EventType.LOT_ETA_CHANGED, customer_id=lot.customer_id,
                lot_id=lot.id, data={
                    "lot_no": lot.lot_no, "product": lot.product,
                    "po": line.po if line else None, "line": line.line_no if line else None,
                    "need_date": line.need_date.isoformat() if line else None,
                    "p50": _iso(f.p50_at), "p90": _iso(f.p90_at),
                    "previous_p90": _iso(previous)})
        assert f.p90_at is not None
        by_p90[f.p90_at].append(f.lot_id)
    for p90, lot_ids in by_p90.items():
        session.execute(update(LotForecast).where(LotForecast.lot_id.in_(lot_ids))
                        .values(announced_p90_at=p90))


services.forecasts_changed.connect(after_forecasts, weak=False)

# The worker recomputes the forecasts of lots that moved (the floor's moves leave them
# stale rather than pay for them) and those grown old, every minute.
register_periodic("forecasts", every=60, run=services.refresh_stale_forecasts)
