"""PAT as a screen (AEC-Q001): versioned static limit sets a released program names, escapes
(parts binned good outside the limits in force) that hold the lot and stop its shipment
until QA dispositions them, parts removed to the PAT bin, and the lot's dynamic limits for
the tester's re-screen, with the check values of PRODUCT.md."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from sqlalchemy import select

from mes.catalog import services as cat
from mes.floor.models import Lot
from mes.quality.models import Hold
from mes.shipping.models import Shipment
from mes.testfloor import pat, programs, services
from mes.testfloor.models import PatLimitVersion, TestProgram, TestRun
from mes.testfloor.stdf_writer import PartSpec, TestSpec
from tests.floor.helpers import track_in, track_out
from tests.helpers import audit_codes, refused, row_counts
from tests.testfloor.helpers import MIR, stdf, stored_state

pytestmark = pytest.mark.usefixtures("plant")

CHECK_PAT = [*range(1, 20), 100]
CHECK_LO, CHECK_HI = -31.722222, 52.722222
PROGRAM = {"step": "FT", "job_name": MIR["JOB_NAM"], "job_rev": MIR["JOB_REV"],
           "temperature_c": 125}
BINS = [{"bin": 1, "kind": "hard", "pass": True, "name": "Good"},
        {"bin": 8, "kind": "hard", "pass": False, "name": "Vout high", "reason": "R-BALL"},
        {"bin": 9, "kind": "hard", "pass": False, "name": "PAT", "pat": True}]

_files = itertools.count()


@pytest.fixture
def p3(session):
    """Product P3 (industrial, MSL 1) on a route whose only step is the final test FT, so
    a lot tracked out of FT is completed (a running lot may be tracked out while held)."""
    cat.create_route(session, "test", {"code": "TO", "name": "Test only", "steps": [
        {"code": "FT", "name": "Final test", "kind": "test", "equipment_kind": "tester",
         "min_yield": None, "materials": []}]})
    cat.create_product(session, "test", {"code": "P3", "name": "Test only", "package": "QFN",
                                         "route": "TO", "aec_grade": None, "msl": "1",
                                         "customer": None})
    session.commit()


def new_lot(session, lot_no: str, quantity: int = 1000) -> Lot:
    from mes.floor import services as floor
    lot = floor.receive_lot(session, "planner", {
        "product": "P3", "customer": "IND", "quantity": quantity, "fab_lot": "FAB1",
        "wafers": [], "lot_no": lot_no, "priority": 3, "due_date": None})
    session.commit()
    return lot


def part(value: float, bin_no: int = 1, test: int = 300) -> PartSpec:
    return PartSpec(hard_bin=bin_no, soft_bin=bin_no, passed=bin_no == 1,
                    part_id=f"p{next(_files)}", results=[(test, value)])


def values_file(values: list[float], *, test: int = 300, pat_bin: int = 0,
                spec: TestSpec | None = None) -> bytes:
    """One passing part per value (and `pat_bin` parts in the PAT bin 9)."""
    parts = [part(v, test=test) for v in values]
    parts += [part(200.0, 9, test) for _ in range(pat_bin)]
    return stdf(parts, tests={test: spec or TestSpec("x", "u")})


def import_values(session, lot: Lot, values: list[float], **kw: Any) -> TestRun:
    run = services.import_stdf(session, "op", lot, values_file(values, **kw))
    session.commit()
    return run


def check_lots(scale: float = 1.0) -> list[list[float]]:
    """Six lots of 30 values whose pool is CHECK_PAT nine times (the same quartiles)."""
    pooled = sorted(v * scale for v in CHECK_PAT * 9)
    return [pooled[j::6] for j in range(6)]


def history(session, per_lot: list[list[float]], prefix: str = "H") -> list[Lot]:
    lots = []
    for j, values in enumerate(per_lot):
        lot = new_lot(session, f"{prefix}{j}")
        import_values(session, lot, values)
        lots.append(lot)
    return lots


def compute(eng, **body: Any) -> dict:
    resp = eng.post("/products/P3/pat-limit-sets", json={"step": "FT", **body})
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


@pytest.fixture
def eng(api):
    return api("engineer")


def open_pat_holds(session, lot: Lot) -> list[Hold]:
    return list(session.scalars(select(Hold).where(Hold.lot_id == lot.id,
                                                   Hold.source == "pat",
                                                   Hold.status == "open")))


# --- limit sets ------------------------------------------------------------------------

@pytest.mark.usefixtures("p3")
def test_a_limit_set_version_gives_the_check_values_and_versions_count_up(session, eng):
    history(session, check_lots())
    first = compute(eng)
    (limits,) = first["limits"]
    assert (first["product"], first["step"], first["name"], first["version"], first["k"],
            first["skipped"]) == ("P3", "FT", "P3-FT-PAT", 1, 6.0, [])
    assert limits["lo"] == pytest.approx(CHECK_LO, abs=1e-6)
    assert limits["hi"] == pytest.approx(CHECK_HI, abs=1e-6)
    assert (limits["median"], limits["q1"], limits["q3"], limits["n"]) == (10.5, 5.75, 15.25,
                                                                           180)
    assert first["source_lots"] == [f"H{j}" for j in range(6)]
    second = compute(eng)
    third = compute(eng, name="FT-STATIC")
    assert [(v["name"], v["version"]) for v in (second, third)] == [
        ("P3-FT-PAT", 2), ("FT-STATIC", 3)]
    listed = eng.get("/products/P3/pat-limit-sets?step=FT").get_json()["items"]
    assert [v["version"] for v in listed] == [3, 2, 1]
    assert [len(v["limits"]) for v in listed] == [1, 1, 1]
    assert audit_codes(session, "product", "P3")[-1] == "product:pat_limits"


@pytest.mark.usefixtures("p3")
def test_a_voided_run_leaves_the_limit_set_s_history(session, eng):
    history(session, check_lots())
    outlier = import_values(session, new_lot(session, "H6"), [1000.0 + i for i in range(40)])
    skewed = compute(eng)
    assert "H6" in skewed["source_lots"]
    assert skewed["limits"][0]["median"] != 10.5
    assert eng.post(f"/test-runs/{outlier.id}/void",
                    json={"reason": "wrong lot"}).status_code == 200
    clean = compute(eng)
    assert clean["version"] == skewed["version"] + 1
    assert "H6" not in clean["source_lots"]
    assert clean["limits"][0]["lo"] == pytest.approx(CHECK_LO, abs=1e-6)
    assert clean["limits"][0]["hi"] == pytest.approx(CHECK_HI, abs=1e-6)


@pytest.mark.usefixtures("p3")
def test_a_limit_set_needs_the_history_and_a_refusal_changes_nothing(session, eng):
    history(session, check_lots()[:5])
    before = stored_state(session)
    versions = row_counts(session, PatLimitVersion)
    resp = eng.post("/products/P3/pat-limit-sets", json={"step": "FT"})
    assert (resp.status_code, resp.get_json()["error"]["code"]) == (409,
                                                                    "insufficient_history")
    resp = eng.post("/products/P3/pat-limit-sets", json={"step": "NOPE"})
    assert resp.status_code == 422
    assert stored_state(session) == before
    assert row_counts(session, PatLimitVersion) == versions


@pytest.mark.usefixtures("p3")
def test_a_program_names_the_version_in_force(session, eng):
    history(session, check_lots())
    compute(eng, name="FT-STATIC")
    resp = eng.post("/products/P3/test-programs", json={**PROGRAM, "pat_limit_set": "FT-STATIC"})
    assert resp.status_code == 201, resp.get_json()
    assert (resp.get_json()["pat_limit_set"], resp.get_json()["pat_limit_set_version"]) == (
        "FT-STATIC", 1)
    # A newer version with tighter limits does not apply until a program names it.
    history(session, check_lots(scale=0.5), prefix="N")
    compute(eng)
    run = import_values(session, new_lot(session, "L1"), [*range(1, 20), 30] * 2)
    assert run.pat["limit_set"] == {"name": "FT-STATIC", "version": 1}
    assert (run.pat["escapes"], run.pat["dynamic"]) == (0, False)
    resp = eng.post("/products/P3/test-programs", json={
        **PROGRAM, "job_rev": "8", "pat_limit_set": "FT-STATIC", "pat_limit_set_version": 2})
    assert resp.status_code == 201, resp.get_json()
    assert programs.released_program(session, run.product_id, "FT").pat_limit_set_version == 2


@pytest.mark.usefixtures("p3")
def test_a_program_naming_an_unknown_set_is_refused_and_nothing_changes(session, eng):
    history(session, check_lots())
    compute(eng, name="FT-STATIC")
    before = row_counts(session, TestProgram)
    for body, field in [({"pat_limit_set": "NOPE"}, "pat_limit_set"),
                        ({"pat_limit_set": "FT-STATIC", "pat_limit_set_version": 9},
                         "pat_limit_set"),
                        ({"pat_limit_set_version": 1}, "pat_limit_set")]:
        resp = eng.post("/products/P3/test-programs", json={**PROGRAM, **body})
        assert resp.status_code == 422, body
        assert list(resp.get_json()["error"]["fields"]) == [field]
    assert row_counts(session, TestProgram) == before


# --- escapes ---------------------------------------------------------------------------

@pytest.mark.usefixtures("p3")
def test_a_good_part_outside_the_static_limits_is_an_escape_that_holds_the_lot(session, eng):
    history(session, check_lots())
    compute(eng)
    lot = new_lot(session, "L1")
    run = import_values(session, lot, [*range(1, 20), 100, 120])
    assert (run.pat["limit_set"], run.pat["dynamic"], run.pat["escapes"], run.pat["removed"],
            run.pat["escapes_per_test"]) == (
        {"name": "P3-FT-PAT", "version": 1}, False, 2, 0, {"300": 2})
    (hold,) = open_pat_holds(session, lot)
    assert (hold.text_code, hold.placed_by, hold.data["escapes"], hold.data["kind"],
            run.pat["hold"]) == ("pat_escape", "system", 2, "escape", hold.id)
    assert "2 part(s) binned good lie outside the static PAT limits" in hold.comment
    assert "version 1" in hold.comment
    # Inside the limits: no escape, no hold.
    clean = new_lot(session, "L2")
    run = import_values(session, clean, [*range(1, 20), 50])
    assert (run.pat["escapes"], open_pat_holds(session, clean)) == (0, [])


@pytest.mark.usefixtures("p3")
def test_escapes_count_only_the_step_s_pat_tests_and_removed_counts_the_pat_bin(session,
                                                                                  eng):
    history(session, check_lots())
    compute(eng)
    assert eng.put("/products/P3/bins", json={"step": "FT", "bins": BINS}).status_code == 200
    assert eng.put("/products/P3/pat-tests",
                   json={"step": "FT", "tests": [400]}).status_code == 200
    lot = new_lot(session, "L1")
    run = import_values(session, lot, [*range(1, 20), 100], pat_bin=3)
    assert (run.pat["escapes"], run.pat["removed"]) == (0, 3)
    assert open_pat_holds(session, lot) == []


@pytest.mark.usefixtures("p3")
def test_without_limits_in_force_nothing_escapes(session):
    run = import_values(session, new_lot(session, "L1"), [*range(1, 20), 100] * 2)
    assert (run.pat["limit_set"], run.pat["escapes"], run.pat["removed"]) == (None, 0, 0)


@pytest.mark.usefixtures("p3")
def test_an_escape_stops_the_shipment_until_qa_dispositions_it(session, eng, api):
    history(session, check_lots())
    compute(eng)
    lot = new_lot(session, "LOT-E", quantity=21)
    track_in(session, lot)
    import_values(session, lot, [*range(1, 21), 100])
    track_out(session, lot)
    assert lot.state == "completed"
    (hold,) = open_pat_holds(session, lot)
    planner = api("planner")
    before = stored_state(session)
    shipments = row_counts(session, Shipment)
    resp = planner.post("/shipments", json={"customer": "IND", "po": "PO-1",
                                            "lots": ["LOT-E"]})
    assert (resp.status_code, resp.get_json()["error"]["code"]) == (409, "pat_escape")
    assert "1 unresolved PAT escape" in resp.get_json()["error"]["message"]
    assert stored_state(session) == before
    assert row_counts(session, Shipment) == shipments
    qa = api("qa")
    resp = qa.post(f"/holds/{hold.id}/release",
                   json={"disposition": "release", "comment": "escape reviewed"})
    assert resp.status_code == 200, resp.get_json()
    resp = planner.post("/shipments", json={"customer": "IND", "po": "PO-1",
                                            "lots": ["LOT-E"]})
    assert resp.status_code == 201, resp.get_json()


# --- dynamic limits --------------------------------------------------------------------

@pytest.mark.usefixtures("p3")
def test_the_lot_s_dynamic_limits_give_the_check_values(session, eng):
    lot = new_lot(session, "L1")
    import_values(session, lot, CHECK_PAT * 2)
    # A later file is no first pass: the limits stay the first pass's.
    import_values(session, lot, [1.0, 2.0, 3.0] * 20)
    body = eng.get("/lots/L1/insertions/FT/pat-limits").get_json()
    (test,) = body["tests"]
    assert (test["test"], test["n"]) == (300, 40)
    assert test["low"] == pytest.approx(CHECK_LO, abs=1e-6)
    assert test["high"] == pytest.approx(CHECK_HI, abs=1e-6)


@pytest.mark.usefixtures("p3")
def test_dynamic_limits_are_never_wider_than_the_test_limits_and_follow_the_pat_list(
        session, eng):
    lot = new_lot(session, "L1")
    import_values(session, lot, [1.0 + i / 40 for i in range(41)],
                  spec=TestSpec("v", "V", 1.0, 2.0, spec_lo=0.5, spec_hi=1.875))
    (test,) = eng.get("/lots/L1/insertions/FT/pat-limits").get_json()["tests"]
    assert (test["low"], test["high"]) == (1.0, 1.875)
    assert eng.put("/products/P3/pat-tests",
                   json={"step": "FT", "tests": [999]}).status_code == 200
    assert eng.get("/lots/L1/insertions/FT/pat-limits").get_json() == {"tests": []}


@pytest.mark.usefixtures("p3")
def test_dynamic_limits_leave_out_small_and_flat_tests(session):
    lot = new_lot(session, "L1")
    import_values(session, lot, [5.0] * 35 + [6.0] * 5)
    assert pat.lot_dynamic_limits(session, lot, "FT") == []
    small = new_lot(session, "L2")
    import_values(session, small, CHECK_PAT)
    assert pat.lot_dynamic_limits(session, small, "FT") == []


@pytest.mark.usefixtures("p3")
def test_dynamic_limits_need_a_first_pass(session, eng):
    new_lot(session, "L1")
    resp = eng.get("/lots/L1/insertions/FT/pat-limits")
    assert (resp.status_code, resp.get_json()["error"]["code"]) == (409, "no_test_data")
    resp = eng.get("/lots/L1/insertions/SAW/pat-limits")
    assert resp.status_code == 422


# --- the engineer's pages --------------------------------------------------------------

@pytest.fixture
def as_role(make_user, login):
    def do(role: str):
        return login(make_user(role))
    return do


@pytest.mark.usefixtures("p3")
def test_an_engineer_computes_a_version_on_the_programs_page(session, as_role):
    history(session, check_lots())
    client = as_role("engineer")
    page = client.get("/products/P3/test-programs/view").get_data(as_text=True)
    assert "No limit set computed at this step." in page
    resp = client.post("/products/P3/pat-limit-sets/FT/compute", data={"name": "FT-STATIC"})
    assert resp.status_code == 303
    resp = client.post("/products/P3/test-programs/new", data={
        "step": "FT", "job_name": "gd100_ft", "job_rev": "7", "temperature_c": "125",
        "pat_limit_set": "FT-STATIC", "pat_limit_set_version": "1"})
    assert resp.status_code == 303
    page = client.get("/products/P3/test-programs/view").get_data(as_text=True)
    assert 'data-limit-sets="FT"' in page and "FT-STATIC" in page
    assert "In force: FT-STATIC, version 1." in page
    assert session.scalars(select(PatLimitVersion.version)).all() == [1]


@pytest.mark.usefixtures("p3")
def test_a_refused_computation_on_the_page_stores_nothing(session, as_role):
    history(session, check_lots()[:5])
    client = as_role("engineer")
    text = refused(session, lambda: client.post("/products/P3/pat-limit-sets/FT/compute",
                                                data={}), 409, state=stored_state)
    assert "insufficient_history" in text
    assert row_counts(session, PatLimitVersion) == {"pat_limit_version": 0}


@pytest.mark.usefixtures("p3")
def test_only_engineers_compute_limit_sets(session, as_role):
    history(session, check_lots())
    client = as_role("operator")
    page = client.get("/products/P3/test-programs/view")
    assert page.status_code == 200
    assert "Compute a new version" not in page.get_data(as_text=True)
    assert client.post("/products/P3/pat-limit-sets/FT/compute", data={}).status_code == 403
    assert row_counts(session, PatLimitVersion) == {"pat_limit_version": 0}
