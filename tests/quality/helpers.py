"""People who place and release holds, and what quality tests compare before and after a
refused call: the floor's view of the database (every lot row, the row counts of lots,
history, holds and audit records) plus every hold's and every future hold's columns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mes.floor.models import Lot
from mes.quality.models import FutureHold, Hold
from tests.floor.helpers import floor_state
from tests.helpers import row_counts


@dataclass(frozen=True)
class Person:
    """An actor as the services see one: a username and a role."""

    username: str
    role: str


QA = Person("qa1", "qa")
QA2 = Person("qa2", "qa")
ADMIN = Person("admin1", "admin")


def quality_state(session: Session) -> dict[str, Any]:
    """The database as quality sees it, read fresh (not from the session's identity map)."""
    state = floor_state(session)
    state["counts"].update(row_counts(session, FutureHold))
    state["holds"] = [tuple(row) for row in session.execute(
        select(Hold.__table__).order_by(Hold.id))]
    state["future_holds"] = [tuple(row) for row in session.execute(
        select(FutureHold.__table__).order_by(FutureHold.id))]
    state["lot_rows"] = [tuple(row) for row in session.execute(
        select(Lot.__table__).order_by(Lot.id))]
    return state


