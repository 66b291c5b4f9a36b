"""The test-data API: the contract's shapes and status codes, who may do what, customers
seeing only their own lots' runs, and nothing changed when a request is refused."""

from __future__ import annotations

import pytest

from mes.testfloor import services
from tests.helpers import refused
from tests.testfloor.helpers import lot_at_final_test, lot_file, receive_lot

pytestmark = pytest.mark.usefixtures("plant")

OCTET = {"Content-Type": "application/octet-stream"}
RUN_FIELDS = {"id", "lot_no", "step", "stdf_lot_id", "sublot_id", "part_type", "test_code",
              "temperature", "job", "parts_tested", "units", "first_pass_good", "final_good",
              "first_pass_yield", "final_yield", "hard_bins", "soft_bins", "pat", "sba",
              "created_at", "insertion", "pass"}
PLANT_ONLY = {"warnings", "tester", "handler", "load_board", "probe_card", "sha256",
              "created_by", "final_bins", "failing_bins"}
BINS = [{"bin": 1, "count": 95, "pass": True}, {"bin": 8, "count": 5, "pass": False}]


@pytest.fixture
def ft_lot(session):
    return lot_at_final_test(session, "LOT-FT")


def post_file(caller, data: bytes, lot_no: str = "LOT-FT"):
    return caller.post(f"/lots/{lot_no}/stdf", data=data, headers=OCTET)


# --- import and read -------------------------------------------------------------------

def test_import_answers_201_with_the_contracts_test_run(api, ft_lot):
    op = api("operator")
    resp = post_file(op, lot_file(40, 2))
    assert resp.status_code == 201, resp.get_json()
    run = resp.get_json()
    assert set(run) >= RUN_FIELDS | PLANT_ONLY
    assert (run["lot_no"], run["step"], run["parts_tested"], run["final_yield"],
            run["hard_bins"], run["soft_bins"], run["stdf_lot_id"], run["temperature"]) == (
        "LOT-FT", "FT", 42, 95.24, {"1": 40, "8": 2}, {"1": 40, "8": 2}, "FT-LOT", "125")
    # The run's insertion and pass; SBA judges the insertion when it closes.
    assert (run["pass"], run["sba"]) == ("P1", {"insertion": run["insertion"]})
    assert run["pat"]["per_test"]["100"]["name"] == "vout"
    assert run["created_by"] == op.user.username
    assert run["created_at"].endswith("+00:00")


def test_test_runs_are_read_by_lot_oldest_first_and_one_by_one(api, ft_lot):
    op, qa = api("operator"), api("qa")
    first = post_file(op, lot_file(40, 2)).get_json()
    second = op.post("/lots/LOT-FT/bins", json={"step": "FT", "bins": BINS,
                                                "pass": "resume"}).get_json()
    listed = qa.get("/lots/LOT-FT/test-runs").get_json()
    assert [r["id"] for r in listed["items"]] == [first["id"], second["id"]]
    assert listed["next"] is None
    page = qa.get("/lots/LOT-FT/test-runs?limit=1").get_json()
    assert [r["id"] for r in page["items"]] == [first["id"]]
    rest = qa.get(f"/lots/LOT-FT/test-runs?limit=1&cursor={page['next']}").get_json()
    assert [r["id"] for r in rest["items"]] == [second["id"]]
    one = qa.get(f"/test-runs/{first['id']}")
    assert one.status_code == 200
    assert one.get_json() == first


def test_unknown_test_run_and_unknown_lot_are_404(api):
    qa = api("qa")
    assert qa.get("/test-runs/987654").status_code == 404
    assert qa.get("/lots/NOPE/test-runs").get_json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("role", ["qa", "planner", "customer"])
def test_roles_without_test_write_cannot_import(api, ft_lot, session, role):
    caller = api(role, customer="OEM") if role == "customer" else api(role)
    refused(session, lambda: post_file(caller, lot_file(3)), 403, "forbidden")
    refused(session, lambda: caller.post("/lots/LOT-FT/bins", json={"bins": BINS}),
            403, "forbidden")


@pytest.mark.parametrize("role", ["engineer", "admin"])
def test_engineers_and_admins_import_too(api, ft_lot, role):
    assert post_file(api(role), lot_file(3)).status_code == 201


def test_refused_import_through_the_api_stores_nothing(api, ft_lot, session):
    op = api("operator")
    data = lot_file(3)
    assert post_file(op, data).status_code == 201
    refused(session, lambda: post_file(op, data), 409, "duplicate")
    error = refused(session, lambda: post_file(op, data[:-3]), 422, "invalid_stdf", "file")
    assert "byte" in error["message"]
    refused(session, lambda: op.post("/lots/LOT-FT/stdf?step=bad code", data=data,
                                     headers=OCTET), 422, "invalid", "step")


# --- customers -------------------------------------------------------------------------

def test_customer_sees_their_own_lots_runs_with_the_contracts_fields(api, ft_lot):
    post_file(api("operator"), lot_file(40, 2))
    customer = api("customer", customer="OEM")
    resp = customer.get("/lots/LOT-FT/test-runs")
    assert resp.status_code == 200
    (run,) = resp.get_json()["items"]
    assert set(run) >= RUN_FIELDS
    assert not PLANT_ONLY & set(run)
    # The SBA history names lots, possibly other customers'.
    assert "lots" not in run["sba"]
    assert (run["pass"], run["sba"]) == ("P1", {"insertion": run["insertion"]})


def test_customer_gets_404_for_another_customers_lot_and_403_for_a_run_by_id(api, ft_lot):
    run = post_file(api("operator"), lot_file(3)).get_json()
    other = api("customer", customer="IND")
    resp = other.get("/lots/LOT-FT/test-runs")
    assert (resp.status_code, resp.get_json()["error"]["code"]) == (404, "not_found")
    owner = api("customer", customer="OEM")
    for caller in (owner, other):
        resp = caller.get(f"/test-runs/{run['id']}")
        assert (resp.status_code, resp.get_json()["error"]["code"]) == (403, "forbidden")
    assert owner.get("/products/P1/pat-limits").status_code == 403


# --- bin summaries ---------------------------------------------------------------------

def test_bin_summary_answers_201_with_a_test_run(api, ft_lot):
    resp = api("operator").post("/lots/LOT-FT/bins", json={"step": "FT", "bins": BINS})
    assert resp.status_code == 201, resp.get_json()
    run = resp.get_json()
    assert (run["source"], run["parts_tested"], run["units"], run["first_pass_good"],
            run["final_good"], run["final_yield"], run["hard_bins"], run["pat"]["mode"],
            run["sha256"], run["stdf_lot_id"]) == (
        "bins", 100, 100, 95, 95, 95.0, {"1": 95, "8": 5}, "none", None, None)


@pytest.mark.parametrize(("body", "field"), [
    ({"step": "FT"}, "bins"),
    ({"step": "FT", "bins": []}, "bins"),
    ({"step": "FT", "bins": [{"bin": 1, "count": 5}]}, "bins"),
    ({"step": "FT", "bins": [{"bin": 1, "count": -5, "pass": True}]}, "bins"),
    ({"step": "FT", "bins": [{"bin": 70000, "count": 5, "pass": True}]}, "bins"),
    ({"step": "FT", "bins": [{"bin": 1, "count": 5, "pass": True},
                             {"bin": 1, "count": 5, "pass": False}]}, "bins"),
    ({"step": "FT", "bins": [{"bin": 1, "count": 0, "pass": True}]}, "bins"),
    ({"step": "", "bins": BINS}, "step"),
])
def test_invalid_bin_summaries_are_refused(api, ft_lot, session, body, field):
    op = api("operator")
    refused(session, lambda: op.post("/lots/LOT-FT/bins", json=body), 422, "invalid", field)


def test_bin_summary_body_must_be_json(api, ft_lot, session):
    op = api("operator")
    refused(session, lambda: op.post("/lots/LOT-FT/bins", data="bins", headers=OCTET), 400,
            "bad_request")


def test_bin_summary_at_a_step_the_lot_is_not_at_is_refused(api, session):
    receive_lot(session, "LOT-SAW", 100)
    op = api("operator")
    refused(session, lambda: op.post("/lots/LOT-SAW/bins", json={"step": "FT", "bins": BINS}),
            409, "wrong_step")
    refused(session, lambda: op.post("/lots/LOT-SAW/bins", json={"bins": BINS}),
            409, "wrong_step")


def test_sba_hold_from_a_bin_summary_is_a_hold_of_source_sba(api, session):
    op = api("operator")
    for j, good in enumerate([95, 96, 94, 95, 96, 95]):
        lot_at_final_test(session, f"H{j}", 100)
        assert op.post(f"/lots/H{j}/bins", json={"bins": [
            {"bin": 1, "count": good, "pass": True},
            {"bin": 8, "count": 100 - good, "pass": False}]}).status_code == 201
        assert op.post(f"/lots/H{j}/insertions/FT/close", json={}).status_code == 200
    lot_at_final_test(session, "LOT-LOW", 100)
    run = op.post("/lots/LOT-LOW/bins", json={"bins": [
        {"bin": 1, "count": 50, "pass": True}, {"bin": 8, "count": 50, "pass": False}]})
    assert run.status_code == 201
    # SBA judges the insertion when it closes.
    sba = op.post("/lots/LOT-LOW/insertions/FT/close", json={}).get_json()["sba"]
    assert (sba["status"], sba["mrb"]) == ("level2", True)
    hold = api("qa").get(f"/holds/{sba['hold']}").get_json()
    assert (hold["lot_no"], hold["source"], hold["status"], hold["placed_by"]) == (
        "LOT-LOW", "sba", "open", "system")
    lot = op.get("/lots/LOT-LOW").get_json()
    assert (lot["on_hold"], lot["holds"]) == (True, [sba["hold"]])


# --- PAT limits ------------------------------------------------------------------------

@pytest.fixture
def pat_history(session):
    """Six lots at FT, each with a file of 35 passing parts."""
    for j in range(6):
        lot = lot_at_final_test(session, f"H{j}", 100)
        services.import_stdf(session, "op", lot, lot_file(35, salt=f"h{j}"))
    session.commit()


def test_engineer_computes_and_lists_static_pat_limits(api, pat_history):
    eng = api("engineer")
    resp = eng.post("/products/P1/pat-limits", json={"step": "FT", "valid_days": 90})
    assert resp.status_code == 201, resp.get_json()
    made = resp.get_json()
    assert made["skipped"] == []
    sets = {s["test_num"]: s for s in made["limit_sets"]}
    assert set(sets) == {100, 200}
    vout_set = sets[100]
    assert (vout_set["product"], vout_set["step"], vout_set["test_name"], vout_set["n"],
            vout_set["lots"], vout_set["k"], vout_set["active"], vout_set["spec_lo"],
            vout_set["spec_hi"]) == ("P1", "FT", "vout", 210, 6, 6, True, 1.0, 2.0)
    assert vout_set["median"] == 1.5  # the spread of vout() is symmetric about 1.5 V
    assert vout_set["source_lots"] == [f"H{j}" for j in range(6)]
    listed = api("qa").get("/products/P1/pat-limits?step=FT&test=100").get_json()["items"]
    assert [s["id"] for s in listed] == [vout_set["id"]]
    again = eng.post("/products/P1/pat-limits", json={"step": "FT", "tests": [100]})
    assert again.status_code == 201
    active = eng.get("/products/P1/pat-limits?test=100&active=true").get_json()["items"]
    assert [s["id"] for s in active] == [again.get_json()["limit_sets"][0]["id"]]
    retired = eng.get("/products/P1/pat-limits?test=100&active=false").get_json()["items"]
    assert [s["id"] for s in retired] == [vout_set["id"]]


def test_pat_limits_refusals(api, pat_history, session):
    eng = api("engineer")
    refused(session, lambda: eng.post("/products/P1/pat-limits",
                                      json={"step": "FT", "tests": [999]}),
            409, "insufficient_history")
    refused(session, lambda: eng.post("/products/P1/pat-limits", json={"step": "SAW"}),
            422, "invalid", "step")
    refused(session, lambda: eng.post("/products/P1/pat-limits", json={}), 422, "invalid",
            "step")
    refused(session, lambda: eng.post("/products/P1/pat-limits",
                                      json={"step": "FT", "valid_days": 0}),
            422, "invalid", "valid_days")
    refused(session, lambda: eng.post("/products/NOPE/pat-limits", json={"step": "FT"}),
            404, "not_found")
    refused(session, lambda: eng.post("/products/P2/pat-limits", json={"step": "FT"}),
            409, "insufficient_history")
    op = api("operator")
    refused(session, lambda: op.post("/products/P1/pat-limits", json={"step": "FT"}),
            403, "forbidden")


# --- the OpenAPI document --------------------------------------------------------------

def test_openapi_describes_the_stdf_upload_as_a_file(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    upload = doc["paths"]["/api/v1/lots/{lot_no}/stdf"]["post"]
    assert set(upload["requestBody"]["content"]) == {"application/octet-stream",
                                                     "multipart/form-data"}
    assert {"201", "409", "422"} <= set(upload["responses"])
    assert "duplicate" in upload["responses"]["409"]["description"]
    assert "/api/v1/test-runs/{run_id}" in doc["paths"]
