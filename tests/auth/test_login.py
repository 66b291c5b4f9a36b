"""Logging in and out, and the sessions that end when a password changes or a user is
deactivated."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from mes.audit.models import AuditEvent
from mes.auth import services
from mes.auth.models import LoginFailure, LoginSession
from mes.errors import InvalidInput
from tests.helpers import PASSWORD, refused, row_counts


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


def test_logout_by_post_ends_the_session(login, make_user, session):
    user = make_user("operator")
    client = login(user)
    resp = client.post("/logout")
    assert resp.status_code == 302
    assert resp.location == "/login"
    assert not _is_logged_in(client)
    assert _login_events(session, user.username)[-1] == ("login:logout",
                                                         {"address": "127.0.0.1"})
    # A second logout (no live session) writes nothing more.
    count = len(_login_events(session, user.username))
    client.post("/logout")
    assert len(_login_events(session, user.username)) == count


def _copy_of_cookie(client):
    """A second client holding a copy of `client`'s session cookie (as a thief would)."""
    thief = client.application.test_client()
    thief.set_cookie("session", client.get_cookie("session").value)
    return thief


def test_logout_ends_the_session_on_the_server(login, make_user, session):
    """A copy of the cookie taken before logout opens neither the pages nor the API."""
    user = make_user("operator")
    client = login(user)
    thief = _copy_of_cookie(client)
    assert thief.get("/profile").status_code == 200
    assert thief.get("/api/v1/customers").status_code == 200
    assert row_counts(session, LoginSession) == {"login_session": 1}
    client.post("/logout")
    assert thief.get("/profile").status_code == 302
    resp = thief.get("/api/v1/customers")
    assert resp.status_code == 401 and resp.get_json()["error"]["code"] == "unauthenticated"
    assert row_counts(session, LoginSession) == {"login_session": 0}


def test_logout_ends_only_its_own_session(client, make_user):
    user = make_user("operator")
    desk = client.application.test_client()
    for c in (client, desk):
        assert _post_login(c, user.username, PASSWORD).status_code == 302
    client.post("/logout")
    assert not _is_logged_in(client)
    assert _is_logged_in(desk)


def test_a_session_ends_after_its_lifetime_however_active(app, login, make_user, session):
    user = make_user("operator")
    client = login(user)
    row = session.scalar(select(LoginSession))
    row.created_at -= timedelta(hours=app.config["SESSION_LIFETIME_HOURS"], seconds=-60)
    session.commit()
    assert _is_logged_in(client)
    row.created_at -= timedelta(seconds=60)
    session.commit()
    assert not _is_logged_in(client)
    # The next login deletes the expired session.
    login(make_user("qa"))
    assert session.scalar(select(func.count()).select_from(LoginSession).where(
        LoginSession.user_id == user.id)) == 0


def test_a_cookie_without_a_login_session_opens_nothing(app, make_user):
    """A cookie made before login sessions existed (user id and version only)."""
    user = make_user("operator")
    client = app.test_client()
    with client.session_transaction() as cookie:
        cookie["_user_id"] = user.get_id()
        cookie["_fresh"] = True
    assert not _is_logged_in(client)


def test_logging_in_again_while_logged_in_starts_a_new_session(login, make_user, session):
    user = make_user("operator")
    client = login(user)
    old = _copy_of_cookie(client)
    assert _post_login(client, user.username, PASSWORD).status_code == 302
    assert _is_logged_in(client)
    client.post("/logout")
    assert _is_logged_in(old)
    assert not _is_logged_in(client)


def test_password_change_on_the_profile_keeps_this_session(login, make_user):
    user = make_user("operator")
    client = login(user)
    other = client.application.test_client()
    assert _post_login(other, user.username, PASSWORD).status_code == 302
    resp = client.post("/profile", data={"action": "password", "current_password": PASSWORD,
                                         "new_password": "Another-pass-456",
                                         "new_password2": "Another-pass-456"})
    assert resp.status_code == 303
    assert _is_logged_in(client)
    assert not _is_logged_in(other)


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


def _post_login(client, username: str, password: str):
    return client.post("/login", data={"username": username, "password": password})


def _age_failures(session, by: timedelta, **where) -> None:
    """Move failed logins back in time (instead of waiting)."""
    for failure in session.scalars(select(LoginFailure).filter_by(**where)):
        failure.at -= by
    session.commit()


def _failures(session, **where) -> int:
    return session.scalar(select(func.count()).select_from(LoginFailure).filter_by(**where))


def test_login_delay_doubles_from_one_second_up_to_the_window():
    cap = timedelta(minutes=15)
    assert [services.login_delay(n, 5, cap).total_seconds() for n in range(4, 16)] == \
        [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900]
    assert services.login_delay(10_000, 5, cap) == cap


def test_a_throttled_attempt_is_refused_unchecked_and_changes_nothing(app, client, make_user,
                                                                      session):
    user = make_user("qa")
    free = app.config["LOGIN_MAX_FAILURES"]
    for _ in range(free):
        assert _post_login(client, user.username, "wrong-1").status_code == 200
    # Even the right password is refused while the user name waits: the answer would tell
    # a guesser whether the guess was right.
    body = refused(session, lambda: _post_login(client, user.username, PASSWORD), 429)
    assert "Too many failed logins for this user name; try again in 1 seconds." in body
    assert client.get("/").status_code == 302
    assert _failures(session) == free


def test_failures_of_a_user_name_slow_it_down_without_locking_it(app, client, make_user,
                                                                 session):
    """Each failure beyond LOGIN_MAX_FAILURES doubles the wait (reported in Retry-After);
    once the wait is over, the right password opens a session: no 15-minute lockout."""
    user = make_user("qa")
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        _post_login(client, user.username, "wrong-1")
    waits = []
    for _ in range(4):
        resp = _post_login(client, user.username, "wrong-1")
        assert resp.status_code == 429
        waits.append(int(resp.headers["Retry-After"]))
        _age_failures(session, timedelta(seconds=waits[-1]), username=user.username)
        assert _post_login(client, user.username, "wrong-1").status_code == 200
    assert waits == [1, 2, 4, 8]
    resp = _post_login(client, user.username, PASSWORD)
    assert resp.status_code == 429 and resp.headers["Retry-After"] == "16"
    _age_failures(session, timedelta(seconds=16), username=user.username)
    assert _post_login(client, user.username, PASSWORD).status_code == 302
    assert _is_logged_in(client)
    assert _failures(session, username=user.username) == 0


def test_the_wait_is_at_most_the_window(app, client, make_user, session):
    user = make_user("qa")
    window = app.config["LOGIN_FAILURE_WINDOW_MINUTES"] * 60
    session.add_all(LoginFailure(username=user.username, address="10.9.9.9") for _ in range(40))
    session.commit()
    resp = _post_login(client, user.username, PASSWORD)
    assert resp.status_code == 429
    assert window - 5 <= int(resp.headers["Retry-After"]) <= window
    _age_failures(session, timedelta(seconds=window), username=user.username)
    assert _post_login(client, user.username, PASSWORD).status_code == 302


def test_failures_older_than_a_day_are_forgotten(app, client, make_user, session):
    user = make_user("qa")
    for _ in range(app.config["LOGIN_MAX_FAILURES"] + 3):
        _post_login(client, user.username, "wrong-1")
        _age_failures(session, timedelta(minutes=20), username=user.username)
    _age_failures(session, timedelta(hours=24), username=user.username)
    for _ in range(app.config["LOGIN_MAX_FAILURES"] - 1):
        assert _post_login(client, user.username, "wrong-1").status_code == 200
    assert _post_login(client, user.username, PASSWORD).status_code == 302


def test_unknown_and_known_user_names_are_throttled_alike(app, client, make_user):
    user = make_user("qa")
    answers = {}
    for name in (user.username, "ghost"):
        for _ in range(app.config["LOGIN_MAX_FAILURES"]):
            _post_login(client, name, "wrong-1")
        resp = _post_login(client, name, "wrong-1")
        answers[name] = (resp.status_code, resp.headers.get("Retry-After"))
    assert answers[user.username] == answers["ghost"] == (429, "1")


def _flood_from_this_address(app, client) -> int:
    """Failed logins from the test client's address, each for another user name, up to the
    address limit."""
    limit = app.config["LOGIN_MAX_FAILURES"] * services.ADDRESS_FACTOR
    for i in range(limit):
        assert _post_login(client, f"nobody{i}", "x").status_code == 200
    return limit


def test_a_busy_address_does_not_block_a_user_without_recent_failures(app, client, make_user):
    """A shift behind one address (a NAT) keeps logging in while someone there guesses."""
    _flood_from_this_address(app, client)
    user = make_user("operator")
    assert _post_login(client, user.username, PASSWORD).status_code == 302
    assert _is_logged_in(client)


def test_a_busy_address_refuses_user_names_that_failed_recently(app, client, make_user,
                                                                session):
    _flood_from_this_address(app, client)
    user = make_user("operator")
    # One try for a user name without recent failures, then it waits for the address.
    assert _post_login(client, user.username, "wrong-1").status_code == 200
    body = refused(session, lambda: _post_login(client, user.username, PASSWORD), 429)
    assert "Too many failed logins from this address" in body
    resp = _post_login(client, user.username, PASSWORD)
    window = app.config["LOGIN_FAILURE_WINDOW_MINUTES"] * 60
    assert 0 < int(resp.headers["Retry-After"]) <= window
    # Another address is not concerned.
    other = client.application.test_client()
    assert other.post("/login", data={"username": user.username, "password": PASSWORD},
                      environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 302


def test_a_busy_address_calms_down_when_its_failures_leave_the_window(app, client,
                                                                      make_user, session):
    _flood_from_this_address(app, client)
    user = make_user("operator")
    _post_login(client, user.username, "wrong-1")
    assert _post_login(client, user.username, PASSWORD).status_code == 429
    _age_failures(session, timedelta(minutes=app.config["LOGIN_FAILURE_WINDOW_MINUTES"]))
    assert _post_login(client, user.username, PASSWORD).status_code == 302


def test_a_successful_login_clears_the_users_failures(app, client, make_user, session):
    user = make_user("qa")
    for _ in range(app.config["LOGIN_MAX_FAILURES"] - 1):
        client.post("/login", data={"username": user.username, "password": "wrong-1"})
    assert client.post("/login", data={"username": user.username,
                                       "password": PASSWORD}).status_code == 302
    assert _failures(session, username=user.username) == 0


class _CountingHasher:
    """The test hasher, counting the password checks it makes."""

    def __init__(self, hasher) -> None:
        self.hasher, self.verified = hasher, 0

    def hash(self, password: str) -> str:
        return self.hasher.hash(password)

    def verify(self, stored: str, password: str) -> bool:
        self.verified += 1
        return self.hasher.verify(stored, password)


@pytest.mark.parametrize("who", ["unknown", "inactive", "without password", "known"])
def test_every_login_pays_one_password_hash(app, client, make_user, session, monkeypatch, who):
    """Unknown users, inactive users and users without a password pay the same Argon2 check
    as a known user, so the answer's time does not tell which user names exist."""
    counting = _CountingHasher(services._TEST_HASHER)
    monkeypatch.setattr(services, "_hasher", lambda: counting)
    name = "ghost"
    if who != "unknown":
        user = make_user("qa", active=who != "inactive")
        if who == "without password":
            user.password_hash = None
            session.commit()
        name = user.username
    assert _post_login(client, name, "Wrong-pass-99").status_code == 200
    assert counting.verified == 1
