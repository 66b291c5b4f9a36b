"""Holds on lots: reading them, and placing them on one lot or on many at once.

Every function works in the caller's transaction and raises before changing anything when a
rule refuses. Each hold bumps the lot's version counter (it changes the lot's count of open
holds), so a hold racing a move of the same lot makes one of them fail with 409 `stale`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, bindparam, func, insert, select, update
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.orm.attributes import set_committed_value

from mes import audit, texts
from mes.auth.actor import Actor, actor_name
from mes.catalog.models import ReasonCode
from mes.db import utcnow
from mes.errors import Conflict, ErrorCode, NotFound
from mes.events import holds as events
from mes.floor import lifecycle
from mes.floor import services as floor
from mes.floor.models import Lot
from mes.quality.models import FutureHold, Hold
from mes.quality.services.common import CLOSED, active_reason, required_comment
from mes.vocabulary import EventKind, HoldSource, HoldStatus, ReasonKind, SystemText

# --- reading ---------------------------------------------------------------------------

def get_hold(session: Session, hold_id: int) -> Hold:
    """The hold `hold_id` (NotFound otherwise)."""
    hold = session.scalar(select(Hold).where(Hold.id == hold_id).options(
        joinedload(Hold.lot), joinedload(Hold.reason), joinedload(Hold.scrap_reason)))
    if hold is None:
        raise NotFound(_l("No hold %(hold_id)s.", hold_id=hold_id))
    return hold


def hold_query(filters: dict[str, Any]) -> Select[Any]:
    """Holds, newest first; filters `status`, `lot` (a lot number), `source`."""
    stmt = select(Hold).options(joinedload(Hold.lot), joinedload(Hold.reason),
                                joinedload(Hold.scrap_reason))
    if filters.get("status"):
        stmt = stmt.where(Hold.status == filters["status"])
    if filters.get("source"):
        stmt = stmt.where(Hold.source == filters["source"])
    if filters.get("lot"):
        stmt = stmt.where(Hold.lot_id == select(Lot.id).where(
            Lot.lot_no == filters["lot"]).scalar_subquery())
    return stmt.order_by(Hold.id.desc())


def lot_holds(session: Session, lot: Lot, status: str | None = None) -> list[Hold]:
    """The holds of one lot, oldest first (all, or only `open` / `released` ones)."""
    stmt = hold_query({"status": status}).where(Hold.lot_id == lot.id)
    return list(session.scalars(stmt.order_by(None).order_by(Hold.id)))


# --- placing holds ---------------------------------------------------------------------

def _insert_holds(session: Session, rows: list[dict[str, Any]]) -> list[int]:
    """Insert hold rows with one executemany and return their ids in the rows' order. On
    PostgreSQL the ids are drawn from the sequence first, so the insert needs no RETURNING
    (which the driver would rewrite parameter by parameter for thousands of rows)."""
    table = Hold.__table__
    if session.get_bind().dialect.name == "postgresql":
        ids = list(session.scalars(select(func.nextval(func.pg_get_serial_sequence(
            table.name, "id"))).select_from(func.generate_series(1, len(rows)))))
        session.connection().execute(insert(table), [
            {**row, "id": new_id} for row, new_id in zip(rows, ids, strict=True)])
        return ids
    return list(session.connection().execute(
        insert(table).returning(table.c.id, sort_by_parameter_order=True), rows).scalars())


def _load_holds(session: Session, ids: list[int], lots: Sequence[Lot],
                reason: ReasonCode) -> list[Hold]:
    """The new holds by id, in chunks (SQLite limits the parameters of one statement), with
    their lot and reason attached: showing thousands of holds then reads nothing more."""
    found: dict[int, Hold] = {}
    for start in range(0, len(ids), 5000):
        found.update((hold.id, hold) for hold in session.scalars(
            select(Hold).where(Hold.id.in_(ids[start:start + 5000]))))
    holds = [found[hold_id] for hold_id in ids]
    for hold, lot in zip(holds, lots, strict=True):
        set_committed_value(hold, "lot", lot)
        set_committed_value(hold, "reason", reason)
    return holds


def _update_lots(session: Session, lots: Sequence[Lot], now: datetime) -> None:
    """Write the held lots' counts of open holds and audit chain heads in one executemany
    UPDATE under each lot's version counter (the ORM would send one versioned UPDATE per
    lot), then mark the objects as saved. A lot changed meanwhile by someone else matches
    no row, and the whole action is refused as stale."""
    table = Lot.__table__
    stmt = (update(table)
            .where(table.c.id == bindparam("lot_id"), table.c.version == bindparam("seen"))
            .values(open_holds=bindparam("holds"), audit_seq=bindparam("seq"),
                    audit_hash=bindparam("hash"), version=bindparam("next"),
                    updated_at=bindparam("now")))
    rows = [{"lot_id": lot.id, "seen": lot.version, "holds": lot.open_holds,
             "seq": lot.audit_seq, "hash": lot.audit_hash, "next": lot.version + 1,
             "now": now} for lot in lots]
    if session.connection().execute(stmt, rows).rowcount != len(rows):
        raise Conflict(_l("A lot changed at the same time; reload and try again."),
                       code=ErrorCode.STALE)
    for lot, row in zip(lots, rows, strict=True):
        for key, value in (("open_holds", row["holds"]), ("audit_seq", row["seq"]),
                           ("audit_hash", row["hash"]), ("version", row["next"]),
                           ("updated_at", now)):
            set_committed_value(lot, key, value)


def place_holds(session: Session, actor: Actor, lots: Sequence[Lot], reason: ReasonCode,
           comment: str, source: str, *, placed_by: str | None = None,
           rule: FutureHold | None = None, data: dict[str, Any] | None = None,
           text: tuple[SystemText, dict[str, Any]] | None = None) -> list[Hold]:
    """Hold each of `lots` (distinct lots) once: the hold rows, a history event and an
    audit record per lot, an audit record per hold, and each lot's count of open holds.
    A comment the system writes comes as `text`, its code and parameters: the comment is
    then its English (mes.texts), and the code and parameters are kept beside it, on the
    hold and in the history event's data, for pages to show in the reader's language.
    A few statements whatever the number of lots, so a mass hold of thousands of lots
    costs little more than one hold."""
    now = utcnow()
    # Flushed so that no earlier change of these lots waits in the session: the lots are
    # written below by one statement of their own, not by the flush.
    session.flush()
    by = placed_by or actor_name(actor)
    code, params = text if text is not None else (None, None)
    if code is not None:
        comment = texts.english(code, params or {})
    ids = _insert_holds(session, [
        {"lot_id": lot.id, "reason_id": reason.id, "comment": comment, "text_code": code,
         "text_params": params, "source": source, "status": HoldStatus.OPEN,
         "step_code": lot.step_code, "placed_by": by, "placed_at": now,
         "future_hold_id": rule.id if rule else None, "data": data or {}} for lot in lots])
    written = {"text_code": code, "text_params": params} if code is not None else {}
    details = [{"hold": hold_id, "reason": reason.code, "source": source, "comment": comment,
                **written, **(data or {})} for hold_id in ids]
    for lot in lots:
        lot.open_holds += 1
    floor.record_events(session, EventKind.HOLD, actor, list(zip(lots, details, strict=True)),
                        at=now)
    audit.record_many(session, [
        {"actor": actor, "code": "hold:place", "subject_type": "hold",
         "subject_key": str(hold_id), "new_subject": True,
         "data": {"lot": lot.lot_no, "step": lot.step_code, "placed_by": by, **detail}}
        for hold_id, lot, detail in zip(ids, lots, details, strict=True)])
    _update_lots(session, lots, now)
    holds = _load_holds(session, ids, lots, reason)
    events.holds_placed(session, holds)
    lifecycle.lot_holds_changed.send(list(lots), session=session)
    return holds


def _refuse_closed(lot: Lot) -> None:
    if lot.state in CLOSED:
        raise Conflict(_l("Lot %(lot)s is %(state)s; it can no longer be held.", lot=lot.lot_no,
                          state=_l(lot.state)),
                       code=ErrorCode.LOT_CLOSED)


def hold_lot(session: Session, actor: Actor, lot: Lot, *, reason: str, comment: str,
             source: HoldSource = HoldSource.MANUAL) -> Hold:
    """Put one lot on hold. A lot may carry several open holds; queued, running and
    completed lots can be held (a running lot may still be tracked out and stays held).

    Raises InvalidInput (not an active hold reason code, no comment) and Conflict
    `lot_closed` (shipped, scrapped or merged lots).
    """
    hold_reason = active_reason(session, reason, ReasonKind.HOLD, "reason")
    text = required_comment(comment)
    _refuse_closed(lot)
    return place_holds(session, actor, [lot], hold_reason, text, source)[0]
