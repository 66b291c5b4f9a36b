"""The users admin page: accounts, roles, activation, passwords and API tokens."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from mes.audit.models import AuditEvent
from mes.auth import services
from mes.auth.models import ApiToken, User
from mes.catalog.models import Customer
from tests.helpers import PASSWORD


@pytest.fixture
def admin(login, make_user):
    return login(make_user("admin", username="boss"))


def user(session, username):
    session.expire_all()
    return session.scalar(select(User).where(User.username == username))


def audits(session, code, key):
    return session.scalar(select(func.count(AuditEvent.id)).where(
        AuditEvent.code == code, AuditEvent.subject_key == key))


def live_tokens(session, account):
    return session.scalar(select(func.count(ApiToken.id)).where(
        ApiToken.user_id == account.id, ApiToken.revoked_at.is_(None)))


def test_users_page_lists_accounts_with_their_actions(admin, make_user, token_for):
    worker = make_user("operator", username="worker")
    token_for(worker)
    body = admin.get("/admin/users").get_data(as_text=True)
    assert "worker" in body and "boss" in body
    assert 'action="/admin/users/worker"' in body
    assert re.search(r'<td class="num">1</td>', body)
    assert 'value="revoke"' in body and 'data-confirm=' in body


def test_admin_creates_user(admin, session):
    resp = admin.post("/admin/users", data={"username": "newbie", "display_name": "New Bie",
                                            "role": "operator", "password": PASSWORD})
    assert resp.status_code == 303
    created = user(session, "newbie")
    assert (created.role, created.display_name, created.active) == \
        ("operator", "New Bie", True)
    assert audits(session, "user:create", "newbie") == 1
    assert "User newbie created." in admin.get("/admin/users").get_data(as_text=True)


def test_create_user_lost_race_shows_no_success(admin, session, monkeypatch):
    """Another admin creates the same name while this request saves its user: the page
    answers 409 and never says the user was created."""
    create_user = services.create_user

    def create_while_another_admin_does(sess, actor, **data):
        created = create_user(sess, actor, **data)
        sess.add(User(username=data["username"], role="qa"))
        return created

    monkeypatch.setattr(services, "create_user", create_while_another_admin_does)
    resp = admin.post("/admin/users", data={"username": "newbie", "role": "operator",
                                            "password": PASSWORD})
    assert resp.status_code == 409
    assert "created" not in resp.get_data(as_text=True)
    assert "created" not in admin.get("/admin/users").get_data(as_text=True)
    assert user(session, "newbie") is None
    assert audits(session, "user:create", "newbie") == 0


def test_admin_creates_customer_user_bound_to_customer(admin, session):
    session.add(Customer(code="OEM1", name="OEM One"))
    session.commit()
    admin.post("/admin/users", data={"username": "buyer", "role": "customer",
                                     "customer": "OEM1", "password": PASSWORD})
    assert user(session, "buyer").customer_code == "OEM1"


def test_create_user_with_weak_password_shows_message_and_changes_nothing(admin, session):
    resp = admin.post("/admin/users", data={"username": "weak", "role": "qa",
                                            "password": "short"})
    assert resp.status_code == 422
    body = resp.get_data(as_text=True)
    assert 'id="f-password-error"' in body and "Use letters and digits." in body
    assert 'value="weak"' in body
    assert user(session, "weak") is None
    assert audits(session, "user:create", "weak") == 0


def test_create_user_without_name_is_refused(admin, session):
    resp = admin.post("/admin/users", data={"username": "  ", "role": "qa",
                                            "password": PASSWORD})
    assert resp.status_code == 422
    assert 'id="f-username-error"' in resp.get_data(as_text=True)
    assert user(session, "") is None


def test_create_customer_user_without_customer_is_refused(admin, session):
    resp = admin.post("/admin/users", data={"username": "lost", "role": "customer",
                                            "password": PASSWORD})
    assert resp.status_code == 422
    assert 'id="f-customer-error"' in resp.get_data(as_text=True)
    assert user(session, "lost") is None


def test_admin_changes_role(admin, make_user, session):
    make_user("operator", username="worker")
    resp = admin.post("/admin/users/worker", data={"action": "role", "role": "qa",
                                                   "customer": ""})
    assert resp.status_code == 303
    assert user(session, "worker").role == "qa"
    assert audits(session, "user:role", "worker") == 1


def test_role_change_to_unknown_customer_is_refused(admin, make_user, session):
    make_user("operator", username="worker")
    resp = admin.post("/admin/users/worker", data={"action": "role", "role": "customer",
                                                   "customer": "NOPE"},
                      follow_redirects=True)
    assert "Name a known customer." in resp.get_data(as_text=True)
    assert user(session, "worker").role == "operator"
    assert audits(session, "user:role", "worker") == 0


def test_admin_deactivates_and_reactivates(admin, make_user, session):
    make_user("planner", username="worker")
    admin.post("/admin/users/worker", data={"action": "deactivate"})
    assert user(session, "worker").active is False
    page = admin.get("/admin/users").get_data(as_text=True)
    assert 'value="activate"' in page
    admin.post("/admin/users/worker", data={"action": "activate"})
    assert user(session, "worker").active is True
    assert audits(session, "user:deactivate", "worker") == 1
    assert audits(session, "user:activate", "worker") == 1


def test_admin_sets_password(admin, make_user, session):
    make_user("planner", username="worker")
    before = user(session, "worker").password_hash
    admin.post("/admin/users/worker", data={"action": "password",
                                            "password": "Another-pass-456"})
    assert user(session, "worker").password_hash != before
    assert audits(session, "user:password", "worker") == 1


def _cookie_contents(client) -> str:
    """What the session cookie carries (signed, not encrypted: anyone holding it reads it)."""
    app = client.application
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    return repr(app.session_interface.get_signing_serializer(app).loads(cookie.value))


def test_admin_creates_token_shown_once_not_in_the_cookie(admin, make_user, session):
    worker = make_user("operator", username="worker")
    resp = admin.post("/admin/users/worker", data={"action": "token"})
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == "no-store"
    match = re.search(r"\(shown once\): (mes_[A-Za-z0-9_\-]+)", resp.get_data(as_text=True))
    assert match
    assert match[1] not in _cookie_contents(admin)
    assert "_flashes" not in _cookie_contents(admin)
    assert live_tokens(session, worker) == 1
    assert audits(session, "token:create", "worker") == 1
    api = admin.application.test_client()
    me = api.get("/api/v1/customers", headers={"Authorization": f"Bearer {match[1]}"})
    assert me.status_code == 200
    assert match[1] not in admin.get("/admin/users").get_data(as_text=True)


def test_admin_revokes_tokens(admin, make_user, token_for, session):
    worker = make_user("operator", username="worker")
    token_for(worker)
    token_for(worker)
    resp = admin.post("/admin/users/worker", data={"action": "revoke"}, follow_redirects=True)
    assert "2 token(s) of worker revoked." in resp.get_data(as_text=True)
    assert live_tokens(session, worker) == 0
    assert audits(session, "token:revoke", "worker") == 1


@pytest.mark.parametrize("role", ["engineer", "qa", "planner", "operator"])
def test_non_admin_may_not_manage_users(login, make_user, session, role):
    make_user("operator", username="worker")
    other = login(make_user(role))
    assert other.get("/admin/users").status_code == 403
    assert other.post("/admin/users", data={"username": "sneak", "role": "admin",
                                            "password": PASSWORD}).status_code == 403
    assert other.post("/admin/users/worker",
                      data={"action": "role", "role": "admin"}).status_code == 403
    assert user(session, "sneak") is None
    assert user(session, "worker").role == "operator"


def test_anonymous_is_sent_to_login(client):
    resp = client.get("/admin/users")
    assert resp.status_code == 302
    assert resp.headers["Location"].startswith("/login")
