"""Closing a test insertion raced with real concurrent connections (the floor's race
harness): of simultaneous closes one wins and the others answer 409; a track-out racing a
close either follows the closed insertion or is refused, never a 500 or a second verdict."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from mes.audit.models import AuditEvent
from mes.db import session_scope
from mes.floor import services as floor
from mes.testfloor import services as testfloor
from mes.testfloor.models import TestInsertion
from tests.floor import races

LOST = races.LOST_RACE | {"insertion_closed", "insertion_open"}


@pytest.fixture
def tested_lot(race_app, race_plant) -> dict[str, Any]:
    """Lot LOT-1 (100 units) running at FT with an open insertion: 90 good, 10 in bin 8."""
    races.receive(race_app, "LOT-1")
    with race_app.app_context(), session_scope(race_app) as session:
        lot = floor.get_lot(session, "LOT-1")
        lot.step_seq, lot.step_code = 2, "FT"
        session.flush()
        floor.track_in(session, "op", lot, step="FT", equipment="SAW-1")
        testfloor.record_bins(session, "op", lot, bins=[
            {"bin": 1, "count": 90, "passed": True}, {"bin": 8, "count": 10, "passed": False}])
    return race_plant


def test_simultaneous_closes_one_wins(race_app, tested_lot):
    answers = races.fire(race_app, tested_lot["headers"], [
        ("/lots/LOT-1/insertions/FT/close", {}) for _ in range(races.N)])
    won = [body for status, body in answers if status == 200]
    assert len(won) == 1, answers
    assert all(status == 409 and body["error"]["code"] in LOST
               for status, body in answers if status != 200), answers

    def check(session) -> None:
        (insertion,) = session.scalars(select(TestInsertion))
        assert insertion.state == "closed" and insertion.proposal["good_qty"] == 90
        assert session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.code == "test_insertion:close")) == 1
        assert races.audit_chains_intact(session)

    races.read(race_app, check)


def test_a_track_out_racing_a_close_follows_it_or_is_refused(race_app, tested_lot):
    track_out = ("/lots/LOT-1/track-out", {"step": "FT", "good_qty": 90,
                                           "rejects": [{"reason": "TEST-FAIL", "qty": 10}]})
    # TEST-FAIL is created by the first close; create it before the race.
    with race_app.app_context(), session_scope(race_app) as session:
        from mes.testfloor import insertions
        insertions.fallback_reject(session)
    answers = races.fire(race_app, tested_lot["headers"], [
        ("/lots/LOT-1/insertions/FT/close", {}), track_out, track_out])
    assert answers[0][0] == 200, answers
    outs = [a for a in answers[1:] if a[0] == 200]
    assert len(outs) <= 1, answers
    assert all(status in (409, 422) and body["error"]["code"] in LOST | {"not_running",
                                                                         "wrong_step"}
               for status, body in answers[1:] if status != 200), answers

    def check(session) -> None:
        (insertion,) = session.scalars(select(TestInsertion))
        lot = floor.get_lot(session, "LOT-1")
        assert insertion.state == "closed"
        if outs:
            assert insertion.tracked_out_at is not None and lot.quantity == 90
        else:
            assert insertion.tracked_out_at is None and lot.state == "running"
        assert races.audit_chains_intact(session)

    races.read(race_app, check)
