"""The password policy: at least PASSWORD_MIN_LENGTH (12) characters, letters and digits,
not the user name, not a common password; applied on creation and on change, with an
error naming each problem, and nothing changes on a refusal."""

from __future__ import annotations

import pytest

from mes.audit.models import AuditEvent
from mes.auth import services
from mes.auth.models import User
from mes.auth.passwords import COMMON, policy_problems
from mes.errors import InvalidInput
from tests.helpers import row_counts


@pytest.mark.parametrize("password", ["Tidal-basin-2031", "demo-cyanlake-2026",
                                      "7 plum trees in a row"])
def test_good_passwords_pass(password):
    assert policy_problems(password, "cyanlake") == []


@pytest.mark.parametrize("password, problem", [
    ("Short-pw-1", "at least 12 characters"),
    ("only-letters-here", "letters and digits"),
    ("123456789012345", "letters and digits"),
    ("Password2026!", "too common"),
    ("qwertyuiop123", "too common"),
    ("!!Welcome-2026", "too common"),
    ("maintenance.lead", "letters and digits"),
    ("Maintenance.Lead1", "user name"),
    ("1dael.ecnanetniam", "user name"),
    ("maintenance.lead-2026", "user name"),
])
def test_weak_passwords_are_refused_naming_the_problem(password, problem):
    problems = [str(p) for p in policy_problems(password, "maintenance.lead")]
    assert any(problem in p for p in problems), problems


def test_the_common_list_is_small_and_lower_case():
    assert 50 <= len(COMMON) <= 500
    assert all(word == word.casefold() for word in COMMON)


def test_the_configured_minimum_applies(app):
    assert app.config["PASSWORD_MIN_LENGTH"] == 12
    assert policy_problems("Abcdefgh-1234", None, 14) != []
    assert policy_problems("Abcdefgh-12345", None, 14) == []


def test_creating_a_user_with_their_name_as_password_is_refused(app, session):
    before = row_counts(session, User, AuditEvent)
    with app.app_context(), pytest.raises(InvalidInput) as err:
        services.create_user(session, "test", username="line.lead7", role="operator",
                             password="Line.Lead7-2026")
    session.rollback()
    assert "user name" in " ".join(map(str, err.value.fields["password"]))
    assert row_counts(session, User, AuditEvent) == before


def test_changing_to_a_common_password_is_refused_and_nothing_changes(app, make_user, session):
    user = make_user("qa")
    old_hash, old_version = user.password_hash, user.session_version
    before = row_counts(session, AuditEvent)
    with app.app_context(), pytest.raises(InvalidInput) as err:
        services.set_password(session, "test", user, "Password-123456")
    session.rollback()
    session.refresh(user)
    assert "too common" in " ".join(map(str, err.value.fields["password"]))
    assert (user.password_hash, user.session_version) == (old_hash, old_version)
    assert row_counts(session, AuditEvent) == before


def test_the_cli_refuses_a_common_password_with_a_clear_line(app, connection):
    result = app.test_cli_runner().invoke(
        args=["users", "create", "new.planner", "--role", "planner", "--password-stdin"],
        input="Qwerty-123456\n")
    assert result.exit_code != 0
    assert "too common" in result.output and "Traceback" not in result.output
