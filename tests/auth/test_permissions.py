"""Every endpoint declares its permissions, and every role gets exactly what they allow.

Everything is derived from app.url_map, so endpoints added later are covered without
touching this file."""

from __future__ import annotations

import re
import tempfile
from typing import Any

import pytest
from flask import Flask

from mes import create_app
from mes.audit.models import AuditEvent
from mes.auth import services
from mes.auth.permissions import PUBLIC, ROLE_PERMISSIONS, Permission, Role
from mes.catalog.models import Customer
from tests.helpers import row_counts, sign_in

IGNORED_METHODS = {"HEAD", "OPTIONS"}
_ARG = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")
# Path arguments name nothing that exists: a 404 (or 422) after the permission check counts
# as "allowed".
PLACEHOLDERS = {"int": "987654321", "float": "9.5", "uuid": "00000000-0000-0000-0000-000000000000"}


def _is_static(endpoint: str) -> bool:
    return endpoint == "static" or endpoint.endswith(".static")


def _collect_routes() -> list[tuple[str, str, str]]:
    # Collection runs before any fixture, so a throwaway app (no database touched) lists the
    # rules; the tests themselves run against the suite's app.
    with tempfile.TemporaryDirectory() as instance:
        app = create_app({"DATABASE_URL": "sqlite://", "SECRET_KEY": "collect-" * 4,
                          "INSTANCE_PATH": instance, "TESTING": True})
    return sorted((rule.rule, method, rule.endpoint)
                  for rule in app.url_map.iter_rules() if not _is_static(rule.endpoint)
                  for method in rule.methods - IGNORED_METHODS)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "route" in metafunc.fixturenames:
        routes = _collect_routes()
        metafunc.parametrize("route", routes, ids=[f"{m} {r}" for r, m, _ in routes])


def _fill(rule: str) -> str:
    return _ARG.sub(lambda m: PLACEHOLDERS.get(m.group(1) or "", "NOPE-404"), rule)


def test_every_endpoint_declares_its_permissions(app: Flask):
    undeclared = sorted(rule.endpoint for rule in app.url_map.iter_rules()
                        if not _is_static(rule.endpoint)
                        and not hasattr(app.view_functions[rule.endpoint], "mes_permissions"))
    assert undeclared == []


def test_declared_permissions_are_public_or_known_permissions(app: Flask):
    for endpoint, view in app.view_functions.items():
        declared = getattr(view, "mes_permissions", PUBLIC)
        assert declared == PUBLIC or all(isinstance(p, Permission) for p in declared), endpoint


def test_every_role_has_a_permission_set():
    assert set(ROLE_PERMISSIONS) == set(Role)
    assert Permission.PORTAL not in ROLE_PERMISSIONS[Role.OPERATOR]
    assert ROLE_PERMISSIONS[Role.ADMIN] >= set(Permission) - {Permission.PORTAL,
                                                              Permission.PARTNER_READ}
    # Partner users read what grants show them, through the partner pages and the feed only.
    assert ROLE_PERMISSIONS[Role.PARTNER] == {Permission.PARTNER_READ, Permission.FEED_READ,
                                              Permission.GRANT_READ}


@pytest.fixture
def users_by_role(session) -> dict[Role, Any]:
    """One user of every role, made in one step: this matrix runs for every endpoint."""
    session.add(Customer(code="PERM-C", name="Permission matrix customer"))
    session.add(Customer(code="PERM-P", name="Permission matrix partner", kind="partner"))
    users = {role: services.create_user(session, "test", username=f"matrix-{role.value}",
                                        role=role.value, customer={
                                            Role.CUSTOMER: "PERM-C",
                                            Role.PARTNER: "PERM-P"}.get(role))
             for role in Role}
    session.commit()
    return users


def _caller(app: Flask, user: Any) -> Any:
    client = app.test_client()
    if user is not None:
        # The session cookie the login page would set, without a login request per role.
        # Pages and the API accept it alike; bearer tokens have their own tests.
        sign_in(app, client, user)
    return client


def _send(client: Any, method: str, path: str, is_api: bool) -> Any:
    kwargs: dict[str, Any] = {}
    if method in {"POST", "PUT", "PATCH", "DELETE"}:
        if is_api:
            kwargs["json"] = {}
        else:
            kwargs["data"] = {}
    return client.open(path, method=method, **kwargs)


def test_endpoint_answers_each_role_as_declared(route, app, session, users_by_role):
    rule, method, endpoint = route
    declared = app.view_functions[endpoint].mes_permissions
    is_api = rule.startswith("/api/")
    path = _fill(rule)
    for role in [None, *Role]:
        client = _caller(app, users_by_role.get(role))
        before = row_counts(session, AuditEvent)
        resp = _send(client, method, path, is_api)
        who = role.value if role else "anonymous"
        seen = f"{method} {path} as {who}: {resp.status_code}"
        # Empty input and unknown objects are the caller's mistake: never a server error.
        assert resp.status_code < 500, seen
        if declared == PUBLIC:
            assert resp.status_code not in (401, 403), seen
        elif role is None:
            if is_api:
                assert resp.status_code == 401, seen
                assert resp.get_json()["error"]["code"] == "unauthenticated", seen
            else:
                assert resp.status_code == 302, seen
                assert resp.location.startswith("/login"), seen
            assert row_counts(session, AuditEvent) == before, seen
        elif set(declared) <= ROLE_PERMISSIONS[role]:
            assert resp.status_code not in (401, 403), seen
        else:
            assert resp.status_code == 403, seen
            if is_api:
                assert resp.get_json()["error"]["code"] == "forbidden", seen
            assert row_counts(session, AuditEvent) == before, seen
