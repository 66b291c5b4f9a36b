"""Holds on one lot and mass holds, called as services: every refusal changes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from mes import audit
from mes.audit.models import AuditEvent
from mes.catalog import services as cat
from mes.db import simulated_time, utcnow
from mes.errors import Conflict, InvalidInput
from mes.floor import services as floor
from mes.floor.models import Lot
from mes.quality import services
from mes.quality.models import Hold
from tests.floor.helpers import advance, track_in, track_out
from tests.helpers import audit_codes, refused
from tests.quality.helpers import QA, QA2, quality_state


def place(session, lot: Lot, reason: str = "H-ENG", comment: str = "Suspect bond lift",
          actor=QA) -> Hold:
    hold = services.hold_lot(session, actor, lot, reason=reason, comment=comment)
    session.commit()
    return hold


def kinds(session, lot: Lot) -> list[str]:
    return [event.kind for event in floor.history(session, lot)]


# --- one lot ---------------------------------------------------------------------------

def test_hold_puts_the_lot_on_hold_with_history_and_audit(session, receive):
    lot = receive(100, lot_no="LOT-A")
    version = lot.version
    hold = place(session, lot)
    assert (lot.open_holds, lot.on_hold, lot.version) == (1, True, version + 1)
    assert (hold.status, hold.source, hold.placed_by, hold.step_code, hold.reason.code,
            hold.comment) == ("open", "manual", "qa1", "SAW", "H-ENG", "Suspect bond lift")
    event = floor.history(session, lot)[-1]
    assert (event.kind, event.by, event.step_code) == ("hold", "qa1", "SAW")
    assert event.data == {"hold": hold.id, "reason": "H-ENG", "source": "manual",
                          "comment": "Suspect bond lift"}
    assert audit_codes(session, "lot", "LOT-A") == ["lot:receive", "lot:hold"]
    assert audit_codes(session, "hold", str(hold.id)) == ["hold:place"]


def test_a_lot_carries_several_holds_and_is_free_only_when_all_are_released(
        session, receive, hold_codes):
    lot = receive(100)
    first, second = place(session, lot), place(session, lot, reason="H-MAT")
    assert lot.open_holds == 2
    services.release_hold(session, QA2, first, {"disposition": "release",
                                                  "comment": "Bond pull fine"})
    session.commit()
    assert (lot.open_holds, lot.on_hold) == (1, True)
    services.release_hold(session, QA2, second, {"disposition": "release",
                                                   "comment": "Material cleared"})
    session.commit()
    assert (lot.open_holds, lot.on_hold) == (0, False)


@pytest.mark.parametrize(("reason", "message"), [
    ("R-SCRATCH", "not a hold reason code"), ("S-DMG", "not a hold reason code"),
    ("NOPE", "not a hold reason code"), ("H-OLD", "retired")])
def test_hold_refused_without_an_active_hold_reason_code(session, receive, hold_codes, reason,
                                                         message):
    lot = receive(100)
    err = refused(session, lambda: services.hold_lot(session, QA, lot, reason=reason, comment="x"),
                  InvalidInput, "invalid")
    assert message in err.fields["reason"][0]


@pytest.mark.parametrize("comment", ["", "   ", None])
def test_hold_refused_without_a_comment(session, receive, comment):
    lot = receive(100)
    err = refused(session, lambda: services.hold_lot(session, QA, lot, reason="H-ENG",
                                            comment=comment), InvalidInput, "invalid")
    assert "comment" in err.fields


@pytest.mark.parametrize("state", ["shipped", "scrapped", "merged"])
def test_hold_refused_for_a_lot_that_left_the_plant(session, receive, state):
    lot = receive(100)
    # No shipping or scrap service is needed to reach these states for this rule.
    lot.state = state
    session.commit()
    refused(session, lambda: services.hold_lot(session, QA, lot, reason="H-ENG", comment="x"),
            Conflict, "lot_closed")


def test_a_completed_lot_still_in_the_plant_can_be_held(session, receive):
    lot = advance(session, receive(100), 4)
    assert lot.state == "completed"
    place(session, lot)
    assert lot.on_hold


def test_held_lot_refuses_track_in_split_and_merge(session, receive):
    lot, other = receive(100), receive(50)
    place(session, lot)
    refused(session, lambda: floor.track_in(session, "op", lot, step="SAW", equipment="SAW-1"),
            Conflict, "lot_on_hold")
    refused(session, lambda: floor.split_lot(session, "op", lot,
                                                                       [60, 40]),
            Conflict, "lot_on_hold")
    refused(session, lambda: floor.merge_lots(session, "op", [other, lot]), Conflict, "lot_on_hold")


def test_running_lot_held_is_tracked_out_and_stays_held(session, receive):
    lot = track_in(session, receive(100))
    hold = place(session, lot)
    assert lot.state == "running"
    track_out(session, lot)
    assert (lot.state, lot.step_code, lot.open_holds, hold.status) == ("queued", "WB", 1,
                                                                       "open")
    assert kinds(session, lot)[-3:] == ["track_in", "hold", "track_out"]


# --- mass holds ------------------------------------------------------------------------

@pytest.fixture
def family(session, receive):
    """FAB9 received as A and B; A split into A.01 and A.02; A.01 merged into C (of FAB5),
    C split into C.01. D of FAB5 is unrelated."""
    a = receive(100, fab_lot="FAB9", lot_no="A",
                wafers=[{"wafer_id": "W01", "die_qty": 60}, {"wafer_id": "W02", "die_qty": 40}])
    b = receive(100, fab_lot="FAB9", lot_no="B")
    c = receive(100, fab_lot="FAB5", lot_no="C")
    d = receive(100, fab_lot="FAB5", lot_no="D")
    a01, a02 = floor.split_lot(session, "op", a, [50, 30, 20])
    floor.merge_lots(session, "op", [c, a01])
    [c01] = floor.split_lot(session, "op", c, [100, 30])
    session.commit()
    return {lot.lot_no: lot for lot in (a, b, c, d, a01, a02, c01)}


def test_mass_hold_by_fab_lot_holds_every_descendant_through_splits_and_merges(
        session, family):
    result = services.mass_hold(session, QA, reason="H-ENG", comment="Fab excursion",
                                match={"fab_lot": "FAB9"})
    session.commit()
    assert result.lots == ["A", "A.02", "B", "C", "C.01"]
    assert (result.shipped, result.skipped) == ([], ["A.01"])
    assert sorted(h.lot.lot_no for h in result.holds) == result.lots
    assert {(h.source, h.status, h.placed_by) for h in result.holds} == {("mass", "open",
                                                                          "qa1")}
    assert result.holds[0].data == {"match": {"fab_lot": "FAB9"}}
    for lot_no, lot in family.items():
        assert lot.open_holds == (lot_no in result.lots), lot_no
    assert kinds(session, family["C.01"])[-1] == "hold"
    for hold in result.holds:
        assert audit_codes(session, "hold", str(hold.id)) == ["hold:place"]


# A's split shared its wafers out by die quantity (W01 60, W02 40 over 50, 30, 20): A kept
# W01 only, A.01 both, A.02 W02. W02 holds A.02 and C (which A.01 went into) with its
# child; W01 holds A and, as a descendant, A.02 too.
@pytest.mark.parametrize(("match", "held"), [
    ({"wafer": "W02"}, ["A.02", "C", "C.01"]),
    ({"wafer": "W02", "fab_lot": "FAB9"}, ["A.02", "C", "C.01"]),
    ({"wafer": "W01"}, ["A", "A.02", "C", "C.01"]),
    ({"wafer": "W02", "fab_lot": "FAB5"}, None),
    ({"lots": ["A.02", "D"]}, ["A.02", "D"]),
    ({"lots": ["C"]}, ["C", "C.01"]),
])
def test_mass_hold_by_wafer_or_lots_follows_the_genealogy(session, family, match, held):
    if held is None:
        refused(session, lambda: services.mass_hold(
            session, QA, reason="H-ENG", comment="x", match=match), InvalidInput, "no_match")
        return
    result = services.mass_hold(session, QA, reason="H-ENG", comment="x", match=match)
    assert result.lots == held


def test_mass_hold_by_material_lot_holds_lots_that_consumed_it_and_their_descendants(
        session, receive):
    used, other = receive(100, lot_no="USED"), receive(100, lot_no="OTHER")
    advance(session, used)
    advance(session, other)
    track_out(session, track_in(session, used))  # wire bond with AU-1
    track_in(session, other, materials=["AU-1", "EPX-1"])
    floor.split_lot(session, "op", used, [70, 30])
    session.commit()
    result = services.mass_hold(session, QA, reason="H-ENG", comment="Wire lot suspect",
                                match={"material_lot": "AU-1"})
    assert result.lots == ["OTHER", "USED", "USED.01"]
    assert services.match_lots(session, {"material_lot": "EPX-1"})["to_hold"] == ["OTHER"]


def test_mass_hold_by_equipment_window_holds_lots_whose_runs_overlap_it(session, receive):
    start = utcnow() - timedelta(days=2)
    lots = {}
    for lot_no, hours_in, hours_long in [("EARLY", 0, 1), ("OVERLAP", 2, 3), ("INSIDE", 6, 1),
                                         ("LATE", 20, 1)]:
        lot = receive(100, lot_no=lot_no)
        with simulated_time(start + timedelta(hours=hours_in)):
            track_in(session, lot)
        with simulated_time(start + timedelta(hours=hours_in + hours_long)):
            track_out(session, lot)
        lots[lot_no] = lot
    running = receive(100, lot_no="RUNNING")
    with simulated_time(start + timedelta(hours=22)):
        track_in(session, running)
    window = {"equipment": "SAW-1", "since": start + timedelta(hours=3),
              "until": start + timedelta(hours=10)}
    assert services.match_lots(session, window)["to_hold"] == ["INSIDE", "OVERLAP"]
    open_window = {"equipment": "SAW-1", "since": start + timedelta(hours=7)}
    assert services.match_lots(session, open_window)["to_hold"] == ["LATE", "RUNNING"]
    assert services.match_lots(session, {**window, "equipment": "WB-1"}) == \
        {"to_hold": [], "shipped": [], "skipped": []}


def test_mass_hold_holds_completed_lots_lists_shipped_ones_and_skips_scrapped(
        session, receive):
    done = advance(session, receive(100, lot_no="DONE"), 4)
    shipped = advance(session, receive(100, lot_no="SHIPPED"), 4)
    shipped.state = "shipped"  # shipping is not needed to reach the state for this rule
    scrapped = track_in(session, receive(100, lot_no="SCRAPPED"))
    track_out(session, scrapped, good=0, rejects=[{"reason": "R-SCRATCH", "qty": 100}])
    running = track_in(session, receive(100, lot_no="RUNNING"))
    session.commit()
    result = services.mass_hold(session, QA, reason="H-ENG", comment="x",
                                match={"fab_lot": "FAB1"})
    assert (result.lots, result.shipped, result.skipped) == (
        ["DONE", "RUNNING"], ["SHIPPED"], ["SCRAPPED"])
    assert (done.on_hold, running.on_hold, shipped.on_hold, scrapped.on_hold) == (
        True, True, False, False)


def test_mass_hold_of_a_lot_already_on_hold_adds_a_hold(session, receive):
    lot = receive(100, lot_no="A")
    place(session, lot)
    services.mass_hold(session, QA, reason="H-ENG", comment="x", match={"lots": ["A"]})
    session.commit()
    assert lot.open_holds == 2


def test_mass_hold_refused_when_the_match_selects_no_lot(session, receive):
    receive(100)
    err = refused(session, lambda: services.mass_hold(
        session, QA, reason="H-ENG", comment="x", match={"fab_lot": "NOWHERE"}),
                  InvalidInput, "no_match")
    assert "match" in err.fields


def test_mass_hold_refused_when_every_matching_lot_left_the_plant(session, receive):
    lot = receive(100, fab_lot="GONE")
    lot.state = "shipped"
    session.commit()
    err = refused(session, lambda: services.mass_hold(
        session, QA, reason="H-ENG", comment="x", match={"fab_lot": "GONE"}),
                  Conflict, "nothing_to_hold")
    assert "1 shipped" in err.message


@pytest.mark.parametrize(("match", "message"), [
    ({}, "exactly one"),
    ({"fab_lot": "FAB1", "lots": ["A"]}, "cannot be combined"),
    ({"material_lot": "AU-1", "wafer": "W01"}, "exactly one"),
    ({"since": "2026-01-01T00:00:00+00:00"}, "exactly one"),
    ({"equipment": "SAW-1"}, "needs \"Since\""),
    ({"equipment": "SAW-1", "since": "T+1", "until": "T"}, "after \"Since\""),
    ({"material_lot": "NOPE"}, "Unknown material lot NOPE"),
    ({"equipment": "NOPE", "since": "T"}, "Unknown equipment NOPE"),
    ({"lots": ["A", "NOPE"]}, "Unknown lot NOPE"),
    (["A"], "must be an object"),
])
def test_mass_hold_refused_for_a_match_that_is_not_one_valid_criterion(session, receive,
                                                                       match, message):
    receive(100, lot_no="A")
    now = utcnow()
    if isinstance(match, dict):
        match = {k: (now + timedelta(hours=1) if v == "T+1" else now if v == "T" else v)
                 for k, v in match.items()}
    err = refused(session, lambda: services.mass_hold(
        session, QA, reason="H-ENG", comment="x", match=match), InvalidInput, "invalid")
    assert message in err.fields["match"][0]


def test_mass_hold_refused_without_hold_reason_or_comment(session, receive):
    receive(100)
    refused(session, lambda: services.mass_hold(
        session, QA, reason="S-DMG", comment="x", match={"fab_lot": "FAB1"}),
            InvalidInput, "invalid")
    refused(session, lambda: services.mass_hold(
        session, QA, reason="H-ENG", comment=" ", match={"fab_lot": "FAB1"}),
            InvalidInput, "invalid")


def test_match_preview_lists_what_a_mass_hold_would_do_and_changes_nothing(session, family):
    family["B"].state = "shipped"
    session.commit()
    before = session.scalar(select(AuditEvent.id).order_by(AuditEvent.id.desc()).limit(1))
    assert services.match_lots(session, {"fab_lot": "FAB9"}) == {
        "to_hold": ["A", "A.02", "C", "C.01"], "shipped": ["B"], "skipped": ["A.01"]}
    assert session.scalar(select(AuditEvent.id).order_by(AuditEvent.id.desc()).limit(1)) == \
        before
    assert not any(lot.on_hold for lot in family.values())


def test_holds_and_lists_read_back(session, family):
    result = services.mass_hold(session, QA, reason="H-ENG", comment="x",
                                match={"lots": ["A.02", "B"]})
    single = place(session, family["D"])
    session.commit()
    assert services.get_hold(session, single.id) is single
    newest_first = list(session.scalars(services.hold_query({})))
    assert [h.id for h in newest_first] == sorted((h.id for h in [*result.holds, single]),
                                                  reverse=True)
    assert [h.lot.lot_no for h in session.scalars(services.hold_query({"lot": "B"}))] == ["B"]
    assert len(list(session.scalars(services.hold_query({"source": "mass"})))) == 2
    assert list(session.scalars(services.hold_query({"status": "released"}))) == []
    assert services.lot_holds(session, family["D"], "open") == [single]


def test_unknown_hold_is_not_found(session, plant):
    from mes.errors import NotFound

    with pytest.raises(NotFound):
        services.get_hold(session, 987654)


# --- automatic yield hold --------------------------------------------------------------

def at_wire_bond(session, receive, quantity: int = 100) -> Lot:
    lot = advance(session, receive(quantity))
    return track_in(session, lot)


def test_track_out_below_the_step_minimum_yield_holds_the_lot(session, receive):
    cat.create_reason_code(session, "test", {"code": "HOLD-YIELD", "kind": "hold",
                                             "description": "Low yield"})
    lot = at_wire_bond(session, receive)
    track_out(session, lot, good=89, rejects=[{"reason": "R-BALL", "qty": 11}])
    assert (lot.state, lot.step_code, lot.open_holds) == ("queued", "FT", 1)
    [hold] = services.lot_holds(session, lot)
    assert (hold.source, hold.reason.code, hold.placed_by, hold.step_code) == (
        "yield", "HOLD-YIELD", "system", "FT")
    assert hold.data == {"step": "WB", "yield": 89.0, "min_yield": 90.0, "triggered_by": "op2"}
    assert kinds(session, lot)[-2:] == ["track_out", "hold"]
    assert audit_codes(session, "hold", str(hold.id)) == ["hold:place"]


def test_track_out_at_the_minimum_yield_does_not_hold(session, receive):
    lot = at_wire_bond(session, receive)
    track_out(session, lot, good=90, rejects=[{"reason": "R-BALL", "qty": 10}])
    assert lot.open_holds == 0


def test_yield_hold_uses_the_first_active_hold_code_when_hold_yield_is_missing(
        session, receive, hold_codes):
    lot = at_wire_bond(session, receive)
    track_out(session, lot, good=50, rejects=[{"reason": "R-BALL", "qty": 50}])
    assert [h.reason.code for h in services.lot_holds(session, lot)] == ["H-ENG"]


def test_yield_hold_creates_hold_yield_when_the_plant_has_no_active_hold_code(session,
                                                                              receive):
    cat.update_reason_code(session, "test", cat.get_reason_code(session, "H-ENG"),
                           {"active": False})
    lot = at_wire_bond(session, receive)
    track_out(session, lot, good=50, rejects=[{"reason": "R-BALL", "qty": 50}])
    [hold] = services.lot_holds(session, lot)
    assert (hold.reason.code, hold.reason.kind, hold.reason.active) == ("HOLD-YIELD", "hold",
                                                                        True)
    assert audit_codes(session, "reason_code", "HOLD-YIELD") == ["reason_code:create"]


def test_yield_hold_on_the_last_step_holds_the_completed_lot(session, receive):
    cat.create_route(session, "test", {"code": "QFN", "name": "QFN v2", "steps": [
        {"code": "SAW", "name": "Saw", "kind": "assembly", "equipment_kind": "saw",
         "min_yield": 99.5, "materials": []}]})
    lot = track_in(session, receive(2000))
    track_out(session, lot, good=1990, rejects=[{"reason": "R-SCRATCH", "qty": 10}])
    assert (lot.state, lot.open_holds) == ("completed", 0)  # exactly 99.5 %
    lot = track_in(session, receive(2000))
    track_out(session, lot, good=1989, rejects=[{"reason": "R-SCRATCH", "qty": 11}])
    assert (lot.state, lot.open_holds) == ("completed", 1)


def test_track_out_with_no_good_units_scraps_the_lot_without_a_yield_hold(session, receive):
    lot = at_wire_bond(session, receive)
    track_out(session, lot, good=0, rejects=[{"reason": "R-BALL", "qty": 100}])
    assert (lot.state, lot.open_holds) == ("scrapped", 0)


def test_a_mass_hold_meeting_a_lot_changed_meanwhile_is_refused_whole(session, receive):
    first, changed = receive(100, lot_no="A"), receive(100, lot_no="B")
    lots = [first, changed]
    # Another writer moves B after this session read it: its version counter goes up.
    session.execute(update(Lot.__table__).where(Lot.__table__.c.id == changed.id)
                    .values(version=Lot.__table__.c.version + 1))
    session.commit()
    before = quality_state(session)
    with pytest.raises(Conflict) as caught:
        services.mass_hold(session, QA, reason="H-ENG", comment="x",
                           match={"lots": [lot.lot_no for lot in lots]})
    assert caught.value.code == "stale"
    # The request's transaction ends here: everything the refused hold wrote goes with it.
    session.rollback()
    assert quality_state(session) == before


def test_bulk_written_records_chain_and_verify_like_single_ones(session, receive):
    lots = [receive(10, lot_no=f"LOT-{i:02d}") for i in range(60)]
    services.hold_lot(session, QA, lots[0], reason="H-ENG", comment="First")
    result = services.mass_hold(session, QA, reason="H-ENG", comment="All",
                                match={"fab_lot": "FAB1"})
    services.release_hold(session, QA2, result.holds[0], {"disposition": "release",
                                                          "comment": "ok"})
    session.commit()
    assert audit_codes(session, "lot", "LOT-00") == ["lot:receive", "lot:hold", "lot:hold",
                                                     "lot:release"]
    assert [len(floor.history(session, lot)) for lot in lots[1:]] == [2] * 59
    assert audit.verify(session).ok
