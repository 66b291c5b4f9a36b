"""Genealogy queries over the split and merge edges (`LotEdge`): every descendant or ancestor
of a set of lots, a lot's direct parents and children, and its backward tree with the edges.

Each walk is one recursive query over `lot_edge` (indexed both ways), the same SQL on SQLite
and PostgreSQL: no query per lot, whatever the depth or width of the tree. UNION (not UNION
ALL) drops a lot reached twice, which a merge after a split does, so the walk visits each
lot once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, bindparam, literal, select, union_all
from sqlalchemy.orm import Session

from mes.floor.models import Lot, LotEdge


def _walk(seeds: Select[Any], *, down: bool, name: str) -> Select[Any]:
    start = seeds.subquery()
    found = select(start.c[0].label("lot_id")).cte(name, recursive=True)
    step_to, step_from = ((LotEdge.child_id, LotEdge.parent_id) if down
                          else (LotEdge.parent_id, LotEdge.child_id))
    found = found.union(select(step_to).select_from(LotEdge)
                        .join(found, step_from == found.c.lot_id))
    return select(found.c.lot_id)


def descendants(session: Session | None, seed_ids: Select[Any]) -> Select[Any]:
    """A select of the ids of the seed lots and of every lot descended from them (split
    children, merge survivors, and theirs in turn). `seed_ids` selects lot ids in its first
    column. The walk is a plain select, the same on every database: `session` (where the
    caller will run it) may be None for a statement built once, ahead of any session."""
    return _walk(seed_ids, down=True, name="lot_down")


def ancestors(session: Session | None, seed_ids: Select[Any]) -> Select[Any]:
    """A select of the ids of the seed lots and of every lot they came from (split parents,
    lots merged into them, and theirs in turn)."""
    return _walk(seed_ids, down=False, name="lot_up")


_other = Lot.__table__.alias("other")
# Built once: composing a union of aliases costs more than running it.
_NEIGHBOURS = (
    union_all(
        select(LotEdge.id.label("edge_id"), LotEdge.child_id.label("lot_id"), _other.c.lot_no,
               literal("p").label("side"))
        .join(_other, _other.c.id == LotEdge.parent_id)
        .where(LotEdge.child_id.in_(bindparam("ids", expanding=True))),
        select(LotEdge.id.label("edge_id"), LotEdge.parent_id.label("lot_id"), _other.c.lot_no,
               literal("c").label("side"))
        .join(_other, _other.c.id == LotEdge.child_id)
        .where(LotEdge.parent_id.in_(bindparam("ids", expanding=True))),
    ).order_by("edge_id")
)


def neighbours(session: Session, lot_ids: Sequence[int]
               ) -> tuple[dict[int, list[str]], dict[int, list[str]]]:
    """The lot numbers of each lot's direct parents and direct children, in the order the
    edges were made, in one query: ({lot id: parents}, {lot id: children})."""
    parents: dict[int, list[str]] = defaultdict(list)
    children: dict[int, list[str]] = defaultdict(list)
    if lot_ids:
        for _id, lot_id, lot_no, side in session.execute(_NEIGHBOURS, {"ids": list(lot_ids)}):
            (parents if side == "p" else children)[lot_id].append(lot_no)
    return parents, children


@dataclass(frozen=True, slots=True)
class EdgeFrom:
    """An edge leading from an ancestor: how (split or merge), how many units, and to
    which lot."""

    kind: str
    qty: int
    child_no: str | None


def backward(session: Session, lot: Lot) -> list[tuple[Lot, list[EdgeFrom]]]:
    """Every ancestor lot of `lot` with the edges that lead from it, oldest first."""
    ids = ancestors(session, select(Lot.id).where(Lot.id == lot.id))
    lots = list(session.scalars(select(Lot).where(Lot.id.in_(ids), Lot.id != lot.id)
                                .order_by(Lot.created_at, Lot.id)))
    if not lots:
        return []
    edges = list(session.scalars(select(LotEdge).where(
        LotEdge.parent_id.in_([a.id for a in lots])).order_by(LotEdge.at, LotEdge.id)))
    numbers = {a.id: a.lot_no for a in lots} | {lot.id: lot.lot_no}
    return [(a, [EdgeFrom(e.kind, e.qty, numbers.get(e.child_id)) for e in edges
                 if e.parent_id == a.id]) for a in lots]
