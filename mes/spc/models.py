"""Process control tables: data collection plans, the subgroups measured under them, the
frozen (versioned) control limits and the out-of-control events of the reaction plan."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Float, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mes.db import Base, BigID, one_of, utcnow
from mes.vocabulary import ChartKind, SpcEventState

if TYPE_CHECKING:
    from mes.catalog.models import Equipment, Product
    from mes.floor.models import Lot


class SpcPlan(Base):
    """A data collection plan: one characteristic measured at a step (optionally only on
    one kind of equipment and for one product), in subgroups of `subgroup_size` values,
    every lot (`frequency_hours` NULL) or every N hours per tool.

    `version` is the row's version counter; entering a subgroup locks the row (PostgreSQL:
    FOR UPDATE), so two subgroups of one plan are judged one after the other."""

    __tablename__ = "spc_plan"
    __table_args__ = (Index("ix_spc_plan_step", "step_code", "active"),
                      one_of("chart", ChartKind))

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    step_code: Mapped[str] = mapped_column(String(40))
    characteristic: Mapped[str] = mapped_column(String(200))
    unit: Mapped[str] = mapped_column(String(20))
    subgroup_size: Mapped[int]
    chart: Mapped[str] = mapped_column(String(10))
    # NULL: every lot; else every N hours per tool.
    frequency_hours: Mapped[int | None]
    lsl: Mapped[float | None] = mapped_column(Float)
    usl: Mapped[float | None] = mapped_column(Float)
    target: Mapped[float | None] = mapped_column(Float)
    equipment_kind: Mapped[str | None] = mapped_column(String(40))
    product_id: Mapped[int | None] = mapped_column(ForeignKey("product.id"), index=True)
    # The Western Electric rules (1 to 4) judged on every new subgroup.
    rules: Mapped[list[Any]] = mapped_column(default=list)
    active: Mapped[bool] = mapped_column(default=True)
    # The id of the current limits (NULL until an engineer freezes them); no foreign key,
    # as the limits point at their plan.
    limits_id: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(80))
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}

    product: Mapped[Product | None] = relationship()

    @property
    def frequency(self) -> str:
        """"lot", or "hours:N" (the API's form)."""
        return "lot" if self.frequency_hours is None else f"hours:{self.frequency_hours}"


class SpcLimits(Base):
    """One frozen version of a plan's control limits: the X̄ (or individuals) chart's centre
    and limits, the spread chart's (range, standard deviation or moving range), and the
    within-subgroup σ of the process, computed from `subgroups` subgroups."""

    __tablename__ = "spc_limits"
    __table_args__ = (UniqueConstraint("plan_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("spc_plan.id"))
    version: Mapped[int]
    center: Mapped[float] = mapped_column(Float)
    ucl: Mapped[float] = mapped_column(Float)
    lcl: Mapped[float] = mapped_column(Float)
    r_center: Mapped[float] = mapped_column(Float)
    r_ucl: Mapped[float] = mapped_column(Float)
    r_lcl: Mapped[float] = mapped_column(Float)
    sigma: Mapped[float] = mapped_column(Float)
    subgroups: Mapped[int]
    first_subgroup_id: Mapped[int] = mapped_column(BigID)
    last_subgroup_id: Mapped[int] = mapped_column(BigID)
    frozen_at: Mapped[datetime] = mapped_column(default=utcnow)
    frozen_by: Mapped[str | None] = mapped_column(String(80))


class SpcSubgroup(Base):
    """One subgroup of measured values: its mean and spread (range for X̄–R, standard
    deviation for X̄–S, moving range from the plan's previous subgroup for I–MR), the
    values outside the specification limits, the limits version that judged it and the
    rule hits (`violations`: [{rule, chart}]). `in_control`: judged and no rule hit (NULL
    while the plan has no limits)."""

    __tablename__ = "spc_subgroup"
    __table_args__ = (
        # The chart (the plan's subgroups in order) and the last ones before a new one.
        Index("ix_spc_subgroup_plan", "plan_id", "id"),
        # The last in-control subgroup of a plan on a tool (the reaction plan's window).
        Index("ix_spc_subgroup_tool", "plan_id", "equipment_id", "in_control", "id"),
        # Whether the lot's open step run has its subgroup (the track-out's check).
        Index("ix_spc_subgroup_run", "run_id", "plan_id"),
    )

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("spc_plan.id"))
    lot_id: Mapped[int] = mapped_column(ForeignKey("lot.id"), index=True)
    equipment_id: Mapped[int] = mapped_column(ForeignKey("equipment.id"), index=True)
    # The lot's step run at the plan's step on that tool that the subgroup measures.
    run_id: Mapped[int | None] = mapped_column(BigID)
    values: Mapped[list[Any]] = mapped_column(default=list)
    mean: Mapped[float] = mapped_column(Float)
    # Range, standard deviation or moving range (NULL: the first individual of a plan).
    spread: Mapped[float | None] = mapped_column(Float)
    out_of_spec: Mapped[list[Any]] = mapped_column(default=list)
    limits_id: Mapped[int | None] = mapped_column(ForeignKey("spc_limits.id"))
    violations: Mapped[list[Any]] = mapped_column(default=list)
    in_control: Mapped[bool | None]
    event_id: Mapped[int | None] = mapped_column(ForeignKey("spc_event.id"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    by: Mapped[str | None] = mapped_column(String(80))

    lot: Mapped[Lot] = relationship()
    equipment: Mapped[Equipment] = relationship()
    limits: Mapped[SpcLimits | None] = relationship()


class SpcEvent(Base):
    """An out-of-control event (the reaction plan): the rule hits and the subgroups that
    made them, the tool it stopped (E10 engineering), the lots it held in one action and the
    shipped lots listed for containment; closed with the cause and the action taken."""

    __tablename__ = "spc_event"
    __table_args__ = (Index("ix_spc_event_state", "state", "id"),
                      Index("ix_spc_event_plan_tool", "plan_id", "equipment_id", "state"),
                      one_of("state", SpcEventState))

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("spc_plan.id"))
    equipment_id: Mapped[int] = mapped_column(ForeignKey("equipment.id"), index=True)
    # The first rule hit, and every hit: [{rule, chart, subgroups: [id, ...]}].
    rule: Mapped[int]
    hits: Mapped[list[Any]] = mapped_column(default=list)
    # The subgroups that make the violations (every point of each pattern).
    subgroups: Mapped[list[Any]] = mapped_column(default=list)
    # The start of the window of lots held: the last in-control subgroup on the tool (or
    # the limits' freezing when there is none since).
    since: Mapped[datetime]
    held_lots: Mapped[list[Any]] = mapped_column(default=list)
    shipped_lots: Mapped[list[Any]] = mapped_column(default=list)
    # The tool's E10 state before the event stopped it.
    equipment_state_before: Mapped[str | None] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(10), default=SpcEventState.OPEN)
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    opened_by: Mapped[str | None] = mapped_column(String(80))
    closed_at: Mapped[datetime | None]
    closed_by: Mapped[str | None] = mapped_column(String(80))
    cause: Mapped[str | None] = mapped_column(Text)
    action: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}

    plan: Mapped[SpcPlan] = relationship()
    equipment: Mapped[Equipment] = relationship()


@dataclass(frozen=True, slots=True)
class Capability:
    """Process capability: Cp, Cpk from the within-subgroup σ (the limits'), Pp, Ppk from
    the overall standard deviation of the values; None where a specification limit or a σ
    is missing."""

    n_values: int
    mean: float | None
    sigma_within: float | None
    sigma_overall: float | None
    cp: float | None
    cpk: float | None
    pp: float | None
    ppk: float | None


@dataclass(frozen=True, slots=True)
class ChartPoint:
    """A point of a plan's chart: the subgroup with its lot number, tool code and the
    version of the limits that judged it (None: entered before any limits)."""

    subgroup: SpcSubgroup
    lot_no: str
    equipment: str
    limits_version: int | None


@dataclass(frozen=True, slots=True)
class PlanSummary:
    """What a plan's page and GET /spc/plans/{code} show: the plan, its current limits, its
    last subgroups as chart points (oldest first), every limits version, the capability
    over those points and the open events."""

    plan: SpcPlan
    limits: SpcLimits | None
    points: list[ChartPoint]
    versions: list[SpcLimits]
    capability: Capability
    open_events: list[SpcEvent]


@dataclass(frozen=True, slots=True)
class Judged:
    """A subgroup just entered, with the event it opened or joined (None: in control, or
    no limits yet) and the lot number and tool code it was measured on."""

    subgroup: SpcSubgroup
    lot_no: str
    equipment: str
    limits_version: int | None
    event: SpcEvent | None
