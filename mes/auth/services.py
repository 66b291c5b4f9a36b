"""Users, passwords, API tokens and login: the rules, in the caller's transaction."""

from __future__ import annotations

import hashlib
import secrets
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
from mes.auth.models import ApiToken, LoginFailure, User
from mes.auth.permissions import Role
from mes.catalog.models import Customer
from mes.db import utcnow
from mes.errors import Conflict, ErrorCode, InvalidInput, NotFound, RateLimited

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


def verify_password(user: User, password: str) -> bool:
    if not user.password_hash:
        return False
    try:
        return _hasher().verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


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
    if len(display_name) > 120:
        raise InvalidInput(_l("The name is too long."),
                           fields={"display_name": [_l("Use at most 120 characters.")]})
    if role not in {r.value for r in Role}:
        raise InvalidInput(_l("Unknown role %(role)s.", role=role),
                           fields={"role": [_l("Unknown role %(role)s.", role=role)]})
    customer_obj = None
    if role == Role.CUSTOMER:
        if not customer:
            raise InvalidInput(_l("A customer user belongs to one customer."),
                               fields={"customer": [_l("Required for the customer role.")]})
        customer_obj = session.scalar(select(Customer).where(Customer.code == customer))
        if customer_obj is None:
            raise InvalidInput(_l("Unknown customer %(customer)s.", customer=customer),
                               fields={"customer": [_l("Unknown customer %(customer)s.",
                                                       customer=customer)]})
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
    if role == Role.CUSTOMER:
        customer_obj = session.scalar(select(Customer).where(Customer.code == (customer or "")))
        if customer_obj is None:
            raise InvalidInput(_l("A customer user belongs to one known customer."),
                               fields={"customer": [_l("Name a known customer.")]})
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


# An office behind one address has many users: its limit is this many times a user's.
ADDRESS_FACTOR = 4


def check_throttle(session: Session, username: str, address: str | None) -> None:
    """Refuse a login attempt (RateLimited, 429) after LOGIN_MAX_FAILURES failures for the
    user name, or ADDRESS_FACTOR times that many from the address, within the window."""
    config = current_app.config
    limit = config["LOGIN_MAX_FAILURES"]
    since = utcnow() - timedelta(minutes=config["LOGIN_FAILURE_WINDOW_MINUTES"])
    by_user = session.scalar(select(func.count()).select_from(LoginFailure).where(
        LoginFailure.username == username[:120], LoginFailure.at > since)) or 0
    by_address = session.scalar(select(func.count()).select_from(LoginFailure).where(
        LoginFailure.address == address, LoginFailure.at > since)) if address else 0
    if by_user >= limit or (by_address or 0) >= limit * ADDRESS_FACTOR:
        raise RateLimited(_l("Too many failed logins; wait %(LOGIN_FAILURE_WINDOW_MINUTES)s "
                             "minutes and try again.",
                             LOGIN_FAILURE_WINDOW_MINUTES=config['LOGIN_FAILURE_WINDOW_MINUTES']))


def authenticate(session: Session, username: str, password: str,
                 address: str | None = None) -> User | None:
    """Check a login. Success and failure are both audited; inactive users fail. Failures
    are counted for throttling (RateLimited once too many); a success clears the user's."""
    check_throttle(session, username, address)
    user = session.scalar(select(User).where(User.username == username))
    ok = user is not None and user.active and verify_password(user, password)
    if ok:
        session.execute(delete(LoginFailure).where(LoginFailure.username == username[:120]))
    else:
        session.add(LoginFailure(username=username[:120], address=address))
    audit.record(session, actor=user if ok else None,
                 code="login:success" if ok else "login:failure",
                 subject_type="login", subject_key=username[:120],
                 data={"address": address, **({} if ok or user is None else
                                              {"inactive": not user.active})})
    return user if ok else None
