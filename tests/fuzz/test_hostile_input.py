"""Hostile values swept over every parameter, beside the schema-driven fuzz run (which stays
inside the documented types and bounds, so it never sends these): as an admin and as a
customer, on the demo plant,

- every query parameter of every API operation and of every page gets, one at a time, a
  number beyond 64 bits (and its negative), 1e309, the calendar's first and last days, a
  cursor holding a number beyond 64 bits, and an invalid UTF-8 sequence;
- every API operation taking a body gets a body nested 100,000 deep, bodies with a lone
  surrogate in each documented field, and bodies with a number beyond 64 bits in each.

No answer may be a server error; a refusal is the JSON error body (API) or a page; the
database still passes `mes check` afterwards. Runs on SQLite, or PostgreSQL with
MES_TEST_DATABASE_URL."""

from __future__ import annotations

import base64
import json
import os
import re
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import text

if not os.environ.get("RUN_FUZZ"):
    pytest.skip("the bounded fuzz run is its own CI step: make fuzz (RUN_FUZZ=1)",
                allow_module_level=True)

from mes.api.registry import OPERATIONS  # noqa: E402
from mes.db import get_db  # noqa: E402
from mes.schemas import schema_instance  # noqa: E402

BIG = "99999999999999999999"
QUERY_VALUES = [BIG, "-" + BIG, "1e309", "9999-12-31", "0001-01-01",
                base64.urlsafe_b64encode(BIG.encode()).decode()]
# Sent raw in the query string: bytes that are no UTF-8 (a surrogate's encoding).
RAW_VALUES = ["%ED%A0%80", "%FF"]
# Arguments pages commonly read, besides those their own filter forms and links name.
PAGE_PARAMS = {"cursor", "page", "limit", "version", "since", "until", "from", "to"}
DEEP = "[" * 100_000 + "]" * 100_000
_ARG = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")
# Which table a <code> in a rule names, by the path segment before it.
CODE_TABLES = {"customers": "customer", "equipment": "equipment", "material-lots":
               "material_lot", "products": "product", "reason-codes": "reason_code",
               "routes": "route"}


def _first(app: Any, sql: str) -> Any:
    with get_db(app).engine.connect() as conn:
        return conn.execute(text(sql)).scalar()


def _objects(app: Any) -> dict[str, Any]:
    found = {
        "lot_no": _first(app, "SELECT lot_no FROM lot ORDER BY id"),
        "hold_id": _first(app, "SELECT id FROM hold ORDER BY id"),
        "shipment_id": _first(app, "SELECT id FROM shipment ORDER BY id"),
        "run_id": _first(app, "SELECT id FROM test_run ORDER BY id"),
        "rule_id": _first(app, "SELECT id FROM future_hold ORDER BY id") or 1,
        "containment_id": _first(app, "SELECT subject_key FROM audit_event WHERE "
                                      "subject_type = 'containment' ORDER BY seq") or "C1",
        "username": "op1", "step": "FT", "test_num": 1000, "filename": "css/mes.css",
    }
    for segment, table in CODE_TABLES.items():
        found[f"code:{segment}"] = _first(app, f"SELECT code FROM {table} ORDER BY id")
    return found


def _path(rule: str, objects: dict[str, Any]) -> str:
    path = rule
    for match in _ARG.finditer(rule):
        name = match.group(2)
        if name == "code":
            segment = rule[:match.start()].rstrip("/").rsplit("/", 1)[-1]
            value = objects.get(f"code:{segment}", "X")
        else:
            value = objects.get(name, "X")
        path = path.replace(match.group(0), str(value), 1)
    return path


def _fields(schema: Any) -> list[str]:
    if schema is None:
        return []
    return [field.data_key or name
            for name, field in schema_instance(schema).fields.items() if not field.dump_only]


class Sweep:
    """Requests made and server errors seen, by kind."""

    def __init__(self) -> None:
        self.sent: Counter[str] = Counter()
        self.errors: list[str] = []

    def check(self, kind: str, label: str, resp: Any, *, json_body: bool) -> None:
        self.sent[kind] += 1
        status = resp.status_code
        if status >= 500:
            self.errors.append(f"{label} -> {status}")
        elif status >= 400 and json_body:
            body = resp.get_json(silent=True)
            if not (isinstance(body, dict) and body.get("error", {}).get("code")):
                self.errors.append(f"{label} -> {status} without the JSON error body")
        resp.close()


@pytest.mark.parametrize("role", ["admin", "customer"])
def test_hostile_query_values_and_bodies_on_every_api_operation(fuzz_app, role):
    app, sweep = fuzz_app, Sweep()
    objects = _objects(app)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {app.config['FUZZ_TOKENS'][role]}"}
    operations = 0
    for op in OPERATIONS:
        operations += 1
        path = _path(op.rule, objects)
        method = op.method.upper()
        for name in _fields(op.query):
            for value in QUERY_VALUES:
                resp = client.open(path, method=method, query_string={name: value},
                                   headers=headers)
                sweep.check("api query", f"{method} {path}?{name}={value}", resp,
                            json_body=True)
            for raw in RAW_VALUES:
                resp = client.open(path, method=method,
                                   query_string=f"{name}={raw}", headers=headers)
                sweep.check("api query", f"{method} {path}?{name}={raw}", resp,
                            json_body=True)
        if op.body is None:
            continue
        bodies = [("deep", DEEP)]
        for name in _fields(op.body):
            key = json.dumps(name)
            bodies.append((f"{name}=\\ud800", f'{{{key}: "a\\ud800b"}}'))
            bodies.append((f"{name}=[\\udfff]", f'{{{key}: ["\\udfff"]}}'))
            bodies.append((f"{name}={BIG}", f"{{{key}: {BIG}}}"))
            bodies.append((f"{name}=-{BIG}", f"{{{key}: -{BIG}}}"))
        for label, body in bodies:
            resp = client.open(path, method=method, data=body, headers=headers,
                               content_type="application/json")
            sweep.check("api body", f"{method} {path} {label}", resp, json_body=True)
    print(f"\n{role}: {operations} API operations, requests {dict(sweep.sent)}, "
          f"server errors: {len(sweep.errors)}")
    assert operations > 50
    assert sweep.errors == []
    result = app.test_cli_runner().invoke(args=["check"])
    assert result.exit_code == 0, result.output


def _page_params(page: str) -> set[str]:
    """The arguments a page's GET forms and its own links name."""
    names: set[str] = set()
    for form in re.findall(r"<form(?![^>]*method=\"post\")[^>]*>(.*?)</form>", page,
                           flags=re.S | re.I):
        names |= set(re.findall(r'name="([^"]+)"', form))
    for query in re.findall(r'href="[^"?]*\?([^"#]*)"', page):
        names |= {part.split("=", 1)[0] for part in query.replace("&amp;", "&").split("&")}
    return {name for name in names if name and name != "csrf_token"}


@pytest.mark.parametrize("role, username, password", [
    ("admin", "admin", "demo-admin-2026"), ("customer", "cyanlake", "demo-cyanlake-2026")])
def test_hostile_query_values_on_every_page(fuzz_app, role, username, password):
    app, sweep = fuzz_app, Sweep()
    objects = _objects(app)
    client = app.test_client()
    resp = client.post("/login", data={"username": username, "password": password})
    assert resp.status_code == 302, resp.status_code
    pages = 0
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if (rule.rule.startswith("/api/") or "GET" not in rule.methods
                or rule.endpoint in ("auth.logout", "static")):
            continue
        pages += 1
        path = _path(rule.rule, objects)
        first = client.get(path)
        sweep.check("page", f"GET {path}", first, json_body=False)
        own = _page_params(first.get_data(as_text=True)) if first.status_code == 200 else set()
        for name in sorted(PAGE_PARAMS | own):
            for value in QUERY_VALUES:
                sweep.check("page query", f"GET {path}?{name}={value}",
                            client.get(path, query_string={name: value}), json_body=False)
            for raw in RAW_VALUES:
                sweep.check("page query", f"GET {path}?{name}={raw}",
                            client.get(path, query_string=f"{name}={raw}"),
                            json_body=False)
    print(f"\n{role}: {pages} pages, requests {dict(sweep.sent)}, "
          f"server errors: {len(sweep.errors)}")
    assert pages > 40
    assert sweep.errors == []
