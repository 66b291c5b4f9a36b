"""Preventive maintenance of equipment: plans and the PMs recorded (engineers and admins
write; every internal role reads)."""

from __future__ import annotations

from typing import Any

from flask_login import current_user

from mes import db
from mes.api import bp
from mes.api.registry import ListArgs, Page, api_route, paginate_list
from mes.auth.permissions import Permission
from mes.catalog import maintenance, services
from mes.catalog import schemas as s
from mes.catalog.models import PmPlan, PmRecord

READ, WRITE = Permission.MASTER_READ, Permission.MASTER_WRITE


@api_route(bp, "/equipment/<code>/pm-plans", method="POST", permission=WRITE,
           body=s.PmPlanIn, response=s.PmPlanOut, tag="equipment")
def create_pm_plan(code: str, data: dict[str, Any]) -> PmPlan:
    """Add a preventive maintenance plan: every `every_days` days or every `every_units`
    units processed on the tool (exactly one)."""
    session = db.session()
    return maintenance.create_plan(session, current_user, services.get_equipment(session, code),
                                   data)


@api_route(bp, "/equipment/<code>/pm-plans", permission=READ, query=ListArgs,
           response=s.PmPlanOut, many=True, tag="equipment")
def list_pm_plans(code: str, args: dict[str, Any]) -> Page:
    """The tool's PM plans, what is due first."""
    session = db.session()
    due = maintenance.due_next(session, services.get_equipment(session, code))
    return paginate_list([status.plan for status in due], args)


@api_route(bp, "/equipment/<code>/pm", method="POST", permission=WRITE, body=s.PmRecordIn,
           response=s.PmRecordOut, tag="equipment")
def record_pm(code: str, data: dict[str, Any]) -> PmRecord:
    """Record a PM of one of the tool's plans (the tool in scheduled down): the plan counts
    again from now."""
    session = db.session()
    return maintenance.record_pm(session, current_user, services.get_equipment(session, code),
                                 data)


@api_route(bp, "/equipment/<code>/pm", permission=READ, query=ListArgs,
           response=s.PmRecordOut, many=True, tag="equipment")
def list_pm_records(code: str, args: dict[str, Any]) -> Page:
    """The PMs recorded on the tool, the latest first."""
    session = db.session()
    return paginate_list(maintenance.history(session, services.get_equipment(session, code),
                                             limit=10_000), args)
