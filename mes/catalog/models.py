"""Master data: customers, routes with versioned steps, products, equipment, reason codes,
material lots and product qualifications."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy import false as sa_false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mes.db import Base, one_of, utcnow
from mes.vocabulary import (
    CustomerCategory,
    CustomerKind,
    DurableAction,
    DurableKind,
    EquipmentState,
    MslLevel,
    ProductKind,
    QualStandard,
    QualStatus,
    ReasonKind,
    StepKind,
)


class Customer(Base):
    __tablename__ = "customer"
    __table_args__ = (one_of("kind", CustomerKind),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    automotive: Mapped[bool] = mapped_column(default=False)
    # `partner`: a Tier-1 or vehicle maker that chip owners grant views of lots to
    # (mes.partners); it owns no lots, products or orders.
    kind: Mapped[str] = mapped_column(String(12), default=CustomerKind.CUSTOMER,
                                      server_default=CustomerKind.CUSTOMER.value)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Route(Base):
    """One version of a route. Posting an existing code makes the next version; lots keep
    the version they started on."""

    __tablename__ = "route"
    __table_args__ = (UniqueConstraint("code", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), index=True)
    version: Mapped[int]
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    steps: Mapped[list[RouteStep]] = relationship(
        back_populates="route", order_by="RouteStep.seq", cascade="all, delete-orphan")


class RouteStep(Base):
    __tablename__ = "route_step"
    __table_args__ = (UniqueConstraint("route_id", "seq"), UniqueConstraint("route_id", "code"),
                      one_of("kind", StepKind))

    id: Mapped[int] = mapped_column(primary_key=True)
    route_id: Mapped[int] = mapped_column(ForeignKey("route.id"))
    seq: Mapped[int]
    code: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    # The name in Simplified Chinese, shown to zh_CN users when present.
    name_zh: Mapped[str | None] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    equipment_kind: Mapped[str | None] = mapped_column(String(40))
    min_yield: Mapped[float | None] = mapped_column(Numeric(5, 2, asdecimal=False))
    # Material types a track-in at this step must consume (e.g. ["wire"]).
    materials: Mapped[list[Any]] = mapped_column(default=list)
    # Units per hour a tool makes at this step when it runs at its ideal rate (OEE
    # performance); NULL when not set.
    ideal_uph: Mapped[float | None] = mapped_column(Numeric(10, 2, asdecimal=False))
    # Uses of each durable mounted on the tool per unit processed here (wires per device
    # for a capillary, cuts per unit for a blade): each unit tracked out adds this many.
    touchdowns_per_unit: Mapped[int] = mapped_column(server_default="1")
    # The step whose track-out starts the moisture exposure clock of a moisture-sensitive
    # lot (J-STD-033; post-mold cure).
    moisture_start: Mapped[bool] = mapped_column(server_default=sa_false())
    # A bake step's recipe {temperature_c, hours, rh_pct?}: its track-out records the bake.
    bake: Mapped[dict[str, Any] | None]
    # The marking step: its track-out fixes the lot's date code and mark text. A route with
    # no step flagged marks at its step with code MARK.
    marks: Mapped[bool] = mapped_column(server_default=sa_false())

    route: Mapped[Route] = relationship(back_populates="steps")


class Product(Base):
    __tablename__ = "product"
    __table_args__ = (one_of("msl", MslLevel), one_of("kind", ProductKind))

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    package: Mapped[str] = mapped_column(String(40))
    # Products follow the current (highest) version of their route.
    route_code: Mapped[str] = mapped_column(String(40))
    aec_grade: Mapped[int | None]
    msl: Mapped[str] = mapped_column(String(3), default=MslLevel.L1)
    # Integrated circuit, discrete or multichip module: which AEC standard qualifies it.
    kind: Mapped[str] = mapped_column(String(20), default=ProductKind.IC)
    # The qualification family (products sharing die, package and materials) whose
    # generic qualification data may cover this product; NULL: none.
    qual_family: Mapped[str | None] = mapped_column(String(40), index=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"), index=True)
    # Moisture control (J-STD-033): the package body thickness picks the bake table's row,
    # the peak reflow temperature goes on the caution label, and the manufacturer's
    # exposure time is the most exposure since the last bake a lot may have at dry pack.
    body_thickness_mm: Mapped[float | None] = mapped_column(Numeric(4, 2, asdecimal=False))
    peak_reflow_c: Mapped[int | None]
    met_hours: Mapped[float] = mapped_column(Numeric(6, 2, asdecimal=False),
                                             server_default="24")
    # The package top mark: lines of text with fields in braces ({device}, {date_code},
    # {trace_code}, {lot}, {customer_part}); NULL marks "{device}" over
    # "{date_code} {trace_code}".
    mark_template: Mapped[str | None] = mapped_column(Text)
    # Units per carrier: {"reel": n, "tray": n, "tube": n} (a carrier not named has no
    # standard quantity: packing into it needs quantity_per).
    standard_pack_qty: Mapped[dict[str, Any] | None]
    # The customer's own part number for the product (label field P), when it has one.
    customer_part_number: Mapped[str | None] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    customer: Mapped[Customer | None] = relationship()
    qualifications: Mapped[list[Qualification]] = relationship(
        back_populates="product", order_by="Qualification.id")

    @property
    def qualified(self) -> bool:
        """Qualified while the latest qualification passed."""
        return bool(self.qualifications) and self.qualifications[-1].status == QualStatus.PASSED


class Equipment(Base):
    __tablename__ = "equipment"
    __table_args__ = (one_of("state", EquipmentState),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    kind: Mapped[str] = mapped_column(String(40), index=True)
    state: Mapped[str] = mapped_column(String(20), default=EquipmentState.STANDBY)
    state_since: Mapped[datetime] = mapped_column(default=utcnow)
    # Lots running on it now. A track-in changes this row, so the version counter below
    # lets only one of two simultaneous track-ins onto a free tool win.
    lots_running: Mapped[int] = mapped_column(default=0)
    # Lots it runs at once (1: one lot at a time; more: a batch tool, such as an oven),
    # and optionally the units it holds at once, whatever the number of lots.
    capacity: Mapped[int] = mapped_column(server_default="1")
    unit_capacity: Mapped[int | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    version: Mapped[int] = mapped_column(default=1)
    # Units processed on it, ever: each track-out adds the units the lot's run took in.
    # Preventive maintenance by use counts from it.
    units_processed: Mapped[int] = mapped_column(BigInteger, server_default="0")
    # When its first preventive maintenance by calendar falls due, and the count of
    # `units_processed` at which its first one by use does (NULL: no such plan). Kept by
    # mes.catalog.maintenance whenever a plan is added or a PM recorded, so a track-in
    # reads whether a PM is due from the tool's row alone.
    pm_due_at: Mapped[datetime | None]
    pm_due_units: Mapped[int | None] = mapped_column(BigInteger)

    __mapper_args__ = {"version_id_col": version}


class EquipmentStateChange(Base):
    """Every E10 state change with its time, for time-in-state reports."""

    __tablename__ = "equipment_state_change"
    __table_args__ = (one_of("from_state", EquipmentState), one_of("to_state", EquipmentState))

    id: Mapped[int] = mapped_column(primary_key=True)
    equipment_id: Mapped[int] = mapped_column(ForeignKey("equipment.id"), index=True)
    from_state: Mapped[str | None] = mapped_column(String(20))
    to_state: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    by: Mapped[str | None] = mapped_column(String(80))
    comment: Mapped[str] = mapped_column(Text, default="")
    # The downtime reason code a down state was entered with (NULL for the others).
    reason: Mapped[str | None] = mapped_column(String(40))


class Durable(Base):
    """A consumable part mounted on a tool that wears with use (a capillary, a saw blade, a
    mold chase, a load board, a socket, a probe card), counted against its life limit.

    `used` counts the uses of finished runs; `reserved` the uses the lots running on its
    tool will take (a track-in reserves its lot's quantity times the step's touchdowns per
    unit, under the condition that `used + reserved` stays within `life_limit`; the
    track-out turns it into `used`, undoing the track-in releases it)."""

    __tablename__ = "durable"
    __table_args__ = (one_of("kind", DurableKind),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    life_limit: Mapped[int] = mapped_column(BigInteger)
    warn_at_pct: Mapped[int] = mapped_column(default=90)
    used: Mapped[int] = mapped_column(BigInteger, default=0)
    reserved: Mapped[int] = mapped_column(BigInteger, default=0)
    # The tool it is mounted on now (NULL: in the crib).
    equipment_id: Mapped[int | None] = mapped_column(ForeignKey("equipment.id"), index=True)
    mounted_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    equipment: Mapped[Equipment | None] = relationship()

    @property
    def left(self) -> int:
        """Uses left before the life limit, after the running lots' reservations."""
        return self.life_limit - self.used - self.reserved

    @property
    def used_pct(self) -> float:
        return 100.0 * (self.used + self.reserved) / self.life_limit

    @property
    def warning(self) -> bool:
        """At or past its warning level (a share of its life limit)."""
        return (self.used + self.reserved) * 100 >= self.life_limit * self.warn_at_pct


class DurableMount(Base):
    """Every mount and removal of a durable on a tool, with who, when and its count then."""

    __tablename__ = "durable_mount"
    __table_args__ = (one_of("action", DurableAction),)

    id: Mapped[int] = mapped_column(primary_key=True)
    durable_id: Mapped[int] = mapped_column(ForeignKey("durable.id"), index=True)
    equipment_id: Mapped[int] = mapped_column(ForeignKey("equipment.id"), index=True)
    action: Mapped[str] = mapped_column(String(10))
    used: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    by: Mapped[str | None] = mapped_column(String(80))

    durable: Mapped[Durable] = relationship()
    equipment: Mapped[Equipment] = relationship()


class ReasonCode(Base):
    __tablename__ = "reason_code"
    __table_args__ = (one_of("kind", ReasonKind), one_of("customer_category", CustomerCategory))

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    kind: Mapped[str] = mapped_column(String(10))
    description: Mapped[str] = mapped_column(String(200))
    description_zh: Mapped[str] = mapped_column(String(200), default="")
    active: Mapped[bool] = mapped_column(default=True)
    # What customers read of a reject or scrap under this code (their Pareto groups by it).
    # The database's default only, so that rows written without it (older code, raw
    # inserts) get "other" alike.
    customer_category: Mapped[str] = mapped_column(
        String(12), server_default=CustomerCategory.OTHER.value)
    # Where a reject reason applies: route step codes and step kinds (StepKind). Both empty:
    # everywhere. The station offers a step's own reasons first, the others on request.
    steps: Mapped[list[Any]] = mapped_column(default=list)
    step_kinds: Mapped[list[Any]] = mapped_column(default=list)

    def applies_to(self, step_code: str, step_kind: str) -> bool:
        """Whether the reason is one the step's operators are offered first."""
        if not self.steps and not self.step_kinds:
            return True
        return step_code in self.steps or step_kind in self.step_kinds


class MaterialLot(Base):
    __tablename__ = "material_lot"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(60), unique=True)
    # The material type (e.g. "wire", "epoxy"); steps name the types they consume.
    material: Mapped[str] = mapped_column(String(40), index=True)
    description: Mapped[str] = mapped_column(String(200), default="")
    expires_at: Mapped[datetime | None]
    # The supplier part number (e.g. "LF-QFN16-CU-A"); a lot's BOM names the ones allowed.
    part_number: Mapped[str | None] = mapped_column(String(60), index=True)
    # Time-limited materials: minutes to thaw after removal from the freezer, hours of work
    # life once opened. Recording the removal (thawing_since) or the opening (opened_at)
    # starts the clock; opening brings expires_at forward to the end of the work life.
    thaw_minutes: Mapped[int | None]
    work_life_hours: Mapped[float | None] = mapped_column(Numeric(7, 2, asdecimal=False))
    thawing_since: Mapped[datetime | None]
    opened_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= utcnow()

    @property
    def ready_at(self) -> datetime | None:
        """When a material that must thaw may be used (None: not removed from the freezer
        yet, or no thawing needed)."""
        if not self.thaw_minutes or self.thawing_since is None:
            return None
        return self.thawing_since + timedelta(minutes=self.thaw_minutes)


class Bom(Base):
    """One revision of a product's bill of materials. The latest revision is current for
    the lots received from then on; a lot keeps the revision it was received with. A
    revision never changes once created."""

    __tablename__ = "bom"
    __table_args__ = (UniqueConstraint("product_id", "revision"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"), index=True)
    revision: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(80))

    product: Mapped[Product] = relationship()
    items: Mapped[list[BomItem]] = relationship(
        back_populates="bom", order_by="BomItem.id", cascade="all, delete-orphan")


class BomItem(Base):
    """At step `step`, a material of type `material` with one of `part_numbers`."""

    __tablename__ = "bom_item"
    __table_args__ = (UniqueConstraint("bom_id", "step", "material"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    bom_id: Mapped[int] = mapped_column(ForeignKey("bom.id"), index=True)
    step: Mapped[str] = mapped_column(String(40))
    material: Mapped[str] = mapped_column(String(40))
    part_numbers: Mapped[list[Any]] = mapped_column(default=list)
    qty_per_unit: Mapped[float | None] = mapped_column(Numeric(12, 4, asdecimal=False))

    bom: Mapped[Bom] = relationship(back_populates="items")


class Qualification(Base):
    """An AEC qualification record of what was built: the product (or, with `family`, the
    products of that qualification family sharing die, package and materials) at the BOM
    revision `bom` and temperature grade `grade`. Passed when every stress has 0 fails."""

    __tablename__ = "qualification"
    __table_args__ = (one_of("standard", QualStandard), one_of("status", QualStatus))

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"), index=True)
    standard: Mapped[str] = mapped_column(String(20))
    grade: Mapped[int]
    # The BOM revision qualified; NULL for a product that has no bill of materials.
    bom_id: Mapped[int | None] = mapped_column(ForeignKey("bom.id"), index=True)
    # Generic data for a qualification family (Product.qual_family); NULL: this product only.
    family: Mapped[str | None] = mapped_column(String(40), index=True)
    status: Mapped[str] = mapped_column(String(10))
    report: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(80))

    product: Mapped[Product] = relationship(back_populates="qualifications")
    bom: Mapped[Bom | None] = relationship()
    tests: Mapped[list[QualificationTest]] = relationship(
        back_populates="qualification", order_by="QualificationTest.id",
        cascade="all, delete-orphan")


class QualificationTest(Base):
    __tablename__ = "qualification_test"

    id: Mapped[int] = mapped_column(primary_key=True)
    qualification_id: Mapped[int] = mapped_column(ForeignKey("qualification.id"), index=True)
    test: Mapped[str] = mapped_column(String(40))
    group: Mapped[str] = mapped_column(String(10), default="")
    sample_size: Mapped[int]
    lots: Mapped[int]
    fails: Mapped[int]
    # The units were preconditioned (J-STD-020 / JESD22-A113 at the product's MSL) before
    # this stress.
    preconditioned: Mapped[bool] = mapped_column(default=False)

    qualification: Mapped[Qualification] = relationship(back_populates="tests")


class PmPlan(Base):
    """A preventive maintenance plan of one tool: due every `every_days` days (calendar) or
    every `every_units` units processed on the tool (use), counted from the plan's creation
    or its last recorded PM (`since_at`, `since_units`: the tool's `units_processed` then).
    """

    __tablename__ = "pm_plan"
    __table_args__ = (
        UniqueConstraint("equipment_id", "name"),
        CheckConstraint("(every_days IS NULL) <> (every_units IS NULL)", name="one_interval"),
        CheckConstraint("every_days IS NULL OR every_days > 0", name="every_days"),
        CheckConstraint("every_units IS NULL OR every_units > 0", name="every_units"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    equipment_id: Mapped[int] = mapped_column(ForeignKey("equipment.id"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    every_days: Mapped[int | None]
    every_units: Mapped[int | None] = mapped_column(BigInteger)
    since_at: Mapped[datetime] = mapped_column(default=utcnow)
    since_units: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(80))
    version: Mapped[int] = mapped_column(default=1)

    equipment: Mapped[Equipment] = relationship()

    __mapper_args__ = {"version_id_col": version}

    @property
    def due_at(self) -> datetime | None:
        """When a calendar plan falls due (None for a plan by use)."""
        if self.every_days is None:
            return None
        return self.since_at + timedelta(days=self.every_days)

    @property
    def due_units(self) -> int | None:
        """The tool's `units_processed` at which a plan by use falls due."""
        if self.every_units is None:
            return None
        return self.since_units + self.every_units


class PmRecord(Base):
    """A preventive maintenance done: which plan, on which tool, who, when, notes, and what
    the plan had counted since the previous one."""

    __tablename__ = "pm_record"

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("pm_plan.id"), index=True)
    equipment_id: Mapped[int] = mapped_column(ForeignKey("equipment.id"), index=True)
    done_at: Mapped[datetime] = mapped_column(default=utcnow)
    done_by: Mapped[str | None] = mapped_column(String(80))
    notes: Mapped[str] = mapped_column(Text, default="")
    # When the plan had fallen due (None: done before it was due), and the units the tool
    # processed since the plan's previous PM.
    due_since: Mapped[datetime | None]
    units_since: Mapped[int] = mapped_column(BigInteger, default=0)

    plan: Mapped[PmPlan] = relationship()
