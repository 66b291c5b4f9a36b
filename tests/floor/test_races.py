"""Simultaneous moves of the same lot or onto the same tool, with real concurrent connections.

These tests commit for real, so each one builds its own database (a new SQLite file, or a new
PostgreSQL database when MES_TEST_DATABASE_URL is set) and its own application, and fires its
requests from threads that a barrier starts together. A lost race must be a 4xx with a reason,
never a 500 and never a double move.
"""

from __future__ import annotations

import re
import sqlite3

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm.exc import StaleDataError

from mes.audit.models import AuditEvent
from mes.auth import services as auth
from mes.catalog.models import Equipment, EquipmentStateChange
from mes.db import session_scope, utcnow
from mes.errors import translate_db_error
from mes.floor import services
from mes.floor.models import Lot, LotEdge, LotEvent, StepRun
from tests.floor.helpers import floor_state
from tests.floor.races import (
    LOST_RACE,
    N,
    audit_chains_intact,
    codes,
    events,
    fire,
    read,
    receive,
)


def test_simultaneous_track_outs_of_one_lot_move_it_once(race_app, race_plant):
    receive(race_app, "LOT-A", track_in_on="SAW-1")
    answers = fire(race_app, race_plant["headers"], [
        ("/lots/LOT-A/track-out", {"step": "SAW", "good_qty": 100 - i,
                                   "rejects": [{"reason": "R-CHIP", "qty": i}]})
        for i in range(N)])
    wins = [body for status, body in answers if status == 200]
    assert len(wins) == 1
    assert all(status == 409 and code in LOST_RACE | {"not_running"}
               for status, code in codes(answers)), answers

    def check(session) -> None:
        lot = session.scalar(select(Lot).where(Lot.lot_no == "LOT-A"))
        assert (lot.state, lot.step_code, lot.quantity) == ("queued", "FT", wins[0]["quantity"])
        runs = session.scalars(select(StepRun).where(StepRun.lot_id == lot.id)).all()
        assert [(r.finished_at is not None, r.good_qty) for r in runs] == \
            [(True, lot.quantity)]
        assert events(session, "LOT-A", "track_out") == 1
        assert session.scalar(select(Equipment.lots_running)
                              .where(Equipment.code == "SAW-1")) == 0
        assert audit_chains_intact(session)
    read(race_app, check)


def test_simultaneous_splits_of_one_lot_split_it_once(race_app, race_plant):
    receive(race_app, "LOT-A")
    answers = fire(race_app, race_plant["headers"], [
        ("/lots/LOT-A/split", {"quantities": [100 - 10 * (i + 1), 10 * (i + 1)]})
        for i in range(N)])
    assert sum(status == 201 for status, _ in answers) == 1
    # A split that ran after the winner finds fewer units than it names (422); one that
    # raced it loses on the lot's version counter or the child's number (409).
    assert all((status, code) == (422, "quantity_mismatch") or
               (status == 409 and code in LOST_RACE) for status, code in codes(answers)), \
        answers

    def check(session) -> None:
        lots = session.scalars(select(Lot).order_by(Lot.id)).all()
        assert [lot.lot_no for lot in lots] == ["LOT-A", "LOT-A.01"]
        assert sum(lot.quantity for lot in lots) == 100
        edges = session.scalars(select(LotEdge)).all()
        assert [(e.kind, e.qty) for e in edges] == [("split", lots[1].quantity)]
        assert events(session, "LOT-A", "split") == 1
        assert audit_chains_intact(session)
    read(race_app, check)


def test_simultaneous_split_and_merge_of_one_lot_conserve_units(race_app, race_plant):
    receive(race_app, "LOT-A", 100)
    receive(race_app, "LOT-B", 50)
    answers = fire(race_app, race_plant["headers"], [
        ("/lots/LOT-A/split", {"quantities": [60, 40]}),
        ("/lots/merge", {"lots": ["LOT-B", "LOT-A"]}),
    ] * (N // 2))
    assert all(status in (201, 409, 422) for status, _ in answers), answers

    def check(session) -> None:
        lots = {lot.lot_no: lot for lot in session.scalars(select(Lot))}
        assert sum(lot.quantity for lot in lots.values()) == 150
        for lot in lots.values():
            assert (lot.state == "merged") == (lot.quantity == 0), lot.lot_no
        # Every unit a lot gained or lost is an edge: received + in - out = what it holds.
        received = {"LOT-A": 100, "LOT-B": 50}
        for lot in lots.values():
            gained = session.scalar(select(func.coalesce(func.sum(LotEdge.qty), 0))
                                    .where(LotEdge.child_id == lot.id))
            lost = session.scalar(select(func.coalesce(func.sum(LotEdge.qty), 0))
                                  .where(LotEdge.parent_id == lot.id))
            assert received.get(lot.lot_no, 0) + gained - lost == lot.quantity, lot.lot_no
        assert audit_chains_intact(session)
    read(race_app, check)


def test_simultaneous_track_ins_onto_one_free_tool_start_one_lot(race_app, race_plant):
    for i in range(N):
        receive(race_app, f"LOT-{i}")
    answers = fire(race_app, race_plant["headers"], [
        (f"/lots/LOT-{i}/track-in", {"step": "SAW", "equipment": "SAW-1"}) for i in range(N)])
    assert sum(status == 200 for status, _ in answers) == 1
    assert all(status == 409 and code in LOST_RACE | {"equipment_busy"}
               for status, code in codes(answers)), answers

    def check(session) -> None:
        assert session.scalar(select(func.count()).select_from(Lot)
                              .where(Lot.state == "running")) == 1
        assert session.scalar(select(func.count()).select_from(StepRun)) == 1
        assert session.scalar(select(func.count()).select_from(LotEvent)
                              .where(LotEvent.kind == "track_in")) == 1
        assert session.scalar(select(Equipment.lots_running)
                              .where(Equipment.code == "SAW-1")) == 1
        assert audit_chains_intact(session)
    read(race_app, check)


def test_simultaneous_track_in_and_split_never_track_in_units_the_lot_lost(race_app, race_plant):
    receive(race_app, "LOT-A", 100)
    answers = fire(race_app, race_plant["headers"], [
        ("/lots/LOT-A/track-in", {"step": "SAW", "equipment": "SAW-1"}),
        ("/lots/LOT-A/split", {"quantities": [70, 30]}),
    ] * (N // 2))
    assert all(status in (200, 201, 409, 422) for status, _ in answers), answers

    def check(session) -> None:
        lots = {lot.lot_no: lot for lot in session.scalars(select(Lot))}
        assert sum(lot.quantity for lot in lots.values()) == 100
        runs = session.scalars(select(StepRun)).all()
        assert len(runs) <= 1
        for run in runs:
            assert run.qty_in == session.get(Lot, run.lot_id).quantity
        assert len(lots) <= 2
        assert audit_chains_intact(session)
    read(race_app, check)


def test_simultaneous_receipts_never_share_a_lot_number(race_app, race_plant):
    answers = fire(race_app, race_plant["headers"] | _planner_headers(race_app), [
        ("/lots", {"product": "P1", "customer": "OEM", "quantity": 10, "fab_lot": f"F{i}"})
        for i in range(N)])
    numbers = [body["lot_no"] for status, body in answers if status == 201]
    assert numbers and len(set(numbers)) == len(numbers)
    assert all(re.fullmatch(r"L\d{6}-\d{4}", no) for no in numbers), numbers
    # Receipts that picked a number taken at the same moment are refused; the client retries.
    assert all(status == 409 and code in {"conflict", "duplicate"}
               for status, code in codes(answers)), answers
    assert read(race_app, lambda s: s.scalar(select(func.count()).select_from(Lot))) == \
        len(numbers)


def _planner_headers(app: Flask) -> dict[str, str]:
    with app.app_context(), session_scope(app) as session:
        user = auth.create_user(session, "test", username="planner", role="planner",
                                password="Secret-pass-123")
        token = auth.create_token(session, "test", user)
    return {"Authorization": f"Bearer {token}"}


# --- how a lost race reaches the client ------------------------------------------------

def test_a_move_that_loses_at_the_database_answers_409_and_changes_nothing(
        api, receive, session, monkeypatch):
    receive(100, lot_no="LOT-A")
    op = api("operator")
    split = services.split_lot

    def split_while_another_writer_commits(session, actor, lot, quantities, wafers=None):
        children = split(session, actor, lot, quantities, wafers)
        # The audit record a simultaneous move of the lot committed first, with the same
        # place in the lot's chain as this move's own record.
        session.add(AuditEvent(at=utcnow(), actor="other", code="lot:split",
                               subject_type="lot", subject_key=lot.lot_no,
                               seq=lot.audit_seq, data={}, prev_hash="0" * 64,
                               hash="0" * 64))
        return children

    monkeypatch.setattr(services, "split_lot", split_while_another_writer_commits)
    before = floor_state(session)
    resp = op.post("/lots/LOT-A/split", json={"quantities": [60, 40]})
    assert (resp.status_code, resp.get_json()["error"]["code"]) == (409, "stale")
    assert floor_state(session) == before


@pytest.mark.parametrize(("error", "code"), [
    (StaleDataError("UPDATE statement on table 'lot' expected to update 1 row(s); 0 were "
                    "matched."), "stale"),
    (OperationalError("UPDATE lot", {}, sqlite3.OperationalError("database is locked")),
     "stale"),
    (OperationalError("UPDATE lot", {}, Exception("deadlock detected")), "stale"),
    (OperationalError("UPDATE lot", {}, Exception("could not serialize access due to "
                                                  "concurrent update")), "stale"),
    (IntegrityError("INSERT INTO lot", {}, Exception("duplicate key value")), "conflict"),
])
def test_lost_races_are_409_with_a_reason(app, error, code):
    with app.test_request_context("/api/v1/lots", method="POST"):
        mapped = translate_db_error(error)
    assert (mapped.status, mapped.code) == (409, code)
    assert mapped.message


def test_simultaneous_aborts_of_one_track_in_undo_it_once(race_app, race_plant):
    receive(race_app, "LOT-A", track_in_on="SAW-1")
    answers = fire(race_app, race_plant["headers"], [
        ("/lots/LOT-A/track-in/abort", {"reason": "wrong_lot"}) for _ in range(N)])
    assert sum(status == 200 for status, _ in answers) == 1
    assert all(status == 409 and code in LOST_RACE | {"not_running"}
               for status, code in codes(answers)), answers

    def check(session) -> None:
        lot = session.scalar(select(Lot).where(Lot.lot_no == "LOT-A"))
        assert (lot.state, lot.step_code, lot.run_id, lot.equipment_id) == \
            ("queued", "SAW", None, None)
        assert session.scalar(select(func.count()).select_from(StepRun)) == 0
        assert events(session, "LOT-A", "track_in_abort") == 1
        tool = session.scalar(select(Equipment).where(Equipment.code == "SAW-1"))
        assert (tool.state, tool.lots_running) == ("standby", 0)
        assert [c.to_state for c in session.scalars(
            select(EquipmentStateChange).where(EquipmentStateChange.equipment_id == tool.id)
            .order_by(EquipmentStateChange.id))] == ["standby", "productive", "standby"]
        assert audit_chains_intact(session)
    read(race_app, check)


def test_an_abort_racing_a_track_out_one_wins(race_app, race_plant):
    receive(race_app, "LOT-A", track_in_on="SAW-1")
    calls = [("/lots/LOT-A/track-in/abort", {"reason": "wrong_equipment"}),
             ("/lots/LOT-A/track-out", {"step": "SAW", "good_qty": 100})] * (N // 2)
    answers = fire(race_app, race_plant["headers"], calls)
    wins = [(path, body) for (path, _), (status, body) in zip(calls, answers, strict=True)
            if status == 200]
    assert len(wins) == 1, answers
    assert all(status == 409 and code in LOST_RACE | {"not_running", "wrong_step"}
               for status, code in codes(answers)), answers
    aborted = wins[0][0].endswith("/abort")

    def check(session) -> None:
        lot = session.scalar(select(Lot).where(Lot.lot_no == "LOT-A"))
        assert (lot.state, lot.step_code) == ("queued", "SAW" if aborted else "FT")
        runs = session.scalars(select(StepRun)).all()
        assert len(runs) == (0 if aborted else 1)
        assert events(session, "LOT-A", "track_in_abort") == (1 if aborted else 0)
        assert events(session, "LOT-A", "track_out") == (0 if aborted else 1)
        tool = session.scalar(select(Equipment).where(Equipment.code == "SAW-1"))
        assert (tool.state, tool.lots_running) == ("standby", 0)
        assert audit_chains_intact(session)
    read(race_app, check)


@pytest.mark.parametrize("batch", [False, True], ids=["single", "batch"])
def test_simultaneous_track_ins_for_the_last_batch_place_start_one_lot(race_app, race_plant,
                                                                        batch):
    with race_app.app_context(), session_scope(race_app) as session:
        saw = session.scalar(select(Equipment).where(Equipment.code == "SAW-1"))
        saw.capacity = 3
    receive(race_app, "LOT-R1", track_in_on="SAW-1")
    receive(race_app, "LOT-R2", track_in_on="SAW-1")
    for i in range(N):
        receive(race_app, f"LOT-{i}")
    answers = fire(race_app, race_plant["headers"], [
        ("/equipment/SAW-1/batches", {"step": "SAW", "lots": [f"LOT-{i}"]}) if batch else
        (f"/lots/LOT-{i}/track-in", {"step": "SAW", "equipment": "SAW-1"}) for i in range(N)])
    assert sum(status == 200 for status, _ in answers) == 1
    assert all(status == 409 and code in LOST_RACE | {"capacity_exceeded"}
               for status, code in codes(answers)), answers

    def check(session) -> None:
        assert session.scalar(select(func.count()).select_from(Lot)
                              .where(Lot.state == "running")) == 3
        assert session.scalar(select(func.count()).select_from(StepRun)) == 3
        assert session.scalar(select(func.count()).select_from(LotEvent)
                              .where(LotEvent.kind == "track_in")) == 3
        assert session.scalar(select(Equipment.lots_running)
                              .where(Equipment.code == "SAW-1")) == 3
        assert audit_chains_intact(session)
    read(race_app, check)


def test_simultaneous_batches_sharing_lots_never_deadlock_or_run_a_lot_twice(race_app,
                                                                             race_plant):
    with race_app.app_context(), session_scope(race_app) as session:
        saw = session.scalar(select(Equipment).where(Equipment.code == "SAW-1"))
        saw.capacity = 2 * N
    for i in range(N):
        receive(race_app, f"LOT-{i}")
    # Each batch names two lots, the next batch's first among them, in changing order.
    answers = fire(race_app, race_plant["headers"], [
        ("/equipment/SAW-1/batches", {"step": "SAW", "lots": [
            f"LOT-{(i + 1) % N}", f"LOT-{i}"] if i % 2 else [f"LOT-{i}", f"LOT-{(i + 1) % N}"]})
        for i in range(N)])
    assert all(status in (200, 409) for status, _ in answers), answers
    assert all(code in LOST_RACE | {"already_running"} for _status, code in codes(answers)), \
        answers
    won = sum(status == 200 for status, _ in answers)

    def check(session) -> None:
        running = session.scalar(select(func.count()).select_from(Lot)
                                 .where(Lot.state == "running"))
        assert running == 2 * won
        assert session.scalar(select(func.count()).select_from(StepRun)) == running
        assert session.scalar(select(Equipment.lots_running)
                              .where(Equipment.code == "SAW-1")) == running
        assert audit_chains_intact(session)
    read(race_app, check)
