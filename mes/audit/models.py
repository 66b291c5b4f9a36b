"""Append-only audit records: keyed (HMAC), hash-chained per subject, numbered without gaps
in a few series, and sealed by periodic checkpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, SmallInteger, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mes.db import Base, BigID, utcnow


class AuditEvent(Base):
    """One state change. `hash` is the HMAC (audit key) of the record, its place in its
    series (`series`, `number`) and the previous hash of its subject.

    Chaining per subject (not globally) lets changes to different lots commit in parallel;
    two writers of the same subject collide on (subject, seq) and one loses with a 409.
    Numbering in series (`AuditCounter`) lets a deleted record show as a gap without making
    every writer wait for one counter. Records written before the trail was keyed have no
    number until `mes audit rekey` keys them.
    """

    __tablename__ = "audit_event"
    __table_args__ = (
        UniqueConstraint("subject_type", "subject_key", "seq"),
        UniqueConstraint("series", "number"),
        Index("ix_audit_event_at", "at"),
    )

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str | None] = mapped_column(String(80))
    code: Mapped[str] = mapped_column(String(60))
    subject_type: Mapped[str] = mapped_column(String(40))
    subject_key: Mapped[str] = mapped_column(String(120))
    seq: Mapped[int]
    series: Mapped[int | None] = mapped_column(SmallInteger)
    number: Mapped[int | None] = mapped_column(BigInteger)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditCounter(Base):
    """The last number given out in one series of audit records. The row is updated in the
    writer's own transaction, so a rolled-back write gives its number back (no gap), and the
    counter is the series' high-water mark: a record deleted after its number was counted
    shows as missing, even the newest. A writer holds one series until it commits; on
    PostgreSQL it takes a series no other open transaction holds (SKIP LOCKED), so writers
    never wait for each other here."""

    __tablename__ = "audit_counter"

    series: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    value: Mapped[int] = mapped_column(BigInteger)


class AuditCheckpoint(Base):
    """A keyed seal over every audit record up to `marks` (series -> last number): the
    checkpoints are numbered without gaps, each digest chains on the one before, and each
    can be exported as a line to a witness file kept outside the database."""

    __tablename__ = "audit_checkpoint"

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    number: Mapped[int] = mapped_column(BigInteger, unique=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    marks: Mapped[dict[str, Any]] = mapped_column(default=dict)
    event_count: Mapped[int] = mapped_column(BigInteger)
    digest: Mapped[str] = mapped_column(String(64))
    mac: Mapped[str] = mapped_column(String(64))
