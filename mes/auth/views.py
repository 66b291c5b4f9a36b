"""Login, logout, the user's profile and the users admin pages."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user
from sqlalchemy import func, select

from mes import db
from mes.auth import services
from mes.auth.login import SESSION_KEY
from mes.auth.models import ApiToken, User
from mes.auth.permissions import Permission, Role, public, require
from mes.catalog.models import Customer
from mes.i18n import LOCALES
from mes.vocabulary import Language
from mes.web import forms

bp = Blueprint("auth", __name__)

def _safe_next(target: str | None) -> str:
    # Only same-site paths: an open redirect after login is a phishing aid. Browsers read
    # "\\" as "/" and drop tabs and newlines, so "/\\host" or "/\t/host" would leave the site.
    if target and target.startswith("/") and not target.startswith("//") \
            and not urlparse(target).netloc and "\\" not in target \
            and all(ch.isprintable() and not ch.isspace() for ch in target):
        return target
    return url_for("main.index")


@bp.route("/login", methods=["GET", "POST"])
@public
def login() -> Any:
    if request.method == "GET":
        if current_user.is_authenticated:
            return redirect(_safe_next(request.args.get("next")))
        return render_template("auth/login.html", error=None)
    username = request.form.get("username", "").strip()
    password = request.form.get("password", "")
    try:
        # The reads first, in a transaction that takes no write lock; the Argon2 hash
        # outside any transaction; then the short write (SQLite's write lock only there).
        with db.reading() as sess:
            attempt = services.start_login(sess, username, request.remote_addr)
    except services.LoginThrottled as exc:
        return render_template("auth/login.html", username=username, error=exc.message), \
            429, {"Retry-After": str(exc.retry_after)}
    ok = services.password_matches(attempt, password)
    sess = db.session()
    user = services.finish_login(sess, attempt, ok)
    if user is None:
        return render_template("auth/login.html", username=username,
                               error=_("Wrong user name or password, or the account is "
                                       "inactive.")), 200
    session.clear()
    key = services.start_session(sess, user)
    login_user(user)
    session[SESSION_KEY] = key
    session.permanent = True
    return redirect(_safe_next(request.form.get("next")))


@bp.route("/logout", methods=["POST"])
@require()
def logout() -> Any:
    # Server-side: the login session ends, so a copy of the cookie opens nothing any more.
    key = session.get(SESSION_KEY)
    if isinstance(key, str):
        services.end_session(db.session(), key,
                             current_user if current_user.is_authenticated else None,
                             request.remote_addr)
    logout_user()
    session.clear()
    flash(_("You are logged out."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/profile", methods=["GET", "POST"])
@require()
def profile() -> Any:
    errors: dict[str, list[str]] = {}
    user: User = current_user._get_current_object()
    if request.method == "POST":
        sess = db.session()
        if request.form.get("action") == "locale":
            locale = request.form.get("locale") or None
            if locale is not None and locale not in LOCALES:
                errors["locale"] = [_("Choose a language from the list.")]
            else:
                user.locale = locale
                return forms.done(_("Language saved."), "auth.profile")
        elif request.form.get("action") == "password":
            new = request.form.get("new_password", "")
            # Two Argon2 hashes follow (the current password, then the new one): no write
            # lock meanwhile; the change itself begins a new transaction.
            db.end_reads()
            if not services.verify_password(user, request.form.get("current_password", "")):
                errors["current_password"] = [_("This is not your current password.")]
            elif new != request.form.get("new_password2", ""):
                errors["new_password2"] = [_("The two new passwords differ.")]
            else:
                _none, refused = forms.attempt(
                    lambda: services.set_password(sess, user, user, new))
                if refused is not None:
                    errors["new_password"] = refused.fields.get("password", [refused.message])
                else:
                    # The password change ended every session, this one included.
                    login_user(user)
                    return forms.done(_("Password changed. Other sessions have ended."),
                                      "auth.profile")
    return render_template("auth/profile.html", user=user, errors=errors,
                           locales=Language.choices()), \
        422 if errors else 200


# --- users admin -----------------------------------------------------------------------

@bp.route("/admin/users", methods=["GET", "POST"])
@require(Permission.USER_ADMIN)
def users() -> Any:
    sess = db.session()
    errors: dict[str, list[str]] = {}
    form: dict[str, Any] = {}
    if request.method == "POST":
        form = request.form.to_dict()
        user, refused = forms.attempt(lambda: services.create_user(
            sess, current_user, username=form.get("username", "").strip(),
            role=form.get("role", ""), password=form.get("password") or None,
            customer=form.get("customer") or None,
            display_name=form.get("display_name", "").strip()))
        if user is not None:
            return forms.done(_("User %(name)s created.", name=user.username), "auth.users")
        assert refused is not None
        errors = refused.fields or {"_schema": [refused.message]}
    return _users_page(errors=errors, form=form)


def _users_page(*, errors: dict[str, list[str]] | None = None,
                form: dict[str, Any] | None = None,
                new_token: tuple[str, str] | None = None) -> Any:
    """The users page; `new_token` is (user name, token) to show once."""
    sess = db.session()
    all_users = sess.scalars(select(User).order_by(User.username)).all()
    tokens = {uid: n for uid, n in sess.execute(
        select(ApiToken.user_id, func.count()).where(ApiToken.revoked_at.is_(None))
        .group_by(ApiToken.user_id))}
    customers = sess.scalars(select(Customer).order_by(Customer.code)).all()
    return render_template("auth/users.html", users=all_users, errors=errors or {},
                           form=form or {}, roles=[r.value for r in Role],
                           customers=customers, live_tokens=tokens,
                           new_token=new_token), 422 if errors else 200


@bp.route("/admin/users/<path:username>", methods=["POST"])
@require(Permission.USER_ADMIN)
def user_action(username: str) -> Any:
    sess = db.session()
    user = services.get_user(sess, username)
    action = request.form.get("action")

    def act() -> tuple[str, str]:
        """Carry out the action; its message and the message's category."""
        if action == "role":
            services.set_role(sess, current_user, user, request.form.get("role", ""),
                              request.form.get("customer") or None)
            return _("Role of %(name)s changed.", name=username), "success"
        if action in ("activate", "deactivate"):
            services.set_active(sess, current_user, user, action == "activate")
            return _("%(name)s is now %(state)s.", name=username,
                     state=_("active") if action == "activate" else _("inactive")), "success"
        if action == "password":
            services.set_password(sess, current_user, user, request.form.get("password", ""))
            return _("Password of %(name)s set.", name=username), "success"
        count = services.revoke_tokens(sess, current_user, user)
        return _("%(count)d token(s) of %(name)s revoked.", count=count,
                 name=username), "success"

    if action not in ("role", "activate", "deactivate", "password", "token", "revoke"):
        flash(_("Unknown action."), "error")
        return redirect(url_for("auth.users"))
    if action == "token":
        # The token is shown on this answer only: a flashed message would carry it in the
        # session cookie (signed, not encrypted) to the next page, and into any copy of it.
        token = services.create_token(sess, current_user, user)
        sess.flush()
        page, status = _users_page(new_token=(user.username, token))
        return page, status, {"Cache-Control": "no-store"}
    done, refused = forms.attempt(act)
    if done is None:
        assert refused is not None
        sess.rollback()
        detail = "; ".join(m for msgs in refused.fields.values() for m in msgs)
        flash(f"{refused.message} {detail}".strip(), "error")
        return redirect(url_for("auth.users"))
    message, category = done
    return forms.done(message, "auth.users", category=category)
