"""Containment from a commonality factor: the factor becomes a containment match
(mes.quality.services.criterion) and the containment (mes.trace.services.contain) is linked
to the complaints it was run for."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from mes import audit
from mes.auth.actor import Actor
from mes.commonality.services import FactorKind
from mes.complaints import services as complaints_service
from mes.complaints.models import Complaint, ComplaintContainment
from mes.errors import Conflict, ErrorCode, InvalidInput
from mes.trace import services as trace
from mes.vocabulary import ComplaintState

# The audit subject of a complaint (shared with the complaint's own records).
COMPLAINT = "complaint"


def _invalid(message: Any) -> InvalidInput:
    return InvalidInput(message, fields={"factor": [message]})


def _split(value: str, kind: str) -> tuple[str, str]:
    first, sep, last = value.rpartition("/")
    if not sep or not first or not last:
        raise _invalid(_l("A %(kind)s factor's value reads %(shape)s.",
                          kind=FactorKind.word(kind), shape="A/B"))
    return first, last


def factor_match(factor: dict[str, Any]) -> dict[str, Any]:
    """The containment match that selects the lots having `factor` ({kind, value,
    window?}); the window (since, until) is required for equipment. Raises InvalidInput
    (field `factor`) for a value of the wrong shape."""
    kind, value = factor["kind"], factor["value"].strip()
    if kind in (FactorKind.FAB_LOT, FactorKind.MATERIAL_LOT, FactorKind.DATE_CODE):
        return {kind: value}
    if kind == FactorKind.WAFER:
        fab_lot, wafer = _split(value, kind)
        return {"wafer": wafer, "fab_lot": fab_lot}
    if kind == FactorKind.ROUTE_VERSION:
        route, version = _split(value, kind)
        if not version.isdigit():
            raise _invalid(_l("A route version is a whole number."))
        return {"route": route, "route_version": int(version)}
    if kind == FactorKind.BOM_REVISION:
        product, revision = _split(value, kind)
        return {"product": product, "bom_revision": revision}
    window = factor.get("window") or {}
    since, until = window.get("since"), window.get("until")
    if not isinstance(since, datetime):
        raise _invalid(_l("An equipment factor needs its window (since, until)."))
    return {"equipment": value, "since": since, "until": until}


def contain_factor(session: Session, actor: Actor, complaints: list[Complaint], *,
                   factor: dict[str, Any], reason: str, comment: str) -> trace.Containment:
    """Run a containment whose match is `factor` and link it to each of `complaints`, all
    in the caller's transaction. Raises as mes.trace.services.contain (reason, comment, no
    lot matching: 422; a lot changed meanwhile: 409 stale) and InvalidInput for a factor
    that reads as no match; nothing is held or linked then."""
    for complaint in complaints:
        if complaint.state == ComplaintState.CLOSED:
            raise Conflict(_l("Complaint %(reference)s is closed.",
                              reference=complaint.reference), code=ErrorCode.COMPLAINT_CLOSED)
    match = factor_match(factor)
    result = trace.contain(session, actor, reason=reason, comment=comment, match=match)
    stored = {"kind": factor["kind"], "value": factor["value"].strip()}
    if factor["kind"] == FactorKind.EQUIPMENT:
        stored["step"] = factor.get("step")
        stored["window"] = {"since": result.match.get("since"),
                            "until": result.match.get("until")}
    for complaint in complaints:
        complaints_service.link_containment(session, actor, complaint, result.id)
        audit.record(session, actor=actor, code="complaint:factor", subject_type=COMPLAINT,
                     subject_key=str(complaint.id),
                     data={"containment": result.id, "factor": stored})
    return result


def linked(session: Session, complaint_ids: list[int]) -> list[str]:
    """The ids of the containments linked to these complaints, oldest first."""
    return list(dict.fromkeys(session.scalars(
        select(ComplaintContainment.containment_id)
        .where(ComplaintContainment.complaint_id.in_(complaint_ids))
        .order_by(ComplaintContainment.linked_at))))
