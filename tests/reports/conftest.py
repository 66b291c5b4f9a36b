"""A small hand-built plant history for the report tests, written row by row with exact
times so that every figure can be worked out by hand (the tests do, in comments).

The range of interest is 2026-03-02 (Monday, ISO week 10) to 2026-03-15 (Sunday, week 11);
"now" is 2026-03-16 00:00 UTC. Route QFN: SAW (1), FT (2, test), PACK (3).

Lots (product/customer, quantity):
  A  P1/OEM 100, received 03-02 08:00. SAW 03-02 arr 08:00 in 10:00 out 13:00 100→95
     (R-CHIP 5); hold H2 at FT 03-02 14:00, scrap 3 (S-DMG) released 20:00; FT arr 13:00
     in 03-03 13:00 out 15:00 92→90 (R-OPEN 2); PACK arr 15:00 in 16:00 out 17:00 90→90.
     Shipped in S1 03-04 10:00 (due 03-04: on time).
  B  P1/OEM 200, received 03-03 06:00. SAW arr 06:00 in 07:00 out 11:00 200→180 (R-CHIP
     20); FT arr 11:00 in 12:00 out 18:00 180→170 (R-CHIP 4, R-OPEN 6); PACK arr 18:00 in
     03-04 00:00 out 02:00 170→170. Shipped in S2 03-10 09:00 (due 03-05: late).
  C  P2/IND 50, received 03-09 08:00. SAW arr 08:00 in 12:00 out 12:30 50→50; FT arr 12:30
     in 14:30 out 15:30 50→40 (R-OPEN 10); queued at PACK since 15:30, due 03-08.
     Hold H3 03-09 16:00, released 03-11 16:00 (release); hold H1 open since 03-10 08:00.
  D  P1/OEM 300, received 03-12 09:00, running at SAW since 10:00 on SAW-1; no due date.
  E  P1/OEM 87, received 02-26 10:00. SAW arr 10:00 in 02-27 10:00 out 12:00 87→80 (R-CHIP
     7), before the range; queued at FT since 02-27 12:00, due 03-01. Open holds H4 (since
     03-15 12:00, future) and H5 (since 02-01, mass).
  G  P2/IND 25, shipped in S3 03-11 (no due date). H  P1/OEM 30, shipped in S2 (due 03-12).
Test runs at FT: A 03-03 15:00 92 units, 85 first-pass good, 90 final; B 03-03 18:00 180,
160, 170; C 03-09 15:30 50, 36, 40.
Equipment: SAW-1 (saw): standby from 02-01, productive 03-02 08:00, unscheduled_down 03-05
08:00, productive 03-06 08:00, non_scheduled 03-14 00:00, standby 03-20. TST-1 (tester):
engineering from 03-04 00:00 (created), productive 03-05, scheduled_down 03-10 00:00,
standby 03-10 12:00. TR-1 (taper): no state records.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest
from sqlalchemy import select

from mes.catalog import services as cat
from mes.catalog.models import (
    Customer,
    Equipment,
    EquipmentStateChange,
    Product,
    ReasonCode,
    Route,
)
from mes.floor.models import Lot, LotReject, StepRun
from mes.quality.models import Hold
from mes.shipping.models import Shipment, ShipmentLot
from mes.testfloor.models import TestRun
from tests.reports.helpers import SEQ, T


@pytest.fixture
def history(session) -> dict[str, Any]:
    actor = "test"
    for code in ("OEM", "IND"):
        cat.create_customer(session, actor, {"code": code, "name": code, "automotive": False})
    cat.create_route(session, actor, {"code": "QFN", "name": "QFN", "steps": [
        {"code": "SAW", "name": "Saw", "kind": "assembly", "equipment_kind": "saw",
         "min_yield": None, "materials": [], "ideal_uph": 100},
        {"code": "FT", "name": "Final test", "kind": "test", "equipment_kind": "tester",
         "min_yield": None, "materials": []},
        {"code": "PACK", "name": "Pack", "kind": "pack", "equipment_kind": "taper",
         "min_yield": None, "materials": []}]})
    for code, customer in (("P1", "OEM"), ("P2", None)):
        cat.create_product(session, actor, {"code": code, "name": code, "package": "QFN",
                                            "route": "QFN", "aec_grade": None, "msl": "1",
                                            "customer": customer})
    for code, kind in (("R-CHIP", "reject"), ("R-OPEN", "reject"), ("H-ENG", "hold"),
                       ("H-MAT", "hold"), ("S-DMG", "scrap")):
        cat.create_reason_code(session, actor, {"code": code, "kind": kind,
                                                "description": code, "description_zh": ""})
    tools = {}
    for code, kind, created in (("SAW-1", "saw", T(2, 1)), ("TST-1", "tester", T(3, 4)),
                                ("TR-1", "taper", T(1, 1))):
        tools[code] = Equipment(code=code, kind=kind, name=code, state="standby",
                                state_since=created, created_at=created)
        session.add(tools[code])
    session.flush()  # the ids the rows below point to
    ids = {
        "route": session.scalar(select(Route.id).where(Route.code == "QFN")),
        **{c: i for c, i in session.execute(select(Customer.code, Customer.id))},
        **{c: i for c, i in session.execute(select(Product.code, Product.id))},
        **{c: i for c, i in session.execute(select(ReasonCode.code, ReasonCode.id))},
        **{c: t.id for c, t in tools.items()},
    }
    for tool, changes in (
            ("SAW-1", [(T(2, 1), "standby"), (T(3, 2, 8), "productive"),
                       (T(3, 5, 8), "unscheduled_down"), (T(3, 6, 8), "productive"),
                       (T(3, 14), "non_scheduled"), (T(3, 20), "standby")]),
            ("TST-1", [(T(3, 4), "engineering"), (T(3, 5), "productive"),
                       (T(3, 10), "scheduled_down"), (T(3, 10, 12), "standby")])):
        previous = None
        for at, state in changes:
            session.add(EquipmentStateChange(equipment_id=ids[tool], from_state=previous,
                                             to_state=state, at=at, by=actor))
            previous = state

    lots: dict[str, Lot] = {}

    def lot(name: str, product: str, customer: str, qty: int, created: datetime, *,
            step: str, state: str, arrived: datetime, updated: datetime,
            due: date | None = None, holds: int = 0) -> Lot:
        lots[name] = Lot(lot_no=name, product_id=ids[product], customer_id=ids[customer],
                         route_id=ids["route"], step_seq=SEQ[step], step_code=step,
                         state=state, quantity=qty, fab_lot="F" + name, due_date=due,
                         open_holds=holds, arrived_at=arrived, created_at=created,
                         updated_at=updated)
        session.add(lots[name])
        return lots[name]

    # updated_at: the lot's last change (its last move, hold change or shipment).
    lot("A", "P1", "OEM", 90, T(3, 2, 8), step="PACK", state="shipped", arrived=T(3, 3, 17),
        updated=T(3, 4, 10), due=date(2026, 3, 4))
    lot("B", "P1", "OEM", 170, T(3, 3, 6), step="PACK", state="shipped",
        arrived=T(3, 4, 2), updated=T(3, 10, 9), due=date(2026, 3, 5))
    lot("C", "P2", "IND", 40, T(3, 9, 8), step="PACK", state="queued",
        arrived=T(3, 9, 15, 30), updated=T(3, 11, 16), due=date(2026, 3, 8), holds=1)
    lot("D", "P1", "OEM", 300, T(3, 12, 9), step="SAW", state="running",
        arrived=T(3, 12, 9), updated=T(3, 12, 10))
    lot("E", "P1", "OEM", 80, T(2, 26, 10), step="FT", state="queued", arrived=T(2, 27, 12),
        updated=T(3, 15, 12), due=date(2026, 3, 1), holds=2)
    lot("G", "P2", "IND", 25, T(2, 20), step="PACK", state="shipped", arrived=T(2, 25),
        updated=T(3, 11, 9))
    lot("H", "P1", "OEM", 30, T(2, 20), step="PACK", state="shipped", arrived=T(2, 25),
        updated=T(3, 10, 9), due=date(2026, 3, 12))
    session.flush()  # lot ids

    tool_of = {"SAW": "SAW-1", "FT": "TST-1", "PACK": "TR-1"}

    def run(name: str, step: str, arrived: datetime, started: datetime,
            finished: datetime | None, qty_in: int, good: int | None = None,
            rejects: tuple[tuple[str, int], ...] = ()) -> None:
        r = StepRun(lot_id=lots[name].id, route_id=ids["route"], step_seq=SEQ[step],
                    step_code=step, equipment_id=ids[tool_of[step]], operator="op",
                    arrived_at=arrived, started_at=started, finished_at=finished,
                    qty_in=qty_in, good_qty=good,
                    reject_qty=None if good is None else qty_in - good)
        session.add(r)
        session.flush()  # the run id the rejects point to
        for reason, qty in rejects:
            session.add(LotReject(run_id=r.id, lot_id=lots[name].id, step_code=step,
                                  reason_id=ids[reason], qty=qty, at=finished))

    run("A", "SAW", T(3, 2, 8), T(3, 2, 10), T(3, 2, 13), 100, 95, (("R-CHIP", 5),))
    run("A", "FT", T(3, 2, 13), T(3, 3, 13), T(3, 3, 15), 92, 90, (("R-OPEN", 2),))
    run("A", "PACK", T(3, 3, 15), T(3, 3, 16), T(3, 3, 17), 90, 90)
    run("B", "SAW", T(3, 3, 6), T(3, 3, 7), T(3, 3, 11), 200, 180, (("R-CHIP", 20),))
    run("B", "FT", T(3, 3, 11), T(3, 3, 12), T(3, 3, 18), 180, 170,
        (("R-CHIP", 4), ("R-OPEN", 6)))
    run("B", "PACK", T(3, 3, 18), T(3, 4, 0), T(3, 4, 2), 170, 170)
    run("C", "SAW", T(3, 9, 8), T(3, 9, 12), T(3, 9, 12, 30), 50, 50)
    run("C", "FT", T(3, 9, 12, 30), T(3, 9, 14, 30), T(3, 9, 15, 30), 50, 40,
        (("R-OPEN", 10),))
    run("D", "SAW", T(3, 12, 9), T(3, 12, 10), None, 300)
    run("E", "SAW", T(2, 26, 10), T(2, 27, 10), T(2, 27, 12), 87, 80, (("R-CHIP", 7),))

    def hold(name: str, reason: str, source: str, step: str, placed: datetime,
             released: datetime | None = None, disposition: str | None = None,
             scrap: int | None = None) -> None:
        session.add(Hold(lot_id=lots[name].id, reason_id=ids[reason], comment="c",
                         source=source, status="released" if released else "open",
                         step_code=step, placed_by="qa", placed_at=placed,
                         released_by="qa2" if released else None, released_at=released,
                         disposition=disposition, scrap_qty=scrap,
                         scrap_reason_id=ids["S-DMG"] if scrap else None))

    hold("C", "H-ENG", "manual", "PACK", T(3, 10, 8))  # H1
    hold("A", "H-ENG", "yield", "FT", T(3, 2, 14), T(3, 2, 20), "scrap", 3)  # H2
    hold("C", "H-MAT", "manual", "PACK", T(3, 9, 16), T(3, 11, 16), "release")  # H3
    hold("E", "H-ENG", "future", "FT", T(3, 15, 12))  # H4
    hold("E", "H-MAT", "mass", "FT", T(2, 1))  # H5

    for name, at, units, first, final in (("A", T(3, 3, 15), 92, 85, 90),
                                          ("B", T(3, 3, 18), 180, 160, 170),
                                          ("C", T(3, 9, 15, 30), 50, 36, 40)):
        session.add(TestRun(lot_id=lots[name].id, product_id=lots[name].product_id,
                            customer_id=lots[name].customer_id,
                            step_code="FT", source="bins", parts_tested=units, units=units,
                            first_pass_good=first, final_good=final,
                            first_pass_yield=100.0 * first / units,
                            final_yield=100.0 * final / units, created_at=at))

    for customer, at, carried in (("OEM", T(3, 4, 10), [("A", 90)]),
                                  ("OEM", T(3, 10, 9), [("B", 170), ("H", 30)]),
                                  ("IND", T(3, 11, 9), [("G", 25)])):
        shipment = Shipment(customer_id=ids[customer], po="PO", shipped_at=at,
                            shipped_by="planner")
        session.add(shipment)
        session.flush()  # the shipment id its lots point to
        for name, qty in carried:
            session.add(ShipmentLot(shipment_id=shipment.id, lot_id=lots[name].id,
                                    quantity=qty))
    session.commit()
    return {"ids": ids, "lots": lots}
