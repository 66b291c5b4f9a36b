"""Orders tests: the test plant (tests/fixtures/plant.py) with a planner's API and a few
lots of OEM's product P1."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from mes.floor.services import plant_date


def need(days: int = 30) -> str:
    return (plant_date() + timedelta(days=days)).isoformat()


def order_body(po: str = "PO-1", customer: str = "OEM", **line: Any) -> dict[str, Any]:
    return {"customer": customer, "po": po, "lines": [
        {"line": 1, "product": "P1", "quantity": 500, "need_date": need(30),
         "vehicle_program": "VP-X", "ship_to": "Plant 4", **line},
        {"line": 2, "product": "P1", "quantity": 300, "need_date": need(60)}]}


@pytest.fixture
def planner(plant, api):
    return api("planner")


@pytest.fixture
def ordered(planner) -> dict[str, Any]:
    resp = planner.post("/orders", json=order_body())
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def today() -> date:
    return plant_date()
