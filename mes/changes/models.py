"""Product changes (engineering change requests classified against AEC-Q100's change table)
and the product change notifications (PCNs) sent to automotive customers."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mes.catalog.models import Bom, Customer, Product
from mes.db import Base, one_of, utcnow
from mes.vocabulary import ChangeKind, PcnStatus


class Change(Base):
    """A change to one or more products. `required_stresses` is the requalification the
    change table names for its kind, fixed when the change is recorded."""

    __tablename__ = "product_change"
    __table_args__ = (one_of("kind", ChangeKind),)

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    description: Mapped[str] = mapped_column(Text, default="")
    # The BOM revision (of each affected product) the change introduces; NULL when the
    # change alters no bill of materials.
    bom_revision: Mapped[str | None] = mapped_column(String(20))
    required_stresses: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(80))

    products: Mapped[list[ChangeProduct]] = relationship(
        back_populates="change", order_by="ChangeProduct.product_id",
        cascade="all, delete-orphan")
    pcns: Mapped[list[Pcn]] = relationship(back_populates="change", order_by="Pcn.id")


class ChangeProduct(Base):
    """A product a change affects, the BOM revision it introduces for it and the BOM items
    (step and material) it alters. A BOM revision is introduced by one change at most."""

    __tablename__ = "product_change_product"

    change_id: Mapped[int] = mapped_column(ForeignKey("product_change.id"), primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"), primary_key=True,
                                            index=True)
    bom_id: Mapped[int | None] = mapped_column(ForeignKey("bom.id"), unique=True)
    # [{"step": "MOLD", "material": "compound"}, ...]
    items: Mapped[list[Any]] = mapped_column(default=list)

    change: Mapped[Change] = relationship(back_populates="products")
    product: Mapped[Product] = relationship()
    bom: Mapped[Bom | None] = relationship()


class Pcn(Base):
    """A product change notification to one customer: sent, effective no earlier than the
    notice period after, approved or rejected by the customer's users."""

    __tablename__ = "pcn"
    __table_args__ = (UniqueConstraint("change_id", "customer_id"), one_of("status", PcnStatus))

    id: Mapped[int] = mapped_column(primary_key=True)
    change_id: Mapped[int] = mapped_column(ForeignKey("product_change.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    notice_days: Mapped[int]
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_by: Mapped[str | None] = mapped_column(String(80))
    # The plant's date from which the change applies to the customer without an answer.
    effective_date: Mapped[date]
    status: Mapped[str] = mapped_column(String(10), default=PcnStatus.PENDING)
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[str | None] = mapped_column(String(80))
    comment: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[int] = mapped_column(default=1)

    change: Mapped[Change] = relationship(back_populates="pcns")
    customer: Mapped[Customer] = relationship()

    __mapper_args__ = {"version_id_col": version}
