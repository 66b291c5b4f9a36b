"""The demo plant's process control: four data collection plans (wire pull and ball shear
at WB, die shear at DA, mold thickness at MOLD) measured on the lots the demo history ran,
at the times they ran, through the same services as the pages (subgroups, limits frozen
from the first 25 subgroups, the rules, the reaction plan).

The values are seeded, so every load gives the same charts: in control around the target
(subgroup means within ±0.9σ of the centre, never eight on one side), except for
- ball shear on WB-01 about a week before the end: the bond force drifts low for a few
  lots (rule 2), the event is opened, the engineer closes it (cause and action), and QA
  releases the lots it held once they were measured in specification;
- wire pull on WB-02 in the last hours: the pull strength drifts low and breaks rule 2;
  the event stays open, WB-02 is in the engineering state and its lots are held.
Mold thickness creeps up slowly through the month (within its limits).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mes.auth.models import User
from mes.catalog.models import Equipment
from mes.db import simulated_time
from mes.floor.models import Lot, StepRun
from mes.quality import services as quality
from mes.quality.models import Hold
from mes.spc import services
from mes.spc.stats import MIN_BASELINE, XBAR_R
from mes.vocabulary import HoldStatus

SEED = 26_1217
ENGINEER, QA, OPERATORS = "engineer", "qa", ("op1", "op2")


@dataclass(frozen=True)
class DemoPlan:
    data: dict[str, Any]
    mean: float
    sigma: float
    digits: int
    # The tool that drifts, from how many days before the end (0: its last subgroups), and
    # the shift of the mean, in σ of a mean, of its drifting subgroups.
    drift_tool: str | None = None
    drift_days_before_end: int = 0
    drift: tuple[float, ...] = ()
    close: tuple[str, str] | None = None
    creep: float = 0.0


PLANS = [
    DemoPlan({"code": "WB-PULL", "step": "WB", "characteristic": "Wire pull strength",
              "unit": "gf", "subgroup_size": 5, "frequency": "hours:4", "lsl": 4.0,
              "target": 8.5, "equipment_kind": "wire_bonder"},
             mean=8.5, sigma=0.6, digits=1, drift_tool="WB-02",
             drift=(-1.6, -2.6, -3.4)),
    DemoPlan({"code": "WB-SHEAR", "step": "WB", "characteristic": "Ball shear",
              "unit": "gf", "subgroup_size": 5, "frequency": "hours:4", "lsl": 15.0,
              "usl": 35.0, "target": 25.0, "equipment_kind": "wire_bonder"},
             mean=25.0, sigma=1.5, digits=1, drift_tool="WB-01", drift_days_before_end=7,
             drift=(-1.6, -2.6, -3.4),
             close=("Bond force setting on WB-01 lowered during a capillary change "
                    "(recipe restored from the wrong backup).",
                    "Recipe restored and locked; capillary change checklist now includes "
                    "the bond force check. The lots held were measured in specification "
                    "and released.")),
    DemoPlan({"code": "DA-SHEAR", "step": "DA", "characteristic": "Die shear strength",
              "unit": "kgf", "subgroup_size": 3, "frequency": "hours:8", "lsl": 5.0,
              "target": 9.5, "equipment_kind": "die_bonder"},
             mean=9.5, sigma=0.7, digits=2),
    DemoPlan({"code": "MOLD-THK", "step": "MOLD", "characteristic": "Mold cap thickness",
              "unit": "mm", "subgroup_size": 5, "frequency": "hours:8", "lsl": 0.8,
              "usl": 0.9, "target": 0.85, "equipment_kind": "molder"},
             mean=0.848, sigma=0.006, digits=3, creep=0.6),
]


def _runs(session: Session, plan: DemoPlan, hours: int, end: datetime) -> list[tuple[Any, ...]]:
    """(time, lot number, tool) of the runs to measure: per tool, the first run finished at
    least `hours` after the tool's last measured one."""
    rows = session.execute(
        select(StepRun.finished_at, StepRun.started_at, Lot.lot_no, Equipment.code)
        .join(Lot, Lot.id == StepRun.lot_id).join(Equipment, Equipment.id == StepRun.equipment_id)
        .where(StepRun.step_code == plan.data["step"], Equipment.kind ==
               plan.data["equipment_kind"])).all()
    runs = sorted(((fin or start + timedelta(minutes=15)), lot_no, tool)
                  for fin, start, lot_no, tool in rows)
    last: dict[str, datetime] = {}
    chosen = []
    for at, lot_no, tool in runs:
        if at > end:
            continue
        if tool in last and at - last[tool] < timedelta(hours=hours):
            continue
        last[tool] = at
        chosen.append((at, lot_no, tool))
    return chosen


def _values(rng: random.Random, center: float, sigma: float, n: int, digits: int,
            wide: int) -> list[float]:
    """n values with mean `center` and a range of d2·σ, 5 to 25 % wider (wide = 1) or
    narrower (-1)."""
    if n == 1:
        return [round(center, digits)]
    spread = XBAR_R[n][3] * sigma * (1 + wide * rng.uniform(0.05, 0.25))
    raw = [rng.random() for _ in range(n)]
    lo, hi = min(raw), max(raw)
    scaled = [(x - lo) / ((hi - lo) or 1) * spread for x in raw]
    shift = center - sum(scaled) / n
    return [round(v + shift, digits) for v in scaled]


def load_demo_spc(session: Session, end: datetime) -> None:
    """The demo's plans and their measurements up to `end` (the history's end)."""
    rng = random.Random(SEED)
    people = {u.username: u for u in session.scalars(select(User).where(
        User.username.in_([ENGINEER, QA, *OPERATORS])))}
    engineer, qa = people[ENGINEER], people[QA]
    operators = [people[name] for name in OPERATORS]
    for spec in PLANS:
        with simulated_time(end - timedelta(days=31)):
            plan = services.create_plan(session, engineer, dict(spec.data))
        hours = int(spec.data["frequency"].split(":")[1])
        runs = _runs(session, spec, hours, end)
        n = spec.data["subgroup_size"]
        sigma_mean = spec.sigma / n ** 0.5
        drift_at = None
        if spec.drift_tool:
            since = end - timedelta(days=spec.drift_days_before_end or 365)
            on_tool = [i for i, r in enumerate(runs)
                       if r[2] == spec.drift_tool and r[0] >= since and i >= MIN_BASELINE]
            drift_at = (on_tool[:len(spec.drift)] if spec.drift_days_before_end
                        else on_tool[-len(spec.drift):])
        side = wide = 1
        for i, (at, lot_no, tool) in enumerate(runs):
            # Never more than two on one side of the centre line in a row.
            side = -side if i % 2 == 0 or rng.random() < 0.3 else side
            wide = -wide if i % 2 == 1 or rng.random() < 0.3 else wide
            offset = side * rng.uniform(0.3, 0.8)
            if drift_at and i in drift_at:
                offset = spec.drift[drift_at.index(i)]
            center = spec.mean + spec.creep * sigma_mean * (i / max(1, len(runs) - 1) - 0.5) \
                + offset * sigma_mean
            with simulated_time(at):
                judged = services.add_sample(session, operators[i % 2], plan, lot=lot_no,
                                             equipment=tool,
                                             values=_values(rng, center, spec.sigma, n,
                                                            spec.digits, wide))
                if i + 1 == MIN_BASELINE:
                    services.freeze_limits(session, engineer, plan)
            event = judged.event
            if event is not None and spec.close and event.state == "open" \
                    and drift_at and i == drift_at[-1]:
                with simulated_time(at + timedelta(hours=3)):
                    cause, action = spec.close
                    services.close_event(session, engineer, event, cause=cause, action=action)
                with simulated_time(at + timedelta(hours=5)):
                    holds = list(session.scalars(select(Hold).join(Lot).where(
                        Lot.lot_no.in_(event.held_lots), Hold.status == HoldStatus.OPEN,
                        Hold.source == "spc")))
                    if holds:
                        quality.release_holds(session, qa, [h.id for h in holds], {
                            "disposition": "release",
                            "comment": f"SPC event {event.id}: lots measured in "
                                       "specification."})
            session.flush()
