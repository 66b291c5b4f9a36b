"""The shop-floor rules, called as services: every refusal changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from mes.catalog import services as cat
from mes.catalog.models import Equipment, MaterialLot, ReasonCode
from mes.db import utcnow
from mes.errors import Conflict, InvalidInput, NotFound
from mes.floor import services
from mes.floor.models import (
    Lot,
    LotEdge,
    LotEvent,
    LotReject,
    LotWafer,
    MaterialUse,
    StepRun,
    Wafer,
)
from tests.floor.helpers import (
    advance,
    count,
    hold,
    track_in,
    track_out,
    wafer_links,
)
from tests.helpers import audit_codes, refused

# --- receiving -------------------------------------------------------------------------

def test_receive_starts_lot_queued_at_first_step_with_wafers_history_and_audit(session,
                                                                              receive):
    lot = receive(300, fab_lot="FAB7", wafers=[{"wafer_id": "W01", "die_qty": 100},
                                               {"wafer_id": "W02", "die_qty": 200}],
                  lot_no="LOT-A", priority=2)
    assert (lot.state, lot.step_seq, lot.step_code, lot.quantity) == ("queued", 1, "SAW", 300)
    assert (lot.route.code, lot.route.version, lot.fab_lot, lot.priority) == \
        ("QFN", 1, "FAB7", 2)
    assert lot.customer.code == "OEM" and lot.product.code == "P1"
    wafers = session.scalars(select(Wafer).where(Wafer.received_lot_id == lot.id)
                             .order_by(Wafer.wafer_id)).all()
    assert [(w.fab_lot, w.wafer_id, w.die_qty) for w in wafers] == [("FAB7", "W01", 100),
                                                                      ("FAB7", "W02", 200)]
    assert wafer_links(session, lot) == 2
    [event] = services.history(session, lot)
    assert (event.kind, event.by, event.step_code, event.qty_out) == ("receive", "planner",
                                                                      "SAW", 300)
    assert event.data["wafers"] == ["W01", "W02"] and event.data["route_version"] == 1
    assert audit_codes(session, "lot", "LOT-A") == ["lot:receive"]


def _receipt(**changes: Any) -> dict[str, Any]:
    data = {"product": "P1", "customer": "OEM", "quantity": 300, "fab_lot": "FAB1",
            "wafers": [{"wafer_id": "W01", "die_qty": 100}, {"wafer_id": "W02",
                                                              "die_qty": 200}],
            "lot_no": None, "priority": 3, "due_date": None}
    data.update(changes)
    return data


@pytest.mark.parametrize(("changes", "code", "field"), [
    ({"product": "NOPE"}, "invalid", "product"),
    ({"customer": "NOPE"}, "invalid", "customer"),
    ({"customer": "IND"}, "invalid", "customer"),
    ({"wafers": [{"wafer_id": "W01", "die_qty": 150}, {"wafer_id": "W01", "die_qty": 150}]},
     "invalid", "wafers"),
    ({"wafers": [{"wafer_id": "W01", "die_qty": 100}, {"wafer_id": "W02", "die_qty": 199}]},
     "quantity_mismatch", "quantity"),
], ids=["unknown_product", "unknown_customer", "product_of_another_customer",
        "repeated_wafer_ids", "die_quantities_not_adding_up"])
def test_receive_refuses_bad_receipt(session, plant, changes, code, field):
    err = refused(session, lambda: services.receive_lot(session, "planner", _receipt(**changes)),
                  InvalidInput, code)
    assert field in err.fields


def test_receive_accepts_any_customer_for_a_product_made_for_nobody_in_particular(session,
                                                                               receive):
    lot = receive(300, product="P2", customer="IND")
    assert lot.customer.code == "IND" and lot.product.code == "P2"


def test_receive_refuses_wafer_already_received_in_the_same_fab_lot(session, receive):
    receive(100, fab_lot="FAB1", wafers=[{"wafer_id": "W01", "die_qty": 100}])
    err = refused(session, lambda: services.receive_lot(
        session, "planner", _receipt(fab_lot="FAB1")), InvalidInput, "invalid")
    assert "W01" in err.fields["wafers"][0]
    other_fab = receive(300, fab_lot="FAB2", wafers=_receipt()["wafers"])
    assert wafer_links(session, other_fab) == 2


def test_receive_refuses_duplicate_lot_number(session, receive):
    receive(100, lot_no="LOT-A")
    refused(session, lambda: services.receive_lot(
        session, "planner", _receipt(lot_no="LOT-A", wafers=[], quantity=5)), Conflict, "duplicate")


def test_receive_numbers_lots_by_prefix_day_and_sequence(app, session, receive):
    with app.app_context():
        day = f"{utcnow():%y%m%d}"
        numbers = [receive(10).lot_no for _ in range(3)]
    assert numbers == [f"L{day}-0001", f"L{day}-0002", f"L{day}-0003"]


def test_generated_lot_number_skips_numbers_given_by_hand(app, session, receive):
    with app.app_context():
        day = f"{utcnow():%y%m%d}"
        receive(10, lot_no=f"L{day}-0041")
        receive(10, lot_no=f"L{day}-RUSH")
        # The day's first generated number starts after the highest one given by hand ...
        assert receive(10).lot_no == f"L{day}-0042"
        receive(10, lot_no=f"L{day}-0043")
        # ... and later ones continue the sequence, passing over numbers taken meanwhile.
        assert receive(10).lot_no == f"L{day}-0044"


def test_lot_keeps_its_route_version_after_a_new_version_is_posted(session, receive):
    old = receive(100, lot_no="OLD")
    cat.create_route(session, "eng", {"code": "QFN", "name": "QFN v2", "steps": [
        {"code": "SAW", "name": "Wafer saw", "kind": "assembly", "equipment_kind": "saw",
         "min_yield": None, "materials": []},
        {"code": "FT", "name": "Final test", "kind": "test", "equipment_kind": "tester",
         "min_yield": None, "materials": []},
    ]})
    session.commit()
    new = receive(100, lot_no="NEW")
    assert (old.route.version, new.route.version) == (1, 2)
    advance(session, old)
    advance(session, new)
    assert (old.route.version, old.step_seq, old.step_code) == (1, 2, "WB")
    assert (new.step_seq, new.step_code) == (2, "FT")
    advance(session, new)
    assert new.state == "completed"
    assert old.state == "queued" and len(services.route_steps(old)) == 4


# --- track-in --------------------------------------------------------------------------

def _closed(state: str) -> Callable[[Any, Lot], dict[str, Any]]:
    def setup(session, lot: Lot) -> dict[str, Any]:
        lot.state = state
        session.commit()
        return {}
    return setup


def _on_hold(session, lot: Lot) -> dict[str, Any]:
    hold(session, lot)
    return {}


def _running(session, lot: Lot) -> dict[str, Any]:
    track_in(session, lot)
    return {}


def _busy_tool(session, lot: Lot) -> dict[str, Any]:
    other = services.receive_lot(session, "planner", _receipt(lot_no="OTHER", wafers=[]))
    track_in(session, other)
    return {}


def _at_wire_bond(**call: Any) -> Callable[[Any, Lot], dict[str, Any]]:
    def setup(session, lot: Lot) -> dict[str, Any]:
        advance(session, lot)
        return {"step": "WB", "equipment": "WB-1", "materials": ["AU-1"], **call}
    return setup


TRACK_IN_REFUSALS = {
    "lot_on_hold": (_on_hold, Conflict, "lot_on_hold"),
    "not_at_that_step": (lambda s, lot: {"step": "WB"}, Conflict, "wrong_step"),
    "already_running": (_running, Conflict, "already_running"),
    "completed": (_closed("completed"), Conflict, "lot_closed"),
    "shipped": (_closed("shipped"), Conflict, "lot_closed"),
    "scrapped": (_closed("scrapped"), Conflict, "lot_closed"),
    "merged": (_closed("merged"), Conflict, "lot_closed"),
    "equipment_of_wrong_kind": (lambda s, lot: {"equipment": "TST-1"}, Conflict,
                                "wrong_equipment"),
    "equipment_down": (_at_wire_bond(equipment="WB-3"), Conflict, "equipment_unavailable"),
    "equipment_busy": (_busy_tool, Conflict, "equipment_busy"),
    "material_expired": (_at_wire_bond(materials=["AU-OLD"]), Conflict, "material_expired"),
    "material_missing": (_at_wire_bond(materials=["EPX-1"]), Conflict, "material_required"),
    "unknown_material": (lambda s, lot: {"materials": ["NOPE-1"]}, InvalidInput, "invalid"),
    "unknown_equipment": (lambda s, lot: {"equipment": "NOPE-1"}, InvalidInput, "invalid"),
}


@pytest.mark.parametrize("case", list(TRACK_IN_REFUSALS))
def test_track_in_refused(session, receive, case):
    setup, error, code = TRACK_IN_REFUSALS[case]
    lot = receive(100, lot_no="LOT-A")
    call = {"step": lot.step_code, "equipment": "SAW-1", "materials": [],
            **setup(session, lot)}
    err = refused(session, lambda: services.track_in(session, "op1", lot, **call), error, code)
    if error is InvalidInput:
        assert list(err.fields) == [{"unknown_material": "materials",
                                     "unknown_equipment": "equipment"}[case]]


def test_track_in_records_equipment_operator_time_materials_history_and_audit(session,
                                                                             receive):
    lot = advance(session, receive(100, lot_no="LOT-A"))
    before = utcnow()
    services.track_in(session, "op1", lot, step="WB", equipment="WB-2",
                      materials=["AU-1", "EPX-1"])
    session.commit()
    tool = session.scalar(select(Equipment).where(Equipment.code == "WB-2"))
    assert (lot.state, lot.equipment_id, tool.lots_running) == ("running", tool.id, 1)
    run = session.get(StepRun, lot.run_id)
    assert (run.step_code, run.step_seq, run.equipment_id, run.operator, run.qty_in) == \
        ("WB", 2, tool.id, "op1", 100)
    assert run.started_at >= before and run.finished_at is None
    used = session.scalars(select(MaterialUse).where(MaterialUse.lot_id == lot.id)).all()
    codes = {session.get(MaterialLot, u.material_lot_id).code for u in used}
    assert codes == {"AU-1", "EPX-1"} and {u.run_id for u in used} == {run.id}
    event = services.history(session, lot)[-1]
    assert (event.kind, event.by, event.step_code, event.equipment, event.qty_in) == \
        ("track_in", "op1", "WB", "WB-2", 100)
    assert event.data["materials"] == ["AU-1", "EPX-1"]
    assert audit_codes(session, "lot", "LOT-A")[-1] == "lot:track_in"


# --- track-out -------------------------------------------------------------------------

def test_track_out_refused_when_lot_not_running(session, receive):
    lot = receive(100)
    refused(session, lambda: services.track_out(
        session, "op2", lot, step="SAW", good_qty=100), Conflict, "not_running")


def test_track_out_refused_at_another_step(session, receive):
    lot = track_in(session, receive(100))
    refused(session, lambda: services.track_out(
        session, "op2", lot, step="WB", good_qty=100), Conflict, "wrong_step")


@pytest.mark.parametrize(("good", "rejects"), [
    (90, [{"reason": "R-SCRATCH", "qty": 5}]),
    (99, [{"reason": "R-SCRATCH", "qty": 2}]),
    (101, []),
])
def test_track_out_refused_when_good_and_rejects_do_not_add_up(session, receive, good,
                                                               rejects):
    lot = track_in(session, receive(100))
    err = refused(session, lambda: services.track_out(
        session, "op2", lot, step="SAW", good_qty=good, rejects=rejects),
                  InvalidInput, "quantity_mismatch")
    assert "good_qty" in err.fields


@pytest.mark.parametrize("reason", ["H-ENG", "S-DMG", "NOPE"])
def test_track_out_refused_with_a_reason_that_is_not_a_reject_code(session, receive, reason):
    lot = track_in(session, receive(100))
    err = refused(session, lambda: services.track_out(
        session, "op2", lot, step="SAW", good_qty=95, rejects=[{"reason": reason, "qty": 5}]),
                  InvalidInput, "invalid")
    assert reason in err.fields["rejects"][0]


def test_track_out_moves_lot_to_next_step_frees_tool_and_stores_rejects(session, receive):
    lot = track_in(session, receive(100, lot_no="LOT-A"))
    run_id = lot.run_id
    track_out(session, lot, 95, [{"reason": "R-SCRATCH", "qty": 3},
                                 {"reason": "R-BALL", "qty": 2},
                                 {"reason": "R-BALL", "qty": 0}])
    assert (lot.state, lot.step_seq, lot.step_code, lot.quantity) == ("queued", 2, "WB", 95)
    assert lot.equipment_id is None and lot.run_id is None
    tool = session.scalar(select(Equipment).where(Equipment.code == "SAW-1"))
    assert tool.lots_running == 0
    run = session.get(StepRun, run_id)
    assert (run.good_qty, run.reject_qty, run.finished_by) == (95, 5, "op2")
    assert run.finished_at is not None and run.finished_at >= run.started_at
    rejects = session.execute(
        select(ReasonCode.code, LotReject.qty, LotReject.step_code, LotReject.run_id)
        .join(ReasonCode, ReasonCode.id == LotReject.reason_id)
        .where(LotReject.lot_id == lot.id).order_by(LotReject.id)).all()
    assert [tuple(r) for r in rejects] == [("R-SCRATCH", 3, "SAW", run_id),
                                           ("R-BALL", 2, "SAW", run_id)]
    event = services.history(session, lot)[-1]
    assert (event.kind, event.by, event.step_code, event.equipment, event.qty_in,
            event.qty_out) == ("track_out", "op2", "SAW", "SAW-1", 100, 95)
    assert event.data["next_step"] == "WB" and event.data["yield"] == 95.0
    assert audit_codes(session, "lot", "LOT-A")[-1] == "lot:track_out"
    # The freed tool takes the next lot.
    assert track_in(session, receive(10)).state == "running"


def test_track_out_after_last_step_completes_lot(session, receive):
    lot = advance(session, receive(100), steps=4)
    assert (lot.state, lot.step_seq, lot.step_code, lot.quantity) == \
        ("completed", 4, "PACK", 100)
    assert services.history(session, lot)[-1].data["next_step"] is None
    assert count(session, StepRun, lot_id=lot.id) == 4


def test_track_out_with_no_good_units_scraps_lot_at_that_step(session, receive):
    lot = track_in(session, receive(10))
    track_out(session, lot, 0, [{"reason": "R-SCRATCH", "qty": 10}])
    assert (lot.state, lot.quantity, lot.step_code, lot.step_seq) == ("scrapped", 0, "SAW", 1)
    assert services.history(session, lot)[-1].data["next_step"] is None
    refused(session, lambda: services.track_in(
        session, "op1", lot, step="SAW", equipment="SAW-1"), Conflict, "lot_closed")


# --- split -----------------------------------------------------------------------------

def test_split_conserves_quantity_and_children_inherit_wafers_fab_lot_and_step(session,
                                                                               receive):
    lot = advance(session, receive(300, lot_no="LOT-A", fab_lot="FAB7",
                                   wafers=_receipt()["wafers"]))
    children = services.split_lot(session, "op3", lot, [150, 100, 50])
    session.commit()
    assert lot.quantity == 150 and lot.state == "queued"
    assert [(c.lot_no, c.quantity, c.state, c.step_code, c.step_seq, c.fab_lot, c.route_id)
            for c in children] == [("LOT-A.01", 100, "queued", "WB", 2, "FAB7", lot.route_id),
                                   ("LOT-A.02", 50, "queued", "WB", 2, "FAB7", lot.route_id)]
    # Die quantities decide the wafers (W01 100, W02 200): the parent's 150 units span
    # both wafers, the children's lie on W02.
    def wafers_of(part: Lot) -> list[str]:
        return list(session.scalars(select(Wafer.wafer_id).join(
            LotWafer, LotWafer.wafer_pk == Wafer.id).where(LotWafer.lot_id == part.id)
            .order_by(Wafer.wafer_id)))

    assert wafers_of(lot) == ["W01", "W02"]
    assert [wafers_of(child) for child in children] == [["W02"], ["W02"]]
    assert (lot.wafer_count, [c.wafer_count for c in children]) == (2, [1, 1])
    edges = session.scalars(select(LotEdge).where(LotEdge.parent_id == lot.id)
                            .order_by(LotEdge.id)).all()
    assert [(e.child_id, e.kind, e.qty, e.step_code, e.by) for e in edges] == [
        (children[0].id, "split", 100, "WB", "op3"), (children[1].id, "split", 50, "WB", "op3")]
    assert all(e.at is not None for e in edges)
    event = services.history(session, lot)[-1]
    assert (event.kind, event.qty_in, event.qty_out) == ("split", 300, 150)
    assert [e.kind for e in services.history(session, children[0])] == ["split_from"]
    assert audit_codes(session, "lot", "LOT-A")[-1] == "lot:split"
    assert audit_codes(session, "lot", "LOT-A.01") == ["lot:split_from"]
    more = services.split_lot(session, "op3", lot, [100, 50])
    assert [c.lot_no for c in more] == ["LOT-A.03"]


def test_split_passes_over_child_numbers_already_given_by_hand(session, receive):
    receive(10, lot_no="LOT-A.01")
    lot = receive(100, lot_no="LOT-A")
    children = services.split_lot(session, "op3", lot, [50, 30, 20])
    assert [c.lot_no for c in children] == ["LOT-A.02", "LOT-A.03"]


def test_split_refused_when_children_numbers_would_be_too_long(session, receive):
    lot = receive(100, lot_no="L" * 58)
    refused(session, lambda: services.split_lot(session, "op3", lot, [50, 50]),
            Conflict, "lot_no_too_long")


@pytest.mark.parametrize(("quantities", "code"), [
    ([60, 30], "quantity_mismatch"), ([60, 50], "quantity_mismatch"), ([100], "invalid"),
    ([100, 0], "invalid"),
])
def test_split_refused_when_quantities_do_not_add_up(session, receive, quantities, code):
    lot = receive(100)
    err = refused(session, lambda: services.split_lot(session, "op3", lot, quantities),
                  InvalidInput, code)
    assert "quantities" in err.fields


@pytest.mark.parametrize(("setup", "code"), [
    (_on_hold, "lot_on_hold"), (_running, "already_running"),
    (_closed("completed"), "lot_closed"), (_closed("scrapped"), "lot_closed"),
    (_closed("shipped"), "lot_closed"), (_closed("merged"), "lot_closed"),
])
def test_split_refused_for_lot_that_cannot_move(session, receive, setup, code):
    lot = receive(100)
    setup(session, lot)
    refused(session, lambda: services.split_lot(session, "op3", lot, [50, 50]), Conflict, code)


# --- merge -----------------------------------------------------------------------------

def test_merge_gives_survivor_quantities_and_wafers_and_ends_the_others(session, receive):
    a = receive(100, lot_no="A", wafers=[{"wafer_id": "W1", "die_qty": 100}])
    b = receive(50, lot_no="B", wafers=[{"wafer_id": "W2", "die_qty": 50}])
    c = receive(30, lot_no="C", fab_lot="FAB2", wafers=[{"wafer_id": "W1", "die_qty": 30}])
    survivor = services.merge_lots(session, "op3", [a, b, c])
    session.commit()
    assert survivor is a
    assert (a.quantity, a.state) == (180, "queued")
    assert [(x.quantity, x.state) for x in (b, c)] == [(0, "merged"), (0, "merged")]
    assert wafer_links(session, a) == 3
    edges = session.scalars(select(LotEdge).where(LotEdge.child_id == a.id)
                            .order_by(LotEdge.id)).all()
    assert [(e.parent_id, e.kind, e.qty, e.step_code, e.by) for e in edges] == [
        (b.id, "merge", 50, "SAW", "op3"), (c.id, "merge", 30, "SAW", "op3")]
    assert [(e.kind, e.qty_in, e.qty_out) for e in services.history(session, a)][-1] == \
        ("merge", 100, 180)
    last = services.history(session, b)[-1]
    assert (last.kind, last.qty_in, last.qty_out, last.data) == \
        ("merged_into", 50, 0, {"into": "A"})
    assert audit_codes(session, "lot", "A")[-1] == "lot:merge"
    assert audit_codes(session, "lot", "B")[-1] == "lot:merged_into"
    refused(session, lambda: services.track_in(
        session, "op1", b, step="SAW", equipment="SAW-1"), Conflict, "lot_closed")


def _other_route_version(session, receive) -> Lot:
    cat.create_route(session, "eng", {"code": "QFN", "name": "QFN v2", "steps": [
        {"code": "SAW", "name": "Wafer saw", "kind": "assembly", "equipment_kind": "saw",
         "min_yield": None, "materials": []}]})
    session.commit()
    return receive(50, lot_no="B")


@pytest.mark.parametrize(("first", "make_other"), [
    ({}, lambda session, receive: receive(50, lot_no="B", product="P2")),
    ({"product": "P2"}, lambda session, receive: receive(50, lot_no="B", product="P2",
                                                         customer="IND")),
    ({}, lambda session, receive: advance(session, receive(50, lot_no="B"))),
    ({}, _other_route_version),
], ids=["other_product", "other_customer", "other_step", "other_route_version"])
def test_merge_refused_unless_same_product_route_version_and_step(session, receive, first,
                                                                  make_other):
    a = receive(100, lot_no="A", **first)
    b = make_other(session, receive)
    refused(session, lambda: services.merge_lots(session, "op3", [a, b]),
            Conflict, "merge_mismatch")


@pytest.mark.parametrize(("setup", "code"), [
    (_on_hold, "lot_on_hold"), (_running, "already_running"),
    (_closed("completed"), "lot_closed"), (_closed("merged"), "lot_closed"),
])
@pytest.mark.parametrize("which", [0, 1])
def test_merge_refused_when_a_lot_cannot_move(session, receive, setup, code, which):
    lots = [receive(100, lot_no="A"), receive(50, lot_no="B")]
    setup(session, lots[which])
    refused(session, lambda: services.merge_lots(session, "op3", lots), Conflict, code)


def test_merge_refused_for_fewer_than_two_different_lots(session, receive):
    a = receive(100, lot_no="A")
    refused(session, lambda: services.merge_lots(session, "op3", [a]), InvalidInput, "invalid")
    refused(session, lambda: services.merge_lots(session, "op3", [a, a]), InvalidInput, "invalid")


def test_lots_by_number_refuses_unknown_lot(session, receive):
    receive(100, lot_no="A")
    err = refused(session, lambda: services.lots_by_number(session, ["A", "NOPE"]),
                  InvalidInput, "invalid")
    assert err.fields == {"lots": ["Unknown lot NOPE."]}


# --- reading ---------------------------------------------------------------------------

def test_customer_user_sees_another_customers_lot_as_missing(session, receive, make_user):
    receive(100, lot_no="A")
    own = receive(100, lot_no="B", product="P2", customer="IND")
    user = make_user("customer", customer="IND")
    assert services.get_lot(session, "B", user) is own
    with pytest.raises(NotFound):
        services.get_lot(session, "A", user)
    assert [lot.lot_no for lot in session.scalars(services.lot_query({}, user))] == ["B"]


def test_every_move_leaves_one_history_event_and_one_audit_record(session, receive):
    lot = receive(100, lot_no="A")
    advance(session, lot)
    services.split_lot(session, "op3", lot, [60, 40])
    services.merge_lots(session, "op3", [lot, session.scalar(
        select(Lot).where(Lot.lot_no == "A.01"))])
    session.commit()
    kinds = [e.kind for e in services.history(session, lot)]
    assert kinds == ["receive", "track_in", "track_out", "split", "merge"]
    assert audit_codes(session, "lot", "A") == [f"lot:{k}" for k in kinds]
    assert count(session, LotEvent, lot_id=lot.id) == 5
