"""Partner isolation over the whole application, derived from app.url_map like the
customers' (test_isolation.py): a partner user with a grant on one of A's PO lines sees
exactly that line's lots (in its pages and the WIP feed), nothing else of A's and nothing of
B's; a partner without a grant sees nothing; a revoked grant shows nothing from the next
request on. Every other endpoint answers 403 or 404 to a partner user, and nothing changes
in the database."""

from __future__ import annotations

import csv
import io
import re
from fnmatch import fnmatch
from typing import Any

from flask import Flask

from tests.helpers import as_user
from tests.portal.test_isolation import IGNORED_METHODS, _is_static, _send, _state

# What a partner user may call and get an answer from (the rest: 403 or 404).
ALLOWED = ("main.index", "main.healthz", "auth.login", "auth.logout", "auth.profile",
           "api.openapi_document", "api.wip_feed", "api.list_grants", "partners.index",
           "auth.*")
ARG = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")


def _rows(html: str, attr: str) -> list[str]:
    return re.findall(rf'<tr data-{attr}="([^"]+)"', html)


def _feed(client: Any, query: str = "") -> list[str]:
    resp = client.get("/api/v1/feeds/wip" + query)
    assert resp.status_code == 200, resp.get_json()
    return [row["lot_no"] for row in resp.get_json()["items"]]


def _secrets(world: Any) -> list[str]:
    """What a partner granted A's PO-1 line 1 must never see."""
    b = world.b
    return [*(lot.lot_no for lot in world.others), b.shipment.vehicle_program or "",
            world.a.open_hold.comment, world.a.released_hold.comment,
            world.a.released_hold.concession or "", b.open_hold.comment, "VP-Y",
            world.a.user.username, b.user.username, "qa1", "qa2"]


def _values(name: str, converter: str | None, w: Any) -> list[str]:
    by_name: dict[str, list[Any]] = {
        "lot_no": [lot.lot_no for lot in w.others],
        "shipment_id": [w.b.shipment.id],
        "hold_id": [w.a.open_hold.id, w.b.open_hold.id],
        "grant_id": [w.grant.id],
        "code": ["OEM", "P1"], "po": ["PO-1"], "line": ["1"],
        "username": [w.a.user.username],
    }
    if name in by_name:
        return [str(v) for v in by_name[name]]
    if converter == "int":
        return [str(w.b.shipment.id)]
    return [w.others[0].lot_no]


def _paths(rule: str, w: Any) -> list[str]:
    paths = [rule]
    for match in ARG.finditer(rule):
        converter, name = match.group(1), match.group(2)
        paths = [p.replace(match.group(0), value, 1)
                 for p in paths for value in _values(name, converter, w)]
    return paths


def test_a_partner_reaches_nothing_but_its_granted_lots(app: Flask, session, partnered):
    w = partnered
    before = _state(session)
    failures: list[str] = []
    calls = 0
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if _is_static(rule.endpoint):
            continue
        allowed = any(fnmatch(rule.endpoint, pattern) for pattern in ALLOWED)
        for method in sorted(rule.methods - IGNORED_METHODS):
            if rule.arguments:
                targets = _paths(rule.rule, w)
            elif allowed and method == "GET":
                targets = [rule.rule, rule.rule + "?customer=IND", rule.rule + "?format=csv",
                           rule.rule + "?customer=OEM&format=csv"]
            else:
                targets = [rule.rule]
            for path in targets:
                resp = _send(as_user(app, w.tier1), method, path)
                calls += 1
                seen = f"{method} {path} ({rule.endpoint}): {resp.status_code}"
                if resp.status_code >= 500:
                    failures.append(f"{seen} server error")
                elif resp.status_code not in (403, 404) and (rule.arguments or not allowed):
                    failures.append(f"{seen} answers; expected 403 or 404")
                text = resp.get_data(as_text=True) + resp.headers.get("Location", "")
                leaked = [s for s in _secrets(w) if s and s in text and s not in path]
                if leaked:
                    failures.append(f"{seen} shows {leaked}")
    assert calls > 200
    assert failures == []
    assert _state(session) == before


def test_with_a_grant_the_partner_sees_exactly_the_granted_lots(app, session, partnered):
    w = partnered
    client = as_user(app, w.tier1)
    # The feed: the granted line's open lots (the shipped one is no longer WIP).
    assert _feed(client) == [w.a.wip.lot_no]
    row = client.get("/api/v1/feeds/wip").get_json()["items"][0]
    assert (row["customer"], row["po"], row["line"]) == ("OEM", "PO-1", 1)
    assert row["holds"] == 1 and row["hold_reasons"] == ["H-ENG"]
    assert _feed(client, "?customer=OEM") == [w.a.wip.lot_no]
    assert _feed(client, "?customer=IND") == []
    lines = list(csv.reader(io.StringIO(
        client.get("/api/v1/feeds/wip?format=csv").get_data(as_text=True))))
    assert [line[0] for line in lines[1:]] == [w.a.wip.lot_no]
    # The landing page: both granted lots (WIP and shipped), by owner and PO line.
    page = client.get("/partners/")
    assert page.status_code == 200
    assert sorted(_rows(page.get_data(as_text=True), "lot")) == sorted(
        lot.lot_no for lot in w.granted)
    for lot in w.granted:
        assert client.get(f"/partners/lots/{lot.lot_no}").status_code == 200
    for lot in w.others:
        assert client.get(f"/partners/lots/{lot.lot_no}").status_code == 404
    assert client.get("/partners/lots/NO-SUCH-LOT").status_code == 404
    # The shipment that carried a granted lot, with the granted lots only.
    shipped = client.get(f"/partners/shipments/{w.a.shipment.id}")
    assert shipped.status_code == 200
    assert _rows(shipped.get_data(as_text=True), "lot") == [w.a.shipped.lot_no]
    assert client.get(f"/partners/shipments/{w.b.shipment.id}").status_code == 404
    lot_page = client.get(f"/partners/lots/{w.a.wip.lot_no}").get_data(as_text=True)
    assert _rows(lot_page, "hold") == [str(w.a.open_hold.id), str(w.a.released_hold.id)]
    assert w.a.open_hold.comment not in lot_page  # the plant's comments stay internal
    # The grants received, not those of other partners.
    grants = client.get("/api/v1/grants").get_json()["items"]
    assert [(g["customer"], g["po"], g["line"]) for g in grants] == [("OEM", "PO-1", 1)]


def test_without_a_grant_a_partner_sees_nothing(app, partnered):
    w = partnered
    client = as_user(app, w.tier2)
    assert _feed(client) == []
    assert _feed(client, "?customer=OEM") == []
    assert _rows(client.get("/partners/").get_data(as_text=True), "lot") == []
    for lot in [*w.granted, *w.others]:
        assert client.get(f"/partners/lots/{lot.lot_no}").status_code == 404
    assert client.get(f"/partners/shipments/{w.a.shipment.id}").status_code == 404
    assert client.get("/api/v1/grants").get_json()["items"] == []
    # Nor the plant's lot, shipment, order and trace endpoints, nor the customer portal.
    for path in ("/api/v1/lots", f"/api/v1/lots/{w.a.wip.lot_no}", "/api/v1/shipments",
                 "/api/v1/orders", f"/api/v1/lots/{w.a.wip.lot_no}/trace", "/portal/"):
        # (403: the role lacks the permission; 404 where the endpoint is not there at all.)
        assert as_user(app, w.tier1).get(path).status_code in (403, 404), path


def test_after_revoking_the_partner_sees_nothing_on_the_next_request(app, partnered):
    w = partnered
    partner = as_user(app, w.tier1)
    assert _feed(partner) == [w.a.wip.lot_no]
    owner = as_user(app, w.a.user)
    assert owner.delete(f"/api/v1/grants/{w.grant.id}",
                        headers={"X-CSRFToken": _csrf(owner)}).status_code == 204
    assert _feed(partner) == []
    assert partner.get(f"/partners/lots/{w.a.wip.lot_no}").status_code == 404
    assert partner.get(f"/partners/shipments/{w.a.shipment.id}").status_code == 404
    assert _rows(partner.get("/partners/").get_data(as_text=True), "lot") == []
    assert partner.get("/api/v1/grants").get_json()["items"] == []


def test_a_vehicle_program_grant_shows_that_owners_lines_of_the_program_only(
        app, session, partnered, token_for):
    w = partnered
    headers = token_for(w.a.user)
    made = app.test_client().post("/api/v1/grants", headers=headers,
                                  json={"partner": "TIER2", "vehicle_program": "VP-X"})
    assert made.status_code == 201, made.get_json()
    assert made.get_json()["vehicle_program"] == "VP-X"
    client = as_user(app, w.tier2)
    # A's VP-X line (the WIP lot in the feed, both lots on the page); never B's VP-X lots.
    assert _feed(client) == [w.a.wip.lot_no]
    assert sorted(_rows(client.get("/partners/").get_data(as_text=True), "lot")) == sorted(
        lot.lot_no for lot in w.granted)
    assert client.get(f"/partners/lots/{w.b.wip.lot_no}").status_code == 404


def _csrf(client: Any) -> str:
    page = client.get("/partners/grants").get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
