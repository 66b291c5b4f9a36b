"""Bills of materials and time-limited material lots through the API (API.md "Bills of
materials and materials"): each refusal changes nothing."""

from __future__ import annotations

import pytest

from mes.floor import services
from tests.floor.helpers import advance
from tests.helpers import audit_codes, refused

pytestmark = pytest.mark.usefixtures("plant")

BOM = {"revision": "A", "items": [
    {"step": "WB", "material": "wire", "part_numbers": ["AU-0.8MIL"], "qty_per_unit": 0.02}]}


def test_post_and_get_bom_revisions(api, session):
    eng = api("engineer")
    resp = eng.post("/products/P1/bom", json=BOM)
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert (body["product"], body["revision"]) == ("P1", "A")
    assert body["items"] == [{"step": "WB", "material": "wire", "part_numbers": ["AU-0.8MIL"],
                              "qty_per_unit": 0.02}]
    assert eng.post("/products/P1/bom", json={**BOM, "revision": "B"}).status_code == 201
    assert eng.get("/products/P1/bom").get_json()["revision"] == "B"
    assert eng.get("/products/P1/bom?revision=A").get_json()["revision"] == "A"
    assert eng.get("/products/P1/bom?revision=Z").status_code == 404
    assert audit_codes(session, "product", "P1").count("bom:create") == 2


@pytest.mark.parametrize("body, status, code", [
    (BOM, 409, "duplicate"),
    ({"revision": "B", "items": [{**BOM["items"][0], "step": "NOPE"}]}, 422, "invalid"),
    ({"revision": "B", "items": []}, 422, "invalid"),
    ({"revision": "B", "items": [{**BOM["items"][0], "part_numbers": []}]}, 422, "invalid"),
])
def test_bad_bom_is_refused(api, session, body, status, code):
    eng = api("engineer")
    assert eng.post("/products/P1/bom", json=BOM).status_code == 201
    refused(session, lambda: eng.post("/products/P1/bom", json=body), status, code)


def test_operators_cannot_write_boms(api, session):
    op = api("operator")
    refused(session, lambda: op.post("/products/P1/bom", json=BOM), 403, "forbidden")


def test_lot_carries_its_bom_revision_and_track_in_names_the_allowed_part_numbers(
        api, session):
    eng, op = api("engineer"), api("operator")
    assert eng.post("/products/P1/bom", json=BOM).status_code == 201
    resp = api("planner").post("/lots", json={"product": "P1", "customer": "OEM",
                                             "quantity": 100, "fab_lot": "F1",
                                             "lot_no": "LOT-A"})
    assert resp.status_code == 201 and resp.get_json()["bom_revision"] == "A"
    for code, part in (("CU-9", "CU-0.8MIL"), ("AU-9", "AU-0.8MIL")):
        resp = eng.post("/material-lots", json={"code": code, "material": "wire",
                                                "part_number": part})
        assert resp.status_code == 201 and resp.get_json()["part_number"] == part
    lot = services.get_lot(session, "LOT-A")
    advance(session, lot)
    err = refused(session, lambda: op.post("/lots/LOT-A/track-in", json={
        "step": "WB", "equipment": "WB-1", "materials": ["CU-9"]}), 409, "wrong_material",
        "materials")
    assert "AU-0.8MIL" in err["message"]
    refused(session, lambda: op.post("/lots/LOT-A/track-in", json={
        "step": "WB", "equipment": "WB-1", "materials": []}), 409, "material_required",
        "materials")
    resp = op.post("/lots/LOT-A/track-in", json={"step": "WB", "equipment": "WB-1",
                                                 "materials": ["AU-9"]})
    assert resp.status_code == 200 and resp.get_json()["state"] == "running"


def test_thaw_and_open_start_the_clocks(api, session):
    eng, op = api("engineer"), api("operator")
    assert eng.post("/material-lots", json={"code": "EPX-F", "material": "epoxy",
                                            "part_number": "EPX-AG8200", "thaw_minutes": 60,
                                            "work_life_hours": 24}).status_code == 201
    refused(session, lambda: op.post("/material-lots/EPX-F/open", json={}), 409,
            "material_not_ready")
    resp = op.post("/material-lots/EPX-F/thaw", json={})
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["ready_at"] is not None and body["thawing_since"] is not None
    refused(session, lambda: op.post("/material-lots/EPX-F/thaw", json={}), 409, "conflict")
    refused(session, lambda: op.post("/material-lots/AU-1/thaw", json={}), 422, "invalid")
    assert op.post("/material-lots/NOPE/thaw", json={}).status_code == 404
    assert audit_codes(session, "material_lot", "EPX-F") == ["material_lot:create",
                                                             "material_lot:thaw"]


def test_material_lot_time_limits_are_validated(api, session):
    eng = api("engineer")
    refused(session, lambda: eng.post("/material-lots", json={
        "code": "X-1", "material": "epoxy", "thaw_minutes": 0}), 422, "invalid")
    refused(session, lambda: eng.post("/material-lots", json={
        "code": "X-1", "material": "epoxy", "part_number": "bad part"}), 422, "invalid")
