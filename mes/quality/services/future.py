"""Future holds: rules that stop a lot matching a criterion (itself or through an
ancestor) when it arrives at a step.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    CompoundSelect,
    DateTime,
    Select,
    String,
    bindparam,
    cast,
    func,
    literal_column,
    null,
    select,
    type_coerce,
    union_all,
)
from sqlalchemy.orm import Session, joinedload

from mes import audit
from mes.auth.actor import SYSTEM, Actor, actor_name
from mes.catalog.models import Equipment, MaterialLot, Route, RouteStep
from mes.catalog.services import route_step_infos
from mes.db import UTCDateTime, utcnow
from mes.errors import Conflict, ErrorCode, NotFound
from mes.floor.genealogy import ancestors, descendants
from mes.floor.models import Lot, LotWafer, MaterialUse, StepRun, Wafer
from mes.quality.models import FutureHold, Hold, PresentedRule
from mes.quality.services.common import (
    IN_PLANT,
    SHIPPED,
    active_reason,
    invalid,
    required_comment,
)
from mes.quality.services.holds import place_holds
from mes.quality.services.matching import ATTRIBUTE_KINDS, Criterion, criterion, seed_ids
from mes.vocabulary import FutureHoldStatus, HoldSource, LotState, MatchKind, ReasonKind


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


def present_rules(session: Session, rules: Sequence[FutureHold]) -> list[PresentedRule]:
    """The rules with how many holds each has placed, read in one query."""
    ids = [rule.id for rule in rules]
    counts: dict[int | None, int] = {}
    if ids:
        counts = {rule_id: n for rule_id, n in session.execute(
            select(Hold.future_hold_id, func.count()).where(Hold.future_hold_id.in_(ids))
            .group_by(Hold.future_hold_id))}
    return [PresentedRule(rule, counts.get(rule.id, 0)) for rule in rules]


@dataclass
class _Facts:
    """What the future holds of a step may ask about an arriving lot and its ancestors."""

    lot_nos: set[str] = field(default_factory=set)
    fab_lots: set[str] = field(default_factory=set)
    wafers: set[tuple[str, str]] = field(default_factory=set)
    materials: set[str] = field(default_factory=set)
    runs: list[tuple[str, datetime, datetime | None]] = field(default_factory=list)


def _facts_query(*, genealogy: bool) -> CompoundSelect[Any]:
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
               .where(FutureHold.status == FutureHoldStatus.ACTIVE,
                      FutureHold.at_step == bindparam("step")))


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
    if kind == MatchKind.FAB_LOT:
        return match["fab_lot"] in facts.fab_lots
    if kind == MatchKind.WAFER:
        if match.get("fab_lot"):
            return (match["fab_lot"], match["wafer"]) in facts.wafers
        return any(wafer == match["wafer"] for _fab, wafer in facts.wafers)
    if kind == MatchKind.MATERIAL_LOT:
        return match["material_lot"] in facts.materials
    if kind == MatchKind.EQUIPMENT:
        # An equipment rule always stores its `since` (matching.criterion requires it).
        since, until = datetime.fromisoformat(match["since"]), _time(match.get("until"))
        return any(code == match["equipment"] and (until is None or started < until)
                   and (finished is None or finished > since)
                   for code, started, finished in facts.runs)
    return not facts.lot_nos.isdisjoint(match["lots"])


def on_arrival(session: Session, actor: Actor, lot: Lot, *,
               rules_at_step: bool | None = None) -> list[Hold]:
    """Apply the active future holds of the step `lot` has just arrived at (a track-out
    moving it there, or a rework sending it back there). A rule holds the lot when the lot
    or any of its ancestors matches, and holds each lot at most once: a lot released from
    a rule's hold (say, reworked back before the step) is not stopped by it again.

    Costs one indexed query when the step has no active rule; otherwise the lot's ancestors
    are read once, with what the step's rules ask about them.
    """
    if rules_at_step is False:
        return []  # read with the lot (floor.services.lot_to_move): no rule waits here
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
        placed += place_holds(session, SYSTEM, [lot], rule.reason, rule.comment, HoldSource.FUTURE,
                         placed_by=rule.created_by, rule=rule,
                         data={"rule": rule.id, "triggered_by": actor_name(actor)})
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
        elif row.state == LotState.COMPLETED or row.step_seq > seq:
            counts["past_step"] += 1
        elif row.step_seq == seq:
            counts["at_step"] += 1
            at_step_lots.append(row.lot_no)
        else:
            counts["before_step"] += 1
    return {key: counts[key] for key in ("before_step", "at_step", "past_step",
                                         "not_on_route", "shipped")} | \
        {"at_step_lots": at_step_lots}


def create_future_hold(session: Session, actor: Actor, *, reason: str, comment: str,
                       at_step: str, match: dict[str, Any]) -> PresentedRule:
    """Create a rule that holds every lot matching `match` (itself or through an ancestor,
    so lots split or merged later are caught) when it arrives at step `at_step`.

    The rule applies to arrivals only: lots already at or past the step are not held by
    it. The rule is returned with `matching_now`: how many matching lots are before, at
    and past the step now (and the lot numbers at the step), so they can be held by hand.

    Raises InvalidInput (not an active hold reason code, no comment, a step on no route,
    a match as `criterion`).
    """
    hold_reason = active_reason(session, reason, ReasonKind.HOLD, "reason")
    text = required_comment(comment)
    if not _step_known(session, at_step):
        raise invalid("at_step", _l("No route has a step %(at_step)s.", at_step=at_step))
    crit = criterion(session, match)
    if crit.kind in ATTRIBUTE_KINDS:
        raise invalid("match", _l("A future hold cannot match by %(kind)s; hold the lots "
                                   "by a mass hold instead.", kind=crit.kind.label))
    rule = FutureHold(reason=hold_reason, comment=text, at_step=at_step, match_kind=crit.kind,
                      match=crit.stored, status=FutureHoldStatus.ACTIVE,
                      created_by=actor_name(actor),
                      created_at=utcnow())
    session.add(rule)
    # Flushed for the rule id the audit record names.
    session.flush()
    positions = _positions(session, crit, at_step)
    audit.record(session, actor=actor, code="future_hold:create", subject_type="future_hold",
                 subject_key=str(rule.id),
                 data={"reason": hold_reason.code, "comment": text, "at_step": at_step,
                       "match": crit.stored})
    return PresentedRule(rule, holds_placed=0, matching_now=positions)


def retire_future_hold(session: Session, actor: Actor, rule: FutureHold) -> FutureHold:
    """Retire a rule: it holds no further lot and is kept for the record. Holds it placed
    stay as they are. Raises Conflict `not_active` for a rule already retired."""
    if rule.status != FutureHoldStatus.ACTIVE:
        raise Conflict(_l("Future hold %(rule_id)s is already retired.", rule_id=rule.id),
                       code=ErrorCode.NOT_ACTIVE)
    rule.status = FutureHoldStatus.RETIRED
    rule.retired_by = actor_name(actor)
    rule.retired_at = utcnow()
    audit.record(session, actor=actor, code="future_hold:retire", subject_type="future_hold",
                 subject_key=str(rule.id), data={"at_step": rule.at_step})
    return rule
