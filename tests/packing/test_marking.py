"""Marking: the marking step's track-out fixes the date code (plant-local ISO week), the lot
trace code and the mark text; split children carry them; lots of different date codes do
not merge."""

from __future__ import annotations

from datetime import UTC, datetime

from mes import marking
from mes.errors import Conflict
from mes.floor import services as floor
from tests.helpers import refused
from tests.packing.conftest import MARK_AT, move


def test_mark_fixes_date_code_trace_code_and_mark(session, make_lot, api):
    lot = make_lot("LOT-M1", steps=2)
    assert lot.date_code == "2649"
    assert lot.trace_code == marking.trace_code(lot.id)
    assert lot.mark == f"P1\n2649 {lot.trace_code}"
    move(session, lot, 2, at=datetime(2027, 3, 1, tzinfo=UTC))
    assert lot.date_code == "2649"  # later steps do not change it
    body = api("engineer").get("/lots/LOT-M1").get_json()
    assert (body["date_code"], body["trace_code"], body["mark"]) == (
        "2649", lot.trace_code, lot.mark)


def test_date_code_is_the_plants_week(session, make_lot):
    # Sunday 27 December 2026 23:30 UTC is Monday 28 December in the plant (Asia/Shanghai):
    # ISO week 53 of 2026 in UTC, and also week 53 there; 3 January 2027 16:30 UTC is
    # Monday 4 January (week 1 of 2027) in the plant but Sunday, week 53, in UTC.
    lot = make_lot("LOT-M2", steps=2, at=datetime(2027, 1, 3, 16, 30, tzinfo=UTC))
    assert lot.date_code == "2701"


def test_a_flagged_step_marks_instead_of_the_step_coded_mark(session, marked_plant, receive):
    from mes.catalog import services as cat
    cat.create_route(session, "eng", {"code": "QFN", "name": "QFN", "steps": [
        {"code": "SAW", "name": "Saw", "kind": "assembly", "equipment_kind": "saw",
         "marks": True},
        {"code": "MARK", "name": "Ink", "kind": "assembly", "equipment_kind": "saw"},
    ]})
    session.commit()
    lot = receive(100, lot_no="LOT-M3")
    move(session, lot, 1, at=MARK_AT)
    assert lot.date_code == "2649"
    move(session, lot, 1, at=datetime(2027, 3, 1, tzinfo=UTC))
    assert lot.date_code == "2649"


def test_template_with_unknown_field_is_refused(session, marked_plant, api):
    eng = api("engineer")
    resp = eng.patch("/products/P1", json={"mark_template": "{device} {week}"})
    assert resp.status_code == 422, resp.get_json()
    assert "mark_template" in resp.get_json()["error"]["fields"]
    assert eng.get("/products/P1").get_json()["mark_template"] == \
        "{device}\n{date_code} {trace_code}"


def test_split_children_carry_the_mark(session, make_lot):
    lot = make_lot("LOT-M4", quantity=100, steps=2)
    (child,) = floor.split_lot(session, "op1", lot, [60, 40])
    session.commit()
    assert (child.date_code, child.trace_code, child.mark) == (
        lot.date_code, lot.trace_code, lot.mark)


def test_lots_of_different_date_codes_do_not_merge(session, make_lot):
    first = make_lot("LOT-M5", quantity=100, steps=2)
    second = make_lot("LOT-M6", quantity=100, steps=2,
                      at=datetime(2026, 12, 9, 2, 0, tzinfo=UTC))
    assert (first.date_code, second.date_code) == ("2649", "2650")
    refused(session, lambda: floor.merge_lots(session, "op1", [first, second]), Conflict,
            "date_code_mismatch")
    third = make_lot("LOT-M7", quantity=50, steps=2)
    survivor = floor.merge_lots(session, "op1", [first, third])
    session.commit()
    assert survivor.quantity == 150 and survivor.date_code == "2649"


def test_merge_refused_through_the_api(session, make_lot, api):
    make_lot("LOT-M8", quantity=100, steps=2)
    make_lot("LOT-M9", quantity=100, steps=2, at=datetime(2026, 12, 9, 2, 0, tzinfo=UTC))
    op = api("operator")
    refused(session, lambda: op.post("/lots/merge", json={"lots": ["LOT-M8", "LOT-M9"]}),
            409, "date_code_mismatch")
