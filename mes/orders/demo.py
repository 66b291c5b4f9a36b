"""The demo plant's purchase orders and die bank (called by mes.demo once the lots' history
is loaded): per customer a purchase order with a line per product it has lots of, the lots
in the plant allocated to the lines (one line of each order carries a lot on hold), and
the OEM's next wafers waiting in the die bank, one of them allocated to a second order."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from mes.auth.models import User
from mes.catalog.models import Customer, Product
from mes.db import simulated_time
from mes.floor import services as floor
from mes.floor.models import Lot
from mes.orders import services as orders
from mes.vocabulary import LotState

# Lots in the plant a line takes at most, and the line's quantity beyond what they hold
# (the part still to be covered by lots not started yet).
LOTS_PER_LINE = 4
UNCOVERED = 0.25
# Days from the end of the history to each line's need date.
NEED_DAYS = (9, 16, 23)
# The OEM's banked wafer lots: (fab lot, quantity, days to the planned start or None).
BANK = (("FB-2701", 150000, 2), ("FB-2702", 150000, None))
WAFERS = 25  # a fab lot's wafers, each with an equal share of the dies
ALLOCATABLE = (LotState.QUEUED, LotState.RUNNING, LotState.COMPLETED)


def _po(customer: Customer, n: int) -> str:
    return f"PO-{customer.code[:4]}-27{n:02d}"


def _round_up(value: float, step: int = 500) -> int:
    return max(step, int(-(-value // step) * step))


def load_demo_orders(session: Session, end: datetime, programs: Mapping[str, str]) -> None:
    """Enter the demo orders at `end` (the end of the lots' history) through the orders
    services, allocate lots to their lines, and bank the OEM's next wafer lots."""
    planner = session.scalars(select(User).where(User.username == "planner")).one()
    customers = list(session.scalars(select(Customer).order_by(Customer.code)))
    codes = {pid: code for pid, code in session.execute(select(Product.id, Product.code))}
    with simulated_time(end):
        for customer in customers:
            lots = list(session.scalars(
                select(Lot).where(Lot.customer_id == customer.id,
                                  Lot.state.in_(ALLOCATABLE))
                .order_by(Lot.product_id, Lot.id)))
            free: dict[int, list[Lot]] = {}
            held: dict[int, list[Lot]] = {}
            for lot in lots:
                (held if lot.open_holds else free).setdefault(lot.product_id, []).append(lot)
            products = sorted(set(free) | set(held), key=lambda pid: codes[pid])[:3]
            if not products:
                continue
            # Each line takes the oldest lots free of holds; the order's first line whose
            # product has a lot on hold takes one of those too.
            taken = {pid: free.get(pid, [])[:LOTS_PER_LINE] for pid in products}
            with_hold = next((pid for pid in products if held.get(pid)), None)
            if with_hold is not None:
                taken[with_hold] = [*taken[with_hold][:LOTS_PER_LINE - 1],
                                    held[with_hold][0]]
            lines = []
            for n, product_id in enumerate(products, start=1):
                units = sum(lot.quantity for lot in taken[product_id])
                lines.append({
                    "line": n * 10, "product": codes[product_id],
                    "quantity": _round_up(units * (1 + UNCOVERED)),
                    "need_date": floor.plant_date(end) + timedelta(days=NEED_DAYS[n - 1]),
                    "vehicle_program": programs.get(customer.code),
                    "ship_to": f"{customer.name}, receiving dock {n}"})
            order = orders.create_order(session, planner, {
                "customer": customer.code, "po": _po(customer, 1), "lines": lines})
            for line, product_id in zip(order.lines, products, strict=True):
                orders.allocate(session, planner, order, line,
                                [lot.lot_no for lot in taken[product_id]])
            first = order.lines[0]
            orders.update_line(session, planner, order, first, {
                "commit_date": first.need_date - timedelta(days=1)})
        _bank(session, planner, end, programs)
    session.flush()


def _bank(session: Session, planner: User, end: datetime, programs: Mapping[str, str]
          ) -> None:
    """The OEM (the first customer with a vehicle program) banks its next wafer lots; the
    first goes to a second order's line."""
    customer = next((c for c in session.scalars(select(Customer).order_by(Customer.code))
                     if c.code in programs and c.automotive), None)
    if customer is None:
        return
    product = session.scalars(select(Product).join(Lot, Lot.product_id == Product.id)
                              .where(Lot.customer_id == customer.id)
                              .order_by(Product.code).limit(1)).first()
    if product is None:
        return
    banked = []
    for fab_lot, quantity, days in BANK:
        banked.append(floor.receive_lot(session, planner, {
            "product": product.code, "customer": customer.code, "quantity": quantity,
            "fab_lot": fab_lot, "priority": 3, "bank": True,
            "due_date": floor.plant_date(end) + timedelta(days=40),
            "wafers": [{"wafer_id": f"W{n:02d}", "die_qty": quantity // WAFERS}
                       for n in range(1, WAFERS + 1)],
            "planned_start": end + timedelta(days=days) if days is not None else None}))
    order = orders.create_order(session, planner, {
        "customer": customer.code, "po": _po(customer, 2), "lines": [
            {"line": 10, "product": product.code, "quantity": BANK[0][1],
             "need_date": floor.plant_date(end) + timedelta(days=45),
             "vehicle_program": programs.get(customer.code),
             "ship_to": f"{customer.name}, receiving dock 1"}]})
    orders.allocate(session, planner, order, order.lines[0], [banked[0].lot_no])
