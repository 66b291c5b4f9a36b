"""The complaint's events for the customer's subscriptions (mes.events): what the customer
may read only (the step's customer-facing text for the steps they see, no staff names, no
internal notes)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from mes.complaints.models import Complaint, EightDStepRow
from mes.events import publish
from mes.vocabulary import CUSTOMER_EIGHTD_STEPS, EventType


def _complaint(complaint: Complaint) -> dict[str, Any]:
    return {"complaint": complaint.id, "reference": complaint.reference,
            "state": complaint.state}


def created(session: Session, complaint: Complaint) -> None:
    publish(session, EventType.COMPLAINT_CREATED, customer_id=complaint.customer_id, data={
        **_complaint(complaint), "received_at": complaint.received_at.isoformat(),
        "vehicle_program": complaint.vehicle_program,
        "lots": sorted(link.lot.lot_no for link in complaint.lots),
        "due": {row.step: row.due_at.isoformat() for row in complaint.steps
                if row.step in CUSTOMER_EIGHTD_STEPS}})


def step_completed(session: Session, row: EightDStepRow) -> None:
    complaint = row.complaint
    data = {**_complaint(complaint), "step": row.step,
            "done_at": row.done_at.isoformat() if row.done_at else None}
    if row.step in CUSTOMER_EIGHTD_STEPS:
        data["text"] = row.text
    publish(session, EventType.EIGHTD_STEP_COMPLETED, customer_id=complaint.customer_id,
            data=data)


def closed(session: Session, complaint: Complaint) -> None:
    publish(session, EventType.EIGHTD_CLOSED, customer_id=complaint.customer_id, data={
        **_complaint(complaint),
        "closed_at": complaint.closed_at.isoformat() if complaint.closed_at else None})

