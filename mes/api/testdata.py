"""Test data endpoints: STDF import and bin summaries (operators, engineers and testers'
machine users), test runs (customers: their own lots' runs), static PAT limits (engineers)."""

from __future__ import annotations

from typing import IO, Any, cast

from flask import Response, jsonify, request
from flask_login import current_user
from werkzeug.wsgi import LimitedStream

from mes import db
from mes.api import bp
from mes.api.registry import ListArgs, Page, api_route, paginate, schema_instance
from mes.auth.permissions import Permission
from mes.auth.scope import scope_customer
from mes.catalog import services as catalog
from mes.errors import InvalidInput
from mes.floor import services as floor
from mes.testfloor import insertions, pat, programs, services
from mes.testfloor import schemas as s
from mes.testfloor.models import PatLimitVersion, TestRun
from mes.testfloor.services import PatComputation

STDF_BODY = {
    "required": True,
    "description": "The STDF V4 file (plain or gzip), as the raw body or as the multipart "
                   "field `file`.",
    "content": {
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        "multipart/form-data": {"schema": {
            "type": "object", "required": ["file"],
            "properties": {"file": {"type": "string", "format": "binary"}}}},
    },
}


def _upload() -> IO[bytes]:
    """The file of an STDF upload, as a stream for the import to read in pieces: the
    multipart field `file` (which Werkzeug spools to a temporary file beyond 500 KB), else
    the raw body, straight from the request."""
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("file")
        if upload is None:
            message = "Send the STDF file as the multipart field `file` (or as the raw body)."
            raise InvalidInput(message, fields={"file": [message]})
        return upload.stream
    if request.content_length is None:
        return request.stream
    # No read past the body's end: one there would find Werkzeug's maximum
    # (MAX_CONTENT_LENGTH) reached by a body of exactly that size, and answer 413.
    return cast(IO[bytes], LimitedStream(request.stream, request.content_length))


@api_route(bp, "/lots/<lot_no>/stdf", method="POST", permission=Permission.TEST_WRITE,
           query=s.StdfQuery, raw_body=STDF_BODY, response=s.PlantTestRunOut, tag="test data")
def import_stdf(lot_no: str, args: dict[str, Any]) -> TestRun:
    """Import an STDF V4 file as a test run of the lot at a test step.

    `step` defaults to the lot's current step, which must be a test step; the lot must be
    at that step (queued or running) and does not move. Counts come from the part records.
    A file that is not STDF V4 or is truncated is 422 `invalid_stdf` (the message names the
    byte offset); the same content imported before, for any lot, is 409 `duplicate`. With a
    test program released for the product at the step, a file from another program (MIR
    PART_TYP, JOB_NAM, JOB_REV, MODE_COD, TST_TEMP, or a bin the step does not define) is
    409 `program_mismatch` with `fields` naming each difference: nothing of it is stored
    and the lot is held (source `test_program`, the answer's `hold`). Without one, the run
    carries a warning. PAT failures are counted (on the product's PAT tests when chosen)
    and the run joins the lot's test insertion at the step (`insertion`, `pass`): the
    first file opens it (P1); later files are retests (R1, R2, ...) or resumes, as query
    `pass` says (default: MIR.RTST_COD Y/1-9 retest, N/0 resume, blank retest). A retest
    testing more units than failed before it is 422 `retest_exceeds_failures`; a file for
    a closed insertion is 409 `insertion_closed`. SBA is judged when the insertion closes.
    PAT is a screen (AEC-Q001): a part binned good outside the static limit set in force
    (the released program's) is an escape and holds the lot (source `pat`; the run's
    `pat: {limit_set, dynamic, escapes, removed}`); `pass=rescreen` is the re-screen of
    the good units against the lot's dynamic limits (`GET .../pat-limits`), named S1,
    S2, ..., at most the insertion's good units (422 otherwise).
    """
    session = db.session()
    lot = floor.get_lot(session, lot_no)
    return services.import_stdf(session, current_user, lot, _upload(), step=args["step"],
                                pass_=args["pass_"])


@api_route(bp, "/lots/<lot_no>/bins", method="POST", permission=Permission.TEST_WRITE,
           body=s.BinsIn, response=s.PlantTestRunOut, tag="test data")
def record_bins(lot_no: str, data: dict[str, Any]) -> TestRun:
    """Record a bin summary from a tester that writes no STDF, as a test run.

    parts_tested = units = the total count; good = the passing bins' count. No PAT. It
    joins the lot's test insertion like an imported file (`pass`: the first summary is
    P1, later ones retests unless `pass` says resume).
    """
    session = db.session()
    lot = floor.get_lot(session, lot_no)
    return services.record_bins(session, current_user, lot, **data)


@api_route(bp, "/lots/<lot_no>/test-runs", permission=Permission.LOT_READ, query=ListArgs,
           response=s.PlantTestRunOut, many=True, tag="test data")
def lot_test_runs(lot_no: str, args: dict[str, Any]) -> Page | Response:
    """The lot's test runs, oldest first (customers: their own lots, the contract's
    fields)."""
    session = db.session()
    lot = floor.get_lot(session, lot_no, current_user)
    page = paginate(session, services.lot_runs_query(lot), args)
    if scope_customer(current_user) is None:
        return page
    return jsonify({"items": schema_instance(s.TestRunOut, True).dump(page.items),
                    "next": page.next})


@api_route(bp, "/test-runs/<int:run_id>", permission=Permission.TEST_READ,
           response=s.PlantTestRunOut, tag="test data")
def get_test_run(run_id: int) -> TestRun:
    """One test run."""
    return services.get_test_run(db.session(), run_id)


@api_route(bp, "/products/<code>/pat-limits", method="POST",
           permission=Permission.LIMITS_WRITE, body=s.PatComputeIn, response=s.PatComputeOut,
           tag="test data")
def compute_pat_limits(code: str, data: dict[str, Any]) -> PatComputation:
    """Compute static PAT limits (AEC-Q001) for a product at a test step.

    From the passing parts of the latest lots' runs at the step: per test, at least 6 lots
    of at least 30 passing parts; median -/+ 6 robust sigma, never wider than the test's
    limits. `tests` defaults to every test with data (those without enough history are
    listed in `skipped`); a named test without enough history, or none at all, is 409
    `insufficient_history`. Each new set replaces the test's active one.
    """
    session = db.session()
    product = catalog.get_product(session, code)
    return services.compute_pat_limits(session, current_user, product, **data)


@api_route(bp, "/products/<code>/pat-limits", permission=Permission.TEST_READ,
           query=s.PatLimitQuery, response=s.PatLimitSetOut, many=True, tag="test data")
def list_pat_limits(code: str, args: dict[str, Any]) -> Page:
    """A product's PAT limit sets by step and test; filters `step`, `test`, `active`."""
    session = db.session()
    product = catalog.get_product(session, code)
    return paginate(session, services.pat_limit_query(product, args), args)


# --- test programs, bin definitions, PAT tests -----------------------------------------

@api_route(bp, "/products/<code>/test-programs", method="POST",
           permission=Permission.PROGRAM_WRITE, body=s.TestProgramIn,
           response=s.TestProgramOut, tag="test data")
def release_test_program(code: str, data: dict[str, Any]) -> Any:
    """Release a test program for a product at a test step.

    It supersedes the step's released program (kept in the history). Imports at the step
    are then checked against it: MIR JOB_NAM, JOB_REV, TST_TEMP within
    `temperature_tolerance_c` (default 3 °C), PART_TYP when `part_type` is given,
    MODE_COD production; a file that differs is 409 `program_mismatch`. The same job name
    and revision released before is 409 `duplicate`.
    """
    session = db.session()
    product = catalog.get_product(session, code)
    return programs.release_program(session, current_user, product, **data)


@api_route(bp, "/products/<code>/test-programs", permission=Permission.TEST_READ,
           query=s.TestProgramQuery, response=s.TestProgramOut, many=True, tag="test data")
def list_test_programs(code: str, args: dict[str, Any]) -> Page:
    """A product's test programs, newest first (`released` true for the one in force at
    its step); filter `step`."""
    session = db.session()
    product = catalog.get_product(session, code)
    return paginate(session, programs.program_query(product, args["step"]), args)


@api_route(bp, "/products/<code>/bins", method="PUT", permission=Permission.PROGRAM_WRITE,
           body=s.BinDefsIn, response=s.BinDefsOut, tag="test data")
def set_test_bins(code: str, data: dict[str, Any]) -> Any:
    """Define a product's bins at a test step (replacing the step's definitions).

    Each bin: number, `kind` hard or soft, `pass`, `name`, the reject `reason` a failing
    bin books to, `sba` (SBA limits it), `pat` (the PAT bin: at most one per step, a
    failing bin). Once defined, a file with a bin of that kind not defined is 409
    `program_mismatch` (when a program is released at the step).
    """
    session = db.session()
    product = catalog.get_product(session, code)
    return programs.set_bins(session, current_user, product, **data)


@api_route(bp, "/products/<code>/bins", permission=Permission.TEST_READ, query=s.StepQuery,
           response=s.BinDefsOut, tag="test data")
def get_test_bins(code: str, args: dict[str, Any]) -> Any:
    """A product's bin definitions and PAT fallout limit at a test step."""
    session = db.session()
    product = catalog.get_product(session, code)
    return programs.setup_of(session, product, args["step"])


@api_route(bp, "/products/<code>/pat-tests", method="PUT",
           permission=Permission.PROGRAM_WRITE, body=s.PatTestsIn, response=s.PatTestsOut,
           tag="test data")
def set_pat_tests(code: str, data: dict[str, Any]) -> Any:
    """Choose the tests PAT screens for a product at a test step.

    Imports then apply PAT to these tests only (an empty list: none) instead of every test
    with at least 30 passing values.
    """
    session = db.session()
    product = catalog.get_product(session, code)
    return programs.set_pat_tests(session, current_user, product, **data)


@api_route(bp, "/products/<code>/pat-tests", permission=Permission.TEST_READ,
           query=s.StepQuery, response=s.PatTestsOut, tag="test data")
def get_pat_tests(code: str, args: dict[str, Any]) -> Any:
    """The tests PAT screens for a product at a test step (`tests` null: none chosen, every
    test with enough passing values is screened)."""
    session = db.session()
    product = catalog.get_product(session, code)
    return programs.setup_of(session, product, args["step"])


@api_route(bp, "/test-runs/<int:run_id>/void", method="POST",
           permission=Permission.TEST_VOID, body=s.VoidIn, response=s.PlantTestRunOut,
           status=200, tag="test data")
def void_test_run(run_id: int, data: dict[str, Any]) -> TestRun:
    """Void a test run (engineers, QA): it stays visible with `voided: {by, at, reason}`
    but no longer counts in SBA and PAT history, the product's tests, certificates, the
    portal or reports. A voided run again is 409 `already_voided`."""
    session = db.session()
    run = services.get_test_run(session, run_id)
    return programs.void_run(session, current_user, run, reason=data["reason"])


# --- versioned static PAT limit sets ---------------------------------------------------

@api_route(bp, "/products/<code>/pat-limit-sets", method="POST",
           permission=Permission.LIMITS_WRITE, body=s.PatVersionIn, response=s.PatVersionOut,
           tag="test data")
def compute_pat_limit_set(code: str, data: dict[str, Any]) -> PatLimitVersion:
    """Compute a new version of the product's static PAT limit set at a test step.

    As `POST /products/{code}/pat-limits` (at least 6 lots x 30 passing parts of non-voided
    history per test; median -/+ 6 robust sigma, never wider than the test's limits), kept
    as the next version (1, 2, ...) of the step's named set: `name` defaults to the latest
    version's name. The answer is the version with its per-test `limits` and the tests
    `skipped`. 409 `insufficient_history` without the history; 409 `conflict` when another
    computation made the same version at the same moment. A released test program names
    the set it carries (`pat_limit_set`, `pat_limit_set_version`).
    """
    session = db.session()
    product = catalog.get_product(session, code)
    made = services.compute_pat_limits(session, current_user, product, **data)
    assert made.version is not None
    made.version.skipped = made.skipped  # type: ignore[attr-defined]  # read by PatVersionOut
    return made.version


@api_route(bp, "/products/<code>/pat-limit-sets", permission=Permission.TEST_READ,
           query=s.PatVersionQuery, response=s.PatVersionOut, many=True, tag="test data")
def list_pat_limit_sets(code: str, args: dict[str, Any]) -> Page:
    """A product's static PAT limit set versions, newest first by step; filter `step`."""
    session = db.session()
    product = catalog.get_product(session, code)
    return paginate(session, pat.version_query(product, args["step"]), args)


@api_route(bp, "/lots/<lot_no>/insertions/<step>/pat-limits", permission=Permission.TEST_READ,
           response=s.PatDynamicLimitsOut, tag="test data")
def lot_pat_limits(lot_no: str, step: str) -> dict[str, Any]:
    """The lot's dynamic PAT limits at a test step, for the tester's re-screen (AEC-Q001).

    Per PAT test of the step (all tests when no list is chosen) with at least 30 passing
    parts in the lot's first pass: `low`/`high` = median -/+ 6 robust sigma of those
    parts, never wider than the test's limits (narrowed by its spec limits); a test whose
    robust sigma is 0 is left out. 409 `no_test_data` when the lot has no first pass at
    the step; 422 when the step is not a test step of its route.
    """
    session = db.session()
    lot = floor.get_lot(session, lot_no)
    return {"tests": pat.lot_dynamic_limits(session, lot, step)}


@api_route(bp, "/lots/<lot_no>/insertions", permission=Permission.TEST_READ,
           response=s.InsertionOut, many=True, tag="test data")
def lot_insertions(lot_no: str) -> Page:
    """The lot's test insertions, oldest first: passes, units, first-pass and final good
    and yields, final bins, PAT, the SBA verdict and (closed) the proposed track-out."""
    session = db.session()
    lot = floor.get_lot(session, lot_no)
    return Page(insertions.lot_insertions(session, lot), None)


@api_route(bp, "/lots/<lot_no>/insertions/<step>/close", method="POST",
           permission=Permission.TEST_WRITE, response=s.InsertionOut,
           status=200, tag="test data")
def close_insertion(lot_no: str, step: str) -> Any:
    """Close the lot's test insertion at `step` (operators, engineers): SBA judges its
    final yield and bins once, the PAT fallout is judged (a hold of source `pat` above the
    product's limit), and the answer carries the proposed track-out `proposal: {good_qty,
    rejects: [{reason, qty}], unaccounted}`. Closed before: 409 `insertion_closed`; every
    run voided: 409 `no_test_data`; no insertion: 404."""
    session = db.session()
    lot = floor.get_lot(session, lot_no)
    return insertions.close(session, current_user, lot, step)
