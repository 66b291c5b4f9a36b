"""Shipping to automotive customers on qualification evidence for what was built: the
product's grade or a more demanding one, the BOM revision the lot was received with, the
latest qualification of that revision; each refusal `not_qualified` names what is missing
and ships nothing. The certificate names the qualification per BOM revision."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select

from mes.catalog import services as cat
from mes.catalog.models import MaterialLot
from mes.floor.models import Lot
from tests.floor.helpers import advance
from tests.helpers import refused
from tests.shipping.test_shipments import ship, ship_refused, ship_state

ENG = "eng"
HTOL = {"test": "HTOL", "sample_size": 77, "lots": 3, "fails": 0}
WIRE_A = [{"step": "WB", "material": "wire", "part_numbers": ["AU-25UM"]}]
WIRE_B = [{"step": "WB", "material": "wire", "part_numbers": ["AU-25UM", "CU-20UM"]}]


@pytest.fixture
def built(session, plant, receive):
    """P1 (grade 1) with BOM revisions A and B; a completed lot of OEM (automotive) on each:
    LOT-A on A, LOT-B on B."""
    session.scalar(select(MaterialLot).where(MaterialLot.code == "AU-1")).part_number = \
        "AU-25UM"
    p1 = cat.get_product(session, "P1")
    lots = {}
    for revision, items in (("A", WIRE_A), ("B", WIRE_B)):
        cat.create_bom(session, ENG, p1, {"revision": revision, "items": items})
        session.commit()
        lot = receive(100, lot_no=f"LOT-{revision}")
        advance(session, lot, 4)
        assert lot.state == "completed"
        lots[revision] = lot
    return lots


def qualify(session, product: str = "P1", **data: Any) -> None:
    cat.add_qualification(session, ENG, cat.get_product(session, product),
                          {"grade": 1, "report": "QR-1", "tests": [HTOL], **data})
    session.commit()


def message(session, code: str, lots: list[str]) -> str:
    return str(ship_refused(session, code, lots))


def test_lots_keep_the_revision_they_were_received_with(session, built):
    assert [(lot.lot_no, lot.bom_id) for lot in built.values()] == [
        ("LOT-A", cat.get_bom(session, cat.get_product(session, "P1"), "A").id),
        ("LOT-B", cat.get_bom(session, cat.get_product(session, "P1"), "B").id)]


def test_a_lot_on_a_revision_no_passed_qualification_covers_is_refused_naming_it(
        session, built):
    qualify(session, bom_revision="A", report="QR-A")
    text = message(session, "not_qualified", ["LOT-B"])
    assert "revision B" in text and "LOT-B" in text
    # One uncovered lot holds back the whole shipment.
    ship_refused(session, "not_qualified", ["LOT-A", "LOT-B"])
    ship(session, ["LOT-A"])
    assert session.scalar(select(Lot.state).where(Lot.lot_no == "LOT-A")) == "shipped"


def test_a_lot_on_a_revision_qualified_later_ships(session, built):
    qualify(session, bom_revision="A")
    ship_refused(session, "not_qualified", ["LOT-B"])
    qualify(session, bom_revision="B", report="QR-B")
    ship(session, ["LOT-B"])


def test_a_failed_qualification_of_the_revision_does_not_cover_it(session, built):
    qualify(session, bom_revision="A")
    qualify(session, bom_revision="B", tests=[{**HTOL, "fails": 2}])
    assert "revision B" in message(session, "not_qualified", ["LOT-B"])


def test_a_failed_latest_qualification_of_the_revision_withdraws_it(session, built):
    qualify(session, bom_revision="A", report="QR-A1")
    qualify(session, bom_revision="A", report="QR-A2", tests=[{**HTOL, "fails": 1}])
    text = message(session, "not_qualified", ["LOT-A"])
    assert "QR-A2" in text and "failed" in text


def test_a_product_whose_only_qualification_is_less_demanding_is_refused_naming_the_grade(
        session, built):
    qualify(session, bom_revision="A", grade=1)
    p1 = cat.get_product(session, "P1")
    cat.update_product(session, ENG, p1, {"aec_grade": 0})
    session.commit()
    text = message(session, "not_qualified", ["LOT-A"])
    assert "grade 0" in text and "grade 1" in text
    qualify(session, bom_revision="A", grade=0, report="QR-G0")
    ship(session, ["LOT-A"])


def test_a_more_demanding_grade_qualifies(session, built):
    qualify(session, bom_revision="A", grade=0)
    ship(session, ["LOT-A"])


def test_family_data_covers_a_member_built_on_the_same_materials(session, built, receive,
                                                                 login, make_user):
    p1, p2 = cat.get_product(session, "P1"), cat.get_product(session, "P2")
    for product in (p1, p2):
        cat.update_product(session, ENG, product, {"qual_family": "GD", "aec_grade": 1,
                                                   "customer": "OEM"})
    cat.create_bom(session, ENG, p2, {"revision": "R1", "items": WIRE_A})
    session.commit()
    lot = receive(50, lot_no="LOT-P2", product="P2")
    advance(session, lot, 4)
    ship_refused(session, "not_qualified", ["LOT-P2"])
    qualify(session, bom_revision="B", family="GD")  # other materials than R1
    ship_refused(session, "not_qualified", ["LOT-P2"])
    qualify(session, bom_revision="A", family="GD", report="QR-FAM")
    shipment = ship(session, ["LOT-P2"])
    html = login(make_user("customer", customer="OEM")).get(
        f"/portal/shipments/{shipment.id}/coc").get_data(as_text=True)
    cell = _cell(html, "P2", "R1", "qualification")
    assert cell.startswith('AEC-Q100 grade 1: passed, report <span class="mono">QR-FAM</span>, '
                           'generic data of family GD')
    assert "P1" not in cell


def test_non_automotive_customers_need_no_qualification(session, plant, completed):
    # (the existing rule, unchanged: P2 ships to the industrial customer unqualified)
    completed("LOT-I", product="P2", customer="IND")
    ship(session, ["LOT-I"], customer="IND")


def test_api_refuses_409_not_qualified_naming_the_revision(api, session, built):
    qualify(session, bom_revision="A")
    planner = api("planner")
    err = refused(session, lambda: planner.post("/shipments", json={
        "customer": "OEM", "po": "PO-9", "lots": ["LOT-B"]}), 409, "not_qualified",
        state=ship_state)
    assert "revision B" in err["message"]


def _cell(html: str, product: str, revision: str, col: str) -> str:
    row = re.search(rf'<tr data-product="{product}" data-bom="{revision}">(.*?)</tr>', html,
                    re.S)
    assert row, (product, revision)
    cell = re.search(rf'data-{col}[^>]*>(.*?)</td>', row.group(1), re.S)
    assert cell, col
    return re.sub(r"\s+", " ", cell.group(1)).strip()


def test_certificate_names_the_qualification_of_each_revision_shipped(session, built, login,
                                                                       make_user):
    qualify(session, bom_revision="A", report="QR-A", grade=0)
    qualify(session, bom_revision="B", report="QR-B")
    shipment = ship(session, ["LOT-A", "LOT-B"])
    html = login(make_user("planner")).get(f"/shipments/{shipment.id}/coc").get_data(
        as_text=True)
    assert _cell(html, "P1", "A", "bom-revision") == "A"
    assert _cell(html, "P1", "A", "qualification").startswith(
        'AEC-Q100 grade 0: passed, report <span class="mono">QR-A</span>, BOM revision '
        '<span class="mono">A</span>')
    assert _cell(html, "P1", "B", "qualification").startswith(
        'AEC-Q100 grade 1: passed, report <span class="mono">QR-B</span>, BOM revision '
        '<span class="mono">B</span>')
