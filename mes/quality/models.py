"""Holds on lots."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mes.db import Base, BigID, utcnow

if TYPE_CHECKING:
    from mes.catalog.models import ReasonCode
    from mes.floor.models import Lot

HOLD_SOURCES = ("manual", "mass", "future", "yield", "sba", "containment")
DISPOSITIONS = ("release", "rework", "scrap", "use_as_is")


class Hold(Base):
    """A hold on one lot. The lot is free only when every hold on it is released; the lot
    row keeps the count of open holds so that every move checks it without a join."""

    __tablename__ = "hold"
    __table_args__ = (Index("ix_hold_lot_status", "lot_id", "status"),
                      Index("ix_hold_status_placed", "status", "placed_at"))

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lot.id"))
    reason_id: Mapped[int] = mapped_column(ForeignKey("reason_code.id"))
    comment: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(12), default="manual")
    status: Mapped[str] = mapped_column(String(10), default="open")
    step_code: Mapped[str | None] = mapped_column(String(40))
    placed_by: Mapped[str] = mapped_column(String(80))
    placed_at: Mapped[datetime] = mapped_column(default=utcnow)
    released_by: Mapped[str | None] = mapped_column(String(80))
    released_at: Mapped[datetime | None]
    disposition: Mapped[str | None] = mapped_column(String(12))
    release_comment: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)

    lot: Mapped[Lot] = relationship()
    reason: Mapped[ReasonCode] = relationship()
