"""The OpenAPI 3 document, generated from the registered operations and their schemas."""

from __future__ import annotations

import re
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema, fields

from mes.api.registry import OPERATIONS, Operation

_PARAM = re.compile(r"<(?:(\w+):)?(\w+)>")


class ErrorDetail(Schema):
    code = fields.String(required=True)
    message = fields.String(required=True)
    # Not named `fields` here: that would shadow Schema.fields.
    fields_ = fields.Dict(keys=fields.String(), values=fields.Raw(), data_key="fields")
    # Given by some refusals beside the message (mes.errors' `extra`): the units a complaint
    # names that resolve to no lot of the customer (422 unresolved_units), what closing an
    # 8D still needs (409), the bake the J-STD-033 table requires (422 insufficient_bake).
    unresolved = fields.List(fields.String())
    missing = fields.List(fields.String())
    required_hours = fields.Float()
    table_temperature_c = fields.Float()


class ErrorSchema(Schema):
    error = fields.Nested(ErrorDetail, required=True)


def _path(rule: str) -> tuple[str, list[dict[str, Any]]]:
    params = []
    for converter, name in _PARAM.findall(rule):
        kind = {"type": "integer"} if converter == "int" else {"type": "string"}
        params.append({"in": "path", "name": name, "required": True, "schema": kind})
    return _PARAM.sub(r"{\2}", rule), params


def _error(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": "ErrorSchema"}}}


def _operation(op: Operation, path_params: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"operationId": op.endpoint.split(".", 1)[1], "tags": [op.tag],
                           "summary": op.summary or op.endpoint}
    if op.description:
        out["description"] = op.description
    params = list(path_params)
    if op.query is not None:
        params.append({"in": "query", "schema": op.query})
    if params:
        out["parameters"] = params
    if op.body is not None:
        out["requestBody"] = {"required": True,
                              "content": {"application/json": {"schema": op.body}}}
    elif op.raw_body is not None:
        out["requestBody"] = op.raw_body
    responses: dict[str, Any] = {}
    if op.response is None and tuple(op.produces) == ("application/json",):
        responses[str(op.status)] = {"description": "Done."}
    elif op.response is None:
        # A document (HTML, CSV, ZPL) rather than JSON.
        responses[str(op.status)] = {"description": "Success.", "content": {
            ct: {"schema": {"type": "string"}} for ct in op.produces}}
    else:
        schema: Any = op.response
        if op.many:
            schema = {"type": "object", "required": ["items", "next"], "properties": {
                "items": {"type": "array", "items": op.response},
                "next": {"type": "string", "nullable": True}}}
        content = {ct: {"schema": schema if ct == "application/json" else
                        {"type": "string", "format": "binary"}} for ct in op.produces}
        responses[str(op.status)] = {"description": "Success.", "content": content}
    if op.permissions != "public":
        out["security"] = [{"bearerAuth": []}, {"cookieAuth": []}]
        responses["401"] = _error("No or bad credentials.")
        responses["403"] = _error("The role lacks the permission.")
    if op.body is not None or op.raw_body is not None:
        responses["400"] = _error("The body is not a JSON object.")
    if op.body is not None or op.query is not None or op.raw_body is not None:
        responses["422"] = _error("A field is missing or not valid.")
    if op.raw_body is not None:
        responses["413"] = _error("The upload is larger than the limit (UPLOAD_LIMIT_MIB; "
                                  "gzip is accepted), or a gzip upload inflates to more "
                                  "than GZIP_INFLATE_LIMIT_MIB.")
    if path_params:
        responses["404"] = _error("No such object (or another customer's).")
    if op.conflicts:
        responses["409"] = _error("The state forbids it: " + ", ".join(op.conflicts) + ".")
    out["responses"] = responses
    return out


def build_spec(title: str) -> dict[str, Any]:
    spec = APISpec(title=title, version="1.0.0", openapi_version="3.0.3",
                   plugins=[MarshmallowPlugin()],
                   info={"description": "MES-lite JSON API. Errors are "
                                        "{error: {code, message, fields?}}."})
    spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    spec.components.security_scheme("cookieAuth", {"type": "apiKey", "in": "cookie",
                                                   "name": "session"})
    spec.components.schema("ErrorSchema", schema=ErrorSchema)
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        path, params = _path(op.rule)
        paths.setdefault(path, {})[op.method] = _operation(op, params)
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()
