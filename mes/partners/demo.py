"""The demo plant's partner organisation: the Tier-1 Kestrel Drive Systems, a customer
record of kind partner (in mes.demo's customers) with one partner user (`kestrel`, in its
users and docs/demo.md), granted by Cyanlake's customer user a view of the lots of line 1 of
Cyanlake's first purchase order (`load_demo_partners`, once the orders are in)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from mes.auth.models import User
from mes.catalog.models import Customer
from mes.db import simulated_time
from mes.orders.models import OrderLine, PurchaseOrder
from mes.partners import services as partners

PARTNER = "KESTREL"
# (customer code, its customer user) that grants the partner.
OWNER = ("CYANLAKE", "cyanlake")
PARTNER_USER = {"username": "kestrel", "role": "partner", "password": "demo-kestrel-2026",
                "customer": PARTNER, "display_name": "Kestrel Drive Systems supply chain"}


def load_demo_partners(session: Session, end: datetime) -> None:
    """At `end`: the owner's grant to the partner on line 1 of its first purchase order
    (none when the owner has no order)."""
    with simulated_time(end):
        line = session.execute(
            select(PurchaseOrder.po, OrderLine.line_no)
            .join(OrderLine, OrderLine.order_id == PurchaseOrder.id)
            .join(Customer, Customer.id == PurchaseOrder.customer_id)
            .where(Customer.code == OWNER[0])
            .order_by(PurchaseOrder.po, OrderLine.line_no).limit(1)).first()
        if line is None:
            return
        owner = session.scalars(select(User).where(User.username == OWNER[1])).one()
        partners.create_grant(session, owner, {"partner": PARTNER, "po": line.po,
                                               "line": line.line_no})
