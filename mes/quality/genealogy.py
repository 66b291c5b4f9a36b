"""Genealogy walks: every descendant or ancestor of a set of lots through splits and merges.

Each walk is one recursive query over `lot_edge` (indexed both ways), the same SQL on SQLite
and PostgreSQL: no query per lot, whatever the depth or width of the tree. UNION (not UNION
ALL) drops a lot reached twice, which a merge after a split does, so the walk visits each
lot once.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from mes.floor.models import LotEdge


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
