"""What the shop-floor pages read: the operator station's view of a scanned lot (every reason
it cannot move now), the lot page's progress along its route, and the WIP board's summary.

Nothing here decides a rule: availability and blockers come from the services' own checks
(`lot_blockers`, `equipment_blockers`, `material_blockers`), so a page never promises a move
the service would refuse.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from flask_babel import format_datetime
from flask_babel import gettext as _
from sqlalchemy import Select, case, exists, func, select
from sqlalchemy.orm import Session, joinedload, selectinload

from mes.auth.actor import Actor, actor_name
from mes.auth.scope import scoped
from mes.catalog.models import Durable, Equipment, MaterialLot, ReasonCode, Route, RouteStep
from mes.catalog.services import StepInfo, mounted_durables, route_step_infos
from mes.db import utcnow
from mes.errors import ErrorCode
from mes.floor import services
from mes.floor.models import (
    Lot,
    LotClosedTotal,
    LotEvent,
    LotWafer,
    MaterialUse,
    StepRun,
    Wafer,
)
from mes.i18n import localized
from mes.quality.models import Hold
from mes.quality.moisture import floor_life_expired
from mes.vocabulary import (
    ACTIVE_LOT_STATES,
    AVAILABLE_EQUIPMENT_STATES,
    CLOSED_LOT_STATES,
    DurableKind,
    EquipmentKind,
    EventKind,
    HoldStatus,
    LotState,
    ReasonKind,
    StepKind,
    StepStatus,
)

# How many usable material lots of one type the station offers as scan suggestions.
MATERIAL_CHOICES = 30


# --- operator station ------------------------------------------------------------------

@dataclass
class ToolState:
    equipment: Equipment
    blockers: list[services.Blocker]
    # The durables mounted on it.
    durables: list[Durable] = field(default_factory=list)

    @property
    def available(self) -> bool:
        return not self.blockers


@dataclass
class StationLot:
    """A scanned lot as the station shows it, before the operator types anything."""

    lot: Lot
    step: StepInfo
    # Reasons no track-in can succeed now, whatever is scanned (hold, closed, no tool ...).
    blockers: list[services.Blocker]
    holds: list[Hold]
    # What a track-in needs scanned: the step's materials, named by the service's check.
    needs: list[services.Blocker]
    tools: list[ToolState]
    # Per material type the step needs, the lots ready for use (of a part number the lot's
    # BOM allows, unexpired, thawed, opened).
    material_lots: dict[str, list[MaterialLot]]
    run: StepRun | None
    # The active reject reasons that apply to the step (all of them when none does), and
    # the others, offered on request.
    reject_reasons: list[ReasonCode]
    other_reasons: list[ReasonCode] = field(default_factory=list)
    # What the operator does next when the lot is blocked, one line per blocker.
    todo: list[str] = field(default_factory=list)
    # The material types a track-in needs: the route step's and the BOM's at the step.
    material_types: tuple[str, ...] = ()
    # Time-limited lots of those types that are not ready yet (in the freezer, thawing,
    # unopened), with why and what the station can record now: "thaw" (the removal from
    # the freezer), "open" or nothing (thawing).
    waiting_materials: list[tuple[MaterialLot, services.Blocker, str | None]] = field(
        default_factory=list)
    # At a step a batch tool serves: the batch tools free to take lots now, with their free
    # places, and the other queued lots at the step a batch may take along.
    batch_tools: list[tuple[Equipment, int]] = field(default_factory=list)
    batch_lots: list[Lot] = field(default_factory=list)
    # Durables on the step's tools at their warning level: plan their change.
    warnings: list[str] = field(default_factory=list)
    # At a test step: the lot's test insertion of this visit (None: no test data yet).
    insertion: Any = None

    @property
    def running(self) -> bool:
        return self.lot.state == LotState.RUNNING

    @property
    def can_track_in(self) -> bool:
        """The track-in form is offered: a queued lot nothing blocks (no hold, a free tool,
        usable materials, floor life left). A blocked lot gets no form, only what to do."""
        return self.lot.state == LotState.QUEUED and not self.blockers

    @property
    def at_test_step(self) -> bool:
        return self.step.kind == StepKind.TEST

    @property
    def batch_tool_options(self) -> list[tuple[str, str]]:
        """The batch tools as a select's options, each with its free places."""
        return [(tool.code, _("%(equipment)s: %(free)d of %(capacity)d places free",
                              equipment=tool.code, free=free, capacity=tool.capacity))
                for tool, free in self.batch_tools]

    @property
    def available_tools(self) -> list[Equipment]:
        return [t.equipment for t in self.tools if t.available]


def open_holds(session: Session, lot: Lot) -> list[Hold]:
    if not lot.open_holds:
        return []
    return list(session.scalars(
        select(Hold).where(Hold.lot_id == lot.id, Hold.status == HoldStatus.OPEN)
        .options(joinedload(Hold.reason)).order_by(Hold.placed_at, Hold.id)))


def _tools(session: Session, step: StepInfo, need: int) -> list[ToolState]:
    """The tools of the step's kind, each with why it cannot take the lot (`need`: the uses
    the lot takes of every durable mounted on the tool)."""
    if not step.equipment_kind:
        return []
    tools = list(session.scalars(select(Equipment).where(Equipment.kind == step.equipment_kind)
                                 .order_by(Equipment.code)))
    durables = mounted_durables(session, [tool.id for tool in tools])
    now = utcnow()
    return [ToolState(tool, services.equipment_blockers(step, tool)
                      + services.pm_blockers(tool, now)
                      + services.durable_blockers(durables[tool.id], need), durables[tool.id])
            for tool in tools]


def _durable_todo(durable: Durable, need: int) -> str:
    return _("Change the %(kind)s on %(equipment)s: %(code)s has %(left)s uses left and this "
             "lot needs %(need)s. Ask the engineer or technician to mount a fresh %(kind)s on "
             "the tool's page, then scan this lot again.",
             kind=DurableKind.word(durable.kind),
             equipment=durable.equipment.code if durable.equipment is not None else "-",
             code=durable.code, left=f"{max(durable.left, 0):,}", need=f"{need:,}")


def _durable_warnings(tools: list[ToolState], need: int) -> list[str]:
    return [_("%(kind)s %(code)s on %(equipment)s is at %(pct)s%% of its life (%(left)s uses "
              "left): plan its change.", kind=DurableKind.word(d.kind).capitalize(),
              code=d.code, equipment=t.equipment.code, pct=f"{d.used_pct:.0f}",
              left=f"{max(d.left, 0):,}")
            for t in tools for d in t.durables if d.warning and d.left >= need]


def _usable_materials(session: Session, names: tuple[str, ...],
                      parts: dict[str, tuple[str, ...]]) -> dict[str, list[MaterialLot]]:
    """Unexpired lots of each material (of the part numbers `parts` allows, for the types
    it names). The longest-lived come first, so when the first ones read are expired,
    every lot of that material is."""
    found: dict[str, list[MaterialLot]] = {}
    for name in names:
        stmt = select(MaterialLot).where(MaterialLot.material == name)
        if name in parts:
            stmt = stmt.where(MaterialLot.part_number.in_(parts[name]))
        longest = session.scalars(
            stmt.order_by(MaterialLot.expires_at.is_(None).desc(), MaterialLot.expires_at.desc(),
                          MaterialLot.code)
            .limit(MATERIAL_CHOICES))
        found[name] = sorted((m for m in longest if not m.expired), key=lambda m: m.code)
    return found


def _last_expired(session: Session, name: str,
                  parts: dict[str, tuple[str, ...]]) -> MaterialLot | None:
    """The material lot of type `name` (of the part numbers `parts` allows) that expired
    last, when every one in stock has expired (the station asks only then)."""
    stmt = select(MaterialLot).where(MaterialLot.material == name,
                                     MaterialLot.expires_at.is_not(None))
    if name in parts:
        stmt = stmt.where(MaterialLot.part_number.in_(parts[name]))
    last = session.scalars(stmt.order_by(MaterialLot.expires_at.desc()).limit(1)).first()
    return last if last is not None and last.expired else None


def _material_action(m: MaterialLot, now: datetime) -> str | None:
    """What the station can record of a material lot that is not ready: its removal from
    the freezer, its opening (once thawed), or nothing while it thaws."""
    if m.thaw_minutes and m.thawing_since is None:
        return "thaw"
    ready = m.ready_at
    if m.work_life_hours and m.opened_at is None and (ready is None or ready <= now):
        return "open"
    return None


def _first_free(session: Session, tools: list[ToolState]) -> tuple[Equipment, StepRun] | None:
    """Of the busy tools (up, running another lot), the one whose lot has run longest, with
    that run: the one likely to free first. None when no tool of the kind is up."""
    busy = {t.equipment.id: t.equipment for t in tools
            if t.equipment.state in AVAILABLE_EQUIPMENT_STATES and t.equipment.lots_running}
    if not busy:
        return None
    run = session.scalars(select(StepRun).where(
        StepRun.equipment_id.in_(busy), StepRun.finished_at.is_(None))
        .order_by(StepRun.started_at, StepRun.id).limit(1)).first()
    return (busy[run.equipment_id], run) if run is not None else None


def _pm_todo(step: StepInfo, tools: list[ToolState]) -> str | None:
    """When a tool of the kind is up and idle but waits for its preventive maintenance:
    which one, and that recording the PM frees it."""
    waiting = [t for t in tools if t.blockers and all(
        b.code == ErrorCode.PM_DUE for b in t.blockers)]
    if not waiting:
        return None
    return _("No %(kind)s is free: %(tools)s waits for its preventive maintenance. Ask "
             "maintenance to do it and record the PM on the equipment page (the tool in "
             "scheduled down), then scan this lot again.",
             kind=EquipmentKind.word(step.equipment_kind),
             tools=", ".join(t.equipment.code for t in waiting))


def _no_tool_todo(session: Session, step: StepInfo, tools: list[ToolState]) -> str:
    pm = _pm_todo(step, tools)
    if pm is not None:
        return pm
    first = _first_free(session, tools)
    if first is None:
        return _("Every %(kind)s is down or in engineering: call maintenance or the shift "
                 "leader and leave the lot in the queue.",
                 kind=EquipmentKind.word(step.equipment_kind))
    tool, run = first
    if tool.capacity > 1:
        return _("Wait for a place in a %(kind)s: on %(equipment)s a lot has run longest "
                 "(since %(at)s); its track-out frees a place. Scan this lot again then.",
                 kind=EquipmentKind.word(step.equipment_kind), equipment=tool.code,
                 at=format_datetime(run.started_at, "yyyy-MM-dd HH:mm"))
    return _("Wait for a %(kind)s: %(equipment)s has run its lot longest (since %(at)s) and is "
             "likely to free first. Scan this lot again when a tool is free.",
             kind=EquipmentKind.word(step.equipment_kind), equipment=tool.code,
             at=format_datetime(run.started_at, "yyyy-MM-dd HH:mm"))


def _todo(lot: Lot, blocker: services.Blocker) -> str:
    """What the operator does about a blocker of the lot itself (a hold, used-up floor
    life, a closed lot)."""
    if blocker.code == ErrorCode.LOT_ON_HOLD:
        return _("Put the lot aside at the hold rack and call QA: it can be tracked in once "
                 "QA has released every hold.")
    if blocker.code == ErrorCode.LOT_BANKED:
        return _("The lot waits in the die bank: a planner releases it to the floor from "
                 "its lot page.")
    if blocker.code == ErrorCode.FLOOR_LIFE_EXPIRED:
        return _("Take the lot to the bake oven; once the bake is recorded on the lot page, "
                 "scan it again.")
    return _("Nothing to do at the station: the lot is %(state)s. If it is still on the "
             "floor, give it and its traveler to the shift leader.",
             state=LotState(lot.state).label)


def station_lot(session: Session, lot: Lot, *, all_reasons: bool = False) -> StationLot:
    """Everything the station shows about `lot`: its step, every blocker and what to do
    about it, the tools of the step's kind with why each one cannot take the lot, the
    materials to scan, the reject reasons of the step (every active one with
    `all_reasons`)."""
    step = services.current_step(lot)
    holds = open_holds(session, lot)
    blockers = [b for b in services.lot_blockers(lot) if b.code != ErrorCode.ALREADY_RUNNING]
    todo = [_todo(lot, b) for b in blockers]
    warnings: list[str] = []
    tools: list[ToolState] = []
    materials: dict[str, list[MaterialLot]] = {}
    waiting_lots: list[tuple[MaterialLot, services.Blocker, str | None]] = []
    types: tuple[str, ...] = tuple(step.materials)
    needs: list[services.Blocker] = []
    if lot.state == LotState.QUEUED:
        if step.kind == StepKind.PACK and floor_life_expired(session, lot):
            expired = services.Blocker(_(
                "Lot %(lot)s has used up its moisture floor life; bake it first.",
                lot=lot.lot_no), code=ErrorCode.FLOOR_LIFE_EXPIRED)
            blockers.append(expired)
            todo.append(_todo(lot, expired))
        need = services.durable_need(lot, step)
        tools = _tools(session, step, need)
        warnings = _durable_warnings(tools, need)
        # The durables that alone keep a tool from the lot: changing one frees the tool.
        worn = [d for t in tools if t.blockers and all(
            b.code == ErrorCode.DURABLE_EXHAUSTED for b in t.blockers)
            for d in t.durables if d.left < need]
        if step.equipment_kind and worn and not any(t.available for t in tools):
            for durable in worn:
                blockers.extend(services.durable_blockers([durable], need))
                todo.append(_durable_todo(durable, need))
        elif step.equipment_kind and not any(t.available for t in tools):
            blockers.append(_tools_full(step, tools) or services.Blocker(_(
                "No %(kind)s is available for step %(step)s.",
                kind=EquipmentKind.word(step.equipment_kind), step=step.code),
                code=ErrorCode.NO_EQUIPMENT, field="equipment"))
            todo.append(_no_tool_todo(session, step, tools) if tools else _(
                "No %(kind)s is registered: call the shift leader.",
                kind=EquipmentKind.word(step.equipment_kind)))
        # With nothing scanned yet, the service's material check names every material needed
        # (with the part numbers of the lot's BOM revision).
        bom = services.lot_bom(lot)
        parts = bom.steps.get(step.code, {}) if bom is not None else {}
        needs = services.material_blockers(step, [], bom)
        types = tuple(dict.fromkeys([*step.materials, *parts]))
        now = utcnow()
        for name, usable in _usable_materials(session, types, parts).items():
            waiting = [(m, b, _material_action(m, now)) for m in usable
                       if (b := services.material_lot_blocker(m, now)) is not None]
            materials[name] = [m for m in usable if m not in {w[0] for w in waiting}]
            waiting_lots.extend(waiting)
            if materials[name]:
                continue
            if waiting:
                blockers.append(waiting[0][1])
                todo.append(_("Record the removal from the freezer or the opening of "
                              "%(code)s below, and scan this lot again when it is ready.",
                              code=waiting[0][0].code))
                continue
            part_list = ", ".join(parts.get(name, ()))
            last = _last_expired(session, name, parts)
            blockers.append(services.Blocker(_(
                "Every %(material)s lot in stock has expired (the last one, %(code)s, on "
                "%(date)s).", material=name, code=last.code,
                date=format_datetime(last.expires_at, "yyyy-MM-dd HH:mm")),
                code=ErrorCode.MATERIAL_EXPIRED, field="materials")
                if last is not None and last.expires_at is not None else
                services.Blocker(_(
                    "No usable %(material)s lot is in stock: all are expired or none was "
                    "received.", material=name), code=ErrorCode.NO_MATERIAL,
                    field="materials"))
            todo.append(_("Ask the material store for a fresh %(material)s lot of part number "
                          "%(parts)s, then scan this lot again.", material=name,
                          parts=part_list) if part_list else
                        _("Ask the material store for a fresh %(material)s lot, then scan "
                          "this lot again.", material=name))
    elif lot.state == LotState.RUNNING and lot.on_hold:
        todo.append(_("Track the lot out as usual, then put it aside at the hold rack and "
                      "call QA."))
    run = session.get(StepRun, lot.run_id) if lot.run_id is not None else None
    reasons = list(session.scalars(select(ReasonCode).where(
        ReasonCode.kind == ReasonKind.REJECT, ReasonCode.active.is_(True))
        .order_by(ReasonCode.code)))
    own = [r for r in reasons if r.applies_to(step.code, step.kind)]
    if not own or all_reasons:
        own, others = reasons, []
    else:
        others = [r for r in reasons if r not in own]
    batch_tools = [(t.equipment, t.equipment.capacity - t.equipment.lots_running)
                   for t in tools if t.available and t.equipment.capacity > 1] \
        if lot.state == LotState.QUEUED and not blockers else []
    insertion = None
    if step.kind == StepKind.TEST:
        # The test floor's insertion (imported here: the test floor builds on the floor).
        from mes.testfloor import insertions
        insertion = insertions.current_insertion(session, lot, step.code)
    return StationLot(lot=lot, step=step, blockers=blockers, holds=holds, needs=needs,
                      tools=tools, material_lots=materials, run=run, reject_reasons=own,
                      other_reasons=others, todo=todo, material_types=types,
                      waiting_materials=waiting_lots, batch_tools=batch_tools,
                      batch_lots=_batch_lots(session, lot) if batch_tools else [],
                      warnings=warnings, insertion=insertion)


# The queued lots a batch track-in form offers at most beside the scanned one.
BATCH_CHOICES = 40


def _batch_lots(session: Session, lot: Lot) -> list[Lot]:
    """The queued lots free of holds at the lot's step code, most urgent first (`urgency`),
    the scanned lot first of all: what a batch may take along (the batch track-in checks
    each one)."""
    others = session.scalars(select(Lot).where(
        Lot.state == LotState.QUEUED, Lot.step_code == lot.step_code, Lot.open_holds == 0,
        Lot.id != lot.id).options(joinedload(Lot.product))
        .order_by(*urgency()).limit(BATCH_CHOICES))
    return [lot, *others]


def _tools_full(step: StepInfo, tools: list[ToolState]) -> services.Blocker | None:
    """"Tool full": when every tool of the step's kind that is up is full (a batch tool with
    every place taken, or a one-lot tool running its lot), and one of them is a batch tool."""
    up = [t.equipment for t in tools if t.equipment.state in AVAILABLE_EQUIPMENT_STATES]
    if not any(t.capacity > 1 for t in up) or any(
            b.code not in (ErrorCode.CAPACITY_EXCEEDED, ErrorCode.EQUIPMENT_BUSY)
            for t in tools if t.equipment in up for b in t.blockers):
        return None
    return services.Blocker(_(
        "Every %(kind)s is full: %(tools)s.", kind=EquipmentKind.word(step.equipment_kind),
        tools=", ".join(_("%(equipment)s %(running)d of %(capacity)d lots", equipment=t.code,
                          running=t.lots_running, capacity=t.capacity) for t in up)),
        code=ErrorCode.CAPACITY_EXCEEDED, field="equipment")


# --- the station's queue ---------------------------------------------------------------

# The lots the station's queue lists at most.
QUEUE_ROWS = 25
# How far back an operator's runs name "their" tools: one shift.
SHIFT = timedelta(hours=12)
# How many of them the queue's chooser names.
NAMED_TOOLS = 4


@dataclass
class QueueChoice:
    """What the queue is for: the operator's own tools (`mine`), a work centre (an
    equipment kind) or one step."""

    value: str
    kinds: list[str] = field(default_factory=list)
    step: str | None = None
    tools: list[str] = field(default_factory=list)


@dataclass
class StationQueue:
    choice: QueueChoice
    lots: list[Lot]
    total: int
    late: set[str]
    # The options of the queue's chooser: (value, label).
    options: list[tuple[str, str]]


def operator_tools(session: Session, actor: Actor, now: datetime | None = None) -> list[Equipment]:
    """The tools `actor` tracked a lot in on during the last shift (SHIFT), by code."""
    since = (now or utcnow()) - SHIFT
    return list(session.scalars(select(Equipment).where(Equipment.id.in_(
        select(StepRun.equipment_id).where(StepRun.operator == actor_name(actor),
                                           StepRun.started_at >= since))
    ).order_by(Equipment.code)))


def queue_choice(session: Session, actor: Actor, value: str | None) -> QueueChoice:
    """The queue chosen by `value`: "kind:<equipment kind>", "step:<step code>", or else
    the operator's own tools' kinds."""
    kind_, _sep, code = (value or "").partition(":")
    if kind_ == "kind" and code:
        return QueueChoice(value=f"kind:{code}", kinds=[code])
    if kind_ == "step" and code:
        return QueueChoice(value=f"step:{code}", step=code)
    tools = operator_tools(session, actor)
    return QueueChoice(value="mine", kinds=sorted({t.kind for t in tools}),
                       tools=[t.code for t in tools])


def _queue_options(session: Session, choice: QueueChoice) -> list[tuple[str, str]]:
    named = ", ".join(choice.tools[:NAMED_TOOLS])
    if len(choice.tools) > NAMED_TOOLS:
        named = _("%(tools)s and %(n)d more", tools=named, n=len(choice.tools) - NAMED_TOOLS)
    mine = (_("My tools: %(tools)s", tools=named) if choice.tools
            else _("My tools (none tracked in this shift)"))
    kinds = session.scalars(select(Equipment.kind).distinct().order_by(Equipment.kind)).all()
    steps = session.scalars(select(RouteStep.code).distinct().order_by(RouteStep.code)).all()
    options = [("mine", mine)]
    options += [(f"kind:{k}", _("Work centre %(kind)s", kind=EquipmentKind.word(k))) for k in kinds]
    options += [(f"step:{c}", _("Step %(step)s", step=c)) for c in steps]
    if choice.value not in {value for value, _label in options}:
        options.append((choice.value, choice.value))
    return options


def urgency() -> tuple[Any, ...]:
    """The queue's order, most urgent first: lots free of holds before held ones, then the
    earliest due date (none last), then priority (1 first), then the longest waiting
    (arrived at the step first)."""
    return ((Lot.open_holds > 0), Lot.due_date.asc().nulls_last(), Lot.priority,
            Lot.arrived_at, Lot.id)


def station_queue(session: Session, actor: Actor, value: str | None) -> StationQueue:
    """The queued lots at the steps of the chosen queue (`queue_choice`), most urgent first
    (`urgency`), at most QUEUE_ROWS of them, and how many there are."""
    choice = queue_choice(session, actor, value)
    where: list[Any] = [Lot.state == LotState.QUEUED]
    if choice.step is not None:
        where.append(Lot.step_code == choice.step)
    else:
        # The step codes first (redundant, but it keeps the lot index on state and step in
        # use), then the lot's own route step, whose kind is the one that counts.
        where += [Lot.step_code.in_(select(RouteStep.code).where(
                      RouteStep.equipment_kind.in_(choice.kinds))),
                  exists().where(RouteStep.route_id == Lot.route_id,
                                 RouteStep.seq == Lot.step_seq,
                                 RouteStep.equipment_kind.in_(choice.kinds))]
    options = _queue_options(session, choice)
    if choice.step is None and not choice.kinds:
        return StationQueue(choice=choice, lots=[], total=0, late=set(), options=options)
    stmt = scoped(select(Lot).where(*where), Lot.customer_id, actor)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    lots = list(session.scalars(stmt.options(joinedload(Lot.product))
                                .order_by(*urgency()).limit(QUEUE_ROWS)))
    today = services.plant_date()
    return StationQueue(choice=choice, lots=lots, total=total, options=options,
                        late={lot.lot_no for lot in lots if services.is_late(lot, today)})


# --- lot page --------------------------------------------------------------------------

@dataclass
class AbortedRun:
    """A run whose track-in was undone, as its history event keeps it (the step run itself
    is deleted)."""

    equipment: str | None
    operator: str | None
    started_at: datetime
    aborted_at: datetime
    aborted_by: str | None
    qty_in: int | None
    reason: str


@dataclass
class StepProgress:
    step: StepInfo
    status: StepStatus
    runs: list[StepRun | AbortedRun] = field(default_factory=list)


@dataclass
class LotPage:
    wafers: list[Wafer]
    progress: list[StepProgress]
    runs: list[StepRun]
    events: list[LotEvent]
    materials: list[tuple[MaterialUse, MaterialLot]]
    equipment: list[tuple[Equipment, list[str]]]
    holds: list[Hold]
    reject_names: dict[int, str]


def _status(lot: Lot, seq: int) -> StepStatus:
    if lot.state in (LotState.COMPLETED, LotState.SHIPPED):
        return StepStatus.DONE
    if seq < lot.step_seq:
        return StepStatus.DONE
    if lot.state in ACTIVE_LOT_STATES:
        return StepStatus.CURRENT if seq == lot.step_seq else StepStatus.TODO
    if lot.state == LotState.BANKED:  # in the die bank: the whole route is ahead
        return StepStatus.TODO
    # Scrapped or merged lots stop where they were; later steps are never reached.
    return StepStatus.NOT_REACHED


def lot_wafers(session: Session, lot: Lot) -> list[Wafer]:
    """The wafers the lot's units came from (inherited through splits and merges)."""
    return list(session.scalars(
        select(Wafer).join(LotWafer, LotWafer.wafer_pk == Wafer.id)
        .where(LotWafer.lot_id == lot.id).order_by(Wafer.fab_lot, Wafer.wafer_id)))


def _moment(text: Any, default: datetime) -> datetime:
    """A time kept as ISO text in an event's data, aware (UTC when it says no zone)."""
    try:
        moment = datetime.fromisoformat(text) if isinstance(text, str) else default
    except ValueError:
        moment = default
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _run_start(run: StepRun | AbortedRun) -> datetime:
    moment = run.started_at
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def lot_page(session: Session, lot: Lot) -> LotPage:
    """The lot page's reading: wafers, every route step with its runs, history, materials
    consumed and equipment used."""
    runs = list(session.scalars(
        select(StepRun).where(StepRun.lot_id == lot.id)
        .options(joinedload(StepRun.equipment), selectinload(StepRun.rejects))
        .order_by(StepRun.started_at, StepRun.id)))
    by_seq: dict[int, list[StepRun | AbortedRun]] = defaultdict(list)
    for run in runs:
        by_seq[run.step_seq].append(run)
    route = services.route_steps(lot)
    events = services.history(session, lot)
    seq_of = {step.code: step.seq for step in route}
    for event in events:
        if event.kind == EventKind.TRACK_IN_ABORT and event.step_code in seq_of:
            data = event.data or {}
            by_seq[seq_of[event.step_code]].append(AbortedRun(
                equipment=event.equipment, operator=data.get("operator"),
                started_at=_moment(data.get("started_at"), event.at), aborted_at=event.at,
                aborted_by=event.by,
                qty_in=event.qty_in, reason=data.get("abort_reason", "")))
    progress = [StepProgress(step, _status(lot, step.seq),
                             sorted(by_seq.get(step.seq, []), key=_run_start))
                for step in route]
    materials = [(use, material) for use, material in session.execute(
        select(MaterialUse, MaterialLot)
        .join(MaterialLot, MaterialLot.id == MaterialUse.material_lot_id)
        .where(MaterialUse.lot_id == lot.id).order_by(MaterialUse.at, MaterialUse.id))]
    used: dict[int, tuple[Equipment, list[str]]] = {}
    for run in runs:
        tool, steps = used.setdefault(run.equipment_id, (run.equipment, []))
        if run.step_code not in steps:
            steps.append(run.step_code)
    reason_ids = {r.reason_id for run in runs for r in run.rejects}
    names: dict[int, str] = {}
    if reason_ids:
        names = {rid: code for rid, code in session.execute(
            select(ReasonCode.id, ReasonCode.code).where(ReasonCode.id.in_(reason_ids)))}
    return LotPage(wafers=lot_wafers(session, lot), progress=progress, runs=runs,
                   events=events, materials=materials,
                   equipment=list(used.values()), holds=open_holds(session, lot),
                   reject_names=names)


def reject_lines(run: StepRun, names: dict[int, str]) -> list[tuple[str, int]]:
    """A run's rejects as (reason code, quantity)."""
    return [(names.get(r.reason_id, "?"), r.qty) for r in run.rejects]


# --- WIP board -------------------------------------------------------------------------

@dataclass
class StepCount:
    code: str
    name: str
    queued: int = 0
    running: int = 0
    on_hold: int = 0
    lots: int = 0
    quantity: int = 0


@dataclass
class WipSummary:
    steps: list[StepCount]
    closed: dict[str, tuple[int, int]]  # state -> (lots, quantity)

    @property
    def total(self) -> StepCount:
        total = StepCount("", "")
        for row in self.steps:
            total.queued += row.queued
            total.running += row.running
            total.on_hold += row.on_hold
            total.lots += row.lots
            total.quantity += row.quantity
        return total


def step_order(routes: list[tuple[StepInfo, ...]]) -> dict[str, tuple[int, str]]:
    """One order of step codes across routes that keeps each route's own order where the
    routes agree (a topological order; ties by earliest position, then code). Steps that
    routes order differently follow in that tie order. Returns code -> (position, name)."""
    after: dict[str, set[str]] = defaultdict(set)
    waiting: dict[str, int] = {}
    first: dict[str, int] = {}
    names: dict[str, str] = {}
    for steps in routes:
        for i, st in enumerate(steps):
            waiting.setdefault(st.code, 0)
            first[st.code] = min(first.get(st.code, st.seq), st.seq)
            names.setdefault(st.code, localized(st.name, getattr(st, "name_zh", None)))
            if i and st.code not in after[steps[i - 1].code] and st.code != steps[i - 1].code:
                after[steps[i - 1].code].add(st.code)
                waiting[st.code] += 1
    ready = [(first[c], c) for c, n in waiting.items() if n == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _pos, code = heapq.heappop(ready)
        order.append(code)
        for nxt in after[code]:
            waiting[nxt] -= 1
            if waiting[nxt] == 0:
                heapq.heappush(ready, (first[nxt], nxt))
    order += sorted((c for c in waiting if c not in set(order)), key=lambda c: (first[c], c))
    return {code: (i, names[code]) for i, code in enumerate(order)}


def wip_summary(session: Session, lots: Select[Any], filters: dict[str, Any],
                actor: Actor | None) -> WipSummary:
    """Lots and quantity per step for the lots `lots` selects (the board's `filters`),
    active lots by step in route order across routes, closed lots by state.

    The closed lots come from `lot_closed_total` (kept by triggers) unless the board is
    filtered on a fab lot, which those totals do not keep; then the few lots of that fab lot
    are counted themselves."""
    from_totals = not filters.get("fab_lot")
    sub = (lots.where(Lot.state.in_(ACTIVE_LOT_STATES)) if from_totals else lots) \
        .order_by(None).subquery()
    rows = session.execute(
        select(sub.c.step_code, sub.c.route_id, sub.c.state, func.count(),
               func.coalesce(func.sum(sub.c.quantity), 0),
               func.coalesce(func.sum(case((sub.c.open_holds > 0, 1), else_=0)), 0))
        .group_by(sub.c.step_code, sub.c.route_id, sub.c.state)).all()
    route_ids = sorted({r[1] for r in rows if r[2] in ACTIVE_LOT_STATES})
    routes = [route_step_infos(session, route) for route in session.scalars(
        select(Route).where(Route.id.in_(route_ids)))] if route_ids else []
    order = step_order(routes)
    steps: dict[str, StepCount] = {}
    closed: dict[str, tuple[int, int]] = (
        closed_totals(session, filters, actor) if from_totals else {})
    for code, _route, state, n, qty, held in rows:
        if state == LotState.BANKED:  # the die bank is not WIP, nor out of it
            continue
        if state not in ACTIVE_LOT_STATES:
            lots_, total = closed.get(state, (0, 0))
            closed[state] = (lots_ + n, total + int(qty))
            continue
        row = steps.setdefault(code, StepCount(code, order.get(code, (0, code))[1]))
        if state == LotState.RUNNING:
            row.running += n
        else:
            row.queued += n
        row.on_hold += int(held)
        row.lots += n
        row.quantity += int(qty)
    ranked = sorted(steps.values(), key=lambda r: (order.get(r.code, (len(order), ""))[0],
                                                   r.code))
    return WipSummary(steps=ranked, closed=closed)


def closed_totals(session: Session, filters: dict[str, Any],
                  actor: Actor | None) -> dict[str, tuple[int, int]]:
    """state -> (lots, quantity) of the closed lots matching the board's filters on state,
    step, product, customer and holds, read from `lot_closed_total`."""
    if filters.get("state") and filters["state"] not in CLOSED_LOT_STATES:
        return {}
    t = LotClosedTotal
    stmt = select(t.state, func.sum(t.lots), func.sum(t.quantity)).where(
        *services.board_filters(filters, state=t.state, step_code=t.step_code,
                                product_id=t.product_id, customer_id=t.customer_id,
                                held=lambda on_hold: t.held == on_hold)) \
        .group_by(t.state).having(func.sum(t.lots) > 0)
    return {row[0]: (int(row[1]), int(row[2]))
            for row in session.execute(scoped(cast("Select[Any]", stmt), t.customer_id,
                                              actor))}

