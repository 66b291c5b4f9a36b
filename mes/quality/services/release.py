"""Release of a hold with a disposition (release, rework, scrap, use as is), under the
two-person rule.

Each release bumps the lot's version counter (it changes the lot's count of open holds), so
a release racing a move of the same lot makes one of them fail with 409 `stale`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from mes import audit, texts
from mes.auth.actor import Actor, actor_name
from mes.auth.models import User
from mes.auth.permissions import ROLE_PERMISSIONS, Permission
from mes.catalog.models import ReasonCode
from mes.catalog.services import StepInfo
from mes.db import utcnow
from mes.errors import Conflict, DomainError, ErrorCode, InvalidInput
from mes.events import holds as events
from mes.floor import lifecycle
from mes.floor import services as floor
from mes.floor.models import Lot
from mes.quality.models import Hold
from mes.quality.services.common import CLOSED, active_reason, invalid, required_comment
from mes.quality.services.future import on_arrival
from mes.vocabulary import (
    Disposition,
    EventKind,
    HoldStatus,
    LotState,
    ReasonKind,
    Role,
)

# The roles whose permissions include releasing holds (mes.auth.permissions).
RELEASING_ROLES = tuple(role for role in Role
                        if Permission.HOLD_RELEASE in ROLE_PERMISSIONS[role])

_DISPOSITION_FIELDS: dict[str, set[str]] = {
    Disposition.RELEASE: set(), Disposition.REWORK: {"rework_step"},
    Disposition.SCRAP: {"scrap_qty", "scrap_reason"}, Disposition.USE_AS_IS: {"concession"}}


def _check_fields(disposition: str, data: dict[str, Any]) -> None:
    needed = _DISPOSITION_FIELDS[disposition]
    foreign = {name for names in _DISPOSITION_FIELDS.values() for name in names} - needed
    given = {name for name in foreign if data.get(name) not in (None, "")}
    word = Disposition(disposition).label
    if given:
        raise InvalidInput(_l("Fields that belong to another disposition: %(items)s.",
                              items=texts.field_words(sorted(given))),
                           fields={name: [_l("Only with another disposition than %(disposition)s.",
                                             disposition=word)] for name in sorted(given)})
    missing = {name for name in needed if data.get(name) in (None, "")
               or (isinstance(data.get(name), str) and not data[name].strip())}
    if missing:
        raise InvalidInput(_l("Disposition %(disposition)s needs %(items)s.",
                              disposition=word, items=texts.field_words(sorted(missing))),
                           fields={name: [_l("Required for the disposition %(disposition)s.",
                                             disposition=word)] for name in sorted(missing)})


def rework_steps(lot: Lot) -> list[StepInfo]:
    """The steps a rework disposition may send `lot` back to: the steps of its own route
    version before its current step (a completed lot has done its last step too, so it
    may go back to it as well)."""
    limit = lot.step_seq if lot.state == LotState.COMPLETED else lot.step_seq - 1
    return [step for step in floor.route_steps(lot) if step.seq <= limit]


def _rework_target(lot: Lot, code: str) -> StepInfo:
    steps = floor.route_steps(lot)
    target = next((s for s in steps if s.code == code), None)
    if target is None:
        raise invalid("rework_step", _l("%(code)s is not a step of route %(code2)s version "
                                         "%(version)s.", code=code, code2=lot.route.code,
                                         version=lot.route.version))
    if target not in rework_steps(lot):
        raise invalid("rework_step", _l("%(code)s is not before the lot's current step "
                                         "%(step_code)s.", code=code, step_code=lot.step_code))
    return target


def _refuse_moving(lot: Lot, disposition: str) -> None:
    if lot.state == LotState.RUNNING:
        raise Conflict(_l("Lot %(lot)s is running; the disposition %(disposition)s waits until "
                          "after track-out.", lot=lot.lot_no,
                          disposition=Disposition(disposition).label),
                       code=ErrorCode.ALREADY_RUNNING)
    if lot.state in CLOSED:
        raise Conflict(_l("Lot %(lot)s is %(state)s.", lot=lot.lot_no, state=_l(lot.state)),
                       code=ErrorCode.LOT_CLOSED)


def release_refusal(actor: Actor, hold: Hold) -> LazyString | None:
    """Why `actor` may not release `hold` before trying, or None when they may (an admin
    who placed it may, with an override reason). The rules are the ones `release_hold`
    applies: the hold must be open, the person needs a role that releases holds (QA or
    admin), and the person who placed a hold may not release it (two-person rule)."""
    if hold.status != HoldStatus.OPEN:
        return _l("The hold is not open.")
    role = None if isinstance(actor, str) else actor.role
    if role not in RELEASING_ROLES:
        return _l("Releasing holds is for QA engineers and admins.")
    if actor_name(actor) == hold.placed_by and role != Role.ADMIN:
        return _l("You placed this hold: under the two-person rule another person must "
                  "release it.")
    return None


def releasers(session: Session, hold: Hold) -> list[str]:
    """The active users who may release `hold`: QA engineers and admins, except the person
    who placed it (an admin who placed it may still, with a recorded override reason)."""
    return list(session.scalars(
        select(User.username).where(User.role.in_(RELEASING_ROLES), User.active.is_(True),
                                    User.username != hold.placed_by)
        .order_by(User.username)))


def _two_person(actor: Actor, hold: Hold, override: str | None) -> str | None:
    """The override reason recorded, or None when none is needed; raises when the person
    who placed the hold releases it without an admin's recorded override."""
    if actor_name(actor) != hold.placed_by:
        return None
    reason = (override or "").strip()
    if not isinstance(actor, str) and actor.role == Role.ADMIN and reason:
        return reason
    raise Conflict(_l("The person who placed a hold may not release it; another person must (an "
                      "admin may override with a recorded reason)."),
                   code=ErrorCode.TWO_PERSON_RULE)


def release_hold(session: Session, actor: Actor, hold: Hold, data: dict[str, Any]) -> Hold:
    """Release an open hold with a disposition and a comment:

    - `release`: the lot continues;
    - `rework`: `rework_step`, a step of the lot's own route version before its current
      step (a completed lot may also go back to its last step): the lot goes back there,
      queued, and meets that step's future holds;
    - `scrap`: `scrap_qty` (1 to the lot's quantity) with `scrap_reason`, a scrap reason
      code: the quantity goes down (a history event keeps the count), and scrapping all
      of it ends the lot as scrapped;
    - `use_as_is`: `concession`, the customer's concession reference.

    The lot is free when its last open hold is released. The person who placed the hold
    may not release it; an admin may, giving `override_reason` (recorded).

    Raises Conflict `not_open`, `two_person_rule`, `already_running` (rework or scrap of a
    running lot), `lot_closed` (rework or scrap of a lot that left the plant), and
    InvalidInput for a missing comment, a missing field of the disposition or a field of
    another one, a rework step not before the current one, a scrap quantity out of range
    or a reason that is not an active scrap code.
    """
    if hold.status != HoldStatus.OPEN:
        raise Conflict(_l("Hold %(hold_id)s is not open (it is %(status)s).", hold_id=hold.id,
                          status=_l(hold.status)), code=ErrorCode.NOT_OPEN)
    disposition = data.get("disposition")
    if disposition not in _DISPOSITION_FIELDS:
        raise invalid("disposition", _l("Choose a disposition: %(choices)s.", choices=LazyString(
            lambda: "; ".join(str(member.label) for member in Disposition))))
    text = required_comment(data.get("comment"))
    _check_fields(disposition, data)
    lot = hold.lot
    target: StepInfo | None = None
    scrap_reason: ReasonCode | None = None
    if disposition == Disposition.REWORK:
        target = _rework_target(lot, data["rework_step"])
    elif disposition == Disposition.SCRAP:
        qty = data["scrap_qty"]
        if not isinstance(qty, int) or not 1 <= qty <= lot.quantity:
            raise invalid("scrap_qty", _l("Scrap 1 to %(quantity)s units.",
                                           quantity=lot.quantity))
        scrap_reason = active_reason(session, data["scrap_reason"], ReasonKind.SCRAP,
                                     "scrap_reason")
    override = _two_person(actor, hold, data.get("override_reason"))
    if disposition in (Disposition.REWORK, Disposition.SCRAP):
        _refuse_moving(lot, disposition)

    now = utcnow()
    details: dict[str, Any] = {"hold": hold.id, "disposition": disposition, "comment": text}
    if target is not None:
        from_step = lot.step_code
        lot.step_seq, lot.step_code = target.seq, target.code
        lot.state, lot.arrived_at = LotState.QUEUED, now
        details["rework_step"] = target.code
        floor.record_event(session, lot, EventKind.REWORK, actor, at=now,
                           data={"hold": hold.id, "from_step": from_step})
    elif scrap_reason is not None:
        before = lot.quantity
        lot.quantity -= data["scrap_qty"]
        if lot.quantity == 0:
            lot.state = LotState.SCRAPPED
        details.update(scrap_qty=data["scrap_qty"], scrap_reason=scrap_reason.code)
        floor.record_event(session, lot, EventKind.SCRAP, actor, qty_in=before,
                           qty_out=lot.quantity, at=now,
                           data={"hold": hold.id, "reason": scrap_reason.code,
                                 "qty": data["scrap_qty"]})
    elif disposition == Disposition.USE_AS_IS:
        details["concession"] = data["concession"].strip()
    if override:
        details["override_reason"] = override

    hold.status, hold.released_by, hold.released_at = HoldStatus.RELEASED, actor_name(actor), now
    hold.disposition, hold.release_comment = disposition, text
    hold.rework_step = details.get("rework_step")
    hold.scrap_qty = details.get("scrap_qty")
    hold.scrap_reason = scrap_reason
    hold.concession = details.get("concession")
    hold.override_reason = override
    lot.open_holds = max(0, lot.open_holds - 1)
    floor.record_event(session, lot, EventKind.RELEASE, actor, at=now, data=details)
    audit.record(session, actor=actor, code="hold:release", subject_type="hold",
                 subject_key=str(hold.id), data={"lot": lot.lot_no, **details})
    events.hold_released(session, hold)
    if target is not None:
        on_arrival(session, actor, lot)
    lifecycle.lot_holds_changed.send([lot], session=session)
    return hold


def _field_messages(refused: DomainError) -> LazyString:
    """A refusal's messages per field, each after its field's word, else its message."""
    def text() -> str:
        found = [_l("%(field)s: %(message)s", field=texts.field_label(name), message=m)
                 for name, msgs in (refused.fields or {}).items() for m in msgs]
        return " ".join(map(str, found)) or str(refused.message)
    return LazyString(text)


def release_holds(session: Session, actor: Actor, hold_ids: Sequence[int],
                  data: dict[str, Any]) -> list[Hold]:
    """Release several holds with one disposition and comment (the fields of
    `release_hold`), all or nothing: each in the order given, as `release_hold` would,
    under the same rules (the two-person rule included). A hold named twice is released
    once.

    Raises InvalidInput (field `holds`) when no hold is named or one does not exist. When
    any hold is refused, none is released, and one error gathers every hold's refusal in
    `fields["holds"]`: a Conflict with the code of the first hold refused by a conflict
    when there is one, else the first refusal's error class and code.
    """
    ids = list(dict.fromkeys(hold_ids))
    if not ids:
        raise invalid("holds", _l("Name at least one hold."))
    found = {hold.id: hold for hold in session.scalars(
        select(Hold).where(Hold.id.in_(ids)).options(joinedload(Hold.lot)))}
    unknown = [str(hold_id) for hold_id in ids if hold_id not in found]
    if unknown:
        raise invalid("holds", _l("Unknown hold %(items)s.", items=", ".join(unknown)))
    refusals: list[tuple[int, DomainError]] = []
    released: list[Hold] = []
    # A savepoint: a refusal undoes the holds already released, so the caller (a page
    # showing the queue again) reads the holds as they were.
    savepoint = session.begin_nested()
    for hold_id in ids:
        try:
            released.append(release_hold(session, actor, found[hold_id], data))
        except DomainError as refused:
            refusals.append((hold_id, refused))
    if not refusals:
        savepoint.commit()
        return released
    savepoint.rollback()
    lines = [_l("Hold %(id)d: %(message)s", id=hold_id, message=_field_messages(refused))
             for hold_id, refused in refusals]
    first = next((refused for _id, refused in refusals if isinstance(refused, Conflict)),
                 refusals[0][1])
    message = _l("%(n)d of %(total)d hold(s) refused; none was released.",
                 n=len(refusals), total=len(ids))
    raise type(first)(message, code=first.code, fields={"holds": lines})
