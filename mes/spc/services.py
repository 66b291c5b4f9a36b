"""Process control rules: data collection plans, entering a subgroup (specification flags,
the Western Electric rules on both charts), freezing versioned control limits, the
reaction plan (an out-of-control event stops the tool and holds the lots it made since its
last in-control subgroup) and closing an event with its cause and action.

Every function works in the caller's transaction, writes its audit record there and raises
before changing anything when a rule refuses. Importing this module subscribes the
track-out check (a sample due: 409 `sample_due`) to the floor's lot lifecycle.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, exists, func, or_, select
from sqlalchemy.orm import Session, joinedload

from mes import audit
from mes.auth.actor import SYSTEM, Actor, actor_name
from mes.catalog import services as catalog
from mes.catalog.models import Equipment, Product, RouteStep
from mes.db import utcnow
from mes.errors import Conflict, ErrorCode, InvalidInput, NotFound
from mes.floor import lifecycle
from mes.floor.genealogy import descendants
from mes.floor.models import Lot, StepRun
from mes.quality import services as quality
from mes.spc import stats
from mes.spc.models import (
    Capability,
    ChartPoint,
    Judged,
    PlanSummary,
    SpcEvent,
    SpcLimits,
    SpcPlan,
    SpcSubgroup,
)
from mes.vocabulary import (
    AVAILABLE_EQUIPMENT_STATES,
    EquipmentKind,
    EquipmentState,
    HoldSource,
    LotState,
    SpcChart,
    SpcEventState,
)

# The hold reason of the reaction plan's holds, when the plant has it (else its first one).
SPC_REASON = "HOLD-SPC"
# The points a plan's summary shows by default (the last ones).
SUMMARY_POINTS = 125
IN_PLANT = (LotState.QUEUED, LotState.RUNNING, LotState.COMPLETED)


def _invalid(field: str, message: Any, code: ErrorCode | None = None) -> InvalidInput:
    return InvalidInput(message, code=code, fields={field: [message]})


# --- plans -----------------------------------------------------------------------------

def get_plan(session: Session, code: str) -> SpcPlan:
    """The plan `code` (NotFound otherwise)."""
    plan = session.scalar(select(SpcPlan).where(SpcPlan.code == code)
                          .options(joinedload(SpcPlan.product)))
    if plan is None:
        raise NotFound(_l("No data collection plan %(code)s.", code=code))
    return plan


def plan_query(filters: dict[str, Any]) -> Select[Any]:
    """Plans by code; filters `step`, `active`."""
    stmt = select(SpcPlan).options(joinedload(SpcPlan.product))
    if filters.get("step"):
        stmt = stmt.where(SpcPlan.step_code == filters["step"])
    if filters.get("active") is not None:
        stmt = stmt.where(SpcPlan.active.is_(filters["active"]))
    return stmt.order_by(SpcPlan.code)


def _frequency_hours(frequency: str) -> int | None:
    """"lot" → None; "hours:N" (1 ≤ N ≤ 8760) → N; anything else is refused."""
    if frequency == "lot":
        return None
    kind, _, hours = frequency.partition(":")
    if kind == "hours" and hours.isdigit() and 1 <= int(hours) <= 8760:
        return int(hours)
    raise _invalid("frequency", _l('The frequency is "lot" or "hours:N" (N from 1 to 8760).'))


def _check_spec(lsl: float | None, usl: float | None, target: float | None) -> None:
    if lsl is not None and usl is not None and lsl >= usl:
        raise _invalid("usl", _l("The upper specification limit must be above the lower."))
    if target is not None and ((lsl is not None and target < lsl)
                               or (usl is not None and target > usl)):
        raise _invalid("target", _l("The target must lie within the specification limits."))


def _rules(rules: Sequence[int]) -> list[int]:
    return sorted(set(rules))


def create_plan(session: Session, actor: Actor, data: dict[str, Any]) -> SpcPlan:
    """Create a data collection plan: a characteristic measured at `step` (a step of some
    route), optionally only on `equipment_kind` and for `product`, in subgroups of
    `subgroup_size` (1 to 25; the chart pair follows: I–MR, X̄–R, X̄–S), every lot or
    every N hours per tool, with specification limits, target and the rules judged.

    Raises Conflict `duplicate` (code taken) and InvalidInput (unknown step or product,
    frequency, LSL not below USL, target outside them).
    """
    if session.scalar(select(SpcPlan.id).where(SpcPlan.code == data["code"])) is not None:
        raise Conflict(_l("Data collection plan %(code)s already exists.", code=data["code"]),
                       code=ErrorCode.DUPLICATE)
    if session.scalar(select(RouteStep.id).where(RouteStep.code == data["step"]).limit(1)) is None:
        raise _invalid("step", _l("No route has a step %(step)s.", step=data["step"]))
    product_id = None
    if data.get("product"):
        product_id = session.scalar(select(Product.id).where(Product.code == data["product"]))
        if product_id is None:
            raise _invalid("product", _l("Unknown product %(code)s.", code=data["product"]))
    hours = _frequency_hours(data["frequency"])
    _check_spec(data.get("lsl"), data.get("usl"), data.get("target"))
    n = data["subgroup_size"]
    plan = SpcPlan(code=data["code"], step_code=data["step"],
                   characteristic=data["characteristic"], unit=data["unit"], subgroup_size=n,
                   chart=stats.chart_kind(n), frequency_hours=hours, lsl=data.get("lsl"),
                   usl=data.get("usl"), target=data.get("target"),
                   equipment_kind=data.get("equipment_kind") or None, product_id=product_id,
                   rules=_rules(data.get("rules", stats.RULES)), created_by=actor_name(actor))
    session.add(plan)
    session.flush()
    forget_plan_steps()
    audit.record(session, actor=actor, code="spc_plan:create", subject_type="spc_plan",
                 subject_key=plan.code, new_subject=True,
                 data={**{k: v for k, v in data.items() if k != "rules"},
                       "rules": plan.rules})
    return plan


def update_plan(session: Session, actor: Actor, plan: SpcPlan, data: dict[str, Any]) -> SpcPlan:
    """Change a plan's rules, specification limits, target, frequency or whether it is
    active (a retired plan takes no subgroups and asks for none). The subgroup size and the
    step are fixed: a different one is a new plan. Raises InvalidInput like create_plan."""
    changes: dict[str, list[Any]] = {}
    values = dict(data)
    if "frequency" in values:
        values["frequency_hours"] = _frequency_hours(values.pop("frequency"))
    if "rules" in values:
        values["rules"] = _rules(values["rules"])
    spec = {k: values.get(k, getattr(plan, k)) for k in ("lsl", "usl", "target")}
    _check_spec(spec["lsl"], spec["usl"], spec["target"])
    for key, value in values.items():
        if getattr(plan, key) != value:
            changes[key] = [getattr(plan, key), value]
            setattr(plan, key, value)
    if changes:
        forget_plan_steps()
        audit.record(session, actor=actor, code="spc_plan:update", subject_type="spc_plan",
                     subject_key=plan.code, data=changes)
        session.flush()
    return plan


# --- the track-out's check (a sample due) ----------------------------------------------

# Per database: (when read, the steps where an active plan measures every lot). A plan
# created or changed in this process clears it; other processes see it within this many
# seconds.
CACHE_SECONDS = 10.0
_lot_plan_steps: dict[str, tuple[float, frozenset[str]]] = {}


def forget_plan_steps() -> None:
    """Drop the cached steps with every-lot plans (after a plan is created or changed)."""
    _lot_plan_steps.clear()


def _steps_with_lot_plans(session: Session) -> frozenset[str]:
    bind = session.get_bind()
    key = str(bind.engine.url)
    now = time.monotonic()
    cached = _lot_plan_steps.get(key)
    if cached is not None and now - cached[0] < CACHE_SECONDS:
        return cached[1]
    steps = frozenset(session.scalars(select(SpcPlan.step_code).distinct().where(
        SpcPlan.active.is_(True), SpcPlan.frequency_hours.is_(None))))
    _lot_plan_steps[key] = (now, steps)
    return steps


def _applies(stmt: Select[Any], product_id: Any, equipment_id: Any) -> Select[Any]:
    """Plans that apply to a lot of `product_id` on the tool `equipment_id`."""
    kind = select(Equipment.kind).where(Equipment.id == equipment_id).scalar_subquery()
    return stmt.where(SpcPlan.active.is_(True),
                      or_(SpcPlan.equipment_kind.is_(None), SpcPlan.equipment_kind == kind),
                      or_(SpcPlan.product_id.is_(None), SpcPlan.product_id == product_id))


def sample_due_at_track_out(lot: Lot, *, session: Session, actor: Actor, run: StepRun,
                            **_: Any) -> None:
    """Refuse the track-out of a lot whose step has an every-lot plan applying to it (its
    product, its tool's kind) without a subgroup of this run: 409 `sample_due`. No query
    at all at steps without such a plan (cached per process), one indexed query at the
    others. A receiver of `lifecycle.lot_tracking_out`."""
    if run.step_code not in _steps_with_lot_plans(session):
        return
    missing = list(session.scalars(_applies(
        select(SpcPlan.code).where(SpcPlan.step_code == run.step_code,
                                   SpcPlan.frequency_hours.is_(None)),
        lot.product_id, run.equipment_id).where(~exists().where(
            SpcSubgroup.run_id == run.id, SpcSubgroup.plan_id == SpcPlan.id))
        .order_by(SpcPlan.code)))
    if missing:
        raise Conflict(_l("Lot %(lot)s has a sample due before track-out: %(plans)s.",
                          lot=lot.lot_no, plans=", ".join(missing)),
                       code=ErrorCode.SAMPLE_DUE)


lifecycle.lot_tracking_out.connect(sample_due_at_track_out, weak=False)


def due_samples(session: Session, lot: Lot) -> list[SpcPlan]:
    """The plans asking for a sample of a running lot at its step now: every-lot plans
    without a subgroup of its run, and every-N-hours plans whose last subgroup on the lot's
    tool is older than N hours (or missing). For the operator station; [] when the lot is
    not running."""
    if lot.state != LotState.RUNNING or lot.run_id is None or lot.equipment_id is None:
        return []
    plans = list(session.scalars(_applies(select(SpcPlan).where(
        SpcPlan.step_code == lot.step_code), lot.product_id, lot.equipment_id)
        .order_by(SpcPlan.code)))
    due = []
    now = utcnow()
    for plan in plans:
        if plan.frequency_hours is None:
            taken = session.scalar(select(SpcSubgroup.id).where(
                SpcSubgroup.run_id == lot.run_id, SpcSubgroup.plan_id == plan.id).limit(1))
            if taken is None:
                due.append(plan)
            continue
        last = session.scalar(select(func.max(SpcSubgroup.at)).where(
            SpcSubgroup.plan_id == plan.id, SpcSubgroup.equipment_id == lot.equipment_id))
        if last is None or now - last >= timedelta(hours=plan.frequency_hours):
            due.append(plan)
    return due


# --- subgroups and the rules -----------------------------------------------------------

def _lock(session: Session, plan: SpcPlan) -> SpcPlan:
    """The plan re-read under a row lock (PostgreSQL; SQLite's writing requests are
    serialised already): two subgroups of one plan are judged one after the other, so the
    second sees the first and the event it opened."""
    locked = session.scalar(select(SpcPlan).where(SpcPlan.id == plan.id).with_for_update()
                            .execution_options(populate_existing=True))
    assert locked is not None
    return locked


def _sample_refs(session: Session, plan: SpcPlan, lot_no: str, code: str,
                 values: Sequence[float]) -> tuple[Lot, Equipment, StepRun]:
    if len(values) != plan.subgroup_size:
        raise _invalid("values", _l("Plan %(plan)s takes subgroups of %(n)s values; %(got)s "
                                    "given.", plan=plan.code, n=plan.subgroup_size,
                                    got=len(values)))
    lot = session.scalar(select(Lot).where(Lot.lot_no == lot_no))
    if lot is None:
        raise _invalid("lot", _l("Unknown lot %(lot)s.", lot=lot_no))
    tool = session.scalar(select(Equipment).where(Equipment.code == code))
    if tool is None:
        raise _invalid("equipment", _l("Unknown equipment %(code)s.", code=code))
    if plan.equipment_kind and tool.kind != plan.equipment_kind:
        raise _invalid("equipment", _l("%(equipment)s is a %(kind)s; plan %(plan)s measures "
                                       "on %(needed)s equipment.", equipment=code,
                                       kind=EquipmentKind.word(tool.kind), plan=plan.code,
                                       needed=EquipmentKind.word(plan.equipment_kind)))
    if plan.product_id is not None and lot.product_id != plan.product_id:
        raise _invalid("lot", _l("Lot %(lot)s is not of the plan's product.", lot=lot_no))
    run = session.scalar(select(StepRun).where(
        StepRun.lot_id == lot.id, StepRun.step_code == plan.step_code,
        StepRun.equipment_id == tool.id).order_by(StepRun.started_at.desc(),
                                                  StepRun.id.desc()).limit(1))
    if run is None:
        raise _invalid("lot", _l("Lot %(lot)s has not run at step %(step)s on %(equipment)s.",
                                 lot=lot_no, step=plan.step_code, equipment=code))
    return lot, tool, run


def add_sample(session: Session, actor: Actor, plan: SpcPlan, *, lot: str, equipment: str,
               values: Sequence[float]) -> Judged:
    """Enter a subgroup measured on `lot` at the plan's step on the tool `equipment`.

    The values outside the specification limits are flagged (`out_of_spec`). With frozen
    limits the subgroup is judged by them (its limits version is kept) with the plan's
    Western Electric rules on the X̄ (individuals) chart and the spread chart, over the
    subgroups judged by the same version; a rule hit opens an out-of-control event for the
    plan and the tool (or joins the one open): see `open_event`.

    Raises Conflict `not_active` (retired plan) and InvalidInput (number of values, unknown
    lot or equipment, equipment of another kind, lot of another product, lot that has not
    run at the step on that tool).
    """
    plan = _lock(session, plan)
    if not plan.active:
        raise Conflict(_l("Data collection plan %(plan)s is retired.", plan=plan.code),
                       code=ErrorCode.NOT_ACTIVE)
    lot_row, tool, run = _sample_refs(session, plan, lot, equipment, values)
    limits = session.get(SpcLimits, plan.limits_id) if plan.limits_id else None
    # The last subgroups: the previous individual (I–MR) and the run judged by the limits.
    recent = session.execute(
        select(SpcSubgroup.id, SpcSubgroup.mean, SpcSubgroup.spread, SpcSubgroup.limits_id)
        .where(SpcSubgroup.plan_id == plan.id).order_by(SpcSubgroup.id.desc()).limit(7)).all()
    values = [float(v) for v in values]
    mean = stats.mean(values)
    spread = stats.spread(plan.chart, values, recent[0].mean if recent else None)
    subgroup = SpcSubgroup(
        plan_id=plan.id, lot_id=lot_row.id, equipment_id=tool.id, run_id=run.id,
        values=values, mean=mean, spread=spread,
        out_of_spec=stats.out_of_spec(values, plan.lsl, plan.usl),
        limits_id=limits.id if limits else None, violations=[],
        in_control=None, at=utcnow(), by=actor_name(actor))
    session.add(subgroup)
    session.flush()
    hits: list[dict[str, Any]] = []
    if limits is not None:
        history = []
        for row in recent:
            if row.limits_id != limits.id:
                break
            history.append(row)
        history.reverse()
        ids = [row.id for row in history] + [subgroup.id]
        for chart, series, (center, upper, lower) in (
                (SpcChart.XBAR, [row.mean for row in history] + [mean],
                 (limits.center, limits.ucl, limits.lcl)),
                (SpcChart.SPREAD, [row.spread for row in history] + [spread],
                 (limits.r_center, limits.r_ucl, limits.r_lcl))):
            if series[-1] is None:
                continue
            judged = [(i, x) for i, x in zip(ids, series, strict=True) if x is not None]
            for rule, marked in stats.judge([x for _, x in judged], center, upper, lower,
                                            plan.rules):
                hits.append({"rule": rule, "chart": str(chart),
                             "subgroups": [judged[i][0] for i in marked]})
        subgroup.violations = [{"rule": h["rule"], "chart": h["chart"]} for h in hits]
        subgroup.in_control = not hits
    event = open_event(session, actor, plan, limits, subgroup, tool, hits) if hits else None
    audit.record(session, actor=actor, code="spc_subgroup:create", subject_type="spc_subgroup",
                 subject_key=str(subgroup.id), new_subject=True,
                 data={"plan": plan.code, "lot": lot_row.lot_no, "equipment": tool.code,
                       "values": values, "mean": mean, "spread": spread,
                       "out_of_spec": subgroup.out_of_spec,
                       "limits": limits.version if limits else None,
                       "violations": subgroup.violations, "event": event.id if event else None})
    session.flush()
    return Judged(subgroup, lot_row.lot_no, tool.code, limits.version if limits else None,
                  event)


# --- the reaction plan -----------------------------------------------------------------

def spc_reason(session: Session) -> Any:
    """The reason of the reaction plan's holds: HOLD-SPC when it is an active hold code,
    else the plant's first active hold code (created, audited, when the plant has none)."""
    return quality.automatic_reason(session, SPC_REASON, "Process out of statistical control")


def _window_start(session: Session, plan: SpcPlan, limits: SpcLimits | None,
                  tool: Equipment) -> tuple[datetime, int | None]:
    """The time of the tool's last in-control subgroup of the plan and its run (else the
    freezing of the limits, and no run)."""
    last = session.execute(select(SpcSubgroup.at, SpcSubgroup.run_id).where(
        SpcSubgroup.plan_id == plan.id, SpcSubgroup.equipment_id == tool.id,
        SpcSubgroup.in_control.is_(True)).order_by(SpcSubgroup.id.desc()).limit(1)).first()
    if last is not None:
        return last.at, last.run_id
    assert limits is not None
    return limits.frozen_at, None


def open_event(session: Session, actor: Actor, plan: SpcPlan, limits: SpcLimits | None,
               subgroup: SpcSubgroup, tool: Equipment, hits: list[dict[str, Any]]) -> SpcEvent:
    """The reaction plan of a subgroup breaking a rule. When an event of the plan on the
    tool is open already, the hits and points join it (the tool is stopped and its lots
    held already). Otherwise a new event: the tool goes to the E10 engineering state
    (refusing track-in), and the lots that ran on it at the plan's step since its last
    in-control subgroup of the plan (the limits' freezing when none), the measured lot and
    every lot descended from them, are held in one action (source `spc`, naming the event);
    shipped lots are listed for containment, not held."""
    points = sorted({sid for hit in hits for sid in hit["subgroups"]})
    event = session.scalar(select(SpcEvent).where(
        SpcEvent.plan_id == plan.id, SpcEvent.equipment_id == tool.id,
        SpcEvent.state == SpcEventState.OPEN).order_by(SpcEvent.id).limit(1))
    if event is not None:
        event.hits = event.hits + hits
        event.subgroups = sorted(set(event.subgroups) | set(points))
        subgroup.event_id = event.id
        audit.record(session, actor=actor, code="spc_event:hit", subject_type="spc_event",
                     subject_key=str(event.id), data={"subgroup": subgroup.id, "hits": hits})
        return event
    since, good_run = _window_start(session, plan, limits, tool)
    runs = select(StepRun.lot_id).where(
        StepRun.equipment_id == tool.id, StepRun.step_code == plan.step_code,
        or_(StepRun.finished_at.is_(None), StepRun.finished_at > since))
    if good_run is not None:
        runs = runs.where(StepRun.id != good_run)
    seeds = select(Lot.id).where(or_(Lot.id == subgroup.lot_id, Lot.id.in_(runs)))
    lots = list(session.scalars(select(Lot).where(Lot.id.in_(descendants(session, seeds)))
                                .order_by(Lot.lot_no)))
    to_hold = [lot for lot in lots if lot.state in IN_PLANT]
    shipped = [lot.lot_no for lot in lots if lot.state == LotState.SHIPPED]
    # Stopped already by another plan's open event: the state before is that event's.
    before = tool.state
    if before == EquipmentState.ENGINEERING:
        before = session.scalar(select(SpcEvent.equipment_state_before).where(
            SpcEvent.equipment_id == tool.id, SpcEvent.state == SpcEventState.OPEN)
            .order_by(SpcEvent.id).limit(1)) or before
    event = SpcEvent(plan_id=plan.id, equipment_id=tool.id, rule=hits[0]["rule"], hits=hits,
                     subgroups=points, since=since, held_lots=[lot.lot_no for lot in to_hold],
                     shipped_lots=shipped, equipment_state_before=before,
                     opened_by=actor_name(actor))
    session.add(event)
    session.flush()
    subgroup.event_id = event.id
    rules = ", ".join(f"{h['rule']} ({h['chart']})" for h in hits)
    if tool.state != EquipmentState.ENGINEERING:
        catalog.update_equipment(session, SYSTEM, tool, {
            "state": EquipmentState.ENGINEERING,
            "comment": f"SPC event {event.id}: plan {plan.code}, rule {rules}"})
    if to_hold:
        quality.place_holds(
            session, SYSTEM, to_hold, spc_reason(session),
            f"SPC out-of-control event {event.id}: plan {plan.code} ({plan.characteristic}) "
            f"on {tool.code}, rule {rules}.", HoldSource.SPC, placed_by=SYSTEM,
            data={"spc_event": event.id, "plan": plan.code, "triggered_by": actor_name(actor)})
    audit.record(session, actor=actor, code="spc_event:open", subject_type="spc_event",
                 subject_key=str(event.id), new_subject=True,
                 data={"plan": plan.code, "equipment": tool.code, "hits": hits,
                       "since": since.isoformat(), "held": event.held_lots,
                       "shipped": shipped})
    return event


def get_event(session: Session, event_id: int) -> SpcEvent:
    """The out-of-control event `event_id` (NotFound otherwise)."""
    event = session.scalar(select(SpcEvent).where(SpcEvent.id == event_id).options(
        joinedload(SpcEvent.plan), joinedload(SpcEvent.equipment)))
    if event is None:
        raise NotFound(_l("No out-of-control event %(id)s.", id=event_id))
    return event


def event_query(filters: dict[str, Any]) -> Select[Any]:
    """Out-of-control events, newest first; filters `state`, `plan` (code), `equipment`
    (code)."""
    stmt = select(SpcEvent).options(joinedload(SpcEvent.plan), joinedload(SpcEvent.equipment))
    if filters.get("state"):
        stmt = stmt.where(SpcEvent.state == filters["state"])
    if filters.get("plan"):
        stmt = stmt.where(SpcEvent.plan_id == select(SpcPlan.id).where(
            SpcPlan.code == filters["plan"]).scalar_subquery())
    if filters.get("equipment"):
        stmt = stmt.where(SpcEvent.equipment_id == select(Equipment.id).where(
            Equipment.code == filters["equipment"]).scalar_subquery())
    return stmt.order_by(SpcEvent.id.desc())


def close_event(session: Session, actor: Actor, event: SpcEvent, *, cause: str,
                action: str) -> SpcEvent:
    """Close an out-of-control event with its cause and the action taken (OCAP). The tool
    leaves the engineering state unless another event keeps it stopped or it was in
    engineering before the event: back to standby (productive while a lot runs on it), or
    to the down state it was in before; the holds stay until quality releases them.

    Raises Conflict `not_open` (closed already) and InvalidInput (empty cause or action).
    """
    cause, action = (cause or "").strip(), (action or "").strip()
    if not cause:
        raise _invalid("cause", _l("Give the cause."))
    if not action:
        raise _invalid("action", _l("Give the action taken."))
    if event.state != SpcEventState.OPEN:
        raise Conflict(_l("Out-of-control event %(id)s is closed already.", id=event.id),
                       code=ErrorCode.NOT_OPEN)
    event.state = SpcEventState.CLOSED
    event.closed_at = utcnow()
    event.closed_by = actor_name(actor)
    event.cause, event.action = cause, action
    session.flush()
    tool = event.equipment
    others = session.scalar(select(SpcEvent.id).where(
        SpcEvent.equipment_id == tool.id, SpcEvent.state == SpcEventState.OPEN).limit(1))
    before = event.equipment_state_before
    if (tool.state == EquipmentState.ENGINEERING and others is None
            and before != EquipmentState.ENGINEERING):
        # Back to work, or to the non-available state it was in before the event.
        state = before if before and before not in AVAILABLE_EQUIPMENT_STATES else (
            EquipmentState.PRODUCTIVE if tool.lots_running else EquipmentState.STANDBY)
        # A return to the down state it was in is the system's (its downtime reason was
        # given when it went down); a return to work is the closing user's.
        catalog.update_equipment(
            session, actor if state in AVAILABLE_EQUIPMENT_STATES else SYSTEM, tool,
            {"state": state, "comment": f"SPC event {event.id} closed"})
    audit.record(session, actor=actor, code="spc_event:close", subject_type="spc_event",
                 subject_key=str(event.id), data={"cause": cause, "action": action})
    session.flush()
    return event


# --- limits ----------------------------------------------------------------------------

def freeze_limits(session: Session, actor: Actor, plan: SpcPlan,
                  from_subgroups: int | None = None) -> SpcLimits:
    """Freeze the next version of the plan's control limits from its last `from_subgroups`
    subgroups (default: all), at least 25 (PRODUCT.md's formulas and constants). Later
    subgroups are judged by this version.

    Raises InvalidInput `too_few_subgroups` (fewer than 25, or than asked for).
    """
    plan = _lock(session, plan)
    wanted = from_subgroups or None
    stmt = (select(SpcSubgroup.id, SpcSubgroup.mean, SpcSubgroup.spread)
            .where(SpcSubgroup.plan_id == plan.id).order_by(SpcSubgroup.id.desc()))
    rows = list(session.execute(stmt.limit(wanted) if wanted else stmt).all())
    needed = max(stats.MIN_BASELINE, wanted or 0)
    if len(rows) < needed:
        raise InvalidInput(
            _l("Control limits need %(needed)s subgroups; plan %(plan)s has %(count)s.",
               needed=needed, plan=plan.code, count=len(rows)),
            code=ErrorCode.TOO_FEW_SUBGROUPS,
            fields={"from_subgroups": [_l("At least %(needed)s subgroups are needed.",
                                          needed=needed)]})
    rows.reverse()
    computed = stats.compute_limits(plan.chart, plan.subgroup_size, [r.mean for r in rows],
                                    [r.spread for r in rows])
    version = (session.scalar(select(func.max(SpcLimits.version))
                              .where(SpcLimits.plan_id == plan.id)) or 0) + 1
    limits = SpcLimits(plan_id=plan.id, version=version, subgroups=len(rows),
                       first_subgroup_id=rows[0].id, last_subgroup_id=rows[-1].id,
                       frozen_at=utcnow(), frozen_by=actor_name(actor),
                       **computed.__dict__)
    session.add(limits)
    session.flush()
    plan.limits_id = limits.id
    audit.record(session, actor=actor, code="spc_plan:limits", subject_type="spc_plan",
                 subject_key=plan.code,
                 data={"version": version, "subgroups": len(rows), **computed.__dict__})
    session.flush()
    return limits


# --- reading: chart, capability, summary -----------------------------------------------

def _sigma_within(plan: SpcPlan, limits: SpcLimits | None,
                  spreads: Sequence[float | None]) -> float | None:
    """The limits' σ; without limits, estimated from the spreads of the points read."""
    if limits is not None:
        return limits.sigma
    known = [s for s in spreads if s is not None]
    if not known:
        return None
    mean_spread = sum(known) / len(known)
    if plan.chart == "i_mr":
        return mean_spread / stats.MR_D2
    if plan.chart == "xbar_r":
        return mean_spread / stats.XBAR_R[plan.subgroup_size][3]
    return mean_spread / stats.c4(plan.subgroup_size)


def _capability(plan: SpcPlan, limits: SpcLimits | None, subgroups: Sequence[Any]) -> Capability:
    values = [float(v) for sg in subgroups for v in sg.values]
    sigma = _sigma_within(plan, limits, [sg.spread for sg in subgroups])
    mu, overall, cp, cpk, pp, ppk = stats.capability(values, sigma, plan.lsl, plan.usl)
    return Capability(len(values), mu, sigma, overall, cp, cpk, pp, ppk)


def capability(session: Session, plan: SpcPlan, *, since: datetime | None = None,
               until: datetime | None = None) -> Capability:
    """Cp, Cpk (σ of the current limits, else estimated within subgroups), Pp, Ppk of the
    plan's subgroups entered in [since, until) (default: all)."""
    stmt = select(SpcSubgroup).where(SpcSubgroup.plan_id == plan.id)
    if since is not None:
        stmt = stmt.where(SpcSubgroup.at >= since)
    if until is not None:
        stmt = stmt.where(SpcSubgroup.at < until)
    limits = session.get(SpcLimits, plan.limits_id) if plan.limits_id else None
    return _capability(plan, limits, list(session.scalars(stmt)))


def chart_points(session: Session, plan: SpcPlan, last: int = SUMMARY_POINTS) -> list[ChartPoint]:
    """The plan's last `last` subgroups, oldest first, with lot number, tool code and the
    version of the limits that judged each."""
    rows = session.execute(
        select(SpcSubgroup, Lot.lot_no, Equipment.code, SpcLimits.version)
        .join(Lot, Lot.id == SpcSubgroup.lot_id)
        .join(Equipment, Equipment.id == SpcSubgroup.equipment_id)
        .outerjoin(SpcLimits, SpcLimits.id == SpcSubgroup.limits_id)
        .where(SpcSubgroup.plan_id == plan.id)
        .order_by(SpcSubgroup.id.desc()).limit(last)).all()
    return [ChartPoint(sg, lot_no, code, version) for sg, lot_no, code, version in reversed(rows)]


def plan_summary(session: Session, plan: SpcPlan, last: int = SUMMARY_POINTS) -> PlanSummary:
    """A plan as its page and GET /spc/plans/{code} show it: the current limits, the last
    `last` points (oldest first, each with the version of the limits that judged it and its
    violations), every limits version, the capability over those points and the open
    events."""
    limits = session.get(SpcLimits, plan.limits_id) if plan.limits_id else None
    points = chart_points(session, plan, last)
    versions = list(session.scalars(select(SpcLimits).where(SpcLimits.plan_id == plan.id)
                                    .order_by(SpcLimits.version)))
    open_events = list(session.scalars(event_query({"state": SpcEventState.OPEN}).where(
        SpcEvent.plan_id == plan.id)))
    return PlanSummary(plan, limits, points, versions,
                       _capability(plan, limits, [p.subgroup for p in points]), open_events)

