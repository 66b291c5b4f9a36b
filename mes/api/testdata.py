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
from mes.testfloor import schemas as s
from mes.testfloor import services
from mes.testfloor.models import TestRun
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
    byte offset); the same content imported before, for any lot, is 409 `duplicate`. PAT
    failures are counted and SBA may put the lot on hold (`sba.hold`).
    """
    session = db.session()
    lot = floor.get_lot(session, lot_no)
    return services.import_stdf(session, current_user, lot, _upload(), step=args["step"])


@api_route(bp, "/lots/<lot_no>/bins", method="POST", permission=Permission.TEST_WRITE,
           body=s.BinsIn, response=s.PlantTestRunOut, tag="test data")
def record_bins(lot_no: str, data: dict[str, Any]) -> TestRun:
    """Record a bin summary from a tester that writes no STDF, as a test run.

    parts_tested = units = the total count; good = the passing bins' count. No PAT; SBA
    judges the run like an imported file.
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
