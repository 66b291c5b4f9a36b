"""How the shop floor writes the rows every move touches: plain statements instead of the
unit of work.

A track-in or track-out writes a history event, its audit record, a step run and the lot,
tool and run rows. As ORM objects their bookkeeping at the flush cost more than the rest of
the move, and a round trip per row more than the database takes to run them, so a move is
written here by one statement built once (on PostgreSQL; one per row on SQLite), and the
loaded objects are marked saved with the values written. The rules of the moves stay in
`mes.floor.services`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import Insert, Select, Update, bindparam, case, func, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from mes import audit
from mes.audit.models import AuditEvent
from mes.auth.actor import Actor, actor_name
from mes.catalog.models import Durable, Equipment, EquipmentStateChange
from mes.db import utcnow
from mes.errors import Conflict, ErrorCode
from mes.floor.models import Lot, LotEvent, StepRun


@dataclass
class ChainHead:
    """A lot's audit chain head as `audit.next_record` moves it. The record is computed on
    this stand-in rather than on the lot, so that the lot object is not marked changed:
    the caller saves the new head itself, with the lot's row (`write_move`) or by setting it
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
_INSERT_STATE_CHANGE = insert(EquipmentStateChange.__table__)
_STATE_CHANGE_COLUMNS = ("equipment_id", "from_state", "to_state", "at", "by", "comment")


@dataclass
class DurableWrite:
    """What a move does to the durables mounted on its tool: `reserve` the uses `need` a
    track-in's lot will take (on each durable whose life still holds them: used + reserved
    + need within the life limit), `use` them at the track-out (reserved becomes used) or
    `release` them when a track-in is undone. `answered` is set to the number of durables
    the statement changed (a reservation fewer than mounted: one had not the life left)."""

    mode: str
    equipment_id: int
    need: int
    answered: int | None = None
    # The durables mounted when the move was checked: what a reservation must answer.
    mounted: int | None = None


def _durable_update(mode: str, prefix: str = "d_") -> Update:
    table = Durable.__table__
    need = bindparam(f"{prefix}need", type_=table.c.used.type)
    stmt = update(table).where(table.c.equipment_id == bindparam(f"{prefix}tool"))
    if mode == "reserve":
        return stmt.where(table.c.used + table.c.reserved + need <= table.c.life_limit).values(
            reserved=table.c.reserved + need)
    # Never below zero, whatever happened to the reservation meanwhile.
    released = case((table.c.reserved > need, table.c.reserved - need), else_=0)
    if mode == "use":
        return stmt.values(used=table.c.used + need, reserved=released)
    return stmt.values(reserved=released)


_DURABLE_UPDATES = {mode: _durable_update(mode) for mode in ("reserve", "use", "release")}


def write_durables(session: Session, durables: DurableWrite) -> None:
    """The durables' part of a move as a statement of its own (SQLite, or a move written
    outside `write_move`)."""
    durables.answered = session.connection().execute(
        _DURABLE_UPDATES[durables.mode],
        {"d_tool": durables.equipment_id, "d_need": durables.need}).rowcount


@dataclass
class EventWrite:
    """A history event of a lot and its audit record, ready to be inserted, and the lot's
    audit chain head after them."""

    row: dict[str, Any]
    record: dict[str, Any]
    audit_seq: int
    audit_hash: str


def event_write(session: Session, lot: Lot, kind: str, actor: Actor, *,
                step: str | None = None, equipment: str | None = None,
                qty_in: int | None = None, qty_out: int | None = None,
                at: datetime | None = None,
                data: dict[str, Any] | None = None) -> EventWrite:
    """The history event of the lot and its audit record (the next of the lot's chain),
    not yet written; the lot object itself is left as it was."""
    step_code = step if step is not None else lot.step_code
    row = {"lot_id": lot.id, "kind": kind, "at": at or utcnow(), "by": actor_name(actor),
           "step_code": step_code, "equipment": equipment, "qty_in": qty_in,
           "qty_out": qty_out, "data": data or {}}
    head = ChainHead(lot.audit_seq, lot.audit_hash)
    record = audit.next_record(
        session, actor=actor, code=f"lot:{kind}", subject_type="lot", subject_key=lot.lot_no,
        head_on=head, data={"step": step_code, "equipment": equipment, "qty_in": qty_in,
                            "qty_out": qty_out, **(data or {})})
    return EventWrite(row, record, head.audit_seq, head.audit_hash)


def _insert_event(session: Session, event: EventWrite) -> None:
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        # Both rows in one statement (a data-modifying WITH, which SQLite lacks).
        connection.execute(_INSERT_EVENT_AND_RECORD, {
            **{f"e_{key}": value for key, value in event.row.items()},
            **{f"a_{key}": value for key, value in event.record.items()}})
    else:
        connection.execute(_INSERT_EVENT, event.row)
        audit.insert_records(session, [event.record])


def write_event(session: Session, lot: Lot, kind: str, actor: Actor, *,
                step: str | None = None, equipment: str | None = None,
                qty_in: int | None = None, qty_out: int | None = None,
                at: datetime | None = None,
                data: dict[str, Any] | None = None) -> tuple[int, str]:
    """INSERT one history event of the lot (whose row must exist) and its audit record, at
    once, and return the lot's new audit chain head (seq, hash), which the caller saves;
    the lot object itself is left as it was."""
    event = event_write(session, lot, kind, actor, step=step, equipment=equipment,
                        qty_in=qty_in, qty_out=qty_out, at=at, data=data)
    _insert_event(session, event)
    return event.audit_seq, event.audit_hash


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


def _insert_run(session: Session, **row: Any) -> int:
    """INSERT a step run; its id, for the lot and the material uses to point to."""
    return session.connection().execute(_INSERT_RUN, row).scalar_one()


# The statements of `_write_row` and `write_move`, built once per table and set of columns: a
# statement built anew costs more to compose and key for SQLAlchemy's statement cache than
# the database takes to run it.
_WRITES: dict[tuple[str, tuple[str, ...]], Update] = {}
_MOVES: dict[tuple[Any, ...], Select[Any]] = {}


def _row_values(obj: Any, now: datetime, values: dict[str, Any]) -> tuple[dict[str, Any],
                                                                          dict[str, Any]]:
    """The columns an UPDATE of `obj` sets (with its timestamp and next version), and the
    parameters of its WHERE (id, and the version seen when it is versioned)."""
    table = obj.__table__
    values = dict(values)
    if "updated_at" in table.c:
        values["updated_at"] = now
    where = {"_id": obj.id}
    if "version" in table.c:
        values["version"] = obj.version + 1
        where["_seen"] = obj.version
    return values, where


def _update(table: Any, names: tuple[str, ...], prefix: str = "") -> Update:
    stmt = update(table).where(table.c.id == bindparam(f"{prefix}_id")).values(
        {name: bindparam(f"{prefix}{name}", type_=table.c[name].type) for name in names})
    if "version" in table.c:
        stmt = stmt.where(table.c.version == bindparam(f"{prefix}_seen"))
    return stmt


def _stale() -> Conflict:
    return Conflict(_l("A simultaneous change won; reload and try again."), code=ErrorCode.STALE)


def _saved(obj: Any, values: dict[str, Any]) -> None:
    for name, value in values.items():
        set_committed_value(obj, name, value)


def _write_row(session: Session, obj: Any, now: datetime, **values: Any) -> None:
    """UPDATE one row of `obj` now, under its version counter if its table has one, and
    mark the object saved with those values: for the rows every move changes (lot, tool,
    step run), one plain statement instead of the unit of work's bookkeeping at the flush.
    Refused (409 stale) when a simultaneous change of a versioned row won."""
    values, where = _row_values(obj, now, values)
    key = (obj.__table__.name, tuple(values))
    stmt = _WRITES.get(key)
    if stmt is None:
        stmt = _WRITES[key] = _update(obj.__table__, tuple(values))
    if session.connection().execute(stmt, {**where, **values}).rowcount != 1:
        raise _stale()
    _saved(obj, values)


def _move_statement(new_run: tuple[str, ...] | None, lot: tuple[str, ...],
                    others: tuple[tuple[str, tuple[str, ...]], ...],
                    state_change: bool = False, durables: str | None = None) -> Select[Any]:
    """One PostgreSQL statement for a whole move: data-modifying WITHs inserting the step
    run (when one starts), the history event and its audit record, the tool's state change
    (when its E10 state changes), and updating the lot (pointed at the new run), the other
    rows and the durables mounted on the tool (`durables`: the DurableWrite mode); it
    answers how many rows of the lot and of each other row were updated (0: a simultaneous
    change won), the new run's id, and how many durables were updated."""
    lots, runs = Lot.__table__, StepRun.__table__
    events, records = LotEvent.__table__, AuditEvent.__table__
    ctes: list[Any] = [
        insert(events).values({c.name: bindparam(f"e_{c.name}", type_=c.type)
                               for c in events.c if c.name != "id"}).cte("new_event"),
        insert(records).values({c.name: bindparam(f"a_{c.name}", type_=c.type)
                                for c in records.c if c.name != "id"}).cte("new_record")]
    if state_change:
        changes = EquipmentStateChange.__table__
        ctes.append(insert(changes).values({
            name: bindparam(f"s_{name}", type_=changes.c[name].type)
            for name in _STATE_CHANGE_COLUMNS}).cte("new_state"))
    lot_update = _update(lots, lot, "l")
    run_cte = None
    if new_run is not None:
        run_cte = insert(runs).values({name: bindparam(f"n_{name}", type_=runs.c[name].type)
                                       for name in new_run}).returning(runs.c.id).cte("new_run")
        lot_update = lot_update.values(run_id=select(run_cte.c.id).scalar_subquery())
    # The lot first, then the others: the scalar subqueries below run in this order, and
    # every move locks rows in this order.
    updated = [lot_update.returning(lots.c.id).cte("lot_row")]
    tables = {"equipment": Equipment.__table__, "step_run": runs}
    for i, (table_name, names) in enumerate(others):
        table = tables[table_name]
        updated.append(_update(table, names, f"o{i}").returning(table.c.id).cte(f"row_{i}"))
    columns = [select(func.count()).select_from(cte).scalar_subquery() for cte in updated]
    if run_cte is not None:
        columns.append(select(run_cte.c.id).scalar_subquery())
    if durables is not None:
        # After the tool's row: the tool is locked before its durables, as a mount does.
        durable_cte = _durable_update(durables).returning(Durable.__table__.c.id).cte(
            "durable_rows")
        columns.append(select(func.count()).select_from(durable_cte).scalar_subquery())
    stmt = select(*columns)
    for cte in ctes:
        stmt = stmt.add_cte(cte)
    return stmt


def write_move(session: Session, lot: Lot, now: datetime, event: EventWrite, *,
               lot_values: dict[str, Any], others: Sequence[tuple[Any, dict[str, Any]]] = (),
               new_run: dict[str, Any] | None = None,
               state_change: dict[str, Any] | None = None,
               durables: DurableWrite | None = None) -> int | None:
    """Write what one track-in or track-out changes: the history event and its audit record
    (`event`), the lot's row (`lot_values`, with its new audit chain head), each other row
    (`others`: the tool, the step run, as (object, values)), when a step run starts, its
    row (`new_run`; the lot is pointed at it) and, when the tool's E10 state changes, the
    row of its state history (`state_change`: the columns of `_STATE_CHANGE_COLUMNS`), and
    what it does to the durables mounted on the tool (`durables`; its `answered` is set).
    Returns the new run's id.

    On PostgreSQL this is one statement (a round trip per row costs more than the rest of
    the move); on SQLite one statement per row. Every row is updated under its version
    counter: 409 stale when a simultaneous change won. The objects are marked saved."""
    lot_values = {**lot_values, "audit_seq": event.audit_seq, "audit_hash": event.audit_hash}
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        run_id = None
        if new_run is not None:
            run_id = _insert_run(session, **new_run)
            lot_values["run_id"] = run_id
        _insert_event(session, event)
        _write_row(session, lot, now, **lot_values)
        for obj, values in others:
            _write_row(session, obj, now, **values)
        if state_change is not None:
            connection.execute(_INSERT_STATE_CHANGE, state_change)
        if durables is not None:
            write_durables(session, durables)
        return run_id
    lot_set, lot_where = _row_values(lot, now, lot_values)
    prepared = [_row_values(obj, now, values) for obj, values in others]
    key = (tuple(new_run) if new_run is not None else None, tuple(lot_set),
           tuple((obj.__table__.name, tuple(values))
                 for (obj, _), (values, _) in zip(others, prepared, strict=True)),
           state_change is not None, durables.mode if durables is not None else None)
    stmt = _MOVES.get(key)
    if stmt is None:
        stmt = _MOVES[key] = _move_statement(*key)
    params: dict[str, Any] = {
        **{f"e_{k}": v for k, v in event.row.items()},
        **{f"a_{k}": v for k, v in event.record.items()},
        **{f"l{k}": v for k, v in {**lot_where, **lot_set}.items()}}
    for i, (values, where) in enumerate(prepared):
        params.update({f"o{i}{k}": v for k, v in {**where, **values}.items()})
    if new_run is not None:
        params.update({f"n_{k}": v for k, v in new_run.items()})
    if state_change is not None:
        params.update({f"s_{k}": state_change[k] for k in _STATE_CHANGE_COLUMNS})
    if durables is not None:
        params.update(d_tool=durables.equipment_id, d_need=durables.need)
    answer = tuple(connection.execute(stmt, params).one())
    if any(count != 1 for count in answer[:1 + len(others)]):
        raise _stale()
    if durables is not None:
        durables.answered = answer[-1]
        answer = answer[:-1]
    run_id = answer[-1] if new_run is not None else None
    if run_id is not None:
        lot_set["run_id"] = run_id
    _saved(lot, lot_set)
    for (obj, _), (values, _) in zip(others, prepared, strict=True):
        _saved(obj, values)
    return run_id
