"""Customer portal pages, each section with its numbers, and the expected completion date
computed by hand."""

from __future__ import annotations

import re
from datetime import timedelta

from mes.catalog.services import StepInfo
from mes.db import simulated_time, utcnow
from mes.floor import services as floor
from mes.portal import services
from mes.testfloor import insertions, programs
from mes.testfloor.models import TestInsertion, TestRun
from tests.floor.helpers import track_in, track_out
from tests.helpers import as_user


def _rows(html: str, attr: str) -> list[str]:
    return re.findall(rf'<tr data-{attr}="([^"]+)"', html)


def _cell(html: str, row: str, col: str) -> str:
    found = re.search(rf"<tr {row}>(.*?)</tr>", html, re.S)
    assert found, row
    cell = re.search(rf"data-{col}[^>]*>(.*?)</td>", found.group(1), re.S)
    assert cell, col
    return cell.group(1).strip()


# --- expected completion ---------------------------------------------------------------

def _step(session, lot, at, start_h: float, end_h: float) -> None:
    """Run the lot's current step: track-in `start_h` and track-out `end_h` hours after
    `at`."""
    with simulated_time(at + timedelta(hours=start_h)):
        track_in(session, lot)
    with simulated_time(at + timedelta(hours=end_h)):
        track_out(session, lot)


def test_expected_completion_from_recent_median_step_times(session, receive):
    now = utcnow().replace(microsecond=0)
    # History within the 30 days: one lot of IND takes (queue + process) SAW 3 h,
    # WB 5 h, FT 2 h, measured from arrival at the step to its track-out; PACK has no run.
    base = now - timedelta(days=2)
    with simulated_time(base):
        history = receive(10, lot_no="H-1", product="P2", customer="IND")
    _step(session, history, base, 1, 3)
    _step(session, history, base, 4, 8)
    _step(session, history, base, 9, 10)
    # OEM's lot W2 ran SAW and WB 40 days ago (outside the window: not in the medians)
    # and has waited at FT since; W arrived at SAW an hour ago.
    old = now - timedelta(days=40)
    with simulated_time(old):
        w2 = receive(20, lot_no="W-2")
    _step(session, w2, old, 1, 2)
    _step(session, w2, old, 3, 4)
    with simulated_time(now - timedelta(hours=1)):
        w = receive(30, lot_no="W-1")

    times = services.cycle_times(session, now)
    assert times.per_step == {"SAW": 3.0, "WB": 5.0, "FT": 2.0}
    assert times.fallback == 3.0  # the median of 3, 5 and 2 stands in for PACK
    wip = services.wip(session, w.customer_id, now)
    # W:  SAW 3 h less the hour spent there = 2, + WB 5 + FT 2 + PACK 3 = 12 h.
    # W2: FT 2 h less 40 days already spent = 0, + PACK 3 = 3 h.
    assert [(r.lot.lot_no, r.steps_left, r.expected - now) for r in wip.lots] == [
        ("W-2", 2, timedelta(hours=3)), ("W-1", 4, timedelta(hours=12))]
    assert [(s.code, s.lots, s.quantity) for s in wip.stages] == [("SAW", 1, 30),
                                                                  ("FT", 1, 20)]
    assert floor.get_lot(session, "H-1").step_code == "PACK"


def test_expected_completion_falls_back_to_a_day_per_step_without_history(session, plant):
    assert services.cycle_times(session, utcnow()).fallback == services.DEFAULT_STEP_HOURS
    steps = tuple(StepInfo(seq=i, code=c, name=c, kind="assembly", equipment_kind=None,
                           min_yield=None, materials=()) for i, c in
                  enumerate(("SAW", "WB", "FT", "PACK"), start=1))
    empty = services.CycleTimes({}, services.DEFAULT_STEP_HOURS)
    assert services.remaining_hours(steps, 1, 0.0, empty) == 96.0
    assert services.remaining_hours(steps, 3, 30.0, empty) == 24.0
    known = services.CycleTimes({"PACK": 1.5}, 24.0)
    assert services.remaining_hours(steps, 4, 0.5, known) == 1.0


# --- pages -----------------------------------------------------------------------------

def test_index_shows_own_wip_by_stage_with_expected_completion(app, world):
    a, b = world
    resp = as_user(app, a.user).get("/portal/")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert _rows(html, "stage") == ["WB"]
    assert _cell(html, 'data-stage="WB"', "lots") == "1"
    assert _cell(html, 'data-stage="WB"', "on-hold") == "1"
    assert _cell(html, 'data-stage="WB"', "quantity") == "60"
    assert _rows(html, "lot") == [a.wip.lot_no]
    assert _rows(html, "finished") == [a.completed.lot_no]  # shipped lots are not listed
    assert re.search(r'data-expected="\d{4}-\d\d-\d\dT\d\d:\d\d"', html)
    if "trace.lot" in app.view_functions:  # the trace pages link from each lot
        assert f'href="/trace/lots/{a.wip.lot_no}"' in html
    if "reports.index" in app.view_functions:
        assert 'href="/reports"' in html
    assert not any(n in html for n in b.lot_nos)


def test_holds_page_shows_own_holds_and_dispositions(app, world):
    a, b = world
    html = as_user(app, a.user).get("/portal/holds").get_data(as_text=True)
    assert _rows(html, "hold") == [str(a.open_hold.id), str(a.released_hold.id)]
    row = f'data-hold="{a.released_hold.id}" data-lot="{a.wip.lot_no}"'
    assert 'data-status="released"' in re.search(rf"<tr {row}>(.*?)</tr>", html, re.S).group(1)
    assert _cell(html, row, "disposition").startswith("Use as is (customer concession)")
    assert "concession CON-AAA" in html
    assert "CON-BBB" not in html and not any(n in html for n in b.lot_nos)


def test_shipments_pages_list_own_shipments_with_coc_and_labels(app, world):
    a, b = world
    client = as_user(app, a.user)
    html = client.get("/portal/shipments").get_data(as_text=True)
    assert _rows(html, "shipment") == [str(a.shipment.id)]
    assert f"/portal/shipments/{a.shipment.id}/coc" in html
    detail = client.get(f"/portal/shipments/{a.shipment.id}").get_data(as_text=True)
    assert _rows(detail, "lot") == [a.shipped.lot_no]
    if "trace.lot" in app.view_functions:
        assert f'href="/trace/lots/{a.shipped.lot_no}"' in detail
        assert f'href="/trace/shipments/{a.shipment.id}"' in detail
    assert re.search(r'class="btn btn-primary" href="/portal/shipments"', detail)
    # The lot left final test with its 96 good units (its closed insertion's proposal).
    assert "<dd data-total>96</dd>" in detail
    coc = client.get(f"/portal/shipments/{a.shipment.id}/coc")
    assert coc.status_code == 200
    coc_html = coc.get_data(as_text=True)
    assert 'data-lot="AAA-SHIP-1"' in coc_html and "96.00 %" in coc_html
    labels = client.get(f"/portal/shipments/{a.shipment.id}/labels").get_data(as_text=True)
    assert labels.count("<svg") == 2 and 'data-field="lot">AAA-SHIP-1<' in labels
    assert f"/portal/shipments/{a.shipment.id}/labels.zpl" in labels
    zpl = client.get(f"/portal/shipments/{a.shipment.id}/labels.zpl")
    assert zpl.mimetype == "text/plain" and "^FDAAA-SHIP-1^FS" in zpl.get_data(as_text=True)
    for suffix in ("", "/coc", "/labels", "/labels.zpl"):
        assert client.get(f"/portal/shipments/{b.shipment.id}{suffix}").status_code == 404


def test_yields_page_per_product_and_test_step(app, world):
    a, b = world
    html = as_user(app, a.user).get("/portal/yields").get_data(as_text=True)
    row = 'data-product="P1" data-step="FT"'
    assert _rows(html, "product") == ["P1"]
    assert (_cell(html, row, "lots"), _cell(html, row, "tested"), _cell(html, row, "good"),
            _cell(html, row, "yield")) == ("1", "100", "96", "96.00 %")
    html_b = as_user(app, b.user).get("/portal/yields").get_data(as_text=True)
    assert _cell(html_b, 'data-product="P2" data-step="FT"', "yield") == "87.50 %"


def test_yields_sum_each_lots_insertion_first_pass_and_retest(app, session, world):
    a, _b = world
    # The lot's P1: 100 units, 96 good. Its R1 retests the 4 failures: 3 pass.
    retest = TestRun(**{attr.key: getattr(a.run, attr.key)
                        for attr in TestRun.__mapper__.column_attrs
                        if attr.key not in ("id", "sha256")})
    retest.units = retest.parts_tested = 4
    retest.first_pass_good = retest.final_good = 3
    retest.pass_kind, retest.pass_name = "retest", "R1"
    session.add(retest)
    session.flush()
    # Recorded into the lot's (closed) insertion after the fact: its figures recomputed.
    insertions.recompute(session, session.get(TestInsertion, a.run.insertion_id))
    session.commit()
    html = as_user(app, a.user).get("/portal/yields").get_data(as_text=True)
    row = 'data-product="P1" data-step="FT"'
    # Units of P1 only (100); first pass 96 / 100; good 96 + 3 = 99, final yield 99 %.
    assert (_cell(html, row, "lots"), _cell(html, row, "tested"),
            _cell(html, row, "first-pass-yield"), _cell(html, row, "good"),
            _cell(html, row, "yield")) == ("1", "100", "96.00 %", "99", "99.00 %")


def test_portal_is_in_the_customers_menu_and_closed_to_plant_roles(app, world, make_user):
    a, _b = world
    home = as_user(app, a.user).get("/").get_data(as_text=True)
    assert 'href="/portal/"' in home and 'href="/shipments"' not in home
    planner = as_user(app, make_user("planner"))
    assert planner.get("/portal/").status_code == 403
    assert 'href="/portal/"' not in planner.get("/").get_data(as_text=True)


def test_portal_coc_download(app, world):
    a, b = world
    client = as_user(app, a.user)
    resp = client.get(f"/portal/shipments/{a.shipment.id}/coc?download=1")
    assert resp.headers["Content-Disposition"] == (
        f'attachment; filename="coc-{a.shipment.id}.html"')
    assert 'data-lot="AAA-SHIP-1"' in resp.get_data(as_text=True)
    assert client.get(f"/portal/shipments/{b.shipment.id}/coc?download=1").status_code == 404


def test_yields_leave_voided_runs_out(app, session, world):
    a, _b = world
    retest = TestRun(**{attr.key: getattr(a.run, attr.key)
                        for attr in TestRun.__mapper__.column_attrs
                        if attr.key not in ("id", "sha256")})
    retest.final_good = 99
    session.add(retest)
    session.flush()
    programs.void_run(session, "qa", retest, reason="wrong file")
    session.commit()
    html = as_user(app, a.user).get("/portal/yields").get_data(as_text=True)
    row = 'data-product="P1" data-step="FT"'
    assert (_cell(html, row, "lots"), _cell(html, row, "tested"), _cell(html, row, "good"),
            _cell(html, row, "yield")) == ("1", "100", "96", "96.00 %")
