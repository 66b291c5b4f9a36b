"""Test programs, bin definitions and PAT test lists of a product at a test step; an import
checked against the released program (a file from another program is refused, nothing of it
stored, the lot held); voided runs that count nowhere."""

from __future__ import annotations

import io
from typing import Any

import pytest
from sqlalchemy import func, select

from mes.audit.models import AuditEvent
from mes.db import utcnow
from mes.errors import Conflict
from mes.floor.models import Lot
from mes.quality.models import Hold
from mes.testfloor import programs
from mes.testfloor.models import (
    PatLimitVersion,
    TestBin,
    TestParam,
    TestProgram,
    TestRun,
    TestStepSetup,
)
from mes.testfloor.stdf_writer import TestSpec
from tests.helpers import audit_codes, refused, row_counts
from tests.testfloor.helpers import (
    MIR,
    STDF_DIR,
    bad,
    good,
    lot_at_final_test,
    lot_file,
    needs_shared_files,
    stdf,
)

pytestmark = pytest.mark.usefixtures("plant")
OCTET = {"Content-Type": "application/octet-stream"}
# The program the files of tests/testfloor/helpers.py (MIR) were written with.
PROGRAM = {"step": "FT", "job_name": "gd100_ft", "job_rev": "7", "temperature_c": 125,
           "part_type": "GD100"}
BINS = [{"bin": 1, "kind": "hard", "pass": True, "name": "Good"},
        {"bin": 8, "kind": "hard", "pass": False, "name": "Vout high", "reason": "R-BALL",
         "sba": True},
        {"bin": 9, "kind": "hard", "pass": False, "name": "PAT", "pat": True}]


@pytest.fixture
def eng(api):
    return api("engineer")


@pytest.fixture
def op(api):
    return api("operator")


@pytest.fixture
def ft_lot(session):
    """Lot LOT-FT, 2000 units of P1, queued at final test."""
    return lot_at_final_test(session, "LOT-FT", 2000)


def release(caller, **changes: Any) -> dict:
    resp = caller.post("/products/P1/test-programs", json={**PROGRAM, **changes})
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def upload(caller, data: bytes, lot_no: str = "LOT-FT"):
    return caller.post(f"/lots/{lot_no}/stdf", data=data, headers=OCTET)


def stored_runs(session) -> dict[str, Any]:
    """What an import refused for its program must leave as it was: the test data."""
    return row_counts(session, TestRun, TestParam)


def holds_of(session, lot: Lot, source: str = "test_program") -> list[Hold]:
    return list(session.scalars(select(Hold).where(Hold.lot_id == lot.id,
                                                   Hold.source == source)
                                .order_by(Hold.id)))


def program_rows(session) -> list[tuple]:
    return [tuple(r) for r in session.execute(
        select(TestProgram.id, TestProgram.job_rev, TestProgram.superseded_at)
        .order_by(TestProgram.id))]


# --- test programs ---------------------------------------------------------------------

def test_a_new_revision_supersedes_the_released_program_and_keeps_the_history(eng, session):
    first = release(eng)
    assert (first["product"], first["step"], first["job_name"], first["job_rev"],
            first["temperature_c"], first["temperature_tolerance_c"], first["part_type"],
            first["pat_limit_set"], first["released"]) == (
        "P1", "FT", "gd100_ft", "7", 125.0, 3.0, "GD100", None, True)
    # A program names a limit set computed for the product at the step (test setup: the
    # computation itself is tests/testfloor/test_pat_screen.py's).
    product_id = session.scalar(select(TestProgram.product_id).limit(1))
    session.add(PatLimitVersion(product_id=product_id, step_code="FT", name="PLS-3",
                                version=1, method="m", k=6, source_lots=[],
                                valid_until=utcnow()))
    session.commit()
    second = release(eng, job_rev="8", temperature_tolerance_c=2, pat_limit_set="PLS-3")
    assert second["pat_limit_set_version"] == 1
    listed = eng.get("/products/P1/test-programs?step=FT").get_json()["items"]
    assert [(p["id"], p["job_rev"], p["released"]) for p in listed] == [
        (second["id"], "8", True), (first["id"], "7", False)]
    assert listed[1]["superseded_by"] == listed[0]["released_by"]
    assert listed[0]["pat_limit_set"] == "PLS-3"
    assert programs.released_program(session, product_id, "FT").job_rev == "8"
    assert audit_codes(session, "product", "P1")[-2:] == ["product:test_program"] * 2


@pytest.mark.parametrize(("body", "status", "code", "field"), [
    ({"step": "WB"}, 422, "invalid", "step"),
    ({"step": "NOPE"}, 422, "invalid", "step"),
    ({"job_name": ""}, 422, "invalid", "job_name"),
    ({"job_rev": "   "}, 422, "invalid", "job_rev"),
    ({"temperature_c": None}, 422, "invalid", "temperature_c"),
    ({"temperature_tolerance_c": -1}, 422, "invalid", "temperature_tolerance_c"),
    ({"job_rev": "7"}, 409, "duplicate", None),
])
def test_a_release_that_breaks_a_rule_changes_nothing(eng, session, body, status, code, field):
    release(eng)
    refused(session, lambda: eng.post("/products/P1/test-programs", json={**PROGRAM, **body}),
            status, code, field)
    assert [row[1:] for row in program_rows(session)] == [("7", None)]


def test_only_engineers_release_programs(api, session):
    for caller in (api("operator"), api("qa")):
        refused(session, lambda c=caller: c.post("/products/P1/test-programs",
                                                 json=PROGRAM), 403, "forbidden")


# --- bins and PAT tests ----------------------------------------------------------------

def test_bins_are_defined_per_step_and_replaced_as_a_whole(eng, session):
    resp = eng.put("/products/P1/bins", json={"step": "FT", "bins": BINS,
                                              "pat_fallout_limit_pct": 0.8})
    assert resp.status_code == 200, resp.get_json()
    got = eng.get("/products/P1/bins?step=FT").get_json()
    assert got == resp.get_json()
    assert got["pat_fallout_limit_pct"] == 0.8
    assert [(b["bin"], b["kind"], b["pass"], b["reason"], b["sba"], b["pat"])
            for b in got["bins"]] == [(1, "hard", True, None, False, False),
                                      (8, "hard", False, "R-BALL", True, False),
                                      (9, "hard", False, None, False, True)]
    # Replaced: bin 8 becomes a soft bin only; the limit goes back to its default.
    resp = eng.put("/products/P1/bins", json={"step": "FT", "bins": [
        {"bin": 8, "kind": "soft", "pass": False, "name": "Vout", "reason": "R-SCRATCH"}]})
    assert [(b["bin"], b["kind"]) for b in resp.get_json()["bins"]] == [(8, "soft")]
    assert resp.get_json()["pat_fallout_limit_pct"] == 0.5
    assert session.scalar(select(func.count()).select_from(TestBin)) == 1
    assert audit_codes(session, "product", "P1")[-2:] == ["product:test_bins"] * 2


def test_a_step_without_definitions_answers_none(eng):
    got = eng.get("/products/P1/bins?step=FT").get_json()
    assert got == {"step": "FT", "bins": [], "pat_fallout_limit_pct": 0.5}
    assert eng.get("/products/P1/pat-tests?step=FT").get_json() == {"step": "FT",
                                                                   "tests": None}
    assert eng.get("/products/P1/bins?step=WB").status_code == 422


@pytest.mark.parametrize(("bins", "extra"), [
    # Two PAT bins.
    ([*BINS, {"bin": 10, "kind": "soft", "pass": False, "name": "PAT 2", "pat": True}], {}),
    # A passing bin with a reason, limited by SBA, or the PAT bin.
    ([{"bin": 1, "kind": "hard", "pass": True, "name": "Good", "reason": "R-BALL"}], {}),
    ([{"bin": 1, "kind": "hard", "pass": True, "name": "Good", "sba": True}], {}),
    ([{"bin": 1, "kind": "hard", "pass": True, "name": "Good", "pat": True}], {}),
    # A reason that is no reject reason, or none at all.
    ([{"bin": 8, "kind": "hard", "pass": False, "name": "X", "reason": "H-ENG"}], {}),
    ([{"bin": 8, "kind": "hard", "pass": False, "name": "X", "reason": "R-NONE"}], {}),
    # A bin twice, an unknown kind, a bin out of range, an empty name.
    ([BINS[0], {**BINS[0], "name": "again"}], {}),
    ([{"bin": 1, "kind": "medium", "pass": True, "name": "Good"}], {}),
    ([{"bin": 70000, "kind": "hard", "pass": True, "name": "Good"}], {}),
    ([{"bin": 1, "kind": "hard", "pass": True, "name": " "}], {}),
    # A fallout limit out of range.
    (BINS, {"pat_fallout_limit_pct": 0}),
    (BINS, {"pat_fallout_limit_pct": 101}),
    (BINS, {"step": "SAW"}),
])
def test_bin_definitions_that_break_a_rule_change_nothing(eng, session, bins, extra):
    assert eng.put("/products/P1/bins", json={"step": "FT", "bins": BINS}).status_code == 200
    refused(session, lambda: eng.put("/products/P1/bins",
                                     json={"step": "FT", "bins": bins, **extra}), 422, "invalid")


def test_a_retired_reject_reason_is_refused(eng, session):
    from mes.catalog.models import ReasonCode
    session.scalar(select(ReasonCode).where(ReasonCode.code == "R-BALL")).active = False
    session.commit()
    refused(session, lambda: eng.put("/products/P1/bins", json={"step": "FT", "bins": BINS}),
            422, "invalid", "bins")


def test_the_pat_test_list_limits_pat_to_the_chosen_tests(eng, op, session, ft_lot):
    resp = eng.put("/products/P1/pat-tests", json={"step": "FT", "tests": [200, 100, 200]})
    assert resp.get_json() == {"step": "FT", "tests": [100, 200]}
    resp = eng.put("/products/P1/pat-tests", json={"step": "FT", "tests": [100]})
    assert eng.get("/products/P1/pat-tests?step=FT").get_json() == {"step": "FT",
                                                                   "tests": [100]}
    assert audit_codes(session, "product", "P1")[-2:] == ["product:pat_tests"] * 2
    resp = upload(op, lot_file(40))
    assert resp.status_code == 201, resp.get_json()
    # Both tests have 40 passing values; only the chosen one is screened, both are stored.
    assert list(resp.get_json()["pat"]["per_test"]) == ["100"]
    assert sorted(session.scalars(select(TestParam.test_num))) == [100, 200]


def test_without_a_chosen_list_every_test_with_enough_values_is_screened(op, session, ft_lot):
    resp = upload(op, lot_file(40))
    assert sorted(resp.get_json()["pat"]["per_test"]) == ["100", "200"]


def test_an_empty_pat_test_list_screens_no_test(eng, op, ft_lot):
    eng.put("/products/P1/pat-tests", json={"step": "FT", "tests": []})
    resp = upload(op, lot_file(40))
    assert resp.get_json()["pat"]["per_test"] == {}
    assert resp.get_json()["pat"]["mode"] == "none"


# --- the import checked against the released program -----------------------------------

def test_a_file_of_the_released_program_is_imported_without_warning(eng, op, ft_lot, session):
    release(eng)
    eng.put("/products/P1/bins", json={"step": "FT", "bins": BINS})
    resp = upload(op, lot_file(30, 5))
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["warnings"] == []
    assert holds_of(session, ft_lot) == []


def test_without_a_released_program_the_import_warns(op, ft_lot):
    resp = upload(op, lot_file(30))
    assert resp.status_code == 201
    assert resp.get_json()["warnings"] == [
        "No test program is released for this product at FT: the file was not checked "
        "against one."]


def test_a_blank_mode_passes_with_a_warning(eng, op, ft_lot):
    release(eng)
    resp = upload(op, lot_file(30, mir={**MIR, "MODE_COD": " "}))
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["warnings"] == [
        "MIR.MODE_COD is blank: the tester did not say it tested in production mode."]


@pytest.mark.parametrize(("temperature", "accepted"), [
    ("125", True), ("128", True), ("122", True), ("+125.0", True), ("125C", True),
    ("125 °C", True), ("128.5", False), ("121", False), ("25", False), ("", False),
    ("hot", False)])
def test_the_temperature_is_checked_within_the_tolerance(eng, op, ft_lot, session,
                                                         temperature, accepted):
    release(eng)
    resp = upload(op, lot_file(30, mir={**MIR, "TST_TEMP": temperature}))
    if accepted:
        assert resp.status_code == 201, resp.get_json()
    else:
        error = resp.get_json()["error"]
        assert (resp.status_code, error["code"], list(error["fields"])) == (
            409, "program_mismatch", ["temperature"])
        assert error["fields"]["temperature"] == [
            f"expected 125 °C ± 3 °C, found {temperature or 'nothing'}"]


@pytest.mark.parametrize(("mir", "fields"), [
    ({"JOB_NAM": "other_ft"}, {"job_name": ["expected gd100_ft, found other_ft"]}),
    ({"JOB_REV": "6"}, {"job_rev": ["expected 7, found 6"]}),
    ({"JOB_REV": ""}, {"job_rev": ["expected 7, found nothing"]}),
    ({"PART_TYP": "GD200"}, {"part_type": ["expected GD100, found GD200"]}),
    ({"MODE_COD": "E"}, {"mode_code": ["expected P (production), found E"]}),
    ({"MODE_COD": "C"}, {"mode_code": ["expected P (production), found C"]}),
    ({"MODE_COD": "D"}, {"mode_code": ["expected P (production), found D"]}),
    ({"MODE_COD": "Q"}, {"mode_code": ["expected P (production), found Q"]}),
    ({"TST_TEMP": "-40", "JOB_NAM": "x"}, {
        "job_name": ["expected gd100_ft, found x"],
        "temperature": ["expected 125 °C ± 3 °C, found -40"]}),
])
def test_a_file_of_another_program_is_refused_stored_nowhere_and_holds_the_lot(
        eng, op, ft_lot, session, mir, fields):
    release(eng)
    error = refused(session, lambda: upload(op, lot_file(30, mir={**MIR, **mir})), 409,
                    "program_mismatch", state=stored_runs)
    assert error["fields"] == fields
    # The hold is committed with the refusal (the request's transaction), the run is not.
    session.expire_all()
    held = holds_of(session, ft_lot)
    assert [(h.status, h.step_code, h.placed_by, h.text_code) for h in held] == [
        ("open", "FT", "system", "program_mismatch")]
    assert error["hold"] == held[0].id
    assert sorted(held[0].data["mismatches"]) == sorted(fields)
    assert held[0].comment.startswith(
        "Tested at FT with another program than the one released (gd100_ft revision 7), "
        "differing in: ")
    assert error["message"].startswith("The file was not tested with the program released "
                                       "for P1 at FT (gd100_ft revision 7), differing in: ")
    assert session.get(Lot, ft_lot.id).open_holds == 1
    assert stored_runs(session) == {"test_run": 0, "test_param": 0}


def test_a_second_wrong_file_adds_no_second_hold(eng, op, ft_lot, session):
    release(eng)
    assert upload(op, lot_file(30, mir={**MIR, "JOB_REV": "6"})).status_code == 409
    assert upload(op, lot_file(31, mir={**MIR, "JOB_REV": "5"})).status_code == 409
    assert len(holds_of(session, ft_lot)) == 1


def test_a_part_type_is_checked_only_when_the_program_names_one(eng, op, ft_lot):
    release(eng, part_type=None)
    resp = upload(op, lot_file(30, mir={**MIR, "PART_TYP": "anything"}))
    assert resp.status_code == 201, resp.get_json()


def test_bins_not_defined_for_the_step_are_refused(eng, op, ft_lot, session):
    release(eng)
    eng.put("/products/P1/bins", json={"step": "FT", "bins": [
        *BINS, {"bin": 1, "kind": "soft", "pass": True, "name": "Good"}]})
    parts = [good(i, part_id=f"g{i}") for i in range(30)]
    parts += [bad(0, 7, part_id="b0"), bad(1, 12, part_id="b1"), bad(2, 8, part_id="b2")]
    error = refused(session, lambda: upload(op, stdf(parts)), 409, "program_mismatch",
                    state=stored_runs)
    assert error["fields"] == {
        "hard_bins": ["expected only the bins defined for the product (1, 8, 9), found 7, 12"],
        "soft_bins": ["expected only the bins defined for the product (1), found 7, 8, 12"]}


def test_bins_are_not_checked_for_a_kind_the_step_does_not_define(eng, op, ft_lot):
    release(eng)
    eng.put("/products/P1/bins", json={"step": "FT", "bins": BINS})
    parts = [good(i, part_id=f"g{i}") for i in range(30)] + [bad(0, 8, part_id="b0")]
    # Soft bins 1 and 8 are in the file; no soft bin is defined.
    assert upload(op, stdf(parts)).status_code == 201


def test_the_refusal_reaches_the_upload_page_and_keeps_the_hold(eng, client, login,
                                                                make_user, ft_lot, session):
    release(eng)
    login(make_user("operator"))
    resp = client.post("/lots/LOT-FT/stdf/upload", data={
        "step": "FT", "file": (io.BytesIO(lot_file(30, mir={**MIR, "JOB_REV": "2"})),
                               "x.stdf")}, content_type="multipart/form-data")
    assert resp.status_code == 409
    assert "expected 7, found 2" in resp.get_data(as_text=True)
    session.expire_all()
    assert len(holds_of(session, ft_lot)) == 1
    assert stored_runs(session) == {"test_run": 0, "test_param": 0}


@needs_shared_files
@pytest.mark.parametrize(("name", "fields"), [
    ("credence_ft.std", {"part_type": ["expected GD-5532, found spm3f_dual"],
                         "job_name": ["expected gd5532_ft, found spm3f_final"],
                         "job_rev": ["expected 4, found 1.0"],
                         "temperature": ["expected 25 °C ± 3 °C, found nothing"]}),
    ("lot3.stdf", {"part_type": ["expected GD-5532, found GOLD8BAR"],
                   "job_name": ["expected gd5532_ft, found mobile-05"],
                   "job_rev": ["expected 4, found 16"],
                   "mode_code": ["expected P (production), found E"],
                   "temperature": ["expected 25 °C ± 3 °C, found nothing"]}),
])
def test_the_foreign_real_files_are_refused_for_a_product_with_a_program(
        eng, op, ft_lot, session, name, fields):
    release(eng, part_type="GD-5532", job_name="gd5532_ft", job_rev="4", temperature_c=25)
    error = refused(session, lambda: upload(op, (STDF_DIR / name).read_bytes()), 409,
                    "program_mismatch", state=stored_runs)
    if name == "credence_ft.std":
        # TST_TEMP "25" is written; the file's temperature is right.
        fields.pop("temperature")
    assert error["fields"] == fields
    session.expire_all()
    assert [h.source for h in holds_of(session, ft_lot)] == ["test_program"]
    assert stored_runs(session) == {"test_run": 0, "test_param": 0}


# --- voiding ---------------------------------------------------------------------------

def test_a_voided_run_stays_visible_with_who_when_and_why(api, op, ft_lot, session):
    run = upload(op, lot_file(30)).get_json()
    assert run["voided"] is None
    qa = api("qa")
    resp = qa.post(f"/test-runs/{run['id']}/void", json={"reason": "Foreign file"})
    assert resp.status_code == 200, resp.get_json()
    voided = resp.get_json()["voided"]
    assert (voided["by"], voided["reason"]) == (qa.user.username, "Foreign file")
    assert voided["at"]
    assert op.get(f"/test-runs/{run['id']}").get_json()["voided"] == voided
    listed = op.get("/lots/LOT-FT/test-runs").get_json()["items"]
    assert [r["voided"] for r in listed] == [voided]
    assert audit_codes(session, "test_run", str(run["id"])) == ["test_run:void"]


def test_a_customer_sees_a_voided_run_without_who_voided_it(api, op, ft_lot):
    run = upload(op, lot_file(30)).get_json()
    api("qa").post(f"/test-runs/{run['id']}/void", json={"reason": "Foreign file"})
    listed = api("customer", customer="OEM").get("/lots/LOT-FT/test-runs").get_json()
    voided = listed["items"][0]["voided"]
    assert sorted(voided) == ["at", "reason"]
    assert voided["reason"] == "Foreign file"


def test_voiding_again_or_without_a_reason_or_as_an_operator_is_refused(api, op, ft_lot,
                                                                        session):
    run = upload(op, lot_file(30)).get_json()
    eng = api("engineer")
    session.commit()
    refused(session, lambda: eng.post(f"/test-runs/{run['id']}/void", json={"reason": " "}),
            422, "invalid", "reason")
    refused(session, lambda: op.post(f"/test-runs/{run['id']}/void", json={"reason": "x"}),
            403, "forbidden")
    assert eng.post(f"/test-runs/{run['id']}/void", json={"reason": "x"}).status_code == 200
    refused(session, lambda: eng.post(f"/test-runs/{run['id']}/void", json={"reason": "y"}),
            409, "already_voided")
    assert eng.post("/test-runs/999999/void", json={"reason": "x"}).status_code == 404


def test_the_service_refuses_a_second_void_of_the_same_run(op, ft_lot, session):
    run_id = upload(op, lot_file(30)).get_json()["id"]
    run = session.get(TestRun, run_id)
    programs.void_run(session, "qa", run, reason="wrong lot")
    with pytest.raises(Conflict) as caught:
        programs.void_run(session, "qa", run, reason="again")
    assert caught.value.code == "already_voided"
    assert run.void_reason == "wrong lot"


def _sba_lots(session, run_id: int) -> list[str]:
    return session.get(TestRun, run_id).sba["lots"]


def test_a_voided_run_leaves_the_sba_history(op, eng, session):
    lots = [lot_at_final_test(session, f"L{i}", 100) for i in range(3)]
    runs = [upload(op, lot_file(30, salt=lot.lot_no), lot.lot_no).get_json()
            for lot in lots]
    assert runs[2]["sba"]["history_lots"] == 2
    eng.post(f"/test-runs/{runs[0]['id']}/void", json={"reason": "foreign"})
    lot_at_final_test(session, "L3", 100)
    run = upload(op, lot_file(30, salt="L3"), "L3").get_json()
    # Newest first; L0's run is voided.
    assert _sba_lots(session, runs[2]["id"]) == ["L1", "L0"]
    assert _sba_lots(session, run["id"]) == ["L2", "L1"]


def _pat_index_tests(client) -> str:
    return client.get("/products/P1/pat").get_data(as_text=True)


def test_voiding_a_foreign_file_restores_the_products_tests(op, eng, session, client, login,
                                                           make_user):
    own = lot_at_final_test(session, "OWN", 100)
    upload(op, lot_file(30, salt="own"), own.lot_no)
    foreign = lot_at_final_test(session, "FOREIGN", 100)
    run = upload(op, stdf([good(i, part_id=f"f{i}", results=[(100, 1.5), (777, 3.0)])
                           for i in range(30)],
                          tests={100: TestSpec("zzz_foreign", "V", 0, 5),
                                 777: TestSpec("foreign_only", "V", 0, 9)}),
                 foreign.lot_no).get_json()
    login(make_user("engineer"))
    page = _pat_index_tests(client)
    assert "foreign_only" in page and "zzz_foreign" in page
    eng.post(f"/test-runs/{run['id']}/void", json={"reason": "foreign device"})
    page = _pat_index_tests(client)
    assert "foreign_only" not in page and "zzz_foreign" not in page
    assert "vout" in page and "idd" in page


def test_static_pat_limits_leave_voided_runs_out(op, eng, session):
    runs = []
    for i in range(7):
        lot = lot_at_final_test(session, f"H{i}", 100)
        runs.append(upload(op, lot_file(40, salt=lot.lot_no), lot.lot_no).get_json())
    resp = eng.post("/products/P1/pat-limits", json={"step": "FT", "tests": [100]})
    assert resp.get_json()["limit_sets"][0]["lots"] == 7
    for run in runs[:2]:
        eng.post(f"/test-runs/{run['id']}/void", json={"reason": "foreign"})
    resp = eng.post("/products/P1/pat-limits", json={"step": "FT", "tests": [100]})
    assert resp.status_code == 409
    assert resp.get_json()["error"]["code"] == "insufficient_history"


def test_the_audit_record_of_a_void_names_the_run(api, op, ft_lot, session):
    run = upload(op, lot_file(30)).get_json()
    api("engineer").post(f"/test-runs/{run['id']}/void", json={"reason": "wrong program"})
    record = session.scalar(select(AuditEvent).where(AuditEvent.code == "test_run:void"))
    assert (record.data["lot"], record.data["step"], record.data["reason"]) == (
        "LOT-FT", "FT", "wrong program")


def test_setup_rows_are_one_per_product_and_step(eng, session):
    eng.put("/products/P1/bins", json={"step": "FT", "bins": BINS})
    eng.put("/products/P1/pat-tests", json={"step": "FT", "tests": [100]})
    assert session.scalar(select(func.count()).select_from(TestStepSetup)) == 1
