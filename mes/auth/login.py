"""Flask-Login wiring: session users for pages, bearer tokens for the API, CSRF."""

from __future__ import annotations

from flask import Flask, Request, request
from flask import session as cookie
from flask_babel import lazy_gettext as _l
from flask_login import AnonymousUserMixin, LoginManager
from flask_wtf.csrf import CSRFProtect

from mes import db
from mes.auth.models import User
from mes.errors import Unauthenticated

login_manager = LoginManager()
csrf = CSRFProtect()

# The key of the session cookie's entry holding the login session's key (mes.auth.models
# LoginSession): logout deletes that row, so every copy of the cookie stops working.
SESSION_KEY = "_mes_session"


class Anonymous(AnonymousUserMixin):
    role = None
    username = None
    customer_id = None


def uses_bearer_token(req: Request | None = None) -> bool:
    header = (req or request).headers.get("Authorization", "")
    return header.lower().startswith("bearer ")


@login_manager.user_loader
def _load_user(user_id: str) -> User | None:
    # The cookie carries "id:session_version" and the login session's key; a changed
    # password or a deactivation bumps the version, so every older session ends, and
    # logout deletes the login session. A request that brings a bearer token is judged by
    # the token alone: it skipped the CSRF check, so the cookie must not count.
    if uses_bearer_token():
        return None
    key = cookie.get(SESSION_KEY)
    try:
        uid, version = (int(part) for part in user_id.split(":", 1))
    except ValueError:
        return None
    if not isinstance(key, str):
        return None
    from mes.auth.services import user_for_session

    return user_for_session(db.session(), uid, version, key)


@login_manager.request_loader
def _load_from_token(req: Request) -> User | None:
    if not uses_bearer_token(req):
        return None
    from mes.auth.services import user_for_token

    token = req.headers["Authorization"].split(None, 1)[1].strip() \
        if " " in req.headers["Authorization"].strip() else ""
    user = user_for_token(db.session(), token) if token else None
    if user is None:
        raise Unauthenticated(_l("The API token is not valid, revoked, or its user is inactive."))
    return user


@login_manager.unauthorized_handler
def _unauthorized() -> None:
    raise Unauthenticated(_l("Log in to continue."))


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.anonymous_user = Anonymous
    login_manager.login_view = "auth.login"
    login_manager.session_protection = "basic"
    csrf.init_app(app)
