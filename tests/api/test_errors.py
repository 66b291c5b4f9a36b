"""Errors exactly as API.md says, and nothing changed in the database when one is returned."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from mes.audit.models import AuditEvent
from mes.catalog import services
from mes.catalog.models import Customer, Product
from tests.helpers import row_counts

ROUTE = {"code": "QFN-A", "name": "QFN automotive",
         "steps": [{"code": "DA", "name": "Die attach", "kind": "assembly"}]}
PRODUCT = {"code": "P1", "name": "Gate driver", "package": "QFN32", "route": "QFN-A"}


def _error(resp, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == "application/json"
    body = resp.get_json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


@pytest.fixture
def engineer(api):
    return api("engineer")


def _counts(session) -> dict[str, int]:
    return row_counts(session, Customer, Product, AuditEvent)


def test_body_that_is_not_json_is_400(engineer, session):
    before = _counts(session)
    resp = engineer.post("/customers", data="code=C1&name=One",
                         content_type="application/x-www-form-urlencoded")
    _error(resp, 400, "bad_request")
    assert _counts(session) == before


def test_malformed_json_is_400(engineer, session):
    before = _counts(session)
    resp = engineer.post("/customers", data='{"code": "C1",', content_type="application/json")
    _error(resp, 400, "bad_request")
    assert _counts(session) == before


@pytest.mark.parametrize("body", [[{"code": "C1", "name": "One"}], "C1", 5, None])
def test_json_that_is_not_an_object_is_400(engineer, session, body):
    before = _counts(session)
    _error(engineer.post("/customers", json=body), 400, "bad_request")
    assert _counts(session) == before


def test_missing_credentials_are_401(client, session):
    before = _counts(session)
    _error(client.post("/api/v1/customers", json={"code": "C1", "name": "One"}), 401,
           "unauthenticated")
    assert _counts(session) == before


def test_role_without_the_permission_is_403(api, session):
    operator = api("operator")
    before = _counts(session)
    _error(operator.post("/customers", json={"code": "C1", "name": "One"}), 403, "forbidden")
    assert _counts(session) == before


def test_unknown_object_is_404(engineer):
    error = _error(engineer.get("/customers/NOPE"), 404, "not_found")
    assert "NOPE" in error["message"]


def test_patch_of_unknown_object_is_404(engineer, session):
    before = _counts(session)
    _error(engineer.patch("/customers/NOPE", json={"name": "x"}), 404, "not_found")
    assert _counts(session) == before


def test_unknown_api_path_is_404_json(engineer):
    _error(engineer.get("/no-such-thing"), 404, "not_found")


def test_unknown_api_path_without_login_is_404_json(client):
    _error(client.get("/api/v1/no-such-thing"), 404, "not_found")


def test_wrong_method_is_405_json(engineer, session):
    before = _counts(session)
    resp = engineer.delete("/customers")
    _error(resp, 405, "method_not_allowed")
    assert set(resp.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
    assert _counts(session) == before


def test_duplicate_code_is_409(engineer, session):
    assert engineer.post("/customers", json={"code": "C1", "name": "One"}).status_code == 201
    before = _counts(session)
    error = _error(engineer.post("/customers", json={"code": "C1", "name": "Again"}), 409,
                   "duplicate")
    assert "C1" in error["message"]
    assert _counts(session) == before


def _invalid(resp) -> dict:
    error = _error(resp, 422, "invalid")
    assert isinstance(error["fields"], dict)
    return error["fields"]


def test_missing_field_is_422_naming_it(engineer, session):
    before = _counts(session)
    assert "name" in _invalid(engineer.post("/customers", json={"code": "C1"}))
    assert _counts(session) == before


def test_wrong_type_is_422_naming_the_field(engineer, session):
    before = _counts(session)
    fields = _invalid(engineer.post("/customers", json={"code": "C1", "name": "One",
                                                        "automotive": "perhaps"}))
    assert list(fields) == ["automotive"]
    assert _counts(session) == before


def test_unknown_field_is_422_naming_it(engineer, session):
    before = _counts(session)
    fields = _invalid(engineer.post("/customers", json={"code": "C1", "name": "One",
                                                        "colour": "red"}))
    assert list(fields) == ["colour"]
    assert _counts(session) == before


def test_out_of_range_is_422_naming_the_field(engineer, session):
    assert engineer.post("/routes", json=ROUTE).status_code == 201
    before = _counts(session)
    fields = _invalid(engineer.post("/products", json={**PRODUCT, "aec_grade": 7}))
    assert list(fields) == ["aec_grade"]
    assert _counts(session) == before


def test_nested_field_error_names_the_position(engineer, session):
    before = _counts(session)
    steps = [{"code": "DA", "name": "Die attach", "kind": "assembly", "min_yield": 101}]
    fields = _invalid(engineer.post("/routes", json={**ROUTE, "steps": steps}))
    assert "min_yield" in fields["steps"]["0"]
    assert _counts(session) == before


def test_unknown_route_on_product_is_422_naming_route(engineer, session):
    before = _counts(session)
    fields = _invalid(engineer.post("/products", json={**PRODUCT, "route": "NOPE"}))
    assert list(fields) == ["route"]
    assert _counts(session) == before


def test_unknown_customer_on_product_is_422_naming_customer(engineer, session):
    assert engineer.post("/routes", json=ROUTE).status_code == 201
    before = _counts(session)
    fields = _invalid(engineer.post("/products", json={**PRODUCT, "customer": "NOPE"}))
    assert list(fields) == ["customer"]
    assert _counts(session) == before


def test_bad_query_parameter_is_422(engineer):
    assert "limit" in _invalid(engineer.get("/customers?limit=0"))
    assert "limit" in _invalid(engineer.get("/customers?limit=501"))


def test_html_page_404_is_friendly(client):
    resp = client.get("/no-such-page")
    assert resp.status_code == 404
    assert resp.mimetype == "text/html"
    page = resp.get_data(as_text=True)
    assert "Not found" in page
    assert "Traceback" not in page and "werkzeug" not in page.lower()


def test_html_page_for_unknown_object_is_friendly_404(login, make_user):
    client = login(make_user("engineer"))
    resp = client.get("/catalog/products/NOPE")
    assert resp.status_code == 404
    assert resp.mimetype == "text/html"
    assert "Traceback" not in resp.get_data(as_text=True)


def _explode_after_creating(monkeypatch) -> None:
    original = services.create_customer

    def create_then_fail(session, actor, data):
        original(session, actor, data)
        # Written and flushed: the failure must undo work that reached the database.
        session.flush()
        raise RuntimeError("secret internal detail /srv/mes/db.py line 42")

    monkeypatch.setattr(services, "create_customer", create_then_fail)


def test_internal_error_is_500_json_without_details_and_rolled_back(engineer, monkeypatch,
                                                                    session):
    _explode_after_creating(monkeypatch)
    before = _counts(session)
    resp = engineer.post("/customers", json={"code": "C1", "name": "One"})
    _error(resp, 500, "internal_error")
    body = resp.get_data(as_text=True)
    assert "Traceback" not in body and "secret internal detail" not in body
    assert session.scalar(select(Customer).where(Customer.code == "C1")) is None
    assert _counts(session) == before


def test_internal_error_on_a_page_is_a_friendly_500(login, make_user, monkeypatch):
    import mes.views

    client = login(make_user("engineer"))

    def fail(*_args, **_kw):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(mes.views, "nav_items", fail)
    resp = client.get("/")
    assert resp.status_code == 500
    page = resp.get_data(as_text=True)
    assert "Traceback" not in page and "secret internal detail" not in page
