"""Holds and releases racing moves of the same lot, with real concurrent connections (the
floor's race harness: a database of its own, requests fired together from threads).

The fixtures `race_app` and `race_plant` are the race databases of tests/fixtures/races.py.
Every hold and release changes the lot row, so the lot's version counter settles each race:
a lost race is a 409 with a reason, never a 500, a held lot started, or a count of open holds
that disagrees with the holds themselves.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from mes.auth import services as auth
from mes.catalog import services as cat
from mes.db import session_scope
from mes.floor.models import Lot, LotEvent
from mes.quality import services as quality
from mes.quality.models import Hold
from tests.floor import races

N = races.N
LOST_RACE = races.LOST_RACE
HOLD = {"reason": "H-ENG", "comment": "Suspect"}
TRACK_IN = {"step": "SAW", "equipment": "SAW-1"}


@pytest.fixture
def qa_plant(race_app, race_plant) -> dict[str, Any]:
    """The race plant with a hold code and an admin (who may hold, release and track)."""
    with race_app.app_context(), session_scope(race_app) as session:
        cat.create_reason_code(session, "test", {"code": "H-ENG", "kind": "hold",
                                                 "description": "Engineering"})
        admin = auth.create_user(session, "test", username="boss", role="admin",
                                 password="Secret-pass-123")
        token = auth.create_token(session, "test", admin)
    return {"headers": {"Authorization": f"Bearer {token}"}}


def place(app, lot_no: str) -> int:
    """A hold placed by qa1, committed: the admin of the races may release it."""
    with app.app_context(), session_scope(app) as session:
        lot = session.scalar(select(Lot).where(Lot.lot_no == lot_no))
        hold = quality.hold_lot(session, "qa1", lot, **HOLD)
        session.flush()
        return hold.id


def event_ids(session, lot_no: str, kind: str) -> list[int]:
    return list(session.scalars(select(LotEvent.id).join(Lot, Lot.id == LotEvent.lot_id)
                                .where(Lot.lot_no == lot_no, LotEvent.kind == kind)))


def open_holds_agree(session) -> bool:
    """Every lot's count of open holds is the number of its open holds."""
    counted = dict(session.execute(select(Lot.id, Lot.open_holds)).all())
    actual = dict(session.execute(select(Hold.lot_id, func.count()).where(
        Hold.status == "open").group_by(Hold.lot_id)).all())
    return all(counted[lot_id] == actual.get(lot_id, 0) for lot_id in counted)


def by_path(answers, calls, fragment: str) -> list[tuple[int, Any]]:
    return [answer for answer, (path, _) in zip(answers, calls, strict=True) if fragment in path]


def test_a_hold_racing_track_ins_never_lets_a_held_lot_start(race_app, qa_plant):
    races.receive(race_app, "LOT-A")
    calls = [("/lots/LOT-A/holds", HOLD), ("/lots/LOT-A/track-in", TRACK_IN)] * (N // 2)
    answers = races.fire(race_app, qa_plant["headers"], calls)
    holds = by_path(answers, calls, "/holds")
    track_ins = by_path(answers, calls, "/track-in")
    assert all(status == 201 or (status == 409 and body["error"]["code"] in LOST_RACE)
               for status, body in holds), holds
    assert all(status == 200 or (status == 409 and body["error"]["code"] in
                                 LOST_RACE | {"lot_on_hold", "already_running",
                                              "equipment_busy"})
               for status, body in track_ins), track_ins
    placed = sum(status == 201 for status, _ in holds)
    started = sum(status == 200 for status, _ in track_ins)

    def check(session) -> None:
        lot = session.scalar(select(Lot).where(Lot.lot_no == "LOT-A"))
        assert lot.open_holds == placed == len(event_ids(session, "LOT-A", "hold"))
        assert session.scalar(select(func.count()).select_from(Hold)) == placed
        track_in_events = event_ids(session, "LOT-A", "track_in")
        assert len(track_in_events) == started <= 1
        # A lot may be held while it runs, but never started while held.
        assert all(track_in < hold for track_in in track_in_events
                   for hold in event_ids(session, "LOT-A", "hold"))
        assert open_holds_agree(session)
        assert races.audit_chains_intact(session)
    races.read(race_app, check)


def test_simultaneous_releases_of_one_hold_release_it_once(race_app, qa_plant):
    races.receive(race_app, "LOT-A")
    hold_id = place(race_app, "LOT-A")
    answers = races.fire(race_app, qa_plant["headers"], [
        (f"/holds/{hold_id}/release", {"disposition": "release", "comment": f"ok {i}"})
        for i in range(N)])
    assert sum(status == 200 for status, _ in answers) == 1
    assert all(status == 409 and code in LOST_RACE | {"not_open"}
               for status, code in races.codes(answers)), answers

    def check(session) -> None:
        lot = session.scalar(select(Lot).where(Lot.lot_no == "LOT-A"))
        assert (lot.open_holds, session.get(Hold, hold_id).status) == (0, "released")
        assert len(event_ids(session, "LOT-A", "release")) == 1
        assert races.audit_chains_intact(session)
    races.read(race_app, check)


def test_a_release_racing_a_track_in_resolves_cleanly(race_app, qa_plant):
    races.receive(race_app, "LOT-A")
    hold_id = place(race_app, "LOT-A")
    calls = [(f"/holds/{hold_id}/release", {"disposition": "release", "comment": "ok"}),
             ("/lots/LOT-A/track-in", TRACK_IN)]
    answers = races.fire(race_app, qa_plant["headers"], calls)
    (release_status, _), (track_in_status, track_in_body) = answers
    assert release_status == 200
    # The track-in either saw the hold (or lost on the lot's version) or came after the
    # release committed.
    assert track_in_status == 200 or (track_in_status == 409 and track_in_body["error"]["code"]
                                      in LOST_RACE | {"lot_on_hold"}), answers

    def check(session) -> None:
        lot = session.scalar(select(Lot).where(Lot.lot_no == "LOT-A"))
        assert lot.open_holds == 0
        assert lot.state == ("running" if track_in_status == 200 else "queued")
        assert all(track_in > release for track_in in event_ids(session, "LOT-A", "track_in")
                   for release in event_ids(session, "LOT-A", "release"))
        assert races.audit_chains_intact(session)
    races.read(race_app, check)


def test_holds_racing_a_release_keep_the_count_of_open_holds_true(race_app, qa_plant):
    races.receive(race_app, "LOT-A")
    hold_id = place(race_app, "LOT-A")
    calls = [(f"/holds/{hold_id}/release", {"disposition": "release", "comment": "ok"})] + \
        [("/lots/LOT-A/holds", HOLD)] * (N - 1)
    answers = races.fire(race_app, qa_plant["headers"], calls)
    assert all(status in (200, 201) or (status == 409 and body["error"]["code"] in LOST_RACE)
               for status, body in answers), answers

    def check(session) -> None:
        assert open_holds_agree(session)
        placed = sum(status == 201 for status, _ in answers)
        released = answers[0][0] == 200
        lot = session.scalar(select(Lot).where(Lot.lot_no == "LOT-A"))
        assert lot.open_holds == placed + (0 if released else 1)
        assert races.audit_chains_intact(session)
    races.read(race_app, check)


def test_a_mass_hold_racing_moves_holds_every_lot_or_none(race_app, qa_plant):
    for i in range(4):
        races.receive(race_app, f"LOT-{i}")
    calls = [("/holds", {**HOLD, "match": {"fab_lot": "FAB1"}}),
             ("/lots/LOT-0/track-in", TRACK_IN),
             ("/lots/LOT-1/split", {"quantities": [60, 40]}),
             ("/lots/LOT-2/split", {"quantities": [50, 50]}),
             ("/lots/merge", {"lots": ["LOT-3", "LOT-2"]})]
    answers = races.fire(race_app, qa_plant["headers"], calls)
    mass_status, mass_body = answers[0]
    assert mass_status == 201 or (mass_status == 409 and mass_body["error"]["code"]
                                  in LOST_RACE), mass_body

    def check(session) -> None:
        lots = session.scalars(select(Lot).where(Lot.fab_lot == "FAB1")).all()
        holds = session.scalar(select(func.count()).select_from(Hold))
        in_plant = [lot for lot in lots if lot.state in ("queued", "running")]
        if mass_status == 201:
            assert sorted(mass_body["lots"]) == sorted(lot.lot_no for lot in in_plant)
            assert all(lot.open_holds == 1 for lot in in_plant)
            assert holds == len(in_plant)
        else:
            assert holds == 0
        assert open_holds_agree(session)
        assert races.audit_chains_intact(session)
    races.read(race_app, check)
