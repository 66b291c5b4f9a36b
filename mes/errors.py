"""Domain errors and how they reach people: JSON under /api/v1, friendly pages elsewhere."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from flask import Flask, current_app, g, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString
from flask_wtf.csrf import CSRFError
from markupsafe import escape
from sqlalchemy.exc import DataError, IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException, MethodNotAllowed

log = logging.getLogger(__name__)


class ErrorCode(StrEnum):
    """Every code the API answers in `{"error": {"code": ...}}`, one closed set: the values are
    the contract (API.md) clients switch on, so a code is never written as a bare string. The
    status a code answers with is that of the error class raising it (Conflict: 409)."""

    # The status's own code, when nothing more precise applies.
    BAD_REQUEST = "bad_request"
    UNAUTHENTICATED = "unauthenticated"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    CONFLICT = "conflict"
    TOO_LARGE = "too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    INVALID = "invalid"
    RATE_LIMITED = "rate_limited"
    INTERNAL_ERROR = "internal_error"
    UNAVAILABLE = "unavailable"
    ERROR = "error"
    # 400
    CSRF_FAILED = "csrf_failed"
    # 409: the request is valid but the state forbids it.
    STALE = "stale"
    DUPLICATE = "duplicate"
    LOT_ON_HOLD = "lot_on_hold"
    LOT_CLOSED = "lot_closed"
    ALREADY_RUNNING = "already_running"
    NOT_RUNNING = "not_running"
    WRONG_STEP = "wrong_step"
    WRONG_EQUIPMENT = "wrong_equipment"
    EQUIPMENT_UNAVAILABLE = "equipment_unavailable"
    EQUIPMENT_BUSY = "equipment_busy"
    CAPACITY_EXCEEDED = "capacity_exceeded"
    RUN_HAS_DATA = "run_has_data"
    NO_EQUIPMENT = "no_equipment"
    MATERIAL_EXPIRED = "material_expired"
    MATERIAL_REQUIRED = "material_required"
    WRONG_MATERIAL = "wrong_material"
    MATERIAL_NOT_READY = "material_not_ready"
    NO_MATERIAL = "no_material"
    DURABLE_EXHAUSTED = "durable_exhausted"
    LOT_NO_TOO_LONG = "lot_no_too_long"
    MERGE_MISMATCH = "merge_mismatch"
    NOTHING_TO_HOLD = "nothing_to_hold"
    NOT_OPEN = "not_open"
    NOT_ACTIVE = "not_active"
    TWO_PERSON_RULE = "two_person_rule"
    NOT_MOISTURE_SENSITIVE = "not_moisture_sensitive"
    ALREADY_OPEN = "already_open"
    ALREADY_SEALED = "already_sealed"
    ALREADY_DRY_STORAGE = "already_dry_storage"
    FLOOR_LIFE_EXPIRED = "floor_life_expired"
    WRONG_CUSTOMER = "wrong_customer"
    NOT_COMPLETED = "not_completed"
    ALREADY_SHIPPED = "already_shipped"
    ALREADY_NOTIFIED = "already_notified"
    NOT_QUALIFIED = "not_qualified"
    PCN_NOT_ACCEPTED = "pcn_not_accepted"
    ALREADY_DECIDED = "already_decided"
    INSUFFICIENT_HISTORY = "insufficient_history"
    LOTS_IN_WIP = "lots_in_wip"
    SAMPLE_DUE = "sample_due"
    PM_DUE = "pm_due"
    EQUIPMENT_NOT_DOWN = "equipment_not_down"
    COMPLAINT_CLOSED = "complaint_closed"
    STEP_DONE = "step_done"
    ROOT_CAUSE_MISSING = "root_cause_missing"
    VERIFICATION_MISSING = "verification_missing"
    CONTAINMENT_OPEN = "containment_open"
    STEPS_OPEN = "steps_open"
    LOT_BANKED = "lot_banked"
    NOT_BANKED = "not_banked"
    ALREADY_ALLOCATED = "already_allocated"
    WRONG_PRODUCT = "wrong_product"
    PROGRAM_MISMATCH = "program_mismatch"
    ALREADY_VOIDED = "already_voided"
    INSERTION_OPEN = "insertion_open"
    NO_TEST_DATA = "no_test_data"
    INSERTION_CLOSED = "insertion_closed"
    PAT_ESCAPE = "pat_escape"
    # 422: the input cannot be used.
    QUANTITY_MISMATCH = "quantity_mismatch"
    NO_MATCH = "no_match"
    INVALID_STDF = "invalid_stdf"
    NO_PARTS = "no_parts"
    TOO_FEW_SUBGROUPS = "too_few_subgroups"
    INSUFFICIENT_SAMPLE = "insufficient_sample"
    INSUFFICIENT_BAKE = "insufficient_bake"
    EXPOSURE_EXCEEDED = "exposure_exceeded"
    CARRIER_TEMPERATURE = "carrier_temperature"
    SHELF_LIFE_EXPIRED = "shelf_life_expired"
    DATE_CODE_MISMATCH = "date_code_mismatch"
    ALREADY_PACKED = "already_packed"
    MIXED_PRODUCTS = "mixed_products"
    WRONG_PACKING = "wrong_packing"
    PACKED_IN_PARENT = "packed_in_parent"
    UNRESOLVED_UNITS = "unresolved_units"
    RETEST_EXCEEDS_FAILURES = "retest_exceeds_failures"


class DomainError(Exception):
    """An error a person can act on. `code` is the API's error code, an ErrorCode.

    The message (and the field messages) may be lazy strings (`_l("Lot %(lot)s ...",
    lot=...)`): they are translated when read, in the language of the request - the user's
    on pages, English or the Accept-Language on the API (see mes.i18n.select_locale)."""

    status = 400
    code = ErrorCode.BAD_REQUEST

    def __init__(self, message: str | LazyString, *, code: ErrorCode | None = None,
                 fields: Mapping[str, Any] | None = None,
                 extra: Mapping[str, Any] | None = None, commit: bool = False) -> None:
        super().__init__(message)
        # The refusal keeps what the service recorded about it (the hold of a lot tested
        # with the wrong program): the request commits although it answers an error.
        self.commit = commit
        self._message = message
        # Values the answer carries beside code and message (e.g. `required_hours`).
        self.extra = dict(extra or {})
        if code is not None:
            if not isinstance(code, ErrorCode):
                # A bare string would reach clients unchecked and escape the derivation of
                # the documented conflicts (mes.api.conflicts).
                raise TypeError(f"An error code is an ErrorCode member, not {code!r}.")
            self.code = code
        self._fields = fields

    @property
    def message(self) -> str:
        return str(self._message)

    @message.setter
    def message(self, value: str | LazyString) -> None:
        self._message = value

    @property
    def fields(self) -> dict[str, Any] | None:
        return None if self._fields is None else _as_text(self._fields)

    @fields.setter
    def fields(self, value: Mapping[str, Any] | None) -> None:
        self._fields = value

    def __str__(self) -> str:
        return self.message


def _as_text(messages: Any) -> Any:
    """Field messages (nested by marshmallow for lists and nested schemas) with every lazy
    string translated now."""
    if isinstance(messages, Mapping):
        return {key: _as_text(value) for key, value in messages.items()}
    if isinstance(messages, list | tuple):
        return [_as_text(value) for value in messages]
    return str(messages) if isinstance(messages, LazyString) else messages


class BadRequest(DomainError):
    status, code = 400, ErrorCode.BAD_REQUEST


class Unauthenticated(DomainError):
    status, code = 401, ErrorCode.UNAUTHENTICATED


class Forbidden(DomainError):
    status, code = 403, ErrorCode.FORBIDDEN


class NotFound(DomainError):
    status, code = 404, ErrorCode.NOT_FOUND


class Conflict(DomainError):
    status, code = 409, ErrorCode.CONFLICT


class InvalidInput(DomainError):
    status, code = 422, ErrorCode.INVALID


class TooLarge(DomainError):
    status, code = 413, ErrorCode.TOO_LARGE


def upload_too_large() -> TooLarge:
    """The answer to a request body over UPLOAD_LIMIT_MIB, with or without Content-Length."""
    limit = current_app.config["UPLOAD_LIMIT_MIB"]
    return TooLarge(_l("The upload is larger than the limit of %(limit)s MiB "
                       "(UPLOAD_LIMIT_MIB). STDF files may be uploaded gzip-compressed, "
                       "which keeps most of them well under it.", limit=limit))


class RateLimited(DomainError):
    status, code = 429, ErrorCode.RATE_LIMITED


class Unavailable(DomainError):
    status, code = 503, ErrorCode.UNAVAILABLE


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.path == "/healthz"


def error_body(code: ErrorCode, message: str, fields: dict[str, Any] | None = None,
               extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message}
    if fields:
        err["fields"] = fields
    err.update({k: v for k, v in (extra or {}).items() if k not in err})
    return {"error": err}


def error_response(exc: DomainError) -> Any:
    if wants_json():
        resp = jsonify(error_body(exc.code, exc.message, exc.fields, exc.extra))
        resp.status_code = exc.status
        return resp
    if isinstance(exc, Unauthenticated):
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    return error_page(exc.status, exc.message)


def error_page(status: int, message: str) -> tuple[str, int]:
    """The friendly error page; a bare one when even the layout cannot render (the layout
    asks the database who is logged in, and the database may be the thing that failed)."""
    try:
        return render_template("errors/error.html", status=status, message=message), status
    except Exception:
        log.exception("error page could not render")
        return (f"<!doctype html><title>{status}</title><h1>{status}</h1>"
                f"<p>{escape(message)}</p>", status)


_HTTP_CODES = {400: ErrorCode.BAD_REQUEST, 401: ErrorCode.UNAUTHENTICATED,
               403: ErrorCode.FORBIDDEN, 404: ErrorCode.NOT_FOUND,
               405: ErrorCode.METHOD_NOT_ALLOWED, 409: ErrorCode.CONFLICT,
               413: ErrorCode.TOO_LARGE, 415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
               422: ErrorCode.INVALID, 429: ErrorCode.RATE_LIMITED}


# What an HTML error page says when Werkzeug raised the error with its default text.
_HTTP_PAGE_MESSAGES = {
    400: _l("The browser sent a request this page cannot use."),
    404: _l("There is no page at this address; check the link or go back."),
    405: _l("This page does not accept this kind of request."),
}


def translate_db_error(exc: Exception) -> DomainError | None:
    """Database errors that mean 'someone else got there first' or 'database away'."""
    if isinstance(exc, StaleDataError):
        return Conflict(_("Someone else changed this record at the same time; reload and "
                          "try again."), code=ErrorCode.STALE)
    if isinstance(exc, IntegrityError) and "audit_event" in str(exc.orig):
        # Two writers appended to one subject's audit chain: the same subject changed twice.
        return Conflict(_("Someone else changed this record at the same time; reload and "
                          "try again."), code=ErrorCode.STALE)
    if isinstance(exc, IntegrityError):
        return Conflict(_("This conflicts with a record saved at the same time; reload and "
                          "try again."), code=ErrorCode.CONFLICT)
    if isinstance(exc, DataError) and any(word in str(exc.orig) for word in (
            "NUL", "out of range", "overflow")):
        # Input PostgreSQL cannot store (a NUL character in text, a number too large): the
        # caller's mistake, not the server's.
        return InvalidInput(_("Some fields are missing or not valid."))
    if isinstance(exc, PoolTimeout):
        return Unavailable(_("The database is not reachable right now; try again shortly."))
    if isinstance(exc, OperationalError):
        text = str(exc.orig).lower()
        if any(word in text for word in ("locked", "busy", "deadlock", "could not serialize")):
            return Conflict(_("The database was busy with a simultaneous change; try again."),
                            code=ErrorCode.STALE)
        if exc.connection_invalidated or any(word in text for word in (
                "connection", "connect", "server closed", "terminating", "shutting down",
                "unable to open", "starting up")):
            return Unavailable(_("The database is not reachable right now; try again "
                                 "shortly."))
    return None


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def _domain(exc: DomainError) -> ResponseReturnValue:
        if exc.commit:
            g.commit_on_error = True
        return error_response(exc)

    @app.errorhandler(CSRFError)
    def _csrf(exc: CSRFError) -> ResponseReturnValue:
        return error_response(BadRequest(
            _("The form expired or did not come from this site; reload the page and try "
              "again."), code=ErrorCode.CSRF_FAILED))

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> ResponseReturnValue:
        status = exc.code or 500
        if status == 413:
            # The request body passed MAX_CONTENT_LENGTH: say the limit and what helps.
            return error_response(upload_too_large())
        if wants_json():
            resp = jsonify(error_body(_HTTP_CODES.get(status, ErrorCode.ERROR),
                                      exc.description or exc.name))
            resp.status_code = status
            if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
                resp.headers["Allow"] = ", ".join(exc.valid_methods)
            return resp
        if exc.description == type(exc).description and status in _HTTP_PAGE_MESSAGES:
            # Werkzeug's own English description: say it in the user's language.
            return error_page(status, str(_HTTP_PAGE_MESSAGES[status]))
        return error_page(status, exc.description or exc.name)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> ResponseReturnValue:
        if isinstance(exc, SQLAlchemyError) and g.get("db_session") is not None:
            # End the failed transaction first: the answer reads the database again (the
            # message's language is the user's setting, and a failed flush expired the user).
            g.db_session.rollback()
        mapped = translate_db_error(exc)
        if mapped is not None:
            return error_response(mapped)
        log.exception("unhandled error on %s %s", request.method, request.path)
        if wants_json():
            resp = jsonify(error_body(ErrorCode.INTERNAL_ERROR, _(
                "Something went wrong on the server; it has been logged.")))
            resp.status_code = 500
            return resp
        return error_page(500, _("Something went wrong on the server; it has been logged."))
