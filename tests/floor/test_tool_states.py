"""Tool states that follow the work (SEMI E10) and undoing a track-in: every refusal
changes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from mes.catalog import services as cat
from mes.catalog.models import Equipment, EquipmentStateChange, MaterialLot
from mes.errors import Conflict, InvalidInput
from mes.floor import services
from mes.floor.models import Lot, LotEvent, MaterialUse, StepRun
from mes.testfloor.models import TestRun
from tests.floor.helpers import advance, count, track_in, track_out
from tests.helpers import audit_codes, refused


def tool(session, code: str) -> Equipment:
    session.expire_all()
    return session.scalars(select(Equipment).where(Equipment.code == code)).one()


def changes(session, code: str) -> list[tuple[str | None, str, str | None]]:
    """The tool's state history after its creation record: (from, to, by)."""
    rows = session.execute(
        select(EquipmentStateChange.from_state, EquipmentStateChange.to_state,
               EquipmentStateChange.by)
        .join(Equipment, Equipment.id == EquipmentStateChange.equipment_id)
        .where(Equipment.code == code).order_by(EquipmentStateChange.id)).all()
    return [tuple(r) for r in rows[1:]]


def at_wire_bond(session, receive, lot_no: str = "LOT-A") -> Lot:
    return advance(session, receive(100, lot_no=lot_no))


# --- states follow the work ------------------------------------------------------------

def test_track_in_makes_a_standby_tool_productive_and_the_last_track_out_standby(
        session, receive):
    lot = at_wire_bond(session, receive)
    assert tool(session, "WB-2").state == "standby"
    services.track_in(session, "op1", lot, step="WB", equipment="WB-2", materials=["AU-1"])
    session.commit()
    wb2 = tool(session, "WB-2")
    run = session.get(StepRun, lot.run_id)
    assert (wb2.state, wb2.lots_running, wb2.state_since) == ("productive", 1, run.started_at)
    assert changes(session, "WB-2") == [("standby", "productive", "op1")]
    track_out(session, lot)
    wb2 = tool(session, "WB-2")
    assert (wb2.state, wb2.lots_running) == ("standby", 0)
    assert changes(session, "WB-2") == [("standby", "productive", "op1"),
                                        ("productive", "standby", "op2")]
    at = session.scalars(select(EquipmentStateChange.at).join(Equipment).where(
        Equipment.code == "WB-2").order_by(EquipmentStateChange.id.desc())).first()
    assert wb2.state_since == at


def test_a_move_that_keeps_the_state_writes_no_state_history(session, receive):
    # SAW-1 is productive already (set so by hand): the track-in changes nothing of it.
    lot = receive(100, lot_no="LOT-A")
    before = len(changes(session, "SAW-1"))
    track_in(session, lot)
    assert len(changes(session, "SAW-1")) == before
    assert tool(session, "SAW-1").state == "productive"
    track_out(session, lot)
    assert changes(session, "SAW-1")[before:] == [("productive", "standby", "op2")]


def test_a_tool_put_down_while_running_stays_down_after_the_track_out(session, receive):
    lot = at_wire_bond(session, receive)
    services.track_in(session, "op1", lot, step="WB", equipment="WB-2", materials=["AU-1"])
    cat.update_equipment(session, "maint", tool(session, "WB-2"),
                         {"state": "unscheduled_down", "reason": "D-ALARM"})
    session.commit()
    track_out(session, lot)
    wb2 = tool(session, "WB-2")
    assert (wb2.state, wb2.lots_running) == ("unscheduled_down", 0)
    assert changes(session, "WB-2")[-1][:2] == ("productive", "unscheduled_down")
    # Refused while down, and back only by an explicit change.
    other = at_wire_bond(session, receive, "LOT-B")
    refused(session, lambda: services.track_in(session, "op1", other, step="WB",
                                               equipment="WB-2", materials=["AU-1"]),
            Conflict, "equipment_unavailable")
    cat.update_equipment(session, "maint", tool(session, "WB-2"), {"state": "standby"})
    session.commit()
    assert tool(session, "WB-2").state == "standby"


def test_bringing_a_tool_up_while_a_lot_runs_on_it_makes_it_productive(session, receive):
    lot = at_wire_bond(session, receive)
    services.track_in(session, "op1", lot, step="WB", equipment="WB-2", materials=["AU-1"])
    cat.update_equipment(session, "op", tool(session, "WB-2"),
                         {"state": "engineering", "reason": "D-ALARM"})
    cat.update_equipment(session, "op", tool(session, "WB-2"), {"state": "standby"})
    session.commit()
    assert tool(session, "WB-2").state == "productive"
    track_out(session, lot)
    assert tool(session, "WB-2").state == "standby"


@pytest.mark.parametrize("reason", [None, "H-ENG", "NOPE", "D-OLD"])
def test_a_down_state_needs_an_active_downtime_reason(session, plant, make_user, reason):
    cat.create_reason_code(session, "test", {"code": "D-OLD", "kind": "downtime",
                                             "description": "retired", "description_zh": "",
                                             "active": False})
    session.commit()
    operator = make_user("operator")
    wb2 = tool(session, "WB-2")
    data = {"state": "scheduled_down", **({"reason": reason} if reason else {})}
    err = refused(session, lambda: cat.update_equipment(session, operator, wb2, data),
                  InvalidInput, "invalid")
    assert list(err.fields) == ["reason"]


def test_a_down_state_records_its_reason_in_the_history_and_the_audit(session, plant,
                                                                       make_user):
    operator = make_user("operator", username="op9")
    cat.update_equipment(session, operator, tool(session, "WB-2"),
                         {"state": "scheduled_down", "reason": "D-ALARM", "comment": "PM"})
    session.commit()
    change = session.scalars(select(EquipmentStateChange).order_by(
        EquipmentStateChange.id.desc())).first()
    assert (change.to_state, change.reason, change.by, change.comment) == \
        ("scheduled_down", "D-ALARM", "op9", "PM")
    assert audit_codes(session, "equipment", "WB-2")[-1] == "equipment:state"


# --- undoing a track-in ----------------------------------------------------------------

def test_abort_queues_the_lot_again_frees_the_tool_and_keeps_the_run_in_the_history(
        session, receive):
    lot = at_wire_bond(session, receive)
    arrived = lot.arrived_at
    services.track_in(session, "op1", lot, step="WB", equipment="WB-2", materials=["AU-1"])
    session.commit()
    run_id = lot.run_id
    services.abort_track_in(session, "op3", lot, reason="wrong_equipment", comment="meant WB-1")
    session.commit()
    session.expire_all()
    lot = session.get(Lot, lot.id)
    assert (lot.state, lot.step_code, lot.run_id, lot.equipment_id, lot.quantity) == \
        ("queued", "WB", None, None, 100)
    assert lot.arrived_at == arrived
    assert session.get(StepRun, run_id) is None
    assert count(session, MaterialUse, run_id=run_id) == 0
    wb2 = tool(session, "WB-2")
    assert (wb2.state, wb2.lots_running) == ("standby", 0)
    assert changes(session, "WB-2") == [("standby", "productive", "op1"),
                                        ("productive", "standby", "op3")]
    event = services.history(session, lot)[-1]
    assert (event.kind, event.by, event.step_code, event.equipment, event.qty_in) == \
        ("track_in_abort", "op3", "WB", "WB-2", 100)
    assert (event.data["abort_reason"], event.data["comment"], event.data["operator"],
            event.data["materials"]) == ("wrong_equipment", "meant WB-1", "op1", ["AU-1"])
    assert audit_codes(session, "lot", "LOT-A")[-1] == "lot:track_in_abort"
    # Tracked in again on the right tool, it runs as any lot.
    track_in(session, lot)
    assert lot.state == "running" and lot.equipment.code == "WB-1"


def test_abort_refused_when_the_lot_is_not_running(session, receive):
    lot = receive(100, lot_no="LOT-A")
    refused(session, lambda: services.abort_track_in(session, "op", lot, reason="wrong_lot"),
            Conflict, "not_running")


def test_abort_refused_at_another_step(session, receive):
    lot = track_in(session, receive(100, lot_no="LOT-A"))
    refused(session, lambda: services.abort_track_in(session, "op", lot, reason="wrong_lot",
                                                     step="WB"), Conflict, "wrong_step")


def test_abort_refused_once_test_data_was_recorded_for_the_run(session, receive):
    lot = advance(session, receive(100, lot_no="LOT-A"), 2)
    services.track_in(session, "op", lot, step="FT", equipment="TST-1")
    session.add(TestRun(lot_id=lot.id, product_id=lot.product_id, customer_id=lot.customer_id,
                        step_code="FT", source="bins", parts_tested=100, units=100,
                        first_pass_good=99, final_good=99, first_pass_yield=99.0,
                        final_yield=99.0))
    session.commit()
    err = refused(session, lambda: services.abort_track_in(session, "op", lot,
                                                           reason="wrong_lot"),
                  Conflict, "run_has_data")
    assert "test data" in str(err)


def test_abort_refused_once_material_consumption_was_recorded_for_the_run(session, receive):
    lot = at_wire_bond(session, receive)
    services.track_in(session, "op", lot, step="WB", equipment="WB-1", materials=["AU-1"])
    run = session.get(StepRun, lot.run_id)
    au = session.scalars(select(MaterialLot).where(MaterialLot.code == "AU-1")).one()
    session.add(MaterialUse(run_id=run.id, lot_id=lot.id, material_lot_id=au.id,
                            step_code="WB", at=run.started_at + timedelta(minutes=5)))
    session.commit()
    err = refused(session, lambda: services.abort_track_in(session, "op", lot,
                                                           reason="wrong_lot"),
                  Conflict, "run_has_data")
    assert "material consumption" in str(err)


def test_abort_over_the_api(session, receive, api):
    lot = track_in(session, receive(100, lot_no="LOT-A"))
    operator, planner = api("operator"), api("planner")
    refused(session, lambda: operator.post("/lots/LOT-A/track-in/abort",
                                           json={"reason": "because"}),
            422, "invalid", "reason")
    refused(session, lambda: operator.post("/lots/LOT-A/track-in/abort", json={}),
            422, "invalid", "reason")
    refused(session, lambda: planner.post("/lots/LOT-A/track-in/abort",
                                          json={"reason": "wrong_lot"}),
            403, "forbidden")
    resp = operator.post("/lots/LOT-A/track-in/abort", json={"reason": "wrong_lot"})
    assert resp.status_code == 200, resp.get_json()
    assert (resp.get_json()["state"], resp.get_json()["step"]) == ("queued", "SAW")
    refused(session, lambda: operator.post("/lots/LOT-A/track-in/abort",
                                           json={"reason": "wrong_lot"}),
            409, "not_running")
    assert count(session, LotEvent, lot_id=lot.id, kind="track_in_abort") == 1


def test_the_station_offers_the_undo_and_the_lot_page_shows_the_undone_run(
        session, receive, login, make_user):
    lot = track_in(session, receive(100, lot_no="LOT-A"))
    operator = login(make_user("operator"))
    page = operator.get("/station?lot=LOT-A").get_data(as_text=True)
    assert 'value="abort_track_in"' in page and 'name="abort_reason"' in page
    # Without a reason: refused, nothing changed.
    resp = refused(session, lambda: operator.post("/station", data={
        "lot": "LOT-A", "step": "SAW", "action": "abort_track_in"}), 422)
    assert "abort_reason" in resp
    resp = operator.post("/station", data={"lot": "LOT-A", "step": "SAW",
                                           "action": "abort_track_in",
                                           "abort_reason": "wrong_lot"})
    assert resp.status_code == 303, resp.get_data(as_text=True)[:2000]
    session.expire_all()
    assert session.get(Lot, lot.id).state == "queued"
    page = operator.get("/lots/LOT-A").get_data(as_text=True)
    assert "undone" in page and "Wrong lot scanned" in page
