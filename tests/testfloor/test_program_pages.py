"""The engineer's pages of test programs, bin definitions and PAT tests, the product page's
section, and voiding a run from its page: they accept and refuse what the API does (a
refusal stores nothing) and are for the roles that hold their permission."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from mes.testfloor.models import TestBin, TestProgram, TestRun, TestStepSetup
from tests.helpers import refused, row_counts
from tests.testfloor.helpers import lot_at_final_test, lot_file

pytestmark = pytest.mark.usefixtures("plant")
OCTET = {"Content-Type": "application/octet-stream"}


@pytest.fixture
def as_role(make_user, login):
    def do(role: str):
        return login(make_user(role))
    return do


def setup_rows(session) -> dict:
    return {**row_counts(session, TestProgram, TestStepSetup, TestBin),
            "bins": [tuple(r) for r in session.execute(
                select(TestBin.kind, TestBin.bin, TestBin.name).order_by(TestBin.id))]}


def program_form(**changes) -> dict:
    return {"step": "FT", "job_name": "gd100_ft", "job_rev": "7", "temperature_c": "125",
            "temperature_tolerance_c": "3", "part_type": "", "pat_limit_set": "", **changes}


def test_an_engineer_releases_a_program_and_the_product_page_shows_it(as_role, session):
    client = as_role("engineer")
    page = client.get("/products/P1/test-programs/view").get_data(as_text=True)
    assert "No program released" in page
    resp = client.post("/products/P1/test-programs/new", data=program_form())
    assert resp.status_code == 303
    resp = client.post("/products/P1/test-programs/new", data=program_form(job_rev="8"))
    assert resp.status_code == 303
    page = client.get("/products/P1/test-programs/view").get_data(as_text=True)
    assert "superseded" in page and "released" in page
    product = client.get("/catalog/products/P1").get_data(as_text=True)
    assert 'data-program-step="FT"' in product and "gd100_ft" in product
    assert session.scalars(select(TestProgram.job_rev).where(
        TestProgram.superseded_at.is_(None))).all() == ["8"]


@pytest.mark.parametrize(("changes", "status", "shown"), [
    ({"job_name": ""}, 422, None),
    ({"temperature_c": "hot"}, 422, None),
    ({"step": "WB"}, 422, None),
])
def test_a_refused_release_form_stores_nothing(as_role, session, changes, status, shown):
    client = as_role("engineer")
    refused(session, lambda: client.post("/products/P1/test-programs/new",
                                         data=program_form(**changes)), status,
            state=setup_rows)


def test_a_duplicate_revision_is_refused_on_the_page(as_role, session):
    client = as_role("engineer")
    client.post("/products/P1/test-programs/new", data=program_form())
    text = refused(session, lambda: client.post("/products/P1/test-programs/new",
                                                data=program_form()), 409, state=setup_rows)
    assert "duplicate" in text


def bins_form(rows: list[dict], **extra) -> dict:
    data = {"rows": str(len(rows)), **extra}
    for i, row in enumerate(rows):
        data |= {f"bin_{i}": str(row["bin"]), f"kind_{i}": row.get("kind", "hard"),
                 f"name_{i}": row["name"], f"reason_{i}": row.get("reason", "")}
        if row.get("pass"):
            data[f"pass_{i}"] = "1"
        if row.get("sba"):
            data[f"sba_{i}"] = "1"
        if row.get("pat"):
            data["pat_row"] = str(i)
    return data


def test_an_engineer_defines_bins_on_the_page(as_role, session):
    client = as_role("engineer")
    assert client.get("/products/P1/bins/FT/edit").status_code == 200
    resp = client.post("/products/P1/bins/FT/edit", data=bins_form([
        {"bin": 1, "name": "Good", "pass": True},
        {"bin": 8, "name": "Vout", "reason": "R-BALL", "sba": True},
        {"bin": 9, "name": "PAT", "pat": True}, {"bin": "", "name": ""}],
        pat_fallout_limit_pct="0.7"))
    assert resp.status_code == 303, resp.get_data(as_text=True)[:3000]
    got = [(b.bin, b.passing, b.reason.code if b.reason else None, b.sba, b.pat)
           for b in session.scalars(select(TestBin).order_by(TestBin.bin))]
    assert got == [(1, True, None, False, False), (8, False, "R-BALL", True, False),
                   (9, False, None, False, True)]
    assert session.scalar(select(TestStepSetup.pat_fallout_limit_pct)) == 0.7
    page = client.get("/products/P1/bins/FT/edit").get_data(as_text=True)
    assert 'value="Vout"' in page


def test_a_refused_bins_form_stores_nothing(as_role, session):
    client = as_role("engineer")
    client.post("/products/P1/bins/FT/edit", data=bins_form([{"bin": 1, "name": "Good",
                                                               "pass": True}]))
    text = refused(session, lambda: client.post("/products/P1/bins/FT/edit", data=bins_form([
        {"bin": 1, "name": "Good", "pass": True, "reason": "R-BALL"}])), 422,
        state=setup_rows)
    assert "books no reject reason" in text


def test_pat_tests_are_chosen_on_the_page(as_role, session):
    client = as_role("engineer")
    resp = client.post("/products/P1/pat-tests/FT", data={"tests": "200, 100 300"})
    assert resp.status_code == 303
    assert session.scalar(select(TestStepSetup.pat_tests)) == [100, 200, 300]
    page = client.get("/products/P1/test-programs/view").get_data(as_text=True)
    assert "100, 200, 300" in page
    refused(session, lambda: client.post("/products/P1/pat-tests/FT",
                                         data={"tests": "1 x"}), 422, state=setup_rows)


@pytest.mark.parametrize("role", ["operator", "qa", "planner"])
def test_only_engineers_change_programs_on_pages(as_role, session, role):
    client = as_role(role)
    assert client.get("/products/P1/test-programs/view").status_code == 200
    for url, data in (("/products/P1/test-programs/new", program_form()),
                      ("/products/P1/bins/FT/edit", bins_form([])),
                      ("/products/P1/pat-tests/FT", {"tests": "1"})):
        refused(session, lambda u=url, d=data: client.post(u, data=d), 403, state=setup_rows)


def test_a_run_is_voided_from_its_page(as_role, api, session):
    lot_at_final_test(session, "LOT-FT", 2000)
    run_id = api("operator").post("/lots/LOT-FT/stdf", data=lot_file(30),
                                  headers=OCTET).get_json()["id"]
    client = as_role("qa")
    assert "Void this run" in client.get(f"/test-runs/{run_id}").get_data(as_text=True)
    refused(session, lambda: client.post(f"/test-runs/{run_id}/void", data={"reason": ""}),
            422)
    resp = client.post(f"/test-runs/{run_id}/void", data={"reason": "foreign file"})
    assert resp.status_code == 303
    page = client.get(f"/test-runs/{run_id}").get_data(as_text=True)
    assert "data-voided" in page and "foreign file" in page
    assert "voided" in client.get("/lots/LOT-FT/test-runs/view").get_data(as_text=True)
    refused(session, lambda: client.post(f"/test-runs/{run_id}/void", data={"reason": "x"}),
            409)
    assert session.get(TestRun, run_id).void_reason == "foreign file"


def test_an_operator_sees_no_void_form_and_cannot_void(as_role, api, session):
    lot_at_final_test(session, "LOT-FT", 2000)
    run_id = api("operator").post("/lots/LOT-FT/stdf", data=lot_file(30),
                                  headers=OCTET).get_json()["id"]
    client = as_role("operator")
    assert "Void this run" not in client.get(f"/test-runs/{run_id}").get_data(as_text=True)
    refused(session, lambda: client.post(f"/test-runs/{run_id}/void", data={"reason": "x"}),
            403)
