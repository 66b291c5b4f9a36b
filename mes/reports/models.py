"""Indexes the reports read, on other domains' tables. Declared here (and created by
migration 0008) so that each report for a date range reads an index range instead of a
table: the time column first, and on PostgreSQL the columns the report needs included so
the scan never visits the table."""

from __future__ import annotations

from sqlalchemy import Index

from mes.catalog.models import EquipmentStateChange
from mes.floor.models import Lot, LotReject, StepRun
from mes.quality.models import Hold
from mes.testfloor.models import TestRun

_run = StepRun.__table__.c
_rej = LotReject.__table__.c
_esc = EquipmentStateChange.__table__.c
_hold = Hold.__table__.c
_test = TestRun.__table__.c
_lot = Lot.__table__.c

# Yield, cycle time and lots per tool: the track-outs of a range.
Index("ix_step_run_finished", _run.finished_at,
      postgresql_include=["lot_id", "step_code", "step_seq", "equipment_id", "qty_in",
                          "good_qty", "reject_qty", "arrived_at", "started_at"])
# The reject Pareto of a range.
Index("ix_lot_reject_at", _rej.at, postgresql_include=["lot_id", "step_code", "reason_id",
                                                       "qty"])
# E10 time in state: the changes in a range, and each tool's last one before it (newest
# first, the id breaking ties of equal times).
Index("ix_equipment_state_change_at", _esc.at,
      postgresql_include=["equipment_id", "to_state"])
Index("ix_equipment_state_change_tool_at", _esc.equipment_id, _esc.at, _esc.id)
# Dispositions (and scrap quantities) of a range.
Index("ix_hold_released_at", _hold.released_at)
# First-pass and final yield of the test runs of a range; the portal's yields rank each
# lot's runs at a step by id.
Index("ix_test_run_created_at", _test.created_at,
      postgresql_include=["lot_id", "product_id", "step_code", "units", "first_pass_good",
                          "final_good", "id"])
# Per-lot cycle time: lots that finished their route in a range (a closed lot's
# arrived_at is its last track-out).
Index("ix_lot_state_arrived", _lot.state, _lot.arrived_at,
      postgresql_include=["created_at", "product_id", "customer_id"])
# The lots a range can concern: a lot row is updated by every move, hold change and
# shipment, so its updated_at is at or after each of them (services.py, _touched).
Index("ix_lot_updated", _lot.updated_at,
      postgresql_include=["id", "product_id", "customer_id", "due_date"])
