"""Allocations of one lot at once, with real concurrent connections: one line gets the lot,
every other request is refused with a 409 and leaves nothing behind."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from mes.auth import services as auth
from mes.db import session_scope
from mes.floor.services import plant_date
from mes.orders import services as orders
from mes.orders.models import OrderAllocation, PurchaseOrder
from tests.floor.races import LOST_RACE, N, audit_chains_intact, fire, read, receive
from tests.helpers import PASSWORD


def test_simultaneous_allocations_of_one_lot_have_one_winner(race_app, race_plant):
    receive(race_app, "LOT-A")
    with race_app.app_context(), session_scope(race_app) as session:
        orders.create_order(session, "planner", {"customer": "OEM", "po": "PO-R", "lines": [
            {"line": n, "product": "P1", "quantity": 100,
             "need_date": plant_date() + timedelta(days=9)} for n in range(1, N + 1)]})
        user = auth.create_user(session, "test", username="plan", role="planner",
                                password=PASSWORD)
        token = auth.create_token(session, "test", user)
    answers = fire(race_app, {"Authorization": f"Bearer {token}"}, [
        (f"/orders/PO-R/lines/{n}/allocations", {"lots": ["LOT-A"]})
        for n in range(1, N + 1)])
    won = [body for status, body in answers if status == 200]
    assert len(won) == 1, answers
    assert won[0]["lots"] == ["LOT-A"]
    assert all(status == 409 and body["error"]["code"] in {*LOST_RACE, "already_allocated"}
               for status, body in answers if status != 200), answers

    def check(session) -> None:
        rows = session.execute(select(OrderAllocation.line_id)).all()
        assert len(rows) == 1
        order = session.scalars(orders.order_query().where(PurchaseOrder.po == "PO-R")).one()
        allocated = [line.line_no for line in order.lines if line.allocations]
        assert allocated == [won[0]["line"]]
        assert session.scalar(select(func.count()).select_from(OrderAllocation)) == 1
        assert audit_chains_intact(session)

    read(race_app, check)
