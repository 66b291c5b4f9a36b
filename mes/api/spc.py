"""Process control endpoints: data collection plans and their limits (engineers), subgroups
from operators, gauges and scripts, out-of-control events (closed by engineers or QA);
every plant role reads them, customers none."""

from __future__ import annotations

from typing import Any

from flask_login import current_user

from mes import db
from mes.api import bp
from mes.api.registry import Page, api_route, paginate
from mes.auth.permissions import Permission
from mes.spc import schemas as s
from mes.spc import services
from mes.spc.models import Judged, PlanSummary, SpcEvent, SpcLimits, SpcPlan

READ, PLAN = Permission.SPC_READ, Permission.SPC_PLAN
SAMPLE, CLOSE = Permission.SPC_SAMPLE, Permission.SPC_CLOSE


@api_route(bp, "/spc/plans", method="POST", permission=PLAN, body=s.SpcPlanIn,
           response=s.SpcPlanOut, tag="spc")
def create_plan(data: dict[str, Any]) -> SpcPlan:
    """Create a data collection plan: a characteristic measured at a step (optionally on one
    equipment kind and for one product) in subgroups of `subgroup_size` values (1: I–MR, 2
    to 10: X̄–R, 11 to 25: X̄–S), every lot (`"lot"`: the track-out waits for the subgroup)
    or every N hours per tool (`"hours:N"`), with specification limits, target and the
    Western Electric rules judged (default all four)."""
    return services.create_plan(db.session(), current_user, data)


@api_route(bp, "/spc/plans", permission=READ, query=s.SpcPlanQuery, response=s.SpcPlanOut,
           many=True, tag="spc")
def list_plans(args: dict[str, Any]) -> Page:
    """List plans by code; filters `step`, `active`."""
    return paginate(db.session(), services.plan_query(args), args)


@api_route(bp, "/spc/plans/<code>", permission=READ, response=s.SpcPlanSummaryOut, tag="spc")
def get_plan(code: str) -> PlanSummary:
    """A plan with its current limits, every limits version, its last 125 subgroups (oldest
    first, each with the limits version that judged it and its rule hits), Cp/Cpk/Pp/Ppk
    over them and its open out-of-control events."""
    session = db.session()
    return services.plan_summary(session, services.get_plan(session, code))


@api_route(bp, "/spc/plans/<code>", method="PATCH", permission=PLAN, body=s.SpcPlanPatch,
           response=s.SpcPlanOut, tag="spc")
def update_plan(code: str, data: dict[str, Any]) -> SpcPlan:
    """Change a plan's rules, specification limits, target, frequency or `active` (a
    retired plan takes no subgroups and asks for none)."""
    session = db.session()
    return services.update_plan(session, current_user, services.get_plan(session, code), data)


@api_route(bp, "/spc/plans/<code>/samples", method="POST", permission=SAMPLE,
           body=s.SpcSampleIn, response=s.SpcJudgedOut, tag="spc")
def add_sample(code: str, data: dict[str, Any]) -> Judged:
    """Enter a subgroup of the plan measured on a lot at the plan's step on a tool.

    The answer has the mean, the range (or standard deviation), the values beyond a
    specification limit (`out_of_spec`) and, once limits are frozen, the rule hits
    (`violations`) and the out-of-control event they opened or joined (`event`): the tool
    is stopped (E10 engineering) and the lots it made since its last in-control subgroup
    are held (source `spc`).
    """
    session = db.session()
    return services.add_sample(session, current_user, services.get_plan(session, code), **data)


@api_route(bp, "/spc/plans/<code>/limits", method="POST", permission=PLAN, body=s.SpcLimitsIn,
           response=s.SpcLimitsOut, tag="spc")
def freeze_limits(code: str, data: dict[str, Any]) -> SpcLimits:
    """Freeze the next version of the control limits from the last `from_subgroups`
    subgroups (default all; at least 25, else 422 `too_few_subgroups`)."""
    session = db.session()
    return services.freeze_limits(session, current_user, services.get_plan(session, code),
                                  data["from_subgroups"])


@api_route(bp, "/spc/events", permission=READ, query=s.SpcEventQuery, response=s.SpcEventOut,
           many=True, tag="spc")
def list_events(args: dict[str, Any]) -> Page:
    """Out-of-control events, newest first; filters `state`, `plan`, `equipment`."""
    return paginate(db.session(), services.event_query(args), args)


@api_route(bp, "/spc/events/<int:event_id>", permission=READ, response=s.SpcEventOut, tag="spc")
def get_event(event_id: int) -> SpcEvent:
    """One out-of-control event: its rule hits and points, the tool it stopped, the lots it
    held and the shipped lots listed for containment."""
    return services.get_event(db.session(), event_id)


@api_route(bp, "/spc/events/<int:event_id>/close", method="POST", permission=CLOSE,
           body=s.SpcCloseIn, response=s.SpcEventOut, status=200, tag="spc")
def close_event(event_id: int, data: dict[str, Any]) -> SpcEvent:
    """Close an out-of-control event with its cause and the action taken (OCAP). The tool
    returns to standby unless another open event keeps it stopped; the holds stay for
    quality to release."""
    session = db.session()
    return services.close_event(session, current_user, services.get_event(session, event_id),
                                **data)
