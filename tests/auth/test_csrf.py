"""CSRF: forms and cookie-authenticated API calls need the token; bearer-token calls do not.

The default test app has CSRF switched off, so these tests build a second app with it on,
bound to the same test transaction."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import select

from mes.audit.models import AuditEvent
from mes.catalog.models import Customer
from mes.db import get_db
from tests.helpers import PASSWORD, make_app, row_counts


@pytest.fixture
def csrf_app(database_url, connection, tmp_path) -> Iterator[Flask]:
    application = make_app(database_url, tmp_path, WTF_CSRF_ENABLED=True)
    get_db(application).bind_to(connection)
    yield application
    get_db(application).engine.dispose()


def _token(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "the page carries no CSRF token"
    return match.group(1)


def _logged_in(csrf_app: Flask, user) -> tuple[object, str]:
    """A client logged in through the form, and the CSRF token of its session."""
    client = csrf_app.test_client()
    token = _token(client.get("/login").get_data(as_text=True))
    resp = client.post("/login", data={"username": user.username, "password": PASSWORD,
                                       "csrf_token": token})
    assert resp.status_code == 302
    # Logging in starts a fresh session, so the token comes from a page of the new one.
    return client, _token(client.get("/").get_data(as_text=True))


def test_login_without_csrf_token_is_refused(csrf_app, make_user, session):
    user = make_user("operator")
    client = csrf_app.test_client()
    client.get("/login")
    before = row_counts(session, AuditEvent)
    resp = client.post("/login", data={"username": user.username, "password": PASSWORD})
    assert resp.status_code == 400
    assert "Traceback" not in resp.get_data(as_text=True)
    assert row_counts(session, AuditEvent) == before
    assert client.get("/").status_code == 302


def test_login_with_a_forged_csrf_token_is_refused(csrf_app, make_user, session):
    user = make_user("operator")
    client = csrf_app.test_client()
    client.get("/login")
    before = row_counts(session, AuditEvent)
    resp = client.post("/login", data={"username": user.username, "password": PASSWORD,
                                       "csrf_token": "forged"})
    assert resp.status_code == 400
    assert row_counts(session, AuditEvent) == before


def test_login_with_csrf_token_from_the_page_works(csrf_app, make_user):
    client, _ = _logged_in(csrf_app, make_user("operator"))
    assert client.get("/").status_code == 200


def test_logout_without_csrf_token_is_refused(csrf_app, make_user):
    client, token = _logged_in(csrf_app, make_user("operator"))
    assert client.post("/logout").status_code == 400
    assert client.get("/").status_code == 200
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/").status_code == 302


def test_cookie_api_post_without_csrf_header_is_refused(csrf_app, make_user, session):
    client, _ = _logged_in(csrf_app, make_user("engineer"))
    before = row_counts(session, Customer, AuditEvent)
    resp = client.post("/api/v1/customers", json={"code": "C1", "name": "One"})
    assert resp.status_code == 400
    assert resp.get_json()["error"]["code"] == "csrf_failed"
    assert row_counts(session, Customer, AuditEvent) == before


def test_cookie_api_post_with_csrf_header_works(csrf_app, make_user, session):
    client, token = _logged_in(csrf_app, make_user("engineer"))
    resp = client.post("/api/v1/customers", json={"code": "C1", "name": "One"},
                       headers={"X-CSRFToken": token})
    assert resp.status_code == 201
    assert session.scalar(select(Customer.name).where(Customer.code == "C1")) == "One"


def test_cookie_api_get_needs_no_csrf_header(csrf_app, make_user):
    client, _ = _logged_in(csrf_app, make_user("operator"))
    assert client.get("/api/v1/customers").status_code == 200


def test_bearer_token_api_post_needs_no_csrf_token(csrf_app, make_user, token_for, session):
    headers = token_for(make_user("engineer"))
    resp = csrf_app.test_client().post("/api/v1/customers", json={"code": "C2", "name": "Two"},
                                       headers=headers)
    assert resp.status_code == 201
    assert session.scalar(select(Customer.name).where(Customer.code == "C2")) == "Two"


def test_bearer_header_does_not_lend_its_csrf_exemption_to_the_cookie(csrf_app, make_user,
                                                                       session):
    client, _ = _logged_in(csrf_app, make_user("engineer"))
    before = row_counts(session, Customer, AuditEvent)
    resp = client.post("/api/v1/customers", json={"code": "C3", "name": "Three"},
                       headers={"Authorization": "Bearer mes_forged"})
    assert resp.status_code == 401
    assert row_counts(session, Customer, AuditEvent) == before
