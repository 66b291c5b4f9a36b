"""Shipments and the lots they carried out of the plant."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mes.db import Base, BigID, utcnow

if TYPE_CHECKING:
    from mes.catalog.models import Customer
    from mes.floor.models import Lot


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


class ShipmentLot(Base):
    """A lot carried by a shipment, with its quantity when shipped. A lot ships once."""

    __tablename__ = "shipment_lot"

    shipment_id: Mapped[int] = mapped_column(ForeignKey("shipment.id"), primary_key=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lot.id"), primary_key=True, unique=True)
    quantity: Mapped[int]

    shipment: Mapped[Shipment] = relationship(back_populates="lots")
    lot: Mapped[Lot] = relationship()
