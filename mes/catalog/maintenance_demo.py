"""The demo plant's preventive maintenance: plans on its tools, by calendar and by use, the
PMs done the day before the lots' history starts (each tool in scheduled down for it, with
the downtime reason DT-PM), and one plan that falls due as the load ends (after the
history's last move, which it therefore leaves as it was), so the equipment page and the
station show a tool waiting for its PM."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from mes.auth.models import User
from mes.catalog import maintenance, services
from mes.db import simulated_time
from mes.vocabulary import EquipmentState

ENGINEER = "engineer"
# The days from the plans' creation (a day before the 30 days of history) to the load.
DUE_AT_LOAD = 31
DOWNTIME_REASON = "DT-PM"
# (tool, plan, every_days, every_units). Plans by use count the units tracked out on the
# tool; their counts lie beyond what the 30 days of history process on each.
PLANS = [
    ("SAW-01", "Spindle and flange check", 60, None),
    ("SAW-01", "Blade hub clean", None, 7_000_000),
    ("SAW-02", "Spindle and flange check", 60, None),
    ("DB-01", "Dispense needle and epoxy path clean", 35, None),
    # Created 31 days before the load: due as the load ends, after the history's last move.
    ("DB-02", "Dispense needle and epoxy path clean", DUE_AT_LOAD, None),
    ("WB-01", "Bond head and transducer calibration", 45, None),
    ("WB-01", "Capillary clamp and EFO clean", None, 3_500_000),
    ("WB-02", "Bond head and transducer calibration", 45, None),
    ("MLD-01", "Mold clean and release wax", 33, None),
    ("OVN-01", "Temperature profile and N2 flow check", 90, None),
    ("TST-01", "Tester calibration", 90, None),
    ("TST-01", "Handler contactor clean", None, 7_000_000),
]
# The PMs done before the history starts: (tool, plan, notes).
DONE = [
    ("SAW-01", "Spindle and flange check", "Flange runout 1.2 um; spindle bearings ok."),
    ("WB-01", "Bond head and transducer calibration",
     "USG calibrated; bond force verified at 20/50/100 gf."),
    ("MLD-01", "Mold clean and release wax", "Melamine clean, 3 release shots."),
    ("TST-01", "Tester calibration", "DC and timing calibration passed."),
]


def load_demo_maintenance(session: Session, start: datetime) -> None:
    """Create the plans at `start` and record the PMs of DONE in the hours after it (the
    lots' history begins a day after `start`)."""
    engineer = session.scalars(select(User).where(User.username == ENGINEER)).one()
    with simulated_time(start):
        for code, name, days, units in PLANS:
            maintenance.create_plan(session, engineer, services.get_equipment(session, code),
                                    {"name": name, "every_days": days, "every_units": units})
    for i, (code, name, notes) in enumerate(DONE):
        tool = services.get_equipment(session, code)
        at = start + timedelta(hours=2, minutes=20 * i)
        with simulated_time(at):
            services.update_equipment(session, engineer, tool, {
                "state": EquipmentState.SCHEDULED_DOWN, "reason": DOWNTIME_REASON,
                "comment": name})
        with simulated_time(at + timedelta(hours=2)):
            maintenance.record_pm(session, engineer, tool, {"plan": name, "notes": notes})
        with simulated_time(at + timedelta(hours=2, minutes=10)):
            services.update_equipment(session, engineer, tool,
                                      {"state": EquipmentState.STANDBY})
        session.flush()
