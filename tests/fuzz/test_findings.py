"""Regression tests for what the API fuzz run (tests/fuzz/test_api_fuzz.py) found, each as
the smallest request that showed it, checked against the same two rules: no 5xx, and the
answer matches the schema documented for its status.

OPEN_FINDINGS lists findings not fixed yet (in code someone else is changing at the time):
their tests are marked as strict xfails, so a fix turns them into failures until the entry
and the mark are removed, and the fuzz run tolerates exactly these failures until then."""

from __future__ import annotations

from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is in the test extras")

# The start of the fuzz run's line for each open finding -> why it is open. Empty: the
# reports findings below were fixed in the reports code (rows documented with their ?by
# keys, report dates limited to 1970..9998).
OPEN_FINDINGS: dict[str, str] = {}


@pytest.fixture
def validated(app, connection, make_user, token_for):
    """Call an operation as a role and apply the fuzz run's checks to the answer."""
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import response_schema_conformance

    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)

    def call(role: str, method: str, path: str, **parts: Any):
        headers = token_for(make_user(role))
        case = schema[path][method].Case(**parts)
        return case.call_and_validate(headers=headers, checks=[not_a_server_error,
                                                               response_schema_conformance])
    return call


def test_the_checks_catch_a_server_error(validated, monkeypatch):
    # The checks used here and in the fuzz run really fail on a 500.
    from mes.floor import services

    def broken(*_args: Any, **_kw: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(services, "lot_query", broken)
    with pytest.raises(BaseException, match="Server error"):  # schemathesis' failure group
        validated("admin", "GET", "/api/v1/lots")


def test_a_good_answer_passes_the_checks(validated, receive):  # noqa: F811
    receive(100)
    assert validated("admin", "GET", "/api/v1/lots").status_code == 200


def test_wip_report_by_product_matches_its_schema(validated, receive):  # noqa: F811
    # Found by the fuzz run: rows by product carried a `product` field WipRow lacked.
    receive(100)
    response = validated("admin", "GET", "/api/v1/reports/wip", query={"by": "product"})
    assert response.status_code == 200


def test_equipment_report_by_kind_matches_its_schema(validated, plant):  # noqa: F811
    # Found by the fuzz run: rows by kind carried a `tools` field the schema lacked.
    response = validated("admin", "GET", "/api/v1/reports/equipment", query={"by": "kind"})
    assert response.status_code == 200


@pytest.mark.parametrize("path, query", [
    ("/api/v1/reports/yield/trend", {"to": "0001-01-01"}),
    ("/api/v1/reports/wip", {"to": "0001-01-02"}),
])
def test_a_report_range_at_the_start_of_the_calendar_is_no_server_error(validated, path,
                                                                          query):
    # Found by the fuzz run: a date near year 1 overflowed in the reports' range (500).
    response = validated("admin", "GET", path, query=query)
    assert response.status_code in (200, 422)


def test_a_nul_character_in_text_is_refused_not_a_server_error(validated, app, session):
    # Found on PostgreSQL, whose text columns cannot hold NUL: a route step named "\x00"
    # was a 500. SQLite stores it; either way no 5xx, and a refusal creates nothing.
    from mes.catalog.models import Route
    from tests.helpers import row_counts

    before = row_counts(session, Route)
    response = validated("admin", "POST", "/api/v1/routes", body={
        "code": "NUL-R", "name": "Route\x00", "steps": [
            {"code": "S1", "name": "Step\x00one", "kind": "assembly",
             "equipment_kind": None, "min_yield": None, "materials": []}]})
    if session.get_bind().dialect.name == "postgresql":
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "invalid"
        assert row_counts(session, Route) == before
    else:
        assert response.status_code in (201, 422)


@pytest.mark.parametrize("path", ["/api/v1/holds/112909969626649066379149312",
                                  "/api/v1/shipments/112909969626649066379149312/coc",
                                  "/api/v1/test-runs/9223372036854775808"])
def test_an_id_beyond_64_bits_is_not_found_not_a_server_error(api, path):
    # Found by the fuzz run: SQLite's driver overflowed on such ids (500).
    resp = api("admin").get(path.removeprefix("/api/v1"))
    assert resp.status_code == 404
    assert resp.get_json()["error"]["code"] == "not_found"


def test_the_largest_64_bit_id_still_reaches_the_endpoint(api):
    resp = api("admin").get(f"/holds/{2**63 - 1}")
    assert resp.status_code == 404
    assert str(2**63 - 1) in resp.get_json()["error"]["message"]  # the endpoint's own 404
