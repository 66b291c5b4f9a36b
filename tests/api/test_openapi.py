"""The OpenAPI document describes every /api/v1 endpoint the application serves."""

from __future__ import annotations

import re
from typing import Any

import pytest

from mes.api.registry import OPERATIONS

_ARG = re.compile(r"<(?:\w+(?:\([^)]*\))?:)?(\w+)>")
IGNORED_METHODS = {"HEAD", "OPTIONS"}


@pytest.fixture
def document(client) -> dict[str, Any]:
    resp = client.get("/api/v1/openapi.json")
    assert resp.status_code == 200
    return resp.get_json()


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    assert ref.startswith("#/components/schemas/"), ref
    name = ref.rsplit("/", 1)[1]
    assert name in document["components"]["schemas"], ref
    return document["components"]["schemas"][name]


def test_document_is_served_without_login(client):
    resp = client.get("/api/v1/openapi.json")
    assert resp.status_code == 200
    assert resp.get_json()["openapi"].startswith("3.")


def test_every_api_rule_is_described_with_its_methods(app, document):
    missing = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or rule.endpoint == "api.openapi_document":
            continue
        path = _ARG.sub(r"{\1}", rule.rule)
        for method in rule.methods - IGNORED_METHODS:
            if method.lower() not in document["paths"].get(path, {}):
                missing.append(f"{method} {path}")
    assert missing == []


def test_document_describes_no_path_the_app_does_not_serve(app, document):
    served = {_ARG.sub(r"{\1}", rule.rule) for rule in app.url_map.iter_rules()}
    assert set(document["paths"]) - served == set()


def test_path_parameters_are_declared(document):
    for path, operations in document["paths"].items():
        names = set(re.findall(r"{(\w+)}", path))
        for method, op in operations.items():
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == names, f"{method} {path}"


def _operation(document: dict[str, Any], op: Any) -> dict[str, Any]:
    return document["paths"][_ARG.sub(r"{\1}", op.rule)][op.method]


def test_operations_with_a_body_describe_it(document):
    for op in OPERATIONS:
        operation = _operation(document, op)
        if op.body is not None:
            schema = operation["requestBody"]["content"]["application/json"]["schema"]
            assert _resolve(document, schema).get("properties"), op.endpoint
        elif op.raw_body is not None:
            assert operation["requestBody"]["content"], op.endpoint
        else:
            assert "requestBody" not in operation, op.endpoint


def test_protected_operations_list_security_and_public_ones_do_not(document):
    for op in OPERATIONS:
        operation = _operation(document, op)
        if op.permissions == "public":
            assert not operation.get("security"), op.endpoint
        else:
            assert operation["security"], op.endpoint
            assert {"401", "403"} <= set(operation["responses"]), op.endpoint


def test_output_schemas_are_components(document):
    for op in OPERATIONS:
        if op.response is None:
            continue
        response = _operation(document, op)["responses"][str(op.status)]
        schema = response["content"]["application/json"]["schema"]
        if op.many:
            assert schema["required"] == ["items", "next"], op.endpoint
            schema = schema["properties"]["items"]["items"]
        assert "$ref" in schema, op.endpoint
        assert _resolve(document, schema).get("properties"), op.endpoint


def test_customer_schemas_match_the_contract(document):
    schemas = document["components"]["schemas"]
    assert {"code", "name", "automotive"} <= set(schemas["CustomerOut"]["properties"])
    assert set(schemas["CustomerIn"]["required"]) == {"code", "name"}


def test_error_schema_is_described(document):
    error = _resolve(document, {"$ref": "#/components/schemas/ErrorSchema"})
    assert "error" in error["properties"]
    assert {"bearerAuth", "cookieAuth"} <= set(document["components"]["securitySchemes"])


def test_operation_ids_are_unique(document):
    ids = [op["operationId"] for ops in document["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))
