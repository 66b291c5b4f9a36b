"""The shared refusal check must be able to fail: a wrong code or status, or a change left
behind by a refused call, fails the test that uses it."""

from __future__ import annotations

import pytest

from mes.catalog import services as cat
from mes.errors import Conflict, ErrorCode
from tests.helpers import refused


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
