"""Customer complaints, the units they name and the lots those resolve to, the 8D steps
worked on each, and the containments run for them."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mes.db import Base, BigID, one_of, utcnow
from mes.vocabulary import ComplaintState, EightDStep, ScanKind

if TYPE_CHECKING:
    from mes.auth.models import User
    from mes.catalog.models import Customer
    from mes.floor.models import Lot


class Complaint(Base):
    """A customer's complaint under the customer's own reference (unique per customer).
    `internal_notes` are the plant's: never shown to the customer."""

    __tablename__ = "complaint"
    __table_args__ = (UniqueConstraint("customer_id", "reference"),
                      Index("ix_complaint_state_received", "state", "received_at"),
                      one_of("state", ComplaintState))

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    reference: Mapped[str] = mapped_column(String(80))
    vehicle_program: Mapped[str | None] = mapped_column(String(60))
    received_at: Mapped[datetime]
    description: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(10), default=ComplaintState.OPEN)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(80))
    closed_at: Mapped[datetime | None]
    closed_by: Mapped[str | None] = mapped_column(String(80))
    internal_notes: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[int] = mapped_column(default=1)

    customer: Mapped[Customer] = relationship()
    units: Mapped[list[ComplaintUnit]] = relationship(
        back_populates="complaint", order_by="ComplaintUnit.id", cascade="all, delete-orphan")
    lots: Mapped[list[ComplaintLot]] = relationship(
        back_populates="complaint", order_by="ComplaintLot.lot_id",
        cascade="all, delete-orphan")
    steps: Mapped[list[EightDStepRow]] = relationship(
        back_populates="complaint", order_by="EightDStepRow.step",
        cascade="all, delete-orphan")
    containments: Mapped[list[ComplaintContainment]] = relationship(
        back_populates="complaint", order_by="ComplaintContainment.linked_at",
        cascade="all, delete-orphan")

    __mapper_args__ = {"version_id_col": version}


class ComplaintUnit(Base):
    """A failing unit as the customer named it: the scanned text as given (a label's
    ISO/IEC 15434 message, a pack unit id, a mark or a lot number), what it turned out to
    be, the failure mode and how many units failed that way."""

    __tablename__ = "complaint_unit"
    __table_args__ = (one_of("kind", ScanKind),)

    id: Mapped[int] = mapped_column(primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaint.id"), index=True)
    scan: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(12))
    failure_mode: Mapped[str] = mapped_column(String(200))
    count: Mapped[int]

    complaint: Mapped[Complaint] = relationship(back_populates="units")


class ComplaintLot(Base):
    """A lot a complaint's units resolved to, with the first unit that named it."""

    __tablename__ = "complaint_lot"
    __table_args__ = (Index("ix_complaint_lot_lot_id", "lot_id"),)

    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaint.id"), primary_key=True)
    lot_id: Mapped[int] = mapped_column(BigID, ForeignKey("lot.id"), primary_key=True)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("complaint_unit.id"))

    complaint: Mapped[Complaint] = relationship(back_populates="lots")
    lot: Mapped[Lot] = relationship()
    unit: Mapped[ComplaintUnit | None] = relationship()


class EightDStepRow(Base):
    """One step D0..D8 of a complaint's 8D: its owner, when it is due and when it was done.

    `text` is the customer-facing account of the step (the portal shows D3, D4, D5, D6 and
    D8's); `internal_note` stays in the plant. D4 states the root cause twice, why it
    occurred and why it escaped; D6 states the verification evidence."""

    __tablename__ = "eightd_step"
    __table_args__ = (Index("ix_eightd_step_open_due", "done_at", "due_at"),
                      one_of("step", EightDStep))

    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaint.id"), primary_key=True)
    step: Mapped[str] = mapped_column(String(2), primary_key=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    due_at: Mapped[datetime]
    done_at: Mapped[datetime | None]
    done_by: Mapped[str | None] = mapped_column(String(80))
    text: Mapped[str] = mapped_column(Text, default="")
    internal_note: Mapped[str] = mapped_column(Text, default="")
    root_cause_occurrence: Mapped[str | None] = mapped_column(Text)
    root_cause_escape: Mapped[str | None] = mapped_column(Text)
    verification: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(default=1)

    complaint: Mapped[Complaint] = relationship(back_populates="steps")
    owner: Mapped[User | None] = relationship()

    __mapper_args__ = {"version_id_col": version}


class ComplaintContainment(Base):
    """A containment (mes.trace.services.contain, kept in the audit trail under its id) run
    for a complaint."""

    __tablename__ = "complaint_containment"

    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaint.id"), primary_key=True)
    containment_id: Mapped[str] = mapped_column(String(40), primary_key=True, index=True)
    linked_at: Mapped[datetime] = mapped_column(default=utcnow)
    linked_by: Mapped[str] = mapped_column(String(80))

    complaint: Mapped[Complaint] = relationship(back_populates="containments")
