"""Preventive maintenance: plans by calendar or by use, pm_due at track-in, recording the PM
(with the tool in scheduled down), what is due next. Every refusal changes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from mes.catalog import maintenance
from mes.catalog import services as cat
from mes.catalog.models import Equipment, PmPlan, PmRecord
from mes.db import simulated_time, utcnow
from mes.errors import Conflict, InvalidInput
from mes.floor import services
from mes.floor.models import StepRun
from tests.floor.helpers import track_in, track_out
from tests.helpers import audit_codes, refused

pytestmark = pytest.mark.usefixtures("plant")


def tool(session, code: str = "SAW-1") -> Equipment:
    session.expire_all()
    return session.scalars(select(Equipment).where(Equipment.code == code)).one()


def plan(session, name: str, code: str = "SAW-1") -> PmPlan:
    return session.scalars(select(PmPlan).join(Equipment).where(
        Equipment.code == code, PmPlan.name == name)).one()


def add_plan(session, *, days: int | None = None, units: int | None = None,
             name: str = "Blade flange clean", code: str = "SAW-1", ago: timedelta | None = None
             ) -> PmPlan:
    def create() -> PmPlan:
        return maintenance.create_plan(session, "eng", tool(session, code), {
            "name": name, "every_days": days, "every_units": units})
    if ago is None:
        created = create()
    else:
        with simulated_time(utcnow() - ago):
            created = create()
    session.commit()
    return created


def saw_in(session, lot):
    return lambda: services.track_in(session, "op1", lot, step="SAW", equipment="SAW-1")


def scheduled_down(session, code: str = "SAW-1") -> None:
    cat.update_equipment(session, "maint", tool(session, code),
                         {"state": "scheduled_down", "reason": "D-ALARM"})
    session.commit()


# --- due by calendar and by use --------------------------------------------------------

def test_a_calendar_plan_due_refuses_track_in_naming_the_plan_and_since_when(
        session, receive):
    add_plan(session, days=7, ago=timedelta(days=8))
    due_at = plan(session, "Blade flange clean").due_at
    lot = receive(100, lot_no="LOT-A")
    err = refused(session, saw_in(session, lot), Conflict, "pm_due")
    assert "Blade flange clean" in err.message
    assert f"{due_at:%Y-%m-%d %H:%M}" in err.message
    assert err.fields == {"equipment": [err.message]}


def test_a_calendar_plan_not_yet_due_lets_the_lot_in(session, receive):
    add_plan(session, days=7, ago=timedelta(days=6))
    lot = track_in(session, receive(100, lot_no="LOT-A"))
    assert lot.state == "running"


def test_a_plan_by_use_counts_the_units_tracked_out_and_falls_due_at_its_count(
        session, receive):
    add_plan(session, units=150, name="Spindle check")
    first = receive(100, lot_no="LOT-A")
    track_out(session, track_in(session, first), good=90,
              rejects=[{"reason": "R-SCRATCH", "qty": 10}])
    saw = tool(session)
    # Units processed count what went in (rejects too).
    assert (saw.units_processed, saw.pm_due_units) == (100, 150)
    [status] = maintenance.due_next(session, saw)
    assert (status.units_left, status.due) == (50, False)
    second = receive(100, lot_no="LOT-B")
    track_out(session, track_in(session, second))
    finished = session.scalars(select(StepRun.finished_at).where(
        StepRun.lot_id == second.id)).one()
    third = receive(100, lot_no="LOT-C")
    err = refused(session, saw_in(session, third), Conflict, "pm_due")
    assert "Spindle check" in err.message and f"{finished:%Y-%m-%d %H:%M}" in err.message
    [status] = maintenance.due_next(session, tool(session))
    assert (status.units_left, status.due_since) == (-50, finished)


def test_a_tool_without_plans_reads_no_plan_at_track_in(session, receive):
    lot = receive(100, lot_no="LOT-A")
    saw = tool(session)
    assert (saw.pm_due_at, saw.pm_due_units) == (None, None)
    assert services.pm_blockers(saw, utcnow()) == []
    track_in(session, lot)


# --- recording the PM ------------------------------------------------------------------

def test_recording_the_pm_clears_it_and_restarts_its_count(session, receive):
    add_plan(session, units=100, name="Spindle check")
    track_out(session, track_in(session, receive(100, lot_no="LOT-A")))
    assert maintenance.pm_due(tool(session), utcnow())
    scheduled_down(session)
    record = maintenance.record_pm(session, "maint1", tool(session),
                                   {"plan": "Spindle check", "notes": "bearing ok"})
    session.commit()
    saw = tool(session)
    assert (record.done_by, record.notes, record.units_since) == ("maint1", "bearing ok", 100)
    assert record.due_since is not None and record.done_at is not None
    spindle = plan(session, "Spindle check")
    assert (spindle.since_units, spindle.since_at) == (100, record.done_at)
    assert saw.pm_due_units == 200 and not maintenance.pm_due(saw, utcnow())
    assert audit_codes(session, "equipment", "SAW-1")[-1] == "equipment:pm"
    cat.update_equipment(session, "maint1", saw, {"state": "standby"})
    session.commit()
    lot = track_in(session, receive(50, lot_no="LOT-B"))
    assert lot.state == "running"


def test_recording_a_calendar_pm_moves_its_due_date(session, receive):
    add_plan(session, days=7, ago=timedelta(days=9))
    scheduled_down(session)
    before = plan(session, "Blade flange clean").due_at
    record = maintenance.record_pm(session, "maint1", tool(session),
                                   {"plan": "Blade flange clean"})
    session.commit()
    assert record.due_since == before
    saw = tool(session)
    assert saw.pm_due_at == record.done_at + timedelta(days=7)
    assert not maintenance.pm_due(saw, utcnow())


def test_recording_a_pm_needs_the_tool_in_scheduled_down(session):
    add_plan(session, days=7, ago=timedelta(days=8))
    for state, reason in (("standby", None), ("unscheduled_down", "D-ALARM")):
        cat.update_equipment(session, "maint", tool(session),
                             {"state": state, **({"reason": reason} if reason else {})})
        session.commit()
        err = refused(session, lambda: maintenance.record_pm(
            session, "maint1", tool(session), {"plan": "Blade flange clean"}),
            Conflict, "equipment_not_down")
        assert "scheduled down" in err.message


def test_recording_the_pm_of_an_unknown_plan_is_refused(session):
    add_plan(session, days=7)
    scheduled_down(session)
    err = refused(session, lambda: maintenance.record_pm(
        session, "maint1", tool(session), {"plan": "Nope"}), InvalidInput, "invalid")
    assert "plan" in err.fields
    # Another tool's plan is not this tool's.
    add_plan(session, days=7, code="WB-2", name="Capillary")
    refused(session, lambda: maintenance.record_pm(
        session, "maint1", tool(session), {"plan": "Capillary"}), InvalidInput, "invalid")


# --- plans -----------------------------------------------------------------------------

@pytest.mark.parametrize("days, units", [(None, None), (7, 100)])
def test_a_plan_needs_exactly_one_interval(session, days, units):
    err = refused(session, lambda: maintenance.create_plan(
        session, "eng", tool(session), {"name": "X", "every_days": days, "every_units": units}),
        InvalidInput, "invalid")
    assert set(err.fields) == {"every_days", "every_units"}


def test_a_plan_name_is_unique_per_tool(session):
    add_plan(session, days=7)
    refused(session, lambda: maintenance.create_plan(
        session, "eng", tool(session), {"name": "Blade flange clean", "every_days": 3}),
        Conflict, "duplicate")
    # Another tool may have a plan of the same name.
    add_plan(session, days=7, code="WB-2")


def test_due_next_lists_the_plans_due_first_then_the_most_used_up(session, receive):
    add_plan(session, days=10, name="A-far", ago=timedelta(days=1))
    add_plan(session, days=10, name="B-near", ago=timedelta(days=9))
    add_plan(session, days=5, name="C-overdue-long", ago=timedelta(days=9))
    add_plan(session, days=5, name="D-overdue", ago=timedelta(days=6))
    add_plan(session, units=1000, name="E-units", code="WB-2")
    names = [s.plan.name for s in maintenance.due_next(session)]
    assert names == ["C-overdue-long", "D-overdue", "B-near", "A-far", "E-units"]
    assert [s.plan.name for s in maintenance.due_next(session, limit=2)] == names[:2]


# --- the API ---------------------------------------------------------------------------

def test_api_adds_plans_and_records_a_pm_with_who_and_when(api, session):
    eng = api("engineer")
    resp = eng.post("/equipment/SAW-1/pm-plans", json={"name": "Monthly", "every_days": 30})
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert (body["equipment"], body["name"], body["every_days"], body["every_units"],
            body["units_left"]) == ("SAW-1", "Monthly", 30, None, None)
    assert body["due_at"]
    resp = eng.post("/equipment/SAW-1/pm-plans", json={"name": "Use", "every_units": 5000})
    assert (resp.status_code, resp.get_json()["units_left"]) == (201, 5000)
    assert [p["name"] for p in eng.get("/equipment/SAW-1/pm-plans").get_json()["items"]] == \
        ["Monthly", "Use"]
    assert eng.patch("/equipment/SAW-1", json={"state": "scheduled_down",
                                               "reason": "D-ALARM"}).status_code == 200
    resp = eng.post("/equipment/SAW-1/pm", json={"plan": "Monthly", "notes": "all fine"})
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert (body["equipment"], body["plan"], body["notes"], body["due_since"]) == \
        ("SAW-1", "Monthly", "all fine", None)
    assert body["done_by"] and body["done_at"]
    assert [r["plan"] for r in eng.get("/equipment/SAW-1/pm").get_json()["items"]] == ["Monthly"]
    assert session.scalar(select(PmRecord.notes)) == "all fine"
    assert audit_codes(session, "equipment", "SAW-1")[-3:] == [
        "equipment:pm_plan", "equipment:state", "equipment:pm"]


@pytest.mark.parametrize("body", [
    {"name": "X"}, {"name": "X", "every_days": 7, "every_units": 10},
    {"name": "X", "every_days": 0}, {"name": "X", "every_units": -5},
    {"name": "", "every_days": 7}, {"every_days": 7},
    {"name": "X", "every_days": None, "every_units": None},
])
def test_api_refuses_a_plan_without_exactly_one_positive_interval(api, session, body):
    eng = api("engineer")
    refused(session, lambda: eng.post("/equipment/SAW-1/pm-plans", json=body), 422, "invalid")


def test_api_refuses_a_duplicate_plan_an_unknown_tool_and_operators(api, session):
    eng = api("engineer")
    assert eng.post("/equipment/SAW-1/pm-plans",
                    json={"name": "Monthly", "every_days": 30}).status_code == 201
    refused(session, lambda: eng.post("/equipment/SAW-1/pm-plans",
                                      json={"name": "Monthly", "every_days": 7}),
            409, "duplicate")
    refused(session, lambda: eng.post("/equipment/NOPE/pm-plans",
                                      json={"name": "Monthly", "every_days": 7}),
            404, "not_found")
    op = api("operator")
    refused(session, lambda: op.post("/equipment/SAW-1/pm-plans",
                                     json={"name": "Weekly", "every_days": 7}),
            403, "forbidden")
    refused(session, lambda: op.post("/equipment/SAW-1/pm", json={"plan": "Monthly"}),
            403, "forbidden")


def test_api_refuses_a_pm_on_a_tool_not_down_or_of_an_unknown_plan(api, session):
    eng = api("engineer")
    assert eng.post("/equipment/SAW-1/pm-plans",
                    json={"name": "Monthly", "every_days": 30}).status_code == 201
    refused(session, lambda: eng.post("/equipment/SAW-1/pm", json={"plan": "Monthly"}),
            409, "equipment_not_down")
    assert eng.patch("/equipment/SAW-1", json={"state": "scheduled_down",
                                               "reason": "D-ALARM"}).status_code == 200
    refused(session, lambda: eng.post("/equipment/SAW-1/pm", json={"plan": "Nope"}),
            422, "invalid", "plan")
    refused(session, lambda: eng.post("/equipment/SAW-1/pm", json={}), 422, "invalid", "plan")


def test_api_track_in_on_a_tool_with_a_pm_due_is_409_pm_due(api, session, receive):
    add_plan(session, days=7, ago=timedelta(days=8))
    lot = receive(100, lot_no="LOT-A")
    op = api("operator")
    err = refused(session, lambda: op.post(
        f"/lots/{lot.lot_no}/track-in", json={"step": "SAW", "equipment": "SAW-1"}),
        409, "pm_due", "equipment")
    assert "Blade flange clean" in err["message"]


def test_a_pm_is_recorded_once_per_stop(session):
    add_plan(session, days=7, ago=timedelta(days=8))
    scheduled_down(session)
    maintenance.record_pm(session, "maint1", tool(session), {"plan": "Blade flange clean"})
    session.commit()
    err = refused(session, lambda: maintenance.record_pm(
        session, "maint2", tool(session), {"plan": "Blade flange clean"}), Conflict, "conflict")
    assert "recorded already in this stop" in err.message
    # The next stop takes it again.
    cat.update_equipment(session, "maint1", tool(session), {"state": "standby"})
    session.commit()
    scheduled_down(session)
    maintenance.record_pm(session, "maint1", tool(session), {"plan": "Blade flange clean"})
    session.commit()
    assert session.scalar(select(func.count()).select_from(PmRecord)) == 2
