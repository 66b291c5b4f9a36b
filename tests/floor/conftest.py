"""A small plant for shop-floor tests: a 4-step route, products, equipment, codes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from mes.catalog import services as cat
from mes.db import utcnow


@pytest.fixture
def plant(session) -> dict[str, Any]:
    actor = "test"
    cat.create_customer(session, actor, {"code": "OEM", "name": "OEM", "automotive": True})
    cat.create_customer(session, actor, {"code": "IND", "name": "Industrial",
                                         "automotive": False})
    cat.create_route(session, actor, {"code": "QFN", "name": "QFN", "steps": [
        {"code": "SAW", "name": "Wafer saw", "kind": "assembly", "equipment_kind": "saw",
         "min_yield": None, "materials": []},
        {"code": "WB", "name": "Wire bond", "kind": "assembly",
         "equipment_kind": "wire_bonder", "min_yield": 90.0, "materials": ["wire"]},
        {"code": "FT", "name": "Final test", "kind": "test", "equipment_kind": "tester",
         "min_yield": None, "materials": []},
        {"code": "PACK", "name": "Tape and reel", "kind": "pack", "equipment_kind": "taper",
         "min_yield": None, "materials": []},
    ]})
    cat.create_product(session, actor, {"code": "P1", "name": "Gate driver", "package": "QFN",
                                        "route": "QFN", "aec_grade": 1, "msl": "3",
                                        "customer": "OEM"})
    cat.create_product(session, actor, {"code": "P2", "name": "Other", "package": "QFN",
                                        "route": "QFN", "aec_grade": None, "msl": "1",
                                        "customer": None})
    for code, kind, state in [("SAW-1", "saw", "productive"), ("WB-1", "wire_bonder",
                                                               "productive"),
                              ("WB-2", "wire_bonder", "standby"),
                              ("WB-3", "wire_bonder", "unscheduled_down"),
                              ("TST-1", "tester", "productive"), ("TR-1", "taper", "standby")]:
        cat.create_equipment(session, actor, {"code": code, "kind": kind, "name": code,
                                              "state": state})
    for code, kind in [("R-SCRATCH", "reject"), ("R-BALL", "reject"), ("H-ENG", "hold"),
                       ("S-DMG", "scrap")]:
        cat.create_reason_code(session, actor, {"code": code, "kind": kind,
                                                "description": code, "description_zh": ""})
    cat.create_material_lot(session, actor, {"code": "AU-1", "material": "wire",
                                             "description": "Au wire",
                                             "expires_at": utcnow() + timedelta(days=30)})
    cat.create_material_lot(session, actor, {"code": "AU-OLD", "material": "wire",
                                             "description": "Au wire",
                                             "expires_at": utcnow() - timedelta(days=1)})
    cat.create_material_lot(session, actor, {"code": "EPX-1", "material": "epoxy",
                                             "description": "Epoxy", "expires_at": None})
    session.commit()
    return {"actor": actor}


@pytest.fixture
def receive(session, plant):
    from mes.floor import services

    def make(quantity: int = 1000, **kw: Any):
        data = {"product": "P1", "customer": "OEM", "quantity": quantity,
                "fab_lot": kw.pop("fab_lot", "FAB1"), "wafers": kw.pop("wafers", []),
                "lot_no": kw.pop("lot_no", None), "priority": 3, "due_date": None, **kw}
        lot = services.receive_lot(session, "planner", data)
        session.commit()
        return lot

    return make
