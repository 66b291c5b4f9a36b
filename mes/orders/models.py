"""Customers' purchase orders: an order (a PO number, unique per customer) of numbered lines
(product, quantity, need date; the planner's commit date), and the lots allocated to a line.

A lot is allocated to one line at most (`order_allocation.lot_id` is unique): the line's
quantities (shipped, in WIP, in the die bank) are those of its allocated lots. A part of a
lot is allocated by splitting the lot first; a split child stays allocated to its parent's
line until it is allocated elsewhere or deallocated.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mes.catalog.models import Customer, Product
from mes.db import Base, BigID, utcnow
from mes.floor.models import Lot


class PurchaseOrder(Base):
    """A customer's purchase order. Its PO number is the customer's: two customers may use
    the same one."""

    __tablename__ = "purchase_order"
    __table_args__ = (UniqueConstraint("customer_id", "po"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"))
    po: Mapped[str] = mapped_column(String(60), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(80))

    customer: Mapped[Customer] = relationship()
    lines: Mapped[list[OrderLine]] = relationship(
        back_populates="order", order_by="OrderLine.line_no", cascade="all, delete-orphan")


class OrderLine(Base):
    """A line of a purchase order: a quantity of one product needed by a date, for a vehicle
    program and a ship-to; `commit_date` is the plant's answer (None: not committed yet).
    `version` makes two simultaneous edits of a line one winner and one 409 stale."""

    __tablename__ = "order_line"
    __table_args__ = (UniqueConstraint("order_id", "line_no"),
                      CheckConstraint("quantity > 0", name="quantity_positive"),
                      CheckConstraint("line_no > 0", name="line_no_positive"))

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("purchase_order.id"))
    line_no: Mapped[int]
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"), index=True)
    quantity: Mapped[int]
    need_date: Mapped[date]
    commit_date: Mapped[date | None]
    vehicle_program: Mapped[str | None] = mapped_column(String(60), index=True)
    ship_to: Mapped[str | None] = mapped_column(String(120))
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}

    order: Mapped[PurchaseOrder] = relationship(back_populates="lines")
    product: Mapped[Product] = relationship()
    allocations: Mapped[list[OrderAllocation]] = relationship(
        back_populates="line", order_by="OrderAllocation.lot_id")


class OrderAllocation(Base):
    """A lot allocated to an order line; a lot is allocated to one line at most."""

    __tablename__ = "order_allocation"

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lot.id"), unique=True)
    line_id: Mapped[int] = mapped_column(ForeignKey("order_line.id"), index=True)
    allocated_at: Mapped[datetime] = mapped_column(default=utcnow)
    allocated_by: Mapped[str | None] = mapped_column(String(80))

    lot: Mapped[Lot] = relationship()
    line: Mapped[OrderLine] = relationship(back_populates="allocations")
