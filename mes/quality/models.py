"""Holds on lots, and future holds: rules that hold a lot when it reaches a step."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, ForeignKey, Index, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mes.db import Base, BigID, one_of, utcnow
from mes.vocabulary import (
    Disposition,
    FutureHoldStatus,
    HoldSource,
    HoldStatus,
    MatchKind,
    MoistureState,
    SystemText,
)

if TYPE_CHECKING:
    from mes.catalog.models import ReasonCode
    from mes.floor.models import Lot


class Hold(Base):
    """A hold on one lot. The lot is free only when every hold on it is released; the lot
    row keeps the count of open holds so that every move checks it without a join."""

    __tablename__ = "hold"
    __table_args__ = (Index("ix_hold_lot_status", "lot_id", "status"),
                      Index("ix_hold_status_placed", "status", "placed_at"),
                      Index("ix_hold_future_lot", "future_hold_id", "lot_id"),
                      one_of("source", HoldSource), one_of("status", HoldStatus),
                      one_of("disposition", Disposition), one_of("text_code", SystemText))

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lot.id"))
    reason_id: Mapped[int] = mapped_column(ForeignKey("reason_code.id"))
    comment: Mapped[str] = mapped_column(Text)
    # A comment the system wrote (a yield or SBA hold's reason text): its code and
    # parameters, which pages render in the reader's language (mes.texts); `comment` keeps
    # the English for the API. None for people's comments and rows written before codes.
    text_code: Mapped[str | None] = mapped_column(String(40))
    text_params: Mapped[dict[str, Any] | None]
    source: Mapped[str] = mapped_column(String(12), default=HoldSource.MANUAL)
    status: Mapped[str] = mapped_column(String(10), default=HoldStatus.OPEN)
    step_code: Mapped[str | None] = mapped_column(String(40))
    placed_by: Mapped[str] = mapped_column(String(80))
    placed_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The future-hold rule that placed it (source "future").
    future_hold_id: Mapped[int | None] = mapped_column(ForeignKey("future_hold.id"))
    released_by: Mapped[str | None] = mapped_column(String(80))
    released_at: Mapped[datetime | None]
    disposition: Mapped[str | None] = mapped_column(String(12))
    release_comment: Mapped[str | None] = mapped_column(Text)
    # What the disposition did: the step reworked to, the quantity scrapped and why, the
    # customer's concession reference for use-as-is.
    rework_step: Mapped[str | None] = mapped_column(String(40))
    scrap_qty: Mapped[int | None]
    scrap_reason_id: Mapped[int | None] = mapped_column(ForeignKey("reason_code.id"))
    concession: Mapped[str | None] = mapped_column(String(80))
    # Why an admin released a hold they had placed themselves (the two-person rule).
    override_reason: Mapped[str | None] = mapped_column(Text)
    # When and by whom QA notified the customer (the portal shows the hold from then on,
    # whatever PORTAL_HOLD_POLICY; docs/decisions.md, "Customer portal").
    customer_notified_at: Mapped[datetime | None]
    customer_notified_by: Mapped[str | None] = mapped_column(String(80))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)

    lot: Mapped[Lot] = relationship()
    reason: Mapped[ReasonCode] = relationship(foreign_keys=[reason_id])
    scrap_reason: Mapped[ReasonCode | None] = relationship(foreign_keys=[scrap_reason_id])


class FutureHold(Base):
    """A rule: hold every lot that arrives at step `at_step` and matches `match` (itself or
    through any ancestor lot). Retired rules are kept for the record."""

    __tablename__ = "future_hold"
    # A track-out loads only the active rules of the step the lot arrives at.
    __table_args__ = (Index("ix_future_hold_status_step", "status", "at_step"),
                      one_of("match_kind", MatchKind), one_of("status", FutureHoldStatus))

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    reason_id: Mapped[int] = mapped_column(ForeignKey("reason_code.id"))
    comment: Mapped[str] = mapped_column(Text)
    at_step: Mapped[str] = mapped_column(String(40))
    # A MatchKind, and the criterion as given (times as ISO 8601 strings).
    match_kind: Mapped[str] = mapped_column(String(20))
    match: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(10), default=FutureHoldStatus.ACTIVE)
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    retired_by: Mapped[str | None] = mapped_column(String(80))
    retired_at: Mapped[datetime | None]

    reason: Mapped[ReasonCode] = relationship()


@dataclass(frozen=True, slots=True)
class PresentedRule:
    """A future-hold rule as the API and the rules page show it: with how many holds it
    has placed (quality.services.present_rules reads that for many rules at once). The rule
    schema takes only this."""

    rule: FutureHold
    holds_placed: int
    # Only in the answer to the rule's creation: how many matching lots are before, at and
    # past its step then, and the lot numbers at the step.
    matching_now: dict[str, Any] | None = None


class MoistureClock(Base):
    """A lot's moisture floor-life clock (J-STD-033), one row per lot once first opened.

    `exposure_seconds` is the exposure accumulated up to the last pause; while the lot is
    open, `open_since` says since when the clock runs. Sealing in a dry bag and dry storage
    pause it; only a bake resets the exposure.
    """

    __tablename__ = "moisture_clock"
    __table_args__ = (one_of("state", MoistureState),)

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lot.id"), unique=True)
    state: Mapped[str] = mapped_column(String(12), default=MoistureState.SEALED)
    exposure_seconds: Mapped[int] = mapped_column(BigInteger, default=0)
    open_since: Mapped[datetime | None]
    # MSL 6: the floor life printed on the label, given when the pack is opened.
    label_hours: Mapped[float | None]
    baked_at: Mapped[datetime | None]
    # When the packaging house's exposure clock started (the track-out of the route's
    # moisture start step, e.g. post-mold cure); NULL for a clock first opened by hand.
    started_at: Mapped[datetime | None]
    # When the lot was last sealed in a dry bag: its shelf life runs 12 months from here.
    sealed_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class MoistureBake(Base):
    """A bake of a lot (J-STD-033 Table 4-1), recorded only when it meets the bake table
    for the product's MSL and body thickness: it reset the lot's exposure clock.
    `required_hours` is what the table asked at the bake's temperature; `step_code` names
    the bake step whose track-out recorded it (NULL when entered directly)."""

    __tablename__ = "moisture_bake"
    __table_args__ = (Index("ix_moisture_bake_lot_id", "lot_id"),)

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lot.id"))
    temperature_c: Mapped[float] = mapped_column(Numeric(5, 1, asdecimal=False))
    hours: Mapped[float] = mapped_column(Numeric(7, 2, asdecimal=False))
    rh_pct: Mapped[float | None] = mapped_column(Numeric(4, 1, asdecimal=False))
    required_hours: Mapped[float] = mapped_column(Numeric(7, 2, asdecimal=False))
    # Which column of the table applied: False "floor life exceeded by more than 72 h or
    # exposure unknown", True "exceeded by at most 72 h".
    short_exposure: Mapped[bool]
    step_code: Mapped[str | None] = mapped_column(String(40))
    baked_at: Mapped[datetime] = mapped_column(default=utcnow)
    baked_by: Mapped[str] = mapped_column(String(80))
