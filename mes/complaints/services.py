"""Customer complaints and their 8D (IATF 16949 10.2.3 problem solving, 10.2.6 customer
complaints and field failure test analysis; PRODUCT.md "Complaints and 8D").

A complaint names failing units the way the customer sees them (a reel or carton label's
ISO/IEC 15434 message, a pack unit id, a package mark, a lot number): each is resolved to
the customer's lots through the scan resolution (`mes.trace.scan`). On intake the 8D's nine
steps D0..D8 are written with their due times (`due_times`); the plant's QA works them
(`update_step`).

The rules:
- Every unit resolves to at least one lot of the complaint's customer; otherwise the
  complaint is refused naming each unit that did not (422 `unresolved_units`). Another
  customer's unit reads exactly as one that does not exist.
- A customer user records complaints for their own customer only (it is implied).
- The customer's reference is unique per customer (409 `duplicate`).
- D4 is done only with its root cause stated twice: why it occurred and why it escaped
  (409 `root_cause_missing`); D6 only with its verification evidence (409
  `verification_missing`).
- D8 (closure) is done only when D4's two root causes and D6's evidence are stated, every
  hold of the containments run for the complaint is dispositioned (released, or its lot
  scrapped: 409 `containment_open`) and D0..D7 are done (409 `steps_open`); the error names
  all that is missing (`missing`). Closing D8 closes the complaint; a closed complaint
  changes no more (409 `complaint_closed`). A step is done once (409 `step_done`).

Every function works in the caller's transaction, audits what it writes and raises before
changing anything when a rule refuses. Two changes of one step at once: one wins, the other
is 409 `stale` (version counters on the step and the complaint).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask import current_app, has_app_context
from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, exists, func, select
from sqlalchemy.orm import Session, joinedload, selectinload
from sqlalchemy.orm.attributes import flag_modified

from mes import audit
from mes.auth.actor import Actor, actor_name
from mes.auth.models import User
from mes.auth.permissions import Permission, has_permission
from mes.auth.scope import scope_customer, scoped
from mes.catalog.models import Customer
from mes.complaints import publish
from mes.complaints.models import (
    Complaint,
    ComplaintContainment,
    ComplaintLot,
    ComplaintUnit,
    EightDStepRow,
)
from mes.config import DEFAULTS
from mes.db import utcnow
from mes.errors import Conflict, ErrorCode, InvalidInput, NotFound
from mes.floor.models import Lot
from mes.quality.models import Hold
from mes.trace import scan as scanning
from mes.trace.services import get_containment
from mes.vocabulary import (
    ComplaintState,
    EightDStep,
    HoldStatus,
    LotState,
    Role,
)

MAX_UNITS = 200
# How far ahead of the server's clock a receipt time may be (clocks differ a little).
RECEIPT_SLACK = timedelta(minutes=5)
SUBJECT = "complaint"


def _invalid(field_name: str, message: Any) -> InvalidInput:
    return InvalidInput(message, fields={field_name: [message]})


def _config(key: str) -> int:
    if has_app_context():
        return int(current_app.config[key])
    return int(DEFAULTS[key])


def due_times(received_at: datetime) -> dict[str, datetime]:
    """When each 8D step is due, from the complaint's receipt: D0 to D3 (preparation, team,
    problem description, containment) within COMPLAINT_D3_HOURS (24), D4 and D5 (root cause,
    corrective actions) within COMPLAINT_D5_DAYS (10), D6 to D8 (verification, prevention,
    closure) within COMPLAINT_D8_DAYS (60)."""
    d3 = received_at + timedelta(hours=_config("COMPLAINT_D3_HOURS"))
    d5 = received_at + timedelta(days=_config("COMPLAINT_D5_DAYS"))
    d8 = max(received_at + timedelta(days=_config("COMPLAINT_D8_DAYS")), d5)
    due = {}
    for step in EightDStep:
        due[step.value] = d3 if step <= "D3" else d5 if step <= "D5" else d8
    return due


def is_staff(actor: Actor | None) -> bool:
    """Whether `actor` sees the plant's side of a complaint (staff names, internal notes)."""
    return scope_customer(actor) is None


# --- reading ---------------------------------------------------------------------------

def complaint_query(actor: Actor | None = None, *, state: str | None = None,
                    overdue: bool = False, now: datetime | None = None) -> Select[Any]:
    """Complaints, newest receipt first; a customer user's own only. `overdue`: open ones
    with a step not done past its due time."""
    stmt = scoped(select(Complaint).options(
        joinedload(Complaint.customer),
        selectinload(Complaint.steps).joinedload(EightDStepRow.owner),
        selectinload(Complaint.lots).joinedload(ComplaintLot.lot),
        selectinload(Complaint.units), selectinload(Complaint.containments)),
        Complaint.customer_id, actor)
    if state:
        stmt = stmt.where(Complaint.state == state)
    if overdue:
        stmt = stmt.where(Complaint.state == ComplaintState.OPEN, exists().where(
            EightDStepRow.complaint_id == Complaint.id, EightDStepRow.done_at.is_(None),
            EightDStepRow.due_at < (now or utcnow())))
    return stmt.order_by(Complaint.received_at.desc(), Complaint.id.desc())


def get_complaint(session: Session, complaint_id: int, actor: Actor | None = None) -> Complaint:
    """The complaint `complaint_id`; another customer's is NotFound, as if it did not
    exist (as is a number no row can have)."""
    complaint = session.scalar(complaint_query(actor).where(Complaint.id == complaint_id)) \
        if 0 < complaint_id < 2**63 else None
    if complaint is None:
        raise NotFound(_l("No complaint %(complaint_id)s.", complaint_id=complaint_id))
    return complaint


def overdue_steps(session: Session, now: datetime | None = None,
                  limit: int = 50) -> list[EightDStepRow]:
    """The steps of open complaints past their due time and not done, most overdue first
    (the QA home page)."""
    return list(session.scalars(
        select(EightDStepRow).join(Complaint)
        .where(Complaint.state == ComplaintState.OPEN, EightDStepRow.done_at.is_(None),
               EightDStepRow.due_at < (now or utcnow()))
        .options(joinedload(EightDStepRow.complaint).joinedload(Complaint.customer),
                 joinedload(EightDStepRow.owner))
        .order_by(EightDStepRow.due_at, EightDStepRow.complaint_id, EightDStepRow.step)
        .limit(limit)))


def count_overdue(session: Session, now: datetime | None = None) -> int:
    return session.scalar(
        select(func.count()).select_from(EightDStepRow).join(Complaint)
        .where(Complaint.state == ComplaintState.OPEN, EightDStepRow.done_at.is_(None),
               EightDStepRow.due_at < (now or utcnow()))) or 0


# --- containments ----------------------------------------------------------------------

@dataclass
class ContainmentState:
    """A containment run for a complaint, as the complaint shows it: the lots it held and
    the holds still open (not dispositioned)."""

    id: str
    at: datetime | None
    by: str
    reason: str
    lots_held: list[str]
    open_holds: list[int] = field(default_factory=list)
    # Lot ids of the lots held, to show customers their own only.
    lot_customers: dict[str, int] = field(default_factory=dict)


def containment_states(session: Session, complaint: Complaint) -> list[ContainmentState]:
    """The containments linked to the complaint, each with its open holds: a hold is
    dispositioned when it is released (whatever the disposition) or its lot was scrapped
    whole."""
    out = []
    for link in complaint.containments:
        try:
            recorded = get_containment(session, link.containment_id)
        except NotFound:
            recorded = {"id": link.containment_id, "at": None, "by": "", "reason": "",
                        "holds": [], "lots_held": []}
        hold_ids = [int(h) for h in recorded.get("holds", [])]
        open_holds = []
        if hold_ids:
            open_holds = list(session.scalars(
                select(Hold.id).join(Lot, Lot.id == Hold.lot_id)
                .where(Hold.id.in_(hold_ids), Hold.status == HoldStatus.OPEN,
                       Lot.state != LotState.SCRAPPED).order_by(Hold.id)))
        lots_held = list(recorded.get("lots_held", []))
        owners: dict[str, int] = {}
        if lots_held:
            owners = {lot_no: customer_id for lot_no, customer_id in session.execute(
                select(Lot.lot_no, Lot.customer_id).where(Lot.lot_no.in_(lots_held)))}
        out.append(ContainmentState(
            id=link.containment_id, at=recorded.get("at"), by=str(recorded.get("by") or ""),
            reason=str(recorded.get("reason") or ""), lots_held=lots_held,
            open_holds=open_holds, lot_customers=owners))
    return out


def link_containment(session: Session, actor: Actor, complaint: Complaint,
                     containment_id: str) -> ComplaintContainment:
    """Link a recorded containment (mes.trace.services.contain) to the complaint. Raises
    Conflict `complaint_closed` on a closed complaint, NotFound for an unknown
    containment."""
    if complaint.state == ComplaintState.CLOSED:
        raise _closed(complaint)
    get_containment(session, containment_id)
    link = ComplaintContainment(containment_id=containment_id, linked_by=actor_name(actor))
    complaint.containments.append(link)
    # The complaint's version counter moves too: a containment linked while the complaint
    # is being closed loses one of the two (409 `stale`), never both stand.
    flag_modified(complaint, "state")
    session.flush()
    audit.record(session, actor=actor, code="complaint:contain", subject_type=SUBJECT,
                 subject_key=str(complaint.id), data={"containment": containment_id})
    return link


# --- intake ----------------------------------------------------------------------------

def _customer(session: Session, actor: Actor, code: str | None) -> Customer:
    own = scope_customer(actor)
    if own is not None:
        customer = session.get(Customer, own)
        assert customer is not None
        if code and code != customer.code:
            raise _invalid("customer", _l("Unknown customer %(code)s.", code=code))
        return customer
    if not code:
        raise _invalid("customer", _l("Name the customer."))
    customer = session.scalar(select(Customer).where(Customer.code == code))
    if customer is None:
        raise _invalid("customer", _l("Unknown customer %(code)s.", code=code))
    return customer


@dataclass
class Resolved:
    unit: dict[str, Any]
    kind: str
    lots: list[Lot]


def resolve_units(session: Session, actor: Actor, customer: Customer,
                  units: Sequence[dict[str, Any]]) -> list[Resolved]:
    """Each unit's scan resolved to lots of `customer` (mes.trace.scan). Raises InvalidInput
    `unresolved_units` naming every unit that resolves to none of the customer's lots
    (another customer's unit is not told apart from one that does not exist)."""
    resolved, unresolved = [], []
    for unit in units:
        try:
            found = scanning.scan(session, unit["scan"], actor)
        except NotFound:
            found = None
        lots: list[Lot] = []
        if found is not None and found.lots:
            lots = list(session.scalars(select(Lot).where(
                Lot.lot_no.in_(found.lots), Lot.customer_id == customer.id)
                .order_by(Lot.lot_no)))
        if not lots or found is None:
            unresolved.append(unit["scan"])
            continue
        resolved.append(Resolved(unit=unit, kind=found.kind, lots=lots))
    if unresolved:
        shown = [scanning.iso15434.human(text[:80]) for text in unresolved]
        raise InvalidInput(
            _l("No lot of %(customer)s matches %(units)s.", customer=customer.code,
               units="; ".join(shown)),
            code=ErrorCode.UNRESOLVED_UNITS,
            fields={"units": {i: [_l("No lot of the customer matches %(scan)s.",
                                     scan=scanning.iso15434.human(unit["scan"][:80]))]
                              for i, unit in enumerate(units) if unit["scan"] in unresolved}},
            extra={"unresolved": list(unresolved)})
    return resolved


def open_complaint(session: Session, actor: Actor, data: dict[str, Any]) -> Complaint:
    """Record a complaint: `customer` (code; implied for a customer user), `reference` (the
    customer's, unique per customer), `vehicle_program`, `received_at` (not in the future),
    `description` and `units` ([{scan, failure_mode, count}], 1 to 200), with the lots the
    units resolve to and the 8D's steps D0..D8 with their due times (`due_times`). A QA
    user recording it owns every step; a complaint a customer recorded has no owners yet.

    Raises InvalidInput (unknown customer; a receipt in the future; no units; code
    `unresolved_units` naming each unit that resolves to no lot of the customer) and
    Conflict `duplicate` (the customer's reference is taken).
    """
    customer = _customer(session, actor, data.get("customer"))
    received_at: datetime = data["received_at"]
    if received_at > utcnow() + RECEIPT_SLACK:
        raise _invalid("received_at", _l("The complaint cannot be received in the future."))
    units = list(data.get("units") or [])
    if not units or len(units) > MAX_UNITS:
        raise _invalid("units", _l("Name 1 to %(max)s failing units.", max=MAX_UNITS))
    reference = data["reference"].strip()
    if not reference:
        raise _invalid("reference", _l("Give the customer's reference."))
    resolved = resolve_units(session, actor, customer, units)
    taken = session.scalar(select(Complaint.id).where(
        Complaint.customer_id == customer.id, Complaint.reference == reference))
    if taken is not None:
        raise Conflict(_l("%(customer)s's complaint %(reference)s is recorded already (%(id)s).",
                          customer=customer.code, reference=reference, id=taken),
                       code=ErrorCode.DUPLICATE)
    owner = actor if isinstance(actor, User) and actor.role != Role.CUSTOMER \
        and has_permission(actor, Permission.COMPLAINT_MANAGE) else None
    who = actor_name(actor)
    complaint = Complaint(customer=customer, reference=reference,
                          vehicle_program=(data.get("vehicle_program") or "").strip() or None,
                          received_at=received_at, description=data["description"].strip(),
                          state=ComplaintState.OPEN, created_by=who, created_at=utcnow())
    seen: set[int] = set()
    for item in resolved:
        unit = ComplaintUnit(scan=item.unit["scan"], kind=item.kind,
                             failure_mode=item.unit["failure_mode"].strip(),
                             count=item.unit["count"])
        complaint.units.append(unit)
        for lot in item.lots:
            if lot.id not in seen:
                seen.add(lot.id)
                complaint.lots.append(ComplaintLot(lot=lot, unit=unit))
    for step, due in due_times(received_at).items():
        complaint.steps.append(EightDStepRow(step=step, due_at=due, owner=owner))
    session.add(complaint)
    # Flushed for the id the audit record names.
    session.flush()
    audit.record(session, actor=actor, code="complaint:open", subject_type=SUBJECT,
                 subject_key=str(complaint.id), new_subject=True,
                 data={"customer": customer.code, "reference": reference,
                       "received_at": received_at.isoformat(),
                       "vehicle_program": complaint.vehicle_program,
                       "units": [{"scan": u.scan, "kind": u.kind,
                                  "failure_mode": u.failure_mode, "count": u.count}
                                 for u in complaint.units],
                       "lots": sorted(link.lot.lot_no for link in complaint.lots)})
    publish.created(session, complaint)
    return complaint


# --- the 8D ----------------------------------------------------------------------------

def _closed(complaint: Complaint) -> Conflict:
    return Conflict(_l("Complaint %(id)s is closed.", id=complaint.id),
                    code=ErrorCode.COMPLAINT_CLOSED)


def _step(complaint: Complaint, step: str) -> EightDStepRow:
    row = next((s for s in complaint.steps if s.step == step), None)
    if row is None:
        raise NotFound(_l("No 8D step %(step)s.", step=step))
    return row


def _owner(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.active or user.role == Role.CUSTOMER \
            or not has_permission(user, Permission.COMPLAINT_READ):
        raise _invalid("owner", _l("No plant user %(name)s who can work complaints.",
                                   name=username))
    return user


# The tokens `missing` lists when D8 cannot close, in the order they are checked; the first
# one's code is the error's.
MISSING_CODES = {"root_cause_occurrence": ErrorCode.ROOT_CAUSE_MISSING,
                 "root_cause_escape": ErrorCode.ROOT_CAUSE_MISSING,
                 "verification": ErrorCode.VERIFICATION_MISSING,
                 "containment_holds": ErrorCode.CONTAINMENT_OPEN,
                 "steps": ErrorCode.STEPS_OPEN}


def closure_missing(session: Session, complaint: Complaint) -> dict[str, Any]:
    """What D8 still lacks (empty when it may close): the tokens of MISSING_CODES with
    what they refer to (the open holds' ids, the steps not done)."""
    steps = {row.step: row for row in complaint.steps}
    missing: dict[str, Any] = {}
    d4, d6 = steps[EightDStep.D4], steps[EightDStep.D6]
    if not (d4.root_cause_occurrence or "").strip():
        missing["root_cause_occurrence"] = True
    if not (d4.root_cause_escape or "").strip():
        missing["root_cause_escape"] = True
    if not (d6.verification or "").strip():
        missing["verification"] = True
    holds = [h for state in containment_states(session, complaint) for h in state.open_holds]
    if holds:
        missing["containment_holds"] = holds
    open_steps = [s for s, row in steps.items() if s != EightDStep.D8 and row.done_at is None]
    if open_steps:
        missing["steps"] = open_steps
    return missing


def _refuse_closure(complaint: Complaint, missing: dict[str, Any]) -> Conflict:
    parts = []
    if "root_cause_occurrence" in missing or "root_cause_escape" in missing:
        parts.append(str(_l("D4's root cause (why it occurred and why it escaped)")))
    if "verification" in missing:
        parts.append(str(_l("D6's verification evidence")))
    if "containment_holds" in missing:
        parts.append(str(_l("a disposition of the containment holds %(holds)s",
                            holds=", ".join(str(h) for h in missing["containment_holds"]))))
    if "steps" in missing:
        parts.append(str(_l("steps %(steps)s done", steps=", ".join(missing["steps"]))))
    first = next(iter(missing))
    return Conflict(_l("Complaint %(id)s cannot close: it needs %(missing)s.",
                       id=complaint.id, missing="; ".join(parts)),
                    code=MISSING_CODES[first], extra={"missing": list(missing)})


STEP_FIELDS = ("owner", "text", "internal_note", "root_cause_occurrence", "root_cause_escape",
               "verification", "done")


def update_step(session: Session, actor: Actor, complaint: Complaint, step: str,
                data: dict[str, Any]) -> EightDStepRow:
    """Change one 8D step: `owner` (a plant user's name), `text` (customer-facing),
    `internal_note`, for D4 `root_cause_occurrence` and `root_cause_escape`, for D6
    `verification`, and `done: true` (the step is done now, by the actor). Done D8 closes
    the complaint.

    Raises NotFound (no such step), InvalidInput (an unknown owner; a root cause on another
    step than D4, verification on another than D6; `done` other than true), Conflict
    `complaint_closed`, `step_done` (done twice), `root_cause_missing` (D4 without both root
    causes), `verification_missing` (D6 without evidence) and, for D8, the codes of
    `closure_missing` with `missing` listing all.
    """
    row = _step(complaint, step)
    if complaint.state == ComplaintState.CLOSED:
        raise _closed(complaint)
    if data.get("done") is False:
        raise _invalid("done", _l("A done step stays done; it cannot be reopened."))
    for key, only in (("root_cause_occurrence", "D4"), ("root_cause_escape", "D4"),
                      ("verification", "D6")):
        if data.get(key) is not None and step != only:
            raise _invalid(key, _l("Only step %(step)s takes this.", step=only))
    done = data.get("done") is True
    if done and row.done_at is not None:
        raise Conflict(_l("Step %(step)s of complaint %(id)s is done already.", step=step,
                          id=complaint.id), code=ErrorCode.STEP_DONE)
    owner = _owner(session, data["owner"]) if data.get("owner") else None
    changes: dict[str, Any] = {}
    if owner is not None and owner.id != row.owner_id:
        row.owner = owner
        changes["owner"] = owner.username
    for key in ("text", "internal_note", "root_cause_occurrence", "root_cause_escape",
                "verification"):
        if data.get(key) is not None and data[key].strip() != (getattr(row, key) or ""):
            setattr(row, key, data[key].strip())
            changes[key] = getattr(row, key)
    if done:
        if step == EightDStep.D4 and not ((row.root_cause_occurrence or "").strip()
                                          and (row.root_cause_escape or "").strip()):
            raise Conflict(_l("D4 is done once its root cause says why the failure occurred "
                              "and why it escaped."), code=ErrorCode.ROOT_CAUSE_MISSING,
                           extra={"missing": [k for k in ("root_cause_occurrence",
                                                          "root_cause_escape")
                                              if not (getattr(row, k) or "").strip()]})
        if step == EightDStep.D6 and not (row.verification or "").strip():
            raise Conflict(_l("D6 is done once its verification evidence is stated."),
                           code=ErrorCode.VERIFICATION_MISSING,
                           extra={"missing": ["verification"]})
        if step == EightDStep.D8:
            missing = closure_missing(session, complaint)
            if missing:
                raise _refuse_closure(complaint, missing)
        now = utcnow()
        row.done_at = now
        row.done_by = actor_name(actor)
        changes["done"] = True
        if step == EightDStep.D8:
            complaint.state = ComplaintState.CLOSED
            complaint.closed_at = now
            complaint.closed_by = row.done_by
    if not changes:
        return row
    audit.record(session, actor=actor, code="complaint:8d", subject_type=SUBJECT,
                 subject_key=str(complaint.id), data={"step": step, **changes})
    # Written now, so that a simultaneous change of the step (or closure) loses here.
    session.flush()
    if done:
        publish.step_completed(session, row)
        if step == EightDStep.D8:
            publish.closed(session, complaint)
    return row
