"""Test-floor pages: the STDF upload and bin summary forms accept and refuse what the API
does (a refusal stores nothing), the run, PAT and SBA pages show their charts, and each page
is for the roles that hold its permission."""

from __future__ import annotations

import io
import itertools
import re

import pytest
from sqlalchemy import select

from mes.testfloor import insertions, services
from mes.testfloor.models import PatLimitSet, TestInsertion, TestRun
from mes.testfloor.stdf_writer import PartSpec, TestSpec, encode_record
from tests.helpers import refused
from tests.testfloor.helpers import (
    lot_at_final_test,
    lot_file,
    receive_lot,
    stdf,
    stored_state,
)

pytestmark = pytest.mark.usefixtures("plant")
_files = itertools.count()


@pytest.fixture
def as_role(make_user, login):
    def do(role: str):
        return login(make_user(role))
    return do


@pytest.fixture
def ft_lot(session):
    return lot_at_final_test(session, "LOT-FT", 2000)


def post_file(client, data: bytes, lot_no: str = "LOT-FT", step: str = "FT"):
    return client.post(f"/lots/{lot_no}/stdf/upload",
                       data={"file": (io.BytesIO(data), "lot.stdf"), "step": step},
                       content_type="multipart/form-data")


def values_file(values: list[float], *, test: int = 300) -> bytes:
    salt = next(_files)
    parts = [PartSpec(hard_bin=1, passed=True, part_id=f"v{salt}-{i}", results=[(test, v)])
             for i, v in enumerate(values)]
    parts.append(PartSpec(hard_bin=8, passed=False, part_id=f"v{salt}-bad"))
    return stdf(parts, tests={test: TestSpec("vth", "V", 0.0, 100.0, -5.0, 120.0)})


def pat_history(session, lots: int = 6) -> list:
    """Lots H0.. of product P1, each with one imported run of 30 passing values of test
    300 (and one failing part)."""
    made = []
    for j in range(lots):
        lot = lot_at_final_test(session, f"H{j}")
        services.import_stdf(session, "op", lot, values_file(
            [40.0 + ((i * 7 + j) % 11) for i in range(30)]))
        session.commit()
        made.append(lot)
    return made


# --- STDF upload -----------------------------------------------------------------------

@pytest.mark.parametrize("role", ["operator", "engineer", "admin"])
def test_upload_page_renders_for_roles_that_write_test_data(as_role, ft_lot, role):
    resp = as_role(role).get("/lots/LOT-FT/stdf/upload")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert 'enctype="multipart/form-data"' in page
    assert '<option value="FT" selected>' in page


@pytest.mark.parametrize("role", ["qa", "planner", "customer"])
def test_upload_page_refused_to_roles_without_test_write(as_role, ft_lot, role, session):
    client = as_role(role)
    assert client.get("/lots/LOT-FT/stdf/upload").status_code == 403
    refused(session, lambda: post_file(client, lot_file(40, salt="r")), 403)


def test_upload_imports_the_file_and_redirects_to_the_run_page(as_role, ft_lot, session):
    client = as_role("operator")
    resp = post_file(client, lot_file(40, 2, salt="ok"))
    assert resp.status_code == 303
    run = session.scalars(select(TestRun)).one()
    assert resp.headers["Location"].endswith(f"/test-runs/{run.id}")
    assert (run.step_code, run.units, run.final_good) == ("FT", 42, 40)
    page = client.get(resp.headers["Location"])
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "imported as test run" in text
    assert text.count("<svg") == 2
    assert 'data-label="Bin 8"' in text


def test_upload_of_a_file_that_is_not_stdf_is_refused_with_its_offset(as_role, ft_lot,
                                                                     session):
    client = as_role("operator")
    data = lot_file(40, salt="cut")
    page = refused(session, lambda: post_file(client, data[:-3]), 422)
    assert "not a readable STDF V4 file" in page
    assert re.search(r"at byte \d{3,}", page)
    assert "invalid_stdf" in page


def test_upload_of_the_same_file_twice_is_refused_as_duplicate(as_role, ft_lot, session):
    client = as_role("operator")
    data = lot_file(40, salt="dup")
    assert post_file(client, data).status_code == 303
    page = refused(session, lambda: post_file(client, data), 409)
    assert "imported already" in page
    assert "duplicate" in page


def test_upload_for_a_lot_not_at_the_test_step_is_refused_as_wrong_step(as_role, session):
    receive_lot(session, "LOT-SAW")
    client = as_role("operator")
    page = refused(session, lambda: post_file(client, lot_file(40, salt="ws"),
                                                   lot_no="LOT-SAW"), 409)
    assert "wrong_step" in page


def test_upload_without_a_file_is_refused(as_role, ft_lot, session):
    client = as_role("operator")
    page = refused(session, lambda: client.post(
        "/lots/LOT-FT/stdf/upload", data={"step": "FT"},
        content_type="multipart/form-data"), 422)
    assert "Choose the STDF file to upload." in page


def test_upload_page_of_an_unknown_lot_is_404(as_role):
    assert as_role("operator").get("/lots/NOPE/stdf/upload").status_code == 404


# --- bin summary -----------------------------------------------------------------------

def bin_form(*rows: tuple[str, str, bool], step: str = "FT", **extra: str) -> dict:
    data = {"step": step, "rows": "8", **extra}
    for i, (bin_no, count, passed) in enumerate(rows):
        data[f"bin_{i}"], data[f"count_{i}"] = bin_no, count
        if passed:
            data[f"pass_{i}"] = "1"
    return data


def test_bin_form_offers_eight_empty_rows(as_role, ft_lot):
    page = as_role("engineer").get("/lots/LOT-FT/bins/new").get_data(as_text=True)
    assert page.count('name="bin_') == 8
    assert 'name="count_7"' in page


def test_bin_form_records_the_summary_and_redirects_to_the_run(as_role, ft_lot, session):
    client = as_role("operator")
    resp = client.post("/lots/LOT-FT/bins/new", data=bin_form(
        ("1", "950", True), ("", "", False), ("8", "30", False), ("9", "20", False)))
    assert resp.status_code == 303
    run = session.scalars(select(TestRun)).one()
    assert (run.source, run.units, run.final_good, run.failing_bins) == ("bins", 1000, 950,
                                                                          [8, 9])
    text = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert 'data-label="Bin 8"' in text and 'data-label="Bin 9"' in text
    assert text.index('data-label="Bin 8"') < text.index('data-label="Bin 9"')


def test_bin_form_names_the_row_of_an_invalid_count(as_role, ft_lot, session):
    client = as_role("operator")
    page = refused(session, lambda: client.post("/lots/LOT-FT/bins/new", data=bin_form(
        ("1", "950", True), ("", "", False), ("8", "-3", False))), 422)
    assert "Row 3:" in page
    assert 'value="-3"' in page


def test_bin_form_refuses_a_bin_given_twice(as_role, ft_lot, session):
    client = as_role("operator")
    page = refused(session, lambda: client.post("/lots/LOT-FT/bins/new", data=bin_form(
        ("1", "950", True), ("8", "30", False), ("8", "20", False))), 422)
    assert "Bin 8 is given more than once." in page


def test_bin_form_refuses_an_empty_summary(as_role, ft_lot, session):
    client = as_role("operator")
    refused(session, lambda: client.post("/lots/LOT-FT/bins/new",
                                              data=bin_form()), 422)


def test_bin_form_adds_rows_without_recording(as_role, ft_lot, session):
    client = as_role("operator")
    before = stored_state(session)
    resp = client.post("/lots/LOT-FT/bins/new",
                       data=bin_form(("1", "950", True), action="add_rows"))
    assert resp.status_code == 200
    assert resp.get_data(as_text=True).count('name="bin_') == 16
    assert stored_state(session) == before


@pytest.mark.parametrize("rows", ["<script>", "-3", "1e309", "99999999999999999999"])
def test_bin_form_with_a_tampered_row_count_is_no_server_error(as_role, ft_lot, session,
                                                               rows):
    """The hidden `rows` count is the form's own; a wrong one (found by posting garbage to
    every form) falls back to the default rows or the maximum, it is not a 500."""
    client = as_role("operator")
    before = stored_state(session)
    resp = client.post("/lots/LOT-FT/bins/new",
                       data={**bin_form(("1", "950", True), action="add_rows"), "rows": rows})
    assert resp.status_code == 200
    assert resp.get_data(as_text=True).count('name="bin_') >= 16
    assert stored_state(session) == before


def test_bin_form_refused_to_qa(as_role, ft_lot, session):
    client = as_role("qa")
    refused(session, lambda: client.post("/lots/LOT-FT/bins/new",
                                              data=bin_form(("1", "10", True))), 403)


# --- run pages -------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["qa", "planner", "operator", "engineer"])
def test_run_and_lot_runs_pages_render_for_plant_roles(as_role, ft_lot, session, role):
    run = services.import_stdf(session, "op", ft_lot, lot_file(40, 3, salt=role))
    session.commit()
    client = as_role(role)
    page = client.get(f"/test-runs/{run.id}").get_data(as_text=True)
    assert "tester-07" in page and "V93K" in page
    assert "when its test insertion at this step closes" in page
    listing = client.get("/lots/LOT-FT/test-runs/view")
    assert listing.status_code == 200
    assert f'href="/test-runs/{run.id}"' in listing.get_data(as_text=True)


def test_run_page_shows_the_ptrs_that_belong_to_no_part(as_role, ft_lot, session):
    stray = encode_record("PTR", {"TEST_NUM": 100, "HEAD_NUM": 9, "SITE_NUM": 9, "TEST_FLG": 0,
                                  "PARM_FLG": 0, "RESULT": 1.0})
    run = services.import_stdf(session, "op", ft_lot, lot_file(5, extra_records=[stray] * 3))
    session.commit()
    assert run.orphan_ptrs == 3
    page = as_role("engineer").get(f"/test-runs/{run.id}").get_data(as_text=True)
    assert re.search(r"PTRs of no part</dt><dd[^>]*>3 ", page)


def test_run_pages_refused_to_customers(as_role, ft_lot, session):
    run = services.record_bins(session, "op", ft_lot, bins=[
        {"bin": 1, "count": 5, "passed": True}])
    session.commit()
    client = as_role("customer")
    assert client.get(f"/test-runs/{run.id}").status_code == 403
    assert client.get("/lots/LOT-FT/test-runs/view").status_code == 403
    assert client.get("/test-floor").status_code == 403


def test_test_floor_index_lists_products_and_latest_runs(as_role, ft_lot, session):
    run = services.record_bins(session, "op", ft_lot, bins=[
        {"bin": 1, "count": 5, "passed": True}])
    session.commit()
    page = as_role("qa").get("/test-floor").get_data(as_text=True)
    assert "/products/P1/sba/FT" in page
    assert f'href="/test-runs/{run.id}"' in page


# --- PAT -------------------------------------------------------------------------------

def test_pat_page_shows_the_histogram_with_spec_and_dynamic_limits(as_role, session):
    pat_history(session, 1)
    page = as_role("qa").get("/products/P1/pat/FT/300").get_data(as_text=True)
    assert 'class="chart histogram"' in page
    assert "chart-line spec" in page
    assert "chart-line pat-dynamic" in page
    assert "No static limits are in force" in page
    assert "Compute static limits" not in page


def test_engineer_computes_static_limits_from_the_pat_page(as_role, session):
    pat_history(session)
    client = as_role("engineer")
    resp = client.post("/products/P1/pat/FT/compute", data={"test": "300"})
    assert resp.status_code == 303
    limit_set = session.scalars(select(PatLimitSet)).one()
    assert (limit_set.test_num, limit_set.lots, limit_set.n) == (300, 6, 180)
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "chart-line pat-static" in page
    assert "H0, H1, H2, H3, H4, H5" in page
    index = client.get("/products/P1/pat").get_data(as_text=True)
    assert "/products/P1/pat/FT/300" in index


def test_static_limits_refused_without_history_and_nothing_written(as_role, session):
    pat_history(session, 2)
    client = as_role("engineer")
    page = refused(session, lambda: client.post("/products/P1/pat/FT/compute",
                                                     data={"test": "300"}), 409)
    assert "insufficient_history" in page


def test_static_limits_refused_to_operators(as_role, session):
    pat_history(session)
    client = as_role("operator")
    refused(session, lambda: client.post("/products/P1/pat/FT/compute"), 403)


def test_pat_page_of_a_step_that_is_not_a_test_step_is_404(as_role):
    assert as_role("qa").get("/products/P1/pat/WB/300").status_code == 404


# --- SBA -------------------------------------------------------------------------------

def test_sba_page_shows_the_yield_trend_with_syl1_and_syl2(as_role, session):
    for j, good in enumerate([950, 960, 945, 955, 965, 950, 900]):
        lot = lot_at_final_test(session, f"S{j}")
        services.record_bins(session, "op", lot, bins=[
            {"bin": 1, "count": good, "passed": True},
            {"bin": 8, "count": 1000 - good, "passed": False}])
        insertions.close(session, "op", lot, "FT")
        session.commit()
    page = as_role("planner").get("/products/P1/sba/FT").get_data(as_text=True)
    assert 'class="chart trend"' in page
    assert "chart-line syl1" in page and "chart-line syl2" in page
    assert page.count('class="chart-point"') == 7
    assert "SYL1 93.21 %" in page
    held = session.scalars(select(TestRun).order_by(TestRun.id.desc())).first()
    closed = session.get(TestInsertion, held.insertion_id)
    run_page = as_role("qa").get(f"/test-runs/{held.id}").get_data(as_text=True)
    assert f"Hold {closed.sba['hold']} on lot S6" in run_page
    assert "Material review board" in run_page and "Level 2" in run_page


def test_sba_page_without_runs_shows_an_empty_chart(as_role):
    page = as_role("qa").get("/products/P1/sba/FT").get_data(as_text=True)
    assert "No test runs yet." in page


def test_sba_and_pat_pages_refused_to_customers(as_role):
    client = as_role("customer")
    assert client.get("/products/P1/sba/FT").status_code == 403
    assert client.get("/products/P1/pat").status_code == 403
    assert client.get("/products/P1/pat/FT/300").status_code == 403
