"""Process control test helpers: a wire-pull plan at WB, lots run through WB and measured."""

from __future__ import annotations

from typing import Any

from mes.floor import services as floor
from mes.spc import services as spc

ENGINEER = "engineer-1"


def make_plan(session, code: str = "WB-PULL", n: int = 5, frequency: str = "hours:8",
              **kw: Any):
    data = {"code": code, "step": "WB", "characteristic": "Wire pull", "unit": "gf",
            "subgroup_size": n, "frequency": frequency, "lsl": 3.0, "usl": 12.0,
            "target": 8.0, "equipment_kind": "wire_bonder", **kw}
    plan = spc.create_plan(session, ENGINEER, data)
    session.commit()
    return plan


def at_wb(session, receive, tool: str = "WB-1", lot_no: str | None = None):
    """A new lot tracked in at WB on `tool` (saw step done)."""
    lot = receive(1000, lot_no=lot_no)
    floor.track_in(session, "op", lot, step="SAW", equipment="SAW-1")
    floor.track_out(session, "op", lot, step="SAW", good_qty=1000)
    floor.track_in(session, "op", lot, step="WB", equipment=tool, materials=["AU-1"])
    session.commit()
    return lot


def finish_wb(session, lot) -> None:
    floor.track_out(session, "op", lot, step="WB", good_qty=lot.quantity)
    session.commit()


def sample(session, plan, lot, values, tool: str = "WB-1"):
    judged = spc.add_sample(session, "op", plan, lot=lot.lot_no, equipment=tool, values=values)
    session.commit()
    return judged
