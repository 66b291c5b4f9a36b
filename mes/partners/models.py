"""Grants: a chip owner (a customer of kind `customer`) lets a partner organisation (a
customer of kind `partner`: its Tier-1, the vehicle maker) see the lots allocated to one of
its purchase order lines, or to every line of one of its vehicle programs.

A grant has exactly one scope (`order_line_id` or `vehicle_program`, a CHECK). Revoking
keeps the row (`revoked_at`, `revoked_by`): who could see what, and when, stays on record.
Two active grants of one scope to one partner cannot exist (partial unique indexes), so
two simultaneous identical grants make one grant and one 409.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mes.catalog.models import Customer
from mes.db import Base, utcnow
from mes.orders.models import OrderLine

_ACTIVE = "revoked_at IS NULL"


class Grant(Base):
    __tablename__ = "partner_grant"
    __table_args__ = (
        CheckConstraint("(order_line_id IS NULL) <> (vehicle_program IS NULL)",
                        name="one_scope"),
        Index("ux_partner_grant_line", "partner_id", "order_line_id", unique=True,
              postgresql_where=text(f"{_ACTIVE} AND order_line_id IS NOT NULL"),
              sqlite_where=text(f"{_ACTIVE} AND order_line_id IS NOT NULL")),
        Index("ux_partner_grant_program", "partner_id", "owner_id", "vehicle_program",
              unique=True,
              postgresql_where=text(f"{_ACTIVE} AND vehicle_program IS NOT NULL"),
              sqlite_where=text(f"{_ACTIVE} AND vehicle_program IS NOT NULL")),
        # The owner's list of grants.
        Index("ix_partner_grant_owner", "owner_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # The chip owner whose lots are shown, and the partner organisation that sees them.
    owner_id: Mapped[int] = mapped_column(ForeignKey("customer.id"))
    partner_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    order_line_id: Mapped[int | None] = mapped_column(ForeignKey("order_line.id"), index=True)
    vehicle_program: Mapped[str | None] = mapped_column(String(60))
    granted_at: Mapped[datetime] = mapped_column(default=utcnow)
    granted_by: Mapped[str] = mapped_column(String(80))
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(80))

    owner: Mapped[Customer] = relationship(foreign_keys=[owner_id])
    partner: Mapped[Customer] = relationship(foreign_keys=[partner_id])
    line: Mapped[OrderLine | None] = relationship()

    @property
    def active(self) -> bool:
        return self.revoked_at is None
