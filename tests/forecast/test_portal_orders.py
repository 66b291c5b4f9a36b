"""The portal's orders page: a customer sees their own orders' lines with status, dates,
the outlook chart and the lots' forecasts, and nothing of another customer's; plant roles
are refused."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event, select

from mes.db import get_db, utcnow
from mes.floor.models import Lot
from mes.floor.services import plant_date
from mes.orders import services as orders
from tests.forecast.helpers import step_history
from tests.helpers import as_user


@pytest.fixture
def two_orders(session, tested, receive):
    host = tested("L-HOST", 100, 100)
    step_history(session, host, utcnow())
    need = plant_date() + timedelta(days=5)
    made = {}
    for customer, product, po, lot_no in (("OEM", "P1", "PO-OEM-7", "L-OEM-1"),
                                          ("IND", "P2", "PO-IND-9", "L-IND-1")):
        order = orders.create_order(session, "planner", {
            "customer": customer, "po": po, "lines": [
                {"line": 1, "product": product, "quantity": 1000, "need_date": need,
                 "commit_date": need}]})
        lot = receive(1000, lot_no=lot_no, product=product, customer=customer)
        orders.allocate(session, "planner", order, order.lines[0], [lot.lot_no])
        session.commit()
        made[customer] = order
    return made


def test_a_customer_sees_own_order_lines_with_status_chart_and_lots(app, make_user,
                                                                    two_orders):
    client = as_user(app, make_user("customer", customer="OEM"))
    resp = client.get("/portal/orders")
    assert resp.status_code == 200
    text = resp.get_data(as_text=True)
    assert "PO-OEM-7" in text and "L-OEM-1" in text
    assert 'data-status="on_track"' in text
    assert "<svg" in text and "outlook-p50" in text and "outlook-need" in text
    assert "PO-IND-9" not in text and "L-IND-1" not in text


def test_the_other_customer_sees_only_theirs(app, make_user, two_orders):
    client = as_user(app, make_user("customer", customer="IND"))
    text = client.get("/portal/orders").get_data(as_text=True)
    assert "PO-IND-9" in text and "L-IND-1" in text
    assert "PO-OEM-7" not in text and "L-OEM-1" not in text


def test_plant_roles_do_not_get_the_portal_orders_page(app, make_user, two_orders):
    client = as_user(app, make_user("planner"))
    assert client.get("/portal/orders").status_code == 403


def test_a_customer_without_orders_is_told_so(app, make_user, plant):
    client = as_user(app, make_user("customer", customer="OEM"))
    resp = client.get("/portal/orders")
    assert resp.status_code == 200 and "No orders yet." in resp.get_data(as_text=True)


def _orders_page_statements(app, client) -> tuple[str, list[str]]:
    statements: list[str] = []
    engine = get_db(app).engine

    def count(_conn, _cursor, statement, *_args):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        resp = client.get("/portal/orders")
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert resp.status_code == 200
    return resp.get_data(as_text=True), statements


def test_the_page_costs_the_same_queries_whatever_its_orders_lines_and_lots(
        app, session, make_user, receive, two_orders):
    client = as_user(app, make_user("customer", customer="OEM"))
    client.get("/portal/orders")  # the login's and the first request's own reads
    _text, one = _orders_page_statements(app, client)
    need = plant_date() + timedelta(days=6)
    for n in range(3):
        order = orders.create_order(session, "planner", {
            "customer": "OEM", "po": f"PO-OEM-X{n}", "lines": [
                {"line": k, "product": "P1", "quantity": 500, "need_date": need}
                for k in (1, 2)]})
        for k, line in enumerate(order.lines):
            lots = [receive(100, lot_no=f"L-X{n}{k}{i}", product="P1", customer="OEM")
                    for i in range(2)]
            orders.allocate(session, "planner", order, line, [lot.lot_no for lot in lots])
        session.commit()
    text, more = _orders_page_statements(app, client)
    assert "PO-OEM-X2" in text and "L-X211" in text
    assert len(more) == len(one), (one, more)


def test_forecast_times_show_in_the_plant_zone_as_before(app, session, make_user,
                                                         two_orders):
    from flask_babel import format_datetime

    from mes.forecast import services as forecasts

    client = as_user(app, make_user("customer", customer="OEM"))
    text = client.get("/portal/orders").get_data(as_text=True)
    lot = session.scalar(select(Lot).where(Lot.lot_no == "L-OEM-1"))
    found = forecasts.lot_forecast(session, lot)
    assert found.p50_at is not None
    with app.test_request_context():
        shown = format_datetime(found.p50_at, "yyyy-MM-dd HH:mm")
    assert f'<td class="nowrap">{shown}</td>' in text
