"""MES-lite: manufacturing execution for automotive chip packaging and test houses."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from tempfile import SpooledTemporaryFile
from typing import Any

from flask import Flask, Response, g, request
from werkzeug.routing import IntegerConverter

PACKAGE_DIR = Path(__file__).resolve().parent
MIB = 1024 * 1024


def _resource_dir(name: str) -> str:
    # In a wheel, templates/ and migrations/ travel inside the package; in a source checkout
    # they are top-level folders beside it.
    inside = PACKAGE_DIR / name
    return str(inside if inside.is_dir() else PACKAGE_DIR.parent / name)


TEMPLATE_DIR = _resource_dir("templates")
MIGRATIONS_DIR = _resource_dir("migrations")


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the application: config, database, login, CSRF, i18n, blueprints, CLI."""
    from mes import db, errors, i18n
    from mes.audit.services import configure as configure_audit
    from mes.auth import login
    from mes.cli import register_cli
    from mes.config import ensure_audit_key, ensure_secret_key, load_config
    from mes.web.json_body import CheckedJSONProvider

    settings = load_config(config)
    ensure_secret_key(settings)
    ensure_audit_key(settings)
    app = Flask(__name__, instance_path=settings["INSTANCE_PATH"],
                template_folder=TEMPLATE_DIR, static_folder="static")
    # Request bodies too deep to parse or holding text no database can store are a 4xx.
    app.json = CheckedJSONProvider(app)
    app.config.update(settings)
    app.config.update(
        # Secure unless switched off for a plain-HTTP install; never in debug or test mode,
        # which serve plain HTTP on this machine.
        SESSION_COOKIE_SECURE=bool(settings["SESSION_COOKIE_SECURE"] and not (
            settings["TESTING"] or app.debug)),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings["SESSION_LIFETIME_HOURS"]),
        # Forms and cookie-authenticated API calls are checked in `_csrf` below; bearer
        # token calls carry no cookie and need no CSRF token.
        WTF_CSRF_CHECK_DEFAULT=False,
        WTF_CSRF_TIME_LIMIT=None,
        MAX_CONTENT_LENGTH=settings["UPLOAD_LIMIT_MIB"] * MIB,
        JSON_SORT_KEYS=False,
    )
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)

    configure_audit(db.init_app(app).info, settings)
    login.init_app(app)
    i18n.init_app(app)
    errors.register_error_handlers(app)
    # Before any route: <int:...> ids beyond a 64-bit integer match no route (404) rather
    # than overflow the database driver (found by the API fuzz run).
    app.url_map.converters["int"] = _RowIdConverter
    _register_blueprints(app)
    _connect_lifecycle()
    register_cli(app)
    _register_request_cycle(app)
    return app


class _RowIdConverter(IntegerConverter):
    """Path ids are row ids: at most a 64-bit integer."""

    def __init__(self, url_map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", 2**63 - 1)
        super().__init__(url_map, *args, **kwargs)


def _register_blueprints(app: Flask) -> None:
    from mes.api import bp as api_bp
    from mes.auth.views import bp as auth_bp
    from mes.catalog.views import bp as catalog_bp
    from mes.changes.views import bp as changes_bp
    from mes.commonality.views import bp as commonality_bp
    from mes.commonality.views import portal_bp as fa_portal_bp
    from mes.complaints.views import bp as complaints_bp
    from mes.events.views import bp as webhooks_bp
    from mes.floor.views import bp as floor_bp
    from mes.orders.views import bp as orders_bp
    from mes.partners.views import bp as partners_bp
    from mes.portal.views import bp as portal_bp
    from mes.quality.views import bp as quality_bp
    from mes.reports.views import bp as reports_bp
    from mes.shipping.views import bp as shipping_bp
    from mes.spc.views import bp as spc_bp
    from mes.testfloor.views import bp as testfloor_bp
    from mes.trace.views import bp as trace_bp
    from mes.views import bp as main_bp

    app.register_blueprint(main_bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(catalog_bp)
    app.register_blueprint(changes_bp)
    app.register_blueprint(floor_bp)
    app.register_blueprint(quality_bp)
    app.register_blueprint(testfloor_bp)
    app.register_blueprint(trace_bp)
    app.register_blueprint(shipping_bp)
    app.register_blueprint(portal_bp)
    app.register_blueprint(reports_bp)
    app.register_blueprint(spc_bp)
    app.register_blueprint(webhooks_bp)
    app.register_blueprint(commonality_bp)
    app.register_blueprint(fa_portal_bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(complaints_bp)
    app.register_blueprint(orders_bp)
    app.register_blueprint(partners_bp)


def _connect_lifecycle() -> None:
    """Other domains' rules subscribe to the floor's lot lifecycle (mes.floor.lifecycle)
    when their services load. Every process that moves lots (server, CLI, demo load, tests)
    builds the app, so loading them here connects them in each, whatever the pages import;
    a receiver connects once however often it is imported."""
    # Forecasts: holds recompute their lots' forecasts; forecasts announce their changes.
    import mes.forecast.outlook  # noqa: F401
    import mes.quality.services  # noqa: F401


def _register_request_cycle(app: Flask) -> None:
    from mes import db
    from mes.auth.login import csrf, uses_bearer_token
    from mes.errors import error_response, translate_db_error, upload_too_large

    @app.before_request
    def _bounded_body() -> None:
        # Before anything reads the body (the CSRF check reads forms). A body with a
        # Content-Length over the limit is refused by Werkzeug; one sent chunked, without
        # a length, Werkzeug would cut at the limit and pass on as if complete. Read it
        # here instead, to one byte past the limit: over it is the same 413, within it the
        # request goes on with the body and its length, like any other.
        environ = request.environ
        if request.content_length is not None or "wsgi.input_terminated" not in environ:
            return
        limit = app.config["MAX_CONTENT_LENGTH"]
        source = environ["wsgi.input"]
        chunk = source.read(min(64 * 1024, limit + 1))
        if not chunk:
            return  # no body at all (a GET): nothing to keep
        # Lives to the end of the request (closed in _close_body), not this block.
        body = SpooledTemporaryFile(max_size=MIB)  # noqa: SIM115
        total = 0
        while chunk:
            total += len(chunk)
            body.write(chunk)
            if total > limit:
                body.close()
                raise upload_too_large()
            chunk = source.read(min(64 * 1024, limit + 1 - total))
        body.seek(0)
        g.chunked_body = body
        environ["wsgi.input"] = body
        environ["CONTENT_LENGTH"] = str(total)
        # No longer chunked: Werkzeug takes a chunked request's length for unknown.
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        request.__dict__.pop("content_length", None)
        request.__dict__.pop("stream", None)

    @app.teardown_request
    def _close_body(exc: BaseException | None) -> None:
        body = g.pop("chunked_body", None)
        if body is not None:
            body.close()

    @app.before_request
    def _csrf() -> None:
        # csrf.protect() itself ignores WTF_CSRF_ENABLED, so the switch is honoured here.
        if (not app.config["WTF_CSRF_ENABLED"] or request.method in db.SAFE_METHODS
                or uses_bearer_token()):
            return
        csrf.protect()

    @app.after_request
    def _finish(response: Response) -> Response:
        # One commit per request, here; any error status rolls the whole request back.
        try:
            db.finish_request(response.status_code < 400 or g.get("commit_on_error", False))
        except Exception as exc:
            db.finish_request(False)
            mapped = translate_db_error(exc)
            if mapped is None:
                raise
            return app.make_response(error_response(mapped))
        return _security_headers(response)


# Added to every response that does not set them itself, in this order.
SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("X-Frame-Options", "DENY"),
    ("Content-Security-Policy",
     "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
     "frame-ancestors 'none'; form-action 'self'; base-uri 'self'"),
)
_SECURITY_HEADER_KEYS = tuple((key.lower(), key, value) for key, value in SECURITY_HEADERS)


def _security_headers(response: Response) -> Response:
    # What four `headers.setdefault` calls do, in one pass over the response's headers
    # (each setdefault of a missing header raised and caught a KeyError and went over
    # them three times): a request's every response pays it.
    headers = response.headers
    present = {key.lower() for key, _ in headers}
    for lower, key, value in _SECURITY_HEADER_KEYS:
        if lower not in present:
            headers.add(key, value)
    return response
