"""Fixtures of the packing tests: the test plant's route with a marking step, products with
standard pack quantities and mark templates, and lots completed on it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mes.catalog import services as cat
from mes.db import simulated_time
from mes.floor import services as floor
from tests.floor.helpers import ready_test_step

# Wednesday 2 December 2026, 23:30 UTC: Thursday 3 December in Shanghai (the plant), ISO
# week 49 either way; 27 December 2026 23:30 UTC is Monday 28 December in the plant, week 53.
MARK_AT = datetime(2026, 12, 2, 23, 30, tzinfo=UTC)
TOOLS = {"SAW": "SAW-1", "MARK": "SAW-1", "FT": "TST-1", "PACK": "TR-1"}


@pytest.fixture
def marked_plant(session, plant, qualified):
    """QFN version 2 (SAW, MARK, FT, PACK), P1 (MSL 3) at 5,000 per reel, P2 (MSL 1) at
    1,000 per reel and 100 per tube, with a mark template."""
    cat.create_route(session, "eng", {"code": "QFN", "name": "QFN", "steps": [
        {"code": "SAW", "name": "Saw", "kind": "assembly", "equipment_kind": "saw"},
        {"code": "MARK", "name": "Laser mark", "kind": "assembly", "equipment_kind": "saw"},
        {"code": "FT", "name": "Final test", "kind": "test", "equipment_kind": "tester"},
        {"code": "PACK", "name": "Tape and reel", "kind": "pack", "equipment_kind": "taper"},
    ]})
    cat.update_product(session, "eng", cat.get_product(session, "P1"), {
        "standard_pack_qty": {"reel": 5000}, "customer_part_number": "OEM-77",
        "mark_template": "{device}\n{date_code} {trace_code}"})
    cat.update_product(session, "eng", cat.get_product(session, "P2"), {
        "standard_pack_qty": {"reel": 1000, "tube": 100}})
    session.commit()


def move(session, lot, steps: int = 1, at: datetime | None = None):
    """Track the lot in and out of its next `steps` steps (at `at`, when given)."""
    for _ in range(steps):
        with simulated_time(at or datetime.now(UTC)):
            floor.track_in(session, "op1", lot, step=lot.step_code,
                           equipment=TOOLS[lot.step_code], materials=[])
            ready_test_step(session, lot, lot.quantity)
            floor.track_out(session, "op2", lot, step=lot.step_code, good_qty=lot.quantity)
            session.commit()
    return lot


@pytest.fixture
def make_lot(session, marked_plant, receive):
    """A lot of `quantity` moved `steps` steps along QFN v2 (4: completed), marked at
    `at`."""
    def make(lot_no: str, quantity: int = 30000, steps: int = 4, product: str = "P1",
             customer: str = "OEM", at: datetime = MARK_AT):
        lot = receive(quantity, lot_no=lot_no, product=product, customer=customer)
        move(session, lot, min(steps, 1))
        if steps > 1:
            move(session, lot, 1, at)
        if steps > 2:
            move(session, lot, steps - 2)
        return lot

    return make
