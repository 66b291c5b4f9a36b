"""GET /lots/{lot_no}/forecast: the fields of the contract, a customer's own lots only, a
banked lot without a planned start says why it has no forecast, and a read writes nothing."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from mes.db import utcnow
from mes.floor.models import Lot
from mes.forecast.models import ForecastDistribution, LotForecast
from tests.forecast.helpers import step_history


@pytest.fixture
def history(session, tested):
    host = tested("L-HOST", 100, 100)
    step_history(session, host, utcnow(), good={"WB": 0.9})
    return host


def _count(session, model):
    return session.scalar(select(func.count()).select_from(model))


def test_a_lot_forecast_answers_p50_p90_remaining_steps_and_on_hold(api, session, history,
                                                                    receive):
    lot = receive(1000, lot_no="L-API")
    before = (_count(session, LotForecast), _count(session, ForecastDistribution))
    resp = api("planner").get("/lots/L-API/forecast")
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert {"p50", "p90", "remaining_steps", "on_hold"} <= set(body)
    p50 = datetime.fromisoformat(body["p50"])
    assert abs(p50 - (utcnow() + timedelta(hours=11))) < timedelta(minutes=2)
    assert body["remaining_steps"] == 4 and body["on_hold"] is False
    assert body["expected_quantity"] == 900 and body["reason"] is None
    assert body["lot_no"] == lot.lot_no
    # A read computes what is missing without writing it.
    session.expire_all()
    assert (_count(session, LotForecast), _count(session, ForecastDistribution)) == before


def test_a_customer_reads_the_forecast_of_own_lots_only(api, session, history, receive):
    receive(1000, lot_no="L-OEM")
    receive(1000, lot_no="L-IND", product="P2", customer="IND")
    customer = api("customer", customer="OEM")
    assert customer.get("/lots/L-OEM/forecast").status_code == 200
    resp = customer.get("/lots/L-IND/forecast")
    assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "not_found"


def test_a_banked_lot_without_a_planned_start_has_no_forecast(api, session, history, receive):
    lot = receive(1000, lot_no="L-BANKED")
    session.execute(update(Lot).where(Lot.id == lot.id).values(state="banked"))
    session.commit()
    body = api("planner").get("/lots/L-BANKED/forecast").get_json()
    assert body["p50"] is None and body["p90"] is None
    assert body["reason"] == "no_planned_start"


def test_a_completed_lot_has_no_forecast(api, session, completed):
    completed("L-FIN")
    body = api("planner").get("/lots/L-FIN/forecast").get_json()
    assert body["p50"] is None and body["reason"] == "closed"
    assert body["remaining_steps"] == 0
