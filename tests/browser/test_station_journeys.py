"""The operator station in a real browser: an operator opens the queue of a work centre and
taps its most urgent lot, then scans a lot and a tool typed in lower case and tracks the lot
in; an operator working in Chinese scans a held lot and is told, in Chinese, what to do
instead of being shown a form. Each checks the database afterwards, not only the page."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select

from mes.catalog.models import RouteStep
from mes.db import session_scope
from mes.floor.models import Lot
from mes.floor.station import station_lot
from tests.browser.helpers import shot, skip_without_browser, submit

skip_without_browser()

PASSWORDS = {"op1": "demo-op1-2026", "op2": "demo-op2-2026"}


def _urgent_first(app: Any, kind: str) -> list[str]:
    """The queued lots at steps served by `kind`, in the order the station promises (held
    last, earliest due date, priority, longest waiting), read here on their own."""
    with app.app_context(), session_scope(app) as sess:
        lots = sess.execute(
            select(Lot.lot_no, Lot.open_holds, Lot.due_date, Lot.priority, Lot.arrived_at,
                   Lot.id)
            .join(RouteStep, (RouteStep.route_id == Lot.route_id)
                  & (RouteStep.seq == Lot.step_seq))
            .where(Lot.state == "queued", RouteStep.equipment_kind == kind)).all()
    lots.sort(key=lambda r: (r[1] > 0, r[2] is None, r[2] or date.min, r[3], r[4], r[5]))
    return [r[0] for r in lots]


def _ready_lot(app: Any) -> tuple[str, str, str, list[str]]:
    """A queued lot that can be tracked in now, with a free tool and the material lots it
    needs: (lot, step, tool, materials)."""
    with app.app_context(), session_scope(app) as sess, app.test_request_context():
        for lot in sess.scalars(select(Lot).where(Lot.state == "queued", Lot.open_holds == 0)
                                .order_by(Lot.id.desc())):
            view = station_lot(sess, lot)
            if view.can_track_in and view.available_tools:
                materials = [view.material_lots[name][0].code for name in view.step.materials]
                return (lot.lot_no, view.step.code, view.available_tools[0].code, materials)
    raise AssertionError("the demo plant has no lot ready for track-in")


def test_operator_opens_a_work_centres_queue_and_scans_codes_in_lower_case(live, open_as):
    app = live["app"]
    page = open_as("op1", PASSWORDS["op1"])
    page.goto(f"{live['url']}/station")
    shot(page, "station-1-queue")

    # The queue of a chosen work centre: choosing submits the chooser.
    kind = "wire_bonder"
    expected = _urgent_first(app, kind)
    assert expected, "no lot waits at the wire bonders"
    submit(page, lambda: page.select_option("#f-queue", f"kind:{kind}"))
    listed = [el.inner_text().strip() for el in page.locator(".queue-lot-no").all()]
    assert listed == expected[:len(listed)] and listed
    shot(page, "station-2-work-centre-queue")

    # One tap opens the most urgent lot at the station, keeping the chosen queue.
    submit(page, page.locator(".queue-open").first.click)
    assert page.locator("#station-lot-no").inner_text() == expected[0]
    assert f"queue=kind:{kind}" in page.url
    assert page.locator(".queue-current .queue-lot-no").inner_text() == expected[0]

    # A lot number, a tool and a material lot typed in lower case are found.
    lot_no, step, tool, materials = _ready_lot(app)
    page.locator("#f-lot").fill("")
    page.locator("#f-lot").focus()
    page.keyboard.type(lot_no.lower())
    submit(page, lambda: page.keyboard.press("Enter"))
    assert page.locator("#station-lot-no").inner_text() == lot_no
    assert page.evaluate("document.activeElement.name") == "equipment"
    page.keyboard.type(tool.lower())
    for material in materials:
        page.keyboard.press("Tab")
        page.keyboard.type(material.lower())
    shot(page, "station-3-lower-case-scan")
    submit(page, lambda: page.keyboard.press("Enter"))
    assert page.locator(".station-error").count() == 0, page.content()[:3000]
    with app.app_context(), session_scope(app) as sess:
        lot = sess.scalars(select(Lot).where(Lot.lot_no == lot_no)).one()
        assert (lot.state, lot.step_code) == ("running", step)
        assert lot.equipment is not None and lot.equipment.code == tool


def test_a_chinese_operator_scans_a_held_lot_and_is_told_what_to_do(live, open_as):
    app = live["app"]
    with app.app_context(), session_scope(app) as sess:
        held = sess.scalars(select(Lot).where(Lot.state == "queued", Lot.open_holds > 0)
                            .order_by(Lot.id)).first()
        assert held is not None, "the demo plant has no held lot in the queue"
        lot_no, before = held.lot_no, (held.state, held.step_code, held.open_holds,
                                       held.version)
    page = open_as("op2", PASSWORDS["op2"])  # reads the interface in Chinese
    page.goto(f"{live['url']}/station")
    page.keyboard.type(lot_no.lower())
    submit(page, lambda: page.keyboard.press("Enter"))
    assert page.locator("#station-lot-no").inner_text() == lot_no
    blocked = page.locator(".blockers").inner_text()
    assert "已阻止" in blocked
    assert "下一步" in blocked and "把批次放到扣留架上并通知 QA" in blocked
    # No form: nothing to fill in, and the scan field keeps the focus for the next lot.
    assert page.locator("input[name=equipment]").count() == 0
    assert page.locator("button[value=track_in]").count() == 0
    assert page.evaluate("document.activeElement.name") == "lot"
    shot(page, "station-4-held-lot-zh")
    with app.app_context(), session_scope(app) as sess:
        lot = sess.scalars(select(Lot).where(Lot.lot_no == lot_no)).one()
        assert (lot.state, lot.step_code, lot.open_holds, lot.version) == before
