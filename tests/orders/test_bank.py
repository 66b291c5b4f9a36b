"""The die bank: a lot received into the bank is not work in progress (no WIP count, list,
report or station shows it as such) until a planner releases it to the first step of its
route; only a banked lot can be released or planned."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from mes.audit.models import AuditEvent
from mes.db import utcnow
from mes.floor import services as floor
from mes.floor import station
from mes.floor.models import Lot, LotEvent
from mes.integrity import check
from mes.portal import services as portal
from tests.floor.helpers import floor_state
from tests.helpers import refused


def bank(session, lot_no: str = "L-BANK", quantity: int = 400, **extra) -> Lot:
    lot = floor.receive_lot(session, "planner", {
        "product": "P1", "customer": "OEM", "quantity": quantity, "fab_lot": "FAB9",
        "wafers": [], "lot_no": lot_no, "bank": True, **extra})
    session.commit()
    return lot


def test_post_lots_with_bank_makes_a_banked_lot(plant, api, session):
    start = (utcnow() + timedelta(days=3)).replace(microsecond=0)
    resp = api("planner").post("/lots", json={
        "product": "P1", "customer": "OEM", "quantity": 300, "fab_lot": "FAB9",
        "lot_no": "L-B1", "bank": True, "planned_start": start.isoformat()})
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["state"] == "banked" and body["step"] == "SAW"
    assert body["planned_start"] == start.isoformat()
    kinds = session.scalars(select(LotEvent.kind).join(Lot).where(Lot.lot_no == "L-B1")).all()
    assert kinds == ["receive"]
    # Without `bank`, as before: queued, no planned start.
    resp = api("planner").post("/lots", json={
        "product": "P1", "customer": "OEM", "quantity": 300, "fab_lot": "FAB9",
        "lot_no": "L-Q1", "planned_start": start.isoformat()})
    assert (resp.get_json()["state"], resp.get_json()["planned_start"]) == ("queued", None)


def _wip_views(session, make_user, api) -> dict[str, object]:
    planner = make_user("planner")
    stmt = floor.lot_query({}, planner)
    summary = station.wip_summary(session, stmt, {}, planner)
    by_fab = station.wip_summary(session, floor.lot_query({"fab_lot": "FAB9"}, planner),
                                 {"fab_lot": "FAB9"}, planner)
    customer = session.scalar(select(Lot.customer_id).where(Lot.lot_no == "L-BANK"))
    report = api("planner").get("/reports/wip").get_json()
    queue = station.station_queue(session, planner, "step:SAW")
    return {
        "board steps": sorted((s.code, s.lots, s.quantity) for s in summary.steps),
        "board closed": summary.closed,
        "board by fab lot": (sorted((s.code, s.lots) for s in by_fab.steps), by_fab.closed),
        "report": [(r["step"], r["lots"], r["quantity"]) for r in report["rows"]],
        "portal": [w.lot.lot_no for w in portal.wip(session, customer, utcnow()).lots],
        "station queue": [lot.lot_no for lot in queue.lots],
    }


def test_banked_lots_are_in_no_wip_view(plant, session, receive, make_user, api):
    receive(100, lot_no="L-FLOOR", fab_lot="FAB9")
    bank(session)
    views = _wip_views(session, make_user, api)
    assert views == {
        "board steps": [("SAW", 1, 100)], "board closed": {},
        "board by fab lot": ([("SAW", 1)], {}),
        "report": [("SAW", 1, 100)], "portal": ["L-FLOOR"], "station queue": ["L-FLOOR"]}
    # Released, it is WIP like any lot at its first step.
    floor_lot = session.scalar(select(Lot).where(Lot.lot_no == "L-BANK"))
    from mes.orders import services as orders
    orders.release_lot(session, "planner", floor_lot)
    session.commit()
    views = _wip_views(session, make_user, api)
    assert views["board steps"] == [("SAW", 2, 500)]
    assert views["report"] == [("SAW", 2, 500)]
    assert sorted(views["portal"]) == ["L-BANK", "L-FLOOR"]


def test_a_banked_lot_cannot_be_tracked_in(plant, session, api):
    bank(session)
    operator = api("operator")
    refused(session, lambda: operator.post("/lots/L-BANK/track-in", json={
        "step": "SAW", "equipment": "SAW-1"}), 409, "lot_banked", state=floor_state)


def test_release_queues_the_lot_at_its_first_step(plant, session, api):
    lot = bank(session)
    planner = api("planner")
    start = (utcnow() + timedelta(hours=4)).replace(microsecond=0)
    resp = planner.post("/lots/L-BANK/release", json={"planned_start": start.isoformat()})
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert (body["state"], body["step"], body["step_seq"], body["planned_start"]) == \
        ("queued", "SAW", 1, start.isoformat())
    event = session.scalars(select(LotEvent).where(LotEvent.lot_id == lot.id)
                            .order_by(LotEvent.id.desc())).first()
    assert (event.kind, event.qty_in, event.qty_out, event.step_code) == \
        ("bank_release", 400, 400, "SAW")
    assert session.scalar(select(AuditEvent.code).where(
        AuditEvent.subject_type == "lot", AuditEvent.subject_key == "L-BANK")
        .order_by(AuditEvent.id.desc()).limit(1)) == "lot:bank_release"
    # Released once: not banked any more.
    refused(session, lambda: planner.post("/lots/L-BANK/release", json={}), 409, "not_banked")
    refused(session, lambda: planner.patch("/lots/L-BANK", json={"planned_start": None}),
            409, "not_banked")
    # And it tracks in.
    assert api("operator").post("/lots/L-BANK/track-in", json={
        "step": "SAW", "equipment": "SAW-1"}).status_code == 200
    assert check(session).ok, check(session).lines()


def test_a_banked_lots_planned_start_is_set_and_cleared(plant, session, api):
    bank(session)
    planner = api("planner")
    start = (utcnow() + timedelta(days=2)).replace(microsecond=0)
    resp = planner.patch("/lots/L-BANK", json={"planned_start": start.isoformat()})
    assert resp.status_code == 200 and resp.get_json()["planned_start"] == start.isoformat()
    resp = planner.patch("/lots/L-BANK", json={"planned_start": None})
    assert resp.get_json()["planned_start"] is None
    refused(session, lambda: planner.patch("/lots/L-BANK", json={}), 422, "invalid",
            "planned_start")
    for caller in (api("operator"), api("qa"), api("engineer")):
        refused(session, lambda caller=caller: caller.post("/lots/L-BANK/release", json={}),
                403, "forbidden")


def test_a_queued_lot_is_not_released(plant, session, api, receive):
    receive(100, lot_no="L-Q")
    planner = api("planner")
    refused(session, lambda: planner.post("/lots/L-Q/release", json={}), 409,
            "not_banked")


def test_a_banked_lot_splits_into_banked_lots(plant, session, api):
    bank(session)
    resp = api("planner").post("/lots/L-BANK/split", json={"quantities": [300, 100]})
    assert resp.status_code == 201, resp.get_json()
    assert [resp.get_json()["parent"]["state"], resp.get_json()["children"][0]["state"]] == \
        ["banked", "banked"]
    assert check(session).ok, check(session).lines()
