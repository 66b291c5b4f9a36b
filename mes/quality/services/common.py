"""What the quality rules share: the lot states that decide what may be held, the system
actor, and the checks of a comment and a reason code.
"""

from __future__ import annotations

from collections.abc import Callable

from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString
from sqlalchemy import select
from sqlalchemy.orm import Session

from mes.catalog.models import ReasonCode
from mes.errors import InvalidInput
from mes.vocabulary import LotState, ReasonKind

# Lots still in the plant: these can be held. Shipped lots are reported, never held;
# scrapped and merged lots are passed over.
IN_PLANT = (LotState.QUEUED, LotState.RUNNING, LotState.COMPLETED, LotState.BANKED)
SHIPPED = (LotState.SHIPPED,)
PASSED_OVER = (LotState.SCRAPPED, LotState.MERGED)
CLOSED = SHIPPED + PASSED_OVER


# "X is not a hold reason code.", one sentence per kind (the kind is a word of the sentence).
NOT_OF_KIND: dict[ReasonKind, Callable[..., LazyString]] = {
    ReasonKind.REJECT: lambda **values: _l("%(value)s is not a reject reason code.", **values),
    ReasonKind.HOLD: lambda **values: _l("%(value)s is not a hold reason code.", **values),
    ReasonKind.SCRAP: lambda **values: _l("%(value)s is not a scrap reason code.", **values),
}


def invalid(field_name: str, message: str | LazyString) -> InvalidInput:
    return InvalidInput(message, fields={field_name: [message]})


def required_comment(text: str | None, field_name: str = "comment") -> str:
    text = (text or "").strip()
    if not text:
        raise invalid(field_name, _l("A comment is required."))
    return text


def active_reason(session: Session, code: str | None, kind: ReasonKind,
                  field_name: str) -> ReasonCode:
    reason = session.scalar(select(ReasonCode).where(ReasonCode.code == code)) if code else None
    if reason is None or reason.kind != kind:
        raise invalid(field_name, NOT_OF_KIND[kind](value=code or _l("Nothing")))
    if not reason.active:
        raise invalid(field_name, _l("Reason code %(code)s is retired.", code=code))
    return reason
