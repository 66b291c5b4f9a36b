"""Customer complaints and their 8D: QA and the customer's own users record complaints
naming failing units as scanned; QA works the 8D; customers read their own."""

from __future__ import annotations

from typing import Any

from flask_login import current_user

from mes import db
from mes.api import bp
from mes.api.registry import Page, api_route, paginate
from mes.auth.permissions import Permission
from mes.complaints import schemas as s
from mes.complaints import services
from mes.complaints.present import present, step_dict
from mes.db import utcnow


@api_route(bp, "/complaints", method="POST", permission=Permission.COMPLAINT_OPEN,
           body=s.ComplaintIn, response=s.ComplaintOut, status=201, tag="complaints")
def create_complaint(data: dict[str, Any]) -> dict[str, Any]:
    """Record a customer complaint: `units` as scanned (a label's ISO/IEC 15434 message, a
    pack unit id, a package mark or a lot number), each resolved to the customer's lots
    (422 `unresolved_units` naming each one that is not, nothing stored). A customer's user
    records their own customer's complaints (`customer` implied). The 8D's steps D0..D8 are
    written with their due times."""
    session = db.session()
    complaint = services.open_complaint(session, current_user, data)
    return present(session, complaint, current_user)


@api_route(bp, "/complaints", permission=Permission.COMPLAINT_READ, query=s.ComplaintQuery,
           response=s.ComplaintOut, many=True, tag="complaints")
def list_complaints(args: dict[str, Any]) -> Page:
    """Complaints, newest receipt first (customers: their own). Filters: `state` (open,
    closed), `overdue=true` (open, with an 8D step past its due time)."""
    session = db.session()
    page = paginate(session, services.complaint_query(
        current_user, state=args.get("state"), overdue=bool(args.get("overdue"))), args)
    page.items = [present(session, complaint, current_user) for complaint in page.items]
    return page


@api_route(bp, "/complaints/<int:complaint_id>", permission=Permission.COMPLAINT_READ,
           response=s.ComplaintOut, tag="complaints")
def get_complaint(complaint_id: int) -> dict[str, Any]:
    """A complaint with its lots, 8D, containments and returns. Customers' users: their
    own only (another customer's is 404), without staff names or internal notes."""
    session = db.session()
    return present(session, services.get_complaint(session, complaint_id, current_user),
                   current_user)


@api_route(bp, "/complaints/<int:complaint_id>/eightd/<step>", method="PATCH",
           permission=Permission.COMPLAINT_MANAGE, body=s.ComplaintStepIn,
           response=s.ComplaintStepOut, tag="complaints")
def update_eightd_step(complaint_id: int, step: str, data: dict[str, Any]) -> dict[str, Any]:
    """Change an 8D step: `owner`, `text` (customer-facing), `internal_note`, D4's
    `root_cause_occurrence` and `root_cause_escape`, D6's `verification`, `done: true`.
    D8 done closes the complaint; it needs D4's two root causes, D6's evidence, every
    containment hold dispositioned and D0..D7 done (409 naming what is missing)."""
    session = db.session()
    complaint = services.get_complaint(session, complaint_id, current_user)
    row = services.update_step(session, current_user, complaint, step.upper(), data)
    return step_dict(row, True, utcnow())
