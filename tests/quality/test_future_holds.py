"""Future holds: rules that hold a matching lot when it arrives at a step, including lots
split or merged after the rule was made. Every refusal changes nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from mes.catalog import services as cat
from mes.db import utcnow
from mes.errors import Conflict, InvalidInput, NotFound
from mes.floor import services as floor
from mes.floor.models import Lot, LotWafer
from mes.quality import services
from mes.quality.models import FutureHold
from mes.quality.schemas import FutureHoldOut
from tests.floor.helpers import advance, track_in, track_out
from tests.helpers import audit_codes, refused
from tests.quality.helpers import QA, QA2


def rule(session, match: dict[str, Any], at_step: str = "FT", reason: str = "H-ENG",
         comment: str = "Stop before final test") -> FutureHold:
    made = services.create_future_hold(session, QA, reason=reason, comment=comment,
                                       at_step=at_step, match=match)
    session.commit()
    return made.rule


def arrive(session, lot: Lot, at: str = "FT") -> Lot:
    while lot.step_code != at:
        advance(session, lot)
    return lot


def test_a_matching_lot_is_held_when_it_arrives_at_the_step(session, receive):
    suspect, other = receive(100, fab_lot="FAB9"), receive(100, fab_lot="FAB1")
    made = rule(session, {"fab_lot": "FAB9"})
    assert (made.status, made.at_step, made.match_kind, made.match, made.created_by) == (
        "active", "FT", "fab_lot", {"fab_lot": "FAB9"}, "qa1")
    advance(session, suspect)
    assert (suspect.step_code, suspect.on_hold) == ("WB", False)
    advance(session, suspect)
    assert (suspect.step_code, suspect.state, suspect.open_holds) == ("FT", "queued", 1)
    [hold] = services.lot_holds(session, suspect)
    assert (hold.source, hold.future_hold_id, hold.reason.code, hold.comment, hold.placed_by,
            hold.step_code) == ("future", made.id, "H-ENG", "Stop before final test", "qa1",
                                "FT")
    assert hold.data == {"rule": made.id, "triggered_by": "op2"}
    event = floor.history(session, suspect)[-1]
    assert (event.kind, event.by, event.data["rule"]) == ("hold", "system", made.id)
    assert audit_codes(session, "hold", str(hold.id)) == ["hold:place"]
    assert audit_codes(session, "future_hold", str(made.id)) == ["future_hold:create"]
    assert arrive(session, other).on_hold is False


def test_a_lot_split_from_a_matching_lot_after_the_rule_is_held(session, receive):
    parent = receive(100, lot_no="A")
    rule(session, {"lots": ["A"]})
    [child] = floor.split_lot(session, "op", parent, [60, 40])
    session.commit()
    assert arrive(session, child).on_hold
    assert arrive(session, parent).on_hold


def test_the_survivor_of_a_merge_with_a_matching_lot_is_held(session, receive):
    survivor, suspect = receive(100, lot_no="C"), receive(50, lot_no="B")
    rule(session, {"lots": ["B"]})
    floor.merge_lots(session, "op", [survivor, suspect])
    session.commit()
    assert arrive(session, survivor).on_hold


def test_a_material_lot_consumed_after_the_rule_is_caught_on_arrival(session, receive):
    cat.create_material_lot(session, "test", {"code": "AU-2", "material": "wire",
                                              "description": "", "expires_at": None})
    rule(session, {"material_lot": "AU-1"})
    suspect = advance(session, receive(100))
    clean = advance(session, receive(100))
    track_out(session, track_in(session, suspect, materials=["AU-1"]))
    track_out(session, track_in(session, clean, materials=["AU-2"]))
    assert (suspect.step_code, suspect.on_hold, clean.step_code, clean.on_hold) == (
        "FT", True, "FT", False)


def test_an_equipment_window_rule_holds_lots_that_ran_on_the_tool_in_it(session, receive):
    now = utcnow()
    open_window = rule(session, {"equipment": "SAW-1", "since": now - timedelta(minutes=1)},
                       at_step="WB")
    rule(session, {"equipment": "SAW-1", "since": now - timedelta(days=2),
                   "until": now - timedelta(days=1)}, at_step="WB")
    rule(session, {"equipment": "WB-1", "since": now - timedelta(minutes=1)}, at_step="WB")
    lot = advance(session, receive(100))
    assert [h.future_hold_id for h in services.lot_holds(session, lot)] == [open_window.id]


def test_a_wafer_rule_holds_lots_holding_dies_of_that_wafer(session, receive):
    rule(session, {"wafer": "W07", "fab_lot": "FAB3"})
    suspect = receive(100, fab_lot="FAB3", wafers=[{"wafer_id": "W07", "die_qty": 100}])
    same_id = receive(100, fab_lot="FAB4", wafers=[{"wafer_id": "W07", "die_qty": 100}])
    assert (arrive(session, suspect).on_hold, arrive(session, same_id).on_hold) == (True,
                                                                                    False)


def test_a_rule_applies_to_arrivals_only_and_tells_where_matching_lots_are(session, receive):
    cat.create_route(session, "test", {"code": "SOP", "name": "SOP", "steps": [
        {"code": "SAW", "name": "Saw", "kind": "assembly", "equipment_kind": "saw",
         "min_yield": None, "materials": []}]})
    cat.create_product(session, "test", {"code": "P3", "name": "No test", "package": "SOP",
                                         "route": "SOP", "aec_grade": None, "msl": "1",
                                         "customer": None})
    before = receive(100, lot_no="BEFORE")
    at = arrive(session, receive(100, lot_no="AT"))
    past = arrive(session, receive(100, lot_no="PAST"), "PACK")
    done = advance(session, receive(100, lot_no="DONE"), 4)
    shipped = advance(session, receive(100, lot_no="SHIPPED"), 4)
    shipped.state = "shipped"  # shipping is not needed to reach the state for this rule
    receive(100, lot_no="OFF", product="P3")
    session.commit()
    made = services.create_future_hold(session, QA, reason="H-ENG", comment="Stop before FT",
                                       at_step="FT", match={"fab_lot": "FAB1"})
    session.commit()
    assert made.matching_now == {"before_step": 1, "at_step": 1, "past_step": 2,
                                 "not_on_route": 1, "shipped": 1, "at_step_lots": ["AT"]}
    assert (at.on_hold, past.on_hold, done.on_hold) == (False, False, False)
    advance(session, at)
    assert (at.step_code, at.on_hold) == ("PACK", False)
    assert arrive(session, before).on_hold


def test_a_retired_rule_holds_nothing_and_is_kept(session, receive):
    made = rule(session, {"fab_lot": "FAB1"})
    services.retire_future_hold(session, QA2, made)
    session.commit()
    assert (made.status, made.retired_by) == ("retired", "qa2") and made.retired_at
    assert arrive(session, receive(100)).on_hold is False
    assert audit_codes(session, "future_hold", str(made.id)) == ["future_hold:create",
                                                                 "future_hold:retire"]
    refused(session, lambda: services.retire_future_hold(session, QA, made), Conflict, "not_active")


def test_a_rule_holds_a_lot_once_not_again_after_rework(session, receive):
    lot = receive(100)
    rule(session, {"fab_lot": "FAB1"})
    arrive(session, lot)
    [hold] = services.lot_holds(session, lot)
    services.release_hold(session, QA2, hold, {"disposition": "rework", "comment": "Redo",
                                               "rework_step": "SAW"})
    session.commit()
    assert (lot.step_code, lot.on_hold) == ("SAW", False)
    assert arrive(session, lot).on_hold is False


def test_a_rework_back_to_the_rules_step_is_an_arrival(session, receive):
    lot = arrive(session, receive(100, lot_no="X"))
    made = rule(session, {"lots": ["X"]}, at_step="WB")
    hold = services.hold_lot(session, QA, lot, reason="H-ENG", comment="x")
    services.release_hold(session, QA2, hold, {"disposition": "rework", "comment": "Rebond",
                                               "rework_step": "WB"})
    session.commit()
    assert (lot.step_code, lot.open_holds) == ("WB", 1)
    assert [h.future_hold_id for h in services.lot_holds(session, lot, "open")] == [made.id]


def test_every_matching_rule_places_its_own_hold(session, receive):
    lot = receive(100, lot_no="L1")
    first = rule(session, {"fab_lot": "FAB1"})
    second = rule(session, {"lots": ["L1"]}, comment="Customer complaint")
    rule(session, {"lots": ["L1"]}, at_step="PACK")
    arrive(session, lot)
    assert sorted(h.future_hold_id for h in services.lot_holds(session, lot)) == [first.id,
                                                                                 second.id]
    assert lot.open_holds == 2


def test_a_yield_hold_and_a_future_hold_on_one_track_out(session, receive):
    rule(session, {"fab_lot": "FAB1"})
    lot = advance(session, receive(100))
    track_out(session, track_in(session, lot), good=80, rejects=[{"reason": "R-BALL",
                                                                  "qty": 20}])
    assert sorted(h.source for h in services.lot_holds(session, lot)) == ["future", "yield"]
    assert lot.open_holds == 2


def test_the_rules_author_may_not_release_the_holds_it_places(session, receive):
    rule(session, {"fab_lot": "FAB1"})
    [hold] = services.lot_holds(session, arrive(session, receive(100)))
    refused(session, lambda: services.release_hold(
        session, QA, hold, {"disposition": "release", "comment": "x"}), Conflict, "two_person_rule")
    services.release_hold(session, QA2, hold, {"disposition": "release", "comment": "x"})
    assert hold.status == "released"


@pytest.mark.parametrize(("changes", "field"), [
    ({"at_step": "NOWHERE"}, "at_step"),
    ({"reason": "R-SCRATCH"}, "reason"),
    ({"comment": " "}, "comment"),
    ({"match": {"material_lot": "NOPE"}}, "match"),
    ({"match": {"fab_lot": "FAB1", "wafer": "W1", "lots": ["X"]}}, "match"),
])
def test_future_hold_refused_with_bad_input(session, plant, changes, field):
    data = {"reason": "H-ENG", "comment": "x", "at_step": "FT", "match": {"fab_lot": "F"},
            **changes}
    err = refused(session, lambda: services.create_future_hold(session, QA, **data),
                  InvalidInput, "invalid")
    assert field in err.fields


def test_rules_read_back_with_the_holds_they_placed(session, receive):
    first = rule(session, {"fab_lot": "FAB1"})
    second = rule(session, {"fab_lot": "FAB2"}, at_step="PACK")
    services.retire_future_hold(session, QA, second)
    arrive(session, receive(100))
    found = list(session.scalars(services.future_hold_query({})))
    assert found == [second, first]
    shown = services.present_rules(session, found)
    assert [(r.rule, r.holds_placed) for r in shown] == [(second, 0), (first, 1)]
    with pytest.raises(TypeError, match="PresentedRule"):
        FutureHoldOut().dump(first)
    assert FutureHoldOut().dump(shown[1])["holds_placed"] == 1
    assert list(session.scalars(services.future_hold_query({"status": "active"}))) == [first]
    assert list(session.scalars(services.future_hold_query({"at_step": "PACK"}))) == [second]
    assert services.get_future_hold(session, first.id) is first
    with pytest.raises(NotFound):
        services.get_future_hold(session, 987654)


@pytest.mark.parametrize("match", [
    {"material_lot": "AU-1"},
    {"equipment": "WB-1", "since": "T"},
    {"wafer": "W03"},
    {"wafer": "W03", "fab_lot": "FAB1"},
    {"fab_lot": "FAB1"},
    {"lots": ["PARENT"]},
])
def test_a_split_child_is_caught_by_what_its_parent_consumed_ran_on_or_came_from(
        session, receive, match):
    parent = advance(session, receive(100, lot_no="PARENT",
                                      wafers=[{"wafer_id": "W03", "die_qty": 100}]))
    since = utcnow() - timedelta(minutes=1)
    track_out(session, track_in(session, parent))  # wire bond on WB-1 with AU-1: now at FT
    [child] = floor.split_lot(session, "op", parent, [60, 40])
    # The child carries no wafer link of its own here: only its parent's count.
    session.execute(LotWafer.__table__.delete().where(LotWafer.lot_id == child.id))
    session.commit()
    rule(session, {k: (since if v == "T" else v) for k, v in match.items()}, at_step="PACK")
    advance(session, child)
    assert (child.step_code, child.on_hold) == ("PACK", True)
