"""The station before anything is typed: the part numbers of the lot's BOM revision, and
time-limited material lots not ready yet, with the removal from the freezer or the opening
recorded there."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from mes.catalog import services as catalog
from mes.catalog.models import MaterialLot
from mes.db import utcnow
from mes.floor import services
from tests.floor.test_station import fresh, page_of, to_wb
from tests.helpers import audit_codes, refused


@pytest.fixture
def operator(login, make_user):
    return login(make_user("operator"))


def _wire_bom(session) -> None:
    catalog.create_bom(session, "eng", catalog.get_product(session, "P1"), {
        "revision": "A", "items": [{"step": "WB", "material": "wire",
                                    "part_numbers": ["AU-0.8MIL"]}]})
    session.commit()


def test_station_names_the_part_number_to_fetch(operator, session, receive):
    _wire_bom(session)
    lot = to_wb(session, receive(1000))
    page = page_of(operator.get(f"/station?lot={lot.lot_no}"))
    # AU-1 has no part number: it is not offered, and the store is asked for the BOM's one.
    assert 'value="track_in"' not in page
    assert "lot of part number AU-0.8MIL" in page
    assert "Step WB needs a bonding wire lot (AU-0.8MIL)." in page


def test_station_offers_the_lots_of_the_allowed_part_number(operator, session, receive):
    _wire_bom(session)
    catalog.create_material_lot(session, "store", {"code": "AU-7", "material": "wire",
                                                   "part_number": "AU-0.8MIL"})
    catalog.create_material_lot(session, "store", {"code": "CU-7", "material": "wire",
                                                   "part_number": "CU-0.8MIL"})
    lot = to_wb(session, receive(1000))
    page = page_of(operator.get(f"/station?lot={lot.lot_no}"))
    assert 'value="track_in"' in page
    assert '<option value="AU-7">' in page and '<option value="CU-7">' not in page


def test_frozen_material_is_shown_with_the_removal_to_record_then_the_time_left(
        operator, session, receive):
    wire = session.scalars(select(MaterialLot).where(MaterialLot.code == "AU-1")).one()
    wire.thaw_minutes = 45
    session.commit()
    lot = to_wb(session, receive(1000))
    page = page_of(operator.get(f"/station?lot={lot.lot_no}"))
    assert 'value="track_in"' not in page
    assert "AU-1 is still in the freezer" in page and 'value="material_thaw"' in page
    resp = operator.post("/station", data={"lot": lot.lot_no, "material_lot": "AU-1",
                                           "action": "material_thaw"})
    assert resp.status_code == 303
    session.expire_all()
    assert wire.thawing_since is not None
    assert audit_codes(session, "material_lot", "AU-1")[-1] == "material_lot:thaw"
    page = page_of(operator.get(f"/station?lot={lot.lot_no}"))
    assert "AU-1 is thawing: ready in 45 min." in page
    assert 'value="material_thaw"' not in page and 'value="track_in"' not in page
    refused(session, lambda: operator.post("/station", data={
        "lot": lot.lot_no, "material_lot": "AU-1", "action": "material_thaw"}), 409)
    wire.thawing_since = utcnow() - timedelta(minutes=46)
    session.commit()
    assert 'value="track_in"' in page_of(operator.get(f"/station?lot={lot.lot_no}"))
    services.track_in(session, "op", fresh(session, lot.lot_no), step="WB", equipment="WB-1",
                      materials=["AU-1"])


def test_work_life_material_is_opened_at_the_station(operator, session, receive):
    wire = session.scalars(select(MaterialLot).where(MaterialLot.code == "AU-1")).one()
    wire.work_life_hours = 12
    session.commit()
    lot = to_wb(session, receive(1000))
    page = page_of(operator.get(f"/station?lot={lot.lot_no}"))
    assert "AU-1 is not opened yet" in page and 'value="material_open"' in page
    resp = operator.post("/station", data={"lot": lot.lot_no, "material_lot": "AU-1",
                                           "action": "material_open"})
    assert resp.status_code == 303
    session.expire_all()
    assert wire.opened_at is not None and wire.expires_at <= utcnow() + timedelta(hours=12)
    assert 'value="track_in"' in page_of(operator.get(f"/station?lot={lot.lot_no}"))


def test_recording_an_unknown_material_lot_is_refused(operator, session, receive):
    lot = to_wb(session, receive(1000))
    refused(session, lambda: operator.post("/station", data={
        "lot": lot.lot_no, "material_lot": "NOPE", "action": "material_open"}), 422)
