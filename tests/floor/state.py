"""What the shop-floor tests compare before and after a refused move: every lot row, every
tool's load and the row counts of the floor's tables."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mes.audit.models import AuditEvent
from mes.catalog.models import Equipment, EquipmentStateChange
from mes.floor.models import (
    Lot,
    LotEdge,
    LotEvent,
    LotReject,
    LotWafer,
    MaterialUse,
    StepRun,
    Wafer,
)
from mes.quality.models import Hold
from tests.helpers import row_counts

FLOOR_TABLES = (Lot, Wafer, LotWafer, StepRun, LotEvent, LotEdge, LotReject, MaterialUse,
                Hold, EquipmentStateChange, AuditEvent)


def floor_state(session: Session) -> dict[str, Any]:
    """The database as the floor sees it, read fresh (not from the session's identity map)."""
    return {
        "counts": row_counts(session, *FLOOR_TABLES),
        "lots": [tuple(row) for row in session.execute(
            select(Lot.lot_no, Lot.state, Lot.step_seq, Lot.step_code, Lot.quantity,
                   Lot.version, Lot.equipment_id, Lot.run_id, Lot.open_holds,
                   Lot.route_id).order_by(Lot.id))],
        "equipment": [tuple(row) for row in session.execute(
            select(Equipment.code, Equipment.state, Equipment.lots_running,
                   Equipment.version).order_by(Equipment.code))],
        "runs": [tuple(row) for row in session.execute(
            select(StepRun.id, StepRun.finished_at, StepRun.good_qty).order_by(StepRun.id))],
    }


def lot_row(session: Session, lot_no: str) -> dict[str, Any]:
    """One lot's columns, read fresh."""
    row = session.execute(select(Lot.__table__).where(Lot.lot_no == lot_no)).mappings().one()
    return dict(row)
