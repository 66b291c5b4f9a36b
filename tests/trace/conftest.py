"""A hand-built genealogy for trace tests, with history on every branch and a shipment.

R (fab lot FAB1, wafers W1 and W2) and M (fab lot FX) run SAW and reach WB. R splits into R,
R.01, R.02; R.01 splits into R.01, R.01.01; R.01.01 merges into M (merge after split); R.02
merges back into R; M runs WB (gold wire AU-1) and splits into M, M.01 (split after merge);
M.01 runs FT and PACK and ships to OEM. R.01 runs WB and waits at FT. U is unrelated.
M.01 -> M -> R.01.01 -> R.01 -> R is a path of depth 4.
"""

from __future__ import annotations

from typing import Any

import pytest

from mes.floor import services as floor
from mes.floor.models import Lot
from mes.shipping import services as shipping
from tests.floor.helpers import advance


@pytest.fixture
def tree(request, session) -> dict[str, Any]:
    request.getfixturevalue("qualified")
    make = request.getfixturevalue("receive")
    r = make(100, lot_no="R", fab_lot="FAB1",
                wafers=[{"wafer_id": "W1", "die_qty": 50}, {"wafer_id": "W2", "die_qty": 50}])
    m = make(100, lot_no="M", fab_lot="FX")
    u = make(100, lot_no="U", fab_lot="FAB9")
    advance(session, r)
    advance(session, m)
    r01, r02 = floor.split_lot(session, "op", r, [50, 30, 20])
    [r0101] = floor.split_lot(session, "op", r01, [20, 10])
    floor.merge_lots(session, "op", [m, r0101])
    floor.merge_lots(session, "op", [r, r02])
    session.commit()
    advance(session, m)
    [m01] = floor.split_lot(session, "op", m, [60, 50])
    session.commit()
    advance(session, m01, 2)
    advance(session, r01)
    shipment = shipping.create_shipment(session, "planner", {
        "customer": "OEM", "po": "PO-1", "vehicle_program": "EV-7 inverter",
        "lots": ["M.01"]})
    session.commit()
    lots: dict[str, Lot] = {lot.lot_no: lot for lot in (r, m, u, r01, r02, r0101, m01)}
    return {"lots": lots, "shipment": shipment}
