"""Grants made and revoked at once, with real concurrent connections: one grant of a scope
to a partner however many ask at once (the others 409), one revocation (the others 409)."""

from __future__ import annotations

import threading
from datetime import date
from typing import Any

from sqlalchemy import func, select

from mes.auth import services as auth
from mes.catalog.models import Customer, Product
from mes.db import session_scope
from mes.orders.models import OrderLine, PurchaseOrder
from mes.partners.models import Grant
from tests.floor.races import LOST_RACE, audit_chains_intact, fire, read
from tests.helpers import PASSWORD

LOST = LOST_RACE | {"duplicate", "not_active"}


def _owner(app) -> dict[str, str]:
    with app.app_context(), session_scope(app) as session:
        owner = session.scalars(select(Customer).where(Customer.code == "OEM")).one()
        session.add(Customer(code="TIER1", name="Tier one", kind="partner"))
        po = PurchaseOrder(customer_id=owner.id, po="PO-1")
        session.add(po)
        session.flush()
        session.add(OrderLine(order_id=po.id, line_no=1, quantity=10, need_date=date(2027, 1, 1),
                              product_id=session.scalars(select(Product.id)).first(),
                              vehicle_program="VP-X"))
        user = auth.create_user(session, "test", username="cust", role="customer",
                                password=PASSWORD, customer="OEM")
        token = auth.create_token(session, "test", user)
    return {"Authorization": f"Bearer {token}"}


def test_simultaneous_identical_grants_make_one(race_app, race_plant):
    headers = _owner(race_app)
    answers = fire(race_app, headers, [
        ("/grants", {"partner": "TIER1", "po": "PO-1", "line": 1}) for _ in range(4)]
        + [("/grants", {"partner": "TIER1", "vehicle_program": "VP-X"}) for _ in range(4)])
    won = [body for status, body in answers if status == 201]
    assert len(won) == 2, answers
    assert all(status == 409 and body["error"]["code"] in LOST
               for status, body in answers if status != 201), answers

    def check(session) -> None:
        assert session.scalar(select(func.count()).select_from(Grant)) == 2
        assert audit_chains_intact(session)

    read(race_app, check)


def test_simultaneous_revocations_revoke_once(race_app, race_plant):
    headers = _owner(race_app)
    [(status, body)] = fire(race_app, headers, [
        ("/grants", {"partner": "TIER1", "po": "PO-1", "line": 1})])
    assert status == 201, body
    barrier = threading.Barrier(4)
    answers: list[Any] = [None] * 4

    def one(i: int) -> None:
        client = race_app.test_client()
        barrier.wait()
        resp = client.delete(f"/api/v1/grants/{body['id']}", headers=headers)
        answers[i] = (resp.status_code, resp.get_json())

    threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert [a[0] for a in answers].count(204) == 1, answers
    assert all(status == 409 and reply["error"]["code"] in LOST
               for status, reply in answers if status != 204), answers

    def check(session) -> None:
        grant = session.get(Grant, body["id"])
        assert grant.revoked_at is not None
        assert audit_chains_intact(session)

    read(race_app, check)
