"""Commonality analysis: what the complained lots have in common that the other lots shipped
in the same period do not.

Each complained lot (a lot a complaint resolved to: the shipped lot of a reel or label) is
counted once, with its history: the lot itself and every lot it came from through splits and
merges (a split child's earlier steps ran on its parent, a merge survivor carries the
material of the lots merged into it). Its factors:

- `fab_lot`: the fab lot of the lot or of any ancestor;
- `wafer`: a wafer its units came from (value `FAB_LOT/WAFER_ID`);
- `material_lot`: a material lot consumed by the lot or an ancestor;
- `equipment`: a tool at a step (value the tool's code, `step` the step), with the time
  window the complained lots ran on it there (first start to last finish);
- `date_code`, `route_version` (`ROUTE/VERSION`), `bom_revision` (`PRODUCT/REVISION`): the
  lot's own (split children inherit them).

The base is every lot shipped to any customer between the first and the last shipment of a
complained lot, widened by COMMONALITY_BASE_DAYS on each side, plus the complained lots
themselves, each with its history as above. A factor's `complained_lots` and `base_lots`
count the lots having it (an equipment factor: lots that ran on the tool at that step within
the window), and lift = (complained_lots / complained) / (base_lots / base).

Ranking (docs/decisions.md, "Commonality, returns and failure analysis"): factors shared by
at least two complained lots (or by the only one) come first, then the factors of single
lots; within each group by `p_value`, the chance that as many complained lots would share
the factor if they were lots of the base taken at random (the hypergeometric tail: Fisher's
one-sided exact test), smallest first, so a high lift on two lots does not outrank a
slightly lower lift on twelve; then by lift, complained_lots (more first), base_lots (fewer
first), kind and value.

Everything is counted in the database: one statement for the complained lots' factors and
one for the base counts of those factors, whatever the number of lots.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask import current_app, has_app_context
from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    BigInteger,
    Select,
    String,
    and_,
    cast,
    func,
    literal,
    null,
    or_,
    select,
    text,
    true,
    union,
    union_all,
)
from sqlalchemy.orm import Session

from mes.catalog.models import Bom, Equipment, MaterialLot, Product, Route
from mes.db import UTCDateTime
from mes.errors import InvalidInput
from mes.floor.models import Lot, LotEdge, LotWafer, MaterialUse, StepRun, Wafer
from mes.shipping.models import Shipment, ShipmentLot
from mes.vocabulary import Vocabulary


class FactorKind(Vocabulary):
    """What complained lots may have in common."""

    FAB_LOT = "fab_lot", _l("Fab lot")
    WAFER = "wafer", _l("Wafer")
    MATERIAL_LOT = "material_lot", _l("Material lot")
    EQUIPMENT = "equipment", _l("Equipment at a step")
    DATE_CODE = "date_code", _l("Date code")
    ROUTE_VERSION = "route_version", _l("Route version")
    BOM_REVISION = "bom_revision", _l("BOM revision")


KIND_ORDER = [kind.value for kind in FactorKind]
# How many days the base period extends the complained lots' shipments on each side.
DEFAULT_BASE_DAYS = 14
# The row of the counting statement that carries the base's size.
BASE_ROW = "_base"
# The most complained lots one analysis takes.
MAX_LOTS = 500


@dataclass
class Factor:
    kind: str
    value: str
    complained_lots: int
    base_lots: int
    lift: float
    # Equipment: the step and the complained lots' window on the tool there.
    step: str | None = None
    window: dict[str, datetime] | None = None
    # The complained lots sharing it, by lot number.
    lots: list[str] = field(default_factory=list)
    # Shared by at least two complained lots (or by the only one): ranked first.
    ranked: bool = True
    # The chance that as many complained lots would share it if they were any lots of the
    # base (`chance`): the ranking's key, smallest first.
    p_value: float = 1.0

    @property
    def label(self) -> str:
        return str(FactorKind.word(self.kind))


@dataclass
class Commonality:
    lots: list[str]
    complained: int
    base: int
    since: datetime | None
    until: datetime | None
    base_days: int
    factors: list[Factor]


def base_days() -> int:
    if has_app_context():
        return int(current_app.config.get("COMMONALITY_BASE_DAYS", DEFAULT_BASE_DAYS))
    return DEFAULT_BASE_DAYS


def _history(roots: Select[Any], name: str) -> Any:
    """A CTE of (root, lot_id): each root lot and every lot it came from, at any depth."""
    start = roots.subquery()
    hist = select(start.c[0].label("root"), start.c[0].label("lot_id")).cte(
        name, recursive=True)
    return hist.union(select(hist.c.root, LotEdge.parent_id)
                      .join(hist, LotEdge.child_id == hist.c.lot_id))


def _each(session: Session, rows: Any, outer: Any, inner: Any) -> Any:
    """`rows` (a CTE) with `inner`'s columns for each of its rows, `inner` correlated to it
    by an indexed key. PostgreSQL plans a join of tens of thousands of rows against a large
    table as a hash join over the whole table; a lateral subquery behind OFFSET 0 keeps it
    to one index lookup per row. SQLite does that by itself with a plain join."""
    if session.get_bind().dialect.name == "postgresql":
        sub = inner.offset(0).lateral()
        return select(*outer, *sub.c).select_from(rows).join(sub, true())
    assert inner.whereclause is not None
    return select(*outer, *inner.selected_columns).select_from(rows).where(inner.whereclause)


def _parts(session: Session, hist: Any, name: str, keep: dict[str, Any] | None = None
           ) -> list[Select[Any]]:
    """One select per factor kind giving (kind, root, key_str, key_int, started, finished);
    `keep` names the candidate keys of each kind (mes.commonality.services._candidates).
    The lots of the history are read once (their fab lot, date code, route and BOM)."""
    attrs = _each(session, hist, (hist.c.root, hist.c.lot_id),
                  select(Lot.fab_lot, Lot.date_code, Lot.route_id, Lot.bom_id)
                  .where(Lot.id == hist.c.lot_id)).cte(f"{name}_lots")
    own = attrs.c.lot_id == attrs.c.root

    def cond(kind: str, column: Any) -> Any:
        if keep is None:
            return column.is_not(None)
        return column.in_(keep[kind])

    none_s, none_i, none_t = (cast(null(), String), cast(null(), BigInteger),
                              cast(null(), UTCDateTime()))
    if keep is None:
        tools: Any = True
    elif keep[FactorKind.EQUIPMENT]:
        # A base lot has the factor when its run on the tool at the step started within the
        # window: each window is a range of the (equipment, started_at) index.
        tools = or_(*[and_(StepRun.equipment_id == key[0],
                           StepRun.started_at.between(since, until),
                           StepRun.step_code == key[1])
                      for key, (since, until) in keep[FactorKind.EQUIPMENT].items()])
    else:
        tools = False
    return [
        select(literal(FactorKind.FAB_LOT).label("kind"), attrs.c.root, attrs.c.fab_lot,
               none_i, none_t, none_t).where(cond(FactorKind.FAB_LOT, attrs.c.fab_lot)),
        select(literal(FactorKind.WAFER), attrs.c.root, none_s, LotWafer.wafer_pk,
               none_t, none_t)
        .join(LotWafer, LotWafer.lot_id == attrs.c.root)
        .where(own, cond(FactorKind.WAFER, LotWafer.wafer_pk)),
        select(literal(FactorKind.MATERIAL_LOT), attrs.c.root, none_s,
               MaterialUse.material_lot_id, none_t, none_t)
        .join(MaterialUse, MaterialUse.lot_id == attrs.c.lot_id)
        .where(cond(FactorKind.MATERIAL_LOT, MaterialUse.material_lot_id)),
        select(literal(FactorKind.EQUIPMENT), attrs.c.root, StepRun.step_code,
               StepRun.equipment_id, StepRun.started_at, StepRun.finished_at)
        .join(StepRun, StepRun.lot_id == attrs.c.lot_id).where(tools),
        select(literal(FactorKind.DATE_CODE), attrs.c.root, attrs.c.date_code, none_i,
               none_t, none_t).where(own, cond(FactorKind.DATE_CODE, attrs.c.date_code)),
        select(literal(FactorKind.ROUTE_VERSION), attrs.c.root, none_s, attrs.c.route_id,
               none_t, none_t).where(own, cond(FactorKind.ROUTE_VERSION, attrs.c.route_id)),
        select(literal(FactorKind.BOM_REVISION), attrs.c.root, none_s, attrs.c.bom_id,
               none_t, none_t).where(own, cond(FactorKind.BOM_REVISION, attrs.c.bom_id)),
    ]


@dataclass
class _Seen:
    roots: set[int] = field(default_factory=set)
    started: datetime | None = None
    finished: datetime | None = None


def _period(session: Session, lot_ids: list[int], days: int
            ) -> tuple[datetime | None, datetime | None]:
    first, last = session.execute(
        select(func.min(Shipment.shipped_at), func.max(Shipment.shipped_at))
        .join(ShipmentLot, ShipmentLot.shipment_id == Shipment.id)
        .where(ShipmentLot.lot_id.in_(lot_ids))).one()
    if first is None:
        return None, None
    return first - timedelta(days=days), last + timedelta(days=days)


def commonality(session: Session, lot_ids: list[int], *, days: int | None = None,
                limit: int | None = None) -> Commonality:
    """What the complained lots `lot_ids` share, ranked (see the module's description).

    Raises InvalidInput (field `lots`) for no lot or more than MAX_LOTS.
    """
    lot_ids = sorted(set(lot_ids))
    if not lot_ids:
        raise InvalidInput(_l("Give at least one complained lot."),
                           fields={"lots": [_l("No complained lot.")]})
    if len(lot_ids) > MAX_LOTS:
        raise InvalidInput(_l("At most %(count)s complained lots.", count=MAX_LOTS),
                           fields={"lots": [_l("Too many lots.")]})
    days = base_days() if days is None else days
    numbers = dict(session.execute(select(Lot.id, Lot.lot_no).where(Lot.id.in_(lot_ids))).all())
    lot_ids = sorted(numbers)
    complained = len(lot_ids)

    # 1. The complained lots' factors.
    roots_q = select(Lot.id.label("root")).where(Lot.id.in_(lot_ids))
    hist = _history(roots_q, "c_hist")
    seen: dict[tuple[str, Any], _Seen] = {}
    for kind, root, key_s, key_i, started, finished in session.execute(
            union_all(*_parts(session, hist, "c"))):
        key = (kind, key_s if key_i is None else key_i if kind != FactorKind.EQUIPMENT
               else (key_i, key_s))
        entry = seen.setdefault(key, _Seen())
        entry.roots.add(root)
        if kind == FactorKind.EQUIPMENT:
            end = finished or started
            entry.started = started if entry.started is None else min(entry.started, started)
            entry.finished = end if entry.finished is None else max(entry.finished, end)

    # 2. How many base lots have each of them.
    since, until = _period(session, lot_ids, days)
    base_q: Any = select(Lot.id.label("root")).where(Lot.id.in_(lot_ids))
    if since is not None:
        shipments = (select(Shipment.id).where(Shipment.shipped_at >= since,
                                                Shipment.shipped_at <= until)
                     .cte("b_shipments"))
        carried = _each(session, shipments, (),
                        select(ShipmentLot.lot_id.label("root"))
                        .where(ShipmentLot.shipment_id == shipments.c.id))
        shipped = select(carried.subquery().c.root)
        base_q = union(shipped, base_q)
    base_cte = base_q.cte("b_roots")
    keep = _candidates(seen)
    b_hist = _history(select(base_cte.c.root), "b_hist")
    counts: dict[tuple[str, Any], int] = {}
    base = 0
    _no_jit(session)
    # The base's size comes in the same statement, so the base is selected once.
    total = select(literal(BASE_ROW), cast(null(), String), cast(null(), BigInteger),
                   func.count()).select_from(base_cte)
    n: int
    for kind, key_s, key_i, n in session.execute(
            union_all(total, *_counted(_parts(session, b_hist, "b", keep), seen))):
        if kind == BASE_ROW:
            base = n
            continue
        key = (kind, key_s if key_i is None else key_i if kind != FactorKind.EQUIPMENT
               else (key_i, key_s))
        counts[key] = n

    base = max(base, complained)
    factors = _present(session, seen, counts, numbers, complained, base)
    return Commonality(lots=[numbers[i] for i in lot_ids], complained=complained, base=base,
                       since=since, until=until, base_days=days,
                       factors=factors[:limit] if limit else factors)


def _candidates(seen: dict[tuple[str, Any], _Seen]) -> dict[str, Any]:
    """The complained lots' keys per kind; for equipment, (tool, step) -> window."""
    keep: dict[str, Any] = {kind: [] for kind in KIND_ORDER}
    keep[FactorKind.EQUIPMENT] = {}
    for kind, key in seen:
        if kind == FactorKind.EQUIPMENT:
            entry = seen[(kind, key)]
            keep[kind][key] = (entry.started, entry.finished)
        else:
            keep[kind].append(key)
    return keep


def _no_jit(session: Session) -> None:
    """PostgreSQL's JIT compiles the counting statement for longer than it runs (its cost
    estimate is large, its work is index lookups): off for the rest of the transaction."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL jit = off"))


def _counted(parts: list[Select[Any]], seen: dict[tuple[str, Any], _Seen]
             ) -> list[Select[Any]]:
    """The base counts: distinct root lots per kind and key, all kinds in one statement."""
    kinds = {kind for kind, _key in seen}
    counted = []
    for kind, part in zip(KIND_ORDER, parts, strict=True):
        if kind not in kinds:
            continue
        sub = part.subquery()
        cols = list(sub.c)
        counted.append(select(cols[0], cols[2], cols[3], func.count(cols[1].distinct()))
                       .group_by(cols[0], cols[2], cols[3]))
    return counted


def _present(session: Session, seen: dict[tuple[str, Any], _Seen],
             counts: dict[tuple[str, Any], int], numbers: dict[int, str], complained: int,
             base: int) -> list[Factor]:
    names = _names(session, seen)
    factors = []
    for key, entry in seen.items():
        kind = key[0]
        value = names.get(key)
        if value is None:
            continue
        n = len(entry.roots)
        b = max(counts.get(key, 0), n)
        lift = (n / complained) / (b / base)
        factor = Factor(kind=kind, value=value, complained_lots=n, base_lots=b,
                        lift=round(lift, 3), lots=sorted(numbers[r] for r in entry.roots),
                        ranked=n >= 2 or complained == 1,
                        p_value=chance(base, b, complained, n))
        if kind == FactorKind.EQUIPMENT:
            assert entry.started is not None and entry.finished is not None
            factor.step = key[1][1]
            factor.window = {"since": entry.started, "until": entry.finished}
        factors.append(factor)
    factors.sort(key=lambda f: (not f.ranked, f.p_value, -f.lift, -f.complained_lots,
                                f.base_lots, KIND_ORDER.index(f.kind), f.value, f.step or ""))
    for factor in factors:
        factor.p_value = float(f"{factor.p_value:.3g}")
    return factors


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def chance(base: int, having: int, drawn: int, shared: int) -> float:
    """The probability that `drawn` lots taken at random from `base` lots, `having` of
    which have a factor, include at least `shared` lots having it (the hypergeometric tail,
    Fisher's one-sided exact test): how unsurprising the factor is."""
    total = _log_comb(base, drawn)
    terms = [_log_comb(having, k) + _log_comb(base - having, drawn - k) - total
             for k in range(shared, min(drawn, having) + 1) if drawn - k <= base - having]
    return min(1.0, sum(math.exp(t) for t in terms))


def _names(session: Session, seen: dict[tuple[str, Any], _Seen]) -> dict[tuple[str, Any], str]:
    """Each factor's value as people and the API name it."""
    ids: dict[str, set[int]] = {kind: set() for kind in KIND_ORDER}
    names: dict[tuple[str, Any], str] = {}
    for kind, key in seen:
        if kind in (FactorKind.FAB_LOT, FactorKind.DATE_CODE):
            names[(kind, key)] = key
        else:
            ids[kind].add(key[0] if kind == FactorKind.EQUIPMENT else key)
    lookups: dict[str, Any] = {
        FactorKind.WAFER: select(Wafer.id, Wafer.fab_lot + "/" + Wafer.wafer_id)
        .where(Wafer.id.in_(ids[FactorKind.WAFER])),
        FactorKind.MATERIAL_LOT: select(MaterialLot.id, MaterialLot.code)
        .where(MaterialLot.id.in_(ids[FactorKind.MATERIAL_LOT])),
        FactorKind.EQUIPMENT: select(Equipment.id, Equipment.code)
        .where(Equipment.id.in_(ids[FactorKind.EQUIPMENT])),
        FactorKind.ROUTE_VERSION: select(Route.id, Route.code, Route.version)
        .where(Route.id.in_(ids[FactorKind.ROUTE_VERSION])),
        FactorKind.BOM_REVISION: select(Bom.id, Product.code, Bom.revision)
        .join(Product, Product.id == Bom.product_id)
        .where(Bom.id.in_(ids[FactorKind.BOM_REVISION])),
    }
    found: dict[str, dict[int, str]] = {}
    for kind, stmt in lookups.items():
        if ids[kind]:
            found[kind] = {row[0]: "/".join(str(part) for part in row[1:])
                           for row in session.execute(stmt)}
    for kind, key in seen:
        if kind in found:
            ref = key[0] if kind == FactorKind.EQUIPMENT else key
            if ref in found[kind]:
                names[(kind, key)] = found[kind][ref]
    return names
