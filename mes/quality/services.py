"""Quality rules: holds on one lot or on every lot a criterion matches, future holds that
stop a lot when it reaches a step, automatic yield holds, and release with a disposition.

Every function works in the caller's transaction and raises before changing anything when a
rule refuses. Each hold and release bumps the lot's version counter (it changes the lot's
count of open holds), so a hold or release racing a move of the same lot makes one of them
fail with 409 `stale`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString
from sqlalchemy import (
    DateTime,
    Select,
    String,
    bindparam,
    cast,
    func,
    insert,
    literal_column,
    null,
    or_,
    select,
    type_coerce,
    union_all,
    update,
)
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.orm.attributes import set_committed_value

from mes import audit
from mes.catalog import services as catalog
from mes.catalog.models import Equipment, MaterialLot, ReasonCode, Route, RouteStep
from mes.catalog.services import StepInfo, route_step_infos
from mes.db import UTCDateTime, utcnow
from mes.errors import Conflict, InvalidInput, NotFound
from mes.floor import services as floor
from mes.floor.models import Lot, LotWafer, MaterialUse, StepRun, Wafer
from mes.quality import moisture
from mes.quality.genealogy import ancestors, descendants
from mes.quality.models import FutureHold, Hold, MoistureClock

# Lots still in the plant: these can be held. Shipped lots are reported, never held;
# scrapped and merged lots are passed over.
IN_PLANT = ("queued", "running", "completed")
SHIPPED = ("shipped",)
PASSED_OVER = ("scrapped", "merged")
CLOSED = SHIPPED + PASSED_OVER
# The reason of automatic yield holds, when the plant has it (else its first hold code).
YIELD_REASON = "HOLD-YIELD"
SYSTEM = "system"


def _who(actor: Any) -> str:
    return getattr(actor, "username", actor)


def _invalid(field_name: str, message: str | LazyString) -> InvalidInput:
    return InvalidInput(message, fields={field_name: [message]})


def _comment(text: str | None, field_name: str = "comment") -> str:
    text = (text or "").strip()
    if not text:
        raise _invalid(field_name, _l("A comment is required."))
    return text


def _reason(session: Session, code: str | None, kind: str, field_name: str) -> ReasonCode:
    reason = session.scalar(select(ReasonCode).where(ReasonCode.code == code)) if code else None
    if reason is None or reason.kind != kind:
        raise _invalid(field_name, _l("%(value)s is not a %(kind)s reason code.",
                                      value=code or 'Nothing', kind=kind))
    if not reason.active:
        raise _invalid(field_name, _l("Reason code %(code)s is retired.", code=code))
    return reason


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


def get_future_hold(session: Session, rule_id: int) -> FutureHold:
    """The future-hold rule `rule_id` (NotFound otherwise)."""
    rule = session.scalar(select(FutureHold).where(FutureHold.id == rule_id)
                          .options(joinedload(FutureHold.reason)))
    if rule is None:
        raise NotFound(_l("No future hold %(rule_id)s.", rule_id=rule_id))
    return rule


def future_hold_query(filters: dict[str, Any]) -> Select[Any]:
    """Future-hold rules, newest first; filters `status` (active / retired), `at_step`."""
    stmt = select(FutureHold).options(joinedload(FutureHold.reason))
    if filters.get("status"):
        stmt = stmt.where(FutureHold.status == filters["status"])
    if filters.get("at_step"):
        stmt = stmt.where(FutureHold.at_step == filters["at_step"])
    return stmt.order_by(FutureHold.id.desc())


def count_rule_holds(session: Session, rules: Sequence[FutureHold]) -> Sequence[FutureHold]:
    """Attach `holds_placed` (how many holds each rule has placed) in one query."""
    ids = [rule.id for rule in rules]
    counts: dict[int, int] = {}
    if ids:
        counts = {rule_id: n for rule_id, n in session.execute(
            select(Hold.future_hold_id, func.count()).where(Hold.future_hold_id.in_(ids))
            .group_by(Hold.future_hold_id))}
    for rule in rules:
        rule.holds_placed = counts.get(rule.id, 0)  # type: ignore[attr-defined]
    return rules


# --- matching lots ---------------------------------------------------------------------

@dataclass(frozen=True)
class Criterion:
    """A checked `match`: exactly one kind, references resolved."""

    kind: str
    fab_lot: str | None = None
    wafer: str | None = None
    material_lot_id: int | None = None
    equipment_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    lots: tuple[str, ...] = ()
    # The criterion as kept on a future hold and in the holds' data (JSON).
    stored: dict[str, Any] = field(default_factory=dict)


_KEYS = {"fab_lot": {"fab_lot"}, "wafer": {"wafer", "fab_lot"},
         "material_lot": {"material_lot"}, "equipment": {"equipment", "since", "until"},
         "lots": {"lots"}}


def _kind(match: dict[str, Any]) -> str:
    given = {key for key, value in match.items() if value not in (None, "", [])}
    kinds = [k for k in ("wafer", "material_lot", "equipment", "lots") if k in given]
    if not kinds and "fab_lot" in given:
        kinds = ["fab_lot"]
    if len(kinds) != 1:
        raise _invalid("match", _l("Give exactly one of fab_lot, wafer (optionally with "
                                   "fab_lot), material_lot, equipment with since/until, lots."))
    extra = given - _KEYS[kinds[0]]
    if extra:
        raise _invalid("match", _l("%(items)s cannot be combined with %(kind)s.",
                                   items=', '.join(sorted(extra)), kind=kinds[0]))
    return kinds[0]


def criterion(session: Session, match: dict[str, Any]) -> Criterion:
    """Check a `match` (exactly one criterion) and resolve what it names.

    Raises InvalidInput (field `match`) for a shape that is not one criterion, an unknown
    material lot, equipment or lot number, or a time window that ends before it starts.
    """
    if not isinstance(match, dict):
        raise _invalid("match", _l("The match must be an object."))
    kind = _kind(match)
    if kind == "fab_lot":
        return Criterion(kind, fab_lot=match["fab_lot"], stored={"fab_lot": match["fab_lot"]})
    if kind == "wafer":
        stored = {"wafer": match["wafer"]}
        if match.get("fab_lot"):
            stored["fab_lot"] = match["fab_lot"]
        return Criterion(kind, wafer=match["wafer"], fab_lot=match.get("fab_lot") or None,
                         stored=stored)
    if kind == "material_lot":
        code = match["material_lot"]
        material_id = session.scalar(select(MaterialLot.id).where(MaterialLot.code == code))
        if material_id is None:
            raise _invalid("match", _l("Unknown material lot %(code)s.", code=code))
        return Criterion(kind, material_lot_id=material_id, stored={"material_lot": code})
    if kind == "equipment":
        code = match["equipment"]
        equipment_id = session.scalar(select(Equipment.id).where(Equipment.code == code))
        if equipment_id is None:
            raise _invalid("match", _l("Unknown equipment %(code)s.", code=code))
        since, until = match.get("since"), match.get("until")
        if since is None:
            raise _invalid("match", _l("An equipment match needs `since` (and may give `until`; "
                                       "without it the window is open)."))
        if until is not None and until <= since:
            raise _invalid("match", _l("`until` must be after `since`."))
        stored = {"equipment": code, "since": since.isoformat(),
                  "until": until.isoformat() if until else None}
        return Criterion(kind, equipment_id=equipment_id, since=since, until=until,
                         stored=stored)
    numbers = tuple(dict.fromkeys(match["lots"]))
    known = set(session.scalars(select(Lot.lot_no).where(Lot.lot_no.in_(numbers))))
    unknown = [n for n in numbers if n not in known]
    if unknown:
        raise _invalid("match", _l("Unknown lot %(items)s.", items=', '.join(unknown)))
    return Criterion(kind, lots=numbers, stored={"lots": list(numbers)})


def seed_ids(crit: Criterion) -> Select[Any]:
    """A select of the ids of the lots the criterion names directly (before genealogy)."""
    if crit.kind == "fab_lot":
        return select(Lot.id).where(Lot.fab_lot == crit.fab_lot)
    if crit.kind == "wafer":
        stmt = (select(LotWafer.lot_id).join(Wafer, Wafer.id == LotWafer.wafer_pk)
                .where(Wafer.wafer_id == crit.wafer))
        return stmt.where(Wafer.fab_lot == crit.fab_lot) if crit.fab_lot else stmt
    if crit.kind == "material_lot":
        return select(MaterialUse.lot_id).where(
            MaterialUse.material_lot_id == crit.material_lot_id)
    if crit.kind == "equipment":
        # Runs that overlap the window: started before it ends, not finished before it began.
        stmt = select(StepRun.lot_id).where(
            StepRun.equipment_id == crit.equipment_id,
            or_(StepRun.finished_at.is_(None), StepRun.finished_at > crit.since))
        return stmt.where(StepRun.started_at < crit.until) if crit.until else stmt
    return select(Lot.id).where(Lot.lot_no.in_(crit.lots))


def matched_lots_query(session: Session, crit: Criterion) -> Select[Any]:
    """Every lot the criterion matches and every descendant of those, by lot number."""
    return (select(Lot).where(Lot.id.in_(descendants(session, seed_ids(crit))))
            .order_by(Lot.lot_no))


def _sort(rows: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {"to_hold": [], "shipped": [], "skipped": []}
    for lot_no, state in rows:
        key = "to_hold" if state in IN_PLANT else "shipped" if state in SHIPPED else "skipped"
        found[key].append(lot_no)
    return found


def match_lots(session: Session, match: dict[str, Any]) -> dict[str, list[str]]:
    """What a mass hold with `match` would do, without doing it: lot numbers `to_hold`
    (still in the plant: queued, running or completed), `shipped` (listed, never held) and
    `skipped` (scrapped or merged). Raises InvalidInput like `criterion`."""
    crit = criterion(session, match)
    ids = descendants(session, seed_ids(crit))
    return _sort(session.execute(select(Lot.lot_no, Lot.state).where(Lot.id.in_(ids))
                                 .order_by(Lot.lot_no)).all())


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
        raise Conflict(_l("A lot changed at the same time; reload and try again."), code="stale")
    for lot, row in zip(lots, rows, strict=True):
        for key, value in (("open_holds", row["holds"]), ("audit_seq", row["seq"]),
                           ("audit_hash", row["hash"]), ("version", row["next"]),
                           ("updated_at", now)):
            set_committed_value(lot, key, value)


def _place(session: Session, actor: Any, lots: Sequence[Lot], reason: ReasonCode,
           comment: str, source: str, *, placed_by: str | None = None,
           rule: FutureHold | None = None, data: dict[str, Any] | None = None) -> list[Hold]:
    """Hold each of `lots` (distinct lots) once: the hold rows, a history event and an
    audit record per lot, an audit record per hold, and each lot's count of open holds.
    A few statements whatever the number of lots, so a mass hold of thousands of lots
    costs little more than one hold."""
    now = utcnow()
    # Flushed so that no earlier change of these lots waits in the session: the lots are
    # written below by one statement of their own, not by the flush.
    session.flush()
    by = placed_by or _who(actor)
    ids = _insert_holds(session, [
        {"lot_id": lot.id, "reason_id": reason.id, "comment": comment, "source": source,
         "status": "open", "step_code": lot.step_code, "placed_by": by, "placed_at": now,
         "future_hold_id": rule.id if rule else None, "data": data or {}} for lot in lots])
    details = [{"hold": hold_id, "reason": reason.code, "source": source, "comment": comment,
                **(data or {})} for hold_id in ids]
    for lot in lots:
        lot.open_holds += 1
    floor.record_events(session, "hold", actor, list(zip(lots, details, strict=True)), at=now)
    audit.record_many(session, [
        {"actor": actor, "code": "hold:place", "subject_type": "hold",
         "subject_key": str(hold_id), "new_subject": True,
         "data": {"lot": lot.lot_no, "step": lot.step_code, "placed_by": by, **detail}}
        for hold_id, lot, detail in zip(ids, lots, details, strict=True)])
    _update_lots(session, lots, now)
    return _load_holds(session, ids, lots, reason)


def _refuse_closed(lot: Lot) -> None:
    if lot.state in CLOSED:
        raise Conflict(_l("Lot %(lot)s is %(state)s; it can no longer be held.", lot=lot.lot_no,
                          state=_l(lot.state)),
                       code="lot_closed")


def hold_lot(session: Session, actor: Any, lot: Lot, *, reason: str, comment: str,
             source: str = "manual") -> Hold:
    """Put one lot on hold. A lot may carry several open holds; queued, running and
    completed lots can be held (a running lot may still be tracked out and stays held).

    Raises InvalidInput (not an active hold reason code, no comment) and Conflict
    `lot_closed` (shipped, scrapped or merged lots).
    """
    hold_reason = _reason(session, reason, "hold", "reason")
    text = _comment(comment)
    _refuse_closed(lot)
    return _place(session, actor, [lot], hold_reason, text, source)[0]


@dataclass
class MassHold:
    holds: list[Hold]
    lots: list[str]
    shipped: list[str]
    skipped: list[str]


def mass_hold(session: Session, actor: Any, *, reason: str, comment: str,
              match: dict[str, Any], source: str = "mass") -> MassHold:
    """Hold every lot the match selects and every descendant through splits and merges,
    all in the caller's transaction (all or nothing). Lots still in the plant (queued,
    running, completed) are held; shipped lots are listed in `shipped`, not held; scrapped
    and merged lots are listed in `skipped`.

    Raises InvalidInput (reason, comment, match as `criterion`; code `no_match` when the
    match selects no lot at all) and Conflict `nothing_to_hold` when every lot it selects
    has left the plant.
    """
    hold_reason = _reason(session, reason, "hold", "reason")
    text = _comment(comment)
    crit = criterion(session, match)
    lots = list(session.scalars(matched_lots_query(session, crit)))
    if not lots:
        raise InvalidInput(_l("The match selects no lot."), code="no_match",
                           fields={"match": [_l("No lot matches this criterion.")]})
    sorted_nos = _sort((lot.lot_no, lot.state) for lot in lots)
    to_hold = [lot for lot in lots if lot.state in IN_PLANT]
    if not to_hold:
        raise Conflict(_l("%(count)s lot(s) match, but none is still in the plant (%(count2)s "
                          "shipped, %(count3)s scrapped or merged).", count=len(lots),
                          count2=len(sorted_nos['shipped']), count3=len(sorted_nos['skipped'])),
                       code="nothing_to_hold")
    holds = _place(session, actor, to_hold, hold_reason, text, source,
                   data={"match": crit.stored})
    return MassHold(holds, sorted_nos["to_hold"], sorted_nos["shipped"], sorted_nos["skipped"])


def yield_reason(session: Session) -> ReasonCode:
    """The reason of automatic yield holds: HOLD-YIELD when it is an active hold code, else
    the plant's first active hold code (by code). With no active hold code at all, HOLD-YIELD
    itself, retired or created (audited) when missing: a low yield is never left unheld
    for want of a code."""
    codes = {reason.code: reason for reason in session.scalars(
        select(ReasonCode).where(ReasonCode.kind == "hold", ReasonCode.active.is_(True))
        .order_by(ReasonCode.code))}
    if codes:
        return codes.get(YIELD_REASON) or next(iter(codes.values()))
    retired = session.scalar(select(ReasonCode).where(ReasonCode.code == YIELD_REASON,
                                                      ReasonCode.kind == "hold"))
    return retired or catalog.create_reason_code(session, SYSTEM, {
        "code": YIELD_REASON, "kind": "hold", "description": "Step yield below the minimum"})


def _below_min_yield(step: StepInfo, qty_in: int, good_qty: int) -> bool:
    # Decimal: 99.95 % of 2000 is exactly 1999, which float arithmetic gets wrong.
    return (step.min_yield is not None and qty_in > 0
            and Decimal(good_qty) * 100 < Decimal(str(step.min_yield)) * qty_in)


def after_track_out(session: Session, actor: Any, lot: Lot, *, step: StepInfo, qty_in: int,
                    good_qty: int) -> list[Hold]:
    """The quality rules of a track-out, in its transaction, after the lot has moved: a
    step yield (good / quantity in) below the step's minimum holds the lot (source
    `yield`); a lot arriving at a next step meets the future holds of that step."""
    placed: list[Hold] = []
    if lot.state not in CLOSED and _below_min_yield(step, qty_in, good_qty):
        achieved = round(100.0 * good_qty / qty_in, 3)
        placed += _place(
            session, SYSTEM, [lot], yield_reason(session),
            f"Step {step.code} yield {achieved} % is below the minimum {step.min_yield} %.",
            "yield", placed_by=SYSTEM,
            data={"step": step.code, "yield": achieved, "min_yield": step.min_yield,
                  "triggered_by": _who(actor)})
    if lot.state == "queued":
        placed += on_arrival(session, actor, lot)
    return placed


# --- future holds ----------------------------------------------------------------------

@dataclass
class _Facts:
    """What the future holds of a step may ask about an arriving lot and its ancestors."""

    lot_nos: set[str] = field(default_factory=set)
    fab_lots: set[str] = field(default_factory=set)
    wafers: set[tuple[str, str]] = field(default_factory=set)
    materials: set[str] = field(default_factory=set)
    runs: list[tuple[str, datetime, datetime | None]] = field(default_factory=list)


def _facts_query(*, genealogy: bool) -> Select[Any]:
    """What future holds may ask about a lot (bound as `lot_id`) and, with `genealogy`,
    its ancestors: their lot numbers and fab lots, wafers, material lots consumed, runs on
    equipment. One query of four parts, each an index lookup per lot."""
    no_text = cast(null(), String)
    # Typed so that the times of the runs, in the same column, read back as aware UTC times.
    no_time = type_coerce(cast(null(), DateTime(timezone=True)), UTCDateTime())
    if genealogy:
        family = ancestors(None, select(Lot.id).where(Lot.id == bindparam("lot_id"))) \
            .subquery()

        def of_family(column: Any) -> Any:
            return column.in_(select(family.c.lot_id))
    else:
        def of_family(column: Any) -> Any:
            return column == bindparam("lot_id")
    return union_all(
        select(literal_column("'lot'", String), Lot.lot_no, Lot.fab_lot, no_time, no_time)
        .where(of_family(Lot.id)),
        select(literal_column("'wafer'", String), Wafer.fab_lot, Wafer.wafer_id, no_time,
               no_time)
        .join(LotWafer, LotWafer.wafer_pk == Wafer.id).where(of_family(LotWafer.lot_id)),
        select(literal_column("'material'", String), MaterialLot.code, no_text, no_time,
               no_time)
        .join(MaterialUse, MaterialUse.material_lot_id == MaterialLot.id)
        .where(of_family(MaterialUse.lot_id)),
        select(literal_column("'run'", String), Equipment.code, no_text, StepRun.started_at,
               StepRun.finished_at)
        .join(Equipment, Equipment.id == StepRun.equipment_id)
        .where(of_family(StepRun.lot_id)))


# Built once: composing them costs more than running them (a track-out runs one).
_FACTS = {True: _facts_query(genealogy=True), False: _facts_query(genealogy=False)}
_STEP_RULES = (select(FutureHold.id, FutureHold.match_kind, FutureHold.match)
               .where(FutureHold.status == "active", FutureHold.at_step == bindparam("step")))


def _facts(session: Session, lot: Lot) -> _Facts:
    facts = _Facts()
    for kind, first, second, started, finished in session.execute(
            _FACTS[lot.in_genealogy], {"lot_id": lot.id}):
        if kind == "lot":
            facts.lot_nos.add(first)
            facts.fab_lots.add(second)
        elif kind == "wafer":
            facts.wafers.add((first, second))
        elif kind == "material":
            facts.materials.add(first)
        else:
            facts.runs.append((first, started, finished))
    return facts


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _rule_matches(kind: str, match: dict[str, Any], facts: _Facts) -> bool:
    """The same criteria as `seed_ids`, asked of a lot and its ancestors."""
    if kind == "fab_lot":
        return match["fab_lot"] in facts.fab_lots
    if kind == "wafer":
        if match.get("fab_lot"):
            return (match["fab_lot"], match["wafer"]) in facts.wafers
        return any(wafer == match["wafer"] for _fab, wafer in facts.wafers)
    if kind == "material_lot":
        return match["material_lot"] in facts.materials
    if kind == "equipment":
        since, until = _time(match["since"]), _time(match.get("until"))
        return any(code == match["equipment"] and (until is None or started < until)
                   and (finished is None or finished > since)
                   for code, started, finished in facts.runs)
    return not facts.lot_nos.isdisjoint(match["lots"])


def on_arrival(session: Session, actor: Any, lot: Lot) -> list[Hold]:
    """Apply the active future holds of the step `lot` has just arrived at (a track-out
    moving it there, or a rework sending it back there). A rule holds the lot when the lot
    or any of its ancestors matches, and holds each lot at most once: a lot released from
    a rule's hold (say, reworked back before the step) is not stopped by it again.

    Costs one indexed query when the step has no active rule; otherwise the lot's ancestors
    are read once, with what the step's rules ask about them.
    """
    known = getattr(lot, "arrival_rules", None)
    if known is not None and known[0] == lot.step_seq and not known[1]:
        return []  # read with the lot (floor.services.get_lot): no rule waits here
    rules = session.execute(_STEP_RULES, {"step": lot.step_code}).all()
    if not rules:
        return []
    facts = _facts(session, lot)
    hits = [rule.id for rule in rules if _rule_matches(rule.match_kind, rule.match, facts)]
    if not hits:
        return []
    done = set(session.scalars(select(Hold.future_hold_id).where(
        Hold.lot_id == lot.id, Hold.future_hold_id.in_(hits))))
    placed: list[Hold] = []
    for rule_id in hits:
        if rule_id in done:
            continue
        rule = get_future_hold(session, rule_id)
        placed += _place(session, SYSTEM, [lot], rule.reason, rule.comment, "future",
                         placed_by=rule.created_by, rule=rule,
                         data={"rule": rule.id, "triggered_by": _who(actor)})
    return placed


def _step_known(session: Session, code: str) -> bool:
    return session.scalar(select(RouteStep.id).where(RouteStep.code == code).limit(1)) \
        is not None


def _positions(session: Session, crit: Criterion, at_step: str) -> dict[str, Any]:
    """Where the lots a new rule matches are now, relative to its step."""
    lots = session.execute(
        select(Lot.lot_no, Lot.state, Lot.step_seq, Lot.route_id)
        .where(Lot.id.in_(descendants(session, seed_ids(crit)))).order_by(Lot.lot_no)).all()
    routes = {route.id: route for route in session.scalars(
        select(Route).where(Route.id.in_({row.route_id for row in lots})))}
    seq_of: dict[int, int | None] = {}
    for route_id, route in routes.items():
        seq_of[route_id] = next((s.seq for s in route_step_infos(session, route)
                                 if s.code == at_step), None)
    counts: Counter[str] = Counter()
    at_step_lots: list[str] = []
    for row in lots:
        seq = seq_of.get(row.route_id)
        if row.state in SHIPPED:
            counts["shipped"] += 1
        elif row.state not in IN_PLANT:
            continue
        elif seq is None:
            counts["not_on_route"] += 1
        elif row.state == "completed" or row.step_seq > seq:
            counts["past_step"] += 1
        elif row.step_seq == seq:
            counts["at_step"] += 1
            at_step_lots.append(row.lot_no)
        else:
            counts["before_step"] += 1
    return {key: counts[key] for key in ("before_step", "at_step", "past_step",
                                         "not_on_route", "shipped")} | \
        {"at_step_lots": at_step_lots}


def create_future_hold(session: Session, actor: Any, *, reason: str, comment: str,
                       at_step: str, match: dict[str, Any]) -> FutureHold:
    """Create a rule that holds every lot matching `match` (itself or through an ancestor,
    so lots split or merged later are caught) when it arrives at step `at_step`.

    The rule applies to arrivals only: lots already at or past the step are not held by
    it. The returned rule carries `matching_now`: how many matching lots are before, at
    and past the step now (and the lot numbers at the step), so they can be held by hand.

    Raises InvalidInput (not an active hold reason code, no comment, a step on no route,
    a match as `criterion`).
    """
    hold_reason = _reason(session, reason, "hold", "reason")
    text = _comment(comment)
    if not _step_known(session, at_step):
        raise _invalid("at_step", _l("No route has a step %(at_step)s.", at_step=at_step))
    crit = criterion(session, match)
    rule = FutureHold(reason=hold_reason, comment=text, at_step=at_step, match_kind=crit.kind,
                      match=crit.stored, status="active", created_by=_who(actor),
                      created_at=utcnow())
    session.add(rule)
    # Flushed for the rule id the audit record names.
    session.flush()
    rule.matching_now = _positions(session, crit, at_step)  # type: ignore[attr-defined]
    rule.holds_placed = 0  # type: ignore[attr-defined]
    audit.record(session, actor=actor, code="future_hold:create", subject_type="future_hold",
                 subject_key=str(rule.id),
                 data={"reason": hold_reason.code, "comment": text, "at_step": at_step,
                       "match": crit.stored})
    return rule


def retire_future_hold(session: Session, actor: Any, rule: FutureHold) -> FutureHold:
    """Retire a rule: it holds no further lot and is kept for the record. Holds it placed
    stay as they are. Raises Conflict `not_active` for a rule already retired."""
    if rule.status != "active":
        raise Conflict(_l("Future hold %(rule_id)s is already retired.", rule_id=rule.id),
                       code="not_active")
    rule.status = "retired"
    rule.retired_by = _who(actor)
    rule.retired_at = utcnow()
    audit.record(session, actor=actor, code="future_hold:retire", subject_type="future_hold",
                 subject_key=str(rule.id), data={"at_step": rule.at_step})
    return rule


# --- release ---------------------------------------------------------------------------

_DISPOSITION_FIELDS = {"release": set(), "rework": {"rework_step"},
                       "scrap": {"scrap_qty", "scrap_reason"}, "use_as_is": {"concession"}}


def _check_fields(disposition: str, data: dict[str, Any]) -> None:
    needed = _DISPOSITION_FIELDS[disposition]
    foreign = {name for names in _DISPOSITION_FIELDS.values() for name in names} - needed
    given = {name for name in foreign if data.get(name) not in (None, "")}
    if given:
        raise InvalidInput(_l("Fields that belong to another disposition: %(items)s.",
                              items=', '.join(sorted(given))),
                           fields={name: [f"Only with another disposition than "
                                          f"{disposition}."] for name in sorted(given)})
    missing = {name for name in needed if data.get(name) in (None, "")
               or (isinstance(data.get(name), str) and not data[name].strip())}
    if missing:
        raise InvalidInput(_l("Disposition %(disposition)s needs %(items)s.",
                              disposition=disposition, items=', '.join(sorted(missing))),
                           fields={name: [f"Required for disposition {disposition}."]
                                   for name in sorted(missing)})


def _rework_target(lot: Lot, code: str) -> StepInfo:
    steps = floor.route_steps(lot)
    target = next((s for s in steps if s.code == code), None)
    if target is None:
        raise _invalid("rework_step", _l("%(code)s is not a step of route %(code2)s version "
                                         "%(version)s.", code=code, code2=lot.route.code,
                                         version=lot.route.version))
    # A completed lot has done its last step too, so it may go back to it.
    limit = lot.step_seq if lot.state == "completed" else lot.step_seq - 1
    if target.seq > limit:
        raise _invalid("rework_step", _l("%(code)s is not before the lot's current step "
                                         "%(step_code)s.", code=code, step_code=lot.step_code))
    return target


def _refuse_moving(lot: Lot, disposition: str) -> None:
    if lot.state == "running":
        raise Conflict(_l("Lot %(lot)s is running; %(disposition)s it after track-out.",
                          lot=lot.lot_no, disposition=disposition),
                       code="already_running")
    if lot.state in CLOSED:
        raise Conflict(_l("Lot %(lot)s is %(state)s.", lot=lot.lot_no, state=_l(lot.state)),
                       code="lot_closed")


def _two_person(actor: Any, hold: Hold, override: str | None) -> str | None:
    """The override reason recorded, or None when none is needed; raises when the person
    who placed the hold releases it without an admin's recorded override."""
    if _who(actor) != hold.placed_by:
        return None
    if getattr(actor, "role", None) == "admin" and (override or "").strip():
        return override.strip()  # type: ignore[union-attr]
    raise Conflict(_l("The person who placed a hold may not release it; another person must (an "
                      "admin may override with a recorded reason)."), code="two_person_rule")


def release_hold(session: Session, actor: Any, hold: Hold, data: dict[str, Any]) -> Hold:
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
    if hold.status != "open":
        raise Conflict(_l("Hold %(hold_id)s is not open (it is %(status)s).", hold_id=hold.id,
                          status=_l(hold.status)), code="not_open")
    disposition = data.get("disposition")
    if disposition not in _DISPOSITION_FIELDS:
        raise _invalid("disposition", _l("Choose release, rework, scrap or use_as_is."))
    text = _comment(data.get("comment"))
    _check_fields(disposition, data)
    lot = hold.lot
    target: StepInfo | None = None
    scrap_reason: ReasonCode | None = None
    if disposition == "rework":
        target = _rework_target(lot, data["rework_step"])
    elif disposition == "scrap":
        qty = data["scrap_qty"]
        if not isinstance(qty, int) or not 1 <= qty <= lot.quantity:
            raise _invalid("scrap_qty", _l("Scrap 1 to %(quantity)s units.",
                                           quantity=lot.quantity))
        scrap_reason = _reason(session, data["scrap_reason"], "scrap", "scrap_reason")
    override = _two_person(actor, hold, data.get("override_reason"))
    if disposition in ("rework", "scrap"):
        _refuse_moving(lot, disposition)

    now = utcnow()
    details: dict[str, Any] = {"hold": hold.id, "disposition": disposition, "comment": text}
    if target is not None:
        from_step = lot.step_code
        lot.step_seq, lot.step_code = target.seq, target.code
        lot.state, lot.arrived_at = "queued", now
        details["rework_step"] = target.code
        floor.record_event(session, lot, "rework", actor, at=now,
                           data={"hold": hold.id, "from_step": from_step})
    elif scrap_reason is not None:
        before = lot.quantity
        lot.quantity -= data["scrap_qty"]
        if lot.quantity == 0:
            lot.state = "scrapped"
        details.update(scrap_qty=data["scrap_qty"], scrap_reason=scrap_reason.code)
        floor.record_event(session, lot, "scrap", actor, qty_in=before, qty_out=lot.quantity,
                           at=now, data={"hold": hold.id, "reason": scrap_reason.code,
                                         "qty": data["scrap_qty"]})
    elif disposition == "use_as_is":
        details["concession"] = data["concession"].strip()
    if override:
        details["override_reason"] = override

    hold.status, hold.released_by, hold.released_at = "released", _who(actor), now
    hold.disposition, hold.release_comment = disposition, text
    hold.rework_step = details.get("rework_step")
    hold.scrap_qty = details.get("scrap_qty")
    hold.scrap_reason = scrap_reason
    hold.concession = details.get("concession")
    hold.override_reason = override
    lot.open_holds = max(0, lot.open_holds - 1)
    floor.record_event(session, lot, "release", actor, at=now, data=details)
    audit.record(session, actor=actor, code="hold:release", subject_type="hold",
                 subject_key=str(hold.id), data={"lot": lot.lot_no, **details})
    if target is not None:
        on_arrival(session, actor, lot)
    return hold


# --- moisture floor life ---------------------------------------------------------------

MOISTURE_ACTIONS = ("open", "seal", "dry_storage", "bake")
# The state each action leaves the clock in. A bake leaves the lot dry and paused: the clock
# runs again when the lot is opened.
_MOISTURE_TARGET = {"open": "open", "seal": "sealed", "dry_storage": "dry_storage",
                    "bake": "dry_storage"}


@dataclass
class MoistureView:
    """A lot's moisture clock as the API and the pages show it."""

    lot_no: str
    msl: str
    state: str
    exposure_hours: float
    floor_life_hours: float | None
    remaining_hours: float | None
    expired: bool
    open_since: datetime | None
    label_hours: float | None
    baked_at: datetime | None
    updated_at: datetime | None


def moisture_view(session: Session, lot: Lot, clock: MoistureClock | None = None,
                  now: datetime | None = None) -> MoistureView:
    """The lot's clock now; a lot never opened is sealed with no exposure."""
    clock = clock or moisture.clock_of(session, lot.id)
    msl = lot.product.msl
    if clock is None:
        life = moisture.remaining(msl, 0, None, now or utcnow())
        state, open_since, label, baked, updated = "sealed", None, None, None, None
    else:
        life = moisture.clock_life(clock, msl, now)
        state, open_since, label = clock.state, clock.open_since, clock.label_hours
        baked, updated = clock.baked_at, clock.updated_at

    def hours(seconds: int | None) -> float | None:
        return None if seconds is None else round(seconds / moisture.HOUR, 3)

    return MoistureView(lot_no=lot.lot_no, msl=msl, state=state,
                        exposure_hours=hours(life.exposure_seconds) or 0.0,
                        floor_life_hours=hours(life.limit_seconds),
                        remaining_hours=hours(life.remaining_seconds), expired=life.expired,
                        open_since=open_since, label_hours=label, baked_at=baked,
                        updated_at=updated)


def moisture_action(session: Session, actor: Any, lot: Lot, action: str,
                    label_hours: float | None = None) -> MoistureView:
    """Move a lot's moisture clock (J-STD-033): `open` starts or resumes it, `seal` (dry
    pack) and `dry_storage` pause it keeping the exposure, `bake` resets the exposure to 0
    and leaves it paused. Each writes a `moisture_<action>` event in the lot's history.

    Refused with 409 `not_moisture_sensitive` for an MSL 1 product, `lot_closed` for a
    shipped, scrapped or merged lot, and `already_open` / `already_sealed` /
    `already_dry_storage` when the clock is in that state already. `label_hours` (the
    floor life on the label) is required to open an MSL 6 lot whose clock has none, and is
    422 for any other action or level.
    """
    msl = lot.product.msl
    if action not in MOISTURE_ACTIONS:
        raise _invalid("action", _l("Unknown action %(action)s.", action=action))
    if label_hours is not None and (action != "open" or msl != moisture.LABEL_LEVEL):
        raise _invalid("label_hours", _l("The time on the label is given only when opening an "
                                         "MSL 6 lot."))
    if msl == "1":
        raise Conflict(_l("Lot %(lot)s is MSL 1: its floor life is unlimited.", lot=lot.lot_no),
                       code="not_moisture_sensitive")
    if lot.state in CLOSED:
        raise Conflict(_l("Lot %(lot)s is %(state)s.", lot=lot.lot_no, state=_l(lot.state)),
                       code="lot_closed")
    clock = moisture.clock_of(session, lot.id)
    before = clock.state if clock is not None else "sealed"
    target = _MOISTURE_TARGET[action]
    if action != "bake" and before == target:
        raise Conflict(_l("Lot %(lot)s is %(target)s already.", lot=lot.lot_no,
                          target=target.replace('_', ' ')),
                       code=f"already_{target}")
    if (action == "open" and msl == moisture.LABEL_LEVEL and label_hours is None
            and (clock is None or clock.label_hours is None)):
        raise _invalid("label_hours", _l("An MSL 6 lot needs the floor life on its label."))
    now = utcnow()
    if clock is None:
        clock = MoistureClock(lot_id=lot.id, exposure_seconds=0)
        session.add(clock)
    if clock.open_since is not None:
        clock.exposure_seconds = moisture.clock_life(clock, msl, now).exposure_seconds
    clock.open_since = now if target == "open" else None
    if action == "bake":
        clock.exposure_seconds = 0
        clock.baked_at = now
    if label_hours is not None:
        clock.label_hours = label_hours
    clock.state = target
    clock.updated_at = now
    view = moisture_view(session, lot, clock, now)
    floor.record_event(session, lot, f"moisture_{action}", actor, at=now, data={
        "from": before, "state": target, "exposure_hours": view.exposure_hours,
        "remaining_hours": view.remaining_hours, "msl": msl,
        **({"label_hours": label_hours} if label_hours is not None else {})})
    return view
