"""Grants and what partners see.

Who grants: the chip owner's customer users, for their own customer's PO lines and vehicle
programs; an admin on the owner's behalf (naming the owner). Partner users cannot grant:
they only read what they received. Revoking is the owner's (or an admin's) too; a revoked
grant stays on record and hides its lots from the next request on (grants are read from
the database on every request, never cached).

What a partner sees of a granted lot (docs/decisions.md, "Partners and the WIP feed"): the
owner, PO and line it is allocated to, product, state, step and stage, quantity, the
forecast, the holds the owner sees (reason code and description, placed and released
times), and the shipments that carried it (the granted lots of each only, with their
quantities and the shipping date). Never test data, genealogy, traces, certificates or
other lots of the owner.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from mes import audit
from mes.auth.actor import Actor, actor_name
from mes.auth.models import User
from mes.auth.permissions import Role
from mes.catalog.models import Customer, Product
from mes.db import utcnow
from mes.errors import Conflict, ErrorCode, InvalidInput, NotFound
from mes.floor.models import Lot
from mes.orders.models import OrderAllocation, OrderLine, PurchaseOrder
from mes.partners.access import granted_lot_ids, granted_lots
from mes.partners.models import Grant
from mes.portal.visibility import Visibility
from mes.quality.models import Hold
from mes.shipping.models import Shipment, ShipmentLot
from mes.vocabulary import CustomerKind, HoldStatus


def _role(actor: Actor | None) -> str | None:
    return actor.role if isinstance(actor, User) else None


def partner_of(actor: Actor | None) -> int | None:
    """The partner organisation a partner user belongs to (None for everyone else)."""
    if isinstance(actor, User) and actor.role == Role.PARTNER:
        return actor.customer_id if actor.customer_id is not None else 0
    return None


def owner_of(actor: Actor | None) -> int | None:
    """The chip owner a customer user belongs to (None for everyone else)."""
    if isinstance(actor, User) and actor.role == Role.CUSTOMER:
        return actor.customer_id if actor.customer_id is not None else 0
    return None


def _invalid(field: str, message: Any) -> InvalidInput:
    return InvalidInput(message, fields={field: [message]})


def _owner(session: Session, actor: Actor | None, code: str | None) -> Customer:
    own = owner_of(actor)
    if own is not None:
        customer = session.get(Customer, own)
        if customer is None or (code is not None and code != customer.code):
            raise _invalid("customer", _l("You grant views of your own customer's lots only."))
        return customer
    if code is None:
        raise _invalid("customer", _l("Name the customer whose lots are shown."))
    customer = session.scalar(select(Customer).where(Customer.code == code,
                                                     Customer.kind == CustomerKind.CUSTOMER))
    if customer is None:
        raise _invalid("customer", _l("Unknown customer %(customer)s.", customer=code))
    return customer


def create_grant(session: Session, actor: Actor, data: dict[str, Any]) -> Grant:
    """Grant partner `data["partner"]` a view of the lots of one PO line or one vehicle
    program of the owner. 422 for an unknown partner, line or program; 409 `duplicate`
    when the partner holds that grant already (also when two are made at once)."""
    owner = _owner(session, actor, data.get("customer"))
    partner = session.scalar(select(Customer).where(Customer.code == data["partner"],
                                                    Customer.kind == CustomerKind.PARTNER))
    if partner is None:
        raise _invalid("partner", _l("No partner organisation %(code)s.",
                                     code=data["partner"]))
    line = None
    program = data.get("vehicle_program")
    if program is None:
        line = session.scalar(
            select(OrderLine).join(PurchaseOrder, PurchaseOrder.id == OrderLine.order_id)
            .where(PurchaseOrder.customer_id == owner.id, PurchaseOrder.po == data["po"],
                   OrderLine.line_no == data["line"]))
        if line is None:
            raise _invalid("line", _l("PO %(po)s has no line %(line)s.",
                                      po=data["po"], line=data["line"]))
        same = Grant.order_line_id == line.id
    else:
        known = session.scalar(
            select(OrderLine.id).join(PurchaseOrder, PurchaseOrder.id == OrderLine.order_id)
            .where(PurchaseOrder.customer_id == owner.id,
                   OrderLine.vehicle_program == program).limit(1))
        if known is None:
            raise _invalid("vehicle_program", _l("No order line of vehicle program "
                                                 "%(program)s.", program=program))
        same = Grant.vehicle_program == program
    duplicate = Conflict(_l("%(partner)s holds this grant already.", partner=partner.code),
                         code=ErrorCode.DUPLICATE)
    if session.scalar(select(Grant.id).where(
            Grant.partner_id == partner.id, Grant.owner_id == owner.id,
            Grant.revoked_at.is_(None), same)) is not None:
        raise duplicate
    grant = Grant(owner=owner, partner=partner, line=line, vehicle_program=program,
                  granted_at=utcnow(), granted_by=actor_name(actor))
    session.add(grant)
    try:
        # In a savepoint: a simultaneous identical grant fails on the partial unique index
        # and is the duplicate it is.
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        if "partner_grant" in str(exc.orig):
            raise duplicate from None
        raise
    audit.record(session, actor=actor, code="grant:create", subject_type="partner_grant",
                 subject_key=str(grant.id), new_subject=True,
                 data={"customer": owner.code, "partner": partner.code,
                       "po": data.get("po") if line else None,
                       "line": line.line_no if line else None, "vehicle_program": program})
    return grant


def grants_query(actor: Actor | None, customer: str | None = None) -> Select[Any]:
    """Active grants: an owner's customer users see the grants they made, a partner's users
    those received; plant users every grant (`customer`: of that owner or partner)."""
    stmt = (select(Grant).where(Grant.revoked_at.is_(None))
            .options(joinedload(Grant.owner), joinedload(Grant.partner),
                     joinedload(Grant.line).joinedload(OrderLine.order))
            .order_by(Grant.id.desc()))
    own, partner = owner_of(actor), partner_of(actor)
    if own is not None:
        stmt = stmt.where(Grant.owner_id == own)
    elif partner is not None:
        stmt = stmt.where(Grant.partner_id == partner)
    if customer is not None:
        ids = select(Customer.id).where(Customer.code == customer).scalar_subquery()
        stmt = stmt.where(or_(Grant.owner_id == ids, Grant.partner_id == ids))
    return stmt


def revoke_grant(session: Session, actor: Actor, grant_id: int) -> None:
    """Revoke a grant: the owner's customer users or an admin; another owner's grant is
    404, one revoked already (also at the same moment) 409 `not_active`."""
    stmt = select(Grant).where(Grant.id == grant_id)
    own = owner_of(actor)
    if own is not None:
        stmt = stmt.where(Grant.owner_id == own)
    grant = session.scalar(stmt)
    if grant is None:
        raise NotFound(_l("No grant %(id)s.", id=grant_id))
    gone = Conflict(_l("Grant %(id)s was revoked already.", id=grant_id),
                    code=ErrorCode.NOT_ACTIVE)
    if grant.revoked_at is not None:
        raise gone
    now = utcnow()
    done = session.execute(update(Grant).where(Grant.id == grant.id,
                                               Grant.revoked_at.is_(None))
                           .values(revoked_at=now, revoked_by=actor_name(actor))
                           .execution_options(synchronize_session=False))
    if getattr(done, "rowcount", 0) != 1:
        raise gone
    session.refresh(grant)
    audit.record(session, actor=actor, code="grant:revoke", subject_type="partner_grant",
                 subject_key=str(grant.id), data={"partner": grant.partner.code})


# --- what a partner reads ----------------------------------------------------------------

@dataclass
class GrantedLot:
    lot: Lot
    owner: str
    owner_name: str
    po: str
    line: int
    vehicle_program: str | None
    p50: datetime | None = None
    p90: datetime | None = None
    holds: int = 0


def _granted(partner_id: int, *columns: Any) -> Select[Any]:
    return (select(*columns)
            .join(OrderAllocation, OrderAllocation.lot_id == Lot.id)
            .join(OrderLine, OrderLine.id == OrderAllocation.line_id)
            .join(PurchaseOrder, PurchaseOrder.id == OrderLine.order_id)
            .join(Customer, Customer.id == Lot.customer_id)
            .where(Lot.id.in_(granted_lot_ids(partner_id)))
            .order_by(Customer.code, PurchaseOrder.po, OrderLine.line_no, Lot.lot_no))


def granted_lot_query(partner_id: int) -> Select[Any]:
    """The ids of the partner's lots, by owner, PO, line and lot number (for paging)."""
    return _granted(partner_id, Lot.id)


def granted_rows(session: Session, partner_id: int, lot_ids: Sequence[int], now: datetime,
                 lot_no: str | None = None) -> list[GrantedLot]:
    """The partner's lots among `lot_ids` (or the one numbered `lot_no`) with owner, PO
    line, forecast and the holds the owner sees, in the order of `granted_lot_query`."""
    from mes.forecast.models import LotForecast

    stmt = (_granted(partner_id, Lot, Customer.code, Customer.name, PurchaseOrder.po,
                     OrderLine.line_no, OrderLine.vehicle_program, LotForecast.p50_at,
                     LotForecast.p90_at)
            .outerjoin(LotForecast, LotForecast.lot_id == Lot.id)
            .options(joinedload(Lot.product)))
    stmt = stmt.where(Lot.lot_no == lot_no) if lot_no is not None else \
        stmt.where(Lot.id.in_(list(lot_ids)))
    rows = session.execute(stmt).all()
    held = [row[0].id for row in rows if row[0].open_holds]
    counts: dict[int, int] = {}
    if held:
        for lot_id in session.scalars(
                select(Hold.lot_id).where(Hold.lot_id.in_(held),
                                          Hold.status == HoldStatus.OPEN,
                                          Visibility.configured().clause(now))):
            counts[lot_id] = counts.get(lot_id, 0) + 1
    return [GrantedLot(lot=lot, owner=code, owner_name=name, po=po, line=line_no,
                       vehicle_program=program, p50=p50, p90=p90, holds=counts.get(lot.id, 0))
            for lot, code, name, po, line_no, program, p50, p90 in rows]


def granted_lot(session: Session, partner_id: int, lot_no: str, now: datetime) -> GrantedLot:
    """One of the partner's lots; any other lot number is 404, as if it did not exist."""
    found = granted_rows(session, partner_id, (), now, lot_no=lot_no)
    if not found:
        raise NotFound(_l("No lot %(lot)s.", lot=lot_no))
    return found[0]


def lot_holds(session: Session, lot_id: int, now: datetime) -> list[Hold]:
    """The holds of a granted lot its owner sees, newest first."""
    return list(session.scalars(
        select(Hold).where(Hold.lot_id == lot_id, Visibility.configured().clause(now))
        .options(joinedload(Hold.reason)).order_by(Hold.id.desc())))


def lot_shipments(session: Session, partner_id: int, lot_id: int) -> list[Shipment]:
    """The shipments that carried a granted lot."""
    return list(session.scalars(
        select(Shipment).join(ShipmentLot, ShipmentLot.shipment_id == Shipment.id)
        .where(ShipmentLot.lot_id == lot_id, ShipmentLot.lot_id.in_(
            granted_lot_ids(partner_id))).order_by(Shipment.id.desc())))


def granted_shipment(session: Session, partner_id: int, shipment_id: int
                     ) -> tuple[Shipment, list[ShipmentLot]]:
    """A shipment that carried at least one granted lot, with those lots only; any other
    shipment is 404."""
    shipment = session.get(Shipment, shipment_id)
    lines = [] if shipment is None else list(session.scalars(
        select(ShipmentLot).where(ShipmentLot.shipment_id == shipment_id,
                                  ShipmentLot.lot_id.in_(granted_lot_ids(partner_id)))
        .options(joinedload(ShipmentLot.lot)).order_by(ShipmentLot.lot_id)))
    if shipment is None or not lines:
        raise NotFound(_l("No shipment %(id)s.", id=shipment_id))
    return shipment, lines


def owner_lines(session: Session, owner_id: int) -> list[tuple[str, int, str, str | None]]:
    """The owner's PO lines (po, line, product, vehicle program), for the grant form."""
    return [tuple(row) for row in session.execute(  # type: ignore[misc]
        select(PurchaseOrder.po, OrderLine.line_no, Product.code, OrderLine.vehicle_program)
        .join(OrderLine, OrderLine.order_id == PurchaseOrder.id)
        .join(Product, Product.id == OrderLine.product_id)
        .where(PurchaseOrder.customer_id == owner_id)
        .order_by(PurchaseOrder.po, OrderLine.line_no).limit(500))]


__all__ = ["GrantedLot", "create_grant", "granted_lot", "granted_lot_query", "granted_lots",
           "granted_rows", "granted_shipment", "grants_query", "lot_holds", "lot_shipments",
           "owner_lines", "partner_of", "revoke_grant"]
