"""Shop-floor pages: receive, lot page, traveler, operator station, WIP board, split, merge
and the moisture clock actions. The pages call the same services as the API; these tests
check what a person sees and that a refused form changes nothing."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from mes.audit.models import AuditEvent
from mes.auth.permissions import ROLE_PERMISSIONS, Permission, Role
from mes.catalog.models import Equipment, MaterialLot, ReasonCode
from mes.db import simulated_time, utcnow
from mes.floor import services
from mes.floor.models import Lot, LotEdge, LotEvent, LotReject, MaterialUse, StepRun, Wafer
from mes.quality.models import Hold, MoistureClock
from tests.floor.helpers import is_test_step, record_and_close, track_out_as_proposed
from tests.helpers import refused, row_counts
from tests.quality.helpers import quality_state

FLOOR_TABLES = (Lot, Wafer, StepRun, LotReject, LotEvent, LotEdge, MaterialUse, AuditEvent)


def text(resp: Any) -> str:
    return resp.get_data(as_text=True)


def fresh(session, lot_no: str) -> Lot:
    session.expire_all()
    return session.scalars(select(Lot).where(Lot.lot_no == lot_no)).one()


def runs_of(session, lot: Lot) -> list[StepRun]:
    session.expire_all()
    return list(session.scalars(select(StepRun).where(StepRun.lot_id == lot.id)))


def events_of(session, lot: Lot) -> list[str]:
    session.expire_all()
    return list(session.scalars(select(LotEvent.kind).where(LotEvent.lot_id == lot.id)
                                .order_by(LotEvent.id)))


def move(session, lot: Lot, equipment: str, good: int | None = None,
         materials: tuple[str, ...] = ()) -> None:
    """Track the lot in and out of its current step through the services."""
    step, qty = lot.step_code, lot.quantity
    good = qty if good is None else good
    services.track_in(session, "op", lot, step=step, equipment=equipment, materials=materials)
    if is_test_step(lot):
        # A test step: the bins recorded, the insertion closed, tracked out as proposed.
        failing = [{"bin": 8, "count": qty - good, "passed": False}] if good < qty else []
        proposal = record_and_close(session, lot, [{"bin": 1, "count": good, "passed": True},
                                                   *failing])
        track_out_as_proposed(session, lot, proposal)
        return
    services.track_out(session, "op", lot, step=step, good_qty=good,
                       rejects=[{"reason": "R-SCRATCH", "qty": qty - good}] if good < qty else [])
    session.commit()


def hold(session, lot: Lot, comment: str = "Suspect wire bond lifts") -> Hold:
    reason = session.scalars(select(ReasonCode).where(ReasonCode.code == "H-ENG")).one()
    placed = Hold(lot_id=lot.id, reason_id=reason.id, comment=comment, placed_by="qa1",
                  step_code=lot.step_code)
    session.add(placed)
    lot.open_holds = 1
    session.commit()
    return placed


@pytest.fixture
def operator(login, make_user):
    return login(make_user("operator"))


@pytest.fixture
def planner(login, make_user):
    return login(make_user("planner"))


# --- who may open which page -----------------------------------------------------------

PAGES = [("/lots/receive", Permission.LOT_RECEIVE), ("/station", Permission.LOT_TRACK),
         ("/wip", Permission.LOT_READ), ("/lots/{lot}", Permission.LOT_READ),
         ("/lots/{lot}/traveler", Permission.LOT_READ)]


@pytest.mark.parametrize(("path", "permission"), PAGES)
@pytest.mark.parametrize("role", [r for r in Role if r != Role.CUSTOMER])
def test_pages_render_for_roles_holding_their_permission(path, permission, role, client, login,
                                                         make_user, receive):
    lot = receive(100)
    resp = login(make_user(role.value)).get(path.format(lot=lot.lot_no))
    expected = 200 if permission in ROLE_PERMISSIONS[role] else 403
    assert resp.status_code == expected, (path, role)


def test_planner_cannot_open_the_station(planner, plant):
    assert Permission.LOT_TRACK not in ROLE_PERMISSIONS[Role.PLANNER]
    assert planner.get("/station").status_code == 403
    assert planner.post("/station", data={"lot": "X", "action": "track_in"}).status_code == 403


def test_customer_gets_403_from_the_plants_lot_pages_whoever_owns_the_lot(
        client, login, make_user, receive, session):
    """Customers read their lots in the portal and the trace pages; the plant's lot page,
    traveler and WIP board refuse them by role, before any lookup (nothing is learnt of
    which lots exist)."""
    own = receive(100)
    other = receive(100, product="P2", customer="IND", fab_lot="FAB2")
    customer = login(make_user("customer", customer="OEM"))
    for path in (f"/lots/{own.lot_no}", f"/lots/{own.lot_no}/traveler",
                 f"/lots/{other.lot_no}", f"/lots/{other.lot_no}/traveler",
                 "/lots/NO-SUCH-LOT", "/wip", "/station", "/lots/receive"):
        resp = customer.get(path)
        assert resp.status_code == 403, path
        assert "FAB2" not in text(resp) and own.lot_no not in text(resp)
    assert 'href="/wip"' not in text(customer.get("/"))
    assert customer.get(f"/trace/lots/{own.lot_no}").status_code == 200
    assert customer.get(f"/trace/lots/{other.lot_no}").status_code == 404


def test_nav_shows_floor_pages_by_role(login, make_user, plant):
    page = text(login(make_user("operator")).get("/"))
    assert 'href="/station"' in page and 'href="/wip"' in page
    assert 'href="/lots/receive"' not in page
    page = text(login(make_user("planner")).get("/"))
    assert 'href="/lots/receive"' in page and 'href="/station"' not in page


# --- receive ---------------------------------------------------------------------------

def test_receive_page_creates_the_lot_and_shows_it(planner, session, plant):
    resp = planner.post("/lots/receive", data={
        "product": "P1", "customer": "OEM", "fab_lot": "FAB9", "quantity": "1000",
        "priority": "2", "due_date": "2030-01-31", "lot_no": "",
        "wafers": "W01 600\n\nW02 400\n"})
    assert resp.status_code == 303, text(resp)[:2000]
    lot_no = resp.location.rsplit("/", 1)[1]
    assert re.fullmatch(r"L\d{6}-\d{4}", lot_no)
    lot = fresh(session, lot_no)
    assert (lot.quantity, lot.step_code, lot.state, lot.priority, lot.due_date) == \
        (1000, "SAW", "queued", 2, date(2030, 1, 31))
    assert sorted(session.scalars(select(Wafer.wafer_id).where(Wafer.fab_lot == "FAB9"))) == \
        ["W01", "W02"]
    assert events_of(session, lot) == ["receive"]
    page = text(planner.get(resp.location))
    assert f"Lot {lot_no} received" in page and "W01" in page and "FAB9" in page


def test_receive_page_shows_field_errors_with_422_and_creates_nothing(planner, session, plant):
    page = refused(session, lambda: planner.post("/lots/receive", data={
        "product": "P1", "customer": "OEM", "fab_lot": "", "quantity": "0", "priority": "9",
        "wafers": "W01 600\nW02 abc\nW03 1 2"}), 422)
    assert "Missing data for required field." in page  # fab lot
    assert "Line 2:" in page and "Line 3: write a wafer ID" in page
    assert 'value="W01 600' not in page and "W01 600\nW02 abc" in page  # textarea kept


def test_receive_page_shows_the_services_refusal_beside_the_field(planner, session, plant):
    page = refused(session, lambda: planner.post("/lots/receive", data={
        "product": "P1", "customer": "OEM", "fab_lot": "F1", "quantity": "1000",
        "priority": "3", "wafers": "W01 600\nW02 300"}), 422)
    assert "Wafers hold 900 dies, the lot 1000." in page
    page = refused(session, lambda: planner.post("/lots/receive", data={
        "product": "P1", "customer": "IND", "fab_lot": "F1", "quantity": "10",
        "priority": "3"}), 422)
    assert "Product P1 belongs to OEM." in page


def test_receive_page_refuses_a_duplicate_lot_number_with_409(planner, session, receive):
    receive(10, lot_no="DUP-1")
    page = refused(session, lambda: planner.post("/lots/receive", data={
        "product": "P1", "customer": "OEM", "fab_lot": "F7", "quantity": "10",
        "priority": "3", "lot_no": "DUP-1"}), 409)
    assert "Lot DUP-1 exists already." in page


# --- lot page and traveler -------------------------------------------------------------

def test_lot_page_shows_progress_history_materials_and_equipment(operator, session, receive):
    lot = receive(1000, wafers=[{"wafer_id": "W7", "die_qty": 1000}])
    services.track_in(session, "op1", lot, step="SAW", equipment="SAW-1")
    services.track_out(session, "op1", lot, step="SAW", good_qty=990,
                       rejects=[{"reason": "R-SCRATCH", "qty": 10}])
    services.track_in(session, "op2", lot, step="WB", equipment="WB-1", materials=["AU-1"])
    session.commit()
    page = text(operator.get(f"/lots/{lot.lot_no}"))
    # route progress: SAW done with its run, WB current (running), FT and PACK to do
    assert re.search(r'class="step-done".*?SAW-1.*?op1.*?990.*?R-SCRATCH</span> × 10', page,
                     re.S)
    assert re.search(r'class="step-current" aria-current="step".*?WB-1.*?op2', page, re.S)
    assert page.count('class="step-todo"') == 2
    # history, materials consumed, equipment used
    assert "Track-out" in page and "Yield 99.0 %" in page and "Next step:" in page
    assert re.search(r"AU-1</td>\s*<td>bonding wire</td>\s*<td class=\"mono\">WB", page)
    assert "W7" in page and "FAB1" in page
    assert f'href="/station?lot={lot.lot_no}"' in page  # the operator may track it
    assert "style=" not in page and "<script>" not in page


def test_lot_page_shows_holds_and_genealogy(operator, session, receive):
    lot = receive(1000)
    services.split_lot(session, "planner", lot, [600, 400])
    session.commit()
    hold(session, lot, comment="Wire pull test failed")
    page = text(operator.get(f"/lots/{lot.lot_no}"))
    assert "On hold" in page and "H-ENG" in page and "Wire pull test failed" in page
    assert f'href="/lots/{lot.lot_no}.01"' in page
    child = text(operator.get(f"/lots/{lot.lot_no}.01"))
    assert f'href="/lots/{lot.lot_no}"' in child


def test_traveler_has_the_lot_number_a_qr_code_and_sign_off_rows(operator, receive):
    lot = receive(500, wafers=[{"wafer_id": "W1", "die_qty": 500}])
    resp = operator.get(f"/lots/{lot.lot_no}/traveler")
    page = text(resp)
    assert resp.status_code == 200
    assert "<svg" in page and 'class="qr"' in page and f"<title>{lot.lot_no}</title>" in page
    assert 'class="traveler-lot mono">' + lot.lot_no in page
    assert page.count('<td class="signoff"></td>') == 4 * 5  # 4 steps x 5 sign-off columns
    assert "Gate driver" in page and "W1" in page and "FAB1" in page
    assert "style=" not in page


# --- operator station: what a scan shows -----------------------------------------------

def test_station_scan_of_a_queued_lot_shows_step_needs_and_the_track_in_form(operator,
                                                                           receive):
    lot = receive(1000)
    page = text(operator.get(f"/station?lot={lot.lot_no}"))
    assert "Ready for track-in at SAW." in page
    assert "SAW-1" in page and 'name="equipment"' in page and 'value="track_in"' in page
    # the equipment field, not the lot field, takes the next scan
    assert re.search(r'id="f-equipment"[^>]*autofocus', page)
    assert not re.search(r'id="f-lot"[^>]*autofocus', page)


def test_station_scan_of_a_held_lot_shows_the_hold_reason_and_no_form(operator, session,
                                                                    receive):
    lot = receive(1000)
    hold(session, lot, comment="Suspect epoxy lot")
    resp = operator.get(f"/station?lot={lot.lot_no}")
    page = text(resp)
    assert resp.status_code == 200
    assert "Blocked: this lot cannot be tracked in now" in page
    assert f"Lot {lot.lot_no} is on hold" in page
    assert "H-ENG" in page and "Suspect epoxy lot" in page and "qa1" in page
    assert 'value="track_in"' not in page


def test_station_scan_shows_that_no_equipment_of_the_kind_is_available(operator, session,
                                                                      receive):
    lot = receive(1000)
    move(session, lot, "SAW-1")
    for code in ("WB-1", "WB-2"):
        session.scalars(select(Equipment).where(Equipment.code == code)).one().state = \
            "scheduled_down"
    session.commit()
    page = text(operator.get(f"/station?lot={lot.lot_no}"))
    assert "No wire bonder is available for step WB." in page
    assert "WB-3 is unscheduled down." in page and "WB-1 is scheduled down." in page
    # the material the step needs is named before anything is typed
    assert "Step WB needs a bonding wire lot." in page
    # blocked: no track-in form, and what to do instead (no tool is up: call maintenance)
    assert 'value="track_in"' not in page and 'id="f-material-1"' not in page
    assert "Every wire bonder is down or in engineering: call maintenance" in page


def test_station_scan_offers_usable_material_lots_and_says_when_there_is_none(
        operator, session, receive):
    lot = receive(1000)
    move(session, lot, "SAW-1")
    page = text(operator.get(f"/station?lot={lot.lot_no}"))
    assert '<option value="AU-1">' in page and '<option value="AU-OLD">' not in page
    assert "No usable wire lot" not in page
    session.scalars(select(MaterialLot).where(MaterialLot.code == "AU-1")).one().expires_at = \
        utcnow() - timedelta(hours=1)
    session.commit()
    page = text(operator.get(f"/station?lot={lot.lot_no}"))
    # Every wire lot in stock has expired: the station names the last one to expire.
    assert "Every wire lot in stock has expired (the last one, AU-1, on " in page


def test_station_scan_of_a_busy_tool_lists_it_as_not_available(operator, session, receive):
    lot, other = receive(1000), receive(500, fab_lot="FAB2")
    move(session, lot, "SAW-1")
    move(session, other, "SAW-1")
    services.track_in(session, "op", other, step="WB", equipment="WB-1", materials=["AU-1"])
    session.commit()
    page = text(operator.get(f"/station?lot={lot.lot_no}"))
    assert "WB-1 is running another lot." in page
    assert "No wire bonder is available" not in page  # WB-2 is on standby and free


def test_station_scan_of_a_closed_lot_shows_why(operator, session, receive):
    lot = receive(10)
    for tool in ("SAW-1", "WB-1", "TST-1", "TR-1"):
        move(session, lot, tool, materials=("AU-1",) if tool == "WB-1" else ())
    page = text(operator.get(f"/station?lot={lot.lot_no}"))
    assert f"Lot {lot.lot_no} is completed." in page and 'name="action"' not in page


def test_station_scan_of_an_unknown_lot_is_404_with_the_scan_kept(operator, plant):
    resp = operator.get("/station?lot=NO-SUCH")
    assert resp.status_code == 404
    assert "No lot NO-SUCH." in text(resp) and 'value="NO-SUCH"' in text(resp)


# --- operator station: track-in --------------------------------------------------------

def test_track_in_via_the_station_form(operator, session, receive):
    lot = receive(1000)
    resp = operator.post("/station", data={"lot": lot.lot_no, "step": "SAW",
                                           "equipment": "SAW-1", "material": ["", ""],
                                           "action": "track_in"})
    assert resp.status_code == 303
    assert resp.location == f"/station?lot={lot.lot_no}"
    lot = fresh(session, lot.lot_no)
    assert lot.state == "running" and lot.equipment.code == "SAW-1"
    [run] = runs_of(session, lot)
    assert (run.step_code, run.qty_in, run.finished_at) == ("SAW", 1000, None)
    assert events_of(session, lot) == ["receive", "track_in"]
    page = text(operator.get(resp.location))
    assert f"{lot.lot_no} tracked in on SAW-1 at SAW." in page
    # running now: the track-out form, and the next scan goes to the lot field
    assert 'name="good_qty"' in page and re.search(r'id="f-lot"[^>]*autofocus', page)


def test_track_in_via_the_station_with_the_required_material(operator, session, receive):
    lot = receive(1000)
    move(session, lot, "SAW-1")
    resp = operator.post("/station", data={"lot": lot.lot_no, "step": "WB",
                                           "equipment": "WB-2", "material": ["AU-1", ""],
                                           "action": "track_in"})
    assert resp.status_code == 303
    lot = fresh(session, lot.lot_no)
    assert lot.state == "running"
    uses = session.scalars(select(MaterialUse).where(MaterialUse.lot_id == lot.id)).all()
    assert [u.step_code for u in uses] == ["WB"]


def test_refused_track_in_shows_the_message_with_409_and_changes_nothing(operator, session,
                                                                         receive):
    lot = receive(1000)
    page = refused(session, lambda: operator.post("/station", data={
        "lot": lot.lot_no, "step": "SAW", "equipment": "TST-1", "action": "track_in"}), 409)
    assert "TST-1 is a tester; step SAW needs a saw." in page
    assert 'value="TST-1"' in page  # the scan is kept
    assert runs_of(session, lot) == [] and fresh(session, lot.lot_no).state == "queued"


def test_track_in_without_the_required_material_is_refused_and_focuses_it(operator, session,
                                                                         receive):
    lot = receive(1000)
    move(session, lot, "SAW-1")
    page = refused(session, lambda: operator.post("/station", data={
        "lot": lot.lot_no, "step": "WB", "equipment": "WB-1", "material": ["AU-OLD", ""],
        "action": "track_in"}), 409)
    assert "Material lot AU-OLD expired on" in page
    assert re.search(r'id="f-material-1"[^>]*value="AU-OLD"[^>]*autofocus', page)


def test_track_in_with_unknown_equipment_or_none_is_422(operator, session, receive):
    lot = receive(1000)
    def track_in(equipment: str) -> Any:
        return operator.post("/station", data={"lot": lot.lot_no, "step": "SAW",
                                               "equipment": equipment, "action": "track_in"})

    assert "Unknown equipment NOPE." in refused(session, lambda: track_in("NOPE"), 422)
    assert "Missing data for required field." in refused(session, lambda: track_in(""), 422)


def test_track_in_from_a_stale_page_is_refused_as_wrong_step(operator, session, receive):
    lot = receive(1000)
    move(session, lot, "SAW-1")  # someone else moved the lot on meanwhile
    resp = operator.post("/station", data={"lot": lot.lot_no, "step": "SAW",
                                           "equipment": "SAW-1", "action": "track_in"})
    assert resp.status_code == 409
    assert f"Lot {lot.lot_no} is at step WB, not SAW." in text(resp)
    assert fresh(session, lot.lot_no).state == "queued"


def test_station_refuses_a_track_in_of_a_held_lot(operator, session, receive):
    lot = receive(1000)
    hold(session, lot)
    resp = operator.post("/station", data={"lot": lot.lot_no, "step": "SAW",
                                           "equipment": "SAW-1", "action": "track_in"})
    assert resp.status_code == 409 and "is on hold" in text(resp)
    assert runs_of(session, lot) == []


# --- operator station: track-out -------------------------------------------------------

def _running(session, receive, qty: int = 1000) -> Lot:
    lot = receive(qty)
    services.track_in(session, "op", lot, step="SAW", equipment="SAW-1")
    session.commit()
    return lot


def test_track_out_via_the_station_form_with_rejects_moves_the_lot(operator, session,
                                                                   receive):
    lot = _running(session, receive)
    resp = operator.post("/station", data={
        "lot": lot.lot_no, "step": "SAW", "good_qty": "990", "action": "track_out",
        "reject_reason": ["R-SCRATCH", "", "R-BALL"], "reject_qty": ["6", "", "4"]})
    assert resp.status_code == 303 and resp.location == f"/station?lot={lot.lot_no}"
    lot = fresh(session, lot.lot_no)
    assert (lot.state, lot.step_code, lot.quantity) == ("queued", "WB", 990)
    [run] = runs_of(session, lot)
    assert (run.good_qty, run.reject_qty) == (990, 10) and run.finished_at is not None
    rejects = session.scalars(select(LotReject.qty).where(LotReject.lot_id == lot.id)
                              .order_by(LotReject.id)).all()
    assert rejects == [6, 4]
    page = text(operator.get(resp.location))
    assert (f"{lot.lot_no} tracked out of SAW: 990 good, 10 rejected. Moved to WB."
            in page)


def test_track_out_of_the_last_step_says_completed(operator, session, receive):
    lot = receive(10)
    for tool in ("SAW-1", "WB-1", "TST-1"):
        move(session, lot, tool, materials=("AU-1",) if tool == "WB-1" else ())
    services.track_in(session, "op", lot, step="PACK", equipment="TR-1")
    session.commit()
    resp = operator.post("/station", data={"lot": lot.lot_no, "step": "PACK",
                                           "good_qty": "10", "action": "track_out"})
    assert resp.status_code == 303
    assert fresh(session, lot.lot_no).state == "completed"
    assert "tracked out of PACK: 10 good, 0 rejected. Completed." in \
        text(operator.get(resp.location))


def test_track_out_quantity_mismatch_is_422_and_changes_nothing(operator, session, receive):
    lot = _running(session, receive)
    page = refused(session, lambda: operator.post("/station", data={
        "lot": lot.lot_no, "step": "SAW", "good_qty": "990", "action": "track_out",
        "reject_reason": ["R-SCRATCH", ""], "reject_qty": ["5", ""]}), 422)
    assert "Good 990 + rejects 5 = 995, but 1000 went in." in page
    assert "Good and rejects must add up to 1000." in page
    assert 'value="990"' in page and re.search(
        r'<option value="R-SCRATCH" selected>', page) and 'value="5"' in page
    lot = fresh(session, lot.lot_no)
    assert (lot.state, lot.step_code, lot.quantity) == ("running", "SAW", 1000)
    assert runs_of(session, lot)[0].finished_at is None


def test_track_out_with_a_non_reject_reason_is_422(operator, session, receive):
    lot = _running(session, receive)
    page = refused(session, lambda: operator.post("/station", data={
        "lot": lot.lot_no, "step": "SAW", "good_qty": "995", "action": "track_out",
        "reject_reason": ["H-ENG"], "reject_qty": ["5"]}), 422)
    assert "H-ENG is not a reject reason code." in page


def test_track_out_reject_row_without_a_reason_is_422(operator, session, receive):
    lot = _running(session, receive)
    resp = operator.post("/station", data={
        "lot": lot.lot_no, "step": "SAW", "good_qty": "994", "action": "track_out",
        "reject_reason": ["R-BALL", "", ""], "reject_qty": ["1", "", "5"]})
    assert resp.status_code == 422
    assert "Row 3: Reason: Missing data for required field." in text(resp)
    assert fresh(session, lot.lot_no).state == "running"


def test_station_add_row_keeps_the_values_and_adds_one_row(operator, session, receive):
    lot = _running(session, receive)
    before = row_counts(session, *FLOOR_TABLES)
    form = {"lot": lot.lot_no, "step": "SAW", "good_qty": "990", "action": "add_row",
            "reject_reason": ["R-BALL", "", ""], "reject_qty": ["10", "", ""]}
    resp = operator.post("/station", data=form)
    page = text(resp)
    assert resp.status_code == 200
    assert page.count('name="reject_qty"') == 4
    assert 'value="990"' in page and '<option value="R-BALL" selected>' in page
    assert re.search(r'id="f-reject-reason-4"[^>]*autofocus', page)
    assert row_counts(session, *FLOOR_TABLES) == before


def test_station_shows_three_reject_rows_and_the_balance_to_reach(operator, session, receive):
    lot = _running(session, receive)
    page = text(operator.get(f"/station?lot={lot.lot_no}"))
    assert page.count('name="reject_reason"') == 3
    assert 'data-qty-in="1000"' in page and 'inputmode="numeric"' in page
    assert re.search(r'id="f-good_qty"[^>]*autofocus', page)
    assert "/static/js/station.js" in page and "<script>" not in page


def test_station_post_without_a_lot_or_action_changes_nothing(operator, session, receive):
    lot = receive(10)
    refused(session, lambda: operator.post("/station", data={}), 422)
    refused(session, lambda: operator.post("/station", data={"lot": lot.lot_no}), 400)


# --- split and merge -------------------------------------------------------------------

def test_split_via_the_lot_page(operator, session, receive):
    lot = receive(1000)
    resp = operator.post(f"/lots/{lot.lot_no}/split", data={"quantities": "600, 300 100"})
    assert resp.status_code == 303 and resp.location == f"/lots/{lot.lot_no}"
    assert fresh(session, lot.lot_no).quantity == 600
    assert fresh(session, f"{lot.lot_no}.01").quantity == 300
    assert fresh(session, f"{lot.lot_no}.02").quantity == 100
    page = text(operator.get(resp.location))
    assert f"Lot {lot.lot_no} split: it keeps 600" in page


def test_split_that_does_not_add_up_is_shown_with_422_and_changes_nothing(operator, session,
                                                                          receive):
    lot = receive(1000)
    page = refused(session, lambda: operator.post(f"/lots/{lot.lot_no}/split",
                                                  data={"quantities": "600, 300"}), 422)
    assert "Must add up to 1000." in page and 'value="600, 300"' in page
    assert "Not a valid integer." in refused(session, lambda: operator.post(
        f"/lots/{lot.lot_no}/split", data={"quantities": "600, x"}), 422)
    assert fresh(session, lot.lot_no).quantity == 1000


def test_split_of_a_held_lot_is_409(operator, session, receive):
    lot = receive(1000)
    hold(session, lot)
    assert "is on hold; it cannot be split" in refused(session, lambda: operator.post(
        f"/lots/{lot.lot_no}/split", data={"quantities": "600, 400"}), 409)


def test_merge_via_the_lot_page(planner, session, receive):
    lot = receive(1000)
    services.split_lot(session, "planner", lot, [600, 300, 100])
    session.commit()
    resp = planner.post(f"/lots/{lot.lot_no}/merge",
                        data={"lots": f"{lot.lot_no}.01, {lot.lot_no}.02"})
    assert resp.status_code == 303 and resp.location == f"/lots/{lot.lot_no}"
    assert fresh(session, lot.lot_no).quantity == 1000
    assert fresh(session, f"{lot.lot_no}.01").state == "merged"
    assert "merged into" in text(planner.get(resp.location))


def test_merge_refusals_are_shown_and_change_nothing(planner, session, receive):
    lot = receive(1000)
    other = receive(500, fab_lot="FAB2")
    move(session, other, "SAW-1")
    def merge(lots: str) -> Any:
        return planner.post(f"/lots/{lot.lot_no}/merge", data={"lots": lots})

    assert f"{other.lot_no} is at WB, {lot.lot_no} at SAW." in refused(
        session, lambda: merge(other.lot_no), 409)
    assert "Unknown lot NOPE-1." in refused(session, lambda: merge("NOPE-1"), 422)
    refused(session, lambda: merge(""), 422)


def test_split_and_merge_need_their_permission(login, make_user, session, receive):
    lot = receive(1000)
    qa = login(make_user("qa"))
    assert qa.post(f"/lots/{lot.lot_no}/split", data={"quantities": "600, 400"}
                   ).status_code == 403
    assert fresh(session, lot.lot_no).quantity == 1000
    assert "Split into quantities" not in text(qa.get(f"/lots/{lot.lot_no}"))


# --- WIP board -------------------------------------------------------------------------

def _summary(page: str) -> dict[str, tuple[int, int]]:
    rows = re.findall(r'<tr data-step="([^"]+)".*?data-lots>(\d+)</td>\s*'
                      r'<td class="num" data-quantity>(\d+)</td>', page, re.S)
    return {step: (int(n), int(q)) for step, n, q in rows}


def _listed(page: str) -> list[str]:
    return re.findall(r'<tr class="[^"]*" data-lot="([^"]+)"', page)


def test_wip_board_counts_lots_per_step_in_route_order(planner, session, receive):
    a, b, c = receive(100), receive(200, fab_lot="F2"), receive(300, fab_lot="F3")
    move(session, c, "SAW-1", good=290)
    d = receive(50, fab_lot="F4", product="P2", customer="IND")
    move(session, d, "SAW-1")
    services.track_in(session, "op", d, step="WB", equipment="WB-1", materials=["AU-1"])
    session.commit()
    page = text(planner.get("/wip"))
    assert _summary(page) == {"SAW": (2, 300), "WB": (2, 340)}
    assert list(_summary(page)) == ["SAW", "WB"]
    assert sorted(_listed(page)) == sorted(x.lot_no for x in (a, b, c, d))


def test_wip_board_filters_like_the_api(planner, api, session, receive):
    receive(100)
    other = receive(50, fab_lot="F4", product="P2", customer="IND")
    held = receive(70, fab_lot="F5")
    hold(session, held)
    for query, expected in [("product=P2", [other.lot_no]), ("customer=IND", [other.lot_no]),
                            ("on_hold=true", [held.lot_no]), ("state=running", [])]:
        page = text(planner.get(f"/wip?{query}"))
        assert _listed(page) == expected, query
        from_api = [x["lot_no"] for x in api("planner").get(f"/lots?{query}").get_json()["items"]]
        assert from_api == expected, query
    page = text(planner.get("/wip?on_hold=true"))
    assert 'class="on-hold" data-lot' in page and "On hold" in page
    assert _summary(page) == {"SAW": (1, 70)}


def test_wip_board_refuses_an_invalid_filter_with_422(planner, plant):
    resp = planner.get("/wip?state=flying")
    assert resp.status_code == 422 and "Must be one of" in text(resp)


def test_wip_board_sorts_by_priority_and_due_date_and_marks_late_lots(planner, session,
                                                                      receive):
    # Received before its due date, which has passed since.
    with simulated_time(utcnow() - timedelta(days=4)):
        late = receive(10, fab_lot="F1", due_date=date.today() - timedelta(days=2))
    urgent = receive(10, fab_lot="F2", priority=1)
    later = receive(10, fab_lot="F3", due_date=date.today() + timedelta(days=20))
    page = text(planner.get("/wip"))
    assert _listed(page) == [urgent.lot_no, late.lot_no, later.lot_no]
    assert f'class="late" data-lot="{late.lot_no}"' in page
    assert f'class="" data-lot="{later.lot_no}"' in page


def test_wip_board_pages_by_fifty(planner, session, receive):
    for i in range(53):
        receive(10, fab_lot=f"F{i}", lot_no=f"LOT-{i:03d}")
    first = text(planner.get("/wip"))
    assert len(_listed(first)) == 50
    assert _summary(first) == {"SAW": (53, 530)}  # the summary counts every page
    next_url = re.search(r'href="([^"]+)" rel="next"', first).group(1).replace("&amp;", "&")
    second = text(planner.get(next_url))
    assert len(_listed(second)) == 3 and 'rel="next"' not in second
    assert not set(_listed(first)) & set(_listed(second))
    assert "Back to the first page" in second


def test_lot_page_moisture_actions(client, make_user, login, receive, session):
    receive(100, lot_no="LOT-M")
    login(make_user("operator"))
    assert "Moisture floor life" in text(client.get("/lots/LOT-M"))
    assert client.post("/lots/LOT-M/moisture", data={"action": "open"}).status_code == 303
    assert session.scalars(select(MoistureClock.state)).one() == "open"
    before = quality_state(session)
    again = client.post("/lots/LOT-M/moisture", data={"action": "open"})
    assert again.status_code == 409 and "already" in text(again)
    session.expire_all()
    assert quality_state(session) == before
    history = text(client.get("/lots/LOT-M"))
    assert "Dry pack opened" in history


def test_lot_page_shows_no_clock_and_records_a_bake_against_the_table(client, make_user, login,
                                                                      receive, session):
    receive(100, lot_no="LOT-M")
    login(make_user("operator"))
    page = text(client.get("/lots/LOT-M"))
    assert "No clock (not started)" in page and "No exposure recorded" in page
    before = quality_state(session)
    short = client.post("/lots/LOT-M/moisture", data={"action": "bake", "temperature_c": "125",
                                                      "hours": "8"})
    assert short.status_code == 422 and "48" in text(short)   # unknown thickness: ≤ 4.5 mm
    session.expire_all()
    assert quality_state(session) == before
    done = client.post("/lots/LOT-M/moisture", data={"action": "bake", "temperature_c": "125",
                                                     "hours": "48"})
    assert done.status_code == 303
    assert session.scalars(select(MoistureClock.state)).one() == "open"
    assert "Last baked" in text(client.get("/lots/LOT-M"))
