"""The operator station through a shift: codes typed in any case, the step's own reject
reasons (the others on request), a blocked lot without a form but with what to do, the queue
of the operator's steps, the STDF upload at a test step. Each refusal checks that nothing
changed."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, text

from mes.catalog import services as catalog
from mes.catalog.models import MaterialLot, ReasonCode
from mes.db import simulated_time, utcnow
from mes.floor import services
from mes.floor import station as reads
from mes.floor.models import Lot, MaterialUse, StepRun
from mes.quality.models import Hold
from tests.helpers import refused


def page_of(resp: Any) -> str:
    return resp.get_data(as_text=True)


def fresh(session, lot_no: str) -> Lot:
    session.expire_all()
    return session.scalars(select(Lot).where(Lot.lot_no == lot_no)).one()


def to_wb(session, lot: Lot) -> Lot:
    services.track_in(session, "op", lot, step="SAW", equipment="SAW-1")
    services.track_out(session, "op", lot, step="SAW", good_qty=lot.quantity)
    session.commit()
    return lot


def through_wb(session, lot: Lot) -> Lot:
    services.track_in(session, "op", lot, step="WB", equipment="WB-1", materials=["AU-1"])
    services.track_out(session, "op", lot, step="WB", good_qty=lot.quantity)
    session.commit()
    return lot


@pytest.fixture
def op_user(make_user):
    return make_user("operator")


@pytest.fixture
def operator(login, op_user):
    return login(op_user)


def options(page: str, select_id: str) -> list[str]:
    """The option values of the select `select_id` (empty values left out)."""
    found = re.search(rf'<select id="{select_id}".*?</select>', page, re.S)
    assert found, select_id
    return [v for v in re.findall(r'<option value="([^"]*)"', found.group(0)) if v]


# --- codes in any case -----------------------------------------------------------------

def test_station_finds_a_lot_scanned_in_lower_case_and_shows_its_stored_number(
        operator, session, receive):
    lot = receive(1000)
    resp = operator.get(f"/station?lot={lot.lot_no.lower()}")
    page = page_of(resp)
    assert resp.status_code == 200
    assert f'<h1 id="station-lot-no" class="station-lot-no mono">{lot.lot_no}</h1>' in page
    assert f'name="lot" value="{lot.lot_no}"' in page
    assert fresh(session, lot.lot_no).lot_no == lot.lot_no  # stored as it was


def test_track_in_at_the_station_with_equipment_and_material_typed_in_lower_case(
        operator, session, receive):
    lot = to_wb(session, receive(1000))
    resp = operator.post("/station", data={
        "lot": lot.lot_no.lower(), "step": "WB", "equipment": "wb-1", "material": ["au-1"],
        "action": "track_in"})
    assert resp.status_code == 303, page_of(resp)[:2000]
    lot = fresh(session, lot.lot_no)
    assert lot.state == "running" and lot.equipment is not None
    assert lot.equipment.code == "WB-1"
    used = session.scalars(select(MaterialUse).where(MaterialUse.lot_id == lot.id)).all()
    au1 = session.scalars(select(MaterialLot).where(MaterialLot.code == "AU-1")).one()
    assert [u.material_lot_id for u in used] == [au1.id]


def test_api_moves_a_lot_named_in_lower_case(api, session, receive):
    lot = receive(1000)
    caller = api("operator")
    resp = caller.get(f"/lots/{lot.lot_no.lower()}")
    assert resp.status_code == 200 and resp.get_json()["lot_no"] == lot.lot_no
    resp = caller.post(f"/lots/{lot.lot_no.lower()}/track-in",
                       json={"step": "SAW", "equipment": "saw-1"})
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["equipment"] == "SAW-1"
    resp = caller.post(f"/lots/{lot.lot_no.lower()}/track-out",
                       json={"step": "SAW", "good_qty": 1000})
    assert resp.status_code == 200, resp.get_json()
    assert fresh(session, lot.lot_no).step_code == "WB"


def test_a_code_stored_in_lower_case_is_found_and_the_exact_spelling_wins(session, plant):
    catalog.create_equipment(session, "test", {"code": "saw-9", "kind": "saw", "name": "lower",
                                               "state": "standby"})
    catalog.create_equipment(session, "test", {"code": "SAW-9", "kind": "saw", "name": "upper",
                                               "state": "standby"})
    catalog.create_equipment(session, "test", {"code": "saw-8", "kind": "saw", "name": "only",
                                               "state": "standby"})
    session.commit()
    found = services.equipment_by_code
    assert found(session, "saw-9").name == "lower"
    assert found(session, "SAW-9").name == "upper"
    assert found(session, "Saw-9").name == "upper"  # no exact spelling: upper case first
    assert found(session, "SAW-8").name == "only"
    assert found(session, "SAW-7") is None


def test_unknown_codes_in_any_case_are_still_refused_and_change_nothing(operator, session,
                                                                       receive):
    lot = to_wb(session, receive(1000))
    page = refused(session, lambda: operator.post("/station", data={
        "lot": lot.lot_no.lower(), "step": "WB", "equipment": "wb-9", "material": ["au-1"],
        "action": "track_in"}), 422)
    assert "Unknown equipment wb-9." in page
    page = refused(session, lambda: operator.post("/station", data={
        "lot": lot.lot_no, "step": "WB", "equipment": "wb-1", "material": ["au-9"],
        "action": "track_in"}), 422)
    assert "Unknown material lot au-9." in page
    resp = operator.get("/station?lot=l000000-9999")
    assert resp.status_code == 404 and "No lot l000000-9999." in page_of(resp)


def test_merge_names_lots_in_any_case(session, receive):
    a, b = receive(100), receive(200)
    lots = services.lots_by_number(session, [a.lot_no.lower(), b.lot_no])
    assert [lot.id for lot in lots] == [a.id, b.id]


def test_the_lot_lookup_keeps_to_the_lot_number_index(session, receive):
    """A scan is an equality on the unique index of lot numbers (an IN of its spellings),
    never a scan of upper(lot_no): the query plan of the lookup uses the index."""
    lot = receive(10)
    stmt = services._GET_LOT.params(lot_nos=services.spellings(lot.lot_no.lower()))
    compiled = stmt.compile(session.get_bind(), compile_kwargs={"literal_binds": True})
    assert "upper(" not in str(compiled).lower()
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL enable_seqscan = off"))
        plan = " ".join(r[0] for r in session.execute(text(f"EXPLAIN {compiled}")))
        assert re.search(r"Index (Only )?Scan (using|on) \S*lot_no\S*", plan), plan
        assert "Seq Scan on lot" not in plan, plan
    else:
        plan = " ".join(str(r[-1]) for r in session.execute(
            text(f"EXPLAIN QUERY PLAN {compiled}")))
        assert re.search(r"SEARCH lot USING (COVERING )?INDEX \S+ \(lot_no=\?\)", plan), plan


# --- reject reasons per step -----------------------------------------------------------

@pytest.fixture
def placed_reasons(session, plant):
    """R-SCRATCH and R-BALL apply everywhere; WB-LIFT at WB only, FT-FAIL at test steps."""
    catalog.create_reason_code(session, "test", {
        "code": "WB-LIFT", "kind": "reject", "description": "Ball lift", "description_zh": "",
        "steps": ["WB"], "step_kinds": []})
    catalog.create_reason_code(session, "test", {
        "code": "FT-FAIL", "kind": "reject", "description": "Test fail", "description_zh": "",
        "steps": [], "step_kinds": ["test"]})
    session.commit()


def running_at_wb(session, receive) -> Lot:
    lot = to_wb(session, receive(1000))
    services.track_in(session, "op", lot, step="WB", equipment="WB-1", materials=["AU-1"])
    session.commit()
    return lot


def test_station_offers_the_reasons_of_the_step_and_the_others_on_request(
        operator, session, receive, placed_reasons):
    lot = running_at_wb(session, receive)
    page = page_of(operator.get(f"/station?lot={lot.lot_no}"))
    assert options(page, "f-reject-reason-1") == ["R-BALL", "R-SCRATCH", "WB-LIFT"]
    assert 'value="all_reasons"' in page
    # Enter in the good quantity still tracks out: track-out is the form's first button.
    assert page.index('value="track_out"') < page.index('value="all_reasons"')
    resp = operator.post("/station", data={
        "lot": lot.lot_no, "step": "WB", "good_qty": "990", "reject_reason": ["WB-LIFT", ""],
        "reject_qty": ["10", ""], "action": "all_reasons"})
    page = page_of(resp)
    assert resp.status_code == 200
    assert options(page, "f-reject-reason-1") == ["FT-FAIL", "R-BALL", "R-SCRATCH", "WB-LIFT"]
    assert 'name="all_reasons" value="1"' in page and 'value="all_reasons"' not in page
    # what was typed stays, and the first reason field takes the focus
    assert 'value="WB-LIFT" selected' in page and 'value="990"' in page
    assert re.search(r'<select id="f-reject-reason-1" name="reject_reason" autofocus', page)
    assert fresh(session, lot.lot_no).state == "running"


def test_a_reason_of_another_step_is_accepted_and_stays_shown_when_refused(
        operator, session, receive, placed_reasons):
    lot = running_at_wb(session, receive)
    page = refused(session, lambda: operator.post("/station", data={
        "lot": lot.lot_no, "step": "WB", "good_qty": "900", "reject_reason": ["FT-FAIL"],
        "reject_qty": ["10"], "action": "track_out"}), 422)
    assert 'value="FT-FAIL" selected' in page  # every reason offered again: it is kept
    resp = operator.post("/station", data={
        "lot": lot.lot_no, "step": "WB", "good_qty": "990", "reject_reason": ["FT-FAIL"],
        "reject_qty": ["10"], "action": "track_out"})
    assert resp.status_code == 303
    assert fresh(session, lot.lot_no).quantity == 990


def test_test_steps_offer_the_reasons_of_their_kind(session, receive, placed_reasons, app):
    lot = through_wb(session, to_wb(session, receive(1000)))
    with app.test_request_context():
        view = reads.station_lot(session, lot)
    assert [r.code for r in view.reject_reasons] == ["FT-FAIL", "R-BALL", "R-SCRATCH"]
    assert [r.code for r in view.other_reasons] == ["WB-LIFT"]


def test_a_step_no_reason_names_is_offered_every_reason(session, receive, app):
    lot = receive(1000)
    for code in ("R-SCRATCH", "R-BALL"):
        session.scalars(select(ReasonCode).where(ReasonCode.code == code)).one().steps = ["WB"]
    session.commit()
    with app.test_request_context():
        view = reads.station_lot(session, lot)
    assert [r.code for r in view.reject_reasons] == ["R-BALL", "R-SCRATCH"]
    assert view.other_reasons == []


def test_reason_codes_api_keeps_where_they_apply(api, session, plant):
    admin = api("engineer")
    resp = admin.post("/reason-codes", json={
        "code": "MOLD-VOID", "kind": "reject", "description": "Mold void",
        "steps": ["MOLD", "MOLD"], "step_kinds": ["inspection"]})
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["steps"] == ["MOLD"]
    assert resp.get_json()["step_kinds"] == ["inspection"]
    resp = admin.patch("/reason-codes/MOLD-VOID", json={"step_kinds": []})
    assert resp.status_code == 200 and resp.get_json()["step_kinds"] == []
    assert resp.get_json()["steps"] == ["MOLD"]
    reason = session.scalars(select(ReasonCode).where(ReasonCode.code == "MOLD-VOID")).one()
    session.refresh(reason)
    assert reason.steps == ["MOLD"] and reason.step_kinds == []
    # an existing code created without them applies everywhere
    listed = {r["code"]: r for r in admin.get("/reason-codes?kind=reject").get_json()["items"]}
    assert listed["R-SCRATCH"]["steps"] == [] and listed["R-SCRATCH"]["step_kinds"] == []


def test_reason_codes_api_refuses_an_unknown_step_kind_or_a_bad_step_code(api, session, plant):
    admin = api("engineer")
    refused(session, lambda: admin.post("/reason-codes", json={
        "code": "X-1", "kind": "reject", "description": "x", "step_kinds": ["baking"]}),
        422, "invalid", "step_kinds")
    refused(session, lambda: admin.patch("/reason-codes/R-SCRATCH", json={
        "steps": ["not a code"]}), 422, "invalid", "steps")


def test_reason_code_pages_show_and_edit_where_a_reason_applies(login, make_user, session,
                                                                plant):
    engineer = login(make_user("engineer"))
    resp = engineer.post("/catalog/reason-codes/new", data={
        "code": "WB-NSOP", "kind": "reject", "description": "Non-stick on pad",
        "steps": "WB, OPT3", "step_kinds": ["inspection"]})
    assert resp.status_code == 303, page_of(resp)[:3000]
    reason = session.scalars(select(ReasonCode).where(ReasonCode.code == "WB-NSOP")).one()
    assert reason.steps == ["WB", "OPT3"] and reason.step_kinds == ["inspection"]
    page = page_of(engineer.get("/catalog/reason-codes?kind=reject"))
    assert "Inspection; <span class=\"mono\">WB OPT3</span>" in page
    assert "every step" in page  # R-SCRATCH
    form = page_of(engineer.get("/catalog/reason-codes/WB-NSOP/edit"))
    assert 'value="WB OPT3"' in form and 'value="inspection" checked' in form
    resp = engineer.post("/catalog/reason-codes/WB-NSOP/edit", data={
        "description": "Non-stick on pad", "description_zh": "", "active": "1", "steps": ""})
    assert resp.status_code == 303
    session.refresh(reason)
    assert reason.steps == [] and reason.step_kinds == []
    page = refused(session, lambda: engineer.post("/catalog/reason-codes/WB-NSOP/edit", data={
        "description": "Non-stick on pad", "active": "1", "steps": "WB", "step_kinds": "bake"}),
        422)
    assert "Must be one of" in page and 'value="WB"' in page


# --- blocked means no form -------------------------------------------------------------

def test_a_held_lot_gets_no_form_and_the_operator_is_told_to_set_it_aside(
        operator, session, receive):
    lot = receive(1000)
    reason = session.scalars(select(ReasonCode).where(ReasonCode.code == "H-ENG")).one()
    session.add(Hold(lot_id=lot.id, reason_id=reason.id, comment="Check", placed_by="qa1",
                     status="open", source="manual"))
    lot.open_holds = 1
    session.commit()
    page = page_of(operator.get(f"/station?lot={lot.lot_no}"))
    assert 'value="track_in"' not in page and 'name="equipment"' not in page
    assert "Put the lot aside at the hold rack and call QA" in page
    assert re.search(r'<input type="text" id="f-lot"[^>]*autofocus', page)


def test_with_every_tool_busy_the_station_names_the_one_likely_to_free_first(
        operator, session, receive):
    first, second, waiting = (to_wb(session, receive(100)) for _ in range(3))
    now = utcnow()
    with simulated_time(now - timedelta(hours=3)):
        services.track_in(session, "op", first, step="WB", equipment="WB-2",
                          materials=["AU-1"])
    with simulated_time(now - timedelta(hours=1)):
        services.track_in(session, "op", second, step="WB", equipment="WB-1",
                          materials=["AU-1"])
    session.commit()
    before = session.scalar(select(StepRun.id).order_by(StepRun.id.desc()).limit(1))
    page = page_of(operator.get(f"/station?lot={waiting.lot_no}"))
    assert "No wire bonder is available for step WB." in page
    assert 'value="track_in"' not in page
    assert "Wait for a wire bonder: WB-2 has run its lot longest" in page
    # the page changed nothing, and the service refuses the move the page does not offer
    assert session.scalar(select(StepRun.id).order_by(StepRun.id.desc()).limit(1)) == before
    refused(session, lambda: operator.post("/station", data={
        "lot": waiting.lot_no, "step": "WB", "equipment": "WB-1", "material": ["AU-1"],
        "action": "track_in"}), 409)


def test_without_usable_material_the_operator_is_sent_to_the_store(operator, session,
                                                                    receive):
    lot = to_wb(session, receive(1000))
    session.scalars(select(MaterialLot).where(MaterialLot.code == "AU-1")).one().expires_at = \
        utcnow() - timedelta(hours=1)
    session.commit()
    page = page_of(operator.get(f"/station?lot={lot.lot_no}"))
    assert 'value="track_in"' not in page
    assert "Ask the material store for a fresh wire lot" in page


def test_a_closed_lot_tells_the_operator_there_is_nothing_to_do(operator, session, receive):
    lot = receive(10)
    services.track_in(session, "op", lot, step="SAW", equipment="SAW-1")
    services.track_out(session, "op", lot, step="SAW", good_qty=0,
                       rejects=[{"reason": "R-SCRATCH", "qty": 10}])
    session.commit()
    page = page_of(operator.get(f"/station?lot={lot.lot_no}"))
    assert "Nothing to do at the station: the lot is Scrapped." in page
    assert 'value="track_in"' not in page and 'value="track_out"' not in page


def test_a_lot_held_while_running_keeps_its_track_out_form_and_is_sent_to_the_rack(
        operator, session, receive):
    lot = receive(1000)
    services.track_in(session, "op", lot, step="SAW", equipment="SAW-1")
    reason = session.scalars(select(ReasonCode).where(ReasonCode.code == "H-ENG")).one()
    session.add(Hold(lot_id=lot.id, reason_id=reason.id, comment="Check", placed_by="qa1",
                     status="open", source="manual"))
    lot.open_holds = 1
    session.commit()
    page = page_of(operator.get(f"/station?lot={lot.lot_no}"))
    assert 'value="track_out"' in page
    assert "Track the lot out as usual, then put it aside at the hold rack" in page


def test_a_chinese_operator_reads_what_to_do_in_chinese(login, make_user, session, receive):
    user = make_user("operator")
    user.locale = "zh_CN"
    lot = receive(1000)
    reason = session.scalars(select(ReasonCode).where(ReasonCode.code == "H-ENG")).one()
    session.add(Hold(lot_id=lot.id, reason_id=reason.id, comment="Check", placed_by="qa1",
                     status="open", source="manual"))
    lot.open_holds = 1
    session.commit()
    page = page_of(login(user).get(f"/station?lot={lot.lot_no.lower()}"))
    assert "把批次放到扣留架上并通知 QA" in page
    assert "Put the lot aside" not in page and 'value="track_in"' not in page


# --- the queue -------------------------------------------------------------------------

def test_the_queue_lists_lots_at_the_operators_steps_most_urgent_first(
        operator, op_user, session, receive):
    today = services.plant_date()
    now = utcnow()
    with simulated_time(now - timedelta(hours=5)):
        old = to_wb(session, receive(10, due_date=today + timedelta(days=9), priority=3))
    with simulated_time(now - timedelta(hours=4)):
        same_due_later = to_wb(session, receive(10, due_date=today + timedelta(days=9),
                                                priority=3))
    rush = to_wb(session, receive(10, due_date=today + timedelta(days=9), priority=1))
    due_first = to_wb(session, receive(10, due_date=today + timedelta(days=2), priority=4))
    undated = to_wb(session, receive(10))
    held = to_wb(session, receive(10, due_date=today + timedelta(days=1), priority=1))
    held.open_holds = 1
    at_saw = receive(10, due_date=today)
    # the operator ran a lot on WB-1 this shift: WB-1's kind is their queue
    mine = to_wb(session, receive(10))
    services.track_in(session, op_user.username, mine, step="WB", equipment="WB-1",
                      materials=["AU-1"])
    session.commit()
    page = page_of(operator.get("/station"))
    listed = re.findall(r'class="mono queue-lot-no">([^<]+)<', page)
    assert listed == [due_first.lot_no, rush.lot_no, old.lot_no, same_due_later.lot_no,
                      undated.lot_no, held.lot_no]
    assert at_saw.lot_no not in listed and mine.lot_no not in listed  # other step; running
    assert "My tools: WB-1" in page
    assert f'href="/station?lot={due_first.lot_no}"' in page
    assert "6 of 6 lots" in page


def test_the_queue_of_a_chosen_work_centre_or_step_is_kept_across_the_station(
        operator, session, receive):
    at_saw = receive(10)
    at_wb = to_wb(session, receive(10))
    page = page_of(operator.get("/station?queue=kind:saw"))
    listed = re.findall(r'class="mono queue-lot-no">([^<]+)<', page)
    assert listed == [at_saw.lot_no]
    assert f'href="/station?lot={at_saw.lot_no}&amp;queue=kind:saw"' in page
    assert '<input type="hidden" name="queue" value="kind:saw">' in page
    page = page_of(operator.get("/station?queue=step:WB"))
    assert re.findall(r'class="mono queue-lot-no">([^<]+)<', page) == [at_wb.lot_no]
    resp = operator.post("/station", data={"lot": at_saw.lot_no, "step": "SAW",
                                           "equipment": "SAW-1", "action": "track_in",
                                           "queue": "kind:saw"})
    assert resp.status_code == 303
    assert resp.headers["Location"].endswith(f"/station?lot={at_saw.lot_no}&queue=kind:saw")
    assert fresh(session, at_saw.lot_no).state == "running"


def test_a_queue_of_a_step_no_route_has_is_empty_and_stays_chosen(operator, session,
                                                                   receive):
    receive(10)
    page = page_of(operator.get("/station?queue=step:NOPE"))
    assert "No lot is waiting here." in page
    assert re.findall(r'class="mono queue-lot-no">([^<]+)<', page) == []
    assert '<option value="step:NOPE" selected>step:NOPE</option>' in page


def test_an_operator_without_runs_this_shift_is_asked_to_choose(operator, session, receive):
    receive(10)
    page = page_of(operator.get("/station"))
    assert "choose your work centre or step" in page
    assert re.findall(r'class="mono queue-lot-no">([^<]+)<', page) == []
    assert '<option value="kind:saw">' in page and '<option value="step:WB">' in page


def test_runs_of_an_earlier_shift_do_not_make_tools_the_operators(op_user, session, receive):
    lot = receive(10)
    with simulated_time(utcnow() - reads.SHIFT - timedelta(minutes=5)):
        services.track_in(session, op_user.username, lot, step="SAW", equipment="SAW-1")
    session.commit()
    assert reads.operator_tools(session, op_user) == []
    assert [t.code for t in reads.operator_tools(
        session, op_user, now=utcnow() - reads.SHIFT)] == ["SAW-1"]


# --- STDF upload at a test step --------------------------------------------------------

def test_stdf_upload_is_reachable_from_the_lot_page_and_the_station_at_a_test_step(
        operator, login, make_user, session, receive):
    lot = receive(1000)
    upload = f'href="/lots/{lot.lot_no}/stdf/upload"'
    station = page_of(operator.get(f"/station?lot={lot.lot_no}"))
    assert upload not in station  # at SAW
    assert upload in page_of(operator.get(f"/lots/{lot.lot_no}"))  # its route tests
    through_wb(session, to_wb(session, lot))
    assert fresh(session, lot.lot_no).step_code == "FT"
    assert upload in page_of(operator.get(f"/station?lot={lot.lot_no}"))
    assert operator.get(f"/lots/{lot.lot_no}/stdf/upload").status_code == 200
    # QA reads lots but does not import test data: no link
    qa = login(make_user("qa"))
    assert upload not in page_of(qa.get(f"/lots/{lot.lot_no}"))



def test_the_queue_chooser_names_a_few_of_many_tools(session, plant, app):
    choice = reads.QueueChoice(value="mine", kinds=["saw"],
                               tools=[f"T-{n}" for n in range(1, 7)])
    with app.test_request_context():
        options = dict(reads._queue_options(session, choice))
    assert options["mine"] == "My tools: T-1, T-2, T-3, T-4 and 2 more"
    assert options["kind:wire_bonder"] == "Work centre wire bonder"
    assert options["step:FT"] == "Step FT"
