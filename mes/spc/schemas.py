"""Input and output schemas of process control: plans, subgroups, limits and events."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, pre_dump, validate

from mes.catalog.schemas import CODE, NAME
from mes.floor.schemas import LOT_NO
from mes.pagination import ListArgs
from mes.spc.models import Judged, PlanSummary
from mes.spc.stats import MAX_SUBGROUP, MIN_BASELINE, RULES
from mes.vocabulary import ChartKind, SpcChart, SpcEventState

# A measured value: finite and far from overflowing any sum of 25 of them.
VALUE = validate.Range(min=-1e12, max=1e12)
FREQUENCY = validate.Regexp(r"^(lot|hours:[0-9]{1,4})$",
                            error='"lot" or "hours:N" (every N hours per tool).')
TEXT = validate.Length(min=1, max=4000)
MAX_BASELINE = 100_000


def _value(**kw: Any) -> fields.Float:
    return fields.Float(validate=VALUE, **kw)


class SpcPlanIn(Schema):
    code = fields.String(required=True, validate=CODE)
    step = fields.String(required=True, validate=CODE)
    characteristic = fields.String(required=True, validate=NAME)
    unit = fields.String(required=True, validate=validate.Length(min=1, max=20))
    subgroup_size = fields.Integer(required=True,
                                   validate=validate.Range(min=1, max=MAX_SUBGROUP))
    frequency = fields.String(required=True, validate=FREQUENCY)
    lsl = _value(load_default=None, allow_none=True)
    usl = _value(load_default=None, allow_none=True)
    target = _value(load_default=None, allow_none=True)
    equipment_kind = fields.String(load_default=None, allow_none=True, validate=CODE)
    product = fields.String(load_default=None, allow_none=True, validate=CODE)
    rules = fields.List(fields.Integer(validate=validate.OneOf(RULES)),
                        load_default=list(RULES), validate=validate.Length(max=4),
                        metadata={"description": "Western Electric rules judged (1 to 4)."})


class SpcPlanPatch(Schema):
    """What may change on a plan (the step and subgroup size may not: a new plan)."""

    frequency = fields.String(validate=FREQUENCY)
    lsl = _value(allow_none=True)
    usl = _value(allow_none=True)
    target = _value(allow_none=True)
    rules = fields.List(fields.Integer(validate=validate.OneOf(RULES)),
                        validate=validate.Length(max=4))
    active = fields.Boolean()


class SpcPlanQuery(ListArgs):
    step = fields.String(load_default=None, validate=CODE)
    active = fields.Boolean(load_default=None)


class SpcSampleIn(Schema):
    lot = fields.String(required=True, validate=LOT_NO)
    equipment = fields.String(required=True, validate=CODE)
    values = fields.List(_value(required=True), required=True,
                         validate=validate.Length(min=1, max=MAX_SUBGROUP))


class SpcLimitsIn(Schema):
    from_subgroups = fields.Integer(
        load_default=None, allow_none=True,
        validate=validate.Range(min=MIN_BASELINE, max=MAX_BASELINE),
        metadata={"description": "Freeze from the last N subgroups (default all)."})


class SpcCloseIn(Schema):
    cause = fields.String(required=True, validate=TEXT)
    action = fields.String(required=True, validate=TEXT)


class SpcEventQuery(ListArgs):
    state = fields.String(load_default=None, validate=validate.OneOf(SpcEventState.codes()))
    plan = fields.String(load_default=None, validate=CODE)
    equipment = fields.String(load_default=None, validate=CODE)


class SpcLimitsOut(Schema):
    version = fields.Integer()
    center = fields.Float()
    ucl = fields.Float()
    lcl = fields.Float()
    r_center = fields.Float(metadata={"description": "Centre of the spread chart (R̄, S̄ "
                                                     "or MR̄)."})
    r_ucl = fields.Float()
    r_lcl = fields.Float()
    sigma = fields.Float(metadata={"description": "σ within subgroups (R̄/d2, S̄/c4, "
                                                  "MR̄/1.128)."})
    subgroups = fields.Integer(metadata={"description": "Subgroups the limits come from."})
    first_subgroup = fields.Integer(attribute="first_subgroup_id")
    last_subgroup = fields.Integer(attribute="last_subgroup_id")
    frozen_at = fields.AwareDateTime()
    frozen_by = fields.String(allow_none=True)


class SpcPlanOut(Schema):
    code = fields.String()
    step = fields.String(attribute="step_code")
    characteristic = fields.String()
    unit = fields.String()
    subgroup_size = fields.Integer()
    chart = fields.String(metadata={"enum": list(ChartKind.codes())})
    frequency = fields.String()
    lsl = fields.Float(allow_none=True)
    usl = fields.Float(allow_none=True)
    target = fields.Float(allow_none=True)
    equipment_kind = fields.String(allow_none=True)
    product = fields.Function(lambda plan: plan.product.code if plan.product else None,
                              allow_none=True)
    rules = fields.List(fields.Integer())
    active = fields.Boolean()
    created_at = fields.AwareDateTime()
    created_by = fields.String(allow_none=True)


class SpcViolationOut(Schema):
    rule = fields.Integer()
    chart = fields.String(metadata={"enum": list(SpcChart.codes())})


class SpcSubgroupOut(Schema):
    """A subgroup with its lot, tool and the limits version that judged it (a Judged or a
    ChartPoint, never a bare row)."""

    id = fields.Integer(attribute="subgroup.id")
    lot = fields.String(attribute="lot_no")
    equipment = fields.String()
    values = fields.List(fields.Float(), attribute="subgroup.values")
    mean = fields.Float(attribute="subgroup.mean")
    range = fields.Method("_range", allow_none=True,
                          metadata={"description": "Range (X̄–R) or moving range (I–MR)."})
    sd = fields.Method("_sd", allow_none=True,
                       metadata={"description": "Standard deviation (X̄–S)."})
    out_of_spec = fields.List(fields.Float(), attribute="subgroup.out_of_spec",
                              metadata={"description": "Values beyond a specification "
                                                       "limit."})
    limits_version = fields.Integer(allow_none=True)
    in_control = fields.Boolean(attribute="subgroup.in_control", allow_none=True)
    violations = fields.List(fields.Nested(SpcViolationOut), attribute="subgroup.violations")
    event = fields.Integer(attribute="subgroup.event_id", allow_none=True)
    at = fields.AwareDateTime(attribute="subgroup.at")
    by = fields.String(attribute="subgroup.by", allow_none=True)

    @pre_dump
    def _presented(self, shown: Any, **kwargs: Any) -> Any:
        if not hasattr(shown, "subgroup"):
            raise TypeError(f"SpcSubgroupOut shows a Judged or ChartPoint, not "
                            f"{type(shown).__name__}")
        return shown

    def _range(self, shown: Any) -> float | None:
        return None if _is_s(shown) else shown.subgroup.spread

    def _sd(self, shown: Any) -> float | None:
        return shown.subgroup.spread if _is_s(shown) else None


def _is_s(shown: Any) -> bool:
    return len(shown.subgroup.values) > 10


class SpcHitOut(Schema):
    rule = fields.Integer()
    chart = fields.String()
    subgroups = fields.List(fields.Integer())


class SpcEventOut(Schema):
    id = fields.Integer()
    plan = fields.Function(lambda event: event.plan.code)
    rule = fields.Integer(metadata={"description": "The first rule hit."})
    hits = fields.List(fields.Nested(SpcHitOut))
    subgroups = fields.List(fields.Integer(),
                            metadata={"description": "The subgroups of the violations."})
    equipment = fields.Function(lambda event: event.equipment.code)
    since = fields.AwareDateTime(metadata={"description": "Start of the window of lots "
                                                          "held."})
    held_lots = fields.List(fields.String())
    shipped_lots = fields.List(fields.String(),
                               metadata={"description": "Lots already shipped: for "
                                                        "containment, not held."})
    state = fields.String(metadata={"enum": list(SpcEventState.codes())})
    opened_at = fields.AwareDateTime()
    opened_by = fields.String(allow_none=True)
    closed_at = fields.AwareDateTime(allow_none=True)
    closed_by = fields.String(allow_none=True)
    cause = fields.String(allow_none=True)
    action = fields.String(allow_none=True)


class SpcJudgedOut(SpcSubgroupOut):
    """A subgroup just entered, with the event it opened or joined."""

    event_detail = fields.Method("_event_detail", allow_none=True,
                                 metadata={"description": "The event (as GET "
                                                          "/spc/events/{id})."})

    def _event_detail(self, shown: Judged) -> dict[str, Any] | None:
        return SpcEventOut().dump(shown.event) if shown.event else None


class SpcCapabilityOut(Schema):
    n_values = fields.Integer()
    mean = fields.Float(allow_none=True)
    sigma_within = fields.Float(allow_none=True)
    sigma_overall = fields.Float(allow_none=True)
    cp = fields.Float(allow_none=True)
    cpk = fields.Float(allow_none=True)
    pp = fields.Float(allow_none=True)
    ppk = fields.Float(allow_none=True)


class SpcPlanSummaryOut(SpcPlanOut):
    """A plan with its current limits, every limits version, the last subgroups (oldest
    first), the capability over them and its open events (a PlanSummary)."""

    limits = fields.Nested(SpcLimitsOut, allow_none=True)
    versions = fields.List(fields.Nested(SpcLimitsOut))
    subgroups = fields.List(fields.Nested(SpcSubgroupOut), attribute="points")
    capability = fields.Nested(SpcCapabilityOut)
    open_events = fields.List(fields.Nested(SpcEventOut))

    @pre_dump
    def _summary(self, shown: Any, **kwargs: Any) -> Any:
        if not isinstance(shown, PlanSummary):
            raise TypeError(f"SpcPlanSummaryOut shows a PlanSummary, not {type(shown).__name__}")
        return _Flat(shown)


class _Flat:
    """A PlanSummary whose plan's attributes read as its own (the plan fields at the top)."""

    def __init__(self, summary: PlanSummary) -> None:
        self._summary = summary

    def __getattr__(self, name: str) -> Any:
        if name in ("limits", "versions", "points", "capability", "open_events"):
            return getattr(self._summary, name)
        return getattr(self._summary.plan, name)
