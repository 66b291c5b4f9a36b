"""Batch tools: a capacity of lots (and optionally units) at once, batch track-in of several
lots onto one tool, all or nothing; every refusal changes nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from mes.catalog import services as cat
from mes.catalog.models import Equipment, EquipmentStateChange
from mes.errors import Conflict, InvalidInput, NotFound
from mes.floor import services
from mes.floor.models import Lot, LotEvent, StepRun
from tests.floor.helpers import count, hold, track_out
from tests.helpers import audit_codes, refused


def tool(session, code: str) -> Equipment:
    session.expire_all()
    return session.scalars(select(Equipment).where(Equipment.code == code)).one()


def changes(session, code: str) -> list[tuple[str | None, str]]:
    rows = session.execute(
        select(EquipmentStateChange.from_state, EquipmentStateChange.to_state)
        .join(Equipment, Equipment.id == EquipmentStateChange.equipment_id)
        .where(Equipment.code == code).order_by(EquipmentStateChange.id)).all()
    return [tuple(r) for r in rows[1:]]


@pytest.fixture
def oven(session, plant):
    """A batch tool of the saw step's kind: three lots at once."""
    cat.create_equipment(session, "test", {"code": "SAW-B", "kind": "saw", "name": "Gang saw",
                                           "state": "standby", "capacity": 3})
    session.commit()
    return "SAW-B"


@pytest.fixture
def lots(session, receive):
    return [receive(100, lot_no=f"LOT-{i}") for i in range(1, 6)]


def batch(session, *numbers: str, equipment: str = "SAW-B", step: str = "SAW"):
    result = services.batch_track_in(session, "op1", equipment, step=step, lots=list(numbers))
    session.commit()
    return result


# --- the batch track-in ----------------------------------------------------------------

def test_a_batch_runs_every_lot_on_the_tool_and_each_tracks_out_on_its_own(
        session, oven, lots, api):
    resp = api("operator").post("/equipment/SAW-B/batches",
                                json={"step": "SAW", "lots": ["LOT-1", "lot-2", "LOT-3"]})
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["equipment"]["code"] == "SAW-B"
    assert body["equipment"]["lots_running"] == 3
    assert [(lot["lot_no"], lot["state"], lot["equipment"]) for lot in body["lots"]] == [
        (f"LOT-{i}", "running", "SAW-B") for i in (1, 2, 3)]
    saw = tool(session, "SAW-B")
    assert (saw.state, saw.lots_running) == ("productive", 3)
    # One state change for the whole batch; a run, an event and an audit record per lot.
    assert changes(session, "SAW-B") == [("standby", "productive")]
    assert count(session, StepRun, equipment_id=saw.id) == 3
    assert count(session, LotEvent, kind="track_in") == 3
    assert all(audit_codes(session, "lot", f"LOT-{i}")[-1] == "lot:track_in" for i in (1, 2, 3))
    started = {run.started_at for run in session.scalars(select(StepRun))}
    assert len(started) == 1
    # Each lot tracks out on its own; the tool stays productive while any lot runs.
    for i, lot_no in enumerate(("LOT-2", "LOT-1", "LOT-3"), start=1):
        track_out(session, services.get_lot(session, lot_no))
        saw = tool(session, "SAW-B")
        assert saw.lots_running == 3 - i
        assert saw.state == ("productive" if i < 3 else "standby")
    assert changes(session, "SAW-B") == [("standby", "productive"), ("productive", "standby")]


def test_a_batch_above_the_capacity_is_refused_whole(session, oven, lots):
    err = refused(session, lambda: services.batch_track_in(
        session, "op1", "SAW-B", step="SAW", lots=["LOT-1", "LOT-2", "LOT-3", "LOT-4"]),
        Conflict, "capacity_exceeded")
    assert "3 of 3 places free, not 4" in str(err)


def test_the_capacity_counts_the_lots_already_running(session, oven, lots):
    services.track_in(session, "op1", lots[0], step="SAW", equipment="SAW-B")
    session.commit()
    refused(session, lambda: services.batch_track_in(
        session, "op1", "SAW-B", step="SAW", lots=["LOT-2", "LOT-3", "LOT-4"]),
        Conflict, "capacity_exceeded")
    batch(session, "LOT-2", "LOT-3")
    assert tool(session, "SAW-B").lots_running == 3
    # Full: a single track-in and a batch of one are refused alike.
    err = refused(session, lambda: services.track_in(session, "op1", lots[3], step="SAW",
                                                     equipment="SAW-B"),
                  Conflict, "capacity_exceeded")
    assert "full: 3 of 3" in str(err)
    refused(session, lambda: services.batch_track_in(session, "op1", "SAW-B", step="SAW",
                                                     lots=["LOT-4"]),
            Conflict, "capacity_exceeded")


def test_a_single_track_in_on_a_batch_tool_takes_a_free_place(session, oven, lots):
    for lot in lots[:3]:
        services.track_in(session, "op1", lot, step="SAW", equipment="SAW-B")
        session.commit()
    saw = tool(session, "SAW-B")
    assert (saw.state, saw.lots_running) == ("productive", 3)
    assert changes(session, "SAW-B") == [("standby", "productive")]


def test_capacity_one_keeps_one_lot_at_a_time(session, plant, lots):
    refused(session, lambda: services.batch_track_in(session, "op1", "SAW-1", step="SAW",
                                                     lots=["LOT-1", "LOT-2"]),
            Conflict, "capacity_exceeded")
    batch(session, "LOT-1", equipment="SAW-1")
    refused(session, lambda: services.track_in(session, "op1", lots[1], step="SAW",
                                               equipment="SAW-1"),
            Conflict, "equipment_busy")


def test_undoing_a_track_in_frees_the_batch_place(session, oven, lots):
    batch(session, "LOT-1", "LOT-2", "LOT-3")
    services.abort_track_in(session, "op1", lots[1], reason="wrong_lot")
    session.commit()
    saw = tool(session, "SAW-B")
    assert (saw.state, saw.lots_running) == ("productive", 2)
    batch(session, "LOT-4")
    assert tool(session, "SAW-B").lots_running == 3


# --- any lot refused refuses the whole batch -------------------------------------------

def test_a_lot_on_hold_refuses_the_whole_batch(session, oven, lots):
    hold(session, lots[1])
    refused(session, lambda: services.batch_track_in(
        session, "op1", "SAW-B", step="SAW", lots=["LOT-1", "LOT-2", "LOT-3"]),
        Conflict, "lot_on_hold")
    assert session.scalars(select(Lot.state).distinct()).all() == ["queued"]


def test_a_lot_at_another_step_refuses_the_whole_batch(session, oven, lots):
    services.track_in(session, "op1", lots[2], step="SAW", equipment="SAW-1")
    session.commit()
    track_out(session, lots[2])
    refused(session, lambda: services.batch_track_in(
        session, "op1", "SAW-B", step="SAW", lots=["LOT-1", "LOT-2", "LOT-3"]),
        Conflict, "wrong_step")


def test_a_running_lot_refuses_the_whole_batch(session, oven, lots):
    services.track_in(session, "op1", lots[0], step="SAW", equipment="SAW-1")
    session.commit()
    refused(session, lambda: services.batch_track_in(
        session, "op1", "SAW-B", step="SAW", lots=["LOT-2", "LOT-1"]),
        Conflict, "already_running")


def test_a_tool_of_another_kind_or_down_refuses_the_batch(session, oven, lots):
    refused(session, lambda: services.batch_track_in(
        session, "op1", "TST-1", step="SAW", lots=["LOT-1", "LOT-2"]),
        Conflict, "wrong_equipment")
    cat.update_equipment(session, "maint", tool(session, "SAW-B"),
                         {"state": "unscheduled_down", "reason": "D-ALARM"})
    session.commit()
    refused(session, lambda: services.batch_track_in(
        session, "op1", "SAW-B", step="SAW", lots=["LOT-1", "LOT-2"]),
        Conflict, "equipment_unavailable")


def test_unknown_or_repeated_lots_and_unknown_tools_are_refused(session, oven, lots):
    err = refused(session, lambda: services.batch_track_in(
        session, "op1", "SAW-B", step="SAW", lots=["LOT-1", "NOPE"]), InvalidInput, "invalid")
    assert list(err.fields) == ["lots"]
    err = refused(session, lambda: services.batch_track_in(
        session, "op1", "SAW-B", step="SAW", lots=["LOT-1", "lot-1"]), InvalidInput, "invalid")
    assert list(err.fields) == ["lots"]
    refused(session, lambda: services.batch_track_in(
        session, "op1", "OVEN-9", step="SAW", lots=["LOT-1"]), NotFound, "not_found")


def test_the_api_refuses_bad_batches_and_changes_nothing(session, oven, lots, api):
    operator = api("operator")
    post = operator.post
    refused(session, lambda: post("/equipment/SAW-B/batches", json={"step": "SAW", "lots": []}),
            422, "invalid", "lots")
    refused(session, lambda: post("/equipment/SAW-B/batches", json={"lots": ["LOT-1"]}),
            422, "invalid", "step")
    refused(session, lambda: post("/equipment/SAW-B/batches", json={
        "step": "SAW", "lots": ["LOT-1", "LOT-2", "LOT-3", "LOT-4"]}), 409, "capacity_exceeded")
    refused(session, lambda: post("/equipment/NOPE/batches", json={
        "step": "SAW", "lots": ["LOT-1"]}), 404, "not_found")
    planner = api("planner")
    refused(session, lambda: planner.post("/equipment/SAW-B/batches", json={
        "step": "SAW", "lots": ["LOT-1"]}), 403, "forbidden")


# --- unit capacity ---------------------------------------------------------------------

def test_the_unit_capacity_counts_the_units_running(session, plant, lots):
    cat.create_equipment(session, "test", {"code": "SAW-U", "kind": "saw", "name": "Saw",
                                           "state": "standby", "capacity": 5,
                                           "unit_capacity": 250})
    session.commit()
    err = refused(session, lambda: services.batch_track_in(
        session, "op1", "SAW-U", step="SAW", lots=["LOT-1", "LOT-2", "LOT-3"]),
        Conflict, "capacity_exceeded")
    assert "250 units" in str(err)
    batch(session, "LOT-1", "LOT-2", equipment="SAW-U")
    refused(session, lambda: services.track_in(session, "op1", lots[2], step="SAW",
                                               equipment="SAW-U"),
            Conflict, "capacity_exceeded")


# --- setting the capacity --------------------------------------------------------------

def test_capacity_is_set_through_the_api_by_engineers_only(session, plant, api):
    engineer = api("engineer")
    resp = engineer.post("/equipment", json={"code": "OVN-9", "kind": "oven", "capacity": 8})
    assert resp.status_code == 201, resp.get_json()
    assert (resp.get_json()["capacity"], resp.get_json()["unit_capacity"]) == (8, None)
    resp = engineer.post("/equipment", json={"code": "OVN-8", "kind": "oven"})
    assert resp.get_json()["capacity"] == 1
    resp = engineer.patch("/equipment/OVN-9", json={"capacity": 6, "unit_capacity": 40000})
    assert resp.status_code == 200, resp.get_json()
    assert (resp.get_json()["capacity"], resp.get_json()["unit_capacity"]) == (6, 40000)
    assert audit_codes(session, "equipment", "OVN-9").count("equipment:update") == 1
    refused(session, lambda: engineer.patch("/equipment/OVN-9", json={"capacity": 0}),
            422, "invalid", "capacity")
    refused(session, lambda: engineer.post("/equipment", json={
        "code": "OVN-7", "kind": "oven", "capacity": -1}), 422, "invalid", "capacity")
    operator = api("operator")
    refused(session, lambda: operator.patch("/equipment/OVN-9", json={"capacity": 9}),
            403, "forbidden")


def test_capacity_is_set_on_the_engineers_equipment_page(session, plant, client, make_user,
                                                          login):
    login(make_user("engineer"))
    page = client.get("/catalog/equipment/SAW-1/edit")
    assert 'name="capacity"' in page.get_data(as_text=True)
    resp = client.post("/catalog/equipment/SAW-1/edit", data={"name": "Saw", "capacity": "4",
                                                      "unit_capacity": ""})
    assert resp.status_code == 303, resp.get_data(as_text=True)
    saw = tool(session, "SAW-1")
    assert (saw.capacity, saw.unit_capacity) == (4, None)
    refused(session, lambda: client.post("/catalog/equipment/SAW-1/edit", data={
        "name": "Saw", "capacity": "0"}), 422)
    listing = client.get("/catalog/equipment").get_data(as_text=True)
    assert "0 / 4" in listing


# --- the station -----------------------------------------------------------------------

@pytest.fixture
def station(client, make_user, login):
    login(make_user("operator"))
    return client


def test_the_station_offers_a_batch_of_the_queued_lots_at_a_batch_tool(session, oven, lots,
                                                                       station):
    page = station.get("/station?lot=LOT-2").get_data(as_text=True)
    assert 'value="batch_track_in"' in page
    assert "SAW-B: 3 of 3 places free" in page
    for i in range(1, 6):
        assert f'name="batch_lot" value="LOT-{i}"' in page
    resp = station.post("/station", data={"lot": "LOT-2", "step": "SAW",
                                          "action": "batch_track_in", "batch_equipment": "SAW-B",
                                          "batch_lot": ["LOT-2", "LOT-4"]})
    assert resp.status_code == 303, resp.get_data(as_text=True)
    assert tool(session, "SAW-B").lots_running == 2
    assert [lot.state for lot in session.scalars(select(Lot).order_by(Lot.lot_no))] == [
        "queued", "running", "queued", "running", "queued"]
    page = station.get("/station?lot=LOT-1").get_data(as_text=True)
    assert "SAW-B: 1 of 3 places free" in page


def test_the_station_refuses_a_batch_above_the_free_places_and_changes_nothing(
        session, oven, lots, station):
    page = refused(session, lambda: station.post("/station", data={
        "lot": "LOT-1", "step": "SAW", "action": "batch_track_in", "batch_equipment": "SAW-B",
        "batch_lot": ["LOT-1", "LOT-2", "LOT-3", "LOT-4"]}), 409)
    assert "3 of 3 places free, not 4" in page
    page = refused(session, lambda: station.post("/station", data={
        "lot": "LOT-1", "step": "SAW", "action": "batch_track_in", "batch_equipment": "",
        "batch_lot": ["LOT-1"]}), 422)
    assert "Choose a batch tool." in page


def test_the_station_shows_tool_full_before_anything_is_typed(session, oven, lots, station):
    # The plain saw is down; the batch saw is full.
    cat.update_equipment(session, "maint", tool(session, "SAW-1"),
                         {"state": "unscheduled_down", "reason": "D-ALARM"})
    session.commit()
    batch(session, "LOT-1", "LOT-2", "LOT-3")
    page = station.get("/station?lot=LOT-4").get_data(as_text=True)
    assert "blocker-capacity_exceeded" in page
    assert "Every saw is full: SAW-B 3 of 3 lots." in page
    assert "Wait for a place in a saw: on SAW-B a lot has run longest" in page
    assert 'value="track_in"' not in page
    assert 'value="batch_track_in"' not in page


def test_tool_full_counts_a_busy_one_lot_tool_beside_a_full_batch_tool(session, oven, lots,
                                                                        station):
    services.track_in(session, "op1", lots[4], step="SAW", equipment="SAW-1")
    session.commit()
    batch(session, "LOT-1", "LOT-2", "LOT-3")
    page = station.get("/station?lot=LOT-4").get_data(as_text=True)
    assert "Every saw is full: SAW-1 1 of 1 lots, SAW-B 3 of 3 lots." in page
