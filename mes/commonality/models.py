"""Units a customer returned under a complaint, their failure analysis steps and the files
(images, PDF reports) attached to each step."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mes.db import Base, one_of, utcnow
from mes.vocabulary import AnalysisResult


class ComplaintReturn(Base):
    """Units of a complaint received back from the customer."""

    __tablename__ = "complaint_return"

    id: Mapped[int] = mapped_column(primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaint.id"), index=True)
    units: Mapped[int]
    received_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(80))

    analyses: Mapped[list[FailureAnalysis]] = relationship(
        back_populates="ret", order_by="FailureAnalysis.id", cascade="all, delete-orphan")


class FailureAnalysis(Base):
    """One failure analysis step on returned units (FA_STEPS: electrical verification,
    X-ray, acoustic microscopy, decap, cross-section) with its result and notes."""

    __tablename__ = "failure_analysis"
    __table_args__ = (one_of("result", AnalysisResult),)

    id: Mapped[int] = mapped_column(primary_key=True)
    return_id: Mapped[int] = mapped_column(ForeignKey("complaint_return.id"), index=True)
    step: Mapped[str] = mapped_column(String(40))
    result: Mapped[str] = mapped_column(String(10))
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(80))

    ret: Mapped[ComplaintReturn] = relationship(back_populates="analyses")
    attachments: Mapped[list[AnalysisAttachment]] = relationship(
        back_populates="analysis", order_by="AnalysisAttachment.id",
        cascade="all, delete-orphan")


class AnalysisAttachment(Base):
    """A file attached to a failure analysis step, kept in the database (at most
    FA_ATTACHMENT_LIMIT_MIB): an image or a PDF."""

    __tablename__ = "analysis_attachment"

    id: Mapped[int] = mapped_column(primary_key=True)
    analysis_id: Mapped[int] = mapped_column(ForeignKey("failure_analysis.id"), index=True)
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(60))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    analysis: Mapped[FailureAnalysis] = relationship(back_populates="attachments")
