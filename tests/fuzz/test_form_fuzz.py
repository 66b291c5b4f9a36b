"""Garbage posted to every web form: each POST page of app.url_map (the API has its own
fuzz run), as an admin on the demo plant, gets an empty form and FORM_CASES forms whose
fields (read from the page's own form) hold random picks of hostile and plausible values.
No answer may be a server error, and the database still passes `mes check` afterwards.
Repeatable: the picks come from a seeded generator."""

from __future__ import annotations

import os
import random
import re
from typing import Any

import pytest
from sqlalchemy import text

if not os.environ.get("RUN_FUZZ"):
    pytest.skip("the bounded fuzz run is its own CI step: make fuzz (RUN_FUZZ=1)",
                allow_module_level=True)

from mes.db import get_db  # noqa: E402

FORM_CASES = int(os.environ.get("FUZZ_FORM_CASES", "20"))
HOSTILE = ["", " ", "x" * 3000, "-1", "0", "NaN", "1e309", "1.5", "\x00", "é中",
           "99999999999999999999999", "2026-13-45", "<script>", "%", "[]", "{}", "true"]
_ARG = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")
SKIPPED = {"auth.login", "auth.logout"}


def _first(app: Any, sql: str) -> Any:
    with get_db(app).engine.connect() as conn:
        return conn.execute(text(sql)).scalar()


def _login(client: Any) -> None:
    resp = client.post("/login", data={"username": "admin", "password": "demo-admin-2026"})
    assert resp.status_code == 302, resp.status_code


def test_no_form_answers_a_server_error(fuzz_app):
    app = fuzz_app
    objects = {
        "lot_no": _first(app, "SELECT lot_no FROM lot WHERE state = 'queued' ORDER BY id"),
        "hold_id": _first(app, "SELECT id FROM hold ORDER BY id"),
        "shipment_id": _first(app, "SELECT id FROM shipment ORDER BY id"),
        "run_id": _first(app, "SELECT id FROM test_run ORDER BY id"),
        "rule_id": _first(app, "SELECT id FROM future_hold ORDER BY id") or 1,
        "code": _first(app, "SELECT code FROM equipment ORDER BY id"),
        "username": "op1",
    }
    plausible = [objects["lot_no"], objects["code"], "1", "100", "5000", "2026-12-01",
                 "2026-12-01T10:00", "H-ENG", "SAW", "FT-R", "release", "rework", "scrap",
                 "use_as_is", "zh_CN", "customer", "op1"]
    rng = random.Random(20261205)
    client = app.test_client()
    _login(client)
    posted, forms, errors = 0, 0, []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if (rule.rule.startswith("/api/") or "POST" not in rule.methods
                or rule.endpoint in SKIPPED):
            continue
        path = rule.rule
        for match in _ARG.finditer(rule.rule):
            path = path.replace(match.group(0), str(objects.get(match.group(2),
                                                                objects["lot_no"])), 1)
        page = client.get(path).get_data(as_text=True) if "GET" in rule.methods else ""
        fields = sorted(set(re.findall(r'name="([^"]+)"', page)) - {"csrf_token"})
        actions = sorted(set(re.findall(r'name="action" value="([^"]+)"', page)))
        forms += 1
        for case in range(FORM_CASES + 1):
            data = {} if case == 0 else {
                field: rng.choice(HOSTILE if rng.random() < 0.6 else plausible)
                for field in fields}
            if actions and case:
                data["action"] = rng.choice(actions)
            resp = client.post(path, data=data)
            posted += 1
            if resp.status_code >= 500:
                errors.append(f"POST {path} {sorted(data)} -> {resp.status_code}")
                break
            if resp.status_code == 302 and "/login" in resp.headers.get("Location", ""):
                _login(client)  # a garbage action may have ended the session
    print(f"\nform fuzz: {forms} forms, {posted} posts, server errors: {len(errors)}")
    assert forms > 25 and posted > forms * FORM_CASES
    assert errors == []
    result = app.test_cli_runner().invoke(args=["check"])
    assert result.exit_code == 0, result.output
