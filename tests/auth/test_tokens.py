"""API tokens: bearer authentication, stored hashed, revocable, acting with the user's role."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from mes.audit.models import AuditEvent
from mes.auth import services
from mes.auth.models import ApiToken
from mes.catalog.models import Customer
from tests.helpers import audit_codes, row_counts


def _assert_unauthenticated(resp) -> None:
    assert resp.status_code == 401
    body = resp.get_json()
    assert body["error"]["code"] == "unauthenticated"
    assert body["error"]["message"]


def test_valid_token_reads_the_api(client, make_user, token_for):
    headers = token_for(make_user("operator"))
    resp = client.get("/api/v1/customers", headers=headers)
    assert resp.status_code == 200
    assert resp.get_json() == {"items": [], "next": None}


def test_request_without_credentials_is_401_json(client):
    _assert_unauthenticated(client.get("/api/v1/customers"))


@pytest.mark.parametrize("header", [
    "Bearer mes_not-a-real-token",
    "Bearer ",
    "bearer",
    "Basic dXNlcjpwYXNz",
])
def test_bad_credentials_are_401(client, make_user, token_for, header):
    token_for(make_user("admin"))
    _assert_unauthenticated(client.get("/api/v1/customers", headers={"Authorization": header}))


def test_bad_token_on_a_write_changes_nothing(client, session):
    before = row_counts(session, Customer, AuditEvent)
    resp = client.post("/api/v1/customers", json={"code": "C1", "name": "One"},
                       headers={"Authorization": "Bearer mes_wrong"})
    _assert_unauthenticated(resp)
    assert row_counts(session, Customer, AuditEvent) == before


def test_revoked_token_is_refused(client, make_user, token_for, session):
    user = make_user("engineer")
    headers = token_for(user)
    assert services.revoke_tokens(session, "test", user) == 1
    session.commit()
    _assert_unauthenticated(client.get("/api/v1/customers", headers=headers))
    assert audit_codes(session, "user", user.username)[-1] == "token:revoke"


def test_revoking_leaves_a_newer_token_working(client, make_user, token_for, session):
    user = make_user("engineer")
    old = token_for(user)
    services.revoke_tokens(session, "test", user)
    session.commit()
    new = token_for(user)
    assert client.get("/api/v1/customers", headers=old).status_code == 401
    assert client.get("/api/v1/customers", headers=new).status_code == 200


def test_token_of_inactive_user_is_refused(client, make_user, token_for, session):
    user = make_user("engineer")
    headers = token_for(user)
    services.set_active(session, "test", user, False)
    session.commit()
    _assert_unauthenticated(client.get("/api/v1/customers", headers=headers))


def test_token_is_stored_only_as_its_hash(make_user, session):
    user = make_user("operator")
    token = services.create_token(session, "test", user)
    session.commit()
    row = session.scalars(select(ApiToken).where(ApiToken.user_id == user.id)).one()
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    stored = [str(value) for value in (row.token_hash, row.prefix)]
    assert all(token not in value for value in stored)
    assert audit_codes(session, "user", user.username)[-1] == "token:create"


def test_token_acts_with_its_users_role(client, make_user, token_for, session):
    headers = token_for(make_user("operator"))
    before = row_counts(session, Customer, AuditEvent)
    resp = client.post("/api/v1/customers", json={"code": "C1", "name": "One"},
                       headers=headers)
    assert resp.status_code == 403
    assert resp.get_json()["error"]["code"] == "forbidden"
    assert row_counts(session, Customer, AuditEvent) == before


def test_engineer_token_may_write_master_data(client, make_user, token_for, session):
    headers = token_for(make_user("engineer"))
    resp = client.post("/api/v1/customers", json={"code": "C1", "name": "One"},
                       headers=headers)
    assert resp.status_code == 201
    assert session.scalar(select(Customer.name).where(Customer.code == "C1")) == "One"


def test_token_opens_no_browser_session(client, make_user, token_for):
    headers = token_for(make_user("admin"))
    assert client.get("/api/v1/customers", headers=headers).status_code == 200
    resp = client.get("/api/v1/customers")
    assert resp.status_code == 401
