"""The demo plant's customer complaints, recorded and worked through the same services as
the pages, at simulated times within the history:

- Cyanlake's open complaint, received 12 days before the end (a day after the lot shipped
  at the latest): two reels of a shipped lot
  fail at the customer's end-of-line test (wire bond lift). D0 to D3 are done; the
  containment run for it holds the lots of the same product still in the plant, its holds
  not dispositioned yet; D4's root cause is half stated (why it occurred, not yet why it
  escaped), and D4 and D5 (due 10 days after receipt) are overdue.
- Ferroquill's closed complaint, received 26 days before the end (a day after the lot
  shipped at the latest) and recorded by its own
  supplier quality engineer in the portal: a marked unit with a cracked package, traced to
  a lot that had all left the plant (the containment held nothing and listed the
  shipments); the 8D is complete and D8 closed it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mes.auth.models import User
from mes.catalog.models import Customer
from mes.complaints import services
from mes.complaints.models import Complaint
from mes.db import simulated_time
from mes.floor.models import Lot
from mes.shipping.models import PackUnit
from mes.trace import services as trace
from mes.vocabulary import LotState, PackKind

OPEN_RECEIVED = timedelta(days=12)
CLOSED_RECEIVED = timedelta(days=26)
QA, QA2, ENGINEER = "qa", "qa2", "engineer"
HOLD_REASON = "HOLD-CUST"


def _user(session: Session, username: str) -> User:
    return session.scalars(select(User).where(User.username == username)).one()


def _customer_user(session: Session, code: str) -> User | None:
    return session.scalars(select(User).join(Customer, Customer.id == User.customer_id)
                           .where(Customer.code == code, User.role == "customer")
                           .order_by(User.id)).first()


def _shipped_lot(session: Session, customer: str) -> Lot | None:
    """The customer's earliest shipped lot with a mark (date code and trace code)."""
    return session.scalars(select(Lot).join(Customer, Customer.id == Lot.customer_id)
                           .where(Customer.code == customer, Lot.state == LotState.SHIPPED,
                                  Lot.trace_code.is_not(None), Lot.date_code.is_not(None))
                           .order_by(Lot.updated_at, Lot.id)).first()


def _reason(session: Session) -> str:
    from mes.catalog.models import ReasonCode

    code = session.scalar(select(ReasonCode.code).where(ReasonCode.code == HOLD_REASON))
    if code is not None:
        return code
    return session.scalars(select(ReasonCode.code).where(ReasonCode.kind == "hold")
                           .order_by(ReasonCode.code)).first() or HOLD_REASON


def _work(session: Session, actor: User, complaint: Complaint, steps: dict[str, Any],
          at: datetime, every: timedelta = timedelta(hours=2)) -> None:
    for step, data in steps.items():
        with simulated_time(at):
            services.update_step(session, actor, complaint, step, data)
            session.flush()
        at += every


def _open_complaint(session: Session, end: datetime, customer: str) -> None:
    lot = _shipped_lot(session, customer)
    if lot is None:
        return
    received = max(end - OPEN_RECEIVED, lot.updated_at + timedelta(days=1)).replace(
        microsecond=0)
    reels = session.scalars(select(PackUnit).where(
        PackUnit.lot_id == lot.id, PackUnit.kind == PackKind.REEL).order_by(PackUnit.id)
        .limit(2)).all()
    qa = _user(session, QA)
    with simulated_time(received + timedelta(hours=2)):
        complaint = services.open_complaint(session, qa, {
            "customer": customer, "reference": f"{customer[:4]}-QN-26-0418",
            "vehicle_program": lot_vehicle_program(session, lot),
            "received_at": received,
            "description": "Two reels fail the end-of-line test of the inverter's gate "
                           "driver board: open gate drive on channel B after reflow.",
            "units": [{"scan": reel.code, "failure_mode": "open (wire bond lift)",
                       "count": 3 - i} for i, reel in enumerate(reels)]
            or [{"scan": lot.lot_no, "failure_mode": "open (wire bond lift)", "count": 5}]})
        session.flush()
    start = received + timedelta(hours=3)
    _work(session, qa, complaint, {
        "D0": {"text": "Shipments of the product stopped pending the containment.",
               "internal_note": "Planner informed; no shipment left since.", "done": True},
        "D1": {"text": "Team: QA (lead), wire bond process engineering, test engineering.",
               "owner": QA, "done": True},
        "D2": {"text": "5 units of two reels, open on channel B's gate after the "
                       "customer's reflow; electrically confirmed on the returned units.",
               "done": True}}, start)
    # D3: hold what is still in the plant of the same product.
    suspects = session.scalars(select(Lot.lot_no).where(
        Lot.product_id == lot.product_id, Lot.customer_id == lot.customer_id,
        Lot.state.in_((LotState.COMPLETED,)), Lot.updated_at < received + timedelta(hours=8))
        .order_by(Lot.lot_no).limit(3)).all()
    if suspects:
        with simulated_time(received + timedelta(hours=9)):
            done = trace.contain(session, qa, reason=_reason(session),
                                 comment=f"Complaint {complaint.reference}: bond lift on "
                                         "channel B; hold for pull testing.",
                                 match={"lots": list(suspects)})
            services.link_containment(session, qa, complaint, done.id)
            session.flush()
    _work(session, qa, complaint, {
        "D3": {"text": "Finished goods of the product in the plant held for wire pull "
                       "testing; the customer's stock sorted by electrical test.",
               "done": True}}, received + timedelta(hours=10))
    with simulated_time(received + timedelta(days=4)):
        services.update_step(session, qa, complaint, "D4", {
            "owner": ENGINEER,
            "root_cause_occurrence": "Plasma clean before wire bond skipped on one "
                                     "magazine after a recipe change: poor bond adhesion.",
            "internal_note": "Escape analysis pending: pull test sampling under review."})
        services.update_step(session, qa, complaint, "D5", {"owner": ENGINEER})
        session.flush()


def lot_vehicle_program(session: Session, lot: Lot) -> str | None:
    from mes.shipping.models import Shipment, ShipmentLot

    return session.scalar(select(Shipment.vehicle_program).join(
        ShipmentLot, ShipmentLot.shipment_id == Shipment.id)
        .where(ShipmentLot.lot_id == lot.id).limit(1))


def _closed_complaint(session: Session, end: datetime, customer: str) -> None:
    lot = _shipped_lot(session, customer)
    if lot is None:
        return
    received = max(end - CLOSED_RECEIVED, lot.updated_at + timedelta(days=1)).replace(
        microsecond=0)
    author = _customer_user(session, customer) or _user(session, QA)
    scan = f"{lot.date_code} {lot.trace_code}"
    with simulated_time(received + timedelta(minutes=30)):
        complaint = services.open_complaint(session, author, {
            "customer": customer, "reference": f"{customer[:4]}-8D-0091",
            "vehicle_program": lot_vehicle_program(session, lot), "received_at": received,
            "description": "One unit with a cracked package corner found at incoming "
                           "inspection.",
            "units": [{"scan": scan, "failure_mode": "package crack", "count": 1}]})
        session.flush()
    qa2 = _user(session, QA2)
    with simulated_time(received + timedelta(hours=3)):
        done = trace.contain(session, qa2, reason=_reason(session),
                             comment=f"Complaint {complaint.reference}: package crack.",
                             match={"lots": [lot.lot_no]})
        services.link_containment(session, qa2, complaint, done.id)
        session.flush()
    for row in complaint.steps:
        row.owner = qa2
    _work(session, qa2, complaint, {
        "D0": {"text": "Unit quarantined at the customer; lot traced.", "done": True},
        "D1": {"text": "Team: QA, singulation process engineering.", "done": True},
        "D2": {"text": "One unit, corner crack, lot and date code as marked.", "done": True},
        "D3": {"text": "The lot had all shipped: the customer's stock of it was inspected "
                       "(no further crack found).", "done": True},
    }, received + timedelta(hours=6), timedelta(hours=5))
    _work(session, qa2, complaint, {
        "D4": {"root_cause_occurrence": "Singulation blade worn past its life on one "
                                        "shift.",
               "root_cause_escape": "Final visual inspection sampled corners at 1 in 50.",
               "text": "Worn singulation blade; the sampling plan let it through.",
               "done": True},
        "D5": {"text": "Blade life limit enforced by the tool; corner inspection at 100 %.",
               "done": True},
        "D6": {"verification": "5 lots after the change: 0 cracks in 42,000 units "
                               "inspected.",
               "text": "Implemented and verified on 5 lots.", "done": True},
        "D7": {"text": "PFMEA and control plan of singulation updated.", "done": True},
        "D8": {"text": "Closed with the customer's agreement.", "done": True},
    }, received + timedelta(days=2), timedelta(hours=30))


def load_demo_complaints(session: Session, end: datetime, *, open_for: str,
                         closed_for: str) -> None:
    """The two demo complaints (see the module's docstring), for the customers given."""
    _closed_complaint(session, end, closed_for)
    _open_complaint(session, end, open_for)
