"""Shop-floor test helpers: moving a lot along the test plant's route, and what the tests
compare before and after a refused move (every lot row, every tool's load, the row counts of
the floor's tables)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mes.audit.models import AuditEvent
from mes.catalog.models import Equipment, EquipmentStateChange, ReasonCode
from mes.floor import services
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


# Tool and material lots for each step of the test plant's route.
TOOLS = {"SAW": ("SAW-1", []), "WB": ("WB-1", ["AU-1"]), "FT": ("TST-1", []),
         "PACK": ("TR-1", [])}


def hold(session, lot: Lot) -> Hold:
    reason = session.scalar(select(ReasonCode).where(ReasonCode.code == "H-ENG"))
    placed = Hold(lot_id=lot.id, reason_id=reason.id, comment="engineering look",
                  placed_by="qa", step_code=lot.step_code)
    session.add(placed)
    lot.open_holds = 1
    session.commit()
    return placed


def track_in(session, lot: Lot, equipment: str | None = None,
             materials: list[str] | None = None) -> Lot:
    tool, needed = TOOLS[lot.step_code]
    services.track_in(session, "op1", lot, step=lot.step_code, equipment=equipment or tool,
                      materials=needed if materials is None else materials)
    session.commit()
    return lot


def track_out(session, lot: Lot, good: int | None = None,
              rejects: list[dict[str, Any]] | None = None) -> Lot:
    """Track the lot out with `good` (default all) and `rejects`; at a test step the
    tester first counts the good units (see `ready_test_step`)."""
    good = lot.quantity if good is None else good
    ready_test_step(session, lot, good)
    services.track_out(session, "op2", lot, step=lot.step_code, good_qty=good,
                       rejects=rejects or [])
    session.commit()
    return lot


def ready_test_step(session, lot: Lot, good: int) -> None:
    """At a test step, what a track-out of `good` units needs: without test data, a bin
    summary of `good` passing units (the rejects the track-out books are then its
    unaccounted units), and the insertion closed. Elsewhere nothing."""
    from mes.testfloor import insertions
    from mes.testfloor import services as testfloor
    if not is_test_step(lot):
        return
    current = insertions.current_insertion(session, lot, lot.step_code)
    if current is None and good > 0:
        testfloor.record_bins(session, "op1", lot, bins=[
            {"bin": 1, "count": good, "passed": True}])
        current = insertions.current_insertion(session, lot, lot.step_code)
    if current is not None and current.state == "open":
        insertions.close(session, "op1", lot, lot.step_code)
    session.commit()




def record_and_close(session, lot: Lot, bins: list[dict[str, Any]] | None = None) -> dict:
    """Record a bin summary of `lot` at its (test) step — by default, when the lot has no
    test data there yet, every unit good in bin 1 — close the test insertion and give its
    proposed track-out."""
    from mes.testfloor import insertions
    from mes.testfloor import services as testfloor
    if bins is not None or insertions.current_insertion(session, lot, lot.step_code) is None:
        testfloor.record_bins(session, "op1", lot, bins=bins or [
            {"bin": 1, "count": lot.quantity, "passed": True}])
    closed = insertions.close(session, "op1", lot, lot.step_code)
    session.commit()
    return closed.proposal


def track_out_as_proposed(session, lot: Lot, proposal: dict,
                          unaccounted_reason: str = "R-SCRATCH") -> Lot:
    """Track out a test step exactly as its insertion proposes; the unaccounted units (if
    any) booked to `unaccounted_reason`."""
    rejects = [dict(r) for r in proposal["rejects"]]
    if proposal["unaccounted"]:
        rejects.append({"reason": unaccounted_reason, "qty": proposal["unaccounted"]})
    return track_out(session, lot, good=proposal["good_qty"], rejects=rejects)


def advance(session, lot: Lot, steps: int = 1) -> Lot:
    """Move the lot `steps` steps on: track in and out, every unit good; at a test step
    every unit is recorded good in bin 1 and the insertion closed before the track-out."""
    for _ in range(steps):
        track_in(session, lot)
        if is_test_step(lot):
            track_out_as_proposed(session, lot, record_and_close(session, lot))
        else:
            track_out(session, lot)
    return lot


def is_test_step(lot: Lot) -> bool:
    step = next(s for s in services.route_steps(lot) if s.code == lot.step_code)
    return step.kind == "test"


def wafer_links(session, lot: Lot) -> int:
    return count(session, LotWafer, lot_id=lot.id)


def count(session, model: Any, **where: Any) -> int:
    stmt = select(func.count()).select_from(model)
    for name, value in where.items():
        stmt = stmt.where(getattr(model, name) == value)
    return session.scalar(stmt)
