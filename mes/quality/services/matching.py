"""Mass holds: the criterion that selects lots (a fab lot, a wafer, a material lot, a
time window on a piece of equipment, lot numbers), the lots it matches with their
descendants, and holding them all at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session, joinedload

from mes import texts
from mes.auth.actor import Actor
from mes.catalog.models import Bom, Equipment, MaterialLot, Product, Route
from mes.errors import Conflict, ErrorCode, InvalidInput
from mes.floor.genealogy import descendants
from mes.floor.models import Lot, LotWafer, MaterialUse, StepRun, Wafer
from mes.quality.models import Hold
from mes.quality.services.common import IN_PLANT, SHIPPED, active_reason, invalid, required_comment
from mes.quality.services.holds import place_holds
from mes.vocabulary import HoldSource, MatchKind, ReasonKind


@dataclass(frozen=True)
class Criterion:
    """A checked `match`: exactly one kind, references resolved."""

    kind: MatchKind
    fab_lot: str | None = None
    wafer: str | None = None
    material_lot_id: int | None = None
    equipment_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    lots: tuple[str, ...] = ()
    date_code: str | None = None
    route_id: int | None = None
    bom_id: int | None = None
    # The criterion as kept on a future hold and in the holds' data (JSON).
    stored: dict[str, Any] = field(default_factory=dict)


# The fields each kind of criterion may give.
_KEYS: dict[str, set[str]] = {
    MatchKind.FAB_LOT: {"fab_lot"}, MatchKind.WAFER: {"wafer", "fab_lot"},
    MatchKind.MATERIAL_LOT: {"material_lot"},
    MatchKind.EQUIPMENT: {"equipment", "since", "until"}, MatchKind.LOTS: {"lots"},
    MatchKind.DATE_CODE: {"date_code"}, MatchKind.ROUTE_VERSION: {"route", "route_version"},
    MatchKind.BOM_REVISION: {"product", "bom_revision"}}
# Kinds that name a lot attribute: mass holds and containments take them, future holds
# do not (a future hold matches by genealogy facts, mes.quality.services.future).
ATTRIBUTE_KINDS = (MatchKind.DATE_CODE, MatchKind.ROUTE_VERSION, MatchKind.BOM_REVISION)


def _kind(match: dict[str, Any]) -> MatchKind:
    given = {key for key, value in match.items() if value not in (None, "", [])}
    # A wafer may name its fab lot, so the fab lot is the criterion only when alone.
    kinds = [k for k in (MatchKind.WAFER, MatchKind.MATERIAL_LOT, MatchKind.EQUIPMENT,
                         MatchKind.LOTS, *ATTRIBUTE_KINDS) if k in given]
    if not kinds and MatchKind.FAB_LOT in given:
        kinds = [MatchKind.FAB_LOT]
    if len(kinds) != 1:
        raise invalid("match", _l("Give exactly one of %(fab_lot)s, %(wafer)s (optionally with "
                                   "%(fab_lot)s), %(material_lot)s, %(equipment)s with "
                                   "%(since)s/%(until)s, %(lots)s, %(date_code)s, "
                                   "%(route_version)s with %(route)s, %(bom_revision)s "
                                   "with %(product)s.", **{
                                       name: texts.field_words([name]) for name in (
                                           "fab_lot", "wafer", "material_lot", "equipment",
                                           "since", "until", "lots", "date_code",
                                           "route_version", "route", "bom_revision",
                                           "product")}))
    extra = given - _KEYS[kinds[0]]
    if extra:
        raise invalid("match", _l("%(items)s cannot be combined with %(kind)s.",
                                   items=texts.field_words(sorted(extra)), kind=kinds[0].label))
    partner = {MatchKind.ROUTE_VERSION: "route", MatchKind.BOM_REVISION: "product"}
    if kinds[0] in partner and partner[kinds[0]] not in given:
        raise invalid("match", _l("%(kind)s needs %(item)s.", kind=kinds[0].label,
                                   item=texts.field_words([partner[kinds[0]]])))
    return kinds[0]


def _attribute(session: Session, kind: MatchKind, match: dict[str, Any]) -> Criterion:
    """A criterion on a lot attribute: date code, route version, BOM revision."""
    if kind == MatchKind.DATE_CODE:
        return Criterion(kind, date_code=match["date_code"],
                         stored={"date_code": match["date_code"]})
    if kind == MatchKind.ROUTE_VERSION:
        route, version = match["route"], match["route_version"]
        route_id = session.scalar(select(Route.id).where(Route.code == route,
                                                         Route.version == version))
        if route_id is None:
            raise invalid("match", _l("Unknown route %(code)s version %(version)s.",
                                       code=route, version=version))
        return Criterion(kind, route_id=route_id,
                         stored={"route": route, "route_version": version})
    product, revision = match["product"], match["bom_revision"]
    bom_id = session.scalar(select(Bom.id).join(Product, Product.id == Bom.product_id)
                            .where(Product.code == product, Bom.revision == revision))
    if bom_id is None:
        raise invalid("match", _l("Unknown BOM revision %(revision)s of %(code)s.",
                                   revision=revision, code=product))
    return Criterion(kind, bom_id=bom_id, stored={"product": product, "bom_revision": revision})


def criterion(session: Session, match: dict[str, Any]) -> Criterion:
    """Check a `match` (exactly one criterion) and resolve what it names.

    Raises InvalidInput (field `match`) for a shape that is not one criterion, an unknown
    material lot, equipment or lot number, or a time window that ends before it starts.
    """
    if not isinstance(match, dict):
        raise invalid("match", _l("The match must be an object."))
    kind = _kind(match)
    if kind in ATTRIBUTE_KINDS:
        return _attribute(session, kind, match)
    if kind == MatchKind.FAB_LOT:
        return Criterion(kind, fab_lot=match["fab_lot"], stored={"fab_lot": match["fab_lot"]})
    if kind == MatchKind.WAFER:
        stored = {"wafer": match["wafer"]}
        if match.get("fab_lot"):
            stored["fab_lot"] = match["fab_lot"]
        return Criterion(kind, wafer=match["wafer"], fab_lot=match.get("fab_lot") or None,
                         stored=stored)
    if kind == MatchKind.MATERIAL_LOT:
        code = match["material_lot"]
        material_id = session.scalar(select(MaterialLot.id).where(MaterialLot.code == code))
        if material_id is None:
            raise invalid("match", _l("Unknown material lot %(code)s.", code=code))
        return Criterion(kind, material_lot_id=material_id, stored={"material_lot": code})
    if kind == MatchKind.EQUIPMENT:
        code = match["equipment"]
        equipment_id = session.scalar(select(Equipment.id).where(Equipment.code == code))
        if equipment_id is None:
            raise invalid("match", _l("Unknown equipment %(code)s.", code=code))
        since, until = match.get("since"), match.get("until")
        if since is None:
            raise invalid("match", _l("An equipment match needs \"%(since)s\" (and may give "
                                       "\"%(until)s\"; without it the window is open).",
                                       since=texts.field_words(["since"]),
                                       until=texts.field_words(["until"])))
        if until is not None and until <= since:
            raise invalid("match", _l("\"%(until)s\" must be after \"%(since)s\".",
                                       since=texts.field_words(["since"]),
                                       until=texts.field_words(["until"])))
        stored = {"equipment": code, "since": since.isoformat(),
                  "until": until.isoformat() if until else None}
        return Criterion(kind, equipment_id=equipment_id, since=since, until=until,
                         stored=stored)
    numbers = tuple(dict.fromkeys(match["lots"]))
    known = set(session.scalars(select(Lot.lot_no).where(Lot.lot_no.in_(numbers))))
    unknown = [n for n in numbers if n not in known]
    if unknown:
        raise invalid("match", _l("Unknown lot %(items)s.", items=', '.join(unknown)))
    return Criterion(kind, lots=numbers, stored={"lots": list(numbers)})


def seed_ids(crit: Criterion) -> Select[Any]:
    """A select of the ids of the lots the criterion names directly (before genealogy)."""
    if crit.kind == MatchKind.FAB_LOT:
        return select(Lot.id).where(Lot.fab_lot == crit.fab_lot)
    if crit.kind == MatchKind.WAFER:
        stmt = (select(LotWafer.lot_id).join(Wafer, Wafer.id == LotWafer.wafer_pk)
                .where(Wafer.wafer_id == crit.wafer))
        return stmt.where(Wafer.fab_lot == crit.fab_lot) if crit.fab_lot else stmt
    if crit.kind == MatchKind.MATERIAL_LOT:
        return select(MaterialUse.lot_id).where(
            MaterialUse.material_lot_id == crit.material_lot_id)
    if crit.kind == MatchKind.EQUIPMENT:
        # Runs that overlap the window: started before it ends, not finished before it began.
        stmt = select(StepRun.lot_id).where(
            StepRun.equipment_id == crit.equipment_id,
            or_(StepRun.finished_at.is_(None), StepRun.finished_at > crit.since))
        return stmt.where(StepRun.started_at < crit.until) if crit.until else stmt
    if crit.kind == MatchKind.DATE_CODE:
        return select(Lot.id).where(Lot.date_code == crit.date_code)
    if crit.kind == MatchKind.ROUTE_VERSION:
        return select(Lot.id).where(Lot.route_id == crit.route_id)
    if crit.kind == MatchKind.BOM_REVISION:
        return select(Lot.id).where(Lot.bom_id == crit.bom_id)
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


@dataclass(frozen=True)
class PreviewRow:
    """A lot a match selects, as the mass-hold preview lists it: `action` is `to_hold`,
    `shipped` (listed, never held) or `skipped` (scrapped or merged)."""

    lot_no: str
    state: str
    step_code: str
    customer: str
    quantity: int
    on_hold: bool
    action: str

    @property
    def shipped(self) -> bool:
        return self.state in SHIPPED


def match_preview(session: Session, match: dict[str, Any],
                  limit: int | None = None) -> tuple[dict[str, list[str]], list[PreviewRow]]:
    """`match_lots` and the lots it selects as rows (at most `limit` of them, the lots to
    hold first, then by lot number), for a preview that shows what each lot is. Raises
    InvalidInput like `criterion`."""
    found = match_lots(session, match)
    order = [*found["to_hold"], *found["shipped"], *found["skipped"]]
    action = {lot_no: key for key, numbers in found.items() for lot_no in numbers}
    shown = order[:limit] if limit is not None else order
    lots: dict[str, Lot] = {}
    for start in range(0, len(shown), 5000):
        lots.update((lot.lot_no, lot) for lot in session.scalars(
            select(Lot).where(Lot.lot_no.in_(shown[start:start + 5000]))
            .options(joinedload(Lot.customer))))
    return found, [PreviewRow(lot_no, lots[lot_no].state, lots[lot_no].step_code,
                              lots[lot_no].customer.code, lots[lot_no].quantity,
                              lots[lot_no].open_holds > 0, action[lot_no])
                   for lot_no in shown]


@dataclass
class MassHold:
    holds: list[Hold]
    lots: list[str]
    shipped: list[str]
    skipped: list[str]


def mass_hold(session: Session, actor: Actor, *, reason: str, comment: str,
              match: dict[str, Any], source: HoldSource = HoldSource.MASS) -> MassHold:
    """Hold every lot the match selects and every descendant through splits and merges,
    all in the caller's transaction (all or nothing). Lots still in the plant (queued,
    running, completed) are held; shipped lots are listed in `shipped`, not held; scrapped
    and merged lots are listed in `skipped`.

    Raises InvalidInput (reason, comment, match as `criterion`; code `no_match` when the
    match selects no lot at all) and Conflict `nothing_to_hold` when every lot it selects
    has left the plant.
    """
    hold_reason = active_reason(session, reason, ReasonKind.HOLD, "reason")
    text = required_comment(comment)
    crit = criterion(session, match)
    lots = list(session.scalars(matched_lots_query(session, crit)))
    if not lots:
        raise InvalidInput(_l("The match selects no lot."), code=ErrorCode.NO_MATCH,
                           fields={"match": [_l("No lot matches this criterion.")]})
    sorted_nos = _sort((lot.lot_no, lot.state) for lot in lots)
    to_hold = [lot for lot in lots if lot.state in IN_PLANT]
    if not to_hold:
        raise Conflict(_l("%(count)s lot(s) match, but none is still in the plant (%(count2)s "
                          "shipped, %(count3)s scrapped or merged).", count=len(lots),
                          count2=len(sorted_nos['shipped']), count3=len(sorted_nos['skipped'])),
                       code=ErrorCode.NOTHING_TO_HOLD)
    holds = place_holds(session, actor, to_hold, hold_reason, text, source,
                   data={"match": crit.stored})
    return MassHold(holds, sorted_nos["to_hold"], sorted_nos["shipped"], sorted_nos["skipped"])
