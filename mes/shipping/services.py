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
from mes.catalog.models import Customer, Product, RouteStep
from mes.db import utcnow
from mes.errors import Conflict, ErrorCode, InvalidInput, NotFound
from mes.floor import services as floor
from mes.floor.models import Lot, StepRun
from mes.quality.moisture import check_floor_life, check_shelf_life
from mes.shipping import labels
from mes.shipping.models import Shipment, ShipmentLot
from mes.vocabulary import EventKind, LotState, StepKind

MAX_LOTS = 500
PO_LENGTH = 60


def _invalid(field_name: str, message: str) -> InvalidInput:
    return InvalidInput(message, fields={field_name: [message]})


# --- reading ---------------------------------------------------------------------------

def _with_lots(stmt: Select[Any]) -> Select[Any]:
    return stmt.options(joinedload(Shipment.customer),
                        selectinload(Shipment.lots).joinedload(ShipmentLot.lot))


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


def check_shippable(session: Session, lot: Lot, customer: Customer) -> None:
    """Rule: a lot ships only to its own customer, once, when completed, free of holds,
    within its moisture floor life, in a dry bag within its shelf life (12 months from its
    seal), and, to an automotive customer, only when its product is qualified. Raises
    Conflict with the first of `wrong_customer`, `already_shipped`, `not_completed`,
    `lot_on_hold`, `floor_life_expired`, `shelf_life_expired`, `not_qualified` that
    applies."""
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
    if lot.open_holds:
        raise Conflict(_l("Lot %(lot)s is on hold (%(n)s open hold(s)); it cannot be "
                          "shipped.", lot=lot.lot_no, n=lot.open_holds), code=ErrorCode.LOT_ON_HOLD)
    check_floor_life(session, lot)
    check_shelf_life(session, lot)
    if customer.automotive and not lot.product.qualified:
        raise Conflict(_l("Product %(code)s of lot %(lot)s has no passed qualification; it "
                          "cannot be shipped to the automotive customer %(code2)s.",
                          code=lot.product.code, lot=lot.lot_no, code2=customer.code),
                       code=ErrorCode.NOT_QUALIFIED)


def create_shipment(session: Session, actor: Actor, data: dict[str, Any]) -> Shipment:
    """Ship lots to a customer under a purchase order: `data` holds `customer`, `po`
    (1 to 60 characters), `vehicle_program` (optional) and `lots` (1 to 500 distinct lot
    numbers).

    Every lot is checked (`check_shippable`, in the order given) before anything changes,
    and the first refusal wins: nothing ships unless every lot may. The lots become
    `shipped`, each with a `ship` history event, and the shipment gets its own audit
    record. The lots are written under their version counters: a lot changed meanwhile
    (held, say) makes the whole shipment fail with 409 `stale`.

    Raises InvalidInput (unknown customer, field `customer`; unknown, repeated, missing or
    too many lots, field `lots`; a blank or too long `po`) and Conflict as
    `check_shippable`.
    """
    customer = session.scalar(select(Customer).where(Customer.code == data["customer"]))
    if customer is None:
        raise _invalid("customer", _l("Unknown customer %(customer)s.", customer=data['customer']))
    po = (data.get("po") or "").strip()
    if not po or len(po) > PO_LENGTH:
        raise _invalid("po", _l("Give the purchase order, 1 to %(max)s characters.",
                                max=PO_LENGTH))
    numbers = list(data.get("lots") or [])
    if not numbers or len(numbers) > MAX_LOTS:
        raise _invalid("lots", _l("Name 1 to %(max)s lots.", max=MAX_LOTS))
    if len(set(numbers)) != len(numbers):
        raise _invalid("lots", _l("Name each lot once."))
    lots = _lots(session, numbers)
    for lot in lots:
        check_shippable(session, lot, customer)
    now = utcnow()
    shipment = Shipment(customer=customer, po=po,
                        vehicle_program=data.get("vehicle_program") or None, shipped_at=now,
                        shipped_by=actor_name(actor),
                        lots=[ShipmentLot(lot=lot, quantity=lot.quantity) for lot in lots])
    session.add(shipment)
    # Flushed for the shipment id the history events and the audit record name; the lots
    # are not changed yet, so their versioned UPDATEs come once, at the request's flush.
    session.flush()
    for lot in lots:
        lot.state = LotState.SHIPPED
    floor.record_events(session, EventKind.SHIP, actor, [
        (lot, {"shipment": shipment.id, "customer": customer.code, "po": po,
               "quantity": lot.quantity}) for lot in lots], at=now)
    audit.record(session, actor=actor, code="shipment:create", subject_type="shipment",
                 subject_key=str(shipment.id), new_subject=True,
                 data={"customer": customer.code, "po": po,
                       "vehicle_program": shipment.vehicle_program,
                       "lots": [{"lot_no": lot.lot_no, "quantity": lot.quantity}
                                for lot in lots]})
    return shipment


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
    """The date code (YYWW, `labels.date_code`) of each lot of the shipment, by lot id: the
    week it finished final test (`lot_dates`), else the week it shipped."""
    dates = lot_dates(session, [row.lot_id for row in shipment.lots])
    return {row.lot_id: labels.date_code(dates.get(row.lot_id, shipment.shipped_at))
            for row in shipment.lots}


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


def refusal(session: Session, lot: Lot, customer: Customer) -> Conflict | None:
    """Why `check_shippable` would refuse the lot now, or None."""
    try:
        check_shippable(session, lot, customer)
    except Conflict as exc:
        return exc
    return None
