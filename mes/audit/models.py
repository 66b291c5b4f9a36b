"""Append-only audit records, hash-chained per subject, with periodic checkpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mes.db import Base, BigID, utcnow


class AuditEvent(Base):
    """One state change. `hash` covers the record and the previous hash of its subject.

    Chaining per subject (not globally) lets changes to different lots commit in parallel;
    two writers of the same subject collide on (subject, seq) and one loses with a 409.
    """

    __tablename__ = "audit_event"
    __table_args__ = (
        UniqueConstraint("subject_type", "subject_key", "seq"),
        Index("ix_audit_event_at", "at"),
    )

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str | None] = mapped_column(String(80))
    code: Mapped[str] = mapped_column(String(60))
    subject_type: Mapped[str] = mapped_column(String(40))
    subject_key: Mapped[str] = mapped_column(String(120))
    seq: Mapped[int]
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditCheckpoint(Base):
    """A digest over every audit record up to `max_event_id`, so that deleting the newest
    record of a chain (which no later record points to) is detectable too."""

    __tablename__ = "audit_checkpoint"

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    # Records written up to this time are covered (see services.checkpoint).
    covers_until: Mapped[datetime]
    max_event_id: Mapped[int] = mapped_column(BigID)
    event_count: Mapped[int] = mapped_column(BigID)
    digest: Mapped[str] = mapped_column(String(64))
