"""Each reason a lot cannot be tracked in appears on the station as soon as the lot is
scanned, before anything is typed, with what to do next: the part numbers to fetch, the
material to scan, how long until a material has thawed, an expired stock, a tool down (and
which one is free), a preventive maintenance due. The page changes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from mes.catalog import maintenance
from mes.catalog import services as catalog
from mes.catalog.models import Equipment, MaterialLot
from mes.db import simulated_time, utcnow
from tests.floor.test_station import page_of, to_wb
from tests.helpers import database_state


@pytest.fixture
def operator(login, make_user):
    return login(make_user("operator"))


@pytest.fixture
def station(operator, session):
    """The station page of a lot; the test fails if showing it changed the database."""
    def show(lot_no: str) -> str:
        before = database_state(session)
        page = page_of(operator.get(f"/station?lot={lot_no}"))
        assert database_state(session) == before
        return page
    return show


def tool(session, code: str) -> Equipment:
    return session.scalars(select(Equipment).where(Equipment.code == code)).one()


def down(session, *codes: str) -> None:
    for code in codes:
        catalog.update_equipment(session, "maint", tool(session, code),
                                 {"state": "unscheduled_down", "reason": "D-ALARM"})
    session.commit()


def pm_overdue(session, code: str, name: str = "Monthly") -> None:
    with simulated_time(utcnow() - timedelta(days=31)):
        maintenance.create_plan(session, "eng", tool(session, code),
                                {"name": name, "every_days": 30})
    session.commit()


def blocked(page: str, code: str) -> bool:
    return f'class="blocker blocker-{code}"' in page and 'value="track_in"' not in page


def test_wrong_part_numbers_in_stock_name_the_part_number_to_fetch(session, receive, station):
    catalog.create_bom(session, "eng", catalog.get_product(session, "P1"), {
        "revision": "A", "items": [{"step": "WB", "material": "wire",
                                    "part_numbers": ["AU-0.8MIL", "AU-1.0MIL"]}]})
    catalog.create_material_lot(session, "store", {"code": "CU-7", "material": "wire",
                                                   "part_number": "CU-0.8MIL"})
    session.commit()
    page = station(to_wb(session, receive(1000)).lot_no)
    assert blocked(page, "no_material")
    assert "Ask the material store for a fresh wire lot of part number AU-0.8MIL, AU-1.0MIL" \
        in page
    assert "Step WB needs a bonding wire lot (AU-0.8MIL, AU-1.0MIL)." in page
    assert '<option value="CU-7">' not in page


def test_a_material_the_step_requires_is_named_to_scan(session, receive, station):
    page = station(to_wb(session, receive(1000)).lot_no)
    assert "To scan for track-in" in page
    assert "Step WB needs a bonding wire lot." in page
    assert 'value="track_in"' in page and '<option value="AU-1">' in page


def test_a_thawing_material_shows_the_time_left(session, receive, station):
    wire = session.scalars(select(MaterialLot).where(MaterialLot.code == "AU-1")).one()
    wire.thaw_minutes = 60
    wire.thawing_since = utcnow() - timedelta(minutes=20)
    session.commit()
    page = station(to_wb(session, receive(1000)).lot_no)
    assert blocked(page, "material_not_ready")
    assert "AU-1 is thawing: ready in 40 min." in page
    assert "scan this lot again when it is ready" in page


def test_expired_stock_is_named_with_its_expiry_and_the_store_is_asked(
        session, receive, station):
    lot = to_wb(session, receive(1000))
    wire = session.scalars(select(MaterialLot).where(MaterialLot.code == "AU-1")).one()
    wire.expires_at = utcnow() - timedelta(hours=2)
    session.commit()
    page = station(lot.lot_no)
    assert blocked(page, "material_expired")
    assert "Every wire lot in stock has expired (the last one, AU-1, on" in page
    assert "Ask the material store for a fresh wire lot" in page


def test_a_tool_down_is_shown_beside_the_free_ones(session, receive, station):
    # WB-3 is unscheduled down in the test plant; WB-1 and WB-2 are up and idle.
    page = station(to_wb(session, receive(1000)).lot_no)
    assert "WB-3 is unscheduled down." in page
    assert page.count('class="tool tool-free"') == 2
    assert 'value="track_in"' in page


def test_every_tool_down_tells_the_operator_to_call_maintenance(session, receive, station):
    lot = to_wb(session, receive(1000))
    down(session, "WB-1", "WB-2")
    page = station(lot.lot_no)
    assert blocked(page, "no_equipment")
    assert "No wire bonder is available for step WB." in page
    assert "Every wire bonder is down or in engineering: call maintenance" in page


def test_a_tool_with_a_pm_due_is_shown_with_the_plan_beside_the_free_ones(
        session, receive, station):
    lot = to_wb(session, receive(1000))
    pm_overdue(session, "WB-1")
    page = station(lot.lot_no)
    assert "WB-1 has preventive maintenance Monthly due since" in page
    assert page.count('class="tool tool-free"') == 1
    assert 'value="track_in"' in page


def test_the_only_free_tool_with_a_pm_due_blocks_the_lot_and_asks_for_the_pm(
        session, receive, station):
    lot = receive(1000)
    pm_overdue(session, "SAW-1", "Blade flange clean")
    page = station(lot.lot_no)
    assert blocked(page, "no_equipment")
    assert "SAW-1 has preventive maintenance Blade flange clean due since" in page
    assert "No saw is free: SAW-1 waits for its preventive maintenance." in page
    assert "record the PM on the equipment page" in page
