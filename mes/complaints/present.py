"""A complaint as its reader sees it: the plant sees everything; a customer's user sees
their own complaint without the plant's side (no staff names, no internal notes, the
customer-facing 8D steps D3, D4, D5, D6 and D8 only, only their own lots of a
containment)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from mes.auth.actor import Actor
from mes.complaints import services
from mes.complaints.models import Complaint, EightDStepRow
from mes.db import utcnow
from mes.vocabulary import CUSTOMER_EIGHTD_STEPS, EightDStep


def step_dict(row: EightDStepRow, staff: bool, now: datetime) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "step": row.step, "title": str(EightDStep.word(row.step)), "due_at": row.due_at,
        "done_at": row.done_at, "overdue": row.done_at is None and row.due_at < now,
        "text": row.text}
    if row.step == EightDStep.D4:
        shown["root_cause_occurrence"] = row.root_cause_occurrence
        shown["root_cause_escape"] = row.root_cause_escape
    if row.step == EightDStep.D6:
        shown["verification"] = row.verification
    if staff:
        shown["owner"] = row.owner.username if row.owner is not None else None
        shown["owner_name"] = (row.owner.display_name or row.owner.username) \
            if row.owner is not None else None
        shown["done_by"] = row.done_by
        shown["internal_note"] = row.internal_note
    return shown


def returns(session: Session, complaint: Complaint, staff: bool) -> list[dict[str, Any]]:
    """The units returned for the complaint and their failure analyses."""
    from mes.commonality.returns import presented_returns

    return presented_returns(session, complaint, staff)


def present(session: Session, complaint: Complaint, actor: Actor | None, *,
            customer_view: bool = False) -> dict[str, Any]:
    """The complaint as `actor` may see it (see the module's docstring); as its customer
    sees it with `customer_view` (the 8D report)."""
    staff = services.is_staff(actor) and not customer_view
    now = utcnow()
    steps = [row for row in complaint.steps
             if staff or row.step in CUSTOMER_EIGHTD_STEPS]
    containments = []
    for state in services.containment_states(session, complaint):
        lots = state.lots_held if staff else [
            lot_no for lot_no in state.lots_held
            if state.lot_customers.get(lot_no) == complaint.customer_id]
        shown: dict[str, Any] = {"id": state.id, "at": state.at, "lots_held": lots}
        if staff:
            shown.update(by=state.by, reason=state.reason, open_holds=state.open_holds)
        containments.append(shown)
    out: dict[str, Any] = {
        "id": complaint.id, "customer": complaint.customer.code,
        "customer_name": complaint.customer.name,
        "reference": complaint.reference, "vehicle_program": complaint.vehicle_program,
        "received_at": complaint.received_at, "description": complaint.description,
        "state": complaint.state, "created_at": complaint.created_at,
        "closed_at": complaint.closed_at,
        "lots": [link.lot.lot_no for link in complaint.lots],
        "units": [{"scan": u.scan, "kind": u.kind, "failure_mode": u.failure_mode,
                   "count": u.count} for u in complaint.units],
        "eightd": [step_dict(row, staff, now) for row in steps],
        "containments": containments,
        "returns": returns(session, complaint, staff),
        "overdue": complaint.state == "open" and any(
            row.done_at is None and row.due_at < now for row in complaint.steps)}
    if staff:
        out["created_by"] = complaint.created_by
        out["internal_notes"] = complaint.internal_notes
    return out
