"""Master data through the API: create, duplicate, get, list with cursors, change; every
change audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from mes.audit.models import AuditEvent
from mes.catalog.models import (
    Customer,
    Equipment,
    EquipmentStateChange,
    MaterialLot,
    ReasonCode,
    Route,
)
from tests.helpers import audit_codes, refused, row_counts


def _steps(*codes: str) -> list[dict]:
    return [{"code": c, "name": f"Step {c}", "kind": "assembly"} for c in codes]


ROUTE = {"code": "QFN-A", "name": "QFN automotive",
         "steps": [{"code": "DA", "name": "Die attach", "kind": "assembly",
                    "equipment_kind": "die-bonder", "materials": ["epoxy"]},
                   {"code": "FT-H", "name": "Final test hot", "kind": "test",
                    "min_yield": 97.5}]}
PRODUCT = {"code": "P-GD1", "name": "Gate driver", "package": "QFN32", "route": "QFN-A",
           "aec_grade": 1, "msl": "3"}
QUAL_PASS = {"grade": 1, "report": "QR-1",
             "tests": [{"test": "HTOL", "group": "B", "sample_size": 77, "lots": 3,
                        "fails": 0},
                       {"test": "TC", "group": "A", "sample_size": 77, "lots": 3,
                        "fails": 0, "preconditioned": True}]}

# (path, body of a new item, its code, model, subject type, fields of the answer)
KINDS = [
    ("/customers", {"code": "OEM1", "name": "OEM One", "automotive": True}, Customer,
     "customer", {"code", "name", "automotive", "created_at", "updated_at"}),
    ("/equipment", {"code": "DB-01", "kind": "die-bonder"}, Equipment, "equipment",
     {"code", "name", "kind", "state", "state_since"}),
    ("/reason-codes", {"code": "R-SCRATCH", "kind": "reject", "description": "Scratch"},
     ReasonCode, "reason_code", {"code", "kind", "description", "description_zh", "active"}),
    ("/material-lots", {"code": "EPX-0001", "material": "epoxy"}, MaterialLot,
     "material_lot", {"code", "material", "description", "expires_at", "expired",
                      "created_at"}),
]


@pytest.fixture
def eng(api):
    return api("engineer")


@pytest.fixture
def product(eng):
    assert eng.post("/routes", json=ROUTE).status_code == 201
    resp = eng.post("/products", json=PRODUCT)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


@pytest.mark.parametrize(("path", "body", "model", "subject", "fields"), KINDS,
                         ids=[k[0] for k in KINDS])
def test_create_answers_201_with_the_contract_fields(eng, session, path, body, model,
                                                     subject, fields):
    resp = eng.post(path, json=body)
    assert resp.status_code == 201, resp.get_json()
    answer = resp.get_json()
    assert set(answer) >= fields
    assert {k: answer[k] for k in body} == body
    assert session.scalar(select(model).where(model.code == body["code"])) is not None
    assert audit_codes(session, subject, body["code"]) == [f"{subject}:create"]


@pytest.mark.parametrize(("path", "body", "model", "subject", "fields"), KINDS,
                         ids=[k[0] for k in KINDS])
def test_create_of_existing_code_is_409_duplicate(eng, session, path, body, model, subject,
                                                  fields):
    assert eng.post(path, json=body).status_code == 201
    refused(session, lambda: eng.post(path, json=body), 409, "duplicate")


@pytest.mark.parametrize(("path", "body", "model", "subject", "fields"), KINDS,
                         ids=[k[0] for k in KINDS])
def test_get_answers_the_created_object(eng, api, path, body, model, subject, fields):
    created = eng.post(path, json=body).get_json()
    resp = api("operator").get(f"{path}/{body['code']}")
    assert resp.status_code == 200
    assert resp.get_json() == created


def _walk(caller, path: str) -> list[str]:
    codes, cursor, pages = [], None, 0
    while True:
        sep = "&" if "?" in path else "?"
        resp = caller.get(f"{path}{sep}limit=1" + (f"&cursor={cursor}" if cursor else ""))
        assert resp.status_code == 200, resp.get_json()
        page = resp.get_json()
        assert set(page) == {"items", "next"}
        assert len(page["items"]) <= 1
        codes += [item.get("code") or item.get("id") for item in page["items"]]
        pages += 1
        cursor = page["next"]
        if cursor is None:
            return codes
        assert pages < 50, "the cursor does not advance"


@pytest.mark.parametrize(("path", "body", "model", "subject", "fields"), KINDS,
                         ids=[k[0] for k in KINDS])
def test_list_pages_through_every_item_with_the_cursor(eng, path, body, model, subject,
                                                       fields):
    for suffix in ("C", "A", "B"):
        assert eng.post(path, json={**body, "code": body["code"] + suffix}).status_code == 201
    expected = sorted(body["code"] + s for s in "ABC")
    assert sorted(_walk(eng, path)) == expected
    assert eng.get(path).get_json() == {"items": eng.get(path).get_json()["items"],
                                        "next": None}


def test_routes_list_pages_through_current_versions(eng):
    for code in ("R2", "R1", "R3"):
        assert eng.post("/routes", json={**ROUTE, "code": code}).status_code == 201
    assert eng.post("/routes", json={**ROUTE, "code": "R1"}).status_code == 201
    assert _walk(eng, "/routes") == ["R1", "R2", "R3"]


def test_products_list_pages_through_every_product(eng, product):
    assert eng.post("/products", json={**PRODUCT, "code": "P-GD0"}).status_code == 201
    assert _walk(eng, "/products") == ["P-GD0", "P-GD1"]


@pytest.mark.parametrize("cursor", ["not-a-cursor", "LTU=", "%%%", "YWJj"])
def test_bad_cursor_is_422(eng, cursor):
    resp = eng.get(f"/customers?cursor={cursor}")
    assert resp.status_code == 422
    assert resp.get_json()["error"]["code"] == "invalid"
    assert "cursor" in resp.get_json()["error"]["fields"]


def test_list_is_empty_past_the_end(eng):
    assert eng.post("/customers", json={"code": "C1", "name": "One"}).status_code == 201
    first = eng.get("/customers?limit=1").get_json()
    assert first["next"] is None
    assert len(first["items"]) == 1


# --- changes ---------------------------------------------------------------------------

def test_patch_customer_changes_it_and_audits(eng, session):
    eng.post("/customers", json={"code": "OEM1", "name": "OEM One"})
    resp = eng.patch("/customers/OEM1", json={"name": "OEM One GmbH", "automotive": True})
    assert resp.status_code == 200
    assert resp.get_json()["name"] == "OEM One GmbH"
    assert resp.get_json()["automotive"] is True
    assert audit_codes(session, "customer", "OEM1") == ["customer:create", "customer:update"]


def test_patch_without_change_writes_no_audit_record(eng, session):
    eng.post("/customers", json={"code": "OEM1", "name": "OEM One"})
    before = row_counts(session, AuditEvent)
    assert eng.patch("/customers/OEM1", json={"name": "OEM One"}).status_code == 200
    assert row_counts(session, AuditEvent) == before


def test_patch_refused_for_a_role_without_master_write(eng, api, session):
    eng.post("/customers", json={"code": "OEM1", "name": "OEM One"})
    qa = api("qa")
    refused(session, lambda: qa.patch("/customers/OEM1", json={"name": "Renamed"}), 403,
            "forbidden")


def test_patch_reason_code_retires_it(eng, session):
    eng.post("/reason-codes", json={"code": "H-ENG", "kind": "hold", "description": "Eng"})
    resp = eng.patch("/reason-codes/H-ENG", json={"active": False})
    assert resp.status_code == 200
    assert resp.get_json()["active"] is False
    assert audit_codes(session, "reason_code", "H-ENG")[-1] == "reason_code:update"


def test_reason_code_kind_cannot_be_patched(eng, session):
    eng.post("/reason-codes", json={"code": "H-ENG", "kind": "hold", "description": "Eng"})
    refused(session, lambda: eng.patch("/reason-codes/H-ENG", json={"kind": "reject"}), 422,
            "invalid", "kind")


def test_patch_material_lot_expiry(eng, session):
    eng.post("/material-lots", json={"code": "EPX-1", "material": "epoxy"})
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    resp = eng.patch("/material-lots/EPX-1", json={"expires_at": past})
    assert resp.status_code == 200
    assert resp.get_json()["expired"] is True
    assert audit_codes(session, "material_lot", "EPX-1")[-1] == "material_lot:update"


# --- routes ----------------------------------------------------------------------------

def test_route_is_created_as_version_1_with_ordered_steps(eng, session):
    resp = eng.post("/routes", json=ROUTE)
    assert resp.status_code == 201
    route = resp.get_json()
    assert (route["code"], route["version"], route["name"]) == ("QFN-A", 1, "QFN automotive")
    assert [(s["seq"], s["code"], s["kind"]) for s in route["steps"]] == [
        (1, "DA", "assembly"), (2, "FT-H", "test")]
    assert route["steps"][0]["materials"] == ["epoxy"]
    assert route["steps"][1]["min_yield"] == 97.5
    assert audit_codes(session, "route", "QFN-A") == ["route:create"]


def test_posting_an_existing_route_code_makes_version_2(eng, session):
    eng.post("/routes", json=ROUTE)
    resp = eng.post("/routes", json={**ROUTE, "name": "QFN automotive v2",
                                     "steps": _steps("DA", "WB", "MOLD")})
    assert resp.status_code == 201
    assert resp.get_json()["version"] == 2
    newest = eng.get("/routes/QFN-A").get_json()
    assert newest["version"] == 2
    assert [s["code"] for s in newest["steps"]] == ["DA", "WB", "MOLD"]
    older = eng.get("/routes/QFN-A?version=1").get_json()
    assert older["version"] == 1
    assert [s["code"] for s in older["steps"]] == ["DA", "FT-H"]
    assert audit_codes(session, "route", "QFN-A") == ["route:create", "route:create"]
    assert session.scalar(select(Route.id).where(Route.code == "QFN-A",
                                                 Route.version == 1)) is not None


def test_unknown_route_version_is_404(eng):
    eng.post("/routes", json=ROUTE)
    assert eng.get("/routes/QFN-A?version=3").status_code == 404
    assert eng.get("/routes/NOPE").status_code == 404


def test_route_with_duplicate_step_codes_is_422(eng, session):
    refused(session, lambda: eng.post("/routes", json={**ROUTE, "steps": _steps("DA", "DA")}),
            422, "invalid", "steps")


def test_route_without_steps_is_422(eng, session):
    refused(session, lambda: eng.post("/routes", json={**ROUTE, "steps": []}), 422, "invalid",
            "steps")


# --- products and qualifications -------------------------------------------------------

def test_product_answers_the_contract_fields(product, session):
    assert product == {**product, **PRODUCT, "customer": None, "qualified": False}
    assert audit_codes(session, "product", "P-GD1") == ["product:create"]


def test_product_with_a_customer(eng):
    eng.post("/routes", json=ROUTE)
    eng.post("/customers", json={"code": "OEM1", "name": "OEM One", "automotive": True})
    resp = eng.post("/products", json={**PRODUCT, "customer": "OEM1"})
    assert resp.status_code == 201
    assert resp.get_json()["customer"] == "OEM1"


def test_product_is_qualified_after_a_passing_qualification(eng, product, session):
    assert eng.get("/products/P-GD1").get_json()["qualified"] is False
    resp = eng.post("/products/P-GD1/qualifications", json=QUAL_PASS)
    assert resp.status_code == 201
    qual = resp.get_json()
    assert qual["status"] == "passed"
    assert isinstance(qual["id"], int)
    assert (qual["product"], qual["standard"], qual["grade"]) == ("P-GD1", "AEC-Q100", 1)
    assert [t["test"] for t in qual["tests"]] == ["HTOL", "TC"]
    assert eng.get("/products/P-GD1").get_json()["qualified"] is True
    assert audit_codes(session, "product", "P-GD1")[-1] == "product:qualification"


def test_qualification_with_a_fail_is_failed_and_unqualifies(eng, product):
    eng.post("/products/P-GD1/qualifications", json=QUAL_PASS)
    failing = {**QUAL_PASS, "tests": [{**QUAL_PASS["tests"][0], "fails": 1}]}
    resp = eng.post("/products/P-GD1/qualifications", json=failing)
    assert resp.status_code == 201
    assert resp.get_json()["status"] == "failed"
    assert eng.get("/products/P-GD1").get_json()["qualified"] is False
    listed = eng.get("/products/P-GD1/qualifications").get_json()["items"]
    assert [q["status"] for q in listed] == ["passed", "failed"]


def test_qualification_of_unknown_product_is_404(eng, session):
    refused(session, lambda: eng.post("/products/NOPE/qualifications", json=QUAL_PASS), 404,
            "not_found")


def test_qualification_refused_without_limits_write(api, eng, product, session):
    planner = api("planner")
    refused(session, lambda: planner.post("/products/P-GD1/qualifications", json=QUAL_PASS),
            403, "forbidden")


def test_patch_product_route_must_exist(eng, product, session):
    error = refused(session, lambda: eng.patch("/products/P-GD1", json={"route": "NOPE"}), 422,
                    "invalid")
    assert list(error["fields"]) == ["route"]


def test_patch_product_changes_it_and_audits(eng, product, session):
    resp = eng.patch("/products/P-GD1", json={"msl": "2a", "aec_grade": 0})
    assert resp.status_code == 200
    assert (resp.get_json()["msl"], resp.get_json()["aec_grade"]) == ("2a", 0)
    assert audit_codes(session, "product", "P-GD1")[-1] == "product:update"


# --- equipment -------------------------------------------------------------------------

def test_new_equipment_starts_in_standby_with_a_state_record(eng, session):
    answer = eng.post("/equipment", json={"code": "DB-01", "kind": "die-bonder"}).get_json()
    assert answer["state"] == "standby"
    changes = session.scalars(select(EquipmentStateChange)).all()
    assert [(c.from_state, c.to_state) for c in changes] == [(None, "standby")]


def test_equipment_state_change_is_recorded_with_its_time(eng, api, session):
    eng.post("/equipment", json={"code": "DB-01", "kind": "die-bonder"})
    operator = api("operator")
    start = datetime.now(UTC)
    resp = operator.patch("/equipment/DB-01", json={"state": "non_scheduled",
                                                    "comment": "no shift"})
    assert resp.status_code == 200
    assert resp.get_json()["state"] == "non_scheduled"
    equipment = session.scalars(select(Equipment).where(Equipment.code == "DB-01")).one()
    change = session.scalars(select(EquipmentStateChange)
                             .where(EquipmentStateChange.equipment_id == equipment.id)
                             .order_by(EquipmentStateChange.id.desc())).first()
    assert (change.from_state, change.to_state) == ("standby", "non_scheduled")
    assert change.by == operator.user.username and change.comment == "no shift"
    assert change.at.tzinfo is not None and change.at >= start - timedelta(seconds=1)
    assert equipment.state_since == change.at
    assert datetime.fromisoformat(resp.get_json()["state_since"]) == change.at
    assert audit_codes(session, "equipment", "DB-01") == ["equipment:create", "equipment:state"]


def test_equipment_patch_to_the_same_state_records_nothing(eng, session):
    eng.post("/equipment", json={"code": "DB-01", "kind": "die-bonder"})
    before = row_counts(session, EquipmentStateChange, AuditEvent)
    assert eng.patch("/equipment/DB-01", json={"state": "standby"}).status_code == 200
    assert row_counts(session, EquipmentStateChange, AuditEvent) == before


def test_equipment_patch_with_unknown_state_is_422(eng, session):
    eng.post("/equipment", json={"code": "DB-01", "kind": "die-bonder"})
    refused(session, lambda: eng.patch("/equipment/DB-01", json={"state": "broken"}), 422,
            "invalid", "state")


def test_operator_may_change_equipment_state_but_not_its_name(eng, api, session):
    eng.post("/equipment", json={"code": "DB-01", "kind": "die-bonder", "name": "Bonder 1"})
    operator = api("operator")
    refused(session, lambda: operator.patch("/equipment/DB-01", json={"name": "Mine now"}),
            403, "forbidden")


def test_equipment_list_filters_by_kind_and_state(eng):
    eng.post("/equipment", json={"code": "DB-01", "kind": "die-bonder"})
    eng.post("/equipment", json={"code": "WB-01", "kind": "wire-bonder",
                                 "state": "productive"})
    assert [e["code"] for e in eng.get("/equipment?kind=wire-bonder").get_json()["items"]] \
        == ["WB-01"]
    assert [e["code"] for e in eng.get("/equipment?state=standby").get_json()["items"]] \
        == ["DB-01"]


# --- reason codes and material lots ----------------------------------------------------

def test_reason_codes_are_filtered_by_kind(eng):
    for code, kind in (("R-CRACK", "reject"), ("H-ENG", "hold"), ("S-DROP", "scrap"),
                       ("R-VOID", "reject")):
        eng.post("/reason-codes", json={"code": code, "kind": kind, "description": code})
    rejects = eng.get("/reason-codes?kind=reject").get_json()["items"]
    assert [r["code"] for r in rejects] == ["R-CRACK", "R-VOID"]
    assert [r["code"] for r in eng.get("/reason-codes?kind=hold").get_json()["items"]] == \
        ["H-ENG"]
    assert eng.get("/reason-codes?kind=bogus").status_code == 422


def test_material_lot_expired_flag(eng):
    now = datetime.now(UTC)
    eng.post("/material-lots", json={"code": "WIRE-OLD", "material": "wire",
                                     "expires_at": (now - timedelta(hours=1)).isoformat()})
    eng.post("/material-lots", json={"code": "WIRE-NEW", "material": "wire",
                                     "expires_at": (now + timedelta(days=30)).isoformat()})
    eng.post("/material-lots", json={"code": "EPX-1", "material": "epoxy"})
    assert eng.get("/material-lots/WIRE-OLD").get_json()["expired"] is True
    assert eng.get("/material-lots/WIRE-NEW").get_json()["expired"] is False
    assert eng.get("/material-lots/EPX-1").get_json()["expired"] is False
    wires = eng.get("/material-lots?material=wire").get_json()["items"]
    assert [m["code"] for m in wires] == ["WIRE-NEW", "WIRE-OLD"]


def test_material_lot_expiry_without_time_zone_is_422(eng, session):
    no_zone = {"code": "EPX-1", "material": "epoxy", "expires_at": "2030-01-01T00:00:00"}
    refused(session, lambda: eng.post("/material-lots", json=no_zone), 422, "invalid",
            "expires_at")


def test_times_are_iso_8601_with_utc_offset(eng):
    answer = eng.post("/customers", json={"code": "C1", "name": "One"}).get_json()
    assert datetime.fromisoformat(answer["created_at"]).utcoffset() == timedelta(0)
