"""Declaring API endpoints: one decorator parses input, checks the permission, dumps output
and records the operation for the OpenAPI document."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any

from flask import Blueprint, Response, jsonify, request
from flask_babel import lazy_gettext as _l
from marshmallow import Schema, ValidationError

from mes import db
from mes.api.conflicts import endpoint_conflicts
from mes.auth.permissions import Permission, public, require
from mes.errors import BadRequest, ErrorCode, InvalidInput
from mes.pagination import ListArgs, Page, count, paginate, paginate_list
from mes.schemas import schema_instance


@dataclass
class Operation:
    rule: str
    method: str
    endpoint: str
    handler: Callable[..., Any]
    summary: str
    description: str
    tag: str
    permissions: tuple[Permission, ...] | str
    body: type[Schema] | None = None
    query: type[Schema] | None = None
    response: type[Schema] | None = None
    status: int = 200
    many: bool = False
    raw_body: dict[str, Any] | None = None
    produces: tuple[str, ...] = ("application/json",)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def conflicts(self) -> tuple[ErrorCode, ...]:
        """The 409 codes the endpoint can answer, read from the code its handler runs."""
        writes = self.method.upper() not in db.SAFE_METHODS
        return endpoint_conflicts(self.handler, writes=writes)


OPERATIONS: list[Operation] = []

__all__ = ["ListArgs", "OPERATIONS", "Operation", "Page", "api_route", "count", "load_json",
           "load_query", "paginate", "paginate_list", "schema_instance"]


def load_json(schema: type[Schema]) -> dict[str, Any]:
    """Parse and validate the JSON body; 400 when it is not a JSON object, 422 when invalid."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise BadRequest(_l("The request body must be a JSON object."))
    try:
        return schema_instance(schema).load(data)
    except ValidationError as err:
        raise InvalidInput(_l("Some fields are missing or not valid."),
                           fields=err.normalized_messages()) from None


def load_query(schema: type[Schema]) -> dict[str, Any]:
    try:
        return schema_instance(schema).load(request.args.to_dict())
    except ValidationError as err:
        raise InvalidInput(_l("Some query parameters are not valid."),
                           fields=err.normalized_messages()) from None


def api_route(bp: Blueprint, rule: str, *, method: str = "GET",
              permission: Permission | tuple[Permission, ...] | None,
              body: type[Schema] | None = None, query: type[Schema] | None = None,
              response: type[Schema] | None = None, status: int | None = None,
              many: bool = False, tag: str = "", raw_body: dict[str, Any] | None = None,
              produces: tuple[str, ...] = ("application/json",)) -> Callable[..., Any]:
    """Register `fn` at `rule`. The view gets the path arguments, `data` (the loaded body)
    and `args` (the loaded query) when declared, and returns an object, a Page (with
    many=True), None (204) or a ready Response. `permission=None` declares it public. The
    409 codes the OpenAPI document lists are derived from the handler (mes.api.conflicts)."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        code = status or (201 if method == "POST" else 204 if response is None else 200)

        @wraps(fn)
        def view(**path: Any) -> Any:
            kwargs = dict(path)
            if body is not None:
                kwargs["data"] = load_json(body)
            if query is not None:
                kwargs["args"] = load_query(query)
            result = fn(**kwargs)
            if request.method not in db.SAFE_METHODS:
                # Flushed so that what the database fills in (created_at, column defaults,
                # onupdate times) is in the answer instead of null or the old value.
                db.session().flush()
            if isinstance(result, Response):
                return result
            if response is None:
                return Response(status=code)
            if many:
                return jsonify({"items": schema_instance(response, True).dump(result.items),
                                "next": result.next}), code
            return jsonify(schema_instance(response).dump(result)), code

        if permission is None:
            guarded = public(view)
            perms: tuple[Permission, ...] | str = "public"
        else:
            perms = permission if isinstance(permission, tuple) else (permission,)
            guarded = require(*perms)(view)
        bp.add_url_rule(rule, endpoint=fn.__name__, view_func=guarded, methods=[method])
        doc = (fn.__doc__ or "").strip()
        summary, _, description = doc.partition("\n")
        OPERATIONS.append(Operation(
            rule=bp.url_prefix + rule if bp.url_prefix else rule, method=method.lower(),
            endpoint=f"{bp.name}.{fn.__name__}", handler=fn, summary=summary.strip(),
            description=description.strip(), tag=tag, permissions=perms, body=body,
            query=query, response=response, status=code, many=many, raw_body=raw_body,
            produces=produces))
        return fn

    return decorate
