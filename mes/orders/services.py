"""Purchase orders and the die bank.

A customer orders by purchase order lines (product, quantity, need date, vehicle program,
ship-to); the planner answers each line with a commit date and allocates lots to it. The
rules:
- A PO number is unique per customer (409 `duplicate`); two customers may use the same one.
  A staff user names the customer (`customer`) when a PO number is ambiguous (422).
- A lot allocated to a line is of the line's product and of the order's customer (409
  `wrong_product`, `wrong_customer`), not closed for good (shipped, scrapped, merged: 409
  `lot_closed`) and allocated to no other line (409 `already_allocated`: deallocate it
  first). An allocation request is all or nothing; a lot already on the line is left as it
  is. A part of a lot is allocated by splitting the lot first: a split child stays
  allocated to its parent's line (mes.floor.services.split_lot).
- A line's quantities come from its allocated lots (`LineQuantities`).
- A banked lot (received into the die bank: `POST /lots` with `bank`) is not work in
  progress; its release queues it at the first step of its route (409 `not_banked` for any
  other lot). Its planned start may be set while it is banked.

Every function works in the caller's transaction, audits what it writes, and raises before
changing anything when a rule refuses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, object_session, selectinload

from mes import audit
from mes.auth.actor import Actor, actor_name
from mes.auth.scope import scoped
from mes.catalog.models import Customer, Product
from mes.db import utcnow
from mes.errors import Conflict, ErrorCode, InvalidInput, NotFound
from mes.floor import services as floor
from mes.floor.models import Lot
from mes.forecast import outlook
from mes.orders.models import OrderAllocation, OrderLine, PurchaseOrder
from mes.vocabulary import ACTIVE_LOT_STATES, EventKind, LotState

# Lots that can no longer be allocated: their units left the plant or another lot.
UNALLOCATABLE = (LotState.SHIPPED, LotState.SCRAPPED, LotState.MERGED)
MAX_LINES = 200
MAX_LOTS = 500


def _invalid(field_name: str, message: Any) -> InvalidInput:
    return InvalidInput(message, fields={field_name: [message]})


# --- reading ---------------------------------------------------------------------------

def order_query(actor: Actor | None = None) -> Select[Any]:
    """Orders, newest first, with their customer and lines (customers: their own)."""
    stmt = (select(PurchaseOrder).options(
        joinedload(PurchaseOrder.customer),
        selectinload(PurchaseOrder.lines).joinedload(OrderLine.product),
        selectinload(PurchaseOrder.lines).selectinload(OrderLine.allocations)
        .joinedload(OrderAllocation.lot))
        .order_by(PurchaseOrder.id.desc()))
    return scoped(stmt, PurchaseOrder.customer_id, actor)


def get_order(session: Session, po: str, actor: Actor | None = None,
              customer: str | None = None) -> PurchaseOrder:
    """The order `po` of `customer` (a code). A customer user gets their own only (another
    customer's is not found). A staff user who names no customer gets the order when one
    customer has that PO number; when several have, 422 asks for the customer."""
    stmt = order_query(actor).where(PurchaseOrder.po == po)
    if customer:
        stmt = stmt.where(PurchaseOrder.customer_id == select(Customer.id).where(
            Customer.code == customer).scalar_subquery())
    found = session.scalars(stmt.limit(2)).unique().all()
    if not found:
        raise NotFound(_l("No order %(po)s.", po=po))
    if len(found) > 1:
        raise _invalid("customer", _l("Several customers have an order %(po)s: name the "
                                      "customer.", po=po))
    return found[0]


def get_line(order: PurchaseOrder, line_no: int) -> OrderLine:
    for line in order.lines:
        if line.line_no == line_no:
            return line
    raise NotFound(_l("Order %(po)s has no line %(line)s.", po=order.po, line=line_no))


@dataclass
class LineQuantities:
    """A line's units, from its allocated lots:

    - `shipped`: units of the allocated lots that left the plant (`lot.shipped_qty`: the
      lot's shipments, carrier by carrier for a packed lot);
    - `wip`: units of allocated lots on the floor (queued or running);
    - `finished`: units of allocated completed lots not shipped yet;
    - `banked`: units of allocated lots in the die bank;
    - `allocated`: shipped + wip + finished + banked (a scrapped or merged lot's units no
      longer count);
    - `unallocated`: what the allocated lots leave of the ordered quantity (0 when they
      cover it or more).
    """

    ordered: int
    shipped: int = 0
    wip: int = 0
    finished: int = 0
    banked: int = 0
    lots: list[Lot] = field(default_factory=list)

    @property
    def allocated(self) -> int:
        return self.shipped + self.wip + self.finished + self.banked

    @property
    def unallocated(self) -> int:
        return max(0, self.ordered - self.allocated)

    def add(self, lot: Lot) -> None:
        self.lots.append(lot)
        self.shipped += lot.shipped_qty
        if lot.state in ACTIVE_LOT_STATES:
            self.wip += lot.quantity
        elif lot.state == LotState.BANKED:
            self.banked += lot.quantity
        elif lot.state == LotState.COMPLETED:
            self.finished += max(0, lot.quantity - lot.shipped_qty)


def line_quantities(line: OrderLine) -> LineQuantities:
    quantities = LineQuantities(ordered=line.quantity)
    for allocation in sorted(line.allocations, key=lambda a: a.lot.lot_no):
        quantities.add(allocation.lot)
    return quantities


@dataclass
class PresentedLine:
    """A line as the API and the pages show it."""

    line: OrderLine
    quantities: LineQuantities
    # The line against its need date (projected at P50 / P90, shortfalls, status).
    outlook: outlook.Outlook | None = None

    @property
    def lot_numbers(self) -> list[str]:
        return [lot.lot_no for lot in self.quantities.lots]


@dataclass
class PresentedOrder:
    order: PurchaseOrder
    lines: list[PresentedLine]


def present(order: PurchaseOrder) -> PresentedOrder:
    session = object_session(order)
    assert session is not None
    outlooks = outlook.line_outlooks(session, [line.id for line in order.lines])
    return PresentedOrder(order, [PresentedLine(line, line_quantities(line),
                                                outlooks.get(line.id))
                                  for line in order.lines])


def present_line(line: OrderLine) -> PresentedLine:
    session = object_session(line)
    assert session is not None
    return PresentedLine(line, line_quantities(line),
                         outlook.line_outlooks(session, [line.id]).get(line.id))


def lot_allocation(session: Session, lot: Lot) -> OrderLine | None:
    """The order line `lot` is allocated to, if any."""
    return session.scalar(select(OrderLine).join(OrderAllocation).where(
        OrderAllocation.lot_id == lot.id).options(joinedload(OrderLine.order)))


# --- orders ----------------------------------------------------------------------------

def _line_key(order: PurchaseOrder, line: OrderLine) -> str:
    return f"{order.customer.code}/{order.po}/{line.line_no}"


def _product(session: Session, code: str, customer: Customer, where: str) -> Product:
    product = session.scalar(select(Product).where(Product.code == code))
    if product is None:
        raise _invalid(where, _l("Unknown product %(product)s.", product=code))
    if product.customer_id is not None and product.customer_id != customer.id:
        raise _invalid(where, _l("Product %(code)s is made for another customer.", code=code))
    return product


def create_order(session: Session, actor: Actor, data: dict[str, Any]) -> PurchaseOrder:
    """Enter a customer's purchase order with its lines. Raises InvalidInput (unknown
    customer or product, a product of another customer, line numbers repeated), Conflict
    `duplicate` (the customer has this PO number already)."""
    customer = session.scalar(select(Customer).where(Customer.code == data["customer"]))
    if customer is None:
        raise _invalid("customer", _l("Unknown customer %(customer)s.",
                                      customer=data["customer"]))
    numbers = [line["line"] for line in data["lines"]]
    if len(set(numbers)) != len(numbers):
        raise _invalid("lines", _l("Line numbers repeat: each line has its own number."))
    products = [_product(session, line["product"], customer, "lines")
                for line in data["lines"]]
    po = data["po"].strip()
    if session.scalar(select(PurchaseOrder.id).where(
            PurchaseOrder.customer_id == customer.id, PurchaseOrder.po == po)) is not None:
        raise Conflict(_l("%(customer)s has an order %(po)s already.",
                          customer=customer.code, po=po), code=ErrorCode.DUPLICATE)
    order = PurchaseOrder(customer=customer, po=po, created_at=utcnow(),
                          created_by=actor_name(actor))
    for line, product in zip(data["lines"], products, strict=True):
        order.lines.append(OrderLine(
            line_no=line["line"], product=product, quantity=line["quantity"],
            need_date=line["need_date"], commit_date=line.get("commit_date"),
            vehicle_program=line.get("vehicle_program") or None,
            ship_to=line.get("ship_to") or None))
    session.add(order)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        # The same PO entered at the same time by someone else.
        raise Conflict(_l("%(customer)s has an order %(po)s already.",
                          customer=customer.code, po=po), code=ErrorCode.DUPLICATE) from None
    audit.record(session, actor=actor, code="order:create", subject_type="order",
                 subject_key=f"{customer.code}/{po}", new_subject=True,
                 data={"lines": [{"line": line.line_no, "product": line.product.code,
                                  "quantity": line.quantity,
                                  "need_date": line.need_date.isoformat(),
                                  "vehicle_program": line.vehicle_program,
                                  "ship_to": line.ship_to} for line in order.lines]})
    return order


def update_line(session: Session, actor: Actor, order: PurchaseOrder, line: OrderLine,
                data: dict[str, Any]) -> OrderLine:
    """Change a line's commit date (None clears it), quantity or need date. The quantity
    may not fall below what the line has shipped already (422)."""
    changes: dict[str, Any] = {}
    if "quantity" in data and data["quantity"] != line.quantity:
        shipped = line_quantities(line).shipped
        if data["quantity"] < shipped:
            raise _invalid("quantity", _l("The line has shipped %(shipped)s units already; "
                                          "order at least that many.", shipped=shipped))
        changes["quantity"] = (line.quantity, data["quantity"])
        line.quantity = data["quantity"]
    for name in ("need_date", "commit_date"):
        if name in data and data[name] != getattr(line, name):
            before = getattr(line, name)
            changes[name] = (before.isoformat() if before else None,
                             data[name].isoformat() if data[name] else None)
            setattr(line, name, data[name])
    if changes:
        audit.record(session, actor=actor, code="order:line_update", subject_type="order",
                     subject_key=f"{order.customer.code}/{order.po}",
                     data={"line": line.line_no,
                           **{k: {"from": v[0], "to": v[1]} for k, v in changes.items()}})
        session.flush()
        outlook.refresh_line_outlooks(session, [line.id])
    return line


def _refuse_lot(lot: Lot, order: PurchaseOrder, line: OrderLine,
                elsewhere: dict[int, OrderLine]) -> Conflict | None:
    if lot.customer_id != order.customer_id:
        return Conflict(_l("Lot %(lot)s is %(customer)s's, not %(order_customer)s's.",
                           lot=lot.lot_no, customer=lot.customer.code,
                           order_customer=order.customer.code), code=ErrorCode.WRONG_CUSTOMER)
    if lot.product_id != line.product_id:
        return Conflict(_l("Lot %(lot)s is of product %(product)s; line %(line)s orders "
                           "%(line_product)s.", lot=lot.lot_no, product=lot.product.code,
                           line=line.line_no, line_product=line.product.code),
                        code=ErrorCode.WRONG_PRODUCT)
    if lot.state in UNALLOCATABLE:
        return Conflict(_l("Lot %(lot)s is %(state)s; it cannot be allocated.",
                           lot=lot.lot_no, state=LotState.word(lot.state)),
                        code=ErrorCode.LOT_CLOSED)
    other = elsewhere.get(lot.id)
    if other is not None and other.id != line.id:
        return Conflict(_l("Lot %(lot)s is allocated to %(po)s line %(line)s; deallocate it "
                           "there first.", lot=lot.lot_no, po=other.order.po,
                           line=other.line_no), code=ErrorCode.ALREADY_ALLOCATED)
    return None


def allocate(session: Session, actor: Actor, order: PurchaseOrder, line: OrderLine,
             lot_numbers: Sequence[str]) -> OrderLine:
    """Allocate lots to the line, all or nothing (see the module's rules). Raises
    InvalidInput (unknown lots), Conflict (wrong_customer, wrong_product, lot_closed,
    already_allocated; a simultaneous allocation of the same lot loses with
    already_allocated)."""
    wanted = list(dict.fromkeys(lot_numbers))
    lots = session.scalars(select(Lot).where(Lot.lot_no.in_(wanted)).options(
        joinedload(Lot.product), joinedload(Lot.customer))).all()
    by_no = {lot.lot_no: lot for lot in lots}
    unknown = [n for n in wanted if n not in by_no]
    if unknown:
        raise _invalid("lots", _l("Unknown lots: %(items)s.", items=", ".join(unknown)))
    elsewhere = {a.lot_id: a.line for a in session.scalars(
        select(OrderAllocation).where(OrderAllocation.lot_id.in_([lot.id for lot in lots]))
        .options(joinedload(OrderAllocation.line).joinedload(OrderLine.order)))}
    for number in wanted:
        refusal = _refuse_lot(by_no[number], order, line, elsewhere)
        if refusal is not None:
            raise refusal
    new = [by_no[n] for n in wanted if by_no[n].id not in elsewhere]
    if not new:
        return line
    now = utcnow()
    rows = [OrderAllocation(lot_id=lot.id, line_id=line.id, allocated_at=now,
                            allocated_by=actor_name(actor)) for lot in new]
    try:
        with session.begin_nested():
            session.add_all(rows)
            session.flush()
    except IntegrityError:
        raise Conflict(_l("Another allocation of these lots was saved at the same time; "
                          "reload and try again."),
                       code=ErrorCode.ALREADY_ALLOCATED) from None
    audit.record(session, actor=actor, code="order:allocate", subject_type="order",
                 subject_key=f"{order.customer.code}/{order.po}",
                 data={"line": line.line_no, "lots": [lot.lot_no for lot in new]})
    session.expire(line, ["allocations"])
    outlook.refresh_line_outlooks(session, [line.id])
    return line


def deallocate(session: Session, actor: Actor, order: PurchaseOrder, line: OrderLine,
               lot_no: str) -> OrderLine:
    """Take a lot off the line (404 when it is not allocated to this line)."""
    allocation = session.scalar(select(OrderAllocation).join(Lot).where(
        OrderAllocation.line_id == line.id, Lot.lot_no == lot_no))
    if allocation is None:
        raise NotFound(_l("Lot %(lot)s is not allocated to line %(line)s.", lot=lot_no,
                          line=line.line_no))
    session.delete(allocation)
    session.flush()
    audit.record(session, actor=actor, code="order:deallocate", subject_type="order",
                 subject_key=f"{order.customer.code}/{order.po}",
                 data={"line": line.line_no, "lot": lot_no})
    session.expire(line, ["allocations"])
    outlook.refresh_line_outlooks(session, [line.id])
    return line


def allocatable_lots(session: Session, order: PurchaseOrder, line: OrderLine,
                     limit: int = 200) -> list[Lot]:
    """Lots the line could take: the order's customer's lots of the line's product, not
    closed for good and allocated to no line (most urgent first)."""
    return list(session.scalars(
        select(Lot).where(Lot.customer_id == order.customer_id,
                          Lot.product_id == line.product_id,
                          Lot.state.not_in(UNALLOCATABLE),
                          ~select(OrderAllocation.id).where(
                              OrderAllocation.lot_id == Lot.id).exists())
        .order_by(Lot.priority, Lot.due_date.asc().nulls_last(), Lot.id).limit(limit)))


# --- the die bank ----------------------------------------------------------------------

def _banked(lot: Lot) -> None:
    if lot.state != LotState.BANKED:
        raise Conflict(_l("Lot %(lot)s is not in the die bank (it is %(state)s); only a "
                          "banked lot is released or planned.", lot=lot.lot_no,
                          state=LotState.word(lot.state)),
                       code=ErrorCode.NOT_BANKED)


def plan_lot(session: Session, actor: Actor, lot: Lot,
             planned_start: datetime | None) -> Lot:
    """Set (None: clear) when a banked lot is to be released to the floor."""
    _banked(lot)
    before = lot.planned_start
    lot.planned_start = planned_start
    audit.record(session, actor=actor, code="lot:plan", subject_type="lot_plan",
                 subject_key=lot.lot_no,
                 data={"from": before.isoformat() if before else None,
                       "to": planned_start.isoformat() if planned_start else None})
    session.flush()
    return lot


def release_lot(session: Session, actor: Actor, lot: Lot,
                planned_start: datetime | None = None) -> Lot:
    """Release a banked lot to the floor: it is queued at the first step of its route
    (where it waited), arriving now; `planned_start`, when given, is kept as the start the
    plan had. A history event `bank_release` and its audit record. Refused with 409
    `not_banked` for a lot not in the die bank."""
    _banked(lot)
    now = utcnow()
    first = floor.route_steps(lot)[0]
    if planned_start is not None:
        lot.planned_start = planned_start
    lot.state = LotState.QUEUED
    lot.step_seq, lot.step_code = first.seq, first.code
    lot.arrived_at = now
    floor.record_event(session, lot, EventKind.BANK_RELEASE, actor, qty_in=lot.quantity,
                       qty_out=lot.quantity, at=now,
                       data={"planned_start": lot.planned_start.isoformat()
                             if lot.planned_start else None})
    session.flush()
    return lot


def banked_lots(session: Session, actor: Actor | None = None) -> list[Lot]:
    """The die bank: banked lots, the next planned start first (unplanned last)."""
    stmt = select(Lot).where(Lot.state == LotState.BANKED).options(
        joinedload(Lot.product), joinedload(Lot.customer)).order_by(
        Lot.planned_start.asc().nulls_last(), Lot.id)
    return list(session.scalars(scoped(stmt, Lot.customer_id, actor)))


def lines_by_lot(session: Session, lot_ids: Sequence[int]) -> dict[int, OrderLine]:
    """lot id -> the order line it is allocated to, for the lots given."""
    if not lot_ids:
        return {}
    return {a.lot_id: a.line for a in session.scalars(
        select(OrderAllocation).where(OrderAllocation.lot_id.in_(list(lot_ids))).options(
            joinedload(OrderAllocation.line).joinedload(OrderLine.order)
            .joinedload(PurchaseOrder.customer)))}


def get_order_by_id(session: Session, order_id: int, actor: Actor | None = None
                    ) -> PurchaseOrder:
    """The order of that id (the pages' address of an order; customers: their own)."""
    order = session.scalars(order_query(actor).where(PurchaseOrder.id == order_id)).first()
    if order is None:
        raise NotFound(_l("No order %(id)s.", id=order_id))
    return order
