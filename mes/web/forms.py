"""Forms of the pages: converted to the API's shape, loaded by the API's input schemas and
handed to the same services, so a page accepts and refuses exactly what the API does.

A view runs its load-and-act through `attempt`; a refusal comes back as a `Refused` (the
message, the messages per field, the API's status and error code) to show the form again
with, and the request then rolls back. A success ends in `done`, which flushes before it
stores the success message: a lost race fails there and never shows as a success.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import flash, g, redirect, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from marshmallow import Schema, ValidationError
from werkzeug.datastructures import MultiDict

from mes import db
from mes.errors import DomainError, ErrorCode, NotFound
from mes.schemas import schema_instance
from mes.texts import field_label

T = TypeVar("T")

INVALID = _l("Some fields are missing or not valid.")


@dataclass
class Refused:
    """Why a form was refused: the message, the messages per field, the HTTP status and the
    API's error code."""

    message: str
    fields: dict[str, list[str]]
    status: int
    code: ErrorCode = ErrorCode.INVALID


def flatten(messages: Any) -> list[str]:
    """Schema messages as plain sentences; a nested field is named before its message by
    its word in the reader's language (mes.texts.FIELD_LABELS), a list item by its
    position."""
    if isinstance(messages, dict):
        out = []
        for key, value in messages.items():
            inner = flatten(value)
            if key == "_schema":
                out += inner
                continue
            label = _("item %(n)d", n=key + 1) if isinstance(key, int) else field_label(key)
            out += [_("%(field)s: %(message)s", field=label, message=msg) for msg in inner]
        return out
    if isinstance(messages, list | tuple):
        return [msg for item in messages for msg in flatten(item)]
    return [str(messages)]


def field_errors(messages: Any) -> dict[str, list[str]]:
    """Schema or service messages as sentences per form field. A nested object's fields are
    fields of the form itself (a match's `since` is the form's `since`), so their messages
    go beside them; messages about the object as a whole go to its own name."""
    if not isinstance(messages, dict):
        return {"_schema": flatten(messages)}
    out: dict[str, list[str]] = {}
    for key, value in messages.items():
        if isinstance(value, dict) and all(isinstance(inner, str) for inner in value):
            for inner, texts in field_errors(value).items():
                out.setdefault(key if inner == "_schema" else inner, []).extend(texts)
        else:
            out.setdefault(key, []).extend(flatten(value))
    return out


def attempt(action: Callable[[], T]) -> tuple[T | None, Refused | None]:
    """Run a form's load-and-act: its result, or why it was refused. NotFound propagates
    (the page itself does not exist)."""
    try:
        return action(), None
    except ValidationError as err:
        return None, Refused(str(INVALID), field_errors(err.normalized_messages()), 422)
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        if exc.commit:
            # What the service recorded of the refusal (a hold) is kept.
            g.commit_on_error = True
        return None, Refused(exc.message, field_errors(exc.fields or {}), exc.status,
                             exc.code)


def load(schema: type[Schema], data: dict[str, Any]) -> dict[str, Any]:
    """`data` loaded by the API's input schema; raises ValidationError."""
    return schema_instance(schema).load(data)


def text(form: MultiDict[str, str], name: str) -> str:
    """A form field's value, stripped; an absent field is empty."""
    return (form.get(name) or "").strip()


def done(message: str, endpoint: str, *, category: str = "success", **values: Any) -> Any:
    """The answer to a form that succeeded: the message (a success unless `category` says
    otherwise), then a redirect (303) to `endpoint`."""
    # Flushed so that a lost race (a version counter, a unique key) fails here, before the
    # message is stored in the session cookie.
    db.session().flush()
    flash(message, category)
    return redirect(url_for(endpoint, **values), code=303)
