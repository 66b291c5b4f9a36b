"""The WIP feed: one row per open or banked lot of one customer with its PO line, stage,
forecast and the holds the customer sees; keyset pages in JSON, every row in CSV; who asks
for whose feed; two queries a page whatever the number of lots."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from sqlalchemy import event, update

from mes.db import get_db, utcnow
from mes.floor.models import Lot
from mes.forecast.models import LotForecast
from mes.partners import feed
from tests.floor.helpers import advance
from tests.helpers import refused


def _get(app, headers, query=""):
    return app.test_client().get("/api/v1/feeds/wip" + query, headers=headers)


def _lots(resp):
    assert resp.status_code == 200, resp.get_json()
    return [row["lot_no"] for row in resp.get_json()["items"]]


def test_a_customer_reads_its_open_lots_with_po_line_stage_and_holds(
        app, session, partnered, token_for):
    w = partnered
    headers = token_for(w.a.user)
    rows = {row["lot_no"]: row for row in _get(app, headers).get_json()["items"]}
    # Open lots only (not the completed or shipped ones), and never B's.
    assert sorted(rows) == ["AAA-WIP-1", "AAA-WIP-2"]
    wip = rows["AAA-WIP-1"]
    assert set(wip) >= set(feed.FIELDS)
    assert (wip["customer"], wip["po"], wip["line"], wip["product"]) == ("OEM", "PO-1", 1, "P1")
    assert (wip["step"], wip["stage"], wip["state"], wip["quantity"]) == (
        "WB", "assembly", "queued", 60)
    assert (wip["holds"], wip["hold_reasons"]) == (1, ["H-ENG"])
    # Held: the hold computed the lot's forecast at once.
    assert wip["p50"] is not None and wip["p50"] <= wip["p90"]
    assert (rows["AAA-WIP-2"]["line"], rows["AAA-WIP-2"]["holds"]) == (2, 0)
    assert rows["AAA-WIP-2"]["hold_reasons"] == []


def test_stages_forecasts_and_banked_lots(app, session, partnered, token_for, receive):
    w = partnered
    at_test = receive(10, lot_no="AAA-FT-1", product="P1", customer="OEM")
    advance(session, at_test, 2)
    banked = receive(10, lot_no="AAA-BANK-1", product="P1", customer="OEM")
    session.execute(update(Lot).where(Lot.id == banked.id).values(state="banked"))
    p50 = utcnow().replace(microsecond=0) + timedelta(hours=30)
    session.add(LotForecast(lot_id=at_test.id, lot_version=at_test.version, p50_at=p50,
                            p90_at=p50 + timedelta(hours=12), expected_quantity=10,
                            remaining_steps=2, on_hold=False))
    session.commit()
    rows = {row["lot_no"]: row for row in _get(app, token_for(w.a.user)).get_json()["items"]}
    assert (rows["AAA-FT-1"]["step"], rows["AAA-FT-1"]["stage"]) == ("FT", "test")
    assert rows["AAA-FT-1"]["p50"] == p50.isoformat()
    assert rows["AAA-FT-1"]["p90"] == (p50 + timedelta(hours=12)).isoformat()
    assert (rows["AAA-BANK-1"]["step"], rows["AAA-BANK-1"]["stage"],
            rows["AAA-BANK-1"]["state"]) == (None, "die_bank", "banked")
    assert rows["AAA-BANK-1"]["po"] is None and rows["AAA-BANK-1"]["line"] is None


@pytest.mark.parametrize("state, kind, earlier, stage", [
    ("banked", "assembly", None, "die_bank"), ("queued", "assembly", None, "assembly"),
    ("running", "test", "assembly", "test"), ("queued", "pack", "test", "pack"),
    ("queued", "inspection", "assembly", "assembly"),
    ("queued", "inspection", "test", "test"), ("queued", "inspection", None, "assembly"),
])
def test_the_stage_of_a_lot(state, kind, earlier, stage):
    assert feed.stage(state, kind, earlier) == stage


def test_hold_reasons_are_those_the_customer_sees(app, session, partnered, token_for,
                                                  monkeypatch):
    monkeypatch.setitem(app.config, "PORTAL_HOLD_POLICY", "notify")
    rows = {row["lot_no"]: row
            for row in _get(app, token_for(partnered.a.user)).get_json()["items"]}
    assert (rows["AAA-WIP-1"]["holds"], rows["AAA-WIP-1"]["hold_reasons"]) == (0, [])


def test_json_pages_by_keyset_and_csv_has_every_row(app, session, partnered, token_for,
                                                    receive):
    for n in range(3):
        receive(5, lot_no=f"AAA-MORE-{n}", product="P1", customer="OEM")
    headers = token_for(partnered.a.user)
    seen, query = [], "?limit=2"
    while True:
        body = _get(app, headers, query).get_json()
        assert len(body["items"]) <= 2
        seen += [row["lot_no"] for row in body["items"]]
        if body["next"] is None:
            break
        query = f"?limit=2&cursor={body['next']}"
    assert sorted(seen) == sorted(_lots(_get(app, headers, "?limit=500")))
    assert len(seen) == len(set(seen)) == 5
    resp = _get(app, headers, "?format=csv")
    assert resp.mimetype == "text/csv"
    text = resp.get_data(as_text=True)
    assert text.startswith(",".join(feed.FIELDS) + "\r\n")
    lines = list(csv.reader(io.StringIO(text)))
    assert sorted(line[0] for line in lines[1:]) == sorted(seen)
    held = next(line for line in lines if line[0] == "AAA-WIP-1")
    assert held[feed.FIELDS.index("hold_reasons")] == "H-ENG"
    # The hold computed the lot's forecast (an ISO time in the CSV).
    assert held[feed.FIELDS.index("p50")].startswith("20")
    refused(session, lambda: _get(app, headers, "?cursor=bm9wZQ=="), 422, "invalid", "cursor")


def test_who_reads_whose_feed(app, session, partnered, token_for, make_user):
    w = partnered
    planner = token_for(make_user("planner"))
    own = _lots(_get(app, token_for(w.a.user)))
    assert _lots(_get(app, planner, "?customer=OEM")) == own
    assert _lots(_get(app, token_for(w.a.user), "?customer=OEM")) == own
    # A partner organisation named by the plant: what its users see.
    assert _lots(_get(app, planner, "?customer=TIER1")) == [w.a.wip.lot_no]
    refused(session, lambda: _get(app, planner), 422, "invalid", "customer")
    refused(session, lambda: _get(app, planner, "?customer=NOPE"), 404, "not_found")
    customer = token_for(w.a.user)
    refused(session, lambda: _get(app, customer, "?customer=IND"), 404, "not_found")
    for role in ("operator", "qa", "engineer"):
        headers = token_for(make_user(role))
        refused(session, lambda h=headers: _get(app, h, "?customer=OEM"), 403, "forbidden")


def test_a_page_is_two_queries_whatever_the_number_of_lots(app, session, partnered, receive):
    for n in range(6):
        lot = receive(5, lot_no=f"AAA-N-{n}", product="P1", customer="OEM")
        advance(session, lot, n % 4)
    statements: list[str] = []
    engine = get_db(app).engine

    def count(_conn, _cursor, statement, *_args):
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        with app.app_context():
            rows, _after = feed.page(session, feed.FeedScope(customer_id=partnered.a.wip
                                                             .customer_id), utcnow(), 0, 500)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(rows) == 8
    assert len(statements) == 2, statements
