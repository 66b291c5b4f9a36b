"""The lot API: every shop-floor rule through HTTP with its status and error code, nothing
changed when it refuses, and customers limited to their own lots."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from sqlalchemy import select

from mes.catalog.models import Equipment, EquipmentStateChange
from mes.db import utcnow
from mes.floor import services
from mes.floor.models import Lot, LotEdge, LotReject, StepRun
from tests.floor.helpers import (
    advance,
    count,
    hold,
    lot_row,
    track_in,
    wafer_links,
)
from tests.helpers import audit_codes, refused

pytestmark = pytest.mark.usefixtures("plant")

RECEIPT = {"product": "P1", "customer": "OEM", "quantity": 300, "fab_lot": "FAB1",
           "wafers": [{"wafer_id": "W01", "die_qty": 100}, {"wafer_id": "W02", "die_qty": 200}]}


@pytest.fixture
def planner(api):
    return api("planner")


@pytest.fixture
def op(api):
    return api("operator")


@pytest.fixture
def new_lot(request, session) -> Callable[..., Lot]:
    """Receive a lot directly through the service (the setup of a test, not its subject)."""
    request.getfixturevalue("plant")

    def make(quantity: int = 100, **kw: Any) -> Lot:
        data = {"product": "P1", "customer": "OEM", "quantity": quantity, "fab_lot": "FAB1",
                "wafers": [], "lot_no": None, "priority": 3, "due_date": None, **kw}
        lot = services.receive_lot(session, "planner", data)
        session.commit()
        return lot
    return make


# --- receiving -------------------------------------------------------------------------

def test_receive_answers_lot_queued_at_first_step(planner, session):
    resp = planner.post("/lots", json={**RECEIPT, "lot_no": "LOT-A", "priority": 2,
                                       "due_date": "2036-12-01"})
    assert resp.status_code == 201, resp.get_json()
    lot = resp.get_json()
    assert {"lot_no", "product", "customer", "route", "route_version", "step", "state",
            "quantity", "wafer_count", "fab_lot", "on_hold", "holds", "parents", "children",
            "equipment", "created_at", "updated_at"} <= set(lot)
    assert {k: lot[k] for k in ("lot_no", "product", "customer", "route", "route_version",
                                "step", "state", "quantity", "wafer_count", "fab_lot",
                                "on_hold", "holds", "parents", "children", "equipment",
                                "priority", "due_date")} == {
        "lot_no": "LOT-A", "product": "P1", "customer": "OEM", "route": "QFN",
        "route_version": 1, "step": "SAW", "state": "queued", "quantity": 300,
        "wafer_count": 2, "fab_lot": "FAB1", "on_hold": False, "holds": [], "parents": [],
        "children": [], "equipment": None, "priority": 2, "due_date": "2036-12-01"}
    assert lot["created_at"].endswith("+00:00")
    assert audit_codes(session, "lot", "LOT-A") == ["lot:receive"]
    assert planner.get("/lots/LOT-A").get_json()["quantity"] == 300


@pytest.mark.parametrize(("changes", "code", "field"), [
    ({"product": "NOPE"}, "invalid", "product"),
    ({"customer": "NOPE"}, "invalid", "customer"),
    ({"customer": "IND"}, "invalid", "customer"),
    ({"wafers": [{"wafer_id": "W01", "die_qty": 150}, {"wafer_id": "W01", "die_qty": 150}]},
     "invalid", "wafers"),
    ({"wafers": [{"wafer_id": "W01", "die_qty": 100}, {"wafer_id": "W02", "die_qty": 199}]},
     "quantity_mismatch", "quantity"),
    ({"quantity": 0}, "invalid", "quantity"),
    ({"fab_lot": ""}, "invalid", "fab_lot"),
    ({"lot_no": "has space"}, "invalid", "lot_no"),
    ({"priority": 9}, "invalid", "priority"),
], ids=["unknown_product", "unknown_customer", "product_of_another_customer",
        "repeated_wafer_ids", "die_quantities_not_adding_up", "no_quantity", "no_fab_lot",
        "bad_lot_no", "priority_out_of_range"])
def test_receive_refused(planner, session, changes, code, field):
    refused(session, lambda: planner.post("/lots", json={**RECEIPT, **changes}), 422, code,
            field)


def test_receive_refused_for_a_wafer_already_received_in_that_fab_lot(planner, session):
    assert planner.post("/lots", json={**RECEIPT, "wafers": RECEIPT["wafers"][:1],
                                       "quantity": 100}).status_code == 201
    error = refused(session, lambda: planner.post("/lots", json={
        **RECEIPT, "wafers": [{"wafer_id": "W01", "die_qty": 300}]}), 422, "invalid", "wafers")
    assert "W01" in error["fields"]["wafers"][0]


def test_receive_refused_for_an_existing_lot_number(planner, session):
    assert planner.post("/lots", json={**RECEIPT, "lot_no": "LOT-A"}).status_code == 201
    refused(session, lambda: planner.post("/lots", json={**RECEIPT, "lot_no": "LOT-A",
                                                         "wafers": []}), 409, "duplicate")


def test_receive_refused_for_a_body_that_is_not_json(planner, session):
    refused(session, lambda: planner.post("/lots", data="product=P1",
                                          content_type="text/plain"), 400, "bad_request")


def test_receive_refused_for_an_operator(op, session):
    refused(session, lambda: op.post("/lots", json=RECEIPT), 403, "forbidden")


def test_received_lots_are_numbered_by_day_and_sequence(planner):
    day = f"{utcnow():%y%m%d}"
    numbers = [planner.post("/lots", json={**RECEIPT, "wafers": []}).get_json()["lot_no"]
               for _ in range(2)]
    assert numbers == [f"L{day}-0001", f"L{day}-0002"]


def test_lot_keeps_its_route_version_after_a_new_version_is_posted(api, planner, op):
    assert planner.post("/lots", json={**RECEIPT, "lot_no": "OLD"}).status_code == 201
    resp = api("engineer").post("/routes", json={"code": "QFN", "name": "QFN v2", "steps": [
        {"code": "SAW", "name": "Wafer saw", "kind": "assembly", "equipment_kind": "saw"},
        {"code": "FT", "name": "Final test", "kind": "test", "equipment_kind": "tester"}]})
    assert resp.status_code == 201, resp.get_json()
    assert planner.post("/lots", json={**RECEIPT, "wafers": [], "lot_no": "NEW"}) \
        .get_json()["route_version"] == 2
    for no in ("OLD", "NEW"):
        assert op.post(f"/lots/{no}/track-in", json={"step": "SAW", "equipment": "SAW-1"}) \
            .status_code == 200
        assert op.post(f"/lots/{no}/track-out", json={"step": "SAW", "good_qty": 300}) \
            .status_code == 200
    old, new = op.get("/lots/OLD").get_json(), op.get("/lots/NEW").get_json()
    assert (old["route_version"], old["step"], old["steps_total"]) == (1, "WB", 4)
    assert (new["route_version"], new["step"], new["steps_total"]) == (2, "FT", 2)


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
    other = services.receive_lot(session, "planner", {**RECEIPT, "wafers": [],
                                                      "lot_no": "OTHER"})
    track_in(session, other)
    return {}


def _at_wire_bond(**body: Any) -> Callable[[Any, Lot], dict[str, Any]]:
    def setup(session, lot: Lot) -> dict[str, Any]:
        advance(session, lot)
        return {"step": "WB", "equipment": "WB-1", "materials": ["AU-1"], **body}
    return setup


# case: (setup returning body changes, status, code, field named in the error)
TRACK_IN_REFUSALS = {
    "lot_on_hold": (_on_hold, 409, "lot_on_hold", None),
    "not_at_that_step": (lambda s, lot: {"step": "WB"}, 409, "wrong_step", None),
    "already_running": (_running, 409, "already_running", None),
    "completed": (_closed("completed"), 409, "lot_closed", None),
    "shipped": (_closed("shipped"), 409, "lot_closed", None),
    "scrapped": (_closed("scrapped"), 409, "lot_closed", None),
    "equipment_of_wrong_kind": (lambda s, lot: {"equipment": "TST-1"}, 409, "wrong_equipment",
                                "equipment"),
    "equipment_down": (_at_wire_bond(equipment="WB-3"), 409, "equipment_unavailable",
                       "equipment"),
    "equipment_busy": (_busy_tool, 409, "equipment_busy", "equipment"),
    "material_expired": (_at_wire_bond(materials=["AU-OLD"]), 409, "material_expired",
                         "materials"),
    "material_missing": (_at_wire_bond(materials=[]), 409, "material_required", "materials"),
    "unknown_material": (lambda s, lot: {"materials": ["NOPE-1"]}, 422, "invalid",
                         "materials"),
    "unknown_equipment": (lambda s, lot: {"equipment": "NOPE-1"}, 422, "invalid",
                          "equipment"),
    "no_step_given": (lambda s, lot: {"step": None}, 422, "invalid", "step"),
}


@pytest.mark.parametrize("case", list(TRACK_IN_REFUSALS))
def test_track_in_refused(op, session, new_lot, case):
    setup, status, code, field = TRACK_IN_REFUSALS[case]
    lot = new_lot(100, lot_no="LOT-A")
    body = {"step": "SAW", "equipment": "SAW-1", **setup(session, lot)}
    body = {k: v for k, v in body.items() if v is not None}
    refused(session, lambda: op.post("/lots/LOT-A/track-in", json=body), status, code, field)


def test_track_in_of_an_unknown_lot_is_not_found(op, session):
    refused(session, lambda: op.post("/lots/NOPE/track-in", json={
        "step": "SAW", "equipment": "SAW-1"}), 404, "not_found")


def test_track_in_starts_lot_and_records_run_materials_history_and_audit(op, session,
                                                                         new_lot):
    lot = advance(session, new_lot(100, lot_no="LOT-A"))
    resp = op.post("/lots/LOT-A/track-in", json={"step": "WB", "equipment": "WB-2",
                                                 "materials": ["AU-1"]})
    assert resp.status_code == 200, resp.get_json()
    assert (resp.get_json()["state"], resp.get_json()["equipment"]) == ("running", "WB-2")
    row = lot_row(session, "LOT-A")
    run = session.execute(select(StepRun.__table__).where(StepRun.id == row["run_id"])) \
        .mappings().one()
    assert (run["step_code"], run["operator"], run["qty_in"], run["finished_at"]) == \
        ("WB", op.user.username, 100, None)
    assert count(session, StepRun, lot_id=lot.id) == 2
    event = op.get("/lots/LOT-A/history").get_json()["items"][-1]
    assert {k: event[k] for k in ("kind", "by", "step", "equipment", "qty_in")} == {
        "kind": "track_in", "by": op.user.username, "step": "WB", "equipment": "WB-2",
        "qty_in": 100}
    assert event["data"]["materials"] == ["AU-1"]
    assert audit_codes(session, "lot", "LOT-A")[-1] == "lot:track_in"


def test_track_in_refused_for_a_customer(api, new_lot, session):
    new_lot(100, lot_no="LOT-A")
    customer = api("customer", customer="OEM")
    refused(session, lambda: customer.post("/lots/LOT-A/track-in", json={
        "step": "SAW", "equipment": "SAW-1"}), 403, "forbidden")


# --- track-out -------------------------------------------------------------------------

@pytest.mark.parametrize(("running", "body", "status", "code", "field"), [
    (False, {"step": "SAW", "good_qty": 100}, 409, "not_running", None),
    (True, {"step": "WB", "good_qty": 100}, 409, "wrong_step", None),
    (True, {"step": "SAW", "good_qty": 97}, 422, "quantity_mismatch", "good_qty"),
    (True, {"step": "SAW", "good_qty": 98, "rejects": [{"reason": "R-BALL", "qty": 3}]},
     422, "quantity_mismatch", "good_qty"),
    (True, {"step": "SAW", "good_qty": 95, "rejects": [{"reason": "H-ENG", "qty": 5}]},
     422, "invalid", "rejects"),
    (True, {"step": "SAW", "good_qty": 95, "rejects": [{"reason": "S-DMG", "qty": 5}]},
     422, "invalid", "rejects"),
    (True, {"step": "SAW", "good_qty": 95, "rejects": [{"reason": "R-NOPE", "qty": 5}]},
     422, "invalid", "rejects"),
    (True, {"step": "SAW", "good_qty": 105, "rejects": [{"reason": "R-BALL", "qty": -5}]},
     422, "invalid", "rejects"),
    (True, {"step": "SAW", "good_qty": -1}, 422, "invalid", "good_qty"),
], ids=["not_running", "wrong_step", "too_few", "too_many", "hold_reason", "scrap_reason",
        "unknown_reason", "negative_reject", "negative_good"])
def test_track_out_refused(op, session, new_lot, running, body, status, code, field):
    lot = new_lot(100, lot_no="LOT-A")
    if running:
        track_in(session, lot)
    refused(session, lambda: op.post("/lots/LOT-A/track-out", json=body), status, code, field)


def test_track_out_moves_lot_on_frees_tool_and_stores_rejects(op, session, new_lot):
    lot = track_in(session, new_lot(100, lot_no="LOT-A"))
    resp = op.post("/lots/LOT-A/track-out", json={
        "step": "SAW", "good_qty": 96, "rejects": [{"reason": "R-SCRATCH", "qty": 3},
                                                   {"reason": "R-BALL", "qty": 1}]})
    assert resp.status_code == 200, resp.get_json()
    answer = resp.get_json()
    assert (answer["state"], answer["step"], answer["quantity"], answer["equipment"]) == \
        ("queued", "WB", 96, None)
    assert session.scalar(select(Equipment.lots_running).where(Equipment.code == "SAW-1")) == 0
    assert session.execute(select(LotReject.qty).where(LotReject.lot_id == lot.id)
                           .order_by(LotReject.id)).scalars().all() == [3, 1]
    event = op.get("/lots/LOT-A/history").get_json()["items"][-1]
    assert {k: event[k] for k in ("kind", "by", "step", "equipment", "qty_in", "qty_out")} == {
        "kind": "track_out", "by": op.user.username, "step": "SAW", "equipment": "SAW-1",
        "qty_in": 100, "qty_out": 96}
    assert audit_codes(session, "lot", "LOT-A")[-1] == "lot:track_out"


def test_track_out_of_last_step_completes_lot(op, session, new_lot):
    advance(session, new_lot(100, lot_no="LOT-A"), steps=3)
    track_in(session, session.scalar(select(Lot).where(Lot.lot_no == "LOT-A")))
    resp = op.post("/lots/LOT-A/track-out", json={"step": "PACK", "good_qty": 100})
    assert resp.status_code == 200, resp.get_json()
    assert (resp.get_json()["state"], resp.get_json()["step"]) == ("completed", "PACK")


def test_track_out_with_nothing_good_scraps_lot(op, session, new_lot):
    track_in(session, new_lot(10, lot_no="LOT-A"))
    resp = op.post("/lots/LOT-A/track-out", json={
        "step": "SAW", "good_qty": 0, "rejects": [{"reason": "R-SCRATCH", "qty": 10}]})
    assert resp.status_code == 200, resp.get_json()
    assert {k: resp.get_json()[k] for k in ("state", "step", "quantity")} == {
        "state": "scrapped", "step": "SAW", "quantity": 0}


# --- split and merge -------------------------------------------------------------------

def test_split_answers_parent_and_children(op, session, new_lot):
    lot = new_lot(300, lot_no="LOT-A", wafers=RECEIPT["wafers"])
    resp = op.post("/lots/LOT-A/split", json={"quantities": [200, 60, 40]})
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert (body["parent"]["quantity"], body["parent"]["children"]) == \
        (200, ["LOT-A.01", "LOT-A.02"])
    assert [(c["lot_no"], c["quantity"], c["step"], c["state"], c["fab_lot"], c["parents"],
             c["wafer_count"]) for c in body["children"]] == [
        ("LOT-A.01", 60, "SAW", "queued", "FAB1", ["LOT-A"], 1),
        ("LOT-A.02", 40, "SAW", "queued", "FAB1", ["LOT-A"], 1)]
    edges = session.execute(select(LotEdge.kind, LotEdge.qty, LotEdge.step_code, LotEdge.by)
                            .where(LotEdge.parent_id == lot.id).order_by(LotEdge.id)).all()
    assert [tuple(e) for e in edges] == [("split", 60, "SAW", op.user.username),
                                         ("split", 40, "SAW", op.user.username)]
    assert audit_codes(session, "lot", "LOT-A")[-1] == "lot:split"


@pytest.mark.parametrize(("setup", "body", "status", "code"), [
    (None, {"quantities": [50, 40]}, 422, "quantity_mismatch"),
    (None, {"quantities": [50, 60]}, 422, "quantity_mismatch"),
    (None, {"quantities": [100]}, 422, "invalid"),
    (None, {"quantities": [100, 0]}, 422, "invalid"),
    (_on_hold, {"quantities": [50, 50]}, 409, "lot_on_hold"),
    (_running, {"quantities": [50, 50]}, 409, "already_running"),
    (_closed("completed"), {"quantities": [50, 50]}, 409, "lot_closed"),
    (_closed("merged"), {"quantities": [50, 50]}, 409, "lot_closed"),
], ids=["too_few", "too_many", "one_quantity", "zero_quantity", "on_hold", "running",
        "completed", "merged"])
def test_split_refused(op, session, new_lot, setup, body, status, code):
    lot = new_lot(100, lot_no="LOT-A")
    if setup:
        setup(session, lot)
    refused(session, lambda: op.post("/lots/LOT-A/split", json=body), status, code)


def test_split_refused_when_children_numbers_would_be_too_long(op, session, new_lot):
    new_lot(100, lot_no="L" * 60)
    refused(session, lambda: op.post(f"/lots/{'L' * 60}/split", json={"quantities": [50, 50]}),
            409, "lot_no_too_long")


def test_merge_answers_survivor_and_ends_the_others(op, session, new_lot):
    a = new_lot(100, lot_no="A", wafers=[{"wafer_id": "W01", "die_qty": None}])
    new_lot(60, lot_no="B", wafers=[{"wafer_id": "W02", "die_qty": None}])
    new_lot(40, lot_no="C")
    resp = op.post("/lots/merge", json={"lots": ["A", "B", "C"]})
    assert resp.status_code == 201, resp.get_json()
    survivor = resp.get_json()
    assert {k: survivor[k] for k in ("lot_no", "quantity", "state", "parents",
                                     "wafer_count")} == {
        "lot_no": "A", "quantity": 200, "state": "queued", "parents": ["B", "C"],
        "wafer_count": 2}
    assert wafer_links(session, a) == 2
    for no in ("B", "C"):
        merged = op.get(f"/lots/{no}").get_json()
        assert (merged["state"], merged["quantity"], merged["children"]) == ("merged", 0, ["A"])
    assert audit_codes(session, "lot", "A")[-1] == "lot:merge"
    assert audit_codes(session, "lot", "B")[-1] == "lot:merged_into"


@pytest.mark.parametrize(("other", "setup", "lots", "status", "code", "field"), [
    ({"product": "P2"}, None, ["A", "B"], 409, "merge_mismatch", None),
    ({}, advance, ["A", "B"], 409, "merge_mismatch", None),
    ({}, _on_hold, ["A", "B"], 409, "lot_on_hold", None),
    ({}, _running, ["A", "B"], 409, "already_running", None),
    ({}, _closed("completed"), ["A", "B"], 409, "lot_closed", None),
    ({}, None, ["A"], 422, "invalid", "lots"),
    ({}, None, ["A", "A"], 422, "invalid", "lots"),
    ({}, None, ["A", "NOPE"], 422, "invalid", "lots"),
], ids=["other_product", "other_step", "on_hold", "running", "closed", "one_lot", "same_lot",
        "unknown_lot"])
def test_merge_refused(op, session, new_lot, other, setup, lots, status, code, field):
    new_lot(100, lot_no="A")
    b = new_lot(50, lot_no="B", **other)
    if setup:
        setup(session, b)
    refused(session, lambda: op.post("/lots/merge", json={"lots": lots}), status, code, field)


# --- history, lists and customers ------------------------------------------------------

def test_history_lists_every_event_in_order_with_who_when_step_and_quantities(op, session,
                                                                               new_lot):
    new_lot(100, lot_no="LOT-A")
    op.post("/lots/LOT-A/track-in", json={"step": "SAW", "equipment": "SAW-1"})
    op.post("/lots/LOT-A/track-out", json={"step": "SAW", "good_qty": 98,
                                           "rejects": [{"reason": "R-BALL", "qty": 2}]})
    op.post("/lots/LOT-A/split", json={"quantities": [90, 8]})
    resp = op.get("/lots/LOT-A/history")
    assert resp.status_code == 200
    items = resp.get_json()["items"]
    assert [(e["kind"], e["by"], e["step"], e["equipment"], e["qty_in"], e["qty_out"])
            for e in items] == [
        ("receive", "planner", "SAW", None, None, 100),
        ("track_in", op.user.username, "SAW", "SAW-1", 100, None),
        ("track_out", op.user.username, "SAW", "SAW-1", 100, 98),
        ("split", op.user.username, "WB", None, 98, 90)]
    times = [e["at"] for e in items]
    assert times == sorted(times) and all(t.endswith("+00:00") for t in times)
    assert items[2]["data"]["rejects"] == [{"reason": "R-BALL", "qty": 2}]
    page = op.get("/lots/LOT-A/history?limit=3").get_json()
    assert [e["kind"] for e in page["items"]] == ["receive", "track_in", "track_out"]
    rest = op.get(f"/lots/LOT-A/history?limit=3&cursor={page['next']}").get_json()
    assert ([e["kind"] for e in rest["items"]], rest["next"]) == (["split"], None)


@pytest.fixture
def wip(session, new_lot) -> None:
    """Lots of two customers in different states, priorities and due dates."""
    new_lot(10, lot_no="A", priority=3, due_date=date(2036, 12, 5))
    new_lot(10, lot_no="B", priority=1, due_date=None)
    new_lot(10, lot_no="C", priority=3, due_date=date(2036, 12, 1))
    new_lot(10, lot_no="D", priority=1, due_date=date(2036, 12, 9))
    hold(session, new_lot(10, lot_no="E", product="P2", customer="IND", priority=2))
    advance(session, new_lot(10, lot_no="G", priority=4))
    track_in(session, new_lot(10, lot_no="F", product="P2", customer="IND", priority=5))


def _numbers(caller, query: str = "") -> list[str]:
    resp = caller.get(f"/lots{query}")
    assert resp.status_code == 200, resp.get_json()
    return [lot["lot_no"] for lot in resp.get_json()["items"]]


@pytest.mark.usefixtures("wip")
@pytest.mark.parametrize(("query", "expected"), [
    ("", ["D", "B", "E", "C", "A", "G", "F"]),
    ("?state=running", ["F"]),
    ("?state=queued", ["D", "B", "E", "C", "A", "G"]),
    ("?step=WB", ["G"]),
    ("?product=P2", ["E", "F"]),
    ("?customer=IND", ["E", "F"]),
    ("?customer=OEM&step=SAW", ["D", "B", "C", "A"]),
    ("?on_hold=true", ["E"]),
    ("?on_hold=false&customer=IND", ["F"]),
    ("?product=NOPE", []),
])
def test_list_lots_filters_and_sorts_by_priority_then_due_date(op, query, expected):
    assert _numbers(op, query) == expected


@pytest.mark.usefixtures("wip")
def test_list_lots_pages_with_a_cursor(op):
    first = op.get("/lots?limit=4").get_json()
    assert [lot["lot_no"] for lot in first["items"]] == ["D", "B", "E", "C"]
    rest = op.get(f"/lots?limit=4&cursor={first['next']}").get_json()
    assert ([lot["lot_no"] for lot in rest["items"]], rest["next"]) == (["A", "G", "F"], None)
    error = op.get("/lots?cursor=%%%").get_json()["error"]
    assert (error["code"], list(error["fields"])) == ("invalid", ["cursor"])


@pytest.mark.usefixtures("wip")
def test_list_lots_refuses_an_unknown_state(op):
    resp = op.get("/lots?state=lost")
    assert resp.status_code == 422 and "state" in resp.get_json()["error"]["fields"]


@pytest.mark.usefixtures("wip")
def test_customer_sees_only_its_own_lots(api):
    customer = api("customer", customer="IND")
    assert _numbers(customer) == ["E", "F"]
    assert _numbers(customer, "?customer=OEM") == []
    assert customer.get("/lots/E").status_code == 200
    assert customer.get("/lots/E/history").status_code == 200
    for path in ("/lots/A", "/lots/A/history", "/lots/NOPE"):
        resp = customer.get(path)
        assert (resp.status_code, resp.get_json()["error"]["code"]) == (404, "not_found")


@pytest.mark.usefixtures("wip")
def test_customer_cannot_move_lots(api, session):
    customer = api("customer", customer="IND")
    for path, body in [("/lots/E/split", {"quantities": [5, 5]}),
                       ("/lots/merge", {"lots": ["E", "F"]}),
                       ("/lots/F/track-out", {"step": "SAW", "good_qty": 10}),
                       ("/lots", RECEIPT)]:
        refused(session, lambda p=path, b=body: customer.post(p, json=b), 403, "forbidden")


# --- equipment -------------------------------------------------------------------------

def test_equipment_state_change_is_recorded_and_stops_track_in(op, session, new_lot):
    new_lot(10, lot_no="LOT-A")
    resp = op.patch("/equipment/SAW-1", json={"state": "engineering", "comment": "blade",
                                              "reason": "D-ALARM"})
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["state"] == "engineering"
    tool_id = session.scalar(select(Equipment.id).where(Equipment.code == "SAW-1"))
    changes = session.execute(
        select(EquipmentStateChange.from_state, EquipmentStateChange.to_state,
               EquipmentStateChange.by, EquipmentStateChange.comment)
        .where(EquipmentStateChange.equipment_id == tool_id)
        .order_by(EquipmentStateChange.id)).all()
    assert [tuple(c) for c in changes] == [(None, "productive", "test", ""),
                                           ("productive", "engineering", op.user.username,
                                            "blade")]
    assert audit_codes(session, "equipment", "SAW-1")[-1] == "equipment:state"
    refused(session, lambda: op.post("/lots/LOT-A/track-in", json={
        "step": "SAW", "equipment": "SAW-1"}), 409, "equipment_unavailable", "equipment")
