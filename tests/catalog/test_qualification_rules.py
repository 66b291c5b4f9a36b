"""Qualifications: the standard of the product's kind and its grades, the grade rule, the
BOM revision and family a qualification covers, the AEC minimum samples (422
`insufficient_sample` naming the stress), preconditioning; each refusal leaves the
database as it was. Which stresses have passed on a BOM revision."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from mes.catalog import aec
from mes.catalog import services as cat
from mes.catalog.models import MaterialLot, Qualification
from mes.errors import InvalidInput
from tests.helpers import refused

ENG = "eng"
HTOL = {"test": "HTOL", "sample_size": 77, "lots": 3, "fails": 0}
TC_PC = {"test": "TC", "sample_size": 77, "lots": 3, "fails": 0, "preconditioned": True}
WIRE_A = [{"step": "WB", "material": "wire", "part_numbers": ["AU-25UM"]}]
WIRE_B = [{"step": "WB", "material": "wire", "part_numbers": ["AU-25UM", "CU-20UM"]}]


def qual(**data: Any) -> dict[str, Any]:
    return {"grade": 1, "report": "QR-1", "tests": [HTOL], **data}


def add(session, product: str = "P1", **data: Any) -> Qualification:
    q = cat.add_qualification(session, ENG, cat.get_product(session, product), qual(**data))
    session.commit()
    return q


def add_refused(session, field: str, code: str = "invalid", product: str = "P1",
                **data: Any) -> InvalidInput:
    err = refused(session, lambda: cat.add_qualification(
        session, ENG, cat.get_product(session, product), qual(**data)), InvalidInput, code)
    assert field in (err.fields or {}), err.fields
    return err


def bom(session, revision: str, items: list[dict[str, Any]], product: str = "P1") -> None:
    cat.create_bom(session, ENG, cat.get_product(session, product),
                   {"revision": revision, "items": items})
    session.commit()


@pytest.fixture
def wired(session, plant):
    """The plant's gold wire carries the part number the BOMs below allow."""
    wire = session.scalar(select(MaterialLot).where(MaterialLot.code == "AU-1"))
    wire.part_number = "AU-25UM"
    session.commit()


# --- the reference tables --------------------------------------------------------------

def test_reference_table_holds_the_aec_q100_minimum_samples():
    q100 = aec.STRESSES["AEC-Q100"]
    assert {code: (q100[code].sample_size, q100[code].lots) for code in
            ("HTOL", "ELFR", "TC", "HAST", "HTSL", "LU", "HBM", "CDM")} == {
        "HTOL": (77, 3), "ELFR": (800, 3), "TC": (77, 3), "HAST": (77, 3), "HTSL": (45, 1),
        "LU": (6, 1), "HBM": (3, 1), "CDM": (3, 1)}
    assert q100["HBM"].per_step and q100["CDM"].per_step
    assert {c for c, s in q100.items() if s.preconditioned} == {
        "THB", "HAST", "AC", "UHST", "TH", "TC", "PTC"}
    assert aec.standard_for("ic") == "AEC-Q100"
    assert aec.standard_for("discrete") == "AEC-Q101"
    assert aec.standard_for("module") == "AEC-Q104"
    assert list(aec.GRADES["AEC-Q100"]) == [0, 1, 2, 3]
    assert list(aec.GRADES["AEC-Q101"]) == [0, 1]
    assert "AEC-Q200" not in aec.STRESSES


def test_stress_names_are_read_as_people_write_them():
    assert [aec.canonical(n) for n in ("ESD-HBM", "esd hbm", "HBM", "esd_cdm", "Latch-up",
                                       "uhast", "htol")] == [
        "HBM", "HBM", "HBM", "CDM", "LU", "UHST", "HTOL"]
    assert aec.surface_mount("QFN-32") and aec.surface_mount("SOP-8")
    assert not aec.surface_mount("TO-220") and not aec.surface_mount("PDIP-8")


def test_alternatives_in_one_slot_satisfy_each_other():
    assert aec.satisfied("AEC-Q100", {"HAST"}, "THB")
    assert aec.satisfied("AEC-Q100", {"UHST"}, "AC")
    assert not aec.satisfied("AEC-Q100", {"HAST"}, "TC")
    assert aec.satisfied("AEC-Q100", {"ESD-HBM"}, "HBM")


# --- recording -------------------------------------------------------------------------

def test_qualification_records_its_revision_grade_and_stresses(session, wired):
    bom(session, "A", WIRE_A)
    q = add(session, bom_revision="A", grade=0, tests=[HTOL, TC_PC,
                                                       {"test": "esd-hbm", "sample_size": 3,
                                                        "lots": 1, "fails": 0}])
    assert (q.status, q.grade, q.bom.revision, q.family, q.standard) == (
        "passed", 0, "A", None, "AEC-Q100")
    assert [(t.test, t.group, t.preconditioned) for t in q.tests] == [
        ("HTOL", "B", False), ("TC", "A", True), ("HBM", "E", False)]


@pytest.mark.parametrize(("test", "size", "lots"), [
    ("HTOL", 1, 1), ("HTOL", 76, 3), ("HTOL", 77, 2), ("ELFR", 77, 3), ("HTSL", 44, 1),
    ("LU", 5, 1), ("HBM", 2, 1)])
def test_a_result_below_the_minimum_sample_is_insufficient_naming_the_stress(
        session, plant, test, size, lots):
    err = add_refused(session, "tests", "insufficient_sample", tests=[
        {"test": test, "sample_size": size, "lots": lots, "fails": 0}])
    assert test in err.message


@pytest.mark.parametrize(("test", "size", "lots"), [
    ("ELFR", 800, 3), ("HTSL", 45, 1), ("LU", 6, 1), ("HBM", 3, 1), ("CDM", 3, 1)])
def test_a_result_at_the_minimum_sample_is_recorded(session, plant, test, size, lots):
    q = add(session, tests=[{"test": test, "sample_size": size, "lots": lots, "fails": 0}])
    assert q.status == "passed"


def test_api_answers_422_insufficient_sample_naming_the_stress(api, session, plant):
    eng = api("engineer")
    err = refused(session, lambda: eng.post("/products/P1/qualifications", json={
        "grade": 1, "tests": [{"test": "HTOL", "sample_size": 1, "lots": 1, "fails": 0}]}),
        422, "insufficient_sample", "tests")
    assert "HTOL" in err["message"]
    resp = eng.post("/products/P1/qualifications", json={"grade": 1, "tests": [HTOL, TC_PC]})
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert (body["bom_revision"], body["family"], body["status"]) == (None, None, "passed")
    assert [t["preconditioned"] for t in body["tests"]] == [False, True]


def test_humidity_and_cycling_stresses_of_a_surface_mount_part_need_preconditioning(
        session, plant):
    for test in ("TC", "HAST", "UHST"):
        err = add_refused(session, "tests", tests=[
            {"test": test, "sample_size": 77, "lots": 3, "fails": 0}])
        assert test in err.message and "precondition" in err.message
    assert add(session, tests=[TC_PC]).tests[0].preconditioned is True


def test_a_through_hole_package_needs_no_preconditioning(session, plant):
    cat.update_product(session, ENG, cat.get_product(session, "P1"), {"package": "PDIP-8"})
    q = add(session, tests=[{"test": "TC", "sample_size": 77, "lots": 3, "fails": 0}])
    assert q.tests[0].preconditioned is False


def test_unknown_or_repeated_stresses_are_refused(session, plant):
    add_refused(session, "tests", tests=[{"test": "HTRB", "sample_size": 77, "lots": 3,
                                          "fails": 0}])
    add_refused(session, "tests", tests=[HTOL, {**HTOL, "test": "htol"}])


def test_only_the_standard_of_the_products_kind_is_accepted(session, plant):
    for standard in ("AEC-Q200", "AEC-Q101", "AEC-Q104"):
        add_refused(session, "standard", standard=standard)
    cat.update_product(session, ENG, cat.get_product(session, "P1"), {"kind": "discrete"})
    session.commit()
    add_refused(session, "standard", standard="AEC-Q100")
    q = add(session, tests=[{"test": "HTRB", "sample_size": 77, "lots": 3, "fails": 0}])
    assert q.standard == "AEC-Q101"


def test_the_grade_is_one_of_the_standard_and_at_least_the_products(session, plant):
    # P1 is grade 1: grade 2 and 3 are less demanding.
    for grade in (2, 3):
        err = add_refused(session, "grade", grade=grade)
        assert f"Grade {grade}" in err.message
    assert add(session, grade=0).grade == 0
    cat.update_product(session, ENG, cat.get_product(session, "P2"), {"kind": "discrete"})
    session.commit()
    add_refused(session, "grade", product="P2", grade=3,
                tests=[{"test": "HTRB", "sample_size": 77, "lots": 3, "fails": 0}])


def test_the_bom_revision_is_required_and_must_be_the_products(session, wired):
    add_refused(session, "bom_revision", bom_revision="A")  # P1 has no BOM yet
    bom(session, "A", WIRE_A)
    add_refused(session, "bom_revision")
    add_refused(session, "bom_revision", bom_revision="Z")
    assert add(session, bom_revision="A").bom.revision == "A"


def test_family_data_only_for_the_products_own_family(session, plant):
    add_refused(session, "family", family="GD")
    cat.update_product(session, ENG, cat.get_product(session, "P1"), {"qual_family": "GD"})
    session.commit()
    add_refused(session, "family", family="OTHER")
    assert add(session, family="GD").family == "GD"


# --- what has passed on a revision -------------------------------------------------------

def test_passed_stresses_on_a_revision_take_the_latest_result(session, wired):
    bom(session, "A", WIRE_A)
    add(session, bom_revision="A", tests=[HTOL, TC_PC])
    bom(session, "B", WIRE_B)
    p1 = cat.get_product(session, "P1")
    a, b = (cat.get_bom(session, p1, r) for r in ("A", "B"))
    assert cat.passed_stresses(session, p1, a) == {"HTOL", "TC"}
    assert cat.passed_stresses(session, p1, b) == set()
    add(session, bom_revision="B", tests=[{**TC_PC, "fails": 1}])
    assert cat.passed_stresses(session, p1, b) == set()
    add(session, bom_revision="B", tests=[TC_PC, {"test": "HAST", "sample_size": 77,
                                                  "lots": 3, "fails": 0,
                                                  "preconditioned": True}])
    passed = cat.passed_stresses(session, p1, b)
    assert passed == {"TC", "HAST"}
    assert aec.satisfied("AEC-Q100", passed, "THB")
    assert not aec.satisfied("AEC-Q100", passed, "HTOL")


def test_passed_stresses_ignore_a_less_demanding_grade(session, wired):
    bom(session, "A", WIRE_A)
    add(session, bom_revision="A", grade=1)
    p1 = cat.get_product(session, "P1")
    cat.update_product(session, ENG, p1, {"aec_grade": 0})
    session.commit()
    assert cat.passed_stresses(session, p1, cat.get_bom(session, p1, "A")) == set()


def test_family_data_covers_members_of_the_same_package_and_materials(session, wired):
    for code, package in (("P1", "QFN"), ("P2", "QFN")):
        cat.update_product(session, ENG, cat.get_product(session, code),
                           {"qual_family": "GD", "aec_grade": 1, "package": package})
    session.commit()
    bom(session, "A", WIRE_A)
    bom(session, "R7", WIRE_A, product="P2")
    add(session, bom_revision="A", family="GD")
    p2 = cat.get_product(session, "P2")
    assert cat.passed_stresses(session, p2, cat.get_bom(session, p2, "R7")) == {"HTOL"}
    bom(session, "R8", WIRE_B, product="P2")
    assert cat.passed_stresses(session, p2, cat.get_bom(session, p2, "R8")) == set()
    cat.update_product(session, ENG, p2, {"package": "SOP-8"})
    session.commit()
    assert cat.passed_stresses(session, p2, cat.get_bom(session, p2, "R7")) == set()
