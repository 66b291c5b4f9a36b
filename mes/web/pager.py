"""Paging of the pages' lists: the API's paging (mes.pagination), with links.

A page's address carries the API's opaque `cursor`; the links to the next, the previous
and the first page keep the address's other arguments (its filters).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import request, url_for
from sqlalchemy import Select

from mes import db
from mes.pagination import ListArgs, cursor, paginate, paginate_list
from mes.schemas import schema_instance

PER_PAGE = 50


@dataclass
class Pager:
    items: list[Any]
    next_url: str | None
    prev_url: str | None
    # Back to the start, from any page but the first.
    first_url: str | None


def pager(source: Select[Any] | list[Any], args: dict[str, Any] | None = None, *,
          keep: dict[str, str] | None = None, endpoint: str | None = None) -> Pager:
    """One page of `source` (a query already ordered, or a loaded list). `args` is the
    page's loaded query with `limit` and `cursor` (default: PER_PAGE rows at the
    cursor of the address or of a posted form); the links keep `keep` (default: the
    address's non-empty arguments) and lead to `endpoint` (default: this request's; a
    form's POST that shows its page again names the page's)."""
    if args is None:
        given = request.values.get("cursor")
        args = schema_instance(ListArgs).load(
            {"limit": str(PER_PAGE), **({"cursor": given} if given else {})})
    if isinstance(source, Select):
        page = paginate(db.session(), source, args)
    else:
        page = paginate_list(source, args)
    if keep is None:
        keep = {key: value for key, value in request.args.items() if value.strip()}
    values: dict[str, Any] = {**(request.view_args or {}),
              **{key: value for key, value in keep.items() if key != "cursor"}}

    def url(at: str | None) -> str:
        return url_for(endpoint or request.endpoint or "",
                       **({**values, "cursor": at} if at else values))

    before = page.offset - args["limit"]
    return Pager(
        items=page.items,
        next_url=url(page.next) if page.next else None,
        prev_url=(url(cursor(before) if before > 0 else None) if page.offset > 0 else None),
        first_url=url(None) if args.get("cursor") else None)
