"""Logging in and out, and the sessions that end when a password changes or a user is
deactivated."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from mes.audit.models import AuditEvent
from mes.auth import services
from mes.errors import InvalidInput
from tests.helpers import PASSWORD, row_counts


def _login_events(session, username: str) -> list[tuple[str, dict]]:
    return [(ev.code, ev.data) for ev in session.scalars(
        select(AuditEvent).where(AuditEvent.subject_type == "login",
                                 AuditEvent.subject_key == username)
        .order_by(AuditEvent.seq))]


def _is_logged_in(client) -> bool:
    resp = client.get("/")
    if resp.status_code == 200:
        return True
    assert resp.status_code == 302 and resp.location.startswith("/login")
    return False


def test_login_with_good_password_opens_a_session(client, make_user, session):
    user = make_user("operator")
    resp = client.post("/login", data={"username": user.username, "password": PASSWORD})
    assert resp.status_code == 302
    assert resp.location == "/"
    assert _is_logged_in(client)
    assert _login_events(session, user.username) == [("login:success", {"address": "127.0.0.1"})]


def test_login_with_wrong_password_is_refused_and_audited(client, make_user, session):
    user = make_user("operator")
    resp = client.post("/login", data={"username": user.username, "password": "Wrong-pass-99"})
    assert resp.status_code == 200
    assert "Wrong user name or password" in resp.get_data(as_text=True)
    assert not _is_logged_in(client)
    assert [code for code, _ in _login_events(session, user.username)] == ["login:failure"]


def test_login_of_unknown_user_is_refused_and_audited(client, session):
    resp = client.post("/login", data={"username": "ghost", "password": PASSWORD})
    assert resp.status_code == 200
    assert "Wrong user name or password" in resp.get_data(as_text=True)
    assert not _is_logged_in(client)
    assert [code for code, _ in _login_events(session, "ghost")] == ["login:failure"]


def test_login_of_inactive_user_is_refused(client, make_user, session):
    user = make_user("qa", active=False)
    resp = client.post("/login", data={"username": user.username, "password": PASSWORD})
    assert resp.status_code == 200
    assert "Wrong user name or password" in resp.get_data(as_text=True)
    assert not _is_logged_in(client)
    assert _login_events(session, user.username) == [
        ("login:failure", {"address": "127.0.0.1", "inactive": True})]


def test_login_page_shows_the_form_to_anonymous_users(client):
    resp = client.get("/login")
    assert resp.status_code == 200
    assert 'name="password"' in resp.get_data(as_text=True)


def test_login_returns_to_a_local_next_page(client, make_user):
    user = make_user("operator")
    resp = client.post("/login", data={"username": user.username, "password": PASSWORD,
                                       "next": "/profile?tab=password"})
    assert resp.status_code == 302
    assert resp.location == "/profile?tab=password"


@pytest.mark.parametrize("target", [
    "//evil.example",
    "//evil.example/login",
    "https://evil.example/",
    "/\\evil.example",
    "\\\\evil.example",
    "/\t/evil.example",
    "javascript:alert(1)",
    "evil.example",
])
def test_login_refuses_to_redirect_off_site(client, make_user, target):
    user = make_user("operator")
    resp = client.post("/login", data={"username": user.username, "password": PASSWORD,
                                       "next": target})
    assert resp.status_code == 302
    assert resp.location == "/"


def test_logged_in_user_visiting_login_is_not_sent_off_site(login, make_user):
    client = login(make_user("operator"))
    resp = client.get("/login?next=//evil.example")
    assert resp.status_code == 302
    assert resp.location == "/"


def test_logout_refuses_get(login, make_user):
    client = login(make_user("operator"))
    assert client.get("/logout").status_code == 405
    assert _is_logged_in(client)


def test_logout_by_post_ends_the_session(login, make_user):
    client = login(make_user("operator"))
    resp = client.post("/logout")
    assert resp.status_code == 302
    assert resp.location == "/login"
    assert not _is_logged_in(client)


def test_password_change_ends_existing_sessions(login, make_user, session):
    user = make_user("engineer")
    client = login(user)
    services.set_password(session, "test", user, "Another-pass-456")
    session.commit()
    assert not _is_logged_in(client)


def test_new_password_works_after_a_change(client, make_user, session):
    user = make_user("engineer")
    services.set_password(session, "test", user, "Another-pass-456")
    session.commit()
    assert client.post("/login", data={"username": user.username,
                                       "password": PASSWORD}).status_code == 200
    assert client.post("/login", data={"username": user.username,
                                       "password": "Another-pass-456"}).status_code == 302


def test_weak_new_password_is_refused_and_session_survives(login, make_user, session):
    user = make_user("engineer")
    client = login(user)
    before = row_counts(session, AuditEvent)
    with pytest.raises(InvalidInput) as err:
        services.set_password(session, "test", user, "short")
    session.rollback()
    assert "password" in err.value.fields
    assert row_counts(session, AuditEvent) == before
    assert _is_logged_in(client)


def test_deactivation_ends_existing_sessions(login, make_user, session):
    user = make_user("planner")
    client = login(user)
    services.set_active(session, "test", user, False)
    session.commit()
    assert not _is_logged_in(client)


def test_login_is_throttled_after_repeated_failures_for_a_user(app, client, make_user, session):
    from sqlalchemy import func, select

    from mes.auth.models import LoginFailure

    user = make_user("qa")
    limit = app.config["LOGIN_MAX_FAILURES"]
    for _ in range(limit):
        resp = client.post("/login", data={"username": user.username, "password": "wrong-1"})
        assert resp.status_code == 200
    # Even the right password is refused while the user is throttled.
    resp = client.post("/login", data={"username": user.username, "password": PASSWORD})
    assert resp.status_code == 429
    assert "Too many failed logins" in resp.get_data(as_text=True)
    assert client.get("/").status_code == 302
    assert session.scalar(select(func.count()).select_from(LoginFailure)) == limit


def test_login_throttle_counts_failures_per_address(app, client, make_user):
    limit = app.config["LOGIN_MAX_FAILURES"] * 4
    for i in range(limit):
        client.post("/login", data={"username": f"nobody{i}", "password": "x"})
    user = make_user("qa")
    resp = client.post("/login", data={"username": user.username, "password": PASSWORD})
    assert resp.status_code == 429


def test_a_successful_login_clears_the_users_failures(app, client, make_user, session):
    from sqlalchemy import func, select

    from mes.auth.models import LoginFailure

    user = make_user("qa")
    for _ in range(app.config["LOGIN_MAX_FAILURES"] - 1):
        client.post("/login", data={"username": user.username, "password": "wrong-1"})
    assert client.post("/login", data={"username": user.username,
                                       "password": PASSWORD}).status_code == 302
    assert session.scalar(select(func.count()).select_from(LoginFailure).where(
        LoginFailure.username == user.username)) == 0
