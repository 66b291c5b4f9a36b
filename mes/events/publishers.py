"""The events other packages announce, as their customers receive them: shipments,
containments and product change notifications. Each is published in the transaction of the
change, for one customer, with that customer's references only: no staff names, no
internal comments, nothing of another customer."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mes.catalog.models import Customer, Product
from mes.changes import events as change_events
from mes.events.outbox import publish
from mes.vocabulary import EventType

if TYPE_CHECKING:
    from mes.changes.models import Pcn
    from mes.quality.models import Hold
    from mes.shipping.models import Shipment


def _time(value: datetime | date | None) -> str | None:
    if value is None:
        return None
    return value.isoformat().replace("+00:00", "Z")


def shipment_created(session: Session, shipment: Shipment) -> None:
    """`shipment.created` to the shipment's customer: its PO, vehicle program, lots and
    quantities (every lot of a shipment is that customer's)."""
    lots = [row.lot for row in shipment.lots]
    products = dict(session.execute(select(Product.id, Product.code).where(
        Product.id.in_({lot.product_id for lot in lots}))).all())
    quantity = {row.lot_id: row.quantity for row in shipment.lots}
    publish(session, EventType.SHIPMENT_CREATED, customer_id=shipment.customer_id, data={
        "shipment": shipment.id, "po": shipment.po,
        "vehicle_program": shipment.vehicle_program,
        "shipped_at": _time(shipment.shipped_at),
        "lots": [{"lot_no": lot.lot_no, "fab_lot": lot.fab_lot,
                  "product": products[lot.product_id], "quantity": quantity[lot.id]}
                 for lot in lots],
        "pack_units": sorted(unit.code for unit in shipment.units)})


def containment_created(session: Session, *, containment: str, reason: str,
                        reason_description: str, at: datetime, holds: list[Hold],
                        shipped: list[dict[str, Any]]) -> None:
    """`containment.created` to each customer it concerns: their lots it held in the
    plant and their shipments that carried lots it reaches (the criterion and the plant's
    comment stay inside)."""
    codes = {entry["customer"] for entry in shipped}
    ids = dict(session.execute(select(Customer.code, Customer.id).where(
        Customer.code.in_(codes))).all()) if codes else {}
    held: dict[int, list[str]] = {}
    for hold in holds:
        held.setdefault(hold.lot.customer_id, []).append(hold.lot.lot_no)
    left: dict[int, list[dict[str, Any]]] = {}
    for entry in shipped:
        left.setdefault(ids[entry["customer"]], []).append({
            "shipment": entry["shipment"], "po": entry["po"],
            "vehicle_program": entry["vehicle_program"], "shipped_at": entry["shipped_at"],
            "lots": entry["lots"], "quantities": entry["quantities"]})
    for customer_id in sorted(set(held) | set(left)):
        publish(session, EventType.CONTAINMENT_CREATED, customer_id=customer_id, data={
            "containment": containment, "reason": reason,
            "reason_description": reason_description, "at": _time(at),
            "lots_held": sorted(held.get(customer_id, [])),
            "shipped": left.get(customer_id, [])})


def pcn_data(pcn: Pcn) -> dict[str, Any]:
    """A PCN as its customer reads it (as GET /pcns, without the name of who answered)."""
    change = pcn.change
    return {"pcn": pcn.id, "change": change.id, "title": change.title, "kind": change.kind,
            "products": [row.product.code for row in change.products],
            "bom_revision": change.bom_revision, "description": change.description,
            "notice_days": pcn.notice_days, "sent_at": _time(pcn.sent_at),
            "effective_date": _time(pcn.effective_date), "status": pcn.status,
            "decided_at": _time(pcn.decided_at), "comment": pcn.comment}


@change_events.pcn_sent.connect
def _pcn_sent(pcn: Pcn, *, session: Session, **_kwargs: Any) -> None:
    publish(session, EventType.PCN_SENT, customer_id=pcn.customer_id, data=pcn_data(pcn))


@change_events.pcn_decided.connect
def _pcn_decided(pcn: Pcn, *, session: Session, **_kwargs: Any) -> None:
    publish(session, EventType.PCN_DECIDED, customer_id=pcn.customer_id, data=pcn_data(pcn))
