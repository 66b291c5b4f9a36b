"""The change pages (engineers record a change, read its requalification, send its PCNs)
and the portal's PCN page (customers approve or reject their own)."""

from __future__ import annotations

from typing import Any

import pytest

from mes.changes import services as changes
from mes.changes.models import Change, Pcn
from tests.catalog.test_views import rows, text
from tests.changes.conftest import ENGINEER
from tests.helpers import refused


@pytest.fixture
def engineer(login, make_user):
    return login(make_user("engineer"))


def test_engineer_records_a_change_and_sends_its_pcns(engineer, session, lots_of):
    lots_of("L-OEM", "OEM", complete=False)
    assert "No product changes recorded." in text(engineer.get("/changes/"))
    resp = engineer.post("/changes/new", data={
        "title": "Copper wire", "kind": "material", "products": "P2", "bom_revision": "B",
        "items": "", "description": "Au to Cu"})
    assert resp.status_code == 303
    [change] = rows(session, Change)
    page = text(engineer.get(f"/changes/{change.id}"))
    assert "Copper wire" in page and "TC, HAST, UHST, HTSL" in page
    assert "held back" in page and "WB/wire" in page
    resp = engineer.post(f"/changes/{change.id}/pcns", data={"notice_days": ""})
    assert resp.status_code == 303
    [pcn] = rows(session, Pcn)
    assert pcn.customer.code == "OEM"
    assert f"PCN {pcn.id}" in text(engineer.get(f"/changes/{change.id}"))
    assert "Copper wire" in text(engineer.get("/changes/"))


def test_change_form_refusals_change_nothing(engineer, session, bom_plant):
    body = refused(session, lambda: engineer.post("/changes/new", data={
        "title": "X", "kind": "material", "products": "NOPE", "bom_revision": "B"}), 422)
    assert "Unknown product NOPE." in body
    refused(session, lambda: engineer.post("/changes/new", data={
        "title": "X", "kind": "paint", "products": "P2"}), 422)


def test_short_notice_is_refused_on_the_page(engineer, session, change):
    body = refused(session, lambda: engineer.post(f"/changes/{change.id}/pcns",
                                                  data={"notice_days": "10"}), 422)
    assert "90" in body


def test_others_may_read_but_not_record_changes(login, make_user, session, change):
    qa = login(make_user("qa"))
    assert qa.get(f"/changes/{change.id}").status_code == 200
    refused(session, lambda: qa.post(f"/changes/{change.id}/pcns", data={}), 403)
    customer = login(make_user("customer", customer="OEM"))
    assert customer.get(f"/changes/{change.id}").status_code == 403


def _customer(login: Any, make_user: Any, code: str) -> Any:
    return login(make_user("customer", customer=code))


def test_customer_approves_its_pcn_in_the_portal(login, make_user, session, change):
    pcns = {p.customer.code: p for p in changes.send_pcns(session, ENGINEER, change)}
    session.commit()
    oem = _customer(login, make_user, "OEM")
    page = text(oem.get("/portal/pcns"))
    assert f"PCN {pcns['OEM'].id}" in page and f"PCN {pcns['OEM2'].id}" not in page
    resp = oem.post(f"/portal/pcns/{pcns['OEM'].id}/decision",
                    data={"approve": "1", "comment": "OK"})
    assert resp.status_code == 303
    session.refresh(pcns["OEM"])
    assert (pcns["OEM"].status, pcns["OEM"].comment) == ("approved", "OK")
    # Answered once; another customer's PCN is not found.
    refused(session, lambda: oem.post(f"/portal/pcns/{pcns['OEM'].id}/decision",
                                      data={"approve": "0"}), 409)
    refused(session, lambda: oem.post(f"/portal/pcns/{pcns['OEM2'].id}/decision",
                                      data={"approve": "1"}), 404)
