"""Two customers of the test plant, each with a shipped lot (tested at FT), a lot in WIP
with an open hold and a released one, and a customer user: OEM ("A") and IND ("B")."""

from __future__ import annotations

from datetime import timedelta

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
