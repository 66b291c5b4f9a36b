"""The report endpoints: the contract's shape, CSV, permissions and the customer scope."""

from __future__ import annotations

import csv
import io

import pytest

from tests.reports.helpers import END, START

RANGE = f"from={START.isoformat()}&to={END.isoformat()}"
PATHS = ["/reports/wip", "/reports/wip/late", "/reports/yield", "/reports/yield/trend",
         "/reports/yield/final-test",
         "/reports/rejects", "/reports/cycle-time", "/reports/cycle-time/lots",
         "/reports/holds", "/reports/holds/dispositions", "/reports/equipment",
         "/reports/delivery"]


@pytest.mark.parametrize("path", PATHS)
def test_every_report_answers_rows_from_and_to(api, history, path):
    resp = api("engineer").get(f"{path}?{RANGE}")
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["from"] == "2026-03-02" and body["to"] == "2026-03-15"
    assert isinstance(body["rows"], list) and body["rows"]


def test_contract_fields_of_each_report(api, history):
    caller = api("qa")
    fields = {
        "/reports/wip": {"step", "lots", "quantity", "on_hold", "oldest_at_step"},
        "/reports/yield": {"step", "product", "quantity_in", "good", "rejected", "yield"},
        "/reports/rejects": {"reason", "step", "quantity"},
        "/reports/cycle-time": {"step", "lots", "queue_median_h", "queue_p90_h",
                                "process_median_h", "process_p90_h"},
        "/reports/holds": {"bucket", "reason", "source", "count"},
        "/reports/equipment": {"equipment", "kind", "productive_h", "standby_h",
                               "engineering_h", "scheduled_down_h", "unscheduled_down_h",
                               "non_scheduled_h"},
        "/reports/delivery": {"customer", "week", "shipments", "lots", "quantity", "on_time"},
    }
    for path, names in fields.items():
        row = caller.get(f"{path}?{RANGE}").get_json()["rows"][0]
        assert names <= set(row), path


def test_yield_over_the_api_is_the_hand_computed_figure(api, history):
    rows = api("planner").get(f"/reports/yield?{RANGE}&step=FT&product=P1").get_json()["rows"]
    # A 92→90 and B 180→170: 260 / 272.
    assert rows == [{"step": "FT", "product": "P1", "runs": 2, "quantity_in": 272,
                     "good": 260, "rejected": 12, "yield": 95.59, "tested_units": 272,
                     "first_pass_yield": 90.07, "final_yield": 95.59}]


def test_csv_answers_the_same_rows(api, history):
    caller = api("admin")
    rows = caller.get(f"/reports/rejects?{RANGE}").get_json()["rows"]
    resp = caller.get(f"/reports/rejects?{RANGE}&format=csv")
    assert resp.status_code == 200
    assert resp.mimetype == "text/csv"
    assert "rejects_2026-03-02_2026-03-15.csv" in resp.headers["Content-Disposition"]
    parsed = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    assert [(r["reason"], r["step"], int(r["quantity"]), r["kind"]) for r in parsed] == [
        (r["reason"], r["step"], r["quantity"], r["kind"]) for r in rows]
    assert [int(r["quantity"]) for r in parsed] == [25, 18, 4, 3]


def test_customer_gets_only_their_own_lots(api, history):
    caller = api("customer", customer="OEM")
    rejects = caller.get(f"/reports/rejects?{RANGE}").get_json()["rows"]
    # Without IND's lot C (R-OPEN 10 at FT).
    assert [(r["reason"], r["step"], r["quantity"]) for r in rejects] == [
        ("R-CHIP", "SAW", 25), ("R-OPEN", "FT", 8), ("R-CHIP", "FT", 4), ("S-DMG", "FT", 3)]
    delivery = caller.get(f"/reports/delivery?{RANGE}").get_json()["rows"]
    assert {r["customer"] for r in delivery} == {"OEM"}
    wip = caller.get("/reports/wip").get_json()["rows"]
    assert [(r["step"], r["quantity"]) for r in wip] == [("SAW", 300), ("FT", 80)]


@pytest.mark.parametrize("path", [p for p in PATHS if p != "/reports/equipment"])
def test_customer_naming_another_customer_gets_nothing(api, history, path):
    resp = api("customer", customer="OEM").get(f"{path}?{RANGE}&customer=IND")
    assert resp.status_code == 200
    assert resp.get_json()["rows"] == []
    csv_lines = api("customer", customer="OEM").get(
        f"{path}?{RANGE}&customer=IND&format=csv").get_data(as_text=True).splitlines()
    assert len(csv_lines) == 1  # the header alone


def test_equipment_report_is_refused_to_customers(api, history):
    resp = api("customer", customer="OEM").get(f"/reports/equipment?{RANGE}")
    assert resp.status_code == 403
    assert resp.get_json()["error"]["code"] == "forbidden"


def test_operators_have_no_reports(api, history):
    resp = api("operator").get(f"/reports/wip?{RANGE}")
    assert resp.status_code == 403


def test_bad_ranges_and_arguments_are_422(api, history):
    caller = api("engineer")
    resp = caller.get("/reports/yield?from=2026-03-10&to=2026-03-01")
    assert resp.status_code == 422
    assert "from" in resp.get_json()["error"]["fields"]
    assert caller.get("/reports/yield?from=yesterday").status_code == 422
    assert caller.get("/reports/yield?format=xml").status_code == 422
    assert caller.get("/reports/wip?by=tool").status_code == 422
    assert caller.get("/reports/wip/late?limit=0").status_code == 422
    # Dates whose range or default start would leave the calendar.
    assert caller.get("/reports/yield/trend?to=0001-01-01").status_code == 422
    assert caller.get("/reports/wip?to=9999-12-31").status_code == 422


def test_reports_are_in_the_openapi_document(api, client):
    doc = client.get("/api/v1/openapi.json").get_json()
    assert "/api/v1/reports/cycle-time" in doc["paths"]
    op = doc["paths"]["/api/v1/reports/wip"]["get"]
    assert "text/csv" in op["responses"]["200"]["content"]
