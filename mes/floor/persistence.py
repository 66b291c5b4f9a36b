"""How the shop floor writes the rows every move touches: plain statements instead of the
unit of work.

A track-in or track-out writes a history event, its audit record, a step run and the lot,
tool and run rows. As ORM objects their bookkeeping at the flush cost more than the rest of
the move, so these rows are written here by statements built once, and the loaded objects
are marked saved with the values written. The rules of the moves stay in
`mes.floor.services`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import Insert, Update, bindparam, insert, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from mes import audit
from mes.audit.models import AuditEvent
from mes.auth.actor import Actor, actor_name
from mes.db import utcnow
from mes.errors import Conflict, ErrorCode
from mes.floor.models import Lot, LotEvent, StepRun


@dataclass
class ChainHead:
    """A lot's audit chain head as `audit.next_record` moves it. The record is computed on
    this stand-in rather than on the lot, so that the lot object is not marked changed:
    the caller saves the new head itself, with the lot's row (`write_row`) or by setting it
    on the lot for the flush."""

    audit_seq: int
    audit_hash: str


_INSERT_EVENT = insert(LotEvent.__table__)


def _insert_event_and_record() -> Insert:
    events, records = LotEvent.__table__, AuditEvent.__table__
    event_cte = insert(events).values({
        column.name: bindparam(f"e_{column.name}", type_=column.type)
        for column in events.c if column.name != "id"}).cte("new_event")
    return insert(records).values({
        column.name: bindparam(f"a_{column.name}", type_=column.type)
        for column in records.c if column.name != "id"}).add_cte(event_cte)


_INSERT_EVENT_AND_RECORD = _insert_event_and_record()
_INSERT_RUN = insert(StepRun.__table__).returning(StepRun.__table__.c.id)


def write_event(session: Session, lot: Lot, kind: str, actor: Actor, *,
                step: str | None = None, equipment: str | None = None,
                qty_in: int | None = None, qty_out: int | None = None,
                at: datetime | None = None,
                data: dict[str, Any] | None = None) -> tuple[int, str]:
    """INSERT one history event of the lot (whose row must exist) and its audit record, at
    once, and return the lot's new audit chain head (seq, hash), which the caller saves;
    the lot object itself is left as it was."""
    step_code = step if step is not None else lot.step_code
    row = {"lot_id": lot.id, "kind": kind, "at": at or utcnow(), "by": actor_name(actor),
           "step_code": step_code, "equipment": equipment, "qty_in": qty_in,
           "qty_out": qty_out, "data": data or {}}
    head = ChainHead(lot.audit_seq, lot.audit_hash)
    record = audit.next_record(
        session, actor=actor, code=f"lot:{kind}", subject_type="lot", subject_key=lot.lot_no,
        head_on=head, data={"step": step_code, "equipment": equipment, "qty_in": qty_in,
                            "qty_out": qty_out, **(data or {})})
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        # Both rows in one statement (a data-modifying WITH, which SQLite lacks).
        connection.execute(_INSERT_EVENT_AND_RECORD, {
            **{f"e_{key}": value for key, value in row.items()},
            **{f"a_{key}": value for key, value in record.items()}})
    else:
        connection.execute(_INSERT_EVENT, row)
        audit.insert_records(session, [record])
    return head.audit_seq, head.audit_hash


def write_events(session: Session, kind: str, actor: Actor,
                 items: Sequence[tuple[Lot, dict[str, Any]]], at: datetime) -> None:
    """History events of one kind on many lots (each with its data), at each lot's step,
    and their audit records: two executemany INSERTs instead of two objects per lot. The
    lots' chain heads move on the lot objects, for the flush or the caller to save."""
    session.connection().execute(insert(LotEvent.__table__), [
        {"lot_id": lot.id, "kind": kind, "at": at, "by": actor_name(actor),
         "step_code": lot.step_code, "equipment": None, "qty_in": None, "qty_out": None,
         "data": data} for lot, data in items])
    audit.record_many(session, [
        {"actor": actor, "code": f"lot:{kind}", "subject_type": "lot",
         "subject_key": lot.lot_no, "head_on": lot,
         "data": {"step": lot.step_code, "equipment": None, "qty_in": None, "qty_out": None,
                  **data}} for lot, data in items])


def insert_run(session: Session, **row: Any) -> int:
    """INSERT a step run; its id, for the lot and the material uses to point to."""
    return session.connection().execute(_INSERT_RUN, row).scalar_one()


# The statements of `write_row`, built once per table and set of columns: a statement built
# anew costs more to compose and key for SQLAlchemy's statement cache than the database
# takes to run it.
_WRITES: dict[tuple[str, tuple[str, ...]], Update] = {}


def write_row(session: Session, obj: Any, now: datetime, **values: Any) -> None:
    """UPDATE one row of `obj` now, under its version counter if its table has one, and
    mark the object saved with those values: for the rows every move changes (lot, tool,
    step run), one plain statement instead of the unit of work's bookkeeping at the flush.
    Refused (409 stale) when a simultaneous change of a versioned row won."""
    table = obj.__table__
    versioned = "version" in table.c
    if "updated_at" in table.c:
        values["updated_at"] = now
    if versioned:
        values["version"] = obj.version + 1
    key = (table.name, tuple(values))
    stmt = _WRITES.get(key)
    if stmt is None:
        stmt = update(table).where(table.c.id == bindparam("_id")).values(
            {name: bindparam(name) for name in values})
        if versioned:
            stmt = stmt.where(table.c.version == bindparam("_seen"))
        _WRITES[key] = stmt
    params = {"_id": obj.id, "_seen": obj.version, **values} if versioned \
        else {"_id": obj.id, **values}
    if session.connection().execute(stmt, params).rowcount != 1:
        raise Conflict(_l("A simultaneous change won; reload and try again."), code=ErrorCode.STALE)
    for name, value in values.items():
        set_committed_value(obj, name, value)
