"""Users, passwords, API tokens and login: the rules, in the caller's transaction."""

from __future__ import annotations

import hashlib
import math
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app, has_app_context
from flask_babel import lazy_gettext as _l
from sqlalchemy import CursorResult, bindparam, delete, func, select, update
from sqlalchemy.orm import Session

from mes import audit
from mes.auth import passwords
from mes.auth.actor import Actor
from mes.auth.models import ApiToken, LoginFailure, LoginSession, User
from mes.auth.permissions import Role
from mes.catalog.models import Customer
from mes.db import utcnow
from mes.errors import Conflict, ErrorCode, InvalidInput, NotFound, RateLimited
from mes.vocabulary import CustomerKind

_HASHER = PasswordHasher()
# Tests hash many passwords; the cheapest Argon2id parameters keep the suite fast.
_TEST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def _hasher() -> PasswordHasher:
    if has_app_context() and current_app.config.get("TESTING"):
        return _TEST_HASHER
    return _HASHER


def check_password_policy(password: str, username: str | None = None) -> None:
    """The password policy of mes.auth.passwords (the configured length, letters and
    digits, not the user name, not a common password); InvalidInput naming each problem."""
    min_len = current_app.config["PASSWORD_MIN_LENGTH"] if has_app_context() else \
        passwords.DEFAULT_MIN_LENGTH
    problems = passwords.policy_problems(password, username, min_len)
    if problems:
        raise InvalidInput(_l("The password is too weak."), fields={"password": problems})


def hash_password(password: str) -> str:
    return _hasher().hash(password)


_DUMMY_HASHES: dict[int, str] = {}


def _dummy_hash(hasher: PasswordHasher) -> str:
    """A hash of a random password with `hasher`'s parameters, made once per hasher."""
    if id(hasher) not in _DUMMY_HASHES:
        _DUMMY_HASHES[id(hasher)] = hasher.hash(secrets.token_urlsafe(16))
    return _DUMMY_HASHES[id(hasher)]


def _verify_hash(stored: str | None, password: str) -> bool:
    """Whether `password` matches the stored hash; without one, the same work is done
    against a dummy hash and the answer is False."""
    hasher = _hasher()
    try:
        if stored:
            return hasher.verify(stored, password)
        hasher.verify(_dummy_hash(hasher), password)
    except (VerificationError, InvalidHashError):
        return False
    return False  # pragma: no cover - the dummy's random password is never typed


def verify_password(user: User, password: str) -> bool:
    return _verify_hash(user.password_hash, password)


# User names: ASCII letters and digits, and . _ - after the first character (no "/", no
# spaces, no invisible or direction-changing characters, no look-alike letters; the name
# is part of the admin page's URLs). Names made before the rule keep working: `mes check`
# lists them.
USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def get_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(_l("No user %(username)s.", username=username))
    return user


def create_user(session: Session, actor: Actor, *, username: str, role: str,
                password: str | None = None, customer: str | None = None,
                display_name: str = "", enforce_policy: bool = True) -> User:
    """Create a user. A customer user must name one customer; others must not.

    Raises InvalidInput (empty or too long name, unknown role or customer, weak password),
    Conflict (name taken).
    """
    if not 1 <= len(username) <= 80:
        raise InvalidInput(_l("A user name needs 1 to 80 characters."),
                           fields={"username": [_l("Use 1 to 80 characters.")]})
    if not USERNAME.fullmatch(username):
        raise InvalidInput(_l("A user name has letters a-z and A-Z, digits, and . _ - "
                              "after the first character."),
                           fields={"username": [_l("Use letters a-z and A-Z, digits, and "
                                                   ". _ - after the first character.")]})
    if len(display_name) > 120:
        raise InvalidInput(_l("The name is too long."),
                           fields={"display_name": [_l("Use at most 120 characters.")]})
    if role not in {r.value for r in Role}:
        raise InvalidInput(_l("Unknown role %(role)s.", role=role),
                           fields={"role": [_l("Unknown role %(role)s.", role=role)]})
    customer_obj = None
    if role in (Role.CUSTOMER, Role.PARTNER):
        if not customer:
            raise InvalidInput(_l("A customer user belongs to one customer."),
                               fields={"customer": [_l("Required for the customer role.")]})
        customer_obj = session.scalar(select(Customer).where(Customer.code == customer))
        if customer_obj is None:
            raise InvalidInput(_l("Unknown customer %(customer)s.", customer=customer),
                               fields={"customer": [_l("Unknown customer %(customer)s.",
                                                       customer=customer)]})
        _check_kind(role, customer_obj)
    elif customer:
        raise InvalidInput(_l("Only customer users belong to a customer."),
                           fields={"customer": [_l("Only for the customer role.")]})
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(_l("User %(username)s exists already.", username=username),
                       code=ErrorCode.DUPLICATE)
    if password is not None and enforce_policy:
        check_password_policy(password, username)
    user = User(username=username, role=role, customer=customer_obj,
                display_name=display_name or username,
                password_hash=hash_password(password) if password else None)
    session.add(user)
    audit.record(session, actor=actor, code="user:create", subject_type="user",
                 subject_key=username, data={"role": role, "customer": customer})
    return user


def _check_kind(role: str, customer: Customer) -> None:
    """A customer user belongs to a chip owner, a partner user to a partner organisation."""
    wanted = CustomerKind.PARTNER if role == Role.PARTNER else CustomerKind.CUSTOMER
    if customer.kind != wanted:
        message = (_l("A partner user belongs to a customer of kind partner.")
                   if role == Role.PARTNER else
                   _l("A customer user belongs to a customer of kind customer."))
        raise InvalidInput(message, fields={"customer": [message]})


def set_password(session: Session, actor: Actor, user: User, password: str) -> None:
    """Change a password (policy applies); every existing session of the user ends."""
    check_password_policy(password, user.username)
    user.password_hash = hash_password(password)
    user.session_version += 1
    audit.record(session, actor=actor, code="user:password", subject_type="user",
                 subject_key=user.username)


def set_role(session: Session, actor: Actor, user: User, role: str,
             customer: str | None = None) -> None:
    """Change a user's role (and customer binding for the customer role)."""
    if role not in {r.value for r in Role}:
        raise InvalidInput(_l("Unknown role %(role)s.", role=role),
                           fields={"role": [_l("Unknown role %(role)s.", role=role)]})
    customer_obj = None
    if role in (Role.CUSTOMER, Role.PARTNER):
        customer_obj = session.scalar(select(Customer).where(Customer.code == (customer or "")))
        if customer_obj is None:
            raise InvalidInput(_l("A customer user belongs to one known customer."),
                               fields={"customer": [_l("Name a known customer.")]})
        _check_kind(role, customer_obj)
    old = user.role
    user.role = role
    user.customer = customer_obj
    user.session_version += 1
    audit.record(session, actor=actor, code="user:role", subject_type="user",
                 subject_key=user.username, data={"from": old, "to": role,
                                                  "customer": customer})


def set_active(session: Session, actor: Actor, user: User, active: bool) -> None:
    """Activate or deactivate a user; deactivation ends sessions and stops tokens."""
    if user.active == active:
        return
    user.active = active
    user.session_version += 1
    audit.record(session, actor=actor, code="user:activate" if active else "user:deactivate",
                 subject_type="user", subject_key=user.username)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, actor: Actor, user: User) -> str:
    """Create an API token for `user` and return it; only its hash is kept."""
    token = "mes_" + secrets.token_urlsafe(32)
    session.add(ApiToken(user=user, token_hash=_token_hash(token), prefix=token[:10]))
    audit.record(session, actor=actor, code="token:create", subject_type="user",
                 subject_key=user.username, data={"prefix": token[:10]})
    return token


def revoke_tokens(session: Session, actor: Actor, user: User) -> int:
    """Revoke every live token of `user`; returns how many."""
    # An UPDATE answers a CursorResult (it has the rowcount); Session.execute is typed for
    # any statement.
    result = cast("CursorResult[Any]", session.execute(
        update(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    ))
    count = result.rowcount or 0
    audit.record(session, actor=actor, code="token:revoke", subject_type="user",
                 subject_key=user.username, data={"count": count})
    return count


# Built once: every API request runs it.
_USER_FOR_TOKEN = (select(User).join(ApiToken, ApiToken.user_id == User.id)
                   .where(ApiToken.token_hash == bindparam("hash"),
                          ApiToken.revoked_at.is_(None)))


def user_for_token(session: Session, token: str) -> User | None:
    """The active user a live token belongs to, else None."""
    row = session.execute(_USER_FOR_TOKEN, {"hash": _token_hash(token)}).scalar_one_or_none()
    if row is None or not row.active:
        return None
    return row


# Login throttling: the policy is described in docs/decisions.md ("Login throttling").
# Failures of a user name count this long (a successful login forgets them at once).
FAILURE_MEMORY = timedelta(hours=24)
# An office behind one address has many users: its limit is this many times a user's.
ADDRESS_FACTOR = 4


class LoginThrottled(RateLimited):
    """A login attempt refused before its password is checked; `retry_after` in seconds."""

    def __init__(self, message: Any, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def login_delay(failures: int, free: int, cap: timedelta) -> timedelta:
    """How long after a user name's last failure its next attempt must wait: nothing for
    the first `free` failures, then one second, doubling with each further failure, at most
    `cap`."""
    if failures < free:
        return timedelta(0)
    return min(cap, timedelta(seconds=2 ** min(failures - free, 30)))


def _seconds(delta: timedelta) -> int:
    return max(1, math.ceil(delta.total_seconds()))


def check_throttle(session: Session, username: str, address: str | None) -> None:
    """Refuse a login attempt (LoginThrottled, 429) without checking its password when

    - the user name failed LOGIN_MAX_FAILURES times or more within FAILURE_MEMORY and its
      last failure is more recent than `login_delay` (1 s doubling per further failure, at
      most LOGIN_FAILURE_WINDOW_MINUTES); or
    - the address failed ADDRESS_FACTOR x LOGIN_MAX_FAILURES times within
      LOGIN_FAILURE_WINDOW_MINUTES and this user name failed within that window too. A user
      name without a recent failure is still checked, so a shift behind one address keeps
      logging in while someone there guesses.
    Reads only."""
    config = current_app.config
    free = config["LOGIN_MAX_FAILURES"]
    window = timedelta(minutes=config["LOGIN_FAILURE_WINDOW_MINUTES"])
    now = utcnow()
    failures, last = session.execute(
        select(func.count(), func.max(LoginFailure.at)).where(
            LoginFailure.username == username[:120],
            LoginFailure.at > now - FAILURE_MEMORY)).one()
    if last is None:
        return
    retry_at = last + login_delay(failures, free, window)
    if retry_at > now:
        seconds = _seconds(retry_at - now)
        raise LoginThrottled(_l("Too many failed logins for this user name; try again in "
                                "%(seconds)s seconds.", seconds=seconds), seconds)
    if not address or last <= now - window:
        return
    limit = free * ADDRESS_FACTOR
    newest = session.scalars(
        select(LoginFailure.at).where(LoginFailure.address == address,
                                      LoginFailure.at > now - window)
        .order_by(LoginFailure.at.desc()).limit(limit)).all()
    if len(newest) >= limit:
        # Below the limit again once the oldest of the newest `limit` failures leaves the
        # window.
        seconds = _seconds(newest[-1] + window - now)
        raise LoginThrottled(_l("Too many failed logins from this address; this user name "
                                "may try again in %(seconds)s seconds.", seconds=seconds),
                             seconds)


@dataclass(frozen=True)
class LoginAttempt:
    """What a login read before its password is checked: the name as typed, the address,
    the user (None when unknown) and the password hash the check is made against."""

    username: str
    address: str | None
    user: User | None
    password_hash: str | None


def start_login(session: Session, username: str, address: str | None) -> LoginAttempt:
    """The reads of a login: the throttle (LoginThrottled, 429) and the user. Writes
    nothing, so the page runs it before the password hash without holding a write lock."""
    check_throttle(session, username, address)
    user = session.scalar(select(User).where(User.username == username))
    return LoginAttempt(username[:120], address, user,
                        user.password_hash if user is not None else None)


def password_matches(attempt: LoginAttempt, password: str) -> bool:
    """The slow part of a login, outside any transaction: the Argon2 check. An unknown user,
    an inactive one and one without a password pay the same hash (against a dummy), so the
    answer's time does not tell which user names exist."""
    ok = _verify_hash(attempt.password_hash, password)
    return ok and attempt.user is not None and attempt.user.active


def finish_login(session: Session, attempt: LoginAttempt, ok: bool) -> User | None:
    """The writes of a login, after `password_matches`: a failure is counted, a success
    clears the user name's failures; both are audited. A user deactivated or given a new
    password meanwhile fails. Returns the user on success."""
    user = attempt.user
    if ok and user is not None:
        now = session.execute(select(User.active, User.password_hash)
                              .where(User.id == user.id)).one_or_none()
        ok = now is not None and now.active and now.password_hash == attempt.password_hash
    if ok:
        session.execute(delete(LoginFailure).where(LoginFailure.username == attempt.username))
    else:
        session.add(LoginFailure(username=attempt.username, address=attempt.address))
    audit.record(session, actor=user if ok else None,
                 code="login:success" if ok else "login:failure",
                 subject_type="login", subject_key=attempt.username,
                 data={"address": attempt.address, **({} if ok or user is None else
                                                      {"inactive": not user.active})})
    return user if ok else None


def authenticate(session: Session, username: str, password: str,
                 address: str | None = None) -> User | None:
    """A whole login in the caller's transaction (start_login, password_matches,
    finish_login). The login page runs the three apart so that no write lock is held
    while the password is hashed."""
    attempt = start_login(session, username, address)
    return finish_login(session, attempt, password_matches(attempt, password))


# --- login sessions ----------------------------------------------------------------------

def _lifetime() -> timedelta:
    hours = current_app.config["SESSION_LIFETIME_HOURS"] if has_app_context() else 12
    return timedelta(hours=hours)


def start_session(session: Session, user: User) -> str:
    """Open a login session of `user` and return its key for the session cookie (only its
    hash is kept). Sessions older than SESSION_LIFETIME_HOURS, of every user, are deleted."""
    session.execute(delete(LoginSession).where(LoginSession.created_at <= utcnow() -
                                               _lifetime()))
    key = secrets.token_urlsafe(32)
    session.add(LoginSession(key_hash=_token_hash(key), user_id=user.id))
    return key


def end_session(session: Session, key: str, user: User | None = None,
                address: str | None = None) -> None:
    """End the login session of `key` (logout): its cookie stops opening anything. The
    logout of `user` is audited (login:logout) when a live session ended."""
    ended = session.connection().execute(delete(LoginSession).where(
        LoginSession.key_hash == _token_hash(key))).rowcount
    if ended and user is not None:
        audit.record(session, actor=user, code="login:logout", subject_type="login",
                     subject_key=user.username, data={"address": address})


# Built once: every page request with a session cookie runs it.
_USER_FOR_SESSION = (select(User).join(LoginSession, LoginSession.user_id == User.id)
                     .where(User.id == bindparam("uid"),
                            LoginSession.key_hash == bindparam("hash"),
                            LoginSession.created_at > bindparam("since")))


def user_for_session(session: Session, user_id: int, version: int, key: str) -> User | None:
    """The active user of a live login session whose cookie carries `user_id`, `version`
    (the user's session version) and `key`, else None."""
    user = session.execute(_USER_FOR_SESSION, {
        "uid": user_id, "hash": _token_hash(key), "since": utcnow() - _lifetime()}
    ).scalar_one_or_none()
    if user is None or not user.active or user.session_version != version:
        return None
    return user
