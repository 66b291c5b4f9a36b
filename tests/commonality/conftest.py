"""A shipped history for commonality tests, written as rows (no moves): 20 lots of P1, each
from its own fab lot (FAB-00..FAB-19) with one wafer, shipped one a day from 1 March 2026 in
20 shipments to OEM. Every lot ran SAW on SAW-1 and WB on WB-1 (half of them, spread over the
days) or WB-2, consumed gold wire AU-1 at WB and a mold compound lot at WB: MC-A for lots 03, 08,
13 and 17, MC-B for the others.

The complaint of the tests is lots 03, 08 and 13: three fab lots, one mold compound lot,
and WB-1, which half of all lots ran on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from mes.catalog import services as cat
from mes.catalog.models import Customer, Equipment, MaterialLot, Product, Route
from mes.floor.models import Lot, LotWafer, MaterialUse, StepRun, Wafer
from mes.shipping.models import Shipment, ShipmentLot

START = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
MC_A = (3, 8, 13, 17)
# Half the lots, the complained ones among them, ran WB on WB-1.
WB_1 = (0, 2, 3, 5, 8, 10, 11, 13, 15, 18)
COMPLAINED = ("H-03", "H-08", "H-13")


@pytest.fixture
def history(request, session) -> dict[str, Any]:
    request.getfixturevalue("plant")
    for code in ("MC-A", "MC-B"):
        cat.create_material_lot(session, "test", {"code": code, "material": "mold_compound",
                                                  "description": "Mold compound",
                                                  "expires_at": None})
    session.flush()
    ids = {code: session.scalar(select(MaterialLot.id).where(MaterialLot.code == code))
           for code in ("AU-1", "MC-A", "MC-B")}
    tool = {code: session.scalar(select(Equipment.id).where(Equipment.code == code))
            for code in ("SAW-1", "WB-1", "WB-2", "TST-1")}
    product = session.scalar(select(Product).where(Product.code == "P1"))
    route_id = session.scalar(select(Route.id).where(Route.code == "QFN"))
    customer_id = session.scalar(select(Customer.id).where(Customer.code == "OEM"))
    lots: dict[str, Lot] = {}
    for n in range(20):
        day = START + timedelta(days=n)
        lot = Lot(lot_no=f"H-{n:02d}", product_id=product.id, customer_id=customer_id,
                  route_id=route_id, step_seq=4, step_code="PACK", state="shipped",
                  quantity=100, fab_lot=f"FAB-{n:02d}", date_code="2610",
                  created_at=day, arrived_at=day)
        session.add(lot)
        session.flush()
        wafer = Wafer(fab_lot=lot.fab_lot, wafer_id="W01", die_qty=100, received_lot_id=lot.id)
        session.add(wafer)
        session.flush()
        session.add(LotWafer(lot_id=lot.id, wafer_pk=wafer.id))
        runs = [("SAW", 1, "SAW-1", 0), ("WB", 2, "WB-1" if n in WB_1 else "WB-2", 2)]
        for step, seq, code, hours in runs:
            run = StepRun(lot_id=lot.id, route_id=route_id, step_seq=seq, step_code=step,
                          equipment_id=tool[code], arrived_at=day,
                          started_at=day + timedelta(hours=hours),
                          finished_at=day + timedelta(hours=hours + 1), qty_in=100,
                          good_qty=100, reject_qty=0)
            session.add(run)
            session.flush()
            if step == "WB":
                for material in ("AU-1", "MC-A" if n in MC_A else "MC-B"):
                    session.add(MaterialUse(run_id=run.id, lot_id=lot.id, step_code="WB",
                                            material_lot_id=ids[material],
                                            at=day + timedelta(hours=hours)))
        shipment = Shipment(customer_id=customer_id, po=f"PO-{n}",
                            shipped_at=day + timedelta(hours=10))
        session.add(shipment)
        session.flush()
        session.add(ShipmentLot(shipment_id=shipment.id, lot_id=lot.id, quantity=100))
        lots[lot.lot_no] = lot
    session.commit()
    return {"lots": lots, "complained": [lots[no].id for no in COMPLAINED]}


@pytest.fixture
def complaints(session, history) -> dict[str, Any]:
    """Three complaints of OEM, one per complained lot, and one of IND naming H-19."""
    from mes.complaints.models import Complaint, ComplaintLot

    made = {}
    oem = session.scalar(select(Customer.id).where(Customer.code == "OEM"))
    ind = session.scalar(select(Customer.id).where(Customer.code == "IND"))
    for n, lot_no in enumerate((*COMPLAINED, "H-19")):
        complaint = Complaint(customer_id=ind if lot_no == "H-19" else oem,
                              reference=f"8D-{n}", received_at=START + timedelta(days=30),
                              description="Open bond wires", created_by="qa")
        session.add(complaint)
        session.flush()
        session.add(ComplaintLot(complaint_id=complaint.id,
                                 lot_id=history["lots"][lot_no].id))
        made[lot_no] = complaint
    session.commit()
    return made
