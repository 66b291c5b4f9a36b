"""Shipping rules: which lots may leave the plant, and the shipment that carries them.

Every function works in the caller's transaction and raises before changing anything when a
rule refuses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, joinedload, selectinload

from mes import audit
from mes.catalog.models import Customer, Product
from mes.db import utcnow
from mes.errors import Conflict, InvalidInput, NotFound
from mes.floor import services as floor
from mes.floor.models import Lot
from mes.quality.moisture import check_floor_life
from mes.shipping.models import Shipment, ShipmentLot

MAX_LOTS = 500
PO_LENGTH = 60


def _invalid(field_name: str, message: str) -> InvalidInput:
    return InvalidInput(message, fields={field_name: [message]})


# --- reading ---------------------------------------------------------------------------

def _with_lots(stmt: Select[Any]) -> Select[Any]:
    return stmt.options(joinedload(Shipment.customer),
                        selectinload(Shipment.lots).joinedload(ShipmentLot.lot))


def shipment_query(actor: Any = None) -> Select[Any]:
    """Shipments, newest first; a customer user's own only."""
    stmt = _with_lots(select(Shipment))
    customer_id = floor.scope_customer(actor)
    if customer_id is not None:
        stmt = stmt.where(Shipment.customer_id == customer_id)
    return stmt.order_by(Shipment.shipped_at.desc(), Shipment.id.desc())


def get_shipment(session: Session, shipment_id: int, actor: Any = None) -> Shipment:
    """The shipment `shipment_id`. Another customer's shipment is NotFound, as if it did not
    exist."""
    shipment = session.scalar(shipment_query(actor).where(Shipment.id == shipment_id))
    if shipment is None:
        raise NotFound(f"No shipment {shipment_id}.")
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
        raise InvalidInput(f"Unknown lot {', '.join(unknown)}.",
                           fields={"lots": [f"Unknown lot {n}." for n in unknown]})
    return [found[n] for n in numbers]


def check_shippable(session: Session, lot: Lot, customer: Customer) -> None:
    """Rule: a lot ships only to its own customer, once, when completed, free of holds,
    within its moisture floor life, and, to an automotive customer, only when its product is
    qualified. Raises Conflict with the first of `wrong_customer`, `already_shipped`,
    `not_completed`, `lot_on_hold`, `floor_life_expired`, `not_qualified` that applies."""
    if lot.customer_id != customer.id:
        raise Conflict(f"Lot {lot.lot_no} belongs to another customer than {customer.code}.",
                       code="wrong_customer")
    if lot.state == "shipped":
        raise Conflict(f"Lot {lot.lot_no} was shipped already.", code="already_shipped")
    if lot.state != "completed":
        raise Conflict(f"Lot {lot.lot_no} is {lot.state}; only completed lots ship.",
                       code="not_completed")
    if lot.open_holds:
        raise Conflict(f"Lot {lot.lot_no} is on hold ({lot.open_holds} open hold(s)); it "
                       "cannot be shipped.", code="lot_on_hold")
    check_floor_life(session, lot)
    if customer.automotive and not lot.product.qualified:
        raise Conflict(f"Product {lot.product.code} of lot {lot.lot_no} has no passed "
                       f"qualification; it cannot be shipped to the automotive customer "
                       f"{customer.code}.", code="not_qualified")


def create_shipment(session: Session, actor: Any, data: dict[str, Any]) -> Shipment:
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
        raise _invalid("customer", f"Unknown customer {data['customer']}.")
    po = (data.get("po") or "").strip()
    if not po or len(po) > PO_LENGTH:
        raise _invalid("po", f"Give the purchase order, 1 to {PO_LENGTH} characters.")
    numbers = list(data.get("lots") or [])
    if not numbers or len(numbers) > MAX_LOTS:
        raise _invalid("lots", f"Name 1 to {MAX_LOTS} lots.")
    if len(set(numbers)) != len(numbers):
        raise _invalid("lots", "Name each lot once.")
    lots = _lots(session, numbers)
    for lot in lots:
        check_shippable(session, lot, customer)
    now = utcnow()
    shipment = Shipment(customer=customer, po=po,
                        vehicle_program=data.get("vehicle_program") or None, shipped_at=now,
                        shipped_by=getattr(actor, "username", actor),
                        lots=[ShipmentLot(lot=lot, quantity=lot.quantity) for lot in lots])
    session.add(shipment)
    # Flushed for the shipment id the history events and the audit record name; the lots
    # are not changed yet, so their versioned UPDATEs come once, at the request's flush.
    session.flush()
    for lot in lots:
        lot.state = "shipped"
    floor.record_events(session, "ship", actor, [
        (lot, {"shipment": shipment.id, "customer": customer.code, "po": po,
               "quantity": lot.quantity}) for lot in lots], at=now)
    audit.record(session, actor=actor, code="shipment:create", subject_type="shipment",
                 subject_key=str(shipment.id), new_subject=True,
                 data={"customer": customer.code, "po": po,
                       "vehicle_program": shipment.vehicle_program,
                       "lots": [{"lot_no": lot.lot_no, "quantity": lot.quantity}
                                for lot in lots]})
    return shipment
