"""Test-floor test helpers: lots at the test plant's final test step, STDF files the tests
write themselves, the shared real files, and the database state a refused call must leave
unchanged."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from mes.floor import services as floor
from mes.floor.models import Lot
from mes.testfloor.models import PatLimitSet, PatLimitVersion, TestParam, TestRun
from mes.testfloor.stdf_writer import PartSpec, TestSpec, write_stdf
from tests.floor.helpers import floor_state
from tests.helpers import row_counts

# The shared real tester files (lot3.stdf, credence_ft.std): the folder MES_STDF_DATA names,
# else shared/data/stdf beside the checkout (the checkout's parent folder). A test that needs
# one and does not find it is skipped with a reason naming the file and where it looked.
SHARED_FILES = ("lot3.stdf", "credence_ft.std")
STDF_DIR = Path(os.environ.get("MES_STDF_DATA")
                or Path(__file__).resolve().parents[2].parent / "shared" / "data" / "stdf")


def where_stdf(name: str) -> str:
    """Why the shared file `name` is not there: the path looked at and how it was chosen."""
    how = ("the folder MES_STDF_DATA names" if os.environ.get("MES_STDF_DATA")
           else "the default shared/data/stdf beside the checkout; set MES_STDF_DATA to "
                "the folder holding the shared tester files")
    return f"shared STDF file not found: {STDF_DIR / name} (looked in {STDF_DIR}: {how})"


_missing = [name for name in SHARED_FILES if not (STDF_DIR / name).is_file()]
needs_shared_files = pytest.mark.skipif(
    bool(_missing), reason=where_stdf(_missing[0]) if _missing else "")

MIR = {"LOT_ID": "FT-LOT", "SBLOT_ID": "S1", "PART_TYP": "GD100", "JOB_NAM": "gd100_ft",
       "JOB_REV": "7", "TEST_COD": "FT1", "TST_TEMP": "125", "NODE_NAM": "tester-07",
       "TSTR_TYP": "V93K"}
# The warning of a run imported at a step without a released test program.
NO_PROGRAM = ("No test program is released for this product at FT: the file was not checked "
              "against one.")
# vout: test limits 1.0..2.0 V; idd: no low limit, high limit 10 mA.
TESTS = {100: TestSpec("vout", "V", 1.0, 2.0), 200: TestSpec("idd", "mA", None, 10.0)}


def vout(i: int) -> float:
    """A spread of passing values around 1.5 V (exact in float32: multiples of 1/64)."""
    return 1.5 + ((i * 7) % 13 - 6) / 64


def good(i: int, **kw: Any) -> PartSpec:
    return PartSpec(hard_bin=1, soft_bin=1, passed=True,
                    results=kw.pop("results", [(100, vout(i)), (200, 2.0 + i % 5 / 8)]), **kw)


def bad(i: int, bin_no: int = 8, **kw: Any) -> PartSpec:
    return PartSpec(hard_bin=bin_no, soft_bin=bin_no, passed=False,
                    results=kw.pop("results", [(100, 2.5, 0x80)]), **kw)


def lot_file(good_parts: int = 40, bad_parts: int = 0, *, salt: str = "",
             **kw: Any) -> bytes:
    """An STDF file of `good_parts` passing and `bad_parts` failing parts, each a unit of
    its own (distinct PART_ID); `salt` makes otherwise equal files differ."""
    parts = [good(i, part_id=f"{salt}g{i}") for i in range(good_parts)]
    parts += [bad(i, part_id=f"{salt}b{i}") for i in range(bad_parts)]
    return stdf(parts, **kw)


def stdf(parts: Sequence[PartSpec], **kw: Any) -> bytes:
    kw.setdefault("mir", MIR)
    kw.setdefault("tests", TESTS)
    return write_stdf(None, parts=parts, **kw)


def receive_lot(session: Session, lot_no: str, quantity: int = 1000,
                product: str = "P1") -> Lot:
    """Receive a lot of the test plant for customer OEM: queued at SAW, its first step."""
    lot = floor.receive_lot(session, "planner", {
        "product": product, "customer": "OEM", "quantity": quantity, "fab_lot": "FAB1",
        "wafers": [], "lot_no": lot_no, "priority": 3, "due_date": None})
    session.commit()
    return lot


def lot_at_final_test(session: Session, lot_no: str, quantity: int = 1000,
                      product: str = "P1") -> Lot:
    """Receive a lot and put it queued at FT, the test plant's test step (test setup only:
    the moves themselves are the floor's tests)."""
    lot = receive_lot(session, lot_no, quantity, product)
    lot.step_seq, lot.step_code = 3, "FT"
    session.commit()
    return lot


def stored_state(session: Session) -> dict[str, Any]:
    """The floor's view of the database plus every test-floor row, read fresh."""
    state = floor_state(session)
    state["counts"].update(row_counts(session, TestRun, TestParam, PatLimitSet,
                                      PatLimitVersion))
    state["pat_sets"] = [tuple(row) for row in session.execute(
        select(PatLimitSet.id, PatLimitSet.active).order_by(PatLimitSet.id))]
    state["lot_rows"] = [tuple(row) for row in session.execute(
        select(Lot.__table__).order_by(Lot.id))]
    return state
