"""Change control: recording a change (classified against AEC-Q100's change table), its new
BOM revision held back until the requalification passed, PCNs to automotive customers,
their answers, and the shipping rule `pcn_not_accepted`. Every refusal leaves the database
as it was."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from mes import audit
from mes.catalog import services as cat
from mes.catalog.models import Bom
from mes.changes import events
from mes.changes import services as changes
from mes.changes.models import Change, Pcn
from mes.errors import Conflict, InvalidInput, NotFound
from mes.floor.models import Lot
from mes.floor.services import plant_date
from mes.shipping import services as shipping
from tests.changes.conftest import ENGINEER, qualify
from tests.helpers import audit_codes, refused

MATERIAL = ["TC", "HAST", "UHST", "HTSL"]


def new_change(session, **data: Any) -> Change:
    found = changes.create_change(session, ENGINEER, {
        "title": "Copper wire", "kind": "material", "products": ["P2"], "bom_revision": "B",
        "description": "", **data})
    session.commit()
    return found


def lot_revision(session, lot_no: str) -> str | None:
    bom_id = session.scalar(select(Lot.bom_id).where(Lot.lot_no == lot_no))
    return session.scalar(select(Bom.revision).where(Bom.id == bom_id))


def ship(session, lot_no: str, customer: str) -> Any:
    shipment = shipping.create_shipment(session, "planner", {
        "customer": customer, "po": "PO-1", "lots": [lot_no]})
    session.commit()
    return shipment


def ship_refused(session, lot_no: str, customer: str, code: str = "pcn_not_accepted") -> Any:
    return refused(session, lambda: shipping.create_shipment(
        session, "planner", {"customer": customer, "po": "PO-1", "lots": [lot_no]}),
        Conflict, code)


# --- recording a change ----------------------------------------------------------------

def test_change_lists_the_stresses_its_kind_requires(session, bom_plant, api):
    resp = api("engineer").post("/changes", json={
        "title": "Copper wire", "kind": "material", "products": ["P2"], "bom_revision": "B",
        "description": "Au 25 um to Cu 20 um"})
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["required_stresses"] == MATERIAL
    assert body["status"] == "requalifying" and body["requalified"] is False
    assert body["requalification"] == [{
        "product": "P2", "bom_revision": "B", "required": MATERIAL, "passed": [],
        "missing": MATERIAL, "items": [{"step": "WB", "material": "wire"}], "done": False}]
    assert body["pcns"] == []
    assert audit_codes(session, "change", str(body["id"])) == ["change:create"]
    got = api("qa").get(f"/changes/{body['id']}")
    assert got.status_code == 200 and got.get_json()["title"] == "Copper wire"
    assert api("qa").get("/changes").get_json()["items"][0]["id"] == body["id"]


def test_each_kind_has_its_requalification(session, bom_plant):
    design = new_change(session, kind="design", bom_revision=None)
    assert design.required_stresses == ["HTOL", "ELFR", "HBM", "CDM", "LU", "ED"]
    assert new_change(session, kind="test", bom_revision=None).required_stresses == ["ED"]


def test_change_refused_for_bad_input(session, bom_plant, api):
    engineer = api("engineer")

    def post(**data: Any) -> Any:
        body = {"title": "X", "kind": "material", "products": ["P2"], "bom_revision": "B",
                "description": "", **data}
        return lambda: engineer.post("/changes", json=body)

    refused(session, post(kind="paint"), 422, "invalid", "kind")
    refused(session, post(products=["NOPE"]), 422, "invalid", "products")
    refused(session, post(products=["P2", "P2"]), 422, "invalid", "products")
    refused(session, post(bom_revision="Z"), 422, "invalid", "bom_revision")
    refused(session, post(bom_revision="A"), 422, "invalid", "bom_revision")
    refused(session, post(items=[{"step": "FT", "material": "socket"}]), 422, "invalid",
            "items")
    refused(session, post(title=""), 422, "invalid", "title")


def test_a_revision_is_introduced_by_one_change(session, bom_plant):
    first = new_change(session)
    error = refused(session, lambda: changes.create_change(session, ENGINEER, {
        "title": "Again", "kind": "material", "products": ["P2"], "bom_revision": "B"}),
        Conflict, "duplicate")
    assert str(first.id) in error.message


def test_recording_a_change_needs_master_write(session, bom_plant, api):
    for role in ("operator", "qa", "planner", "customer"):
        caller = api(role, **({"customer": "OEM"} if role == "customer" else {}))
        refused(session, lambda caller=caller: caller.post("/changes", json={
            "title": "X", "kind": "material", "products": ["P2"]}), 403, "forbidden")


def test_unknown_change_is_404(session, bom_plant, api):
    engineer = api("engineer")
    assert engineer.get("/changes/999").status_code == 404
    refused(session, lambda: engineer.post("/changes/999/pcns", json={}), 404, "not_found")


# --- the new revision takes effect after its requalification ---------------------------

def test_new_revision_is_held_back_until_requalified(session, change, lots_of, api):
    lots_of("L-1", "OEM", complete=False)
    assert lot_revision(session, "L-1") == "A"
    # A qualification build names the held revision.
    lots_of("L-B", "OEM", revision="B", complete=False)
    assert lot_revision(session, "L-B") == "B"
    qualify(session, "P2", "B", ["TC", "HTSL"], report="QR-B1")
    shown = changes.present(session, change)
    assert (shown.products[0].passed, shown.products[0].missing) == (["TC", "HTSL"],
                                                                     ["HAST", "UHST"])
    lots_of("L-2", "OEM", complete=False)
    assert lot_revision(session, "L-2") == "A"
    # A failed stress does not count; autoclave stands for unbiased HAST.
    qualify(session, "P2", "B", ["HAST"], fails=1, report="QR-B2")
    qualify(session, "P2", "B", ["AC"], report="QR-B3")
    assert changes.present(session, change).products[0].missing == ["HAST"]
    lots_of("L-3", "OEM", complete=False)
    assert lot_revision(session, "L-3") == "A"
    qualify(session, "P2", "B", ["HAST"], report="QR-B4")
    body = api("engineer").get(f"/changes/{change.id}").get_json()
    assert (body["status"], body["requalified"]) == ("qualified", True)
    lots_of("L-4", "OEM", complete=False)
    assert lot_revision(session, "L-4") == "B"


def test_receiving_on_an_unknown_revision_is_refused(session, change, receive):
    refused(session, lambda: receive(100, lot_no="L-X", product="P2", customer="OEM",
                                     bom_revision="Z"), InvalidInput, "invalid")


# --- PCNs ------------------------------------------------------------------------------

def test_pcns_go_to_each_automotive_customer_of_the_product(session, change, api):
    sent: list[Pcn] = []

    def heard(pcn: Pcn, **kw: Any) -> None:
        sent.append(pcn)

    engineer = api("engineer")
    with events.pcn_sent.connected_to(heard):
        resp = engineer.post(f"/changes/{change.id}/pcns", json={})
    assert resp.status_code == 201, resp.get_json()
    pcns = resp.get_json()["items"]
    effective = (plant_date() + timedelta(days=90)).isoformat()
    assert [(p["customer"], p["status"], p["notice_days"], p["effective_date"])
            for p in pcns] == [("OEM", "pending", 90, effective),
                               ("OEM2", "pending", 90, effective)]
    assert [p.customer.code for p in sent] == ["OEM", "OEM2"]
    assert audit_codes(session, "pcn", str(pcns[0]["id"])) == ["pcn:send"]
    body = engineer.get(f"/changes/{change.id}").get_json()
    assert [p["customer"] for p in body["pcns"]] == ["OEM", "OEM2"]
    # Everyone has theirs: nothing more to send.
    refused(session, lambda: engineer.post(f"/changes/{change.id}/pcns", json={}),
            409, "already_notified")


def test_a_pcn_gives_at_least_the_configured_notice(session, change, api, app):
    engineer = api("engineer")
    refused(session, lambda: engineer.post(f"/changes/{change.id}/pcns",
                                                  json={"notice_days": 30}),
            422, "invalid", "notice_days")
    app.config["PCN_NOTICE_DAYS"] = 20
    try:
        resp = engineer.post(f"/changes/{change.id}/pcns", json={"notice_days": 30})
    finally:
        app.config["PCN_NOTICE_DAYS"] = 90
    assert resp.status_code == 201
    assert {p["effective_date"] for p in resp.get_json()["items"]} == {
        (plant_date() + timedelta(days=30)).isoformat()}


def test_no_pcn_without_an_automotive_customer(session, bom_plant, lots_of):
    lots_of("L-IND", "IND", complete=False)
    found = new_change(session)
    error = refused(session, lambda: changes.send_pcns(session, ENGINEER, found), Conflict,
                    "already_notified")
    assert "no one to notify" in error.message


def test_a_customer_approves_or_rejects_its_own_pcn_once(session, change, api):
    changes.send_pcns(session, ENGINEER, change)
    session.commit()
    oem = api("customer", customer="OEM")
    mine = oem.get("/pcns").get_json()["items"]
    assert [p["customer"] for p in mine] == ["OEM"]
    decided: list[Pcn] = []
    with events.pcn_decided.connected_to(lambda pcn, **kw: decided.append(pcn)):
        resp = oem.post(f"/pcns/{mine[0]['id']}/decision",
                        json={"approve": True, "comment": "Fine by us"})
    assert resp.status_code == 200, resp.get_json()
    assert (resp.get_json()["status"], resp.get_json()["comment"]) == ("approved",
                                                                       "Fine by us")
    assert [p.id for p in decided] == [mine[0]["id"]]
    assert audit_codes(session, "pcn", str(mine[0]["id"])) == ["pcn:send", "pcn:decide"]
    refused(session, lambda: oem.post(f"/pcns/{mine[0]['id']}/decision",
                                      json={"approve": False}), 409, "already_decided")
    refused(session, lambda: oem.post(f"/pcns/{mine[0]['id']}/decision", json={}), 422,
            "invalid", "approve")


def test_pcns_are_isolated_between_customers(session, change, api):
    pcns = changes.send_pcns(session, ENGINEER, change)
    session.commit()
    theirs = next(p for p in pcns if p.customer.code == "OEM2")
    oem = api("customer", customer="OEM")
    # Another customer's PCN is not found, as if it did not exist; the list keeps to one's
    # own whatever the filter.
    refused(session, lambda: oem.post(f"/pcns/{theirs.id}/decision", json={"approve": True}),
            404, "not_found")
    assert [p["customer"] for p in oem.get(f"/pcns?change={change.id}").get_json()["items"]] \
        == ["OEM"]
    assert "OEM2" not in oem.get("/pcns?status=pending").get_data(as_text=True)
    assert oem.get(f"/changes/{change.id}").status_code == 403
    # Plant users read every PCN but answer none.
    assert len(api("qa").get("/pcns").get_json()["items"]) == 2
    admin = api("admin")
    refused(session, lambda: admin.post(f"/pcns/{theirs.id}/decision",
                                        json={"approve": True}), 403, "forbidden")
    refused(session, lambda: changes.get_pcn(session, theirs.id, oem.user), NotFound,
            "not_found")


# --- shipping --------------------------------------------------------------------------

def test_lots_on_the_new_revision_ship_only_after_acceptance(session, change, lots_of):
    qualify(session, "P2", "B", ["TC", "HTSL"], report="QR-B1")
    for lot_no, customer in (("B-OEM", "OEM"), ("B-OEM2", "OEM2"), ("B-IND", "IND"),
                             ("B-OEM-2", "OEM")):
        lots_of(lot_no, customer, revision="B")
    # No PCN sent yet.
    error = ship_refused(session, "B-OEM", "OEM")
    assert "sent no PCN" in error.message
    pcns = {p.customer.code: p for p in changes.send_pcns(session, ENGINEER, change)}
    session.commit()
    ship_refused(session, "B-OEM", "OEM")
    changes.decide_pcn(session, "cust-oem", pcns["OEM"], True)
    changes.decide_pcn(session, "cust-oem2", pcns["OEM2"], False, "Not before our audit")
    session.commit()
    shipment = ship(session, "B-OEM", "OEM")
    error = ship_refused(session, "B-OEM2", "OEM2")
    assert "rejected" in error.message
    # Industrial customers get no PCN and need none; lots on the old revision ship as ever.
    ship(session, "B-IND", "IND")
    lots_of("A-OEM2", "OEM2")
    ship(session, "A-OEM2", "OEM2")
    assert shipment.lots[0].lot.state == "shipped"


def test_silence_is_acceptance_once_the_notice_ran_out_rejection_is_not(session, change,
                                                                        lots_of):
    qualify(session, "P2", "B", ["TC", "HTSL"], report="QR-B1")
    lots_of("B-OEM", "OEM", revision="B")
    lots_of("B-OEM2", "OEM2", revision="B")
    pcns = {p.customer.code: p for p in changes.send_pcns(session, ENGINEER, change)}
    changes.decide_pcn(session, "cust-oem2", pcns["OEM2"], False)
    session.commit()
    error = ship_refused(session, "B-OEM", "OEM")
    assert pcns["OEM"].effective_date.isoformat() in error.message
    for pcn in pcns.values():
        pcn.effective_date = plant_date()
    session.commit()
    ship(session, "B-OEM", "OEM")
    ship_refused(session, "B-OEM2", "OEM2")


def test_the_certificate_names_the_pcn(session, change, lots_of, api):
    qualify(session, "P2", "B", ["TC", "HTSL"], report="QR-B1")
    lots_of("B-OEM", "OEM", revision="B")
    pcns = {p.customer.code: p for p in changes.send_pcns(session, ENGINEER, change)}
    changes.decide_pcn(session, "cust-oem", pcns["OEM"], True)
    session.commit()
    shipment = ship(session, "B-OEM", "OEM")
    html = api("qa").get(f"/shipments/{shipment.id}/coc").get_data(as_text=True)
    assert f'data-pcn="{pcns["OEM"].id}"' in html and "Copper wire" in html
    assert f'data-pcn="{pcns["OEM2"].id}"' not in html
    lots_of("A-OEM", "OEM")
    other = ship(session, "A-OEM", "OEM")
    assert "data-pcn" not in api("qa").get(f"/shipments/{other.id}/coc").get_data(
        as_text=True)


def test_audit_chain_intact(session, change):
    changes.send_pcns(session, ENGINEER, change)
    session.commit()
    assert audit.verify(session).ok
    assert cat.current_bom(session, cat.get_product(session, "P2")).revision == "A"
