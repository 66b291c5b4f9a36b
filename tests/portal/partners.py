"""A partner world on top of the portal tests' two customers (tests/portal/conftest.py):
orders of both, a partner organisation TIER1 (granted one of A's PO lines by A's user) and
TIER2 (no grant), each with a partner user."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from mes.auth import services as auth
from mes.catalog.models import Customer, Product
from mes.floor.models import Lot
from mes.orders.models import OrderAllocation, OrderLine, PurchaseOrder
from mes.partners import services as partners
from tests.helpers import PASSWORD
from tests.portal.helpers import Side


@dataclass
class Partnered:
    a: Side
    b: Side
    tier1: Any          # TIER1's user (granted PO-1 line 1 of A)
    tier2: Any          # TIER2's user (no grant)
    grant: Any          # the grant
    granted: list[Lot]  # A's lots on the granted line: WIP, shipped
    others: list[Lot]   # A's lots on another line (WIP, completed), and B's lots
    line: OrderLine


def order(session, customer: str, po: str, lines: list[tuple[int, str, str, list[Lot]]]
          ) -> PurchaseOrder:
    """A PO of `customer` with lines (number, product, vehicle program, lots allocated)."""
    owner = session.query(Customer).filter_by(code=customer).one()
    made = PurchaseOrder(customer_id=owner.id, po=po, created_by="planner")
    session.add(made)
    session.flush()
    for line_no, product, program, lots in lines:
        line = OrderLine(order_id=made.id, line_no=line_no, quantity=1000,
                         product_id=session.query(Product).filter_by(code=product).one().id,
                         need_date=date(2027, 3, 1), vehicle_program=program)
        session.add(line)
        session.flush()
        session.add_all(OrderAllocation(lot_id=lot.id, line_id=line.id, allocated_by="planner")
                        for lot in lots)
    session.flush()
    return made


def partner_user(app, session, org: str, username: str) -> Any:
    if session.query(Customer).filter_by(code=org).first() is None:
        session.add(Customer(code=org, name=f"{org} Automotive GmbH", kind="partner"))
        session.flush()
    with app.app_context():
        user = auth.create_user(session, "test", username=username, role="partner",
                                password=PASSWORD, customer=org)
    session.commit()
    return user


def build(app, session, receive, world) -> Partnered:
    a, b = world
    extra = receive(40, lot_no="AAA-WIP-2", product="P1", customer="OEM")
    po = order(session, "OEM", "PO-1", [(1, "P1", "VP-X", [a.wip, a.shipped]),
                                        (2, "P1", "VP-Y", [extra, a.completed])])
    # B uses the same PO number and vehicle program: a grant of A's never reaches B's lots.
    order(session, "IND", "PO-1", [(1, "P2", "VP-X", [b.wip, b.shipped, b.completed])])
    session.commit()
    tier1 = partner_user(app, session, "TIER1", "tier1-user")
    tier2 = partner_user(app, session, "TIER2", "tier2-user")
    with app.test_request_context():
        grant = partners.create_grant(session, a.user, {"partner": "TIER1", "po": "PO-1",
                                                        "line": 1})
    session.commit()
    return Partnered(a=a, b=b, tier1=tier1, tier2=tier2, grant=grant,
                     granted=[a.wip, a.shipped],
                     others=[extra, a.completed, b.wip, b.shipped, b.completed],
                     line=po.lines[0])
