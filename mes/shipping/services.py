"""Shipping rules: which lots may leave the plant, and the shipment that carries them.

Every function works in the caller's transaction and raises before changing anything when a
rule refuses.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import Session, joinedload, selectinload

from mes import audit
from mes.auth.actor import Actor, actor_name
from mes.auth.scope import scoped
from mes.catalog import services as catalog
from mes.catalog.models import Bom, Customer, Product, RouteStep
from mes.changes import services as changes
from mes.db import utcnow
from mes.errors import Conflict, ErrorCode, InvalidInput, NotFound
from mes.events import publishers
from mes.floor import services as floor
from mes.floor.models import Lot, StepRun
from mes.quality.models import Hold
from mes.quality.moisture import check_bags_shelf_life, check_floor_life, check_shelf_life
from mes.shipping import labels, packing
from mes.shipping.models import PackUnit, Shipment, ShipmentLot
from mes.vocabulary import (
    EventKind,
    HoldSource,
    HoldStatus,
    LotState,
    PackKind,
    StepKind,
    SystemText,
)

MAX_LOTS = 500
PO_LENGTH = 60


def _invalid(field_name: str, message: str) -> InvalidInput:
    return InvalidInput(message, fields={field_name: [message]})


# --- reading ---------------------------------------------------------------------------

def _with_lots(stmt: Select[Any]) -> Select[Any]:
    return stmt.options(joinedload(Shipment.customer),
                        selectinload(Shipment.lots).joinedload(ShipmentLot.lot),
                        selectinload(Shipment.units))


def shipment_query(actor: Actor | None = None) -> Select[Any]:
    """Shipments, newest first; a customer user's own only."""
    return scoped(_with_lots(select(Shipment)), Shipment.customer_id, actor).order_by(
        Shipment.shipped_at.desc(), Shipment.id.desc())


def filter_shipments(stmt: Select[Any], filters: dict[str, Any],
                     zone: str = "UTC") -> Select[Any]:
    """Narrow `shipment_query`: `customer` (code), `po` (exact), `lot` (a lot number the
    shipment carried), `vehicle_program` (exact), `since` / `until` (dates, shipped on or
    after / on or before, days of `zone`: UTC for the API, the plant's on the page)."""
    if filters.get("customer"):
        stmt = stmt.where(Shipment.customer_id == select(Customer.id).where(
            Customer.code == filters["customer"]).scalar_subquery())
    if filters.get("po"):
        stmt = stmt.where(Shipment.po == filters["po"])
    if filters.get("vehicle_program"):
        stmt = stmt.where(Shipment.vehicle_program == filters["vehicle_program"])
    if filters.get("lot"):
        stmt = stmt.where(Shipment.id.in_(
            select(ShipmentLot.shipment_id).join(Lot, Lot.id == ShipmentLot.lot_id)
            .where(Lot.lot_no == filters["lot"])))
    if filters.get("since"):
        stmt = stmt.where(Shipment.shipped_at >= _day_start(filters["since"], zone))
    if filters.get("until") and filters["until"] < date.max:
        # Until the last day of the calendar is no upper bound (the day after it is none).
        stmt = stmt.where(Shipment.shipped_at < _day_start(filters["until"], zone, 1))
    return stmt


def _day_start(day: date, zone: str, plus_days: int = 0) -> datetime:
    """The start of `day` (plus some days) in `zone`, in UTC."""
    start = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(zone)) \
        + timedelta(days=plus_days)
    try:
        return start.astimezone(UTC)
    except OverflowError:  # the first day of the calendar, east of UTC: no lower bound
        return datetime.min.replace(tzinfo=UTC)


def get_shipment(session: Session, shipment_id: int, actor: Actor | None = None) -> Shipment:
    """The shipment `shipment_id`. Another customer's shipment is NotFound, as if it did not
    exist."""
    shipment = session.scalar(shipment_query(actor).where(Shipment.id == shipment_id))
    if shipment is None:
        raise NotFound(_l("No shipment %(shipment_id)s.", shipment_id=shipment_id))
    return shipment


# --- shipping --------------------------------------------------------------------------

def _lots(session: Session, numbers: Sequence[str]) -> list[Lot]:
    """The lots in the order given, with what the checks read (product, qualifications)
    loaded up front; an unknown number is 422 naming it."""
    found = {lot.lot_no: lot for lot in session.scalars(
        select(Lot).where(Lot.lot_no.in_(numbers))
        .options(joinedload(Lot.product).selectinload(Product.qualifications)))}
    unknown = [n for n in numbers if n not in found]
    if unknown:
        raise InvalidInput(_l("Unknown lot %(items)s.", items=', '.join(unknown)),
                           fields={"lots": [_l("Unknown lot %(lot)s.", lot=n) for n in unknown]})
    return [found[n] for n in numbers]


def _open_pat_escapes(session: Session, lot: Lot) -> int:
    """The escapes counted by the lot's open PAT-escape holds (AEC-Q001; placed by
    mes.testfloor.pat.hold_escapes, resolved by releasing the hold)."""
    if not lot.open_holds:
        return 0
    holds = session.scalars(select(Hold).where(
        Hold.lot_id == lot.id, Hold.source == HoldSource.PAT,
        Hold.text_code == SystemText.PAT_ESCAPE, Hold.status == HoldStatus.OPEN))
    return sum(int((hold.data or {}).get("escapes") or 1) for hold in holds)


def check_shippable(session: Session, lot: Lot, customer: Customer,
                    checked: set[tuple[int, int | None]] | None = None) -> None:
    """Rule: a lot ships only to its own customer, once, when completed, free of holds,
    within its moisture floor life, in a dry bag within its shelf life (12 months from its
    seal), and, to an automotive customer, only on passed qualification evidence for its
    product at its grade and the BOM revision the lot was built on
    (`catalog.check_qualified`) and, when it is built under a product change, when the
    customer accepted the change's PCN (`changes.check_pcn`). Raises Conflict with the first
    of `wrong_customer`, `already_shipped`, `not_completed`, `pat_escape` (an open hold of
    PAT escapes: parts binned good outside the PAT limits in force), `lot_on_hold`,
    `floor_life_expired`, `shelf_life_expired`, `not_qualified`, `pcn_not_accepted` that
    applies. `checked` holds the (product, BOM revision) pairs already found qualified in
    this request."""
    if lot.customer_id != customer.id:
        raise Conflict(_l("Lot %(lot)s belongs to another customer than %(code)s.",
                          lot=lot.lot_no, code=customer.code),
                       code=ErrorCode.WRONG_CUSTOMER)
    if lot.state == LotState.SHIPPED:
        raise Conflict(_l("Lot %(lot)s was shipped already.", lot=lot.lot_no),
                       code=ErrorCode.ALREADY_SHIPPED)
    if lot.state != LotState.COMPLETED:
        raise Conflict(_l("Lot %(lot)s is %(state)s; only completed lots ship.", lot=lot.lot_no,
                          state=_l(lot.state)),
                       code=ErrorCode.NOT_COMPLETED)
    escapes = _open_pat_escapes(session, lot)
    if escapes:
        raise Conflict(_l("Lot %(lot)s has %(n)s unresolved PAT escape(s) (parts binned good "
                          "outside the PAT limits in force); it cannot ship until a re-screen "
                          "bins them out or QA dispositions the PAT hold.", lot=lot.lot_no,
                          n=escapes), code=ErrorCode.PAT_ESCAPE)
    if lot.open_holds:
        raise Conflict(_l("Lot %(lot)s is on hold (%(n)s open hold(s)); it cannot be "
                          "shipped.", lot=lot.lot_no, n=lot.open_holds), code=ErrorCode.LOT_ON_HOLD)
    check_floor_life(session, lot)
    check_shelf_life(session, lot)
    key = (lot.product_id, lot.bom_id)
    if customer.automotive and (checked is None or key not in checked):
        bom = session.get(Bom, lot.bom_id) if lot.bom_id is not None else None
        catalog.check_qualified(session, lot.product, bom, lot.lot_no, customer.code)
        if checked is not None:
            checked.add(key)
    changes.check_pcn(session, lot, customer)


def _top(unit: PackUnit) -> PackUnit:
    while unit.parent is not None:
        unit = unit.parent
    return unit


def _named_units(session: Session, codes: Sequence[str]) -> list[PackUnit]:
    """The pack units a shipment names: each must be outermost (not inside a package: the
    package ships) and not shipped before. Raises InvalidInput (field `pack_units`) and
    Conflict `packed_in_parent`, `already_shipped`."""
    if len({c.strip().upper() for c in codes}) != len(codes):
        raise _invalid("pack_units", _l("Name each pack unit once."))
    units = packing.units_by_id(session, codes, "pack_units")
    for unit in units:
        if unit.shipment_id is not None:
            raise Conflict(_l("%(unit)s was shipped already (shipment %(shipment)s).",
                              unit=unit.code, shipment=unit.shipment_id),
                           code=ErrorCode.ALREADY_SHIPPED)
        if unit.parent is not None:
            raise Conflict(_l("%(unit)s is packed in %(parent)s; ship %(top)s.", unit=unit.code,
                              parent=unit.parent.code, top=_top(unit).code),
                           code=ErrorCode.PACKED_IN_PARENT)
    return units


def _lot_roots(session: Session, lots: Sequence[Lot]) -> list[PackUnit]:
    """The outermost pack units holding the packed lots' carriers not shipped yet: naming
    a packed lot ships all its reels, each with the package it is in. A package that also
    holds reels of a lot not named is refused (Conflict `packed_in_parent`: name the
    package)."""
    packed = [lot for lot in lots if lot.packed_qty]
    if not packed:
        return []
    carriers = list(session.scalars(
        select(PackUnit).where(PackUnit.lot_id.in_([lot.id for lot in packed]),
                               PackUnit.shipment_id.is_(None)).order_by(PackUnit.id)))
    roots = list({root.id: root for root in map(_top, carriers)}.values())
    named = {lot.id for lot in lots}
    for carrier in packing.carriers_within(session, roots):
        if carrier.lot_id not in named:
            assert carrier.lot is not None
            root = _top(carrier)
            raise Conflict(_l("%(root)s also holds lot %(lot)s, which is not named; ship "
                              "%(root2)s by its id.", root=root.code, lot=carrier.lot.lot_no,
                              root2=root.code), code=ErrorCode.PACKED_IN_PARENT)
    return roots


def create_shipment(session: Session, actor: Actor, data: dict[str, Any]) -> Shipment:
    """Ship to a customer under a purchase order: `data` holds `customer`, `po` (1 to 60
    characters), `vehicle_program` (optional), and `lots` (lot numbers) and/or
    `pack_units` (pack unit ids: cartons, boxes, bags or reels), 1 to 500 of each.

    A pack unit ships with everything in it; it must be outermost (a reel in a box: name
    the box) and not shipped before. A lot never packed ships whole, as it always did; a
    packed lot named ships all its reels not shipped yet, with the packages they are in.
    Every lot in the shipment is checked (`check_shippable`) before anything changes, and
    the first refusal wins: nothing ships unless every lot may. Each lot's shipped
    quantity grows by what left; a lot becomes `shipped` when all its units have left (a
    lot shipped reel by reel stays `completed` until its last reel leaves). Each lot gets a
    `ship` history event, the shipment its own audit record. Lots and pack units are
    written under their version counters: a change meanwhile is 409 `stale`.

    Raises InvalidInput (unknown customer, field `customer`; unknown, repeated, missing or
    too many lots or pack units, fields `lots` / `pack_units`; a blank or too long `po`),
    Conflict `packed_in_parent` / `already_shipped` for pack units, Conflict as
    `check_shippable` for each lot, and Conflict `shelf_life_expired` for a dry bag sealed
    more than 12 months ago.
    """
    customer = session.scalar(select(Customer).where(Customer.code == data["customer"]))
    if customer is None:
        raise _invalid("customer", _l("Unknown customer %(customer)s.", customer=data['customer']))
    po = (data.get("po") or "").strip()
    if not po or len(po) > PO_LENGTH:
        raise _invalid("po", _l("Give the purchase order, 1 to %(max)s characters.",
                                max=PO_LENGTH))
    numbers = list(data.get("lots") or [])
    codes = list(data.get("pack_units") or [])
    if not numbers and not codes:
        raise _invalid("lots", _l("Name the lots or the pack units to ship."))
    if len(numbers) > MAX_LOTS or len(codes) > MAX_LOTS:
        raise _invalid("lots" if len(numbers) > MAX_LOTS else "pack_units",
                       _l("Name 1 to %(max)s lots or pack units.", max=MAX_LOTS))
    if len(set(numbers)) != len(numbers):
        raise _invalid("lots", _l("Name each lot once."))
    named_lots = _lots(session, numbers) if numbers else []
    roots = _named_units(session, codes) if codes else []
    for root in _lot_roots(session, named_lots):
        if root.id not in {unit.id for unit in roots}:
            roots.append(root)
    carriers = packing.carriers_within(session, roots)
    shares: dict[int, int] = {}
    for carrier in carriers:
        assert carrier.lot_id is not None
        shares[carrier.lot_id] = shares.get(carrier.lot_id, 0) + carrier.quantity
    lots = list(named_lots)
    seen = {lot.id for lot in lots}
    lots.extend(lot for lot in _lots_by_id(session, [i for i in shares if i not in seen]))
    checked: set[tuple[int, int | None]] = set()
    for lot in lots:
        check_shippable(session, lot, customer, checked)
    within = packing.units_within(session, roots)
    check_bags_shelf_life([unit for unit in within if unit.kind == PackKind.BAG])
    # A lot never packed ships whole; a packed lot the units it has in the shipment.
    quantities = {lot.id: shares.get(lot.id, 0) if lot.packed_qty else lot.quantity
                  for lot in lots}
    left = _carriers_left(session, [lot for lot in lots if lot.packed_qty],
                          {carrier.id for carrier in carriers})
    now = utcnow()
    shipment = Shipment(customer=customer, po=po,
                        vehicle_program=data.get("vehicle_program") or None, shipped_at=now,
                        shipped_by=actor_name(actor),
                        lots=[ShipmentLot(lot=lot, quantity=quantities[lot.id]) for lot in lots])
    session.add(shipment)
    # Flushed for the shipment id the history events and the audit record name; the lots
    # are not changed yet, so their versioned UPDATEs come once, at the request's flush.
    session.flush()
    for unit in within:
        unit.shipment_id = shipment.id
    for lot in lots:
        lot.shipped_qty += quantities[lot.id]
        if not left.get(lot.id):
            lot.state = LotState.SHIPPED
    unit_ids = {lot_id: [c.code for c in carriers if c.lot_id == lot_id] for lot_id in shares}
    floor.record_events(session, EventKind.SHIP, actor, [
        (lot, {"shipment": shipment.id, "customer": customer.code, "po": po,
               "quantity": quantities[lot.id],
               **({"pack_units": unit_ids[lot.id], "carriers_left": left.get(lot.id, 0)}
                  if lot.id in unit_ids else {})})
        for lot in lots], at=now)
    audit.record(session, actor=actor, code="shipment:create", subject_type="shipment",
                 subject_key=str(shipment.id), new_subject=True,
                 data={"customer": customer.code, "po": po,
                       "vehicle_program": shipment.vehicle_program,
                       "lots": [{"lot_no": lot.lot_no, "quantity": quantities[lot.id]}
                                for lot in lots],
                       **({"pack_units": [root.code for root in roots]} if roots else {})})
    publishers.shipment_created(session, shipment)
    return shipment


def _lots_by_id(session: Session, ids: Sequence[int]) -> list[Lot]:
    if not ids:
        return []
    return list(session.scalars(
        select(Lot).where(Lot.id.in_(ids)).order_by(Lot.lot_no)
        .options(joinedload(Lot.product).selectinload(Product.qualifications))))


def _carriers_left(session: Session, lots: Sequence[Lot], shipping: set[int]
                   ) -> dict[int, int]:
    """For each packed lot, how many of its carriers stay in the plant after this
    shipment (carriers not shipped before and not in `shipping`)."""
    if not lots:
        return {}
    left: dict[int, int] = {}
    for carrier_id, lot_id in session.execute(
            select(PackUnit.id, PackUnit.lot_id).where(
                PackUnit.lot_id.in_([lot.id for lot in lots]),
                PackUnit.shipment_id.is_(None))):
        if carrier_id not in shipping and lot_id is not None:
            left[lot_id] = left.get(lot_id, 0) + 1
    return left


# --- labels and date codes -------------------------------------------------------------

def lot_dates(session: Session, lot_ids: Sequence[int]) -> dict[int, datetime]:
    """When each lot finished final test: its latest track-out at a step of kind `test`;
    a lot with no test step takes its latest track-out of any step. Lots never tracked out
    are missing from the answer."""
    if not lot_ids:
        return {}
    tested = func.max(case((RouteStep.kind == StepKind.TEST, StepRun.finished_at)))
    rows = session.execute(
        select(StepRun.lot_id, tested, func.max(StepRun.finished_at))
        .join(RouteStep, (RouteStep.route_id == StepRun.route_id)
              & (RouteStep.seq == StepRun.step_seq))
        .where(StepRun.lot_id.in_(lot_ids), StepRun.finished_at.is_not(None))
        .group_by(StepRun.lot_id))
    return {lot_id: _aware(test_at or last_at) for lot_id, test_at, last_at in rows
            if (test_at or last_at) is not None}


def _aware(value: Any) -> datetime:
    # An aggregate over a CASE may come back from SQLite as text, without the column type.
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def date_codes(session: Session, shipment: Shipment) -> dict[int, str]:
    """The date code (YYWW) of each lot of the shipment, by lot id: the one its marking
    fixed (`Lot.date_code`); a lot never marked (a route without a marking step) takes the
    week it finished final test (`lot_dates`), else the week it shipped."""
    unmarked = [row.lot_id for row in shipment.lots if not row.lot.date_code]
    dates = lot_dates(session, unmarked)
    return {row.lot_id: row.lot.date_code or labels.date_code(
        dates.get(row.lot_id, shipment.shipped_at)) for row in shipment.lots}


def reel_labels(session: Session, shipment: Shipment) -> list[labels.Label]:
    """One reel label per lot of the shipment, in the shipment's lot order."""
    codes = date_codes(session, shipment)
    return [labels.Label(
        kind="reel", part_number=row.lot.product.code, part_name=row.lot.product.name,
        quantity=row.quantity, lots=(row.lot.lot_no,), date_code=codes[row.lot_id],
        msl=row.lot.product.msl, customer=shipment.customer.code, po=shipment.po,
        shipment=shipment.id, vehicle_program=shipment.vehicle_program)
        for row in shipment.lots]


def shipment_labels(session: Session, shipment: Shipment) -> list[labels.Label]:
    """The reel labels of the shipment followed by its carton labels (one per product)."""
    reels = reel_labels(session, shipment)
    return reels + labels.carton_labels(reels)


def shippable_lots(session: Session, customer: Customer, limit: int = MAX_LOTS) -> list[Lot]:
    """The customer's completed lots, oldest first, for the new-shipment form to offer.
    Lots that would still be refused (on hold, floor life, qualification) are listed too:
    the form shows why before anything is posted (`refusal`)."""
    return list(session.scalars(
        select(Lot).where(Lot.customer_id == customer.id, Lot.state == LotState.COMPLETED)
        .options(joinedload(Lot.product).selectinload(Product.qualifications))
        .order_by(Lot.updated_at, Lot.id).limit(limit)))


def refusal(session: Session, lot: Lot, customer: Customer,
            checked: set[tuple[int, int | None]] | None = None) -> Conflict | None:
    """Why `check_shippable` would refuse the lot now, or None (`checked` as there, shared
    over the lots of one page)."""
    try:
        check_shippable(session, lot, customer, checked)
    except Conflict as exc:
        return exc
    return None
