"""Two customers of the test plant, each with a shipped lot (tested at FT), a lot in WIP
with an open hold and a released one, and a customer user: OEM ("A") and IND ("B")."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from mes.db import utcnow
from mes.quality import services as quality
from mes.shipping import services as shipping
from mes.testfloor.models import TestRun
from tests.floor.helpers import advance
from tests.portal.helpers import Side


def _side(session, make_user, make_tested, make_completed, make_lot, *, tag: str, customer: str,
          product: str, quantity: int, good: int) -> Side:
    shipped = make_tested(f"{tag}-SHIP-1", quantity, good, product=product, customer=customer,
                     at=utcnow() - timedelta(days=1))
    shipment = shipping.create_shipment(session, "planner", {
        "customer": customer, "po": f"PO-{tag}", "vehicle_program": f"VP-{tag}",
        "lots": [shipped.lot_no]})
    session.commit()
    done = make_completed(f"{tag}-DONE-1", product=product, customer=customer)
    wip = make_lot(60, lot_no=f"{tag}-WIP-1", product=product, customer=customer)
    advance(session, wip, 1)
    released = quality.hold_lot(session, "qa1", wip, reason="H-ENG",
                                comment=f"Check bonds {tag}")
    session.commit()
    quality.release_hold(session, "qa2", released, {
        "disposition": "use_as_is", "comment": "Fine", "concession": f"CON-{tag}"})
    open_hold = quality.hold_lot(session, "qa1", wip, reason="H-ENG",
                                 comment=f"Look again {tag}")
    session.commit()
    run = session.query(TestRun).filter_by(lot_id=shipped.id).one()
    user = make_user("customer", username=f"cust-{tag.lower()}", customer=customer)
    return Side(customer=customer, user=user, shipped=shipped, wip=wip, completed=done,
                shipment=shipment, open_hold=open_hold, released_hold=released, run=run)


@pytest.fixture
def world(request, session, make_user) -> tuple[Side, Side]:
    """(A, B): A is OEM (automotive, product P1, FT 100 units / 96 good), B is IND
    (product P2, FT 80 units / 70 good)."""
    makers = [request.getfixturevalue(name) for name in ("tested", "completed", "receive")]
    a = _side(session, make_user, *makers, tag="AAA", customer="OEM", product="P1",
              quantity=100, good=96)
    b = _side(session, make_user, *makers, tag="BBB", customer="IND", product="P2",
              quantity=80, good=70)
    return a, b


@pytest.fixture
def crossed(session, make_user, world) -> dict[str, Any]:
    """The world with holds that cross the two customers: a mass hold of A's and B's lots in
    WIP and a containment of their completed and shipped lots, each stored with its whole
    match on every held lot; on A's side the mass hold is released by an admin's override
    (after a scrap) and the containment's by another QA engineer. Named staff do it all.
    Answers the staff names, the internal texts written, and the reason's customer-facing
    description."""
    from sqlalchemy import select

    from mes.catalog.models import ReasonCode
    from mes.trace import services as trace

    a, b = world
    reason = session.scalars(select(ReasonCode).where(ReasonCode.code == "H-ENG")).one()
    reason.description = "Engineering review of the bonds"
    mass_admin = make_user("admin", username="dora-massholder")
    containing = make_user("qa", username="bert-containment")
    releasing = make_user("qa", username="carl-releaser")
    texts = {"mass": "MASS-NOTE-7 bonds of both customers", "contain": "CONTAIN-NOTE-9 suspect",
             "scrap": "SCRAP-NOTE-3 one unit", "release": "RELEASE-NOTE-5 fine after all",
             "override": "OVERRIDE-NOTE-4 night shift alone", "concession": "CON-XA-1"}
    done = quality.mass_hold(session, mass_admin, reason="H-ENG", comment=texts["mass"],
                             match={"lots": [a.wip.lot_no, b.wip.lot_no]})
    session.commit()
    contained = trace.contain(session, containing, reason="H-ENG", comment=texts["contain"],
                              match={"lots": [a.completed.lot_no, b.completed.lot_no,
                                              a.shipped.lot_no, b.shipped.lot_no]})
    session.commit()
    by_lot = {hold.lot.lot_no: hold for hold in [*done.holds, *contained.holds]}
    assert set(by_lot) == {a.wip.lot_no, b.wip.lot_no, a.completed.lot_no,
                           b.completed.lot_no}
    assert {s["shipment"] for s in contained.shipped} == {a.shipment.id, b.shipment.id}
    quality.release_hold(session, mass_admin, by_lot[a.wip.lot_no], {
        "disposition": "scrap", "comment": texts["scrap"], "scrap_qty": 1,
        "scrap_reason": "S-DMG", "override_reason": texts["override"]})
    quality.release_hold(session, releasing, by_lot[a.completed.lot_no], {
        "disposition": "use_as_is", "comment": texts["release"],
        "concession": texts["concession"]})
    session.commit()
    return {"staff": ["qa1", "qa2", "op1", "op2", "planner", mass_admin.username,
                      containing.username, releasing.username],
            "texts": texts, "containment": contained.id,
            "description": reason.description}


@pytest.fixture
def partnered(app, session, receive, world):
    """The world with orders, partner organisations TIER1 (granted A's PO-1 line 1) and
    TIER2 (nothing) and their users (tests/portal/partners.py)."""
    from tests.portal.partners import build

    return build(app, session, receive, world)
