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
      postgresql_include=["lot_id", "step_code", "equipment_id", "qty_in", "good_qty",
                          "reject_qty", "arrived_at", "started_at"])
# The reject Pareto of a range.
Index("ix_lot_reject_at", _rej.at, postgresql_include=["lot_id", "step_code", "reason_id",
                                                       "qty"])
# E10 time in state: a tool's changes in a range and the last one before it.
Index("ix_equipment_state_change_tool_at", _esc.equipment_id, _esc.at)
# Dispositions (and scrap quantities) of a range.
Index("ix_hold_released_at", _hold.released_at)
# First-pass and final yield of the test runs of a range.
Index("ix_test_run_created_at", _test.created_at,
      postgresql_include=["lot_id", "product_id", "step_code", "units", "first_pass_good",
                          "final_good"])
# Per-lot cycle time: lots that finished their route in a range (a closed lot's
# arrived_at is its last track-out).
Index("ix_lot_state_arrived", _lot.state, _lot.arrived_at,
      postgresql_include=["created_at", "product_id", "customer_id"])
# The product and customer of the lots a range touched, read from the index alone.
Index("ix_lot_id_owner", _lot.id, postgresql_include=["product_id", "customer_id",
                                                      "due_date"])
