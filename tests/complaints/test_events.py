"""A complaint tells the customer's subscriptions: complaint.created on intake,
eightd.step.completed per step done and eightd.closed at D8, with customer-facing data only
(no staff names, no internal notes, no text of the steps the customer does not see)."""

from __future__ import annotations

import json

from sqlalchemy import select

from mes.catalog.models import Customer
from mes.events.models import Event
from tests.complaints.conftest import body
from tests.complaints.test_api import _finish, _patch


def _events(session, type_):
    return list(session.scalars(select(Event).where(Event.type == type_).order_by(Event.id)))


def test_the_customer_is_told_with_its_own_data_only(session, qa, packed):
    resp = qa.post("/complaints", json=body())
    cid = resp.get_json()["id"]
    oem = session.scalar(select(Customer.id).where(Customer.code == "OEM"))
    [created] = _events(session, "complaint.created")
    assert created.customer_id == oem
    assert created.data["complaint"] == cid and created.data["lots"] == ["LOT-A"]
    assert set(created.data["due"]) == {"D3", "D4", "D5", "D6", "D8"}
    _patch(qa, cid, "D1", text="Team of five", internal_note="SECRET-NOTE-1", done=True)
    _patch(qa, cid, "D3", text="Sorted 3 reels", internal_note="SECRET-NOTE-2", done=True)
    done = _events(session, "eightd.step.completed")
    assert [e.data["step"] for e in done] == ["D1", "D3"]
    assert "text" not in done[0].data and done[1].data["text"] == "Sorted 3 reels"
    _finish(qa, cid, skip=("D1", "D3"))
    assert _patch(qa, cid, "D8", text="Closed", done=True).status_code == 200
    [closed] = _events(session, "eightd.closed")
    assert closed.data["state"] == "closed" and closed.customer_id == oem
    everything = json.dumps([e.data for e in session.scalars(select(Event))])
    for secret in ("SECRET-NOTE", "quinn-qa"):
        assert secret not in everything


def test_a_refused_step_tells_no_one(session, qa, packed):
    cid = qa.post("/complaints", json=body()).get_json()["id"]
    assert _patch(qa, cid, "D4", done=True).status_code == 409
    assert _events(session, "eightd.step.completed") == []
