"""What the process control report reads: per data collection plan, over a date range
(default the last 30 days), the capability of the subgroups entered in it (Cpk, Ppk), the
out-of-control events opened in it and how long the closed ones took to close.

A read model: no rule is decided here; capability comes from `mes.spc.services.capability`
(the same figures as the plan's page).
"""

from __future__ import annotations

import statistics
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mes.catalog.models import Equipment
from mes.floor.models import Lot
from mes.reports.services import Report, ReportQuery
from mes.spc import services
from mes.spc.models import ChartPoint, SpcEvent, SpcLimits, SpcSubgroup
from mes.vocabulary import SpcEventState

CAPABILITY_COLUMNS = ["plan", "step", "characteristic", "unit", "subgroups", "cpk", "ppk",
                      "events", "open_events", "closed_events", "mean_hours_to_close",
                      "median_hours_to_close"]


def _hours(seconds: float) -> float:
    return round(seconds / 3600.0, 2)


def capability_report(session: Session, q: ReportQuery) -> Report:
    """One row per plan (active ones, and retired ones with subgroups or events in the
    range; `q.step` narrows to one step): subgroups entered in [q.lo, q.hi), Cpk and Ppk
    over them (None without a specification limit or data), events opened in the range,
    those still open, those closed, and the mean and median hours from opening to closing
    of the closed ones. `extra`: the totals of events and the median over all closed
    events."""
    plans = list(session.scalars(services.plan_query({"step": q.step})))
    counts: dict[int, int] = {plan_id: n for plan_id, n in session.execute(
        select(SpcSubgroup.plan_id, func.count()).where(
            SpcSubgroup.at >= q.lo, SpcSubgroup.at < q.hi).group_by(SpcSubgroup.plan_id))}
    events: dict[int, list[SpcEvent]] = {}
    for event in session.scalars(select(SpcEvent).where(
            SpcEvent.opened_at >= q.lo, SpcEvent.opened_at < q.hi).order_by(SpcEvent.id)):
        events.setdefault(event.plan_id, []).append(event)
    rows: list[dict[str, Any]] = []
    all_closed: list[float] = []
    for plan in plans:
        mine = events.get(plan.id, [])
        if not plan.active and not counts.get(plan.id) and not mine:
            continue
        cap = services.capability(session, plan, since=q.lo, until=q.hi) \
            if counts.get(plan.id) else None
        closed = [(e.closed_at - e.opened_at).total_seconds() for e in mine
                  if e.state == SpcEventState.CLOSED and e.closed_at is not None]
        all_closed += closed
        rows.append({
            "plan": plan.code, "step": plan.step_code, "characteristic": plan.characteristic,
            "unit": plan.unit, "subgroups": counts.get(plan.id, 0),
            "cpk": cap.cpk if cap else None, "ppk": cap.ppk if cap else None,
            "events": len(mine),
            "open_events": sum(1 for e in mine if e.state == SpcEventState.OPEN),
            "closed_events": len(closed),
            "mean_hours_to_close": _hours(sum(closed) / len(closed)) if closed else None,
            "median_hours_to_close": _hours(statistics.median(closed)) if closed else None})
    return Report(CAPABILITY_COLUMNS, rows, {
        "events": sum(r["events"] for r in rows),
        "open_events": sum(r["open_events"] for r in rows),
        "median_hours_to_close": _hours(statistics.median(all_closed)) if all_closed else None})


def event_points(session: Session, event: SpcEvent) -> list[ChartPoint]:
    """The subgroups of an event's violations (every point of each pattern), oldest first,
    with lot number, tool code and the version of the limits that judged each."""
    if not event.subgroups:
        return []
    rows = session.execute(
        select(SpcSubgroup, Lot.lot_no, Equipment.code, SpcLimits.version)
        .join(Lot, Lot.id == SpcSubgroup.lot_id)
        .join(Equipment, Equipment.id == SpcSubgroup.equipment_id)
        .outerjoin(SpcLimits, SpcLimits.id == SpcSubgroup.limits_id)
        .where(SpcSubgroup.id.in_([int(i) for i in event.subgroups]))
        .order_by(SpcSubgroup.id)).all()
    return [ChartPoint(sg, lot_no, code, version) for sg, lot_no, code, version in rows]
