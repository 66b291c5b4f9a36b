"""The shared refusal check must be able to fail: a wrong code or status, or a change left
behind by a refused call, fails the test that uses it."""

from __future__ import annotations

import pytest

from mes.catalog import services as cat
from mes.errors import Conflict, ErrorCode
from tests.helpers import pdf_streams, refused


def _refuse(code: ErrorCode = ErrorCode.CONFLICT):
    raise Conflict("Refused.", code=code)


def test_a_refused_service_call_gives_back_its_error(session):
    assert refused(session, _refuse, Conflict, "conflict").message == "Refused."


def test_a_change_made_before_the_refusal_fails_the_check(session):
    def change_then_refuse():
        cat.create_customer(session, "test", {"code": "NEW", "name": "New",
                                              "automotive": False})
        _refuse()

    with pytest.raises(AssertionError):
        refused(session, change_then_refuse, Conflict, "conflict")


def test_another_code_fails_the_check(session):
    with pytest.raises(AssertionError):
        refused(session, lambda: _refuse(ErrorCode.STALE), Conflict, "conflict")


def test_a_request_answering_another_status_or_code_fails_the_check(session, api):
    engineer = api("engineer")
    error = refused(session, lambda: engineer.post("/customers", json={}), 422, "invalid",
                    "code")
    assert "code" in error["fields"]
    with pytest.raises(AssertionError):
        refused(session, lambda: engineer.post("/customers", json={}), 409, "invalid")
    with pytest.raises(AssertionError):
        refused(session, lambda: engineer.post("/customers", json={}), 422, "conflict")


def test_a_page_is_checked_by_its_status(session, client):
    assert "<html" in refused(session, lambda: client.get("/no-such-page"), 404)
    with pytest.raises(AssertionError):
        refused(session, lambda: client.get("/no-such-page"), 200)


def test_pdf_streams_cut_by_length_even_when_the_data_ends_in_a_carriage_return():
    """Compressed data ending in CR once made the certificate's text look empty."""
    from fpdf import FPDF

    # The data ends in its Adler-32 sum, whose last byte is the sum of the page's bytes:
    # one more "a" (97, odd) at a time runs it through every value.
    for n in range(512):
        text = "Certificate of conformance " + "a" * n
        pdf = FPDF()
        pdf.add_page()
        pdf.set_font("helvetica", size=4)
        pdf.write(text=text)
        body = bytes(pdf.output())
        start = body.index(b"stream\n", body.index(b"/FlateDecode")) + len(b"stream\n")
        end = body.index(b"endstream", start)
        if body[start:end].rstrip(b"\n").endswith(b"\r"):
            break
    else:
        raise AssertionError("no page compressed to data ending in CR")
    assert b"(Certificate of conformance" in b"".join(pdf_streams(body))
