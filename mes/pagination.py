"""Lists: `limit` and an opaque `cursor` in, `{items, next}` out."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from flask_babel import lazy_gettext as _l
from marshmallow import Schema, fields, validate
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from mes.errors import InvalidInput

MAX_OFFSET = 2**62


class ListArgs(Schema):
    """Query arguments every list accepts."""

    limit = fields.Integer(load_default=50, validate=validate.Range(1, 500))
    cursor = fields.String(load_default=None)


@dataclass
class Page:
    items: list[Any]
    next: str | None
    # Where the page starts in the whole list; pages link back from it.
    offset: int = 0


def cursor(offset: int) -> str:
    """The cursor of the page that starts at `offset`."""
    return base64.urlsafe_b64encode(str(offset).encode()).decode()


def _offset(args: dict[str, Any]) -> int:
    if not args.get("cursor"):
        return 0
    try:
        offset = int(base64.urlsafe_b64decode(args["cursor"].encode()).decode())
    except (ValueError, binascii.Error, UnicodeDecodeError):
        offset = -1
    # A cursor this API made holds a row count; one beyond a 63-bit integer is forged and
    # would overflow the database's OFFSET.
    if not 0 <= offset <= MAX_OFFSET:
        raise InvalidInput(_l("The cursor is not valid."),
                           fields={"cursor": [_l("Not a cursor from this API.")]})
    return offset


def _page(rows: list[Any], offset: int, limit: int) -> Page:
    if len(rows) > limit:
        return Page(rows[:limit], cursor(offset + limit), offset)
    return Page(rows, None, offset)


def paginate(session: Session, stmt: Select[Any], args: dict[str, Any]) -> Page:
    """One page of `stmt` (already ordered). The cursor is opaque to clients."""
    offset, limit = _offset(args), args["limit"]
    return _page(list(session.scalars(stmt.offset(offset).limit(limit + 1))), offset, limit)


def paginate_list(items: list[Any], args: dict[str, Any]) -> Page:
    """One page of an already loaded list."""
    offset, limit = _offset(args), args["limit"]
    return _page(items[offset:offset + limit + 1], offset, limit)


def count(session: Session, stmt: Select[Any]) -> int:
    return session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
