"""Customer isolation over the whole application, derived from app.url_map so that every
endpoint added later is covered without touching this file.

Two customers, A (OEM) and B (IND), each with a shipped, a completed and a WIP lot, a
shipment, holds (one released with a concession) and a test run. Customer A calls every
rule with every method, its URL parameters filled with B's objects: the answer must be 403
or 404. Endpoints without parameters that a customer may use (the allow-list below: public
pages, the portal, lists the contract filters) are called with B's identifiers in the query
string; whatever they answer must carry nothing of B's (lot numbers, PO, vehicle program,
hold comments, concession). Every answer is also checked for B's data, and nothing may
change in the database.
"""

from __future__ import annotations

import re
from fnmatch import fnmatch
from typing import Any

from flask import Flask
from sqlalchemy import select

from mes.floor.models import Lot
from mes.quality.models import Hold
from mes.shipping.models import Shipment
from tests.helpers import as_user
from tests.portal.helpers import Side

IGNORED_METHODS = {"HEAD", "OPTIONS"}
_ARG = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")

# Endpoints without URL parameters a customer may call and get an answer (not 403/404):
# what they answer is checked for B's data. Patterns as in fnmatch.
ALLOWED = ("main.index", "main.healthz", "auth.login", "auth.logout", "auth.profile",
           "api.openapi_document", "api.list_lots", "api.list_shipments", "api.list_pcns",
           "portal.*", "trace.index", "reports.*", "api.report_*", "api.scan",
           "api.create_complaint", "api.list_complaints", "complaints.portal_*",
           "api.list_webhooks", "api.create_webhook", "webhooks.index", "webhooks.create",
           "api.list_orders",
           "api.wip_feed", "api.list_grants", "api.create_grant", "partners.grants",
           "partners.grant",
           "api.list_webhooks", "api.create_webhook", "webhooks.index", "webhooks.create")
# Query strings tried on every allowed GET endpoint: B's customer, lots, product and the
# fab lot A and B share (a forward trace of it must show A's lots only), as filters.
QUERIES = ("", "customer={customer}", "customer={customer}&format=csv", "lot={lot}",
           "lots={lot}", "lot_no={lot}", "fab_lot=FAB1", "product={product}", "q={lot}",
           "format=csv", "direction=forward&fab_lot=FAB1", "code={lot}")


def _is_static(endpoint: str) -> bool:
    return endpoint == "static" or endpoint.endswith(".static")


def _values(name: str, converter: str | None, b: Side) -> list[str]:
    """What to put in a URL parameter: B's objects of the kind the name says."""
    by_name: dict[str, list[Any]] = {
        "lot_no": b.lot_nos,
        "shipment_id": [b.shipment.id],
        "hold_id": [b.open_hold.id, b.released_hold.id],
        "run_id": [b.run.id],
        "code": [b.customer, "P2"],
        "username": [b.user.username],
        "step": ["FT"],
    }
    if name in by_name:
        return [str(v) for v in by_name[name]]
    if converter == "int":
        return [str(b.shipment.id)]
    return [b.wip.lot_no]


def _paths(rule: str, b: Side) -> list[str]:
    paths = [rule]
    for match in _ARG.finditer(rule):
        converter, name = match.group(1), match.group(2)
        paths = [p.replace(match.group(0), value, 1)
                 for p in paths for value in _values(name, converter, b)]
    return paths


def _secrets(b: Side) -> list[str]:
    """What of B's an answer to A must never show."""
    return [*b.lot_nos, b.shipment.po, b.shipment.vehicle_program or "",
            b.open_hold.comment, b.released_hold.comment, b.released_hold.concession or "",
            b.user.username]


def _leaks(resp: Any, sent: str, b: Side) -> list[str]:
    text = resp.get_data(as_text=True) + " " + resp.headers.get("Location", "")
    # What A typed may be echoed back ("No lot X."): only what A did not send counts.
    return [s for s in _secrets(b) if s and s in text and s not in sent]


def _send(client: Any, method: str, path: str) -> Any:
    kwargs: dict[str, Any] = {}
    if method in {"POST", "PUT", "PATCH", "DELETE"}:
        kwargs["json" if path.startswith("/api/") else "data"] = {}
    return client.open(path, method=method, **kwargs)


def _state(session) -> list[Any]:
    session.expire_all()
    return [
        [tuple(r) for r in session.execute(
            select(Lot.lot_no, Lot.state, Lot.quantity, Lot.version, Lot.open_holds,
                   Lot.step_code).order_by(Lot.id))],
        [tuple(r) for r in session.execute(select(Hold.id, Hold.status).order_by(Hold.id))],
        [tuple(r) for r in session.execute(select(Shipment.id, Shipment.po)
                                           .order_by(Shipment.id))],
    ]


def test_customer_reaches_nothing_of_another_customer(app: Flask, session, world):
    a, b = world
    before = _state(session)
    failures: list[str] = []
    calls = 0
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if _is_static(rule.endpoint):
            continue
        allowed = any(fnmatch(rule.endpoint, pattern) for pattern in ALLOWED)
        has_args = bool(rule.arguments)
        for method in sorted(rule.methods - IGNORED_METHODS):
            if has_args:
                targets = _paths(rule.rule, b)
            elif allowed and method == "GET":
                targets = [rule.rule + ("?" + q.format(customer=b.customer, lot=b.wip.lot_no,
                                                       product="P2") if q else "")
                           for q in QUERIES]
            else:
                targets = [rule.rule]
            for path in targets:
                # A fresh client per call: a logout must not end the next call's session.
                resp = _send(as_user(app, a.user), method, path)
                calls += 1
                seen = f"{method} {path} ({rule.endpoint}): {resp.status_code}"
                if resp.status_code >= 500:
                    failures.append(f"{seen} server error")
                elif resp.status_code not in (403, 404) and (has_args or not allowed):
                    failures.append(f"{seen} answers; expected 403 or 404")
                leaked = _leaks(resp, path, b)
                if leaked:
                    failures.append(f"{seen} shows B's {leaked}")
    assert calls > 200
    assert failures == []
    assert _state(session) == before


def test_lists_show_the_customers_own_objects(app, world):
    """The allow-listed lists do answer, with A's own objects: the isolation test above
    would pass vacuously if they answered nothing."""
    a, b = world
    client = as_user(app, a.user)
    for path, own in (("/api/v1/lots", a.wip.lot_no), ("/api/v1/shipments", "PO-AAA"),
                      ("/portal/", a.wip.lot_no),
                      ("/portal/holds", "CON-AAA"), ("/portal/shipments", "PO-AAA")):
        resp = client.get(path)
        assert resp.status_code == 200, path
        text = resp.get_data(as_text=True)
        assert own in text, path
        assert not any(secret in text for secret in _secrets(b)), path


def test_customer_api_answers_own_objects_and_404_for_others(client, world, token_for):
    """API.md "Customer users": these answer the customer's own objects; another
    customer's are 404, lists are filtered."""
    a, b = world
    headers = token_for(a.user)

    def get(path: str) -> Any:
        return client.get("/api/v1" + path, headers=headers)

    own_lot, other_lot = a.shipped.lot_no, b.shipped.lot_no
    for path in (f"/lots/{own_lot}", f"/lots/{own_lot}/history",
                 f"/lots/{own_lot}/test-runs", f"/lots/{own_lot}/trace",
                 f"/shipments/{a.shipment.id}", f"/shipments/{a.shipment.id}/coc"):
        assert get(path).status_code == 200, path
    for path in (f"/lots/{other_lot}", f"/lots/{other_lot}/history",
                 f"/lots/{other_lot}/test-runs", f"/lots/{other_lot}/trace",
                 f"/shipments/{b.shipment.id}", f"/shipments/{b.shipment.id}/coc"):
        resp = get(path)
        assert resp.status_code == 404, path
        assert resp.get_json()["error"]["code"] == "not_found", path
    runs = get(f"/lots/{own_lot}/test-runs").get_json()
    assert [(r["lot_no"], r["units"], r["final_good"]) for r in runs["items"]] == [
        (own_lot, 100, 96)]
    assert {item["lot_no"] for item in get("/lots").get_json()["items"]} == set(a.lot_nos)
    assert [s["id"] for s in get("/shipments").get_json()["items"]] == [a.shipment.id]


# API.md "Customer users" lists what a customer token may call; its Reports section adds
# the reports ("customers get their own lots only"). Every other API endpoint is 403.
CONTRACT_API = ("api.list_lots", "api.get_lot", "api.lot_history", "api.lot_test_runs",
                "api.lot_trace", "api.list_shipments", "api.get_shipment", "api.get_coc",
                "api.openapi_document", "api.report_*", "api.list_pcns", "api.decide_pcn",
                "api.get_pack_unit", "api.pack_unit_label", "api.scan", "api.*_webhook*",
                "api.list_deliveries", "api.redeliver",
                "api.create_complaint", "api.list_complaints", "api.get_complaint",
                "api.list_returns", "api.analysis_attachment",
                "api.list_orders",
                "api.get_order", "api.lot_forecast",
                # Feeds and partners (API.md "Orders, events, feeds and partners").
                "api.wip_feed", "api.create_grant", "api.list_grants", "api.revoke_grant",
                # Webhooks (events).
                "api.*_webhook*", "api.list_deliveries", "api.redeliver")


def test_customer_token_gets_403_from_every_other_api_endpoint(app, client, world,
                                                               token_for):
    a, _b = world
    headers = token_for(a.user)
    open_to_customers = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        listed = any(fnmatch(rule.endpoint, p) for p in CONTRACT_API)
        for method in rule.methods - IGNORED_METHODS:
            path = rule.rule
            for match in _ARG.finditer(rule.rule):
                path = path.replace(match.group(0), _values(match.group(2), match.group(1),
                                                            a)[0], 1)
            kwargs = {"json": {}} if method != "GET" else {}
            resp = client.open(path, method=method, headers=headers, **kwargs)
            if resp.status_code != 403:
                open_to_customers.append(rule.endpoint)
                assert listed, f"{method} {path} answers a customer {resp.status_code}"
    assert {"api.get_lot", "api.get_coc", "api.lot_test_runs"} <= set(open_to_customers)


# The pages a customer user reaches: the portal, the trace and report pages the portal
# links (scoped to the customer), and what every user has (home, profile, login, logout).
# Every other page answers a customer 403, even for the customer's own lots.
CUSTOMER_PAGES = ("main.index", "main.healthz", "auth.login", "auth.logout", "auth.profile",
                  "portal.*", "trace.index", "trace.lot", "trace.lot_csv", "trace.shipment",
                  "reports.index", "reports.wip", "reports.yield_page",
                  "reports.rejects", "reports.cycle_time", "reports.holds",
                  "reports.delivery", "complaints.portal_*", "webhooks.*", "fa_portal.*",
                  # The portal's Partners section: the customer's grants.
                  "partners.grants", "partners.grant", "partners.revoke")


def test_customer_gets_403_from_every_page_outside_the_portal(app, session, world):
    """Filled with the customer's own objects, so a 403 is the role's refusal and not the
    customer scoping's 404."""
    a, _b = world
    before = _state(session)
    open_pages, refused = set(), 0
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.rule.startswith("/api/") or _is_static(rule.endpoint):
            continue
        for method in sorted(rule.methods - IGNORED_METHODS):
            path = _paths(rule.rule, a)[0]
            resp = _send(as_user(app, a.user), method, path)
            if resp.status_code == 403:
                refused += 1
                continue
            open_pages.add(rule.endpoint)
            assert any(fnmatch(rule.endpoint, p) for p in CUSTOMER_PAGES), (
                f"{method} {path} ({rule.endpoint}) answers a customer {resp.status_code}")
    assert {"floor.wip", "floor.lot_detail", "floor.traveler"}.isdisjoint(open_pages)
    assert {"portal.index", "trace.lot", "reports.index"} <= open_pages
    assert refused > 50
    assert _state(session) == before
