"""Purchase orders (the planner enters them, commits dates and allocates lots to lines;
customers read their own) and the die bank (release of banked lots to the floor)."""

from __future__ import annotations

from typing import Any

from flask_login import current_user
from sqlalchemy import select

from mes import db
from mes.api import bp
from mes.api.registry import Page, api_route, paginate
from mes.auth.permissions import Permission
from mes.catalog.models import Customer, Product
from mes.floor import schemas as floor_schemas
from mes.floor import services as floor
from mes.floor.models import PresentedLot
from mes.orders import schemas as s
from mes.orders import services
from mes.orders.models import OrderLine, PurchaseOrder
from mes.orders.services import PresentedLine, PresentedOrder


@api_route(bp, "/orders", method="POST", permission=Permission.ORDER_WRITE, body=s.OrderIn,
           response=s.OrderOut, status=201, tag="orders")
def create_order(data: dict[str, Any]) -> PresentedOrder:
    """Enter a customer's purchase order with its lines; 409 `duplicate` when the customer
    has the PO number already (another customer may use the same number)."""
    return services.present(services.create_order(db.session(), current_user, data))


@api_route(bp, "/orders", permission=Permission.ORDER_READ, query=s.OrderQuery,
           response=s.OrderOut, many=True, tag="orders")
def list_orders(args: dict[str, Any]) -> Page:
    """Orders, newest first, each with its lines and their quantities (customers: their
    own). Filters: customer, product (orders with a line of it), vehicle_program."""
    session = db.session()
    stmt = services.order_query(current_user)
    if args.get("customer"):
        stmt = stmt.where(PurchaseOrder.customer_id == select(Customer.id).where(
            Customer.code == args["customer"]).scalar_subquery())
    line = select(OrderLine.id).where(OrderLine.order_id == PurchaseOrder.id)
    if args.get("product"):
        stmt = stmt.where(line.where(OrderLine.product_id == select(Product.id).where(
            Product.code == args["product"]).scalar_subquery()).exists())
    if args.get("vehicle_program"):
        stmt = stmt.where(line.where(
            OrderLine.vehicle_program == args["vehicle_program"]).exists())
    page = paginate(session, stmt, args)
    page.items = [services.present(order) for order in page.items]
    return page


@api_route(bp, "/orders/<po>", permission=Permission.ORDER_READ, query=s.OrderArgs,
           response=s.OrderOut, tag="orders")
def get_order(po: str, args: dict[str, Any]) -> PresentedOrder:
    """One order with its lines. Staff name the customer (`?customer=`) when several
    customers use the PO number (422 otherwise); a customer user reads their own only."""
    return services.present(services.get_order(db.session(), po, current_user,
                                               args.get("customer")))


@api_route(bp, "/orders/<po>/lines/<int:line>", method="PATCH",
           permission=Permission.ORDER_WRITE, query=s.OrderArgs, body=s.OrderLinePatch,
           response=s.OrderLineOut, tag="orders")
def update_line(po: str, line: int, args: dict[str, Any], data: dict[str, Any]
                ) -> PresentedLine:
    """Change a line's commit date (null clears it), quantity or need date."""
    session = db.session()
    order = services.get_order(session, po, current_user, args.get("customer"))
    row = services.update_line(session, current_user, order, services.get_line(order, line),
                               data)
    return services.present_line(row)


@api_route(bp, "/orders/<po>/lines/<int:line>/allocations", method="POST",
           permission=Permission.ORDER_WRITE, query=s.OrderArgs, body=s.OrderAllocationIn,
           response=s.OrderLineOut, status=200, tag="orders")
def allocate(po: str, line: int, args: dict[str, Any], data: dict[str, Any]) -> PresentedLine:
    """Allocate lots to the line, all or nothing: lots of the order's customer and the
    line's product, not shipped, scrapped or merged, allocated to no other line (409
    `already_allocated`: deallocate there first). To allocate part of a lot, split it
    first; the split child stays on its parent's line."""
    session = db.session()
    order = services.get_order(session, po, current_user, args.get("customer"))
    row = services.allocate(session, current_user, order, services.get_line(order, line),
                            data["lots"])
    return services.present_line(row)


@api_route(bp, "/orders/<po>/lines/<int:line>/allocations/<lot_no>", method="DELETE",
           permission=Permission.ORDER_WRITE, query=s.OrderArgs, response=s.OrderLineOut,
           status=200, tag="orders")
def deallocate(po: str, line: int, lot_no: str, args: dict[str, Any]) -> PresentedLine:
    """Take a lot off the line (404 when it is not allocated to it)."""
    session = db.session()
    order = services.get_order(session, po, current_user, args.get("customer"))
    row = services.deallocate(session, current_user, order, services.get_line(order, line),
                              lot_no)
    return services.present_line(row)


def _lot(lot: Any) -> PresentedLot:
    return floor.present(db.session(), [lot], current_user)[0]


@api_route(bp, "/lots/<lot_no>/release", method="POST", permission=Permission.LOT_RECEIVE,
           body=s.BankReleaseIn, response=floor_schemas.LotOut, status=200, tag="lots")
def release_lot(lot_no: str, data: dict[str, Any]) -> PresentedLot:
    """Release a banked lot from the die bank: queued at the first step of its route, with
    `planned_start` (optional) kept as the start that was planned; 409 `not_banked` for a
    lot not in the die bank."""
    session = db.session()
    lot = floor.get_lot(session, lot_no)
    return _lot(services.release_lot(session, current_user, lot, data.get("planned_start")))


@api_route(bp, "/lots/<lot_no>", method="PATCH", permission=Permission.LOT_RECEIVE,
           body=s.BankPlanIn, response=floor_schemas.LotOut, tag="lots")
def plan_lot(lot_no: str, data: dict[str, Any]) -> PresentedLot:
    """Set (null clears) a banked lot's planned start; 409 `not_banked` otherwise."""
    session = db.session()
    lot = floor.get_lot(session, lot_no)
    return _lot(services.plan_lot(session, current_user, lot, data["planned_start"]))
