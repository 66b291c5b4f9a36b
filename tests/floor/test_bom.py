"""Bills of materials and time-limited materials at track-in: each refusal changes nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from mes.catalog import services as cat
from mes.catalog.models import MaterialLot
from mes.db import utcnow
from mes.errors import Conflict, InvalidInput, NotFound
from mes.floor import services
from mes.floor.models import MaterialUse
from tests.floor.helpers import advance, count
from tests.helpers import refused

WIRE_ITEM = {"step": "WB", "material": "wire", "part_numbers": ["AU-0.8MIL", "AU-1.0MIL"]}


def _bom(session, revision: str = "A", items: list[dict[str, Any]] | None = None):
    product = cat.get_product(session, "P1")
    bom = cat.create_bom(session, "eng", product, {"revision": revision,
                                                    "items": items or [WIRE_ITEM]})
    session.commit()
    return bom


def _material(session, code: str, material: str = "wire", **kw: Any) -> MaterialLot:
    lot = cat.create_material_lot(session, "store", {
        "code": code, "material": material, "description": "", "expires_at": None, **kw})
    session.commit()
    return lot


def _at_wb(session, receive, lot_no: str = "LOT-A"):
    return advance(session, receive(100, lot_no=lot_no))


def _track_in(session, lot, *materials: str):
    return lambda: services.track_in(session, "op1", lot, step="WB", equipment="WB-1",
                                     materials=list(materials))


def test_lot_keeps_the_bom_revision_it_was_received_with(session, receive):
    _bom(session, "A")
    old = receive(100, lot_no="LOT-A")
    _bom(session, "B", [{**WIRE_ITEM, "part_numbers": ["CU-0.8MIL"]}])
    new = receive(100, lot_no="LOT-B")
    shown = services.present(session, [old, new])
    assert [s.bom_revision for s in shown] == ["A", "B"]
    assert services.history(session, old)[0].data["bom_revision"] == "A"
    advance(session, old)
    _material(session, "AU-7", part_number="AU-0.8MIL")
    services.track_in(session, "op1", old, step="WB", equipment="WB-1", materials=["AU-7"])
    session.commit()
    assert old.state == "running"


def test_lot_without_bom_keeps_the_route_steps_rule(session, receive):
    lot = _at_wb(session, receive)
    assert services.present(session, [lot])[0].bom_revision is None
    services.track_in(session, "op1", lot, step="WB", equipment="WB-1", materials=["AU-1"])
    assert lot.state == "running"


def test_track_in_with_an_allowed_part_number_records_the_use(session, receive):
    _bom(session)
    _material(session, "AU-7", part_number="AU-1.0MIL")
    lot = receive(100, lot_no="LOT-A")
    # SAW has no BOM item and names no material: no material needed.
    advance(session, lot)
    services.track_in(session, "op1", lot, step="WB", equipment="WB-1", materials=["au-7"])
    session.commit()
    assert lot.state == "running"
    assert count(session, MaterialUse, lot_id=lot.id) == 1


def test_wrong_part_number_is_refused_naming_the_allowed_ones(session, receive):
    _bom(session)
    lot = _at_wb(session, receive)
    _material(session, "CU-7", part_number="CU-0.8MIL")
    err = refused(session, _track_in(session, lot, "CU-7"), Conflict, "wrong_material")
    assert "AU-0.8MIL, AU-1.0MIL" in str(err) and err.field == "materials"
    assert lot.state == "queued"


def test_a_material_lot_without_part_number_does_not_satisfy_a_bom(session, receive):
    _bom(session)
    lot = _at_wb(session, receive)
    refused(session, _track_in(session, lot, "AU-1"), Conflict, "wrong_material")


def test_a_material_type_not_on_the_bom_for_the_step_is_refused(session, receive):
    _bom(session)
    lot = _at_wb(session, receive)
    _material(session, "AU-7", part_number="AU-0.8MIL")
    _material(session, "LF-1", "leadframe", part_number="LF-SOP8")
    refused(session, _track_in(session, lot, "AU-7", "LF-1"), Conflict, "wrong_material")


def test_a_bom_item_not_satisfied_is_material_required(session, receive):
    _bom(session, items=[WIRE_ITEM, {"step": "WB", "material": "epoxy",
                                     "part_numbers": ["EPX-G1"]}])
    lot = _at_wb(session, receive)
    _material(session, "AU-7", part_number="AU-0.8MIL")
    err = refused(session, _track_in(session, lot, "AU-7"), Conflict, "material_required")
    assert "EPX-G1" in str(err)


def test_bom_revision_duplicate_and_unknown_step_are_refused(session, plant):
    _bom(session, "A")
    product = cat.get_product(session, "P1")
    refused(session, lambda: cat.create_bom(session, "eng", product, {
        "revision": "A", "items": [WIRE_ITEM]}), Conflict, "duplicate")
    err = refused(session, lambda: cat.create_bom(session, "eng", product, {
        "revision": "B", "items": [{**WIRE_ITEM, "step": "NOPE"}]}), InvalidInput, "invalid")
    assert "items" in err.fields
    refused(session, lambda: cat.create_bom(session, "eng", product, {
        "revision": "C", "items": [WIRE_ITEM, WIRE_ITEM]}), InvalidInput, "invalid")
    with pytest.raises(NotFound):
        cat.get_bom(session, product, "Z")


def test_merge_refuses_lots_of_different_bom_revisions(session, receive):
    a = receive(100, lot_no="LOT-A")
    _bom(session, "A")
    b = receive(100, lot_no="LOT-B")
    refused(session, lambda: services.merge_lots(session, "op1", [a, b]), Conflict,
            "merge_mismatch")


def test_split_children_keep_the_bom_revision(session, receive):
    _bom(session, "A")
    lot = receive(100, lot_no="LOT-A")
    children = services.split_lot(session, "op1", lot, [60, 40])
    session.commit()
    assert {c.bom_id for c in [lot, *children]} == {lot.bom_id} and lot.bom_id is not None


# --- time-limited materials --------------------------------------------------------------

def test_frozen_material_must_be_removed_and_thawed(session, receive):
    lot = _at_wb(session, receive)
    mat = _material(session, "AU-F", thaw_minutes=60)
    err = refused(session, _track_in(session, lot, "AU-F"), Conflict, "material_not_ready")
    assert "freezer" in str(err)
    cat.thaw_material_lot(session, "op1", mat)
    session.commit()
    assert mat.ready_at is not None and mat.ready_at > utcnow() + timedelta(minutes=59)
    err = refused(session, _track_in(session, lot, "AU-F"), Conflict, "material_not_ready")
    assert "60 min" in str(err)
    mat.thawing_since = utcnow() - timedelta(minutes=61)
    session.commit()
    services.track_in(session, "op1", lot, step="WB", equipment="WB-1", materials=["AU-F"])
    assert lot.state == "running"


def test_work_life_starts_on_opening_and_ends_in_material_expired(session, receive):
    lot = _at_wb(session, receive)
    shelf = utcnow() + timedelta(days=30)
    mat = _material(session, "AU-W", work_life_hours=8, expires_at=shelf)
    refused(session, _track_in(session, lot, "AU-W"), Conflict, "material_not_ready")
    cat.open_material_lot(session, "op1", mat)
    session.commit()
    assert mat.opened_at is not None and mat.expires_at < shelf
    assert abs((mat.expires_at - mat.opened_at) - timedelta(hours=8)) < timedelta(seconds=1)
    refused(session, lambda: cat.open_material_lot(session, "op1", mat), Conflict,
            "already_open")
    mat.opened_at = utcnow() - timedelta(hours=9)
    mat.expires_at = mat.opened_at + timedelta(hours=8)
    session.commit()
    err = refused(session, _track_in(session, lot, "AU-W"), Conflict, "material_expired")
    assert "work life" in str(err)


def test_thaw_and_open_refusals_change_nothing(session, plant):
    plain = session.scalar(select(MaterialLot).where(MaterialLot.code == "AU-1"))
    refused(session, lambda: cat.thaw_material_lot(session, "op1", plain), InvalidInput,
            "invalid")
    refused(session, lambda: cat.open_material_lot(session, "op1", plain), InvalidInput,
            "invalid")
    cold = _material(session, "EPX-F", "epoxy", thaw_minutes=30, work_life_hours=24)
    refused(session, lambda: cat.open_material_lot(session, "op1", cold), Conflict,
            "material_not_ready")
    cat.thaw_material_lot(session, "op1", cold)
    session.commit()
    refused(session, lambda: cat.thaw_material_lot(session, "op1", cold), Conflict,
            "conflict")
