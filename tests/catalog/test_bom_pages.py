"""The engineer's BOM pages: revisions on the product page, a new revision typed as lines
(started from the current one), and material lots with part numbers and time limits."""

from __future__ import annotations

import pytest

from mes.catalog.models import Bom, MaterialLot
from tests.catalog.test_views import rows, seed, text
from tests.helpers import refused


@pytest.fixture
def engineer(login, make_user):
    return login(make_user("engineer"))


def test_new_bom_revision_through_the_form_shows_on_the_product_page(engineer, session):
    seed(session)
    assert "No BOM" in text(engineer.get("/catalog/products/P1"))
    resp = engineer.post("/catalog/products/P1/bom/new", data={
        "revision": "A", "items": "DA | epoxy | EPX-AG8200 | 0.002\nDA | leadframe | "
                                  "LF-QFN32-CU-A, LF-QFN32-CU-B\n"})
    assert resp.status_code == 303
    [bom] = rows(session, Bom)
    assert [(i.step, i.material, i.part_numbers, i.qty_per_unit) for i in bom.items] == [
        ("DA", "epoxy", ["EPX-AG8200"], 0.002),
        ("DA", "leadframe", ["LF-QFN32-CU-A", "LF-QFN32-CU-B"], None)]
    page = text(engineer.get("/catalog/products/P1"))
    assert "Revision A" in page and "LF-QFN32-CU-A, LF-QFN32-CU-B" in page
    # The next revision starts from the current one.
    assert "DA | leadframe | LF-QFN32-CU-A, LF-QFN32-CU-B" in text(
        engineer.get("/catalog/products/P1/bom/new"))


def test_bad_bom_lines_are_refused_naming_their_line(engineer, session):
    seed(session)
    body = refused(session, lambda: engineer.post("/catalog/products/P1/bom/new", data={
        "revision": "A", "items": "DA | epoxy | EPX-1\nWB | wire | AU-1\nDA | epoxy"}), 422)
    assert "Step WB is not on route QFN." in body or "Line 3" in body


def test_planner_may_not_create_a_bom(login, make_user, session):
    seed(session)
    planner = login(make_user("planner"))
    refused(session, lambda: planner.post("/catalog/products/P1/bom/new", data={
        "revision": "A", "items": "DA | epoxy | EPX-1"}), 403)


def test_material_lot_form_takes_part_number_and_time_limits(engineer, session):
    seed(session)
    resp = engineer.post("/catalog/material-lots/new", data={
        "code": "EPX-F", "material": "epoxy", "part_number": "EPX-AG8200",
        "thaw_minutes": "60", "work_life_hours": "24"})
    assert resp.status_code == 303
    [lot] = rows(session, MaterialLot, code="EPX-F")
    assert (lot.part_number, lot.thaw_minutes, lot.work_life_hours) == ("EPX-AG8200", 60, 24)
    refused(session, lambda: engineer.post("/catalog/material-lots/new", data={
        "code": "EPX-G", "material": "epoxy", "thaw_minutes": "soon"}), 422)


def test_lot_page_names_the_lots_bom_revision(login, make_user, session, receive):
    from mes.catalog import services
    services.create_bom(session, "eng", services.get_product(session, "P1"), {
        "revision": "R7", "items": [{"step": "WB", "material": "wire",
                                     "part_numbers": ["AU-0.8MIL"]}]})
    lot = receive(100, lot_no="LOT-BOM")
    page = text(login(make_user("engineer")).get(f"/lots/{lot.lot_no}"))
    assert "Revision R7" in page
