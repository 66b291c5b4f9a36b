"""Packing to a scanned label in a real browser: a planner packs a lot into reels, seals
them in a dry bag (moisture-sensitive products), boxes and cartons them, opens the carton's
label (its picture and 2D symbol content), and pastes that content into the trace page's
search box, which lists the lot. The database is checked, not only the page."""

from __future__ import annotations

from sqlalchemy import select

from mes.db import session_scope, utcnow
from mes.floor import services as floor
from mes.floor.models import Lot
from mes.quality.services import moisture
from mes.shipping.models import PackUnit, parse_pack_code
from mes.vocabulary import LotState, StepKind
from tests.browser.helpers import shot, skip_without_browser, submit

skip_without_browser()


def _packable(app) -> tuple[str, int, str]:
    """A lot nobody packed, free of holds, completed or waiting at its tape and reel step:
    (lot number, quantity, MSL)."""
    with app.app_context(), session_scope(app) as sess:
        for lot in sess.scalars(select(Lot).where(
                Lot.state.in_((LotState.COMPLETED, LotState.QUEUED)), Lot.packed_qty == 0,
                Lot.open_holds == 0).order_by(Lot.id)):
            if lot.state == LotState.COMPLETED or floor.current_step(lot).kind == StepKind.PACK:
                if lot.product.msl != "1":
                    # Baked just now in trays, before its reels: the dry bag may be sealed
                    # (exposure since the bake within the product's limit).
                    need = moisture.bake_requirement(sess, lot, 125, None, utcnow())
                    moisture.record_bake(sess, "qa", lot, temperature_c=125,
                                         hours=need.hours)
                return lot.lot_no, lot.quantity, lot.product.msl
    raise AssertionError("the demo has a lot to pack")


def _package(page, url: str, kind: str, children: list[str]) -> str:
    page.goto(f"{url}/packing")
    page.select_option("select[name=kind]", kind)
    for code in children:
        page.check(f"input[name=children][value='{code}']")
    submit(page, page.get_by_role("button", name="Make the package").click)
    code = page.url.rstrip("/").rsplit("/", 1)[-1]
    assert parse_pack_code(code) is not None, page.url
    return code


def test_pack_print_a_carton_label_and_scan_it_back(live, open_as):
    app, url = live["app"], live["url"]
    lot_no, quantity, msl = _packable(app)
    planner = open_as("planner", "demo-planner-2026")

    # Two reels: the last one partial.
    planner.goto(f"{url}/packing/lots/{lot_no}")
    planner.select_option("select[name=carrier]", "reel")
    planner.fill("input[name=quantity_per]", str(quantity // 2 + 1))
    submit(planner, planner.get_by_role("button", name="Pack").click)
    with app.app_context(), session_scope(app) as sess:
        lot_id = sess.scalar(select(Lot.id).where(Lot.lot_no == lot_no))
        reels = [u.code for u in sess.scalars(select(PackUnit).where(
            PackUnit.lot_id == lot_id).order_by(PackUnit.id))]
    assert len(reels) == 2

    inner = reels
    if msl != "1":
        inner = [_package(planner, url, "bag", reels)]
    box = _package(planner, url, "box", inner)
    carton = _package(planner, url, "carton", [box])

    # The carton's page links its label; the label page shows the picture and the content.
    planner.goto(f"{url}/packing/units/{carton}")
    submit(planner, planner.locator("[data-label-link]").click)
    image = planner.locator("[data-label-image]")
    image.wait_for()
    assert planner.evaluate("() => document.querySelector('[data-label-image]').complete "
                            "&& document.querySelector('[data-label-image]').naturalWidth") \
        == 812
    payload = planner.locator("[data-payload]").input_value()
    assert payload.startswith("[)>\u241e06\u241d") and f"3S{carton}" in payload
    assert f"1T{lot_no}" in payload
    shot(planner, "label-0-carton-label")

    # Scanned back: paste the content into the trace page's search box.
    planner.goto(f"{url}/trace/")
    planner.fill("input[name=q]", payload)
    submit(planner, lambda: planner.keyboard.press("Enter"))
    result = planner.locator("[data-scan-kind=label]")
    assert result.count() == 1
    assert planner.locator(f"[data-pack-unit='{carton}']").count() == 1
    shot(planner, "label-1-scanned")
    submit(planner, planner.locator(f"[data-scan-lot='{lot_no}']").click)
    assert planner.url.endswith(f"/trace/lots/{lot_no}")
    with app.app_context(), session_scope(app) as sess:
        lot = sess.scalar(select(Lot).where(Lot.lot_no == lot_no))
        assert lot.packed_qty == quantity
        top = sess.get(PackUnit, parse_pack_code(carton)[1])
        assert top.kind == "carton" and top.quantity == quantity and top.parent_id is None
