"""Three journeys in a real browser: an operator tracks a lot through three steps with the
keyboard only; a QA engineer holds a lot and a second one releases it; a customer opens a
shipped lot's trace and is refused another customer's lot. Each checks the database
afterwards, not only the page."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from mes.db import session_scope
from mes.floor import services as floor
from mes.floor.models import Lot, LotEvent
from mes.floor.station import _tools
from mes.quality.models import Hold
from tests.browser.helpers import shot, skip_without_browser, submit

skip_without_browser()

RELEASE_BUTTON = "form[action$='/view'] button[type=submit]"
PASSWORDS = {"op1": "demo-op1-2026", "qa": "demo-qa-2026", "qa2": "demo-qa2-2026",
             "cyanlake": "demo-cyanlake-2026"}


def _lot_for_three_steps(app: Any) -> tuple[str, list[str]]:
    """A queued lot free of holds with three more steps ahead (not packing); a free tool
    of each step's kind is added where the demo's are all busy. Its number and the steps."""
    from mes.catalog import services as catalog

    with app.app_context(), session_scope(app) as sess:
        for lot in sess.scalars(select(Lot).where(Lot.state == "queued", Lot.open_holds == 0)
                                .order_by(Lot.id)):
            steps = floor.route_steps(lot)[lot.step_seq - 1:lot.step_seq + 2]
            if len(steps) < 3 or any(s.kind == "pack" or not s.equipment_kind
                                     for s in steps):
                continue
            for step in steps:
                if not any(t.available for t in _tools(
                        sess, step, floor.durable_need(lot, step))):
                    catalog.create_equipment(sess, "test", {
                        "code": f"BRW-{step.code}", "kind": step.equipment_kind,
                        "name": f"Browser test {step.code}", "state": "productive"})
                    sess.flush()
            return lot.lot_no, [s.code for s in steps]
    raise AssertionError("the demo plant has no queued lot with three steps ahead")


def _lot(app: Any, lot_no: str) -> tuple[Any, list[tuple[str, str | None, str | None]]]:
    with app.app_context(), session_scope(app) as sess:
        lot = sess.scalars(select(Lot).where(Lot.lot_no == lot_no)).one()
        events = [(e.kind, e.step_code, e.by) for e in sess.scalars(
            select(LotEvent).where(LotEvent.lot_id == lot.id).order_by(LotEvent.id))]
        sess.expunge(lot)
        return lot, events


def test_operator_tracks_a_lot_through_three_steps_with_the_keyboard_only(live, open_as):
    app = live["app"]
    lot_no, steps = _lot_for_three_steps(app)
    before, _ = _lot(app, lot_no)
    page = open_as("op1", PASSWORDS["op1"])
    page.goto(f"{live['url']}/station")

    def scan_lot() -> None:
        # After every success the station focuses the lot field (text selected): the
        # scanner reads the traveler again, types the number and Enter.
        assert page.evaluate("document.activeElement.name") == "lot"
        page.keyboard.type(lot_no)
        submit(page, lambda: page.keyboard.press("Enter"))

    for n, step in enumerate(steps, 1):
        scan_lot()
        assert page.locator(".station-big .mono").first.inner_text() == step
        shot(page, f"operator-{n}-{step}-scanned")
        tool = page.locator(".tool-free .tool-code").first.inner_text().strip()
        # The equipment field has the focus; each required material field follows by Tab.
        assert page.evaluate("document.activeElement.name") == "equipment"
        page.keyboard.type(tool)
        for field in page.locator("input[name=material][required]").all():
            options = page.locator(f"#{field.get_attribute('list')} option").all()
            page.keyboard.press("Tab")
            assert page.evaluate("document.activeElement.id") == field.get_attribute("id")
            page.keyboard.type(options[0].get_attribute("value"))
        submit(page, lambda: page.keyboard.press("Enter"))
        assert page.locator(".station-error").count() == 0, page.content()[:3000]
        scan_lot()
        assert page.locator("input[name=good_qty]").count() == 1, page.content()[:3000]
        shot(page, f"operator-{n}-{step}-running")
        qty = int(page.locator("[data-balance]").get_attribute("data-qty-in"))
        # The good quantity field has the focus; Enter tracks out.
        assert page.evaluate("document.activeElement.name") == "good_qty"
        page.keyboard.type(str(qty))
        submit(page, lambda: page.keyboard.press("Enter"))
        assert page.locator(".station-error").count() == 0, page.content()[:3000]
    shot(page, "operator-done")

    after, events = _lot(app, lot_no)
    moves = [(kind, step) for kind, step, by in events[-6:] if by == "op1"]
    assert moves == [(kind, step) for step in steps for kind in ("track_in", "track_out")]
    assert after.quantity == before.quantity
    assert after.step_seq == before.step_seq + 3 or after.state == "completed"


def test_one_qa_engineer_holds_a_lot_and_a_second_one_releases_it(live, open_as):
    app = live["app"]
    with app.app_context(), session_scope(app) as sess:
        lot_no = sess.scalars(select(Lot.lot_no).where(
            Lot.state == "queued", Lot.open_holds == 0).order_by(Lot.id.desc())).first()
    qa = open_as("qa", PASSWORDS["qa"])
    qa.goto(f"{live['url']}/holds/mass")
    qa.select_option("select[name=kind]", "lots")
    qa.fill("input[name=value]", lot_no)
    qa.select_option("select[name=reason]", "HOLD-ENG")
    qa.fill("textarea[name=comment]", "Suspect wire bond pull strength")
    submit(qa, qa.get_by_role("button", name="Preview").click)
    assert qa.locator("[data-count=to_hold]").inner_text() == "1"
    shot(qa, "qa-1-preview")
    submit(qa, qa.locator("button[name=confirm]").click)
    shot(qa, "qa-2-held")
    with app.app_context(), session_scope(app) as sess:
        hold = sess.scalars(select(Hold).join(Lot).where(Lot.lot_no == lot_no,
                                                         Hold.status == "open")).one()
        hold_id = hold.id
        assert hold.placed_by == "qa"

    # The one who placed it is not offered the release form (two-person rule).
    qa.goto(f"{live['url']}/holds/{hold_id}/view")
    shot(qa, "qa-3-own-hold")
    assert qa.locator(RELEASE_BUTTON).count() == 0
    assert "two-person rule" in qa.locator(".release-refusal").inner_text()

    qa2 = open_as("qa2", PASSWORDS["qa2"])
    qa2.goto(f"{live['url']}/holds/{hold_id}/view")
    shot(qa2, "qa-4-second-engineer")
    qa2.select_option("select[name=disposition]", "release")
    qa2.fill("textarea[name=comment]", "Pull test passed on 5 units")
    # qa2 works in Chinese (the demo's second QA engineer): no button text here.
    submit(qa2, qa2.locator(RELEASE_BUTTON).click)
    shot(qa2, "qa-4-released")
    with app.app_context(), session_scope(app) as sess:
        hold = sess.get(Hold, hold_id)
        assert (hold.status, hold.released_by, hold.disposition) == ("released", "qa2",
                                                                     "release")
        assert sess.scalars(select(Lot).where(Lot.lot_no == lot_no)).one().open_holds == 0


def test_a_customer_sees_a_shipped_lots_trace_and_not_another_customers_lot(live, open_as):
    own, other = live["shipped"].get("CYANLAKE"), live["shipped"].get("FERROQUILL")
    assert own and other, live["shipped"]
    page = open_as("cyanlake", PASSWORDS["cyanlake"])
    resp = page.goto(f"{live['url']}/trace/lots/{own}")
    assert resp.status == 200
    assert own in page.locator("main").inner_text()
    shot(page, "customer-1-own-trace")
    resp = page.goto(f"{live['url']}/trace/lots/{other}")
    assert resp.status in (403, 404)
    assert other not in page.locator("main").inner_text() or resp.status == 404
    shot(page, "customer-2-other-refused")
    api = page.request.get(f"{live['url']}/api/v1/lots/{other}/trace")
    assert api.status in (403, 404)
