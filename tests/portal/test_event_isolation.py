"""What a customer reads when holds cross customers: a mass hold and a containment that
took A's and B's lots together store their whole match (B's lot numbers) on every held
lot, with staff names and internal comments beside it. Customer A calls every page and
API endpoint it can reach (derived from app.url_map, with A's own objects in the URL and
every answer format: JSON, CSV, HTML, downloads) and no answer may name B's lots,
shipment, PO or customer, any member of staff, or an internal comment or override reason.
A lot's history answers a customer its own event schema."""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Flask

from tests.helpers import as_user
from tests.portal.helpers import Side
from tests.portal.test_isolation import IGNORED_METHODS, _is_static, _paths

# Every answer format a customer's GET can ask for.
QUERIES = ("", "format=csv", "download=1", "direction=forward", "direction=backward")
# What a customer must be able to read, so that the walk below cannot pass by reaching
# nothing: the history, the traces (API, page, CSV), the portal, the certificate.
MUST_ANSWER = {"api.lot_history", "api.lot_trace", "api.get_lot", "api.list_lots",
               "api.get_shipment", "api.get_coc", "api.lot_test_runs", "trace.lot",
               "trace.lot_csv", "trace.shipment", "portal.index", "portal.holds",
               "portal.shipment", "portal.coc", "reports.holds"}
CUSTOMER_EVENT_FIELDS = {"kind", "at", "step", "qty_in", "qty_out", "reason",
                         "reason_description", "disposition"}


def _word(text: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w-]){re.escape(text)}(?![\w-])")


def _shipment_mentions(shipment_id: int) -> list[re.Pattern[str]]:
    """Where a page, a CSV or a JSON answer would name a shipment by its id."""
    n = shipment_id
    return [re.compile(p) for p in (
        rf"/shipments/{n}\b", rf"shipment-{n}\b", rf"COC-0*{n}\b", rf'"shipment":\s*{n}\b',
        rf"[Ss]hipment #?{n}\b", rf'data-shipment="?{n}\b', rf"\bshipment {n};")]


def _json_shipments(value: Any, shipment_id: int, key: str = "") -> bool:
    """A JSON answer naming the shipment as a shipment's id at any depth."""
    if isinstance(value, dict):
        if key in ("shipments", "shipped", "shipment") and value.get("id") == shipment_id:
            return True
        return any(_json_shipments(v, shipment_id, k) for k, v in value.items()) or (
            value.get("shipment") == shipment_id)
    if isinstance(value, list):
        return any(_json_shipments(v, shipment_id, key) for v in value)
    return False


def _forbidden(b: Side, crossed: dict[str, Any]) -> dict[str, re.Pattern[str]]:
    found = {f"B's lot {lot_no}": _word(lot_no) for lot_no in b.lot_nos}
    found.update({f"B's {what}": _word(text) for what, text in (
        ("PO", b.shipment.po), ("vehicle program", b.shipment.vehicle_program or "VP-BBB"),
        ("customer", b.customer), ("customer name", "Industrial"),
        ("user", b.user.username))})
    found.update({f"staff name {name}": _word(name) for name in crossed["staff"]})
    found.update({f"internal {what}": re.compile(re.escape(text.split()[0]))
                  for what, text in crossed["texts"].items() if what != "concession"})
    found.update({f"hold comment {h.comment}": re.compile(re.escape(h.comment))
                  for h in (b.open_hold, b.released_hold)})
    found["containment id"] = re.compile(re.escape(crossed["containment"]))
    found["match criteria"] = re.compile(r'"match"')
    return found


def _leaks(resp: Any, endpoint: str, b: Side, crossed: dict[str, Any]) -> list[str]:
    text = resp.get_data(as_text=True) + " " + resp.headers.get("Content-Disposition", "")
    forbidden = _forbidden(b, crossed)
    if endpoint == "api.openapi_document":
        del forbidden["match criteria"]  # it describes the plant's endpoints, holds no data
    leaks = [what for what, pattern in forbidden.items() if pattern.search(text)]
    if any(p.search(text) for p in _shipment_mentions(b.shipment.id)):
        leaks.append(f"B's shipment {b.shipment.id}")
    if resp.is_json and _json_shipments(resp.get_json(), b.shipment.id):
        leaks.append(f"B's shipment {b.shipment.id} (JSON)")
    return leaks


def _walk(app: Flask, a, leaks) -> tuple[int, set[str], list[str]]:
    """Every GET customer A can make (url_map, A's own objects in the URL, every answer
    format): the number of calls, the endpoints that answered, and the failures (server
    errors, and what `leaks(resp, endpoint)` names)."""
    failures: list[str] = []
    answered: set[str] = set()
    calls = 0
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if _is_static(rule.endpoint) or "GET" not in rule.methods - IGNORED_METHODS:
            continue
        for path in _paths(rule.rule, a):
            for query in QUERIES:
                url = path + ("?" + query if query else "")
                resp = as_user(app, a.user).get(url)
                calls += 1
                seen = f"GET {url} ({rule.endpoint}): {resp.status_code}"
                if resp.status_code >= 500:
                    failures.append(f"{seen} server error")
                if resp.status_code < 300:
                    answered.add(rule.endpoint)
                leaked = leaks(resp, rule.endpoint)
                if leaked:
                    failures.append(f"{seen} shows {leaked}")
    return calls, answered, failures


def test_customer_reads_nothing_of_the_other_customer_nor_of_staff(app: Flask, world,
                                                                    crossed):
    a, b = world
    calls, answered, failures = _walk(
        app, a, lambda resp, endpoint: _leaks(resp, endpoint, b, crossed))
    assert calls > 300
    assert answered >= MUST_ANSWER, MUST_ANSWER - answered
    assert not failures, "\n".join(failures)


def test_customer_reads_rejects_and_scrap_by_category_never_by_reason_code(
        app: Flask, session, world, crossed, receive):
    """A's lots were rejected at track-out under internal reject codes and scrapped under
    a scrap code (the crossed holds' scrap): no page, CSV or API answer A can reach names
    a reject or scrap code or its text (the test plant's texts are the codes), nor the
    operators who tracked them; the rejects show under their customer category."""
    from mes.catalog.models import ReasonCode
    from tests.floor.helpers import track_in, track_out

    a, b = world
    session.query(ReasonCode).filter_by(code="R-BALL").update(
        {"customer_category": "assembly"})
    lot = receive(50, lot_no="AAA-REJ-1", product="P1", customer=a.customer)
    track_out(session, track_in(session, lot), good=45,
              rejects=[{"reason": "R-BALL", "qty": 3}, {"reason": "R-SCRATCH", "qty": 2}])
    a.shipped = lot  # walk this lot's own pages (history, trace, CSV) too
    codes = {code: _word(code) for code in ("R-BALL", "R-SCRATCH", "S-DMG")}
    staff = {name: _word(name) for name in crossed["staff"]}

    def leaks(resp: Any, endpoint: str) -> list[str]:
        text = resp.get_data(as_text=True)
        found = [f"reason code {c}" for c, p in codes.items() if p.search(text)]
        found += [f"staff name {n}" for n, p in staff.items() if p.search(text)]
        return found

    calls, answered, failures = _walk(app, a, leaks)
    assert calls > 300
    assert {"api.report_rejects", "reports.rejects", "portal.rejects", "api.lot_trace",
            "trace.lot_csv"} <= answered
    assert not failures, "\n".join(failures)
    customer = as_user(app, a.user)
    trace = customer.get(f"/api/v1/lots/{lot.lot_no}/trace").get_json()
    assert sorted((r["reason"], r["qty"]) for s in trace["steps"] for r in s["rejects"]) == [
        ("assembly", 3), ("other", 2)]
    portal = customer.get("/portal/rejects").get_data(as_text=True)
    assert 'data-category="assembly"' in portal and 'data-category="other"' in portal
    # The trace page names the categories by their words.
    page = customer.get(f"/trace/lots/{lot.lot_no}").get_data(as_text=True)
    assert "Assembly 3" in page and "Other 2" in page


def test_a_customer_gets_the_customer_event_schema(app, world, crossed, token_for, client):
    a, _b = world
    headers = token_for(a.user)
    for lot in (a.wip, a.completed, a.shipped):
        resp = client.get(f"/api/v1/lots/{lot.lot_no}/history?limit=500", headers=headers)
        assert resp.status_code == 200
        items = resp.get_json()["items"]
        assert items and all(set(item) == CUSTOMER_EVENT_FIELDS for item in items), items
        assert "CON-XA-1" not in json.dumps(items)
    items = client.get(f"/api/v1/lots/{a.wip.lot_no}/history",
                       headers=headers).get_json()["items"]
    holds = [e for e in items if e["kind"] == "hold"]
    assert len(holds) == 3  # placed by hand twice, once by the mass hold
    assert all((e["reason"], e["reason_description"], e["disposition"]) == (
        "H-ENG", crossed["description"], None) for e in holds)
    releases = [(e["reason"], e["disposition"]) for e in items if e["kind"] == "release"]
    assert releases == [("H-ENG", "use_as_is"), ("H-ENG", "scrap")]
    scrap = next(e for e in items if e["kind"] == "scrap")
    assert (scrap["qty_in"] - scrap["qty_out"], scrap["reason"]) == (1, "H-ENG")
    track_out = next(e for e in items if e["kind"] == "track_out")
    assert track_out["step"] and track_out["qty_in"] and track_out["reason"] is None
    # The cursor pages through the customer's events as through anyone's.
    first = client.get(f"/api/v1/lots/{a.wip.lot_no}/history?limit=2",
                       headers=headers).get_json()
    rest = client.get(f"/api/v1/lots/{a.wip.lot_no}/history?limit=500&cursor="
                      f"{first['next']}", headers=headers).get_json()
    assert first["items"] + rest["items"] == items and rest["next"] is None


def test_staff_keep_every_field_of_the_history(api, world, crossed):
    """The customer schema restricts customers only: plant users read each event's
    `by`, `equipment` and `data` as before, the mass hold's whole match included."""
    a, b = world
    items = api("qa").get(f"/lots/{a.wip.lot_no}/history?limit=500").get_json()["items"]
    assert all(set(item) == {"id", "kind", "at", "by", "step", "equipment", "qty_in",
                             "qty_out", "data"} for item in items)
    mass = [e for e in items if e["kind"] == "hold" and "match" in e["data"]]
    assert [e["data"]["match"]["lots"] for e in mass] == [[a.wip.lot_no, b.wip.lot_no]]
    assert mass[0]["by"] == "dora-massholder"
    assert mass[0]["data"]["comment"] == crossed["texts"]["mass"]


def test_a_customers_trace_names_no_operator(app, world, token_for, client, api, make_user,
                                             login):
    """The API's backward trace, the trace page and its CSV show a customer where and
    when each step ran, not who ran it; plant users still see the operators."""
    a, _b = world
    path = f"/lots/{a.shipped.lot_no}/trace"
    api_trace = client.get("/api/v1" + path, headers=token_for(a.user)).get_json()
    assert api_trace["steps"] and all("operator" not in s for s in api_trace["steps"])
    assert all(s["step"] and s["started_at"] for s in api_trace["steps"])
    assert all("created_by" not in q for q in api_trace["qualifications"])
    customer = as_user(app, a.user)
    page = customer.get(f"/trace/lots/{a.shipped.lot_no}").get_data(as_text=True)
    assert 'id="t-steps"' in page and "t-operators" not in page
    csv_text = customer.get(f"/trace/lots/{a.shipped.lot_no}/trace.csv").get_data(as_text=True)
    assert "operator" not in csv_text.splitlines()[0]
    for text in (json.dumps(api_trace), page, csv_text):
        assert not _word("op1").search(text) and not _word("op2").search(text)

    plant_trace = api("qa").get(path).get_json()
    assert {s["operator"] for s in plant_trace["steps"]} == {"op1"}
    assert all("created_by" in q for q in plant_trace["qualifications"])
    plant = login(make_user("qa"))
    assert 't-operators' in plant.get(f"/trace/lots/{a.shipped.lot_no}").get_data(as_text=True)
    assert "operator" in plant.get(f"/trace/lots/{a.shipped.lot_no}/trace.csv").get_data(
        as_text=True).splitlines()[0]
