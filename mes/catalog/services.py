"""Master data rules. Codes are unique (409 duplicate); references to unknown objects are
422 naming the field. Every change is audited in the caller's transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from mes import audit
from mes.auth.actor import Actor, actor_name
from mes.auth.permissions import Permission, has_permission
from mes.catalog.models import (
    Bom,
    BomItem,
    Customer,
    Equipment,
    EquipmentStateChange,
    MaterialLot,
    Product,
    Qualification,
    QualificationTest,
    ReasonCode,
    Route,
    RouteStep,
)
from mes.db import utcnow
from mes.errors import Conflict, ErrorCode, Forbidden, InvalidInput, NotFound
from mes.floor.models import Lot
from mes.vocabulary import (
    DOWN_EQUIPMENT_STATES,
    EquipmentState,
    LotState,
    QualStatus,
    ReasonKind,
)

# The master data looked up by its unique code.
M = TypeVar("M", Customer, Product, Equipment, ReasonCode, MaterialLot)

# What a refusal names ("No customer C9."), translated with the message.
_WHAT = {"customer": _l("customer"), "product": _l("product"), "equipment": _l("equipment"),
         "reason code": _l("reason code"), "material lot": _l("material lot"),
         "route": _l("route")}


def _by_code(session: Session, model: type[M], code: str, what: str) -> M:
    obj = session.scalars(select(model).where(model.code == code)).first()
    if obj is None:
        raise NotFound(_l("No %(what)s %(code)s.", what=_WHAT.get(what, what), code=code))
    return obj


def _ref(session: Session, model: type[M], code: str, field: str, what: str) -> M:
    """Resolve a reference in a request body: unknown -> 422 naming the field."""
    obj = session.scalars(select(model).where(model.code == code)).first()
    if obj is None:
        label = _WHAT.get(what, what)
        raise InvalidInput(_l("Unknown %(what)s %(code)s.", what=label, code=code),
                           fields={field: [_l("Unknown %(what)s %(code)s.", what=label,
                                              code=code)]})
    return obj


def _refuse_duplicate(session: Session, model: type[Any], code: str, what: str) -> None:
    if session.scalar(select(model.id).where(model.code == code)) is not None:
        raise Conflict(_l("A %(what)s with code %(code)s exists already.",
                          what=_WHAT.get(what, what), code=code), code=ErrorCode.DUPLICATE)


def _changes(obj: Any, data: dict[str, Any]) -> dict[str, list[Any]]:
    changed = {}
    for key, value in data.items():
        old = getattr(obj, key)
        if old != value:
            changed[key] = [old, value]
            setattr(obj, key, value)
    return changed


# --- customers -------------------------------------------------------------------------

def get_customer(session: Session, code: str) -> Customer:
    return _by_code(session, Customer, code, "customer")


def create_customer(session: Session, actor: Actor, data: dict[str, Any]) -> Customer:
    """Create a customer (409 duplicate when the code exists)."""
    _refuse_duplicate(session, Customer, data["code"], "customer")
    customer = Customer(**data)
    session.add(customer)
    audit.record(session, actor=actor, code="customer:create", subject_type="customer",
                 subject_key=customer.code, data=data)
    return customer


def update_customer(session: Session, actor: Actor, customer: Customer,
                    data: dict[str, Any]) -> Customer:
    """Change a customer's name or automotive flag."""
    changed = _changes(customer, data)
    if changed:
        audit.record(session, actor=actor, code="customer:update", subject_type="customer",
                     subject_key=customer.code, data=changed)
    return customer


# --- routes ----------------------------------------------------------------------------

def current_route(session: Session, code: str, version: int | None = None) -> Route | None:
    stmt = select(Route).where(Route.code == code).options(selectinload(Route.steps))
    if version is not None:
        stmt = stmt.where(Route.version == version)
    return session.scalar(stmt.order_by(Route.version.desc()).limit(1))


@dataclass(frozen=True)
class StepInfo:
    """A route step as the floor reads it (same attribute names as RouteStep)."""

    seq: int
    code: str
    name: str
    kind: str
    equipment_kind: str | None
    min_yield: float | None
    materials: tuple[str, ...]
    name_zh: str | None = None
    moisture_start: bool = False
    # A bake step's recipe {temperature_c, hours, rh_pct}.
    bake: dict[str, Any] | None = None
    marks: bool = False


# A route version never changes once created, so its steps can be kept per process. The key
# carries the creation time as well as the id: ids are reused after a rollback on SQLite.
_STEP_CACHE: dict[tuple[int, datetime], tuple[StepInfo, ...]] = {}


def route_step_infos(session: Session, route: Route) -> tuple[StepInfo, ...]:
    """The steps of one route version, in order, read once per process."""
    key = (route.id, route.created_at)
    steps = _STEP_CACHE.get(key)
    if steps is None:
        steps = tuple(
            StepInfo(seq=st.seq, code=st.code, name=st.name, kind=st.kind,
                     equipment_kind=st.equipment_kind, min_yield=st.min_yield,
                     materials=tuple(st.materials or ()), name_zh=st.name_zh,
                     moisture_start=bool(st.moisture_start), bake=st.bake,
                     marks=bool(st.marks))
            for st in session.scalars(select(RouteStep).where(RouteStep.route_id == route.id)
                                      .order_by(RouteStep.seq)))
        if len(_STEP_CACHE) > 10_000:
            _STEP_CACHE.clear()
        _STEP_CACHE[key] = steps
    return steps


def get_route(session: Session, code: str, version: int | None = None) -> Route:
    route = current_route(session, code, version)
    if route is None:
        raise NotFound(_l("No route %(code)s version %(version)s.", code=code, version=version)
                       if version else _l("No route %(code)s.", code=code))
    return route


def list_routes(session: Session) -> list[Route]:
    """The current version of every route."""
    latest = (select(Route.code, func.max(Route.version).label("v"))
              .group_by(Route.code).subquery())
    return list(session.scalars(
        select(Route).join(latest, (Route.code == latest.c.code) & (Route.version == latest.c.v))
        .options(selectinload(Route.steps)).order_by(Route.code)))


def create_route(session: Session, actor: Actor, data: dict[str, Any]) -> Route:
    """Create a route, or the next version of an existing code. Lots already started keep
    the version they started on."""
    previous = session.scalar(select(func.max(Route.version)).where(Route.code == data["code"]))
    route = Route(code=data["code"], name=data["name"], version=(previous or 0) + 1)
    for seq, step in enumerate(data["steps"], start=1):
        route.steps.append(RouteStep(seq=seq, **step))
    session.add(route)
    audit.record(session, actor=actor, code="route:create", subject_type="route",
                 subject_key=route.code, data={"version": route.version, **data})
    return route


# --- products --------------------------------------------------------------------------

def get_product(session: Session, code: str) -> Product:
    return _by_code(session, Product, code, "product")


def _product_refs(session: Session, data: dict[str, Any]) -> dict[str, Any]:
    values = dict(data)
    if "route" in values:
        route_code = values.pop("route")
        if current_route(session, route_code) is None:
            raise InvalidInput(_l("Unknown route %(route_code)s.", route_code=route_code),
                               fields={"route": [_l("Unknown route %(route_code)s.",
                                                    route_code=route_code)]})
        values["route_code"] = route_code
    if "customer" in values:
        code = values.pop("customer")
        values["customer"] = _ref(session, Customer, code, "customer", "customer") \
            if code else None
    return values


def create_product(session: Session, actor: Actor, data: dict[str, Any]) -> Product:
    """Create a product on an existing route (422 naming `route` or `customer` if unknown)."""
    _refuse_duplicate(session, Product, data["code"], "product")
    product = Product(**_product_refs(session, data))
    session.add(product)
    audit.record(session, actor=actor, code="product:create", subject_type="product",
                 subject_key=product.code, data=data)
    return product


# Lots still in the plant: they may yet be held, moved and shipped under their customer.
_IN_PLANT = (LotState.QUEUED, LotState.RUNNING, LotState.COMPLETED)


def _refuse_other_customers_wip(session: Session, product: Product,
                                customer: Customer | None) -> None:
    """A product made for a customer has lots of that customer only (receiving refuses
    others): a new customer is refused while lots of the product that belong to another
    customer are still in the plant. Setting no customer narrows nothing; lots that left
    the plant (shipped, scrapped, merged) keep the customer they had."""
    if customer is None or customer.id == product.customer_id:
        return
    stmt = (select(Lot.lot_no).where(Lot.product_id == product.id,
                                     Lot.state.in_(_IN_PLANT), Lot.customer_id != customer.id)
            .order_by(Lot.id))
    lots = list(session.scalars(stmt.limit(6)))
    if lots:
        shown = ", ".join(lots[:5]) + (", ..." if len(lots) > 5 else "")
        raise Conflict(_l("Lots of %(code)s belonging to another customer are still in the "
                          "plant (%(lots)s); they must leave the plant before the product "
                          "changes customer.", code=product.code, lots=shown),
                       code=ErrorCode.LOTS_IN_WIP)


def update_product(session: Session, actor: Actor, product: Product,
                   data: dict[str, Any]) -> Product:
    """Change a product's attributes; route and customer references are checked (422).

    Raises Conflict `lots_in_wip` when the new customer differs from that of lots of the
    product still in the plant (queued, running or completed)."""
    values = _product_refs(session, data)
    if "customer" in values:
        _refuse_other_customers_wip(session, product, values["customer"])
    if _changes(product, values):
        audit.record(session, actor=actor, code="product:update", subject_type="product",
                     subject_key=product.code, data=data)
    return product


def add_qualification(session: Session, actor: Actor, product: Product,
                      data: dict[str, Any]) -> Qualification:
    """Record a qualification; it passed when every stress test has 0 fails."""
    status = QualStatus.PASSED if all(t["fails"] == 0 for t in data["tests"]) \
        else QualStatus.FAILED
    qual = Qualification(product=product, standard=data["standard"], grade=data["grade"],
                         report=data["report"], status=status,
                         created_by=actor_name(actor),
                         tests=[QualificationTest(**t) for t in data["tests"]])
    session.add(qual)
    # Flushed so the record's id can be returned and audited.
    session.flush()
    audit.record(session, actor=actor, code="product:qualification", subject_type="product",
                 subject_key=product.code, data={"id": qual.id, "status": status, **data})
    return qual


# --- equipment -------------------------------------------------------------------------

def get_equipment(session: Session, code: str) -> Equipment:
    return _by_code(session, Equipment, code, "equipment")


def create_equipment(session: Session, actor: Actor, data: dict[str, Any]) -> Equipment:
    """Create a piece of equipment in its initial E10 state."""
    _refuse_duplicate(session, Equipment, data["code"], "equipment")
    now = utcnow()
    equipment = Equipment(**data, state_since=now)
    session.add(equipment)
    # Flushed for the id the first state record points to.
    session.flush()
    session.add(EquipmentStateChange(equipment_id=equipment.id, from_state=None,
                                     to_state=equipment.state, at=now,
                                     by=actor_name(actor)))
    audit.record(session, actor=actor, code="equipment:create", subject_type="equipment",
                 subject_key=equipment.code, data=data)
    return equipment


def _downtime_reason(session: Session, code: str | None) -> str:
    """The active downtime reason code `code`; 422 on the field `reason` otherwise."""
    found = session.scalars(select(ReasonCode).where(ReasonCode.code == code)).first() \
        if code else None
    if found is None or found.kind != ReasonKind.DOWNTIME or not found.active:
        message = _l("A down state needs a downtime reason code.") if not code else \
            _l("%(value)s is not a downtime reason code.", value=code)
        raise InvalidInput(message, fields={"reason": [message]})
    return found.code


def update_equipment(session: Session, actor: Actor, equipment: Equipment,
                     data: dict[str, Any]) -> Equipment:
    """Change the name and/or the E10 state; a state change is recorded with its time.

    A down state (engineering, scheduled or unscheduled down) is entered only with an
    active downtime reason code (`reason`; 422 otherwise; the system actors, which say why
    in the comment, may omit it) and left only by such a change.
    Asking for productive or standby brings the tool up in the state its work decides:
    productive while lots run on it, standby otherwise.

    Raises Forbidden when a user whose role may not edit master data renames it: operators
    may change an equipment's state, not its name (the system actors may).
    """
    data = dict(data)
    comment = data.pop("comment", "")
    reason = data.pop("reason", None)
    state = data.get("state")
    if state in (EquipmentState.PRODUCTIVE, EquipmentState.STANDBY):
        # Up again: productive while lots run on it, standby otherwise (the work decides).
        state = EquipmentState.PRODUCTIVE if equipment.lots_running else EquipmentState.STANDBY
    down = state in DOWN_EQUIPMENT_STATES and state != equipment.state
    if down and (reason is not None or not isinstance(actor, str)):
        # People give a downtime reason code; the system (an SPC event) writes why in the
        # comment.
        reason = _downtime_reason(session, reason)
    else:
        reason = None
    if "name" in data and data["name"] != equipment.name:
        if not isinstance(actor, str) and not has_permission(actor, Permission.MASTER_WRITE):
            raise Forbidden(_l("Your role may change the state of equipment, not its name."))
        audit.record(session, actor=actor, code="equipment:update", subject_type="equipment",
                     subject_key=equipment.code, data={"name": [equipment.name, data["name"]]})
        equipment.name = data["name"]
    if state and state != equipment.state:
        now = utcnow()
        session.add(EquipmentStateChange(equipment_id=equipment.id, from_state=equipment.state,
                                         to_state=state, at=now, comment=comment,
                                         by=actor_name(actor), reason=reason))
        audit.record(session, actor=actor, code="equipment:state", subject_type="equipment",
                     subject_key=equipment.code,
                     data={"from": equipment.state, "to": state, "comment": comment,
                           **({"reason": reason} if reason else {})})
        equipment.state = state
        equipment.state_since = now
    return equipment


# --- reason codes ----------------------------------------------------------------------

def get_reason_code(session: Session, code: str) -> ReasonCode:
    return _by_code(session, ReasonCode, code, "reason code")


def create_reason_code(session: Session, actor: Actor, data: dict[str, Any]) -> ReasonCode:
    """Create a reject, hold or scrap reason code."""
    _refuse_duplicate(session, ReasonCode, data["code"], "reason code")
    reason = ReasonCode(**data)
    session.add(reason)
    audit.record(session, actor=actor, code="reason_code:create", subject_type="reason_code",
                 subject_key=reason.code, data=data)
    return reason


def update_reason_code(session: Session, actor: Actor, reason: ReasonCode,
                       data: dict[str, Any]) -> ReasonCode:
    """Change the descriptions or retire a code (its kind never changes: history uses it)."""
    changed = _changes(reason, data)
    if changed:
        audit.record(session, actor=actor, code="reason_code:update",
                     subject_type="reason_code", subject_key=reason.code, data=changed)
    return reason


# --- material lots ---------------------------------------------------------------------

def get_material_lot(session: Session, code: str) -> MaterialLot:
    return _by_code(session, MaterialLot, code, "material lot")


def create_material_lot(session: Session, actor: Actor, data: dict[str, Any]) -> MaterialLot:
    """Register a material lot (epoxy, wire, mold compound, leadframe ...)."""
    _refuse_duplicate(session, MaterialLot, data["code"], "material lot")
    lot = MaterialLot(**data)
    session.add(lot)
    audit.record(session, actor=actor, code="material_lot:create",
                 subject_type="material_lot", subject_key=lot.code, data=data)
    return lot


def update_material_lot(session: Session, actor: Actor, lot: MaterialLot,
                        data: dict[str, Any]) -> MaterialLot:
    """Change the description or the expiry date of a material lot."""
    changed = _changes(lot, data)
    if changed:
        audit.record(session, actor=actor, code="material_lot:update",
                     subject_type="material_lot", subject_key=lot.code, data=changed)
    return lot


def thaw_material_lot(session: Session, actor: Actor, lot: MaterialLot) -> MaterialLot:
    """Record the lot's removal from the freezer: it may be used `thaw_minutes` later.

    422 when the lot needs no thawing; 409 when its removal is recorded already."""
    if not lot.thaw_minutes:
        raise InvalidInput(_l("Material lot %(code)s needs no thawing.", code=lot.code))
    if lot.thawing_since is not None:
        raise Conflict(_l("Material lot %(code)s was taken out of the freezer already.",
                          code=lot.code), code=ErrorCode.CONFLICT)
    lot.thawing_since = utcnow()
    audit.record(session, actor=actor, code="material_lot:thaw", subject_type="material_lot",
                 subject_key=lot.code, data={"ready_at": lot.ready_at})
    return lot


def open_material_lot(session: Session, actor: Actor, lot: MaterialLot) -> MaterialLot:
    """Record the opening of the lot's container: its work life starts, and its expiry
    comes forward to the end of the work life when that is earlier.

    422 when the lot has no work life; 409 already_open; 409 material_not_ready when it
    must thaw and has not (opening a cold container draws moisture in)."""
    if not lot.work_life_hours:
        raise InvalidInput(_l("Material lot %(code)s has no work life.", code=lot.code))
    if lot.opened_at is not None:
        raise Conflict(_l("Material lot %(code)s was opened already.", code=lot.code),
                       code=ErrorCode.ALREADY_OPEN)
    now = utcnow()
    if lot.thaw_minutes and (lot.ready_at is None or lot.ready_at > now):
        raise Conflict(_l("Material lot %(code)s is not thawed yet; open it when it is.",
                          code=lot.code), code=ErrorCode.MATERIAL_NOT_READY)
    lot.opened_at = now
    end = now + timedelta(hours=lot.work_life_hours)
    if lot.expires_at is None or end < lot.expires_at:
        lot.expires_at = end
    audit.record(session, actor=actor, code="material_lot:open", subject_type="material_lot",
                 subject_key=lot.code, data={"expires_at": lot.expires_at})
    return lot


# --- bills of materials ----------------------------------------------------------------

@dataclass(frozen=True)
class BomInfo:
    """A BOM revision as the floor reads it: per step, material type -> part numbers."""

    id: int
    revision: str
    steps: dict[str, dict[str, tuple[str, ...]]]


# A BOM revision never changes once created, so it is kept per process like route steps.
# create_bom drops an entry whose id it takes again (ids are reused after a rollback on
# SQLite).
_BOM_CACHE: dict[int, BomInfo] = {}


def bom_info(session: Session, bom_id: int) -> BomInfo:
    """The BOM revision `bom_id`, read once per process."""
    info = _BOM_CACHE.get(bom_id)
    if info is None:
        bom = session.get(Bom, bom_id)
        assert bom is not None
        steps: dict[str, dict[str, tuple[str, ...]]] = {}
        for item in bom.items:
            steps.setdefault(item.step, {})[item.material] = tuple(item.part_numbers or ())
        info = BomInfo(id=bom.id, revision=bom.revision, steps=steps)
        if len(_BOM_CACHE) > 10_000:
            _BOM_CACHE.clear()
        _BOM_CACHE[bom_id] = info
    return info


def current_bom(session: Session, product: Product) -> Bom | None:
    """The product's current BOM revision: the latest created."""
    return session.scalar(select(Bom).where(Bom.product_id == product.id)
                          .order_by(Bom.id.desc()).limit(1))


def get_bom(session: Session, product: Product, revision: str | None = None) -> Bom:
    """A revision of the product's BOM (default the current one); 404 when there is none."""
    if revision is None:
        bom = current_bom(session, product)
    else:
        bom = session.scalar(select(Bom).where(Bom.product_id == product.id,
                                               Bom.revision == revision))
    if bom is None:
        raise NotFound(_l("Product %(code)s has no BOM revision %(revision)s.",
                          code=product.code, revision=revision)
                       if revision else _l("Product %(code)s has no BOM.", code=product.code))
    return bom


def list_boms(session: Session, product: Product) -> list[Bom]:
    """Every revision of the product's BOM, the current one first."""
    return list(session.scalars(select(Bom).where(Bom.product_id == product.id)
                                .options(selectinload(Bom.items)).order_by(Bom.id.desc())))


def create_bom(session: Session, actor: Actor, product: Product, data: dict[str, Any]) -> Bom:
    """Create a BOM revision of the product; it becomes current for lots received from now
    on (lots already received keep theirs).

    409 duplicate when the revision exists; 422 when an item names a step that is not on
    the product's current route, or a step and material twice."""
    revision = data["revision"]
    if session.scalar(select(Bom.id).where(Bom.product_id == product.id,
                                           Bom.revision == revision)) is not None:
        raise Conflict(_l("Product %(code)s has a BOM revision %(revision)s already.",
                          code=product.code, revision=revision), code=ErrorCode.DUPLICATE)
    route = current_route(session, product.route_code)
    steps = {st.code for st in route.steps} if route is not None else set()
    errors = []
    seen = set()
    for item in data["items"]:
        if item["step"] not in steps:
            errors.append(_l("Step %(step)s is not on route %(route)s.", step=item["step"],
                             route=product.route_code))
        key = (item["step"], item["material"])
        if key in seen:
            errors.append(_l("Step %(step)s lists %(material)s twice.", step=item["step"],
                             material=item["material"]))
        seen.add(key)
    if errors:
        raise InvalidInput(_l("The BOM's items do not fit the product's route."),
                           fields={"items": errors})
    bom = Bom(product_id=product.id, revision=revision, created_by=actor_name(actor),
              items=[BomItem(step=i["step"], material=i["material"],
                             part_numbers=list(dict.fromkeys(i["part_numbers"])),
                             qty_per_unit=i.get("qty_per_unit")) for i in data["items"]])
    session.add(bom)
    session.flush()
    _BOM_CACHE.pop(bom.id, None)
    audit.record(session, actor=actor, code="bom:create", subject_type="product",
                 subject_key=product.code, data=data)
    return bom
