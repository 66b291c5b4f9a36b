"""User names: letters a-z and A-Z, digits, and . _ - after the first character. Names made
before the rule keep working, are listed by `mes check`, and can be deactivated from the
command line and from the users page."""

from __future__ import annotations

import subprocess

import pytest
from sqlalchemy import select

from mes.auth import services
from mes.auth.models import User
from mes.errors import InvalidInput
from mes.integrity import check
from tests.helpers import PASSWORD, audit_codes, refused

BAD = ["line/3", "ev\u202eil", "zero\u200bwidth", "jos\u00e9", "\u0430dmin", "two words",
       "..", ".hidden", "-x", "_x", "tab\tname", "semi;colon", "at@host", "a" * 81]
GOOD = ["qa.li", "tester_1", "line-3", "A", "9lives", "Op.2-b_c"]


@pytest.fixture
def cli(app, connection):
    runner = app.test_cli_runner()
    return lambda *args: runner.invoke(args=list(args))


def _user(session, name: str) -> User | None:
    session.expire_all()
    return session.scalar(select(User).where(User.username == name))


@pytest.mark.parametrize("name", BAD)
def test_a_user_name_outside_the_rule_is_refused(app, session, name):
    with app.app_context():
        error = refused(session, lambda: services.create_user(
            session, "test", username=name, role="qa", password=PASSWORD), InvalidInput,
            code="invalid")
    assert "username" in error.fields


@pytest.mark.parametrize("name", GOOD)
def test_letters_digits_dot_underscore_and_dash_make_a_user_name(app, session, name):
    with app.app_context():
        services.create_user(session, "test", username=name, role="qa", password=PASSWORD)
    assert _user(session, name) is not None


def test_the_users_page_refuses_a_name_with_a_slash(login, make_user, session):
    admin = login(make_user("admin"))
    body = refused(session, lambda: admin.post("/admin/users", data={
        "username": "line/3", "role": "operator", "password": PASSWORD}), 422)
    assert 'id="f-username-error"' in body
    assert "Use letters a-z and A-Z, digits, and . _ - after the first character." in body


@pytest.fixture
def legacy(session):
    """An account made before the rule, with a slash in its name."""
    user = User(username="line/3", role="operator", display_name="Line 3")
    session.add(user)
    session.commit()
    return user


def test_the_users_page_can_deactivate_a_legacy_name(login, make_user, session, legacy):
    admin = login(make_user("admin"))
    page = admin.get("/admin/users").get_data(as_text=True)
    assert 'action="/admin/users/line/3"' in page
    resp = admin.post("/admin/users/line/3", data={"action": "deactivate"})
    assert resp.status_code == 303
    assert _user(session, "line/3").active is False


def test_mes_check_lists_legacy_names_with_the_command_that_deactivates_them(session,
                                                                           legacy):
    session.add(User(username="ev\u202eil", role="qa"))
    session.add(User(username="old gone", role="qa", active=False))
    session.commit()
    lines = [p.line() for p in check(session, only=["users"]).problems]
    assert lines == [
        f"users: user #{legacy.id} 'line/3': name outside letters, digits and . _ - (made "
        "before the rule; it keeps working); to deactivate it: mes users deactivate line/3",
        f"users: user #{legacy.id + 1} 'ev\\u202eil': name outside letters, digits and . _ - "
        "(made before the rule; it keeps working); to deactivate it: mes users deactivate "
        "$'ev\\u202eil'",
        f"users: user #{legacy.id + 2} 'old gone': name outside letters, digits and . _ - "
        "(made before the rule; it keeps working)"]
    # What the line says to type is the name itself to bash.
    typed = lines[1].rsplit("deactivate ", 1)[1]
    said = subprocess.run(["bash", "-c", f"printf %s {typed}"], capture_output=True,
                          text=True, check=True).stdout
    assert said == "ev\u202eil"


def test_mes_check_finds_nothing_in_good_names(session, make_user):
    make_user("qa", username="qa.li")
    assert check(session, only=["users"]).problems == []


def test_mes_users_deactivate_ends_sessions_and_tokens(cli, login, make_user, token_for,
                                                       session):
    user = make_user("operator", username="line-3")
    client = login(user)
    headers = token_for(user)
    result = cli("users", "deactivate", "line-3")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "User line-3 deactivated."
    assert _user(session, "line-3").active is False
    assert audit_codes(session, "user", "line-3")[-1] == "user:deactivate"
    assert client.get("/profile").status_code == 302
    assert client.get("/api/v1/customers", headers=headers).status_code == 401


def test_mes_users_deactivate_takes_a_legacy_name(cli, session, legacy):
    result = cli("users", "deactivate", "line/3")
    assert result.exit_code == 0, result.output
    assert _user(session, "line/3").active is False


def test_mes_users_deactivate_an_inactive_user_changes_nothing(cli, make_user, session):
    make_user("operator", username="gone", active=False)
    before = audit_codes(session, "user", "gone")
    result = cli("users", "deactivate", "gone")
    assert result.exit_code == 0
    assert "inactive already; nothing changed" in result.output
    assert audit_codes(session, "user", "gone") == before


def test_mes_users_deactivate_an_unknown_user_fails_in_one_line(cli, session):
    result = cli("users", "deactivate", "nobody")
    assert result.exit_code != 0
    assert result.output.strip().splitlines() == ["Error: No user nobody."]
