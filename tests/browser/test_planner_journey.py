"""The planner's journey in a real browser: a due date before the plant's today is refused
beside its field and nothing is received; the lot received with a later date is split,
its wafers divided as the planner chose; the genealogy picture writes the units on the split
edge and its legend explains the lines. The database is checked, not only the page."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from mes.db import session_scope
from mes.floor import services as floor
from mes.floor.models import Lot, LotEdge, LotWafer, Wafer
from tests.browser.helpers import shot, skip_without_browser, submit

skip_without_browser()

FAB_LOT = "FAB-JOURNEY-77"


def _wafers(sess, lot: Lot) -> list[str]:
    return sorted(sess.scalars(select(Wafer.wafer_id).join(
        LotWafer, LotWafer.wafer_pk == Wafer.id).where(LotWafer.lot_id == lot.id)))


def _fill_receive(page, url: str, due: str) -> None:
    page.goto(f"{url}/lots/receive")
    page.select_option("select[name=product]", "CS-0850")
    page.select_option("select[name=customer]", "FERROQUILL")
    page.fill("input[name=fab_lot]", FAB_LOT)
    page.fill("input[name=quantity]", "2000")
    page.fill("input[name=due_date]", due)
    page.fill("textarea[name=wafers]", "W01 500\nW02 500\nW03 500\nW04 500")


def test_planner_receives_with_a_due_date_splits_by_wafers_and_reads_the_genealogy(
        live, open_as):
    app, url = live["app"], live["url"]
    with app.app_context():
        today = floor.plant_date()
    planner = open_as("planner", "demo-planner-2026")

    # A due date before the plant's today: the date field itself refuses it (its earliest
    # day is the plant's today) and nothing is sent; sent anyway (the field's limit taken
    # away), the server refuses it beside the field. Nothing is received either way.
    _fill_receive(planner, url, (today - timedelta(days=1)).isoformat())
    due = planner.locator("input[name=due_date]")
    assert due.get_attribute("min") == today.isoformat()
    planner.get_by_role("button", name="Receive lot").click()
    assert due.evaluate("e => e.validity.rangeUnderflow")
    assert planner.url.endswith("/lots/receive")
    due.evaluate("e => e.removeAttribute('min')")
    submit(planner, planner.get_by_role("button", name="Receive lot").click)
    assert "is before today" in planner.locator(".field.has-error").first.inner_text()
    shot(planner, "planner-0-past-due-date")
    with app.app_context(), session_scope(app) as sess:
        assert sess.scalar(select(func.count()).select_from(Lot)
                           .where(Lot.fab_lot == FAB_LOT)) == 0

    # A week ahead: received, on its lot page.
    _fill_receive(planner, url, (today + timedelta(days=7)).isoformat())
    submit(planner, planner.get_by_role("button", name="Receive lot").click)
    with app.app_context(), session_scope(app) as sess:
        lot_no = sess.scalars(select(Lot.lot_no).where(Lot.fab_lot == FAB_LOT)).one()
    assert planner.url.endswith(f"/lots/{lot_no}")

    # Split 1,200 / 800, the new lot taking wafers W03 and W04.
    planner.fill("#f-split", "1200, 800")
    planner.fill("#f-split-wafers", "W03 W04")
    shot(planner, "planner-1-split")
    submit(planner, planner.locator("form[action$='/split'] button[type=submit]").click)
    with app.app_context(), session_scope(app) as sess:
        parent = sess.scalars(select(Lot).where(Lot.lot_no == lot_no)).one()
        edge = sess.scalars(select(LotEdge).where(LotEdge.parent_id == parent.id)).one()
        child = sess.get(Lot, edge.child_id)
        assert (parent.quantity, child.quantity, edge.qty) == (1200, 800, 800)
        assert _wafers(sess, parent) == ["W01", "W02"]
        assert _wafers(sess, child) == ["W03", "W04"]
        child_no = child.lot_no

    # The genealogy picture: the units on the split edge, the lines explained.
    planner.goto(f"{url}/trace/lots/{lot_no}")
    picture = planner.locator("svg.genealogy")
    assert picture.locator(".g-qty-text", has_text="800").count() == 1
    assert picture.locator("a", has_text=child_no).count() == 1
    assert "split: a new lot and the units it took" in planner.locator(
        ".g-legend.g-lines").inner_text()
    shot(planner, "planner-2-genealogy")
