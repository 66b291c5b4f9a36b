"""The preventive maintenance pages: what is due next on the equipment list, a tool's plans
and PMs, adding a plan and recording a PM; refusals change nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from mes.catalog import maintenance
from mes.catalog import services as cat
from mes.catalog.models import Equipment, PmPlan, PmRecord
from mes.db import simulated_time, utcnow
from tests.helpers import refused

pytestmark = pytest.mark.usefixtures("plant")


@pytest.fixture
def engineer(login, make_user):
    return login(make_user("engineer"))


def tool(session, code: str) -> Equipment:
    return session.scalars(select(Equipment).where(Equipment.code == code)).one()


def test_the_equipment_list_shows_what_is_due_next_overdue_first(engineer, session):
    with simulated_time(utcnow() - timedelta(days=9)):
        maintenance.create_plan(session, "eng", tool(session, "WB-1"),
                                {"name": "Weekly clean", "every_days": 7})
    maintenance.create_plan(session, "eng", tool(session, "SAW-1"),
                            {"name": "Spindle check", "every_units": 50000})
    session.commit()
    page = engineer.get("/catalog/equipment").get_data(as_text=True)
    assert "Preventive maintenance due next" in page
    assert page.index("Weekly clean") < page.index("Spindle check")
    assert "Due since" in page and "50,000 units left" in page


def test_an_engineer_adds_a_plan_and_records_a_pm(engineer, session):
    resp = engineer.post("/catalog/equipment/SAW-1/pm-plans",
                         data={"name": "Monthly", "every_days": "30", "every_units": ""})
    assert resp.status_code == 303
    page = engineer.get("/catalog/equipment/SAW-1/pm").get_data(as_text=True)
    assert "Monthly" in page and "30 days" in page and "Not due" in page
    cat.update_equipment(session, "maint", tool(session, "SAW-1"),
                         {"state": "scheduled_down", "reason": "D-ALARM"})
    session.commit()
    resp = engineer.post("/catalog/equipment/SAW-1/pm",
                         data={"plan": "Monthly", "notes": "belts changed"})
    assert resp.status_code == 303
    assert session.scalar(select(PmRecord.notes)) == "belts changed"
    page = engineer.get("/catalog/equipment/SAW-1/pm").get_data(as_text=True)
    assert "belts changed" in page


@pytest.mark.parametrize("data", [
    {"name": "X", "every_days": "", "every_units": ""},
    {"name": "X", "every_days": "7", "every_units": "100"},
    {"name": "X", "every_days": "0", "every_units": ""},
])
def test_a_plan_without_exactly_one_interval_is_refused_on_the_page(engineer, session, data):
    page = refused(session, lambda: engineer.post("/catalog/equipment/SAW-1/pm-plans",
                                                  data=data), 422)
    assert "Add a plan" in page
    assert session.scalar(select(PmPlan.id)) is None


def test_recording_a_pm_on_a_tool_not_down_is_refused_on_the_page(engineer, session):
    maintenance.create_plan(session, "eng", tool(session, "SAW-1"),
                            {"name": "Monthly", "every_days": 30})
    session.commit()
    page = refused(session, lambda: engineer.post("/catalog/equipment/SAW-1/pm",
                                                  data={"plan": "Monthly"}), 409)
    assert "Put SAW-1 in scheduled down for the PM first" in page


def test_operators_read_the_pm_page_but_cannot_write(login, make_user, session):
    op = login(make_user("operator"))
    page = op.get("/catalog/equipment/SAW-1/pm").get_data(as_text=True)
    assert "Add a plan" not in page
    refused(session, lambda: op.post("/catalog/equipment/SAW-1/pm-plans",
                                     data={"name": "X", "every_days": "7"}), 403)
