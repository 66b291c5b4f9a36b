"""Session cookies (HttpOnly, SameSite=Lax, Secure outside debug and test mode unless
switched off) and the security headers on every kind of answer (page, JSON, error, static
file)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers import PASSWORD, make_app

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def _session_cookie(resp) -> str:
    cookies = [c for c in resp.headers.getlist("Set-Cookie") if c.startswith("session=")]
    assert cookies, resp.headers
    return cookies[-1]


def test_the_session_cookie_is_httponly_and_samesite_lax_not_secure_in_test_mode(client,
                                                                                  make_user):
    user = make_user("qa")
    resp = client.post("/login", data={"username": user.username, "password": PASSWORD})
    assert resp.status_code == 302
    cookie = _session_cookie(resp)
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie


def _cookie_of(app):
    client = app.test_client()
    with client.session_transaction() as sess:  # writes the session cookie
        sess["probe"] = 1
    cookie = client.get_cookie("session")
    assert cookie is not None
    return cookie


def test_the_session_cookie_is_secure_by_default_outside_debug_and_test_mode(database_url,
                                                                             tmp_path):
    app = make_app(database_url, tmp_path, TESTING=False)
    assert app.config["SESSION_COOKIE_SECURE"] is True
    cookie = _cookie_of(app)
    assert cookie.secure and cookie.http_only and cookie.same_site == "Lax"


def test_a_plain_http_install_switches_the_secure_flag_off(database_url, tmp_path):
    app = make_app(database_url, tmp_path, TESTING=False, SESSION_COOKIE_SECURE=False)
    assert app.config["SESSION_COOKIE_SECURE"] is False
    assert not _cookie_of(app).secure


def test_debug_mode_serves_plain_http_without_the_secure_flag(database_url, tmp_path,
                                                             monkeypatch):
    monkeypatch.setenv("FLASK_DEBUG", "1")
    app = make_app(database_url, tmp_path, TESTING=False)
    assert app.debug
    assert app.config["SESSION_COOKIE_SECURE"] is False


@pytest.mark.parametrize("path", ["/login", "/api/v1/openapi.json", "/no/such/page",
                                  "/api/v1/no-such", "/static/css/mes.css"])
def test_every_answer_carries_the_security_headers(client, path):
    resp = client.get(path)
    resp.close()  # only the headers are read; a static file's answer holds the file open
    csp = resp.headers.get("Content-Security-Policy", "")
    directives = dict((part.strip().split(" ", 1) + [""])[:2] for part in csp.split(";"))
    assert directives.get("script-src") == "'self'", csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert directives.get("frame-ancestors") == "'none'"
    assert directives.get("default-src") == "'self'"
    assert resp.headers.get("X-Content-Type-Options") == "nosniff"
    assert resp.headers.get("Referrer-Policy") in ("same-origin", "no-referrer",
                                                   "strict-origin-when-cross-origin")


def test_no_template_has_inline_scripts_handlers_or_style_attributes():
    problems = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        source = path.read_text(encoding="utf-8")
        for tag in re.findall(r"<script\b[^>]*>", source, flags=re.I):
            if "src=" not in tag:
                problems.append(f"{path.name}: inline script {tag}")
        for match in re.findall(r"<[a-z][^>]*\s(on[a-z]+|style)\s*=", source, flags=re.I):
            problems.append(f"{path.name}: {match}= attribute")
    assert problems == []
