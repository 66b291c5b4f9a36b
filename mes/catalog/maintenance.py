"""Preventive maintenance of tools: plans by calendar (every N days) or by use (every N units
processed on the tool, counted from track-outs), the PMs recorded, and what is due.

A plan counts from its creation or its last recorded PM. The tool's row keeps when its first
calendar PM falls due and the unit count at which its first PM by use does (`pm_due_at`,
`pm_due_units`), so the floor's track-in reads whether a PM is due from the row it reads
anyway (`pm_due`), and looks at the plans only to name the one due. Every change is audited
in the caller's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from mes import audit
from mes.auth.actor import Actor, actor_name
from mes.catalog.models import Equipment, PmPlan, PmRecord
from mes.db import utcnow
from mes.errors import Conflict, ErrorCode, InvalidInput
from mes.floor.models import StepRun
from mes.vocabulary import EquipmentState

# The PM records a tool's page lists.
PM_HISTORY = 20


def plans_of(session: Session, tool: Equipment) -> list[PmPlan]:
    return list(session.scalars(select(PmPlan).where(PmPlan.equipment_id == tool.id)
                                .order_by(PmPlan.name)))


def refresh_due(session: Session, tool: Equipment) -> None:
    """Set the tool's `pm_due_at` and `pm_due_units` from its plans."""
    plans = plans_of(session, tool)
    dates = [p.due_at for p in plans if p.due_at is not None]
    units = [p.due_units for p in plans if p.due_units is not None]
    due_at = min(dates) if dates else None
    due_units = min(units) if units else None
    if tool.pm_due_at != due_at:
        tool.pm_due_at = due_at
    if tool.pm_due_units != due_units:
        tool.pm_due_units = due_units


def pm_due(tool: Equipment, now: datetime) -> bool:
    """Whether some PM of the tool is due, from its row alone (no query)."""
    return (tool.pm_due_at is not None and tool.pm_due_at <= now) or (
        tool.pm_due_units is not None and tool.units_processed >= tool.pm_due_units)


def _units_due_since(session: Session, tool: Equipment, plan: PmPlan) -> datetime:
    """When the track-out that brought a plan by use to its count finished."""
    assert plan.every_units is not None
    count = 0
    last = plan.since_at
    for finished, qty in session.execute(
            select(StepRun.finished_at, StepRun.qty_in).where(
                StepRun.equipment_id == tool.id, StepRun.finished_at.is_not(None),
                StepRun.finished_at >= plan.since_at)
            .order_by(StepRun.finished_at, StepRun.id)):
        count += qty
        last = finished or last
        if count >= plan.every_units:
            return last
    return last


def due_since(session: Session, tool: Equipment, plan: PmPlan, now: datetime
              ) -> datetime | None:
    """Since when the plan is due (None: not due)."""
    if plan.due_at is not None:
        return plan.due_at if plan.due_at <= now else None
    if plan.due_units is not None and tool.units_processed >= plan.due_units:
        return _units_due_since(session, tool, plan)
    return None


@dataclass(frozen=True)
class PlanStatus:
    """A plan as the pages show it: due date (calendar) or units left (use), and since
    when it is due."""

    plan: PmPlan
    tool: Equipment
    due_at: datetime | None
    units_left: int | None
    due_since: datetime | None
    # How much of the interval is used, 1.0 when due: the order of "due next".
    used: float

    @property
    def due(self) -> bool:
        return self.due_since is not None


def plan_status(session: Session, tool: Equipment, plan: PmPlan, now: datetime) -> PlanStatus:
    since = due_since(session, tool, plan, now)
    if plan.every_days is not None:
        assert plan.due_at is not None
        span = (plan.due_at - plan.since_at).total_seconds()
        used = (now - plan.since_at).total_seconds() / span if span else 1.0
        return PlanStatus(plan, tool, plan.due_at, None, since, used)
    assert plan.every_units is not None and plan.due_units is not None
    left = plan.due_units - tool.units_processed
    return PlanStatus(plan, tool, None, left, since,
                      (tool.units_processed - plan.since_units) / plan.every_units)


def _order(status: PlanStatus) -> tuple[bool, float, float, str, str]:
    # Due ones first, longest due first; then the most used up.
    since = status.due_since.timestamp() if status.due_since is not None else 0.0
    return (not status.due, since, -status.used, status.tool.code, status.plan.name)


def due_next(session: Session, tool: Equipment | None = None, *, now: datetime | None = None,
             limit: int | None = None) -> list[PlanStatus]:
    """Every plan (of `tool`, or of every tool), what is due first: the plans due, longest
    due first, then the others by how much of their interval is used."""
    now = now or utcnow()
    stmt = select(PmPlan, Equipment).join(Equipment, Equipment.id == PmPlan.equipment_id)
    if tool is not None:
        stmt = stmt.where(PmPlan.equipment_id == tool.id)
    found = sorted((plan_status(session, t, p, now) for p, t in session.execute(stmt)),
                   key=_order)
    return found[:limit] if limit is not None else found


def due_plans(session: Session, tool: Equipment, now: datetime) -> list[PlanStatus]:
    """The tool's plans that are due, longest due first (none when `pm_due` says so)."""
    if not pm_due(tool, now):
        return []
    return [s for s in due_next(session, tool, now=now) if s.due]


def history(session: Session, tool: Equipment, limit: int = PM_HISTORY) -> list[PmRecord]:
    """The tool's last PMs, the latest first."""
    return list(session.scalars(select(PmRecord).where(PmRecord.equipment_id == tool.id)
                                .order_by(PmRecord.done_at.desc(), PmRecord.id.desc())
                                .limit(limit)))


def create_plan(session: Session, actor: Actor, tool: Equipment,
                data: dict[str, object]) -> PmPlan:
    """Add a PM plan to the tool, due every `every_days` days or every `every_units` units
    processed on it (exactly one, positive: 422 otherwise), counted from now.

    409 duplicate when the tool has a plan of that name."""
    days, units = data.get("every_days"), data.get("every_units")
    if (days is None) == (units is None):
        message = _l("Give either a number of days or a number of units, not both.") \
            if days is not None else _l("Give a number of days or a number of units.")
        raise InvalidInput(message, fields={"every_days": [message], "every_units": [message]})
    name = str(data["name"])
    if session.scalar(select(PmPlan.id).where(PmPlan.equipment_id == tool.id,
                                              PmPlan.name == name)) is not None:
        raise Conflict(_l("%(equipment)s has a PM plan %(name)s already.",
                          equipment=tool.code, name=name), code=ErrorCode.DUPLICATE)
    now = utcnow()
    plan = PmPlan(equipment_id=tool.id, name=name, every_days=days, every_units=units,
                  since_at=now, since_units=tool.units_processed, created_at=now,
                  created_by=actor_name(actor))
    session.add(plan)
    session.flush()
    refresh_due(session, tool)
    audit.record(session, actor=actor, code="equipment:pm_plan", subject_type="equipment",
                 subject_key=tool.code, data={"name": name, "every_days": days,
                                              "every_units": units})
    return plan


def _plan_named(session: Session, tool: Equipment, name: str) -> PmPlan:
    plan = session.scalar(select(PmPlan).where(PmPlan.equipment_id == tool.id,
                                               PmPlan.name == name))
    if plan is None:
        message = _l("%(equipment)s has no PM plan %(name)s.", equipment=tool.code, name=name)
        raise InvalidInput(message, fields={"plan": [message]})
    return plan


def record_pm(session: Session, actor: Actor, tool: Equipment,
              data: dict[str, object]) -> PmRecord:
    """Record the PM of plan `plan` done now on the tool, with `notes`: the plan counts
    again from now (its due date or units restart), and the tool no longer refuses
    track-ins for it.

    The PM is done with the tool down for it: 409 equipment_not_down unless the tool is in
    scheduled down (entered with a downtime reason); it stays there until someone brings
    it up, so the time of the PM counts as scheduled down. 409 conflict when the plan's PM
    was recorded already since the tool went down (one PM per plan and stop). 422 on `plan`
    for a plan the tool does not have."""
    plan = _plan_named(session, tool, str(data["plan"]))
    if tool.state != EquipmentState.SCHEDULED_DOWN:
        raise Conflict(_l("Put %(equipment)s in scheduled down for the PM first (it is "
                          "%(state)s).", equipment=tool.code,
                          state=EquipmentState(tool.state).label),
                       code=ErrorCode.EQUIPMENT_NOT_DOWN)
    done = session.scalar(select(PmRecord.done_at).where(
        PmRecord.plan_id == plan.id, PmRecord.done_at >= tool.state_since)
        .order_by(PmRecord.done_at.desc()).limit(1))
    if done is not None:
        raise Conflict(_l("The PM %(plan)s of %(equipment)s was recorded already in this stop "
                          "(at %(at)s).", plan=plan.name, equipment=tool.code,
                          at=f"{done:%Y-%m-%d %H:%M}"), code=ErrorCode.CONFLICT)
    now = utcnow()
    record = PmRecord(plan_id=plan.id, equipment_id=tool.id, done_at=now,
                      done_by=actor_name(actor), notes=str(data.get("notes") or ""),
                      due_since=due_since(session, tool, plan, now),
                      units_since=tool.units_processed - plan.since_units)
    session.add(record)
    plan.since_at = now
    plan.since_units = tool.units_processed
    # Flushed before the plans are read again for the tool's due columns; the plan's
    # version counter makes a simultaneous record of the same plan lose (409 stale).
    session.flush()
    refresh_due(session, tool)
    audit.record(session, actor=actor, code="equipment:pm", subject_type="equipment",
                 subject_key=tool.code,
                 data={"plan": plan.name, "notes": record.notes, "id": record.id,
                       "due_since": record.due_since, "units_since": record.units_since})
    return record
