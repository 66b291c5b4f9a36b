"""Lots, wafers, step runs, rejects, material consumption, genealogy edges and history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mes.db import Base, BigID, one_of, utcnow
from mes.vocabulary import EdgeKind, EventKind, LotState

if TYPE_CHECKING:
    from mes.catalog.models import Customer, Equipment, Product, Route

# The longest lot number the lot table keeps.
LOT_NO_LENGTH = 60


class Lot(Base):
    """A group of units moving together along one version of a route.

    `version` is SQLAlchemy's version counter: two simultaneous moves of one lot cannot both
    commit; the loser's UPDATE matches no row and becomes a 409.
    """

    __tablename__ = "lot"
    __table_args__ = (
        # The WIP order (priority, due date, age), for all lots and within a step.
        Index("ix_lot_wip", "priority", "due_date", "id"),
        Index("ix_lot_step_wip", "step_code", "priority", "due_date", "id"),
        # A customer's lots (the portal) with their ids, from the index alone.
        Index("ix_lot_customer_state", "customer_id", "state", postgresql_include=["id"]),
        # The WIP board's per-step counts read this index alone on PostgreSQL.
        Index("ix_lot_step_summary", "state", "step_code", "route_id",
              postgresql_include=["quantity", "open_holds"]),
        # The lots on hold (a few in a million), most urgent first: the board filtered on
        # holds lists and counts them from this index alone.
        Index("ix_lot_held", "priority", "due_date", "id",
              postgresql_include=["state", "step_code", "route_id", "quantity", "open_holds"],
              postgresql_where=text("open_holds > 0"), sqlite_where=text("open_holds > 0")),
        one_of("state", LotState),
    )

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    lot_no: Mapped[str] = mapped_column(String(LOT_NO_LENGTH), unique=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"))
    route_id: Mapped[int] = mapped_column(ForeignKey("route.id"))
    step_seq: Mapped[int]
    step_code: Mapped[str] = mapped_column(String(40))
    state: Mapped[str] = mapped_column(String(12), default=LotState.QUEUED)
    quantity: Mapped[int]
    wafer_count: Mapped[int] = mapped_column(default=0)
    fab_lot: Mapped[str] = mapped_column(String(60), index=True)
    priority: Mapped[int] = mapped_column(default=3)
    due_date: Mapped[date | None]
    open_holds: Mapped[int] = mapped_column(default=0)
    equipment_id: Mapped[int | None] = mapped_column(ForeignKey("equipment.id"), index=True)
    # The product's BOM revision current when the lot was received (None: the product had
    # none, and the route steps' material types alone apply).
    bom_id: Mapped[int | None] = mapped_column(ForeignKey("bom.id"))
    # The open step run while the lot is running.
    run_id: Mapped[int | None] = mapped_column(BigID)
    arrived_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(default=1)
    # The head of the lot's audit chain, kept on the row the move updates anyway: appending
    # to the chain needs no extra query, and the version counter orders the chain.
    audit_seq: Mapped[int] = mapped_column(default=0)
    audit_hash: Mapped[str] = mapped_column(String(64), default="0" * 64)
    # Whether the lot has genealogy edges, so most lots skip that query.
    in_genealogy: Mapped[bool] = mapped_column(default=False)
    # Fixed by the track-out of the marking step: the date code (YYWW, ISO week of the
    # marking in plant time), the lot trace code and the mark text on the package top.
    # Split children inherit them.
    date_code: Mapped[str | None] = mapped_column(String(4))
    trace_code: Mapped[str | None] = mapped_column(String(12), index=True)
    mark: Mapped[str | None] = mapped_column(Text)
    # Units in carriers (reels, trays, tubes) and units shipped (a lot shipped without
    # being packed ships its whole quantity).
    packed_qty: Mapped[int] = mapped_column(server_default="0")
    shipped_qty: Mapped[int] = mapped_column(server_default="0")
    # When the planner means to release a banked lot to the floor (None: not planned);
    # kept after the release as the start that was planned.
    planned_start: Mapped[datetime | None]

    __mapper_args__ = {"version_id_col": version}

    product: Mapped[Product] = relationship()
    customer: Mapped[Customer] = relationship()
    route: Mapped[Route] = relationship()
    equipment: Mapped[Equipment | None] = relationship()

    @property
    def on_hold(self) -> bool:
        return self.open_holds > 0


class Wafer(Base):
    """A wafer of a fab lot as received; IDs are unique within the fab lot."""

    __tablename__ = "wafer"
    __table_args__ = (UniqueConstraint("fab_lot", "wafer_id"),)

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    fab_lot: Mapped[str] = mapped_column(String(60))
    wafer_id: Mapped[str] = mapped_column(String(40))
    die_qty: Mapped[int | None]
    received_lot_id: Mapped[int] = mapped_column(ForeignKey("lot.id"), index=True)


class LotWafer(Base):
    """Which wafers a lot's units came from; children of a split and merged lots inherit
    the links, so a wafer finds every lot holding its dies."""

    __tablename__ = "lot_wafer"

    lot_id: Mapped[int] = mapped_column(ForeignKey("lot.id"), primary_key=True)
    wafer_pk: Mapped[int] = mapped_column(ForeignKey("wafer.id"), primary_key=True,
                                          index=True)


class StepRun(Base):
    """One pass of a lot through a step: track-in to track-out."""

    __tablename__ = "step_run"
    __table_args__ = (
        Index("ix_step_run_lot", "lot_id", "started_at"),
        Index("ix_step_run_equipment_time", "equipment_id", "started_at"),
        Index("ix_step_run_step_time", "step_code", "finished_at"),
        # An operator's recent runs: the tools whose queue the station shows them.
        Index("ix_step_run_operator_time", "operator", "started_at"),
    )

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lot.id"))
    route_id: Mapped[int] = mapped_column(ForeignKey("route.id"))
    step_seq: Mapped[int]
    step_code: Mapped[str] = mapped_column(String(40))
    equipment_id: Mapped[int] = mapped_column(ForeignKey("equipment.id"))
    operator: Mapped[str | None] = mapped_column(String(80))
    arrived_at: Mapped[datetime]
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    qty_in: Mapped[int]
    good_qty: Mapped[int | None]
    reject_qty: Mapped[int | None]
    finished_by: Mapped[str | None] = mapped_column(String(80))

    lot: Mapped[Lot] = relationship()
    equipment: Mapped[Equipment] = relationship()
    rejects: Mapped[list[LotReject]] = relationship(order_by="LotReject.id")
    materials: Mapped[list[MaterialUse]] = relationship(order_by="MaterialUse.id")


class LotReject(Base):
    __tablename__ = "lot_reject"
    __table_args__ = (Index("ix_lot_reject_step_at", "step_code", "at"),)

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("step_run.id"), index=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lot.id"), index=True)
    step_code: Mapped[str] = mapped_column(String(40))
    reason_id: Mapped[int] = mapped_column(ForeignKey("reason_code.id"))
    qty: Mapped[int]
    at: Mapped[datetime] = mapped_column(default=utcnow)


class MaterialUse(Base):
    """A material lot consumed by a lot at a step."""

    __tablename__ = "material_use"

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("step_run.id"), index=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lot.id"), index=True)
    material_lot_id: Mapped[int] = mapped_column(ForeignKey("material_lot.id"), index=True)
    step_code: Mapped[str] = mapped_column(String(40))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class LotEdge(Base):
    """A genealogy edge: `qty` units went from parent to child by a split or a merge.
    Indexed both ways so recursive traces walk up or down with index lookups."""

    __tablename__ = "lot_edge"
    __table_args__ = (
        Index("ix_lot_edge_parent", "parent_id", "child_id"),
        Index("ix_lot_edge_child", "child_id", "parent_id"),
        one_of("kind", EdgeKind),
    )

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    parent_id: Mapped[int] = mapped_column(ForeignKey("lot.id"))
    child_id: Mapped[int] = mapped_column(ForeignKey("lot.id"))
    kind: Mapped[str] = mapped_column(String(10))
    qty: Mapped[int]
    step_code: Mapped[str] = mapped_column(String(40))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    by: Mapped[str | None] = mapped_column(String(80))


class LotEvent(Base):
    """The lot's history: every event with who, when, step, equipment and quantities."""

    __tablename__ = "lot_event"
    __table_args__ = (Index("ix_lot_event_lot", "lot_id", "id"),
                      Index("ix_lot_event_at", "at"),
                      one_of("kind", EventKind))

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lot.id"))
    kind: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    by: Mapped[str | None] = mapped_column(String(80))
    step_code: Mapped[str | None] = mapped_column(String(40))
    equipment: Mapped[str | None] = mapped_column(String(40))
    qty_in: Mapped[int | None]
    qty_out: Mapped[int | None]
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


class LotNumberCounter(Base):
    """The last sequence number handed out per day stem (L261122-). Simultaneous receipts
    wait on this row's lock instead of picking the same number."""

    __tablename__ = "lot_number_counter"

    stem: Mapped[str] = mapped_column(String(40), primary_key=True)
    last: Mapped[int]


class LotClosedTotal(Base):
    """How many lots, and how many units, are out of WIP (completed, shipped, scrapped,
    merged), per state, last step, product, customer and whether they carry an open hold:
    the WIP board's "out of WIP" line without counting a plant's whole history per request.

    Kept by database triggers on `lot` (migration 0011), so every writer keeps it, the ORM,
    the floor's plain statements and bulk loads alike; `mes check` recounts it. A group whose
    lots all left it keeps its row with zero lots."""

    __tablename__ = "lot_closed_total"
    __table_args__ = (one_of("state", LotState),)

    state: Mapped[str] = mapped_column(String(12), primary_key=True)
    step_code: Mapped[str] = mapped_column(String(40), primary_key=True)
    product_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    customer_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    held: Mapped[bool] = mapped_column(primary_key=True)
    lots: Mapped[int]
    quantity: Mapped[int] = mapped_column(BigInteger)


@dataclass(frozen=True, slots=True)
class LotToMove:
    """A lot with what a track-in or a track-out reads with it, in the same query
    (floor.services.lot_to_move), so that the move does not read it again."""

    lot: Lot
    # Track-in: the equipment of the code named for it (None: not read, or no such code).
    named_tool: Equipment | None = None
    # Track-out: the lot's open step run, and whether active future holds wait at the step
    # the lot will arrive at (None: not read).
    open_run: StepRun | None = None
    rules_at_next_step: bool | None = None
    # The durables mounted on the named tool (track-in) or the lot's tool (track-out): how
    # many, and the fewest uses any of them has left (None: not read).
    durables_mounted: int | None = None
    durable_left: int | None = None


@dataclass(frozen=True, slots=True)
class PresentedLot:
    """A lot as the API and the lot pages show it: its row, and what is read beside it
    (floor.services.present reads these for many lots at once). The lot schemas take only
    this, so no caller can show a lot without them."""

    lot: Lot
    steps_total: int
    # Open holds, oldest first.
    holds: list[int]
    parents: list[str]
    children: list[str]
    # The BOM revision the lot was received with, if its product had one.
    bom_revision: str | None = None

    @property
    def on_hold(self) -> bool:
        """Whether `holds` lists any (for a customer user, the holds they see)."""
        return bool(self.holds)


@dataclass(frozen=True, slots=True)
class CustomerEvent:
    """A lot history event as a customer user sees it (floor.services.customer_history):
    what happened, when, at which step, the quantities, and for a hold and what ends it the
    hold's reason code with its customer-facing text and the disposition. Never who did it,
    no comments, no hold match criteria, and so no other lot numbers."""

    kind: str
    at: datetime
    step: str | None
    qty_in: int | None
    qty_out: int | None
    reason: str | None = None
    reason_description: str | None = None
    disposition: str | None = None
