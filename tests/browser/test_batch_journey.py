"""A batch track-in at the operator station in a real browser: an operator scans a lot
queued at a batch tool's step, ticks a second queued lot, and loads both onto the oven
together; the database shows both running on it with one place less free."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from mes.catalog.models import Equipment
from mes.db import session_scope
from mes.floor.models import Lot
from mes.floor.station import station_lot
from tests.browser.helpers import shot, skip_without_browser, submit

skip_without_browser()

PASSWORD = "demo-op1-2026"


def _batch_ready(app: Any) -> tuple[str, str, str, int]:
    """A queued lot offered a batch track-in with another queued lot beside it, and a
    batch tool with at least two places free: (lot, other lot, tool, lots running)."""
    with app.app_context(), session_scope(app) as sess, app.test_request_context():
        for lot in sess.scalars(select(Lot).where(Lot.state == "queued", Lot.open_holds == 0)
                                .order_by(Lot.id)):
            view = station_lot(sess, lot)
            tools = [(tool, free) for tool, free in view.batch_tools if free >= 2]
            if view.can_track_in and tools and len(view.batch_lots) >= 2 \
                    and not view.material_types:
                tool = tools[0][0]
                return lot.lot_no, view.batch_lots[1].lot_no, tool.code, tool.lots_running
    raise AssertionError("the demo plant has no lot ready for a batch track-in")


def test_operator_loads_two_queued_lots_onto_a_batch_oven_together(live, open_as):
    app = live["app"]
    lot_no, other, tool, running = _batch_ready(app)
    page = open_as("op1", PASSWORD)
    page.goto(f"{live['url']}/station")
    page.keyboard.type(lot_no)
    submit(page, lambda: page.keyboard.press("Enter"))
    assert page.locator("#station-lot-no").inner_text() == lot_no
    form = page.locator("[data-batch-form]")
    assert form.count() == 1
    form.locator("#f-batch_equipment").select_option(tool)
    assert form.locator(f"input[name=batch_lot][value='{lot_no}']").is_checked()
    form.locator(f"input[name=batch_lot][value='{other}']").check()
    shot(page, "station-batch-1-chosen")
    submit(page, form.locator("button[value=batch_track_in]").click)
    assert page.locator(".station-error").count() == 0, page.content()[:3000]
    shot(page, "station-batch-2-done")
    with app.app_context(), session_scope(app) as sess:
        lots = sess.scalars(select(Lot).where(Lot.lot_no.in_([lot_no, other]))).all()
        assert {(lot.state, lot.equipment.code if lot.equipment else None)
                for lot in lots} == {("running", tool)}
        oven = sess.scalars(select(Equipment).where(Equipment.code == tool)).one()
        assert (oven.lots_running, oven.state) == (running + 2, "productive")
