"""Shop-floor rules: receiving, track-in and track-out, split and merge.

Every function works in the caller's transaction, writes the lot's history event and its
audit record there, and raises before changing anything when a rule refuses the move.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from flask import current_app, has_app_context
from flask_babel import gettext, pgettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    Select,
    bindparam,
    delete,
    exists,
    func,
    insert,
    select,
    true,
    update,
)
from sqlalchemy.orm import Session, aliased, joinedload, object_session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql import ColumnElement

from mes import audit, marking
from mes.auth.actor import Actor, actor_name
from mes.auth.scope import scope_customer, scoped
from mes.catalog import maintenance
from mes.catalog.models import (
    Bom,
    Customer,
    Durable,
    Equipment,
    MaterialLot,
    Product,
    ReasonCode,
    RouteStep,
)
from mes.catalog.services import (
    BomInfo,
    StepInfo,
    bom_info,
    current_bom,
    current_route,
    mounted_durables,
    route_step_infos,
)
from mes.config import DEFAULTS
from mes.db import utcnow
from mes.errors import Conflict, ErrorCode, InvalidInput, NotFound
from mes.floor import genealogy, lifecycle, persistence
from mes.floor.models import (
    LOT_NO_LENGTH,
    CustomerEvent,
    Lot,
    LotEdge,
    LotEvent,
    LotNumberCounter,
    LotReject,
    LotToMove,
    LotWafer,
    MaterialUse,
    PresentedLot,
    StepRun,
    Wafer,
)
from mes.orders.models import OrderAllocation
from mes.portal.visibility import customer_sees, held_as_seen
from mes.quality.models import FutureHold, Hold
from mes.quality.moisture import check_floor_life
from mes.spc.models import SpcSubgroup
from mes.testfloor.models import TestRun
from mes.vocabulary import (
    ACTIVE_LOT_STATES,
    AVAILABLE_EQUIPMENT_STATES,
    CLOSED_LOT_STATES,
    DurableKind,
    EdgeKind,
    EquipmentKind,
    EquipmentState,
    EventKind,
    FutureHoldStatus,
    HoldStatus,
    LotState,
    MaterialType,
    ReasonKind,
    StepKind,
)


def _event(session: Session, lot: Lot, kind: str, actor: Actor, **details: Any) -> None:
    """Write one history event and its audit record at once (the lot row must exist); the
    lot's new audit chain head is saved with the lot at the flush."""
    lot.audit_seq, lot.audit_hash = persistence.write_event(session, lot, kind, actor,
                                                            **details)


def record_event(session: Session, lot: Lot, kind: str, actor: Actor, **details: Any) -> None:
    """Write one lot history event and its audit record on the lot's chain: the way other
    domains (holds, shipping) record what they do to a lot."""
    _event(session, lot, kind, actor, **details)


def record_events(session: Session, kind: str, actor: Actor,
                  items: Sequence[tuple[Lot, dict[str, Any]]], *,
                  at: datetime | None = None) -> None:
    """`record_event` of one kind on many lots (each with its data), at the lot's step, in
    two executemany INSERTs instead of two objects per lot: for actions on thousands of
    lots at once (a mass hold). The events are written at once, not at the next flush."""
    persistence.write_events(session, kind, actor, items, at or utcnow())


# --- reading ---------------------------------------------------------------------------

# What a move reads with the lot, in the same query: the tool named for a track-in, and for
# a track-out whether any active future hold waits at the step the lot will arrive at.
_TOOL = aliased(Equipment, name="named_tool")
_NEXT_STEP = aliased(RouteStep, name="next_step")
_ARRIVAL_RULES = exists().where(
    FutureHold.status == FutureHoldStatus.ACTIVE, FutureHold.at_step == _NEXT_STEP.code,
    _NEXT_STEP.route_id == Lot.route_id, _NEXT_STEP.seq == Lot.step_seq + 1,
).label("arrival_rules")


def spellings(code: str) -> list[str]:
    """The spellings a typed or scanned code is looked up by: as typed, in upper case and in
    lower case. Codes (lot numbers, equipment, material lots) are stored upper case in
    practice, so a code typed in any case is found, and the lookup stays an equality on the
    column's unique index (`IN` of up to three values), never a scan of `upper(column)`."""
    return list(dict.fromkeys((code, code.upper(), code.lower())))


def best_spelling(found: Sequence[str], code: str) -> str | None:
    """Of the stored codes `found` by `spellings(code)`, the one meant: the exact spelling
    first, then upper case, then lower case."""
    for spelling in spellings(code):
        if spelling in found:
            return spelling
    return None


_LOT_BY_NUMBER = select(Lot).where(Lot.lot_no.in_(bindparam("lot_nos", expanding=True))
                                   ).options(joinedload(Lot.product), joinedload(Lot.customer),
                                             joinedload(Lot.route))
_GET_LOT = _LOT_BY_NUMBER.options(joinedload(Lot.equipment))
# Statements built once each: a statement built anew costs more to compose and key for the
# statement cache than the database takes to run it.
_SCOPED_LOT = _GET_LOT.where(Lot.customer_id == bindparam("customer_id"))


def _durables_on(equipment_id: Any) -> tuple[Any, Any]:
    """How many durables are mounted on the tool, and the fewest uses any has left, as
    columns of a move's first query."""
    on_tool = Durable.equipment_id == equipment_id
    return (select(func.count()).where(on_tool).scalar_subquery(),
            select(func.min(Durable.life_limit - Durable.used - Durable.reserved))
            .where(on_tool).scalar_subquery())


# A lot tracked in is queued, on no equipment (a lot on one is refused, and reads it only
# then, to name it): its track-in does not join the lot's equipment.
_LOT_TO_TRACK_IN = _LOT_BY_NUMBER.add_columns(_TOOL, *_durables_on(_TOOL.id)).outerjoin_from(
    Lot, _TOOL, _TOOL.code.in_(bindparam("tools", expanding=True)))
_LOT_TO_TRACK_OUT = _GET_LOT.add_columns(StepRun, _ARRIVAL_RULES,
                                         _durables_on(Lot.equipment_id)[0]).outerjoin_from(
    Lot, StepRun, StepRun.id == Lot.run_id)


def _no_lot(lot_no: str) -> NotFound:
    return NotFound(_l("No lot %(lot_no)s.", lot_no=lot_no))


def get_lot(session: Session, lot_no: str, actor: Actor | None = None) -> Lot:
    """The lot `lot_no`. Another customer's lot is NotFound, as if it did not exist."""
    customer_id = scope_customer(actor)
    lots = session.scalars(_GET_LOT if customer_id is None else _SCOPED_LOT,
                           {"lot_nos": spellings(lot_no), "customer_id": customer_id}).all()
    return _meant(lots, lot_no, lambda lot: lot.lot_no)


T = TypeVar("T")


def _meant(rows: Sequence[T], lot_no: str, number: Callable[[T], str]) -> T:
    """Of the rows found by the spellings of `lot_no`, the one of the best spelling."""
    if not rows:
        raise _no_lot(lot_no)
    best = best_spelling([number(row) for row in rows], lot_no)
    return next(row for row in rows if number(row) == best)


def _moving(session: Session, stmt: Select[Any], params: dict[str, Any]) -> list[Any]:
    """The rows of a move's first query (one per spelling of the lot number found, and of
    the tool's); on PostgreSQL the query also takes the number of the move's audit record
    (a round trip less; the WITH runs once, every row carries the same number)."""
    ahead = audit.number_ahead(session)
    if ahead is None:
        return list(session.execute(stmt, params).all())
    cte, ahead_params = ahead
    key = id(stmt)
    with_ahead = _WITH_AHEAD.get(key)
    if with_ahead is None:
        with_ahead = _WITH_AHEAD[key] = stmt.add_columns(cte.c.series, cte.c.value).join_from(
            Lot, cte, true())
    rows = list(session.execute(with_ahead, {**params, **ahead_params}).all())
    if rows:
        audit.took_ahead(session, rows[0][-2], rows[0][-1])
    return rows


_WITH_AHEAD: dict[int, Select[Any]] = {}


def lot_to_move(session: Session, lot_no: str, *, tool: str | None = None) -> LotToMove:
    """The lot `lot_no` with, in the same query, the equipment `tool` for a track-in, or
    (without `tool`) its open step run and whether future holds wait at its next step, for
    a track-out. For plant users only: no customer scope."""
    if tool is not None:
        rows = _moving(session, _LOT_TO_TRACK_IN, {"lot_nos": spellings(lot_no),
                                                   "tools": spellings(tool)})
        row = _meant(rows, lot_no, lambda r: r[0].lot_no)
        tools = [r for r in rows if r[1] is not None and r[0] is row[0]]
        best = best_spelling([r[1].code for r in tools], tool)
        named = next((r for r in tools if r[1].code == best), None)
        if named is None:
            return LotToMove(row[0])
        return LotToMove(row[0], named_tool=named[1], durables_mounted=named[2],
                         durable_left=named[3])
    found = _meant(_moving(session, _LOT_TO_TRACK_OUT, {"lot_nos": spellings(lot_no)}),
                   lot_no, lambda r: r[0].lot_no)
    return LotToMove(found[0], open_run=found[1], rules_at_next_step=found[2],
                     durables_mounted=found[3])


def lot_query(filters: dict[str, Any], actor: Actor | None = None) -> Select[Any]:
    """Lots matching the WIP filters, most urgent first (priority, then due date)."""
    def held(on_hold: bool) -> ColumnElement[bool]:
        if scope_customer(actor) is not None:
            # A customer's lot is on hold as far as they see its holds (the plant's policy).
            return held_as_seen(on_hold, Lot.id)
        return Lot.open_holds > 0 if on_hold else Lot.open_holds == 0

    stmt = select(Lot).options(joinedload(Lot.product), joinedload(Lot.customer),
                               joinedload(Lot.route), joinedload(Lot.equipment)).where(
        *board_filters(filters, state=Lot.state, step_code=Lot.step_code,
                       product_id=Lot.product_id, customer_id=Lot.customer_id, held=held))
    if filters.get("fab_lot"):
        stmt = stmt.where(Lot.fab_lot == filters["fab_lot"])
    return scoped(stmt, Lot.customer_id, actor).order_by(
        Lot.priority, Lot.due_date.asc().nulls_last(), Lot.id)


def board_filters(filters: dict[str, Any], *, state: Any, step_code: Any, product_id: Any,
                  customer_id: Any, held: Callable[[bool], ColumnElement[bool]]
                  ) -> list[ColumnElement[bool]]:
    """What the WIP filters state, step, product, customer and on_hold (a lot list's
    `filters`) mean on the columns given: the lots' own, or the closed-lot totals'."""
    clauses: list[ColumnElement[bool]] = []
    if filters.get("state"):
        clauses.append(state == filters["state"])
    if filters.get("step"):
        clauses.append(step_code == filters["step"])
    if filters.get("product"):
        clauses.append(product_id == select(Product.id).where(
            Product.code == filters["product"]).scalar_subquery())
    if filters.get("customer"):
        clauses.append(customer_id == select(Customer.id).where(
            Customer.code == filters["customer"]).scalar_subquery())
    if filters.get("on_hold") is not None:
        clauses.append(held(bool(filters["on_hold"])))
    return clauses


def present(session: Session, lots: Sequence[Lot], actor: Actor | None = None
            ) -> list[PresentedLot]:
    """The lots as the lot pages and the API show them to `actor`: with their parents and
    children (one query, for lots in the genealogy), their open holds (one query, when some
    lot has one; a customer user gets only the holds the plant's policy lets them see,
    mes.portal.visibility) and the number of steps of their route."""
    parents, children = genealogy.neighbours(
        session, [lot.id for lot in lots if lot.in_genealogy])
    holds: dict[int, list[int]] = defaultdict(list)
    held = [lot.id for lot in lots if lot.open_holds]
    if held:
        for lot_id, hold_id in session.execute(
                select(Hold.lot_id, Hold.id).where(
                    Hold.lot_id.in_(held), Hold.status == HoldStatus.OPEN,
                    *([customer_sees()] if scope_customer(actor) is not None else []))
                .order_by(Hold.id)):
            holds[lot_id].append(hold_id)
    return [PresentedLot(lot=lot, steps_total=len(route_steps(lot)), holds=holds[lot.id],
                         parents=parents[lot.id], children=children[lot.id],
                         bom_revision=bom_info(session, lot.bom_id).revision
                         if lot.bom_id is not None else None)
            for lot in lots]


def route_steps(lot: Lot) -> tuple[StepInfo, ...]:
    """The steps of the lot's own route version."""
    session = object_session(lot)
    assert session is not None
    return route_step_infos(session, lot.route)


def current_step(lot: Lot) -> StepInfo:
    return route_steps(lot)[lot.step_seq - 1]


def history(session: Session, lot: Lot) -> list[LotEvent]:
    return list(session.scalars(select(LotEvent).where(LotEvent.lot_id == lot.id)
                                .order_by(LotEvent.id)))


def customer_history(session: Session, lot: Lot) -> list[CustomerEvent]:
    """The lot's events as a customer user may read them, oldest first: kind, time, step
    and quantities; for the events of a hold (placing it, its release, the rework or scrap
    it ordered) the hold's reason code and its customer-facing description; for a release
    the disposition. An event's `data` is never passed on: it holds staff names, internal
    comments, concessions, override reasons and a mass hold's or a containment's whole
    match, which names other customers' lots."""
    events = history(session, lot)
    hold_ids = {ev.data["hold"] for ev in events
                if isinstance((ev.data or {}).get("hold"), int)}
    reasons = {hold_id: (code, description) for hold_id, code, description in session.execute(
        select(Hold.id, ReasonCode.code, ReasonCode.description)
        .join(ReasonCode, ReasonCode.id == Hold.reason_id)
        .where(Hold.lot_id == lot.id, Hold.id.in_(hold_ids), customer_sees()))
        } if hold_ids else {}
    shown = []
    for ev in events:
        data = ev.data or {}
        hold_id = data.get("hold")
        if ev.kind in (EventKind.HOLD, EventKind.RELEASE) and isinstance(hold_id, int) \
                and hold_id not in reasons:
            # A hold the customer does not see yet (the plant's policy): neither its
            # placing nor its release; what it ordered (a rework, a scrap) shows without
            # its reason.
            continue
        code, description = reasons.get(hold_id, (None, None)) \
            if isinstance(hold_id, int) else (None, None)
        disposition = data.get("disposition") if ev.kind == EventKind.RELEASE else None
        shown.append(CustomerEvent(kind=ev.kind, at=ev.at, step=ev.step_code,
                                   qty_in=ev.qty_in, qty_out=ev.qty_out, reason=code,
                                   reason_description=description,
                                   disposition=disposition))
    return shown


# --- late lots -------------------------------------------------------------------------

def plant_date(now: datetime | None = None) -> date:
    """The plant's local date (the PLANT_TIMEZONE setting; its default outside an
    application) at `now`, by default now: due dates are days of the plant's calendar,
    whatever the date in UTC."""
    name = current_app.config["PLANT_TIMEZONE"] if has_app_context() \
        else DEFAULTS["PLANT_TIMEZONE"]
    return (now or utcnow()).astimezone(ZoneInfo(name)).date()


def is_late(lot: Lot, today: date) -> bool:
    """A lot is late when it is still in work (queued or running) and its due date is
    before `today`, the plant's date (`plant_date()`). `late_clause` is the same rule for
    queries; every page and report that says "late" uses one of the two."""
    return lot.state in ACTIVE_LOT_STATES and lot.due_date is not None and lot.due_date < today


def late_clause(today: date) -> ColumnElement[bool]:
    """`is_late` as a condition on Lot rows."""
    return Lot.state.in_(ACTIVE_LOT_STATES) & (Lot.due_date < today)


# --- receiving -------------------------------------------------------------------------

def _lot_prefix() -> str:
    return current_app.config["LOT_NUMBER_PREFIX"] if has_app_context() else "L"


def next_lot_no(session: Session, now: datetime | None = None) -> str:
    """PREFIX + YYMMDD + '-' + a 4-digit sequence of the day (L261122-0001).

    The day's counter row is incremented in place: simultaneous receipts queue on its lock
    and get consecutive numbers. Numbers given by hand in the same shape are skipped.
    """
    stem = f"{_lot_prefix()}{(now or utcnow()):%y%m%d}-"
    while True:
        seq = session.execute(
            update(LotNumberCounter).where(LotNumberCounter.stem == stem)
            .values(last=LotNumberCounter.last + 1).returning(LotNumberCounter.last)).scalar()
        if seq is None:
            # The day's first receipt starts after any number of this shape already given.
            seq = 1
            for taken in session.scalars(select(Lot.lot_no).where(
                    Lot.lot_no.like(stem + "%"), func.length(Lot.lot_no) == len(stem) + 4)
                    .order_by(Lot.lot_no.desc())):
                if taken[len(stem):].isdigit():
                    seq = int(taken[len(stem):]) + 1
                    break
            session.add(LotNumberCounter(stem=stem, last=seq))
        lot_no = f"{stem}{seq:04d}"
        if session.scalar(select(Lot.id).where(Lot.lot_no == lot_no)) is None:
            return lot_no


def receive_lot(session: Session, actor: Actor, data: dict[str, Any]) -> Lot:
    """Receive a wafer lot: it starts queued at the first step of the product's current
    route version and keeps that version.

    A due date, when given, is today or later in the plant's calendar (`plant_date`): a
    date already past would make the lot late the moment it arrives.

    The lot keeps the product's current BOM revision (`current_bom`: a revision a change
    holds back until its requalification passed is not current), or the revision
    `bom_revision` names.

    Raises InvalidInput (unknown product/customer/BOM revision, a due date in the past,
    wafers not unique, die quantities not summing to the quantity, wafer already received),
    Conflict (duplicate lot number).
    """
    due = data.get("due_date")
    if due is not None:
        today = plant_date()
        if due < today:
            raise InvalidInput(
                _l("The due date %(due)s is in the past.", due=due.isoformat()),
                fields={"due_date": [_l("The due date %(due)s is before today (%(today)s, "
                                        "plant time): give today or a later day.",
                                        due=due.isoformat(), today=today.isoformat())]})
    product = session.scalar(select(Product).where(Product.code == data["product"]))
    if product is None:
        raise InvalidInput(_l("Unknown product %(product)s.", product=data['product']),
                           fields={"product": [_l("Unknown product %(product)s.",
                                                  product=data['product'])]})
    customer = session.scalar(select(Customer).where(Customer.code == data["customer"]))
    if customer is None:
        raise InvalidInput(_l("Unknown customer %(customer)s.", customer=data['customer']),
                           fields={"customer": [_l("Unknown customer %(customer)s.",
                                                   customer=data['customer'])]})
    if product.customer_id is not None and product.customer_id != customer.id:
        assert product.customer is not None  # it has a customer_id
        raise InvalidInput(_l("Product %(code)s is made for another customer.", code=product.code),
                           fields={"customer": [_l("Product %(code)s belongs to %(code2)s.",
                                                   code=product.code,
                                                   code2=product.customer.code)]})
    route = current_route(session, product.route_code)
    if route is None or not route.steps:
        raise InvalidInput(_l("Product %(code)s has no route.", code=product.code),
                           fields={"product": [_l("The product's route has no steps.")]})
    wafers = data.get("wafers") or []
    ids = [w["wafer_id"] for w in wafers]
    if len(set(ids)) != len(ids):
        raise InvalidInput(_l("Wafer IDs repeat."), fields={"wafers": [
            _l("Wafer IDs must be unique within the fab lot.")]})
    dies = [w.get("die_qty") for w in wafers]
    if wafers and all(d is not None for d in dies) and sum(dies) != data["quantity"]:
        raise InvalidInput(_l("The wafers' die quantities do not add up to the lot quantity."),
                           code=ErrorCode.QUANTITY_MISMATCH,
                           fields={"quantity": [_l("Wafers hold %(value)s dies, the lot "
                                                   "%(quantity)s.", value=sum(dies),
                                                   quantity=data['quantity'])]})
    if ids:
        taken = session.scalars(select(Wafer.wafer_id).where(
            Wafer.fab_lot == data["fab_lot"], Wafer.wafer_id.in_(ids))).all()
        if taken:
            raise InvalidInput(_l("Some wafers of this fab lot were received already."),
                               fields={"wafers": [_l("Already received: %(items)s.",
                                                     items=', '.join(taken))]})
    lot_no = data.get("lot_no") or next_lot_no(session)
    if session.scalar(select(Lot.id).where(Lot.lot_no == lot_no)) is not None:
        raise Conflict(_l("Lot %(lot_no)s exists already.", lot_no=lot_no),
                       code=ErrorCode.DUPLICATE)
    first = route.steps[0]
    bom = current_bom(session, product)
    if data.get("bom_revision"):
        # A qualification or pilot build names its revision (one a change holds back, say).
        bom = session.scalar(select(Bom).where(Bom.product_id == product.id,
                                               Bom.revision == data["bom_revision"]))
        if bom is None:
            raise InvalidInput(
                _l("Product %(code)s has no BOM revision %(revision)s.", code=product.code,
                   revision=data["bom_revision"]),
                fields={"bom_revision": [_l("Product %(code)s has no BOM revision "
                                            "%(revision)s.", code=product.code,
                                            revision=data["bom_revision"])]})
    now = utcnow()
    # A banked lot waits in the die bank at no step yet: its step is the first one, where
    # its release from the bank (mes.orders.services.release_lot) queues it.
    banked = bool(data.get("bank"))
    lot = Lot(lot_no=lot_no, product=product, customer=customer, route=route, step_seq=1,
              bom_id=bom.id if bom is not None else None,
              audit_seq=0, audit_hash=audit.GENESIS, in_genealogy=False,
              step_code=first.code, state=LotState.BANKED if banked else LotState.QUEUED,
              planned_start=data.get("planned_start") if banked else None,
              quantity=data["quantity"],
              fab_lot=data["fab_lot"], priority=data.get("priority") or 3,
              due_date=data.get("due_date"), arrived_at=now, created_at=now)
    session.add(lot)
    # Flushed for the lot id the wafers and the history point to.
    session.flush()
    for w in wafers:
        wafer = Wafer(fab_lot=data["fab_lot"], wafer_id=w["wafer_id"],
                      die_qty=w.get("die_qty"), received_lot_id=lot.id)
        session.add(wafer)
    session.flush()  # wafer ids for the lot-wafer links
    for wafer in session.scalars(select(Wafer).where(Wafer.received_lot_id == lot.id)):
        session.add(LotWafer(lot_id=lot.id, wafer_pk=wafer.id))
    lot.wafer_count = len(wafers)
    _event(session, lot, EventKind.RECEIVE, actor, qty_out=lot.quantity, at=now,
           data={"fab_lot": lot.fab_lot, "wafers": ids, "product": product.code,
                 "customer": customer.code, "route": route.code,
                 "route_version": route.version,
                 **({"bom_revision": bom.revision} if bom is not None else {}),
                 **({"bank": True} if banked else {})})
    return lot


# --- track-in --------------------------------------------------------------------------

class Blocker(Conflict):
    """Why a lot cannot be tracked in now: the station shows it before the move is tried and
    track_in raises it when it is (one check for both, so a page never promises a move the
    service refuses). `field` names the input it is about, if any."""

    def __init__(self, message: str, *, code: ErrorCode, field: str | None = None) -> None:
        super().__init__(message, code=code, fields={field: [message]} if field else None)
        self.field = field


def lot_blockers(lot: Lot) -> list[Blocker]:
    """Reasons the lot itself cannot be tracked in now, whatever the equipment."""
    found = []
    if lot.state in CLOSED_LOT_STATES:
        found.append(Blocker(gettext("Lot %(lot)s is %(state)s.", lot=lot.lot_no,
                                     state=gettext(lot.state)), code=ErrorCode.LOT_CLOSED))
    if lot.state == LotState.BANKED:
        found.append(Blocker(gettext(
            "Lot %(lot)s is in the die bank; release it to the floor first.", lot=lot.lot_no),
            code=ErrorCode.LOT_BANKED))
    if lot.state == LotState.RUNNING:
        found.append(Blocker(gettext(
            "Lot %(lot)s is already running on %(equipment)s.", lot=lot.lot_no,
            equipment=lot.equipment.code if lot.equipment else "?"),
            code=ErrorCode.ALREADY_RUNNING))
    if lot.open_holds:
        found.append(Blocker(gettext(
            "Lot %(lot)s is on hold (%(n)d open hold(s)).", lot=lot.lot_no,
            n=lot.open_holds), code=ErrorCode.LOT_ON_HOLD))
    return found


def equipment_blockers(step: StepInfo, equipment: Equipment) -> list[Blocker]:
    found = []
    if step.equipment_kind and equipment.kind != step.equipment_kind:
        found.append(Blocker(gettext(
            "%(equipment)s is a %(kind)s; step %(step)s needs a %(needed)s.",
            equipment=equipment.code, kind=EquipmentKind.word(equipment.kind), step=step.code,
            needed=EquipmentKind.word(step.equipment_kind)), code=ErrorCode.WRONG_EQUIPMENT,
            field="equipment"))
    if equipment.state not in AVAILABLE_EQUIPMENT_STATES:
        found.append(Blocker(gettext(
            "%(equipment)s is %(state)s.", equipment=equipment.code,
            state=gettext(equipment.state.replace("_", " "))),
            code=ErrorCode.EQUIPMENT_UNAVAILABLE, field="equipment"))
    elif (full := capacity_blocker(equipment)) is not None:
        found.append(full)
    return found


def capacity_blocker(equipment: Equipment, lots: int = 1) -> Blocker | None:
    """Why `lots` more lots do not fit on the tool now, counting the lots running on it: a
    tool of capacity 1 runs one lot at a time (equipment_busy while it runs one); a batch
    tool runs up to its capacity (capacity_exceeded above it)."""
    running = equipment.lots_running
    if running + lots <= equipment.capacity:
        return None
    if equipment.capacity == 1 and running:
        return Blocker(gettext(
            "%(equipment)s is running another lot.", equipment=equipment.code),
            code=ErrorCode.EQUIPMENT_BUSY, field="equipment")
    if running >= equipment.capacity:
        return Blocker(gettext(
            "%(equipment)s is full: %(running)d of %(capacity)d lots are running on it.",
            equipment=equipment.code, running=running, capacity=equipment.capacity),
            code=ErrorCode.CAPACITY_EXCEEDED, field="equipment")
    return Blocker(gettext(
        "%(equipment)s has %(free)d of %(capacity)d places free, not %(lots)d.",
        equipment=equipment.code, free=equipment.capacity - running,
        capacity=equipment.capacity, lots=lots),
        code=ErrorCode.CAPACITY_EXCEEDED, field="equipment")


_UNITS_RUNNING = select(func.coalesce(func.sum(StepRun.qty_in), 0)).where(
    StepRun.equipment_id == bindparam("tool"), StepRun.finished_at.is_(None))


def unit_capacity_blocker(session: Session, equipment: Equipment, units: int) -> Blocker | None:
    """Why `units` more units do not fit on a tool with a unit capacity, counting the units
    of the lots running on it (capacity_exceeded). A tool without one adds no query."""
    if equipment.unit_capacity is None:
        return None
    running = int(session.scalar(_UNITS_RUNNING, {"tool": equipment.id}) or 0)
    if running + units <= equipment.unit_capacity:
        return None
    return Blocker(gettext(
        "%(equipment)s holds %(capacity)s units at once: %(running)s are in, %(units)s more "
        "do not fit.", equipment=equipment.code, capacity=equipment.unit_capacity,
        running=running, units=units), code=ErrorCode.CAPACITY_EXCEEDED, field="equipment")


def pm_blockers(tool: Equipment, now: datetime) -> list[Blocker]:
    """The tool's preventive maintenance that is due (409 pm_due), naming the plan and
    since when. Whether any is due comes from the tool's row; only then are its plans read."""
    if not maintenance.pm_due(tool, now):
        return []
    session = object_session(tool)
    assert session is not None
    return [Blocker(gettext(
        "%(equipment)s has preventive maintenance %(plan)s due since %(since)s.",
        equipment=tool.code, plan=due.plan.name,
        since=f"{due.due_since:%Y-%m-%d %H:%M}" if due.due_since else "?"),
        code=ErrorCode.PM_DUE, field="equipment")
        for due in maintenance.due_plans(session, tool, now)]


def durable_need(lot: Lot, step: StepInfo) -> int:
    """The uses a track-in of the lot at `step` takes of every durable mounted on the tool:
    its quantity times the step's touchdowns per unit."""
    return lot.quantity * step.touchdowns_per_unit


def durable_blockers(durables: Sequence[Durable], need: int) -> list[Blocker]:
    """The durables mounted on a tool that have not `need` uses left (their life limit less
    the uses made and those the running lots reserved): each is exhausted for the lot."""
    return [Blocker(gettext(
        "%(kind)s %(code)s on %(equipment)s has %(left)s uses left; this lot needs %(need)s.",
        kind=DurableKind.word(d.kind).capitalize(), code=d.code,
        equipment=d.equipment.code if d.equipment is not None else "-",
        left=f"{max(d.left, 0):,}", need=f"{need:,}"),
        code=ErrorCode.DURABLE_EXHAUSTED, field="equipment")
        for d in durables if d.left < need]


def _check_durables(session: Session, move: LotToMove, tool: Equipment, need: int) -> int:
    """Refuse the track-in (409 durable_exhausted) when a durable mounted on the tool has
    not the lot's uses left; the number of durables mounted. The counts come with the lot
    (`lot_to_move`); only a refusal reads the durables themselves, to name them."""
    if move.named_tool is tool and move.durables_mounted is not None:
        mounted, left = move.durables_mounted, move.durable_left
    else:
        mounted, left = session.execute(select(*_durables_on(tool.id))).one()
    if mounted and left is not None and left < need:
        for blocker in durable_blockers(mounted_durables(session, [tool.id])[tool.id], need):
            raise blocker
    return int(mounted or 0)


def lot_bom(lot: Lot) -> BomInfo | None:
    """The BOM revision the lot was received with (read once per process), or None."""
    if lot.bom_id is None:
        return None
    session = object_session(lot)
    assert session is not None
    return bom_info(session, lot.bom_id)


def _minutes_left(until: datetime, now: datetime) -> int:
    return max(1, -(-int((until - now).total_seconds()) // 60))


def material_lot_blocker(m: MaterialLot, now: datetime) -> Blocker | None:
    """Why an unexpired time-limited material lot is not ready for use: still in the
    freezer, thawing, or not opened yet (its work life not started)."""
    if m.thaw_minutes:
        ready = m.ready_at
        if ready is None:
            return Blocker(gettext(
                "Material lot %(code)s is still in the freezer: record its removal, then "
                "let it thaw %(n)d min.", code=m.code, n=m.thaw_minutes),
                code=ErrorCode.MATERIAL_NOT_READY, field="materials")
        if ready > now:
            return Blocker(gettext(
                "Material lot %(code)s is thawing: ready in %(n)d min.", code=m.code,
                n=_minutes_left(ready, now)), code=ErrorCode.MATERIAL_NOT_READY,
                field="materials")
    if m.work_life_hours and m.opened_at is None:
        return Blocker(gettext(
            "Material lot %(code)s is not opened yet: record its opening (work life "
            "%(hours)s h).", code=m.code, hours=f"{m.work_life_hours:g}"),
            code=ErrorCode.MATERIAL_NOT_READY, field="materials")
    return None


def material_blockers(step: StepInfo, materials: Sequence[MaterialLot],
                      bom: BomInfo | None = None) -> list[Blocker]:
    """Why the material lots given do not do for a track-in at `step`.

    Without a BOM the step's material types (route step `materials`) are required. With
    one, the BOM's items at the step are required as well, and every material lot given
    must be of a type the BOM names at the step with one of the part numbers it allows.
    A material that must thaw and is not thawed yet is not ready; one past its expiry or
    its work life is expired."""
    found = []
    now = utcnow()
    allowed = bom.steps.get(step.code, {}) if bom is not None else {}
    usable = []
    for m in materials:
        if m.expired:
            assert m.expires_at is not None
            found.append(Blocker(gettext(
                "Material lot %(code)s's work life ended at %(time)s.", code=m.code,
                time=f"{m.expires_at:%Y-%m-%d %H:%M}") if m.opened_at is not None and
                m.work_life_hours else gettext(
                "Material lot %(code)s expired on %(date)s.", code=m.code,
                date=f"{m.expires_at:%Y-%m-%d}"),
                code=ErrorCode.MATERIAL_EXPIRED, field="materials"))
            continue
        if bom is not None and (m.part_number not in allowed[m.material]
                                if m.material in allowed else
                                m.material not in (step.materials or ())):
            found.append(Blocker(gettext(
                "Material lot %(code)s (%(part)s) is not on BOM revision %(revision)s for step "
                "%(step)s; allowed: %(allowed)s.", code=m.code, part=m.part_number or "-",
                revision=bom.revision, step=step.code,
                allowed=", ".join(allowed.get(m.material, ())) or ", ".join(
                    p for parts in allowed.values() for p in parts) or "-"),
                code=ErrorCode.WRONG_MATERIAL, field="materials"))
            continue
        blocker = material_lot_blocker(m, now)
        if blocker is not None:
            found.append(blocker)
            continue
        usable.append(m)
    given = {m.material for m in usable}
    for needed in dict.fromkeys([*(step.materials or []), *allowed]):
        if needed not in given:
            parts = allowed.get(needed)
            found.append(Blocker(gettext(
                "Step %(step)s needs a %(material)s lot (%(parts)s).", step=step.code,
                material=MaterialType.word(needed), parts=", ".join(parts)) if parts else
                gettext("Step %(step)s needs a %(material)s lot.", step=step.code,
                        material=MaterialType.word(needed)),
                code=ErrorCode.MATERIAL_REQUIRED, field="materials"))
    return found


def _materials(session: Session, codes: Sequence[str]) -> list[MaterialLot]:
    if not codes:
        return []
    found = {m.code: m for m in session.scalars(
        select(MaterialLot).where(MaterialLot.code.in_(
            [spelling for c in codes for spelling in spellings(c)])))}
    meant = {c: best_spelling(list(found), c) for c in codes}
    unknown = [c for c in codes if meant[c] is None]
    if unknown:
        raise InvalidInput(_l("Unknown material lot %(items)s.", items=', '.join(unknown)),
                           fields={"materials": [_l("Unknown material lot %(code)s.", code=c)
                                                 for c in unknown]})
    return list({found[str(meant[c])].id: found[str(meant[c])] for c in codes}.values())


_EQUIPMENT_BY_CODE = select(Equipment).where(
    Equipment.code.in_(bindparam("codes", expanding=True)))


def equipment_by_code(session: Session, code: str) -> Equipment | None:
    """The equipment `code` as typed or scanned, in any case (`spellings`)."""
    tools = {t.code: t for t in session.scalars(_EQUIPMENT_BY_CODE, {"codes": spellings(code)})}
    best = best_spelling(list(tools), code)
    return tools[best] if best is not None else None


def _equipment(session: Session, code: str, named: Equipment | None = None) -> Equipment:
    """The equipment `code` (in any case): `named` when it was read already."""
    equipment = named if named is not None and named.code in spellings(code) \
        else equipment_by_code(session, code)
    if equipment is None:
        raise InvalidInput(_l("Unknown equipment %(code)s.", code=code),
                           fields={"equipment": [_l("Unknown equipment %(code)s.", code=code)]})
    return equipment


def _check_step(lot: Lot, step_code: str) -> None:
    if lot.step_code != step_code:
        raise Conflict(_l("Lot %(lot)s is at step %(step_code)s, not %(step_code2)s.",
                          lot=lot.lot_no, step_code=lot.step_code, step_code2=step_code),
                       code=ErrorCode.WRONG_STEP)


def _tool_after(tool: Equipment, running: int, now: datetime, actor: Actor
                ) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The tool's row values once `running` lots run on it, and the row of its state
    history when its E10 state changes with them: a lot running makes a standby tool
    productive, the last lot leaving makes a productive tool standby. A tool put in another
    state while lots ran on it (a down state) stays there until someone changes it."""
    values: dict[str, Any] = {"lots_running": running}
    if running and tool.state == EquipmentState.STANDBY:
        state = EquipmentState.PRODUCTIVE
    elif not running and tool.state == EquipmentState.PRODUCTIVE:
        state = EquipmentState.STANDBY
    else:
        return values, None
    values.update(state=state, state_since=now)
    return values, {"equipment_id": tool.id, "from_state": tool.state, "to_state": state,
                    "at": now, "by": actor_name(actor), "comment": ""}


def _check_track_in(session: Session, move: LotToMove, step: str, tool: Equipment,
                    used: Sequence[MaterialLot]) -> persistence.DurableWrite | None:
    """Every rule of a track-in of the lot at `step` on `tool` with the material lots `used`,
    before anything is written: the single track-in and each lot of a batch go through it.
    Answers the reservation of the durables mounted on the tool that the move's write makes,
    if any are mounted."""
    lot = move.lot
    for blocker in lot_blockers(lot):
        raise blocker
    _check_step(lot, step)
    route_step = current_step(lot)
    if route_step.kind == StepKind.PACK:
        check_floor_life(session, lot)
    # Only a lot with a BOM reads it (once per process): the others add no query.
    for blocker in equipment_blockers(route_step, tool) + pm_blockers(tool, utcnow()) + \
            material_blockers(route_step, used, lot_bom(lot)):
        raise blocker
    need = durable_need(lot, route_step)
    mounted = _check_durables(session, move, tool, need)
    return persistence.DurableWrite("reserve", tool.id, need, mounted=mounted) if mounted \
        else None


def _write_track_in(session: Session, actor: Actor, lot: Lot, tool: Equipment,
                    used: Sequence[MaterialLot], now: datetime, *,
                    tool_values: dict[str, Any] | None,
                    state_change: dict[str, Any] | None,
                    durables: persistence.DurableWrite | None) -> None:
    """Write a checked track-in: the history event, the lot, the new step run, the tool's
    row when `tool_values` are given (with its state history row), the material uses."""
    event = persistence.event_write(
        session, lot, EventKind.TRACK_IN, actor, equipment=tool.code, qty_in=lot.quantity, at=now,
        data={"materials": [m.code for m in used]})
    run_id = persistence.write_move(
        session, lot, now, event,
        lot_values={"state": LotState.RUNNING, "equipment_id": tool.id},
        others=[(tool, tool_values)] if tool_values is not None else [],
        state_change=state_change, durables=durables,
        new_run={"lot_id": lot.id, "route_id": lot.route_id, "step_seq": lot.step_seq,
                 "step_code": lot.step_code, "equipment_id": tool.id,
                 "operator": actor_name(actor), "arrived_at": lot.arrived_at,
                 "started_at": now, "qty_in": lot.quantity})
    if durables is not None and durables.answered != durables.mounted:
        # A simultaneous track-in took the life this lot needed: nothing of this one stays
        # (the request's transaction is rolled back with the refusal).
        raise Conflict(_l("A durable on %(equipment)s has no longer the %(need)s uses this lot "
                          "needs: another lot took them. Reload the station.",
                          equipment=tool.code, need=f"{durables.need:,}"),
                       code=ErrorCode.DURABLE_EXHAUSTED)
    set_committed_value(lot, "equipment", tool)
    if used:
        session.connection().execute(insert(MaterialUse.__table__), [
            {"run_id": run_id, "lot_id": lot.id, "material_lot_id": m.id,
             "step_code": lot.step_code, "at": now} for m in used])


def track_in(session: Session, actor: Actor, lot: Lot | LotToMove, *, step: str,
             equipment: str, materials: Sequence[str] = ()) -> Lot:
    """Start the lot at its current step on a piece of equipment.

    Refused (409) when the lot is closed, already running, on hold or not at `step`; when
    the equipment is of the wrong kind, not productive/standby, busy (capacity 1) or full
    (capacity_exceeded: a batch tool with every place taken, or its unit capacity) or has a
    preventive maintenance due (pm_due); when a material lot is expired or a material the
    step requires is missing; at a pack step, when the lot's moisture floor life has run out
    (floor_life_expired, until it is baked); when a durable mounted on the tool has not the
    lot's quantity times the step's touchdowns per unit left (durable_exhausted: that many
    uses are reserved on each mounted durable, in the move's write, under the condition that
    its life holds them, so of two track-ins racing for the last life one wins). Unknown
    equipment or material lots are 422.
    """
    move = lot if isinstance(lot, LotToMove) else LotToMove(lot)
    lot = move.lot
    tool = _equipment(session, equipment, move.named_tool)
    used = _materials(session, list(materials))
    durables = _check_track_in(session, move, step, tool, used)
    units = unit_capacity_blocker(session, tool, lot.quantity)
    if units is not None:
        raise units
    now = utcnow()
    tool_values, state_change = _tool_after(tool, tool.lots_running + 1, now, actor)
    _write_track_in(session, actor, lot, tool, used, now, tool_values=tool_values,
                    state_change=state_change, durables=durables)
    return lot


def batch_track_in(session: Session, actor: Actor, equipment: str, *, step: str,
                   lots: Sequence[str], materials: Sequence[str] = ()) -> tuple[Equipment,
                                                                              list[Lot]]:
    """Start several lots at the same step together on one tool (a batch: an oven load, a
    plating run), all or nothing: every rule of a single track-in applies to each lot (the
    material lots named, if any, are used by every lot), and the batch must fit the tool's
    free places (its capacity less the lots running on it) and its unit capacity. Each
    lot then runs, and tracks out, on its own.

    Refused before anything is written: 404 for unknown equipment; 422 for unknown or
    repeated lots or unknown material lots; 409 capacity_exceeded above the capacity, and
    the 409s of `track_in` for any lot.
    """
    if len({n.upper() for n in lots}) != len(lots):
        message = _l("A lot is named twice.")
        raise InvalidInput(message, fields={"lots": [message]})
    tool = equipment_by_code(session, equipment)
    if tool is None:
        raise NotFound(_l("No equipment %(code)s.", code=equipment))
    moved = lots_by_number(session, lots)
    if len({lot.id for lot in moved}) != len(moved):
        message = _l("A lot is named twice.")
        raise InvalidInput(message, fields={"lots": [message]})
    used = _materials(session, list(materials))
    reserves = {lot.id: _check_track_in(session, LotToMove(lot), step, tool, used)
                for lot in moved}
    full = capacity_blocker(tool, len(moved)) or unit_capacity_blocker(
        session, tool, sum(lot.quantity for lot in moved))
    if full is not None:
        raise full
    now = utcnow()
    # The tool's row once, with the last lot's move, for every lot of the batch. The lots
    # are written in the order of their ids and the tool after them, as every move locks
    # its lot before its tool: simultaneous moves wait for each other, never deadlock.
    tool_values, state_change = _tool_after(tool, tool.lots_running + len(moved), now, actor)
    ordered = sorted(moved, key=lambda lot: lot.id)
    for lot in ordered:
        last = lot is ordered[-1]
        _write_track_in(session, actor, lot, tool, used, now,
                        tool_values=tool_values if last else None,
                        state_change=state_change if last else None,
                        durables=reserves[lot.id])
    return tool, moved


# --- track-out -------------------------------------------------------------------------

def _run_durables(session: Session, move: LotToMove, run: StepRun,
                  steps: Sequence[StepInfo], mode: str) -> persistence.DurableWrite | None:
    """What ending the run does to the durables of its tool: `use` (track-out: every unit
    that went in, good or rejected, counts) or `release` (undoing the track-in) the uses its
    track-in reserved. Durables cannot change on a tool while a lot runs on it, so they are
    the ones reserved on."""
    if run.equipment_id is None:
        return None
    mounted = move.durables_mounted
    if mounted is None:
        mounted = session.scalar(select(func.count()).where(
            Durable.equipment_id == run.equipment_id))
    if not mounted:
        return None
    return persistence.DurableWrite(
        mode, run.equipment_id, run.qty_in * steps[run.step_seq - 1].touchdowns_per_unit)


def track_out(session: Session, actor: Actor, lot: Lot | LotToMove, *, step: str,
              good_qty: int, rejects: Sequence[dict[str, Any]] = ()) -> Lot:
    """Finish the step: good + rejects must equal the quantity tracked in.

    The lot moves to the next step (queued) or completes after the last; the equipment is
    free again. A lot held while running may be tracked out and stays held; a step yield
    below the step's minimum puts it on hold, and the future holds of the step it arrives
    at apply (mes.quality, through mes.floor.lifecycle). Refused with 409 not_running /
    wrong_step, 409 sample_due (a data collection plan of the step measures every lot and
    the lot's subgroup is not entered; mes.spc, through mes.floor.lifecycle), 422
    quantity_mismatch, and 422 for a reason code that is unknown or not of kind reject.
    """
    move = lot if isinstance(lot, LotToMove) else LotToMove(lot)
    lot = move.lot
    if lot.state != LotState.RUNNING or lot.run_id is None:
        raise Conflict(_l("Lot %(lot)s is not running.", lot=lot.lot_no),
                       code=ErrorCode.NOT_RUNNING)
    _check_step(lot, step)
    run = move.open_run
    if run is None or run.id != lot.run_id:
        run = session.get(StepRun, lot.run_id)
    assert run is not None
    codes = [r["reason"] for r in rejects]
    reasons = {r.code: r for r in session.scalars(
        select(ReasonCode).where(ReasonCode.code.in_(codes)))} if codes else {}
    bad = [c for c in codes if c not in reasons or reasons[c].kind != ReasonKind.REJECT]
    if bad:
        raise InvalidInput(_l("Rejects need reject reason codes."),
                           fields={"rejects": [_l("%(value)s is not a reject reason code.", value=c)
                                               for c in dict.fromkeys(bad)]})
    reject_total = sum(r["qty"] for r in rejects)
    if good_qty + reject_total != run.qty_in:
        raise InvalidInput(
            _l("Good %(good_qty)s + rejects %(reject_total)s = %(value)s, but %(qty_in)s went in.",
               good_qty=good_qty, reject_total=reject_total, value=good_qty + reject_total,
               qty_in=run.qty_in), code=ErrorCode.QUANTITY_MISMATCH,
            fields={"good_qty": [_l("Good and rejects must add up to %(qty_in)s.",
                                    qty_in=run.qty_in)]})
    # Other domains' refusals of a track-out (process control: a sample due), before any
    # write.
    lifecycle.lot_tracking_out.send(lot, session=session, actor=actor, run=run,
                                    good_qty=good_qty, rejects=rejects)
    now = utcnow()
    tool = lot.equipment
    done_step = lot.step_code
    steps = route_steps(lot)
    marked = _marking(lot, steps, run.step_seq, now) if good_qty else {}
    last = lot.step_seq >= len(steps) or good_qty == 0
    if good_qty == 0:
        # Nothing good left: the lot ends at this step rather than queueing empty at the next.
        moved: dict[str, Any] = {"state": LotState.SCRAPPED}
    elif last:
        moved = {"state": LotState.COMPLETED}
    else:
        nxt = steps[lot.step_seq]
        moved = {"state": LotState.QUEUED, "step_seq": lot.step_seq + 1, "step_code": nxt.code}
    event = persistence.event_write(
        session, lot, EventKind.TRACK_OUT, actor, step=done_step,
        equipment=tool.code if tool else None, qty_in=run.qty_in, qty_out=good_qty, at=now,
        data={"rejects": [{"reason": r["reason"], "qty": r["qty"]} for r in rejects if r["qty"]],
              "next_step": None if last else moved["step_code"],
              "yield": round(100.0 * good_qty / run.qty_in, 3) if run.qty_in else None,
              **marked})
    others: list[tuple[Any, dict[str, Any]]] = []
    state_change = None
    if tool is not None:
        tool_values, state_change = _tool_after(tool, max(0, tool.lots_running - 1), now, actor)
        # The units the tool processed (preventive maintenance by use counts them).
        tool_values["units_processed"] = tool.units_processed + run.qty_in
        others.append((tool, tool_values))
    others.append((run, {"finished_at": now, "good_qty": good_qty, "reject_qty": reject_total,
                         "finished_by": actor_name(actor)}))
    persistence.write_move(
        session, lot, now, event, others=others, state_change=state_change,
        durables=_run_durables(session, move, run, steps, "use"),
        lot_values={"quantity": good_qty, "equipment_id": None, "run_id": None,
                    "arrived_at": now, **moved, **marked})
    set_committed_value(lot, "equipment", None)
    if any(r["qty"] for r in rejects):
        session.connection().execute(insert(LotReject.__table__), [
            {"run_id": run.id, "lot_id": lot.id, "step_code": run.step_code,
             "reason_id": reasons[r["reason"]].id, "qty": r["qty"], "at": now}
            for r in rejects if r["qty"]])
    # Other domains' rules of a track-out (quality: the yield hold, the future holds of the
    # step the lot arrives at) run in this transaction, after the move.
    lifecycle.lot_tracked_out.send(lot, session=session, actor=actor,
                                   step=steps[run.step_seq - 1], qty_in=run.qty_in,
                                   good_qty=good_qty, rules_at_step=move.rules_at_next_step)
    return lot


def marking_step(steps: Sequence[StepInfo]) -> StepInfo | None:
    """The route's marking step: the step flagged `marks`, else the step coded MARK."""
    flagged = [step for step in steps if step.marks]
    if flagged:
        return flagged[0]
    return next((step for step in steps if step.code == "MARK"), None)


def _marking(lot: Lot, steps: Sequence[StepInfo], seq: int, now: datetime) -> dict[str, Any]:
    """Rule: the track-out of the marking step fixes the lot's date code (the plant-local
    ISO week of the marking, YYWW), its trace code (kept when it has one: a split child
    carries its parent's) and its mark text from the product's mark template. Marking again
    (rework back to MARK) marks the new week. Other steps: nothing."""
    step = marking_step(steps)
    if step is None or step.seq != seq:
        return {}
    code = marking.date_code(plant_date(now))
    trace = lot.trace_code or marking.trace_code(lot.id)
    product = lot.product
    mark = marking.render(product.mark_template, device=product.code, date_code=code,
                          trace_code=trace, lot=lot.lot_no,
                          customer_part=product.customer_part_number)
    return {"date_code": code, "trace_code": trace, "mark": mark}


# --- undoing a track-in ----------------------------------------------------------------

def _run_data(session: Session, lot: Lot, run: StepRun) -> list[str]:
    """What was recorded for the run since its track-in (an abort is refused then): test
    data of the lot at its step, process-control samples of the run, material consumption
    recorded after the track-in (the material lots named at the track-in are part of it)."""
    found = []
    if session.scalar(select(exists().where(
            TestRun.lot_id == lot.id, TestRun.step_code == run.step_code,
            TestRun.created_at >= run.started_at))):
        found.append("test data")
    if session.scalar(select(exists().where(SpcSubgroup.run_id == run.id))):
        found.append("process-control samples")
    if session.scalar(select(exists().where(MaterialUse.run_id == run.id,
                                            MaterialUse.at > run.started_at))):
        found.append("material consumption")
    return found


def abort_track_in(session: Session, actor: Actor, lot: Lot, *, reason: str,
                   comment: str = "", step: str | None = None) -> Lot:
    """Undo a track-in made by mistake (wrong lot, tool or material scanned): the lot is
    queued again at the same step with its arrival time, the tool is freed (standby when it
    was its last lot) and the step run is deleted with the material lots the track-in named;
    the history event `track_in_abort` (with its audit record) keeps what the run was.

    Refused with 409 not_running (wrong_step when `step` is given and is not the lot's), and
    409 run_has_data once test data, process-control samples or material consumption has
    been recorded for the run (track it out instead)."""
    if lot.state != LotState.RUNNING or lot.run_id is None:
        raise Conflict(_l("Lot %(lot)s is not running.", lot=lot.lot_no),
                       code=ErrorCode.NOT_RUNNING)
    if step is not None:
        _check_step(lot, step)
    run = session.get(StepRun, lot.run_id)
    if run is None:  # a simultaneous undo deleted it after the lot was read
        raise Conflict(_l("A simultaneous change won; reload and try again."),
                       code=ErrorCode.STALE)
    recorded = _run_data(session, lot, run)
    if recorded:
        raise Conflict(_l("Data was recorded for the run of lot %(lot)s (%(what)s); track it "
                          "out instead.", lot=lot.lot_no, what=", ".join(recorded)),
                       code=ErrorCode.RUN_HAS_DATA)
    tool = lot.equipment
    materials = list(session.scalars(
        select(MaterialLot.code).join(MaterialUse, MaterialUse.material_lot_id == MaterialLot.id)
        .where(MaterialUse.run_id == run.id).order_by(MaterialLot.code)))
    now = utcnow()
    event = persistence.event_write(
        session, lot, EventKind.TRACK_IN_ABORT, actor, equipment=tool.code if tool else None,
        qty_in=run.qty_in, at=now,
        data={"abort_reason": reason, "comment": comment, "operator": run.operator,
              "started_at": run.started_at.isoformat(timespec="seconds"),
              "materials": materials})
    others: list[tuple[Any, dict[str, Any]]] = []
    state_change = None
    if tool is not None:
        tool_values, state_change = _tool_after(tool, max(0, tool.lots_running - 1), now, actor)
        others.append((tool, tool_values))
    persistence.write_move(
        session, lot, now, event, others=others, state_change=state_change,
        durables=_run_durables(session, LotToMove(lot), run, route_steps(lot), "release"),
        lot_values={"state": LotState.QUEUED, "equipment_id": None, "run_id": None})
    set_committed_value(lot, "equipment", None)
    connection = session.connection()
    connection.execute(delete(MaterialUse.__table__).where(MaterialUse.run_id == run.id))
    connection.execute(delete(StepRun.__table__).where(StepRun.id == run.id))
    session.expunge(run)
    return lot


# --- split and merge -------------------------------------------------------------------

def _movable(lot: Lot, action: str, *, banked: bool = False) -> None:
    """Refuse to split or merge a lot on hold, running or closed; `banked`: a lot in the
    die bank may be split too (its parts stay in the bank)."""
    if banked and lot.state == LotState.BANKED and not lot.open_holds:
        return
    if lot.open_holds:
        raise Conflict(_l("Lot %(lot)s is on hold; it cannot be %(action)s.", lot=lot.lot_no,
                          action=action),
                       code=ErrorCode.LOT_ON_HOLD)
    if lot.state == LotState.RUNNING:
        raise Conflict(_l("Lot %(lot)s is running; %(action)s it after track-out.",
                          lot=lot.lot_no, action=action),
                       code=ErrorCode.ALREADY_RUNNING)
    if lot.state != LotState.QUEUED:
        raise Conflict(_l("Lot %(lot)s is %(state)s; only queued lots can be %(action)s.",
                          lot=lot.lot_no, state=_l(lot.state), action=action),
                       code=ErrorCode.LOT_CLOSED)


def _unpacked(lot: Lot) -> None:
    """Rule: a lot packed into reels (trays, tubes) is neither split nor merged: its units
    are in the carriers. Raises Conflict `already_packed`."""
    if lot.packed_qty:
        raise Conflict(_l("Lot %(lot)s is packed (%(qty)s units in carriers); it cannot be "
                          "split or merged.", lot=lot.lot_no, qty=lot.packed_qty),
                       code=ErrorCode.ALREADY_PACKED)


def _child_numbers(session: Session, parent: Lot, count: int) -> list[str]:
    """PARENT.NN after the parent's earlier splits, passing over numbers given by hand."""
    seq = session.scalar(select(func.count()).select_from(LotEdge).where(
        LotEdge.parent_id == parent.id, LotEdge.kind == EdgeKind.SPLIT)) or 0
    numbers: list[str] = []
    while len(numbers) < count:
        batch = [f"{parent.lot_no}.{seq + i:02d}" for i in range(1, count - len(numbers) + 1)]
        if len(batch[-1]) > LOT_NO_LENGTH:
            raise Conflict(_l("Lot %(lot)s has too long a number to name its children after it.",
                              lot=parent.lot_no), code=ErrorCode.LOT_NO_TOO_LONG)
        taken = set(session.scalars(select(Lot.lot_no).where(Lot.lot_no.in_(batch))))
        numbers += [n for n in batch if n not in taken]
        seq += len(batch)
    return numbers


def _wafers_by_share(wafers: Sequence[Wafer], quantities: Sequence[int]) -> list[set[int]]:
    """Die quantities decide which wafers each part of a split keeps: the wafers, in wafer
    order, lie end to end by their die quantities (each counts as one die when any has none
    recorded), scaled to the lot's quantity; each part, in the order of `quantities`, takes
    the wafers that lie in its share. A wafer across two shares is on both parts (its dies
    are divided between them)."""
    weights = [w.die_qty for w in wafers]
    if any(weight is None for weight in weights):
        weights = [1] * len(wafers)
    total_w = sum(w or 0 for w in weights)
    if total_w == 0:
        return [{w.id for w in wafers} for _ in quantities]
    total_q = sum(quantities)
    # Share i runs from bounds[i] to bounds[i + 1]; positions are compared multiplied by
    # both totals, in whole numbers.
    bounds = [0]
    for qty in quantities:
        bounds.append(bounds[-1] + qty * total_w)
    parts: list[set[int]] = [set() for _ in quantities]
    start = 0
    for wafer, weight in zip(wafers, weights, strict=True):
        end = start + (weight or 0)
        lo, hi = start * total_q, end * total_q
        if hi == lo:  # a wafer of no dies goes with the share its position falls in
            index = next((i for i in range(len(quantities)) if lo < bounds[i + 1]),
                         len(quantities) - 1)
            parts[index].add(wafer.id)
        for index in range(len(quantities)):
            if lo < bounds[index + 1] and hi > bounds[index]:
                parts[index].add(wafer.id)
        start = end
    return parts


def _chosen_wafers(wafers: Sequence[Wafer], chosen: Sequence[Sequence[str]],
                   children: int) -> list[set[int]]:
    """The wafers each part keeps as the planner chose them: `chosen` names each child's
    wafers (wafer IDs of the lot, or FAB_LOT/WAFER_ID where two fab lots share an ID); the
    parent keeps the others. Raises InvalidInput (field `wafers`)."""
    def bad(message: Any) -> InvalidInput:
        return InvalidInput(message, fields={"wafers": [message]})

    if len(chosen) != children:
        raise bad(_l("Name the wafers of each new lot: %(n)s list(s), one per new lot.",
                     n=children))
    by_name: dict[str, list[Wafer]] = defaultdict(list)
    for wafer in wafers:
        by_name[wafer.wafer_id].append(wafer)
        by_name[f"{wafer.fab_lot}/{wafer.wafer_id}"].append(wafer)
    parts: list[set[int]] = []
    given: set[int] = set()
    for names in chosen:
        part: set[int] = set()
        if not names and wafers:
            raise bad(_l("Give every new lot at least one wafer."))
        for name in names:
            found = by_name.get(name, [])
            if not found:
                raise bad(_l("%(wafer)s is not a wafer of this lot.", wafer=name))
            if len(found) > 1:
                raise bad(_l("%(wafer)s names wafers of two fab lots: write FAB_LOT/WAFER_ID.",
                             wafer=name))
            if found[0].id in given:
                raise bad(_l("Wafer %(wafer)s is given to two new lots.", wafer=name))
            given.add(found[0].id)
            part.add(found[0].id)
        parts.append(part)
    kept = {w.id for w in wafers} - given
    if wafers and not kept:
        raise bad(_l("The lot gives away every wafer: it must keep at least one."))
    return [kept, *parts]


def split_lot(session: Session, actor: Actor, lot: Lot, quantities: Sequence[int],
              wafers: Sequence[Sequence[str]] | None = None) -> list[Lot]:
    """Split a queued lot. `quantities` add up to the lot's quantity: the parent keeps the
    first, each further quantity becomes a child lot at the same step (numbered
    PARENT.01, PARENT.02 ...), with the fab lot.

    The wafers are divided: `wafers`, when given, names each child's wafers (one list per
    child, in the order of the quantities) and the parent keeps the rest; without it the
    die quantities decide (`_wafers_by_share`). The split event records each part's wafers.

    Refused with 409 lot_on_hold / already_running / lot_closed, 409 lot_no_too_long when
    the children's numbers would not fit, 422 quantity_mismatch, and 422 (field `wafers`)
    for a wafer list that does not fit the lot.
    """
    _movable(lot, pgettext("lot move", "split"), banked=True)
    _unpacked(lot)
    if len(quantities) < 2 or any(q < 1 for q in quantities):
        raise InvalidInput(_l("Give at least two quantities of 1 or more."),
                           fields={"quantities": [_l("At least two quantities, each 1 or more: "
                                                     "the parent keeps the first.")]})
    if sum(quantities) != lot.quantity:
        raise InvalidInput(_l("The quantities add up to %(value)s, the lot holds %(quantity)s.",
                              value=sum(quantities), quantity=lot.quantity),
                           code=ErrorCode.QUANTITY_MISMATCH,
                           fields={"quantities": [_l("Must add up to %(quantity)s.",
                                                     quantity=lot.quantity)]})
    lot_wafers = list(session.scalars(
        select(Wafer).join(LotWafer, LotWafer.wafer_pk == Wafer.id)
        .where(LotWafer.lot_id == lot.id).order_by(Wafer.fab_lot, Wafer.wafer_id, Wafer.id)))
    parts = (_chosen_wafers(lot_wafers, wafers, len(quantities) - 1) if wafers
             else _wafers_by_share(lot_wafers, quantities))
    names = {w.id: w.wafer_id for w in lot_wafers}
    now = utcnow()
    children = []
    for lot_no, qty, part in zip(_child_numbers(session, lot, len(quantities) - 1),
                                 quantities[1:], parts[1:], strict=True):
        child = Lot(lot_no=lot_no, product_id=lot.product_id, customer_id=lot.customer_id,
                    audit_seq=0, audit_hash=audit.GENESIS,
                    route_id=lot.route_id, bom_id=lot.bom_id,
                    step_seq=lot.step_seq, step_code=lot.step_code,
                    state=lot.state, planned_start=lot.planned_start,
                    quantity=qty, wafer_count=len(part),
                    fab_lot=lot.fab_lot, priority=lot.priority,
                    due_date=lot.due_date, arrived_at=lot.arrived_at, created_at=now,
                    date_code=lot.date_code, trace_code=lot.trace_code, mark=lot.mark)
        session.add(child)
        children.append(child)
    # Flushed for the children's ids (edges, wafers, history).
    session.flush()
    old_qty = lot.quantity
    lot.quantity = quantities[0]
    lot.in_genealogy = True
    given_away = {w.id for w in lot_wafers} - parts[0]
    if given_away:
        session.execute(delete(LotWafer).where(LotWafer.lot_id == lot.id,
                                               LotWafer.wafer_pk.in_(given_away)))
    lot.wafer_count = len(parts[0])

    def wafer_list(part: set[int]) -> list[str]:
        return [names[w.id] for w in lot_wafers if w.id in part]

    for child, part in zip(children, parts[1:], strict=True):
        child.in_genealogy = True
        session.add(LotEdge(parent_id=lot.id, child_id=child.id, kind=EdgeKind.SPLIT,
                            qty=child.quantity, step_code=lot.step_code, at=now,
                            by=actor_name(actor)))
        for wafer_pk in sorted(part):
            session.add(LotWafer(lot_id=child.id, wafer_pk=wafer_pk))
        _event(session, child, EventKind.SPLIT_FROM, actor, qty_out=child.quantity, at=now,
               data={"parent": lot.lot_no, "wafers": wafer_list(part),
                     **({"bank": True} if child.state == LotState.BANKED else {})})
    # A child stays allocated to its parent's order line (until allocated elsewhere).
    line_id = session.scalar(select(OrderAllocation.line_id).where(
        OrderAllocation.lot_id == lot.id))
    if line_id is not None:
        session.add_all(OrderAllocation(lot_id=child.id, line_id=line_id, allocated_at=now,
                                        allocated_by=actor_name(actor)) for child in children)
    _event(session, lot, EventKind.SPLIT, actor, qty_in=old_qty, qty_out=lot.quantity, at=now,
           data={"children": [{"lot_no": c.lot_no, "qty": c.quantity,
                               "wafers": wafer_list(part)}
                              for c, part in zip(children, parts[1:], strict=True)],
                 "wafers": wafer_list(parts[0])})
    return children


def merge_lots(session: Session, actor: Actor, lots: Sequence[Lot]) -> Lot:
    """Merge lots into the first one named (the survivor). All must be queued, free of
    holds, of the same product and route version, at the same step. The others end in
    state `merged` with quantity 0; the survivor inherits their wafers.

    Refused with 409 lot_on_hold / already_running / lot_closed / merge_mismatch and 422
    when fewer than two distinct lots are named.
    """
    if len(lots) < 2 or len({lot.id for lot in lots}) != len(lots):
        raise InvalidInput(_l("Name at least two different lots."),
                           fields={"lots": [_l("At least two different lot numbers.")]})
    for lot in lots:
        _movable(lot, pgettext("lot move", "merged"))
        _unpacked(lot)
    survivor, others = lots[0], lots[1:]
    for other in others:
        if other.date_code != survivor.date_code:
            raise Conflict(_l("%(lot)s has date code %(code)s, %(lot2)s %(code2)s: lots of "
                              "different date codes do not merge.", lot=other.lot_no,
                              code=other.date_code or "-", lot2=survivor.lot_no,
                              code2=survivor.date_code or "-"),
                           code=ErrorCode.DATE_CODE_MISMATCH)
        if (other.product_id, other.route_id, other.bom_id) != (
                survivor.product_id, survivor.route_id, survivor.bom_id):
            raise Conflict(_l("%(lot)s is not the same product, route version and BOM "
                              "revision as %(lot2)s.",
                              lot=other.lot_no, lot2=survivor.lot_no),
                           code=ErrorCode.MERGE_MISMATCH)
        if other.step_seq != survivor.step_seq:
            raise Conflict(_l("%(lot)s is at %(step_code)s, %(lot2)s at %(step_code2)s.",
                              lot=other.lot_no, step_code=other.step_code, lot2=survivor.lot_no,
                              step_code2=survivor.step_code), code=ErrorCode.MERGE_MISMATCH)
        if other.customer_id != survivor.customer_id:
            raise Conflict(_l("%(lot)s belongs to another customer.", lot=other.lot_no),
                           code=ErrorCode.MERGE_MISMATCH)
    now = utcnow()
    have = set(session.scalars(select(LotWafer.wafer_pk).where(
        LotWafer.lot_id == survivor.id)))
    before = survivor.quantity
    for other in others:
        session.add(LotEdge(parent_id=other.id, child_id=survivor.id, kind=EdgeKind.MERGE,
                            qty=other.quantity, step_code=survivor.step_code, at=now,
                            by=actor_name(actor)))
        for wafer_pk in session.scalars(select(LotWafer.wafer_pk).where(
                LotWafer.lot_id == other.id)):
            if wafer_pk not in have:
                have.add(wafer_pk)
                session.add(LotWafer(lot_id=survivor.id, wafer_pk=wafer_pk))
        survivor.quantity += other.quantity
        survivor.wafer_count = len(have)
        survivor.in_genealogy = other.in_genealogy = True
        _event(session, other, EventKind.MERGED_INTO, actor, qty_in=other.quantity, qty_out=0,
               at=now, data={"into": survivor.lot_no})
        other.quantity = 0
        other.state = LotState.MERGED
    _event(session, survivor, EventKind.MERGE, actor, qty_in=before, qty_out=survivor.quantity,
           at=now, data={"lots": [o.lot_no for o in others]})
    return survivor


def lots_by_number(session: Session, numbers: Sequence[str]) -> list[Lot]:
    """Load lots in the order given; an unknown number is 422 naming it."""
    found = {lot.lot_no: lot for lot in session.scalars(
        select(Lot).where(Lot.lot_no.in_([s for n in numbers for s in spellings(n)])))}
    meant = {n: best_spelling(list(found), n) for n in numbers}
    unknown = [n for n in numbers if meant[n] is None]
    if unknown:
        raise InvalidInput(_l("Unknown lot %(items)s.", items=', '.join(unknown)),
                           fields={"lots": [_l("Unknown lot %(lot)s.", lot=n) for n in unknown]})
    return [found[str(meant[n])] for n in numbers]

