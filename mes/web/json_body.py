"""The application's JSON reader: a request body the services could not use is refused when
it is read, as a 4xx, before any schema or the database sees it.

- Nesting deeper than MAX_DEPTH is 400 `bad_request`. No body the API takes nests deeper than
  a few levels; Python's parser itself gives up near a thousand (a RecursionError, which
  Flask does not treat as bad JSON, so it was a 500).
- Text holding a lone UTF-16 surrogate (JSON allows the escape `"\\ud800"` on its own) is 422
  `invalid` naming the field: it is no character, no database can store it and no page can
  show it.
"""

from __future__ import annotations

from typing import Any

from flask.json.provider import DefaultJSONProvider
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import BadRequest

from mes.errors import InvalidInput

MAX_DEPTH = 64


class TooDeep(BadRequest):
    description = f"The JSON body is nested more than {MAX_DEPTH} levels deep."


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check(value: Any) -> None:
    """Refuse a parsed body nested deeper than MAX_DEPTH or holding a lone surrogate in a key
    or a string (walked without recursion: the value may be as deep as the parser allows)."""
    stack: list[tuple[Any, int, str]] = [(value, 0, "_schema")]
    while stack:
        item, depth, field = stack.pop()
        if isinstance(item, str):
            if not _is_text(item):
                message = _l("Not text: holds a lone surrogate code point, which is no "
                             "character.")
                raise InvalidInput(_l("Some fields are missing or not valid."),
                                   fields={field: [message]})
            continue
        if isinstance(item, dict | list):
            if depth >= MAX_DEPTH:
                raise TooDeep()
            if isinstance(item, dict):
                for key, inner in item.items():
                    # A field is named by its top-level key, as a schema's messages are.
                    name = key if depth == 0 and _is_text(key) else field
                    stack.append((key, depth + 1, name))
                    stack.append((inner, depth + 1, name))
            else:
                stack.extend((inner, depth + 1, field) for inner in item)


class CheckedJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider, whose `loads` (what `request.get_json` uses) refuses what
    `check` refuses and a body too deep for the parser."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            value = super().loads(s, **kwargs)
        except RecursionError:
            raise TooDeep() from None
        check(value)
        return value
