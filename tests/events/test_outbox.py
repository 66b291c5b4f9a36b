"""Events are written in the transaction of the change they report, for the customer whose
lot, shipment or PCN it is, with what that customer may read only."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from mes.changes import services as changes
from mes.db import utcnow
from mes.events import publish
from mes.events.models import Event
from mes.quality import services as quality
from mes.shipping import services as shipping
from mes.trace import services as trace

STAFF = ("qa1", "qa2", "planner")


def _events(session, type_: str | None = None) -> list[Event]:
    stmt = select(Event).order_by(Event.id)
    if type_:
        stmt = stmt.where(Event.type == type_)
    else:
        # Forecast announcements a hold may cause are tested in tests/forecast.
        stmt = stmt.where(Event.type.not_in(("lot.eta.changed", "order.status.changed")))
    return list(session.scalars(stmt))


def _no_staff(data) -> None:
    text = json.dumps(data)
    for name in STAFF:
        assert f'"{name}"' not in text
    assert "comment" not in data


def test_publish_refuses_an_unknown_type_and_adds_nothing(session, plant):
    with pytest.raises(ValueError):
        publish(session, "lot.exploded", customer_id=1, data={})
    session.flush()
    assert session.scalar(select(func.count()).select_from(Event)) == 0


def test_a_hold_placed_and_released_is_told_to_the_lots_customer_without_names(
        session, receive):
    lot = receive(100, lot_no="L-EV-1", fab_lot="FAB-X")
    hold = quality.hold_lot(session, "qa1", lot, reason="H-ENG", comment="Bond lift seen")
    session.commit()
    quality.release_hold(session, "qa2", hold, {"disposition": "use_as_is",
                                                 "comment": "Inside spec",
                                                 "concession": "CON-7"})
    session.commit()
    placed, released = _events(session)
    assert (placed.type, released.type) == ("lot.hold.placed", "lot.hold.released")
    assert placed.customer_id == released.customer_id == lot.customer_id
    assert placed.lot_id == lot.id
    assert placed.data["lot_no"] == "L-EV-1" and placed.data["fab_lot"] == "FAB-X"
    assert placed.data["product"] == "P1" and placed.data["reason"] == "H-ENG"
    assert released.data["disposition"] == "use_as_is"
    assert released.data["concession"] == "CON-7"
    for event in (placed, released):
        _no_staff(event.data)
        assert "Bond lift" not in json.dumps(event.data)
        assert "Inside spec" not in json.dumps(event.data)


def test_a_refused_hold_writes_no_event(session, receive):
    lot = receive(100, lot_no="L-EV-2")
    with pytest.raises(Exception):  # noqa: B017  # InvalidInput: no comment
        quality.hold_lot(session, "qa1", lot, reason="H-ENG", comment="")
    session.rollback()
    assert _events(session) == []


def test_a_rolled_back_hold_leaves_no_event(session, receive):
    lot = receive(100, lot_no="L-EV-3")
    quality.hold_lot(session, "qa1", lot, reason="H-ENG", comment="x")
    session.flush()
    assert len(_events(session)) == 1
    session.rollback()
    assert _events(session) == []


def test_a_mass_hold_tells_each_customer_of_their_own_lots_only(session, receive):
    a = receive(100, lot_no="L-EV-A", fab_lot="FAB-MIX")
    b = receive(100, lot_no="L-EV-B", fab_lot="FAB-MIX", customer="IND", product="P2")
    quality.mass_hold(session, "qa1", reason="H-ENG", comment="Fab excursion",
                      match={"fab_lot": "FAB-MIX"})
    session.commit()
    events = _events(session, "lot.hold.placed")
    assert {(e.customer_id, e.data["lot_no"]) for e in events} == {
        (a.customer_id, "L-EV-A"), (b.customer_id, "L-EV-B")}


def test_under_the_delay_policy_the_hold_event_waits_until_the_customer_sees_it(
        app, session, receive):
    lot = receive(100, lot_no="L-EV-4")
    app.config.update(PORTAL_HOLD_DELAY_MINUTES=60)
    try:
        with app.app_context():
            hold = quality.hold_lot(session, "qa1", lot, reason="H-ENG", comment="x")
        session.commit()
    finally:
        app.config.update(PORTAL_HOLD_DELAY_MINUTES=0)
    (event,) = _events(session)
    assert event.due_at == hold.placed_at + timedelta(minutes=60)


def test_under_the_notify_policy_the_events_wait_for_the_notice(app, session, receive):
    from mes.portal import services as portal

    lot = receive(100, lot_no="L-EV-5")
    app.config.update(PORTAL_HOLD_POLICY="notify")
    try:
        with app.app_context():
            hold = quality.hold_lot(session, "qa1", lot, reason="H-ENG", comment="x")
            session.commit()
            quality.release_hold(session, "qa2", hold, {"disposition": "release",
                                                         "comment": "ok"})
            session.commit()
            assert _events(session) == []
            portal.notify_customer(session, "qa1", hold)
            session.commit()
    finally:
        app.config.update(PORTAL_HOLD_POLICY="delay")
    assert [e.type for e in _events(session)] == ["lot.hold.placed", "lot.hold.released"]
    assert all(e.due_at <= utcnow() for e in _events(session))


def test_a_shipment_is_told_to_its_customer(session, completed):
    lot = completed("L-EV-SHIP")
    shipment = shipping.create_shipment(session, "planner", {
        "customer": "OEM", "po": "PO-77", "vehicle_program": "VP-1", "lots": [lot.lot_no]})
    session.commit()
    (event,) = _events(session, "shipment.created")
    assert event.customer_id == shipment.customer_id
    assert event.data["po"] == "PO-77"
    assert event.data["lots"] == [{"lot_no": "L-EV-SHIP", "fab_lot": "FAB1", "product": "P1",
                                   "quantity": 100}]
    _no_staff(event.data)


def test_a_containment_tells_each_customer_what_concerns_them(session, receive):
    receive(100, lot_no="L-EV-CA", fab_lot="FAB-C")
    receive(100, lot_no="L-EV-CB", fab_lot="FAB-C", customer="IND", product="P2")
    trace.contain(session, "qa1", reason="H-ENG", comment="Suspect die attach",
                  match={"fab_lot": "FAB-C"})
    session.commit()
    events = _events(session, "containment.created")
    assert sorted(e.data["lots_held"][0] for e in events) == ["L-EV-CA", "L-EV-CB"]
    for event in events:
        assert len(event.data["lots_held"]) == 1
        assert "Suspect" not in json.dumps(event.data)
        assert "match" not in event.data and "comment" not in event.data


def test_pcn_signals_publish_pcn_sent_and_pcn_decided(session, qualified, make_user):
    change = changes.create_change(session, "eng", {
        "title": "New mold compound", "kind": "material", "products": ["P1"],
        "bom_revision": None, "items": None, "description": "Compound B"})
    (pcn,) = changes.send_pcns(session, "eng", change, None)
    session.commit()
    user = make_user("customer", customer="OEM")
    changes.decide_pcn(session, user, pcn, True, "ok")
    session.commit()
    sent, decided = _events(session)
    assert (sent.type, decided.type) == ("pcn.sent", "pcn.decided")
    assert sent.customer_id == decided.customer_id == pcn.customer_id
    assert decided.data["status"] == "approved"
    assert user.username not in json.dumps(decided.data)


def test_a_notice_under_the_delay_policy_sends_the_waiting_events_now(app, session, receive):
    from mes.portal import services as portal

    lot = receive(100, lot_no="L-EV-6")
    app.config.update(PORTAL_HOLD_DELAY_MINUTES=240)
    try:
        with app.app_context():
            hold = quality.hold_lot(session, "qa1", lot, reason="H-ENG", comment="x")
            session.commit()
            assert _events(session)[0].due_at > utcnow() + timedelta(minutes=200)
            portal.notify_customer(session, "qa1", hold)
            session.commit()
    finally:
        app.config.update(PORTAL_HOLD_DELAY_MINUTES=0)
    (event,) = _events(session)
    assert event.due_at <= utcnow()
