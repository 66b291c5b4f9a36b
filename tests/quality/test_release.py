"""Releasing holds with a disposition, the two-person rule, and what each disposition does
to the lot. Every refusal changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from mes.audit.models import AuditEvent
from mes.errors import Conflict, InvalidInput
from mes.floor import services as floor
from mes.floor.models import Lot
from mes.quality import services
from mes.quality.models import Hold
from tests.floor.helpers import advance, track_in
from tests.helpers import audit_codes, refused
from tests.quality.helpers import ADMIN, QA, QA2, Person


@pytest.fixture
def held(session, receive):
    """A lot of 100 queued at FT (third step) with one open hold placed by qa1."""
    def make(quantity: int = 100, steps: int = 2) -> tuple[Lot, Hold]:
        lot = advance(session, receive(quantity), steps)
        hold = services.hold_lot(session, QA, lot, reason="H-ENG", comment="Look at it")
        session.commit()
        return lot, hold
    return make


def release(session, hold: Hold, actor: Any = QA2, **data: Any) -> Hold:
    services.release_hold(session, actor, hold, {"disposition": "release",
                                                 "comment": "Reviewed", **data})
    session.commit()
    return hold


def events(session, lot: Lot) -> list[tuple[str, str, int | None, int | None]]:
    return [(e.kind, e.step_code, e.qty_in, e.qty_out) for e in floor.history(session, lot)]


def test_release_frees_the_lot_with_history_and_audit(session, held):
    lot, hold = held()
    version = lot.version
    release(session, hold)
    assert (hold.status, hold.disposition, hold.released_by, hold.release_comment) == (
        "released", "release", "qa2", "Reviewed")
    assert hold.released_at is not None and hold.override_reason is None
    assert (lot.open_holds, lot.on_hold, lot.version, lot.state) == (0, False, version + 1,
                                                                     "queued")
    last = floor.history(session, lot)[-1]
    assert (last.kind, last.by) == ("release", "qa2")
    assert last.data == {"hold": hold.id, "disposition": "release", "comment": "Reviewed"}
    assert audit_codes(session, "hold", str(hold.id)) == ["hold:place", "hold:release"]
    assert audit_codes(session, "lot", lot.lot_no)[-2:] == ["lot:hold", "lot:release"]


def test_released_lot_can_be_tracked_in_again(session, held):
    lot, hold = held()
    release(session, hold)
    track_in(session, lot)
    assert lot.state == "running"


def test_the_person_who_placed_a_hold_may_not_release_it(session, held):
    _lot, hold = held()
    err = refused(session, lambda: services.release_hold(
        session, QA, hold, {"disposition": "release", "comment": "Mine"}),
                  Conflict, "two_person_rule")
    assert "admin" in err.message


def test_an_admin_may_override_the_two_person_rule_with_a_recorded_reason(session, receive):
    lot = receive(100)
    hold = services.hold_lot(session, ADMIN, lot, reason="H-ENG", comment="Admin's own")
    session.commit()
    release(session, hold, actor=ADMIN, override_reason="Night shift, no second QA on site")
    assert (hold.status, hold.override_reason) == ("released",
                                                   "Night shift, no second QA on site")
    record = session.scalar(select(AuditEvent).where(
        AuditEvent.subject_type == "hold", AuditEvent.subject_key == str(hold.id),
        AuditEvent.code == "hold:release"))
    assert record.data["override_reason"] == "Night shift, no second QA on site"
    assert record.actor == "admin1"


@pytest.mark.parametrize(("actor", "override"), [
    (ADMIN, None), (ADMIN, "   "), (Person("qa9", "qa"), "I am sure")])
def test_override_needs_an_admin_and_a_reason(session, receive, actor, override):
    lot = receive(100)
    hold = services.hold_lot(session, actor, lot, reason="H-ENG", comment="x")
    session.commit()
    refused(session, lambda: services.release_hold(
        session, actor, hold, {"disposition": "release", "comment": "x",
                               "override_reason": override}), Conflict, "two_person_rule")


def test_an_override_reason_is_not_recorded_when_no_override_is_needed(session, held):
    _lot, hold = held()
    release(session, hold, actor=ADMIN, override_reason="Not needed")
    assert hold.override_reason is None


def test_release_of_a_hold_that_is_not_open_is_refused(session, held):
    _lot, hold = held()
    release(session, hold)
    refused(session, lambda: services.release_hold(
        session, ADMIN, hold, {"disposition": "release", "comment": "again"}), Conflict, "not_open")


@pytest.mark.parametrize(("data", "field"), [
    ({"comment": ""}, "comment"),
    ({"comment": "  "}, "comment"),
    ({"disposition": "forgive"}, "disposition"),
    ({"disposition": "use_as_is"}, "concession"),
    ({"disposition": "use_as_is", "concession": " "}, "concession"),
    ({"disposition": "rework"}, "rework_step"),
    ({"disposition": "scrap", "scrap_reason": "S-DMG"}, "scrap_qty"),
    ({"disposition": "scrap", "scrap_qty": 5}, "scrap_reason"),
    ({"disposition": "release", "scrap_qty": 5}, "scrap_qty"),
    ({"disposition": "use_as_is", "concession": "C-1", "rework_step": "SAW"}, "rework_step"),
])
def test_release_refused_without_what_the_disposition_needs(session, held, data, field):
    _lot, hold = held()
    err = refused(session, lambda: services.release_hold(
        session, QA2, hold, {"disposition": "release", "comment": "ok", **data}),
                  InvalidInput, "invalid")
    assert field in err.fields


def test_use_as_is_records_the_customer_concession(session, held):
    lot, hold = held()
    release(session, hold, disposition="use_as_is", concession="OEM-DEV-2026-031")
    assert (hold.disposition, hold.concession, lot.on_hold) == ("use_as_is",
                                                                "OEM-DEV-2026-031", False)
    assert floor.history(session, lot)[-1].data["concession"] == "OEM-DEV-2026-031"


def test_release_of_one_of_two_holds_leaves_the_lot_on_hold(session, held):
    lot, first = held()
    services.hold_lot(session, QA2, lot, reason="H-ENG", comment="Second look")
    session.commit()
    release(session, first)
    assert (lot.open_holds, lot.on_hold) == (1, True)


# --- rework ----------------------------------------------------------------------------

def test_rework_sends_the_lot_back_to_an_earlier_step_queued(session, held):
    lot, hold = held()
    release(session, hold, disposition="rework", rework_step="SAW")
    assert (lot.state, lot.step_seq, lot.step_code, lot.on_hold) == ("queued", 1, "SAW", False)
    assert hold.rework_step == "SAW"
    rework, released = floor.history(session, lot)[-2:]
    assert (rework.kind, rework.step_code, rework.data) == (
        "rework", "SAW", {"hold": hold.id, "from_step": "FT"})
    assert (released.kind, released.data["rework_step"]) == ("release", "SAW")
    track_in(session, lot)
    assert lot.state == "running"


@pytest.mark.parametrize(("step", "message"), [
    ("FT", "not before"), ("PACK", "not before"), ("NOPE", "not a step of route QFN")])
def test_rework_refused_to_a_step_not_before_the_current_one(session, held, step, message):
    _lot, hold = held()
    err = refused(session, lambda: services.release_hold(
        session, QA2, hold, {"disposition": "rework", "comment": "x", "rework_step": step}),
                  InvalidInput, "invalid")
    assert message in err.fields["rework_step"][0]


def test_rework_refused_for_a_running_lot(session, receive):
    lot = advance(session, receive(100))
    track_in(session, lot)
    hold = services.hold_lot(session, QA, lot, reason="H-ENG", comment="x")
    session.commit()
    refused(session, lambda: services.release_hold(
        session, QA2, hold, {"disposition": "rework", "comment": "x", "rework_step": "SAW"}),
            Conflict, "already_running")


def test_a_completed_lot_may_be_reworked_back_to_its_last_step(session, held):
    lot, hold = held(steps=4)
    assert lot.state == "completed"
    release(session, hold, disposition="rework", rework_step="PACK")
    assert (lot.state, lot.step_code) == ("queued", "PACK")


def test_rework_refused_for_a_lot_that_left_the_plant(session, held):
    lot, hold = held()
    lot.state = "shipped"  # shipping is not needed to reach the state for this rule
    session.commit()
    refused(session, lambda: services.release_hold(
        session, QA2, hold, {"disposition": "rework", "comment": "x", "rework_step": "SAW"}),
            Conflict, "lot_closed")


# --- scrap -----------------------------------------------------------------------------

def test_partial_scrap_reduces_the_quantity_with_a_history_event(session, held):
    lot, hold = held(quantity=100)
    release(session, hold, disposition="scrap", scrap_qty=30, scrap_reason="S-DMG")
    assert (lot.quantity, lot.state, lot.on_hold) == (70, "queued", False)
    assert (hold.scrap_qty, hold.scrap_reason.code) == (30, "S-DMG")
    scrap, released = floor.history(session, lot)[-2:]
    assert (scrap.kind, scrap.qty_in, scrap.qty_out, scrap.data) == (
        "scrap", 100, 70, {"hold": hold.id, "reason": "S-DMG", "qty": 30})
    assert (released.data["scrap_qty"], released.data["scrap_reason"]) == (30, "S-DMG")
    # Units are conserved: what went out of each event is what the next one takes in.
    moves = [(e.qty_in, e.qty_out) for e in floor.history(session, lot)
             if e.qty_out is not None and e.qty_in is not None]
    assert moves[-1] == (100, 70) and lot.quantity == moves[-1][1]


def test_scrapping_the_whole_quantity_ends_the_lot_as_scrapped(session, held):
    lot, hold = held(quantity=40)
    release(session, hold, disposition="scrap", scrap_qty=40, scrap_reason="S-DMG")
    assert (lot.quantity, lot.state, lot.open_holds) == (0, "scrapped", 0)
    assert events(session, lot)[-2] == ("scrap", "FT", 40, 0)


@pytest.mark.parametrize(("qty", "reason", "field"), [
    (101, "S-DMG", "scrap_qty"), (0, "S-DMG", "scrap_qty"), (5, "H-ENG", "scrap_reason"),
    (5, "R-SCRATCH", "scrap_reason"), (5, "NOPE", "scrap_reason")])
def test_scrap_refused_out_of_range_or_without_a_scrap_reason(session, held, qty, reason,
                                                              field):
    _lot, hold = held(quantity=100)
    err = refused(session, lambda: services.release_hold(
        session, QA2, hold, {"disposition": "scrap", "comment": "x", "scrap_qty": qty,
                             "scrap_reason": reason}), InvalidInput, "invalid")
    assert field in err.fields


def test_scrap_refused_for_a_running_lot(session, receive):
    lot = track_in(session, receive(100))
    hold = services.hold_lot(session, QA, lot, reason="H-ENG", comment="x")
    session.commit()
    refused(session, lambda: services.release_hold(
        session, QA2, hold, {"disposition": "scrap", "comment": "x", "scrap_qty": 1,
                             "scrap_reason": "S-DMG"}), Conflict, "already_running")


def test_a_hold_on_a_lot_scrapped_by_another_release_can_still_be_released(session, held):
    lot, first = held(quantity=10)
    second = services.hold_lot(session, QA2, lot, reason="H-ENG", comment="Second")
    session.commit()
    release(session, first, disposition="scrap", scrap_qty=10, scrap_reason="S-DMG")
    assert (lot.state, lot.open_holds) == ("scrapped", 1)
    refused(session, lambda: services.release_hold(
        session, QA, second, {"disposition": "rework", "comment": "x", "rework_step": "SAW"}),
            Conflict, "lot_closed")
    release(session, second, actor=QA)
    assert lot.open_holds == 0


def test_every_hold_and_release_is_audited_on_the_hold_and_the_lot(session, held):
    lot, hold = held()
    release(session, hold, disposition="scrap", scrap_qty=1, scrap_reason="S-DMG")
    lot_codes = audit_codes(session, "lot", lot.lot_no)
    assert lot_codes[-3:] == ["lot:hold", "lot:scrap", "lot:release"]
    assert session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.subject_type == "hold")) == 2


# --- bulk release ----------------------------------------------------------------------

def test_bulk_release_releases_every_hold_as_one_release_would(session, held):
    (lot_a, hold_a), (lot_b, hold_b) = held(), held()
    released = services.release_holds(session, QA2, [hold_a.id, hold_b.id, hold_a.id],
                                      {"disposition": "use_as_is", "comment": "Reviewed",
                                       "concession": "OEM-77"})
    session.commit()
    assert [hold.id for hold in released] == [hold_a.id, hold_b.id]
    for lot, hold in ((lot_a, hold_a), (lot_b, hold_b)):
        row = session.execute(select(Hold.status, Hold.disposition, Hold.released_by,
                                     Hold.concession).where(Hold.id == hold.id)).one()
        assert tuple(row) == ("released", "use_as_is", "qa2", "OEM-77")
        assert session.scalar(select(Lot.open_holds).where(Lot.id == lot.id)) == 0
        assert audit_codes(session, "hold", str(hold.id)) == ["hold:place", "hold:release"]


def test_bulk_release_refusing_one_hold_refuses_all(session, held):
    (_lot_a, hold_a), (lot_b, _hold_b) = held(), held()
    own = services.hold_lot(session, QA2, lot_b, reason="H-ENG", comment="My own")
    session.commit()
    # hold_a would be released (placed by qa1); qa2's own hold is refused, after it.
    error = refused(session, lambda: services.release_holds(
        session, QA2, [hold_a.id, own.id], {"disposition": "release", "comment": "ok"}),
                    Conflict, "two_person_rule")
    [line] = error.fields["holds"]
    assert line.startswith(f"Hold {own.id}: ") and "may not release" in line
    assert session.scalars(select(Hold.status).where(Hold.id.in_([hold_a.id, own.id]))
                           ).all() == ["open", "open"]
    refused(session, lambda: services.release_holds(
        session, QA2, [hold_a.id, 987654], {"disposition": "release", "comment": "ok"}),
            InvalidInput, "invalid")
    refused(session, lambda: services.release_holds(
        session, QA2, [], {"disposition": "release", "comment": "ok"}), InvalidInput, "invalid")
