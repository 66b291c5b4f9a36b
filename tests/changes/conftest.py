"""A plant with a product change in progress: P2 (no customer of its own) has BOM revisions
A (gold wire) and B (copper wire, the change's), is qualified on A and has lots of the
automotive customers OEM and OEM2 and of the industrial customer IND."""

from __future__ import annotations

from typing import Any

import pytest

from mes.catalog import services as cat
from mes.changes import services as changes
from tests.floor.helpers import track_in, track_out

ENGINEER = "eng1"
# Minimum samples of the stresses used here (AEC-Q100 Table 2).
SAMPLES = {"TC": (77, 3), "HAST": (77, 3), "UHST": (77, 3), "HTSL": (45, 1),
           "HTOL": (77, 3), "AC": (77, 3)}
PRECONDITIONED = {"TC", "HAST", "UHST", "AC"}


def qualify(session, product: str, revision: str, stresses: list[str], fails: int = 0,
            report: str = "QR") -> Any:
    """Record a qualification of `product` at BOM revision `revision` with the stresses
    given, at the table's minimum samples, 0 fails unless `fails`."""
    qual = cat.add_qualification(session, ENGINEER, cat.get_product(session, product), {
        "standard": "AEC-Q100", "grade": 1, "report": report, "bom_revision": revision,
        "tests": [{"test": code, "group": "", "sample_size": SAMPLES[code][0],
                   "lots": SAMPLES[code][1], "fails": fails,
                   "preconditioned": code in PRECONDITIONED} for code in stresses]})
    session.commit()
    return qual


@pytest.fixture
def bom_plant(session, plant) -> dict[str, Any]:
    cat.create_customer(session, "test", {"code": "OEM2", "name": "Second OEM",
                                          "automotive": True})
    p2 = cat.get_product(session, "P2")
    for code, part in (("WIRE-AU", "AU-25"), ("WIRE-CU", "CU-20")):
        cat.create_material_lot(session, "test", {"code": code, "material": "wire",
                                                  "part_number": part, "expires_at": None})
    for revision, wire in (("A", "AU-25"), ("B", "CU-20")):
        cat.create_bom(session, "test", p2, {"revision": revision, "items": [
            {"step": "WB", "material": "wire", "part_numbers": [wire]}]})
    session.commit()
    qualify(session, "P2", "A", ["HTOL", "TC", "HAST", "HTSL"], report="QR-A")
    return {}


@pytest.fixture
def lots_of(session, bom_plant, receive):
    """Receive a P2 lot for `customer` (on `revision` when given) and complete it."""
    def make(lot_no: str, customer: str, revision: str | None = None,
             complete: bool = True) -> Any:
        extra = {"bom_revision": revision} if revision else {}
        lot = receive(100, lot_no=lot_no, product="P2", customer=customer, **extra)
        if complete:
            wire = "WIRE-CU" if revision == "B" else "WIRE-AU"
            for _ in range(4):
                track_in(session, lot, materials=[wire] if lot.step_code == "WB" else [])
                track_out(session, lot)
        return lot

    return make


@pytest.fixture
def change(session, lots_of) -> Any:
    """The copper-wire change of P2 (revision B), P2 having lots of OEM, OEM2 and IND."""
    for lot_no, customer in (("L-OEM", "OEM"), ("L-OEM2", "OEM2"), ("L-IND", "IND")):
        lots_of(lot_no, customer, complete=False)
    found = changes.create_change(session, ENGINEER, {
        "title": "Copper wire", "kind": "material", "products": ["P2"],
        "bom_revision": "B", "description": "Au 25 um to Cu 20 um"})
    session.commit()
    return found
