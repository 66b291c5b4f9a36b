"""Packing rules: a lot into reels (trays, tubes) of its product's standard pack quantity,
reels into dry bags, bags or reels into boxes, boxes into cartons; and what a pack unit
holds (lots, quantities, date codes).

Every function works in the caller's transaction and raises before changing anything when a
rule refuses. Pack units are written under their version counters, the lot under its own:
two simultaneous packings of one lot, or one reel put into two bags at once, let one writer
win and the other fail with 409 `stale`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from mes import audit
from mes.auth.actor import Actor, actor_name
from mes.auth.scope import scoped
from mes.catalog.models import Product
from mes.db import utcnow
from mes.errors import Conflict, ErrorCode, InvalidInput, NotFound
from mes.floor import services as floor
from mes.floor.models import Lot
from mes.quality.services import moisture as moisture_services
from mes.shipping.models import PackUnit, pack_code, parse_pack_code
from mes.vocabulary import CARRIERS, EventKind, LotState, MslLevel, PackKind, StepKind

# The most carriers one packing makes, and children one package takes.
MAX_CARRIERS = 1000
MAX_CHILDREN = 500

# What each package may hold. Moisture-sensitive carriers go into a dry bag first
# (`_check_dry_pack`).
HOLDS = {
    PackKind.BAG: frozenset(CARRIERS),
    PackKind.BOX: frozenset((*CARRIERS, PackKind.BAG)),
    PackKind.CARTON: frozenset((PackKind.BOX,)),
}


def _invalid(field_name: str, message: Any, code: ErrorCode = ErrorCode.INVALID
             ) -> InvalidInput:
    return InvalidInput(message, fields={field_name: [message]}, code=code)


def moisture_sensitive(product: Product) -> bool:
    """Whether the product's reels must be sealed in a dry bag (MSL 2 and above)."""
    return product.msl != MslLevel.L1


# --- packing a lot ---------------------------------------------------------------------

def standard_quantity(product: Product, carrier: str) -> int | None:
    """The product's standard pack quantity for `carrier` (None: it has none)."""
    quantities = product.standard_pack_qty or {}
    value = quantities.get(carrier)
    return int(value) if value else None


def split_quantity(total: int, per: int) -> list[int]:
    """`total` units in carriers of `per`, the last one partial."""
    full, rest = divmod(total, per)
    return [per] * full + ([rest] if rest else [])


def check_packable(lot: Lot) -> None:
    """Rule: a lot is packed once, free of holds, at a pack step of its route (tape and
    reel: queued or running there) or once completed. Raises Conflict `already_shipped`,
    `lot_closed` (scrapped or merged), `already_packed`, `lot_on_hold` or `wrong_step`."""
    if lot.state == LotState.SHIPPED:
        raise Conflict(_l("Lot %(lot)s was shipped already.", lot=lot.lot_no),
                       code=ErrorCode.ALREADY_SHIPPED)
    if lot.state not in (LotState.QUEUED, LotState.RUNNING, LotState.COMPLETED):
        raise Conflict(_l("Lot %(lot)s is %(state)s; it cannot be packed.", lot=lot.lot_no,
                          state=LotState.word(lot.state)), code=ErrorCode.LOT_CLOSED)
    if lot.packed_qty:
        raise Conflict(_l("Lot %(lot)s is packed already (%(qty)s units).", lot=lot.lot_no,
                          qty=lot.packed_qty), code=ErrorCode.ALREADY_PACKED)
    if lot.open_holds:
        raise Conflict(_l("Lot %(lot)s is on hold; it cannot be packed.", lot=lot.lot_no),
                       code=ErrorCode.LOT_ON_HOLD)
    if lot.state != LotState.COMPLETED and floor.current_step(lot).kind != StepKind.PACK:
        raise Conflict(_l("Lot %(lot)s is at %(step)s; it is packed at the tape and reel "
                          "(pack) step or once completed.", lot=lot.lot_no, step=lot.step_code),
                       code=ErrorCode.WRONG_STEP)


def pack_lot(session: Session, actor: Actor, lot: Lot, *, carrier: str,
             quantity_per: int | None = None,
             quantities: Sequence[int] | None = None) -> list[PackUnit]:
    """Pack the lot's units into carriers (`carrier`: reel, tray or tube) of
    `quantity_per` units, by default the product's standard pack quantity for the carrier,
    the last one partial; or, with `quantities`, carriers of those quantities (they must add
    up to the lot's quantity). Each carrier gets its own id (R-000123 ...). The lot records
    its packed quantity and a `pack` history event naming the carriers.

    Refused as `check_packable`, with 422 (field `quantity_per`) when the product has no
    standard quantity for the carrier and none is given or when it would make more than
    1,000 carriers, and 422 `quantity_mismatch` (field `quantities`) when the quantities do
    not add up to the lot's.
    """
    check_packable(lot)
    product = lot.product
    if quantities:
        parts = list(quantities)
        if any(q < 1 for q in parts):
            raise _invalid("quantities", _l("Each quantity is 1 or more."))
        if sum(parts) != lot.quantity:
            raise _invalid("quantities", _l(
                "The quantities add up to %(value)s, the lot holds %(quantity)s.",
                value=sum(parts), quantity=lot.quantity), ErrorCode.QUANTITY_MISMATCH)
    else:
        per = quantity_per or standard_quantity(product, carrier)
        if not per:
            raise _invalid("quantity_per", _l(
                "Product %(code)s has no standard quantity per %(carrier)s; give the quantity "
                "per carrier.", code=product.code, carrier=PackKind.word(carrier)))
        parts = split_quantity(lot.quantity, per)
    if len(parts) > MAX_CARRIERS:
        raise _invalid("quantity_per", _l("That makes %(n)s carriers; at most %(max)s.",
                                          n=len(parts), max=MAX_CARRIERS))
    now = utcnow()
    by = actor_name(actor)
    units = [PackUnit(kind=carrier, product_id=lot.product_id, customer_id=lot.customer_id,
                      lot_id=lot.id, quantity=qty, created_at=now, created_by=by)
             for qty in parts]
    session.add_all(units)
    session.flush()  # the carriers' ids, which the history event names
    lot.packed_qty = lot.quantity
    floor.record_event(session, lot, EventKind.PACK, actor, qty_in=lot.quantity,
                       qty_out=lot.quantity, at=now,
                       data={"carrier": carrier, "units": [
                           {"id": unit.code, "quantity": unit.quantity} for unit in units]})
    return units


# --- packages --------------------------------------------------------------------------

def units_by_id(session: Session, codes: Sequence[str], field_name: str) -> list[PackUnit]:
    """The pack units named, in the order given; unknown or malformed ids are 422 naming
    them."""
    wanted: dict[str, tuple[str, int] | None] = {code: parse_pack_code(code) for code in codes}
    numbers = [parsed[1] for parsed in wanted.values() if parsed is not None]
    found = {unit.id: unit for unit in session.scalars(
        select(PackUnit).where(PackUnit.id.in_(numbers))
        .options(joinedload(PackUnit.product), joinedload(PackUnit.lot)))} if numbers else {}
    unknown = [code for code, parsed in wanted.items()
               if parsed is None or parsed[1] not in found or found[parsed[1]].kind != parsed[0]]
    if unknown:
        raise InvalidInput(_l("Unknown pack unit %(items)s.", items=", ".join(unknown)),
                           fields={field_name: [_l("Unknown pack unit %(id)s.", id=code)
                                                for code in unknown]})
    return [found[parsed[1]] for parsed in wanted.values() if parsed is not None]


def _check_children(kind: str, children: Sequence[PackUnit]) -> None:
    """Rule: a package holds only what its kind may hold (`HOLDS`), pack units not yet in
    another package nor shipped, all of one product and one customer, and a moisture-
    sensitive product's carriers only inside a dry bag. Raises Conflict `wrong_packing`,
    `already_packed`, `already_shipped`, `mixed_products`, `wrong_customer`."""
    first = children[0]
    for child in children:
        if child.kind not in HOLDS[PackKind(kind)]:
            raise Conflict(_l("A %(kind)s cannot hold %(child)s (a %(child_kind)s).",
                              kind=PackKind.word(kind), child=child.code,
                              child_kind=PackKind.word(child.kind)),
                           code=ErrorCode.WRONG_PACKING)
        if child.parent_id is not None:
            raise Conflict(_l("%(child)s is packed in %(parent)s already.", child=child.code,
                              parent=pack_code(_parent_kind(child), child.parent_id)),
                           code=ErrorCode.ALREADY_PACKED)
        if child.shipment_id is not None:
            raise Conflict(_l("%(child)s was shipped already (shipment %(shipment)s).",
                              child=child.code, shipment=child.shipment_id),
                           code=ErrorCode.ALREADY_SHIPPED)
        if child.product_id != first.product_id:
            raise Conflict(_l("%(child)s holds %(product)s, %(first)s holds %(product2)s: one "
                              "package holds one product.", child=child.code,
                              product=child.product.code, first=first.code,
                              product2=first.product.code), code=ErrorCode.MIXED_PRODUCTS)
        if child.customer_id != first.customer_id:
            raise Conflict(_l("%(child)s and %(first)s belong to different customers.",
                              child=child.code, first=first.code),
                           code=ErrorCode.WRONG_CUSTOMER)
        if (kind != PackKind.BAG and child.kind in CARRIERS
                and moisture_sensitive(child.product)):
            raise Conflict(_l("%(child)s holds %(product)s, MSL %(msl)s: it is sealed in a dry "
                              "bag before it goes into a %(kind)s.", child=child.code,
                              product=child.product.code, msl=child.product.msl,
                              kind=PackKind.word(kind)), code=ErrorCode.WRONG_PACKING)


def _lots_of(units: Sequence[PackUnit]) -> list[Lot]:
    """The lots of carriers, each once, in the order first met."""
    found: dict[int, Lot] = {}
    for unit in units:
        if unit.lot is not None:
            found.setdefault(unit.lot.id, unit.lot)
    return list(found.values())


def _parent_kind(unit: PackUnit) -> str:
    return unit.parent.kind if unit.parent is not None else PackKind.BOX


def make_package(session: Session, actor: Actor, *, kind: str, children: Sequence[str],
                 quantity: int | None = None) -> PackUnit:
    """Put pack units (`children`, their ids) into a new dry bag, box or carton (`kind`).
    Its quantity is the sum of theirs; `quantity`, when given (the count on the packing
    list), must be that sum. A dry bag is sealed as it is made (`sealed_at`): it is the
    dry pack of its lots, whose moisture clocks are sealed (mes.quality), and it is refused
    with 409 `exposure_exceeded` when a lot's exposure since its last bake is beyond its
    product's exposure time.

    Refused as `_check_children`, with 422 for unknown, repeated or too many children
    (field `children`) and 422 `quantity_mismatch` (field `quantity`)."""
    if not children or len(children) > MAX_CHILDREN:
        raise _invalid("children", _l("Name 1 to %(max)s pack units.", max=MAX_CHILDREN))
    if len({c.strip().upper() for c in children}) != len(children):
        raise _invalid("children", _l("Name each pack unit once."))
    units = units_by_id(session, children, "children")
    _check_children(kind, units)
    total = sum(unit.quantity for unit in units)
    if quantity is not None and quantity != total:
        raise _invalid("quantity", _l("The pack units hold %(total)s units, not %(quantity)s.",
                                      total=total, quantity=quantity),
                       ErrorCode.QUANTITY_MISMATCH)
    now = utcnow()
    bagged = _lots_of(units) if kind == PackKind.BAG else []
    # The dry pack (J-STD-033): every lot within its exposure time since its last bake.
    moisture_services.check_dry_packs(session, bagged, now)
    package = PackUnit(kind=kind, product_id=units[0].product_id,
                       customer_id=units[0].customer_id, quantity=total, created_at=now,
                       created_by=actor_name(actor),
                       sealed_at=now if kind == PackKind.BAG else None)
    session.add(package)
    session.flush()  # its id, which the children point at and the audit record names
    for unit in units:
        unit.parent = package
    moisture_services.seal_lots(session, actor, bagged, now, package.code)
    audit.record(session, actor=actor, code="pack_unit:create", subject_type="pack_unit",
                 subject_key=package.code, new_subject=True,
                 data={"kind": kind, "quantity": total,
                       "children": [unit.code for unit in units]})
    return package


# --- reading ---------------------------------------------------------------------------

def get_pack_unit(session: Session, code: str, actor: Actor | None = None) -> PackUnit:
    """The pack unit with id `code` (R-000123 ...). Another customer's is NotFound."""
    parsed = parse_pack_code(code)
    unit = None
    if parsed is not None:
        unit = session.scalar(scoped(select(PackUnit), PackUnit.customer_id, actor).where(
            PackUnit.id == parsed[1], PackUnit.kind == parsed[0]))
    if unit is None:
        raise NotFound(_l("No pack unit %(id)s.", id=code))
    return unit


def carriers_within(session: Session, units: Sequence[PackUnit]) -> list[PackUnit]:
    """The carriers (reels, trays, tubes) in `units` and in every package under them."""
    found: list[PackUnit] = [u for u in units if u.kind in CARRIERS]
    level = [u.id for u in units if u.kind not in CARRIERS]
    while level:
        below = list(session.scalars(select(PackUnit).where(PackUnit.parent_id.in_(level))
                                     .options(joinedload(PackUnit.lot))))
        found.extend(u for u in below if u.kind in CARRIERS)
        level = [u.id for u in below if u.kind not in CARRIERS]
    return found


def units_within(session: Session, units: Sequence[PackUnit]) -> list[PackUnit]:
    """`units` and every pack unit under them."""
    found = list(units)
    level = [u.id for u in units if u.kind not in CARRIERS]
    while level:
        below = list(session.scalars(select(PackUnit).where(PackUnit.parent_id.in_(level))))
        found.extend(below)
        level = [u.id for u in below if u.kind not in CARRIERS]
    return found


@dataclass(frozen=True)
class LotShare:
    lot_no: str
    quantity: int


@dataclass(frozen=True)
class PresentedPackUnit:
    """A pack unit as the API and the pages show it."""

    unit: PackUnit
    id: str
    kind: str
    parent: str | None
    children: list[str]
    quantity: int
    product: str
    customer: str
    lots: list[LotShare]
    date_codes: list[str]
    sealed_at: datetime | None
    shipment: int | None
    created_at: datetime


def present_unit(session: Session, unit: PackUnit) -> PresentedPackUnit:
    """What `unit` holds: its children's ids, its lots with their quantities (in lot number
    order), every date code of those lots (a box of lots of two weeks lists both)."""
    shares: dict[str, int] = {}
    codes: set[str] = set()
    for carrier in carriers_within(session, [unit]):
        lot = carrier.lot
        assert lot is not None
        shares[lot.lot_no] = shares.get(lot.lot_no, 0) + carrier.quantity
        if lot.date_code:
            codes.add(lot.date_code)
    return PresentedPackUnit(
        unit=unit, id=unit.code, kind=unit.kind,
        parent=unit.parent.code if unit.parent is not None else None,
        children=[child.code for child in unit.children], quantity=unit.quantity,
        product=unit.product.code, customer=unit.customer.code,
        lots=[LotShare(lot_no, qty) for lot_no, qty in sorted(shares.items())],
        date_codes=sorted(codes), sealed_at=unit.sealed_at, shipment=unit.shipment_id,
        created_at=unit.created_at)


def lot_units(session: Session, lot: Lot) -> list[PackUnit]:
    """The lot's carriers, in the order they were packed."""
    return list(session.scalars(select(PackUnit).where(PackUnit.lot_id == lot.id)
                                .order_by(PackUnit.id)))


def loose_units(session: Session, *, customer_id: int | None = None,
                limit: int = 300) -> list[PackUnit]:
    """Pack units in no package and not shipped, newest first (of one customer, when
    given): what a package or a shipment can take."""
    stmt = (select(PackUnit).where(PackUnit.parent_id.is_(None), PackUnit.shipment_id.is_(None))
            .options(joinedload(PackUnit.product), joinedload(PackUnit.customer))
            .order_by(PackUnit.id.desc()).limit(limit))
    if customer_id is not None:
        stmt = stmt.where(PackUnit.customer_id == customer_id)
    return list(session.scalars(stmt))
