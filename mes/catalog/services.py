"""Master data rules. Codes are unique (409 duplicate); references to unknown objects are
422 naming the field. Every change is audited in the caller's transaction."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from mes import audit
from mes.auth.actor import Actor, actor_name
from mes.auth.permissions import Permission, has_permission
from mes.catalog import aec
from mes.catalog.models import (
    Bom,
    BomItem,
    Customer,
    Durable,
    DurableMount,
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
from mes.changes.models import Change, ChangeProduct
from mes.db import utcnow
from mes.errors import Conflict, ErrorCode, Forbidden, InvalidInput, NotFound
from mes.floor.models import Lot
from mes.vocabulary import (
    DOWN_EQUIPMENT_STATES,
    DurableAction,
    EquipmentState,
    LotState,
    ProductKind,
    QualStatus,
    ReasonKind,
)

# The master data looked up by its unique code.
M = TypeVar("M", Customer, Product, Equipment, ReasonCode, MaterialLot, Durable)

# What a refusal names ("No customer C9."), translated with the message.
_WHAT = {"customer": _l("customer"), "product": _l("product"), "equipment": _l("equipment"),
         "reason code": _l("reason code"), "material lot": _l("material lot"),
         "route": _l("route"), "durable": _l("durable")}


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
    touchdowns_per_unit: int = 1
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
                     touchdowns_per_unit=st.touchdowns_per_unit or 1,
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
_IN_PLANT = (LotState.QUEUED, LotState.RUNNING, LotState.COMPLETED, LotState.BANKED)


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


# --- qualifications --------------------------------------------------------------------

def _invalid(field: str, message: Any, code: ErrorCode = ErrorCode.INVALID) -> InvalidInput:
    return InvalidInput(message, code=code, fields={field: [message]})


def _qualified_bom(session: Session, product: Product, revision: str | None) -> Bom | None:
    """The BOM revision a qualification is recorded at: required, and one of the product's,
    when the product has a bill of materials; none when it has not."""
    if revision is None:
        if current_bom(session, product) is not None:
            raise _invalid("bom_revision", _l(
                "Product %(code)s has a bill of materials: name the BOM revision qualified.",
                code=product.code))
        return None
    bom = session.scalar(select(Bom).where(Bom.product_id == product.id,
                                           Bom.revision == revision))
    if bom is None:
        raise _invalid("bom_revision", _l("Product %(code)s has no BOM revision %(revision)s.",
                                          code=product.code, revision=revision))
    return bom


def _checked_tests(product: Product, standard: str,
                   tests: list[dict[str, Any]]) -> list[QualificationTest]:
    """The stress results as records, each named by its code in the standard's table, at
    least the table's sample size per lot and lot count (422 `insufficient_sample` naming
    the stress), and preconditioned when the table asks it of a surface-mount package."""
    records: list[QualificationTest] = []
    seen: set[str] = set()
    smd = aec.surface_mount(product.package)
    for test in tests:
        ref = aec.stress(standard, test["test"])
        if ref is None:
            raise _invalid("tests", _l("%(standard)s has no stress %(test)s.",
                                       standard=standard, test=test["test"]))
        if ref.code in seen:
            raise _invalid("tests", _l("Stress %(test)s is listed twice.", test=ref.code))
        seen.add(ref.code)
        if test["sample_size"] < ref.sample_size or test["lots"] < ref.lots:
            raise _invalid("tests", _l(
                "%(test)s needs at least %(size)s units per lot from %(lots)s lot(s) "
                "(%(standard)s); %(given_size)s × %(given_lots)s is not enough.",
                test=ref.code, size=ref.sample_size, lots=ref.lots, standard=standard,
                given_size=test["sample_size"], given_lots=test["lots"]),
                code=ErrorCode.INSUFFICIENT_SAMPLE)
        preconditioned = bool(test.get("preconditioned"))
        if ref.preconditioned and smd and not preconditioned:
            raise _invalid("tests", _l(
                "%(test)s on the surface-mount package %(package)s must follow "
                "preconditioning (J-STD-020 at MSL %(msl)s): record it as preconditioned.",
                test=ref.code, package=product.package, msl=product.msl))
        records.append(QualificationTest(test=ref.code, group=ref.group,
                                         sample_size=test["sample_size"], lots=test["lots"],
                                         fails=test["fails"], preconditioned=preconditioned))
    return records


def add_qualification(session: Session, actor: Actor, product: Product,
                      data: dict[str, Any]) -> Qualification:
    """Record a qualification of `product` (with `family`: generic data for the products
    of that qualification family) at a BOM revision and a grade; it passed when every
    stress has 0 fails.

    Rules (422, nothing recorded): the standard is the one for the product's kind
    (AEC-Q100 integrated circuits, Q101 discretes, Q104 modules); the grade is one of the
    standard's and the product's grade or a more demanding one; `bom_revision` names one
    of the product's BOM revisions (required when it has any); `family` is the product's
    own qualification family; each stress is in the standard's table, once, with at least
    its sample size and lot count (`insufficient_sample`), preconditioned where required."""
    standard = data.get("standard") or aec.standard_for(product.kind)
    if standard != aec.standard_for(product.kind):
        raise _invalid("standard", _l(
            "%(standard)s does not apply to %(code)s (%(kind)s): it is qualified to "
            "%(expected)s.", standard=standard, code=product.code,
            kind=ProductKind(product.kind).label, expected=aec.standard_for(product.kind)))
    grade = data["grade"]
    if grade not in aec.GRADES[standard]:
        raise _invalid("grade", _l("%(standard)s has no grade %(grade)s.",
                                   standard=standard, grade=grade))
    if product.aec_grade is not None and grade > product.aec_grade:
        raise _invalid("grade", _l(
            "Grade %(grade)s is less demanding than the grade %(product_grade)s of "
            "%(code)s: qualify at grade %(product_grade)s or a more demanding one.",
            grade=grade, product_grade=product.aec_grade, code=product.code))
    family = data.get("family") or None
    if family is not None and family != product.qual_family:
        raise _invalid("family", _l(
            "%(code)s is not in the qualification family %(family)s.",
            code=product.code, family=family))
    bom = _qualified_bom(session, product, data.get("bom_revision") or None)
    tests = _checked_tests(product, standard, data["tests"])
    status = QualStatus.PASSED if all(t.fails == 0 for t in tests) else QualStatus.FAILED
    qual = Qualification(product=product, standard=standard, grade=grade, bom=bom,
                         family=family, report=data.get("report", ""), status=status,
                         created_by=actor_name(actor), tests=tests)
    session.add(qual)
    # Flushed so the record's id can be returned and audited.
    session.flush()
    audit.record(session, actor=actor, code="product:qualification", subject_type="product",
                 subject_key=product.code,
                 data={"id": qual.id, "status": status, **data, "standard": standard,
                       "tests": [{"test": t.test, "sample_size": t.sample_size,
                                  "lots": t.lots, "fails": t.fails,
                                  "preconditioned": t.preconditioned} for t in tests]})
    return qual


def _materials(bom: Bom | None) -> frozenset[tuple[str, str, tuple[str, ...]]] | None:
    if bom is None:
        return None
    return frozenset((item.step, item.material, tuple(sorted(map(str, item.part_numbers))))
                     for item in bom.items)


def covering_qualifications(session: Session, product: Product,
                            bom: Bom | None) -> list[Qualification]:
    """The qualifications (passed or failed, oldest first) that are evidence for `product`
    built on BOM revision `bom` (None: lots received without a bill of materials), under the
    standard of the product's kind: the product's own at that revision, and the generic
    data of its qualification family recorded on a product of the same package at a
    revision of the same materials (step, material and part numbers)."""
    standard = aec.standard_for(product.kind)
    clauses = [Qualification.product_id == product.id]
    if product.qual_family:
        clauses.append(Qualification.family == product.qual_family)
    found = session.scalars(
        select(Qualification).where(Qualification.standard == standard)
        .where(or_(*clauses)).order_by(Qualification.id)
        .options(selectinload(Qualification.tests), selectinload(Qualification.product),
                 selectinload(Qualification.bom).selectinload(Bom.items))).all()
    wanted = _materials(bom)
    covering = []
    for qual in found:
        if qual.product_id == product.id:
            if qual.bom_id == (bom.id if bom is not None else None):
                covering.append(qual)
        elif qual.product.package == product.package and _materials(qual.bom) == wanted:
            covering.append(qual)
    return covering


def _grade_ok(product: Product, qual: Qualification) -> bool:
    return product.aec_grade is None or qual.grade <= product.aec_grade


def evidence_for(session: Session, product: Product, bom: Bom | None) -> Qualification | None:
    """The qualification a certificate names for `product` built on `bom`: the latest
    covering one at the product's grade or a more demanding one, else the latest covering
    one at all (which then does not qualify the lots), else None."""
    covering = covering_qualifications(session, product, bom)
    graded = [q for q in covering if _grade_ok(product, q)]
    chosen = graded or covering
    return chosen[-1] if chosen else None


@dataclass(frozen=True)
class RevisionCoverage:
    """What qualifies a BOM revision of a product: whether its lots may ship to automotive
    customers (`qualified`, the rule of `check_qualified`) and the stresses passed on it."""

    qualified: bool
    passed: tuple[str, ...]


def revision_coverage(session: Session, product: Product, bom: Bom | None) -> RevisionCoverage:
    covering = [q for q in covering_qualifications(session, product, bom)
                if _grade_ok(product, q)]
    return RevisionCoverage(
        qualified=bool(covering) and covering[-1].status == QualStatus.PASSED,
        passed=tuple(sorted(passed_stresses(session, product, bom))))


def passed_stresses(session: Session, product: Product, bom: Bom | None) -> set[str]:
    """The stresses (table codes, mes.catalog.aec) that have passed on BOM revision `bom`
    of `product`: those whose latest result in a covering qualification at the product's
    grade or a more demanding one has 0 fails. `aec.satisfied` tells whether they satisfy
    a required stress (alternatives such as THB or HAST count for each other)."""
    latest: dict[str, int] = {}
    for qual in covering_qualifications(session, product, bom):
        if _grade_ok(product, qual):
            for test in qual.tests:
                latest[test.test] = test.fails
    return {code for code, fails in latest.items() if fails == 0}


def check_qualified(session: Session, product: Product, bom: Bom | None,
                    lot_no: str, customer: str) -> Qualification:
    """Rule: a lot ships to an automotive customer only on passed qualification evidence
    for what it was built as: a passed qualification of its product (or family) at the
    product's grade or a more demanding one, covering the BOM revision the lot was
    received with, and the latest such qualification of that revision passed. Raises
    Conflict `not_qualified` naming what is missing (the grade, the revision). Answers the
    qualification that covers the lot."""
    revision = bom.revision if bom is not None else None
    own_and_family = [q for q in _all_evidence(session, product)
                      if q.status == QualStatus.PASSED]
    if not own_and_family:
        raise Conflict(_l("Product %(code)s of lot %(lot)s has no passed qualification; it "
                          "cannot be shipped to the automotive customer %(code2)s.",
                          code=product.code, lot=lot_no, code2=customer),
                       code=ErrorCode.NOT_QUALIFIED)
    if not any(_grade_ok(product, q) for q in own_and_family):
        raise Conflict(_l("Product %(code)s is grade %(grade)s but its passed qualifications "
                          "are at grade %(grades)s only (less demanding); lot %(lot)s cannot "
                          "be shipped to the automotive customer %(code2)s.",
                          code=product.code, grade=product.aec_grade,
                          grades=", ".join(sorted({str(q.grade) for q in own_and_family})),
                          lot=lot_no, code2=customer),
                       code=ErrorCode.NOT_QUALIFIED)
    covering = [q for q in covering_qualifications(session, product, bom)
                if _grade_ok(product, q)]
    if not any(q.status == QualStatus.PASSED for q in covering):
        raise Conflict(_l("Lot %(lot)s was built on BOM revision %(revision)s of %(code)s, "
                          "which no passed qualification covers; it cannot be shipped to "
                          "the automotive customer %(code2)s.",
                          lot=lot_no, revision=revision or _l("(none)"), code=product.code,
                          code2=customer),
                       code=ErrorCode.NOT_QUALIFIED)
    if covering[-1].status != QualStatus.PASSED:
        raise Conflict(_l("The latest qualification of BOM revision %(revision)s of "
                          "%(code)s (%(report)s) failed; lot %(lot)s cannot be shipped to "
                          "the automotive customer %(code2)s.",
                          revision=revision or _l("(none)"), code=product.code,
                          report=covering[-1].report or covering[-1].id, lot=lot_no,
                          code2=customer),
                       code=ErrorCode.NOT_QUALIFIED)
    return covering[-1]


def _all_evidence(session: Session, product: Product) -> list[Qualification]:
    """The product's own qualifications and its family's, under the standard of its kind,
    at any BOM revision and grade, oldest first."""
    clauses = [Qualification.product_id == product.id]
    if product.qual_family:
        clauses.append(Qualification.family == product.qual_family)
    return list(session.scalars(
        select(Qualification).where(Qualification.standard == aec.standard_for(product.kind))
        .where(or_(*clauses)).order_by(Qualification.id)))


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


# What an engineer sets on a tool beside its state: its name and how much it runs at once.
EQUIPMENT_SETTINGS = ("name", "capacity", "unit_capacity")


def update_equipment(session: Session, actor: Actor, equipment: Equipment,
                     data: dict[str, Any]) -> Equipment:
    """Change the name, the capacity (lots at once; a lowered capacity lets the lots
    running finish and refuses new ones until a place is free) and unit capacity, and/or
    the E10 state; a state change is recorded with its time.

    A down state (engineering, scheduled or unscheduled down) is entered only with an
    active downtime reason code (`reason`; 422 otherwise; the system actors, which say why
    in the comment, may omit it) and left only by such a change.
    Asking for productive or standby brings the tool up in the state its work decides:
    productive while lots run on it, standby otherwise.

    Raises Forbidden when a user whose role may not edit master data renames it or changes
    its capacity: operators may change an equipment's state, not its name (the system
    actors may).
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
    changed = {name: [getattr(equipment, name), data[name]] for name in EQUIPMENT_SETTINGS
               if name in data and data[name] != getattr(equipment, name)}
    if changed:
        if not isinstance(actor, str) and not has_permission(actor, Permission.MASTER_WRITE):
            raise Forbidden(_l("Your role may change the state of equipment, not its name "
                               "or capacity."))
        audit.record(session, actor=actor, code="equipment:update", subject_type="equipment",
                     subject_key=equipment.code, data=changed)
        for name, (_before, after) in changed.items():
            setattr(equipment, name, after)
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


# --- durables --------------------------------------------------------------------------

def get_durable(session: Session, code: str) -> Durable:
    return _by_code(session, Durable, code, "durable")


def create_durable(session: Session, actor: Actor, data: dict[str, Any]) -> Durable:
    """Register a durable (in the crib, not mounted) with its life limit, warning level and
    the uses it has had already (`used`, default 0: a new part). 409 duplicate; 422 when
    `used` is above the life limit."""
    _refuse_duplicate(session, Durable, data["code"], "durable")
    used = data.get("used") or 0
    if used > data["life_limit"]:
        message = _l("Used (%(used)s) is above the life limit (%(limit)s).", used=used,
                     limit=data["life_limit"])
        raise InvalidInput(message, fields={"used": [message]})
    durable = Durable(code=data["code"], kind=data["kind"], life_limit=data["life_limit"],
                      warn_at_pct=data.get("warn_at_pct") or 90, used=used, reserved=0,
                      created_at=utcnow())
    session.add(durable)
    audit.record(session, actor=actor, code="durable:create", subject_type="durable",
                 subject_key=durable.code, data=data)
    return durable


def mounted_durables(session: Session, equipment_ids: list[int]) -> dict[int, list[Durable]]:
    """The durables mounted on each of the tools, by kind."""
    found: dict[int, list[Durable]] = {i: [] for i in equipment_ids}
    if equipment_ids:
        for durable in session.scalars(select(Durable).where(
                Durable.equipment_id.in_(equipment_ids)).order_by(Durable.kind, Durable.code)):
            assert durable.equipment_id is not None
            found[durable.equipment_id].append(durable)
    return found


def _tool_idle(tool: Equipment, durable: Durable) -> None:
    if tool.lots_running:
        raise Conflict(_l("%(equipment)s is running a lot: change durable %(code)s after its "
                          "track-out.", equipment=tool.code, code=durable.code),
                       code=ErrorCode.EQUIPMENT_BUSY)


def _touch(session: Session, tool: Equipment) -> None:
    """Move the tool's version on, so that a track-in that read its mounted durables
    before this change loses (409 stale) instead of reserving on the wrong ones."""
    seen = tool.version
    done = session.connection().execute(update(Equipment).where(
        Equipment.id == tool.id, Equipment.version == seen).values(version=seen + 1))
    if done.rowcount != 1:
        raise Conflict(_l("A simultaneous change won; reload and try again."),
                       code=ErrorCode.STALE)
    set_committed_value(tool, "version", seen + 1)


def _move_durable(session: Session, durable: Durable, to: Equipment | None,
                  now: datetime) -> None:
    seen = durable.equipment_id
    where = Durable.equipment_id.is_(None) if seen is None else Durable.equipment_id == seen
    done = session.connection().execute(
        update(Durable).where(Durable.id == durable.id, where).values(
            equipment_id=to.id if to is not None else None,
            mounted_at=now if to is not None else None))
    if done.rowcount != 1:
        raise Conflict(_l("A simultaneous change won; reload and try again."),
                       code=ErrorCode.STALE)
    set_committed_value(durable, "equipment_id", to.id if to is not None else None)
    set_committed_value(durable, "mounted_at", now if to is not None else None)
    set_committed_value(durable, "equipment", to)


def _mount_record(session: Session, actor: Actor, durable: Durable, tool: Equipment,
                  action: DurableAction, now: datetime) -> None:
    session.add(DurableMount(durable_id=durable.id, equipment_id=tool.id, action=action,
                             used=durable.used, at=now, by=actor_name(actor)))
    audit.record(session, actor=actor, code=f"durable:{action}", subject_type="durable",
                 subject_key=durable.code, data={"equipment": tool.code, "used": durable.used,
                                                 "life_limit": durable.life_limit})


def mount_durable(session: Session, actor: Actor, tool: Equipment, code: str) -> Durable:
    """Mount the durable `code` on `tool`. A durable of the same kind mounted there goes back
    to the crib, and one mounted on another tool comes off it; every removal and mount is
    recorded (who, when, its count) and audited.

    Refused with 409 equipment_busy while a lot runs on the tool (or on the one the durable
    comes from): the running lots' uses are reserved on the durables mounted at their
    track-in. 422 (field `durable`) for an unknown durable; 409 stale when a simultaneous
    change of the tool won."""
    durable = _ref(session, Durable, code, "durable", "durable")
    if durable.equipment_id == tool.id:
        return durable
    _tool_idle(tool, durable)
    now = utcnow()
    if durable.equipment is not None:
        _tool_idle(durable.equipment, durable)
        _touch(session, durable.equipment)
        _mount_record(session, actor, durable, durable.equipment, DurableAction.UNMOUNT, now)
    _touch(session, tool)
    for old in session.scalars(select(Durable).where(Durable.equipment_id == tool.id,
                                                     Durable.kind == durable.kind)):
        _move_durable(session, old, None, now)
        _mount_record(session, actor, old, tool, DurableAction.UNMOUNT, now)
    _move_durable(session, durable, tool, now)
    _mount_record(session, actor, durable, tool, DurableAction.MOUNT, now)
    return durable


def unmount_durable(session: Session, actor: Actor, durable: Durable) -> Durable:
    """Take the durable off its tool, back to the crib (recorded and audited). Refused with
    409 equipment_busy while a lot runs on the tool; a durable not mounted is left as it is."""
    tool = durable.equipment
    if tool is None:
        return durable
    _tool_idle(tool, durable)
    now = utcnow()
    _touch(session, tool)
    _move_durable(session, durable, None, now)
    _mount_record(session, actor, durable, tool, DurableAction.UNMOUNT, now)
    return durable


def durable_history(session: Session, durable: Durable | None = None,
                    tool: Equipment | None = None, limit: int = 50) -> list[DurableMount]:
    """The latest mounts and removals of a durable or on a tool, newest first."""
    stmt = select(DurableMount).options(selectinload(DurableMount.durable),
                                        selectinload(DurableMount.equipment))
    if durable is not None:
        stmt = stmt.where(DurableMount.durable_id == durable.id)
    if tool is not None:
        stmt = stmt.where(DurableMount.equipment_id == tool.id)
    return list(session.scalars(stmt.order_by(DurableMount.id.desc()).limit(limit)))


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


def _already_thawing(lot: MaterialLot) -> Conflict:
    return Conflict(_l("Material lot %(code)s was taken out of the freezer already.",
                       code=lot.code), code=ErrorCode.CONFLICT)


def _already_open(lot: MaterialLot) -> Conflict:
    return Conflict(_l("Material lot %(code)s was opened already.", code=lot.code),
                    code=ErrorCode.ALREADY_OPEN)


def _clock_started(session: Session, lot: MaterialLot, clock: str, now: datetime,
                   refusal: Callable[[MaterialLot], Conflict], **also: Any) -> None:
    """Start one of the lot's clocks (`thawing_since`, `opened_at`) with a conditional
    UPDATE: only while it is not started, so that of two simultaneous recordings one starts
    it and the other is refused (`refusal`) instead of starting it again."""
    column = getattr(MaterialLot, clock)
    values = {clock: now, **also}
    done = session.connection().execute(
        update(MaterialLot).where(MaterialLot.id == lot.id, column.is_(None)).values(values))
    if done.rowcount != 1:
        raise refusal(lot)
    for name, value in values.items():
        set_committed_value(lot, name, value)


def thaw_material_lot(session: Session, actor: Actor, lot: MaterialLot) -> MaterialLot:
    """Record the lot's removal from the freezer: it may be used `thaw_minutes` later.

    422 when the lot needs no thawing; 409 when its removal is recorded already."""
    if not lot.thaw_minutes:
        raise InvalidInput(_l("Material lot %(code)s needs no thawing.", code=lot.code))
    if lot.thawing_since is not None:
        raise _already_thawing(lot)
    _clock_started(session, lot, "thawing_since", utcnow(), _already_thawing)
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
        raise _already_open(lot)
    now = utcnow()
    if lot.thaw_minutes and (lot.ready_at is None or lot.ready_at > now):
        raise Conflict(_l("Material lot %(code)s is not thawed yet; open it when it is.",
                          code=lot.code), code=ErrorCode.MATERIAL_NOT_READY)
    end = now + timedelta(hours=lot.work_life_hours)
    _clock_started(session, lot, "opened_at", now, _already_open,
                   expires_at=end if lot.expires_at is None or end < lot.expires_at
                   else lot.expires_at)
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
    """The product's current BOM revision, the one lots are received with unless they name
    another: the latest created that is not held back by a change whose requalification
    has not passed yet (`held_revisions`)."""
    held = held_revisions(session, product)
    stmt = select(Bom).where(Bom.product_id == product.id)
    if held:
        stmt = stmt.where(Bom.id.not_in(held))
    return session.scalar(stmt.order_by(Bom.id.desc()).limit(1))


def held_revisions(session: Session, product: Product) -> set[int]:
    """The ids of the product's BOM revisions that a change introduced and that cannot take
    effect yet: some stress the change requires has not passed on them."""
    rows = session.execute(
        select(ChangeProduct.bom_id, Change.required_stresses)
        .join(Change, Change.id == ChangeProduct.change_id)
        .where(ChangeProduct.product_id == product.id, ChangeProduct.bom_id.is_not(None)))
    held = set()
    for bom_id, required in rows:
        bom = session.get(Bom, bom_id)
        assert bom is not None
        passed = passed_stresses(session, product, bom)
        standard = aec.standard_for(product.kind)
        if not all(aec.satisfied(standard, passed, stress) for stress in required):
            held.add(bom_id)
    return held


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
