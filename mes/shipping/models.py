"""Shipments and the lots they carried out of the plant."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mes.db import Base, BigID, one_of, utcnow
from mes.vocabulary import PackKind

if TYPE_CHECKING:
    from mes.catalog.models import Customer, Product
    from mes.floor.models import Lot

# The id a pack unit is known by (labels, scans, the API): a letter for its kind, a dash and
# its number, at least six digits: R-000123 (reel), T- (tray), U- (tube), B- (dry bag),
# X- (box), C- (carton).
PACK_PREFIX = {PackKind.REEL: "R", PackKind.TRAY: "T", PackKind.TUBE: "U",
               PackKind.BAG: "B", PackKind.BOX: "X", PackKind.CARTON: "C"}


class Shipment(Base):
    """One shipment to a customer under a purchase order."""

    __tablename__ = "shipment"
    __table_args__ = (Index("ix_shipment_shipped_at", "shipped_at", "id"),
                      Index("ix_shipment_customer_shipped_at", "customer_id", "shipped_at",
                            "id"))

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"))
    po: Mapped[str] = mapped_column(String(60))
    vehicle_program: Mapped[str | None] = mapped_column(String(60))
    shipped_at: Mapped[datetime] = mapped_column(default=utcnow)
    shipped_by: Mapped[str | None] = mapped_column(String(80))

    customer: Mapped[Customer] = relationship()
    lots: Mapped[list[ShipmentLot]] = relationship(
        back_populates="shipment", order_by="ShipmentLot.lot_id", cascade="all")
    # The outermost pack units it carried (cartons, boxes, bags or carriers shipped as they
    # are); the units inside them carry the shipment's id too.
    units: Mapped[list[PackUnit]] = relationship(
        primaryjoin="and_(Shipment.id == PackUnit.shipment_id, PackUnit.parent_id.is_(None))",
        order_by="PackUnit.id", viewonly=True)


class ShipmentLot(Base):
    """A lot carried by a shipment, with the quantity it carried. A lot packed into reels
    may leave in several shipments (some reels each); a lot shipped unpacked ships once,
    whole."""

    __tablename__ = "shipment_lot"
    __table_args__ = (Index("ix_shipment_lot_lot_id", "lot_id"),)

    shipment_id: Mapped[int] = mapped_column(ForeignKey("shipment.id"), primary_key=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lot.id"), primary_key=True)
    quantity: Mapped[int]

    shipment: Mapped[Shipment] = relationship(back_populates="lots")
    lot: Mapped[Lot] = relationship()


class PackUnit(Base):
    """A reel, tray or tube holding units of one lot, or a dry bag, box or carton holding
    other pack units. Every pack unit holds one product; its quantity is its units (a
    package's: the sum of its children's). `code` (R-000123 ...) is the id labels carry.

    `version` is the version counter: putting one reel into two bags at once, or shipping a
    box while it goes into a carton, lets one writer win and the other get 409 stale."""

    __tablename__ = "pack_unit"
    __table_args__ = (
        one_of("kind", PackKind),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        Index("ix_pack_unit_lot_id", "lot_id"),
        Index("ix_pack_unit_parent_id", "parent_id"),
        Index("ix_pack_unit_shipment_id", "shipment_id"),
        Index("ix_pack_unit_customer_id", "customer_id"),
    )

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"))
    # The customer of its lots (a pack unit holds one customer's lots).
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"))
    # The lot of a carrier's units (NULL for bags, boxes and cartons).
    lot_id: Mapped[int | None] = mapped_column(ForeignKey("lot.id"))
    quantity: Mapped[int]
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("pack_unit.id"))
    # When a dry bag was sealed (NULL for the others).
    sealed_at: Mapped[datetime | None]
    shipment_id: Mapped[int | None] = mapped_column(ForeignKey("shipment.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(80))
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}

    product: Mapped[Product] = relationship()
    customer: Mapped[Customer] = relationship()
    lot: Mapped[Lot | None] = relationship()
    parent: Mapped[PackUnit | None] = relationship(remote_side=[id], back_populates="children")
    children: Mapped[list[PackUnit]] = relationship(back_populates="parent",
                                                    order_by="PackUnit.id")
    shipment: Mapped[Shipment | None] = relationship()

    @property
    def code(self) -> str:
        return pack_code(self.kind, self.id)


def pack_code(kind: str, number: int) -> str:
    """The id a label carries for pack unit `number` of `kind`: R-000123."""
    return f"{PACK_PREFIX[PackKind(kind)]}-{number:06d}"


def parse_pack_code(code: str) -> tuple[str, int] | None:
    """(kind, number) of a pack unit id such as R-000123 (case and surrounding blanks
    ignored), or None when `code` is not one."""
    text = code.strip().upper()
    prefix, dash, digits = text.partition("-")
    if not dash or not digits.isdigit() or len(digits) > 18:
        return None
    for kind, letter in PACK_PREFIX.items():
        if letter == prefix:
            return kind.value, int(digits)
    return None
