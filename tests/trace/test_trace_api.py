"""The trace endpoints: the shapes of API.md ("Traceability"), every depth through splits
and merges, each criterion, and customer isolation."""

from __future__ import annotations

from datetime import timedelta

from mes.db import utcnow

BACKWARD_KEYS = {"lot", "ancestors", "fab_lots", "wafers", "material_lots", "equipment",
                 "steps", "test_runs", "holds"}
STEP_KEYS = {"lot_no", "step", "equipment", "operator", "started_at", "finished_at",
             "good_qty", "rejects"}
FORWARD_KEYS = {"lot", "descendants", "shipments", "customers"}
SHIPMENT_KEYS = {"id", "customer", "po", "vehicle_program", "shipped_at", "lots"}


def test_backward_trace_has_the_contract_shape_and_reaches_every_ancestor(api, tree):
    resp = api("qa").get("/lots/M.01/trace?direction=backward")
    assert resp.status_code == 200
    body = resp.get_json()
    assert set(body) >= BACKWARD_KEYS
    assert body["lot"]["lot_no"] == "M.01"
    # Depth 4 through a split after a merge after a split: M.01 <- M <- R.01.01 <- R.01 <- R.
    assert sorted(body["ancestors"]) == ["M", "R", "R.01", "R.01.01", "R.02"]
    assert body["fab_lots"] == ["FAB1", "FX"]
    assert {(w["fab_lot"], w["wafer_id"]) for w in body["wafers"]} == {("FAB1", "W1"),
                                                                       ("FAB1", "W2")}
    assert [m["code"] for m in body["material_lots"]] == ["AU-1"]
    assert {e["code"] for e in body["equipment"]} == {"SAW-1", "WB-1", "TST-1", "TR-1"}
    for step in body["steps"]:
        assert set(step) >= STEP_KEYS
    assert {(s["lot_no"], s["step"]) for s in body["steps"]} >= {
        ("R", "SAW"), ("M", "SAW"), ("M", "WB"), ("M.01", "FT"), ("M.01", "PACK")}
    # M.01's bin summary at FT, which its track-out there needed.
    assert [r["final_good"] for r in body["test_runs"]] == [50] and body["holds"] == []
    assert [q["status"] for q in body["qualifications"]] == ["passed"]


def test_backward_is_the_default_direction(api, tree):
    caller = api("operator")
    assert caller.get("/lots/M.01/trace").get_json() == \
        caller.get("/lots/M.01/trace?direction=backward").get_json()


def test_backward_lists_holds_test_runs_and_rejects_of_ancestors(api, tree, session):
    from tests.floor.helpers import hold
    hold(session, tree["lots"]["R"])
    qa = api("qa")
    body = qa.get("/lots/M.01/trace").get_json()
    assert [(h["lot_no"], h["status"]) for h in body["holds"]] == [("R", "open")]
    resp = qa.get("/lots/M.01/trace?direction=sideways")
    assert resp.status_code == 422


def test_forward_trace_has_the_contract_shape_and_reaches_every_descendant(api, tree):
    body = api("planner").get("/lots/R/trace?direction=forward").get_json()
    assert set(body) == FORWARD_KEYS
    assert body["lot"]["lot_no"] == "R"
    found = {d["lot_no"]: d for d in body["descendants"]}
    assert sorted(found) == ["M", "M.01", "R.01", "R.01.01", "R.02"]
    for entry in found.values():
        assert {"lot_no", "state", "step", "on_hold"} <= set(entry)
    assert found["M.01"]["state"] == "shipped" and found["R.02"]["state"] == "merged"
    [shipment] = body["shipments"]
    assert set(shipment) >= SHIPMENT_KEYS
    assert shipment["id"] == tree["shipment"].id
    assert (shipment["customer"], shipment["po"], shipment["vehicle_program"],
            shipment["lots"]) == ("OEM", "PO-1", "EV-7 inverter", ["M.01"])
    assert body["customers"] == ["OEM"]


def test_forward_trace_of_a_leaf_is_empty(api, tree):
    body = api("qa").get("/lots/U/trace?direction=forward").get_json()
    assert body["descendants"] == [] and body["shipments"] == [] and body["customers"] == []


def test_unknown_lot_is_404(api, tree):
    assert api("qa").get("/lots/NOPE/trace").status_code == 404


def test_shipment_backward_trace(api, tree):
    sid = tree["shipment"].id
    body = api("qa").get(f"/shipments/{sid}/trace").get_json()
    assert body["lots"] == ["M.01"]
    assert body["shipment"]["id"] == sid and body["shipment"]["customer"] == "OEM"
    assert body["shipment"]["vehicle_program"] == "EV-7 inverter"
    assert sorted(body["ancestors"]) == ["M", "R", "R.01", "R.01.01", "R.02"]
    assert BACKWARD_KEYS - {"lot"} <= set(body)
    assert api("qa").get("/shipments/987654/trace").status_code == 404


def _lots(body):
    return sorted(entry["lot_no"] for entry in body["lots"]), \
        sorted(entry["lot_no"] for entry in body["descendants"])


def test_trace_by_fab_lot(api, tree):
    body = api("qa").get("/trace?fab_lot=FAB1").get_json()
    assert _lots(body) == (["R", "R.01", "R.01.01", "R.02"], ["M", "M.01"])
    assert [s["lots"] for s in body["shipments"]] == [["M.01"]]
    assert body["customers"] == ["OEM"]


def test_trace_by_wafer(api, tree):
    body = api("qa").get("/trace?wafer=W2&fab_lot=FAB1").get_json()
    named, reached = _lots(body)
    assert "R" in named and "M.01" in named + reached
    assert api("qa").get("/trace?wafer=W9").get_json()["lots"] == []


def test_trace_by_material_lot(api, tree):
    body = api("qa").get("/trace?material_lot=AU-1").get_json()
    # R.01.01 left R.01 before R.01 used AU-1, but a lot's descendants are all reached
    # (the same closure as a mass hold: a trace over-includes rather than misses).
    assert _lots(body) == (["M", "R.01"], ["M.01", "R.01.01"])
    assert body["customers"] == ["OEM"]


def test_trace_by_equipment_window(api, tree):
    since = (utcnow() - timedelta(hours=1)).isoformat()
    body = api("qa").get("/trace", query_string={"equipment": "TR-1", "since": since}).get_json()
    assert _lots(body) == (["M.01"], [])
    later = (utcnow() + timedelta(hours=1)).isoformat()
    empty = api("qa").get("/trace", query_string={"equipment": "TR-1", "since": later})
    assert empty.get_json()["lots"] == []


def test_trace_by_lot_numbers(api, tree):
    body = api("qa").get("/trace?lots=R.01,U").get_json()
    assert _lots(body) == (["R.01", "U"], ["M", "M.01", "R.01.01"])


def test_trace_refuses_a_bad_criterion(api, tree):
    qa = api("qa")
    assert qa.get("/trace").status_code == 422
    assert qa.get("/trace?fab_lot=FAB1&material_lot=AU-1").status_code == 422
    assert qa.get("/trace?material_lot=NOPE").status_code == 422
    assert qa.get("/trace?equipment=WB-1").status_code == 422


# --- customers -------------------------------------------------------------------------

def test_customer_traces_own_lots_only(api, tree):
    own = api("customer", customer="OEM")
    body = own.get("/lots/M.01/trace").get_json()
    assert sorted(body["ancestors"]) == ["M", "R", "R.01", "R.01.01", "R.02"]
    forward = own.get("/lots/R/trace?direction=forward").get_json()
    assert forward["customers"] == ["OEM"]
    other = api("customer", customer="IND")
    for path in ("/lots/M.01/trace", "/lots/R/trace?direction=forward"):
        resp = other.get(path)
        assert resp.status_code == 404
        assert resp.get_json() == other.get(path.replace("M.01", "NOPE").replace(
            "/R/", "/NOPE/")).get_json() | {"error": resp.get_json()["error"]}
        assert resp.get_json()["error"]["code"] == "not_found"


def test_customer_sees_no_internal_hold_details(api, tree, session):
    from tests.floor.helpers import hold
    hold(session, tree["lots"]["M"])
    [seen] = api("customer", customer="OEM").get("/lots/M.01/trace").get_json()["holds"]
    assert seen["lot_no"] == "M" and "comment" not in seen and "placed_by" not in seen
    [plant] = api("qa").get("/lots/M.01/trace").get_json()["holds"]
    assert plant["comment"] == "engineering look"


def test_criterion_trace_and_containment_are_403_for_customers(api, tree):
    own = api("customer", customer="OEM")
    assert own.get("/trace?fab_lot=FAB1").status_code == 403
    # A shipment's whole trace is the plant's (API.md: beyond the customer list, 403).
    assert own.get(f"/shipments/{tree['shipment'].id}/trace").status_code == 403
    resp = own.post("/containments", json={"reason": "H-ENG", "comment": "x",
                                           "match": {"fab_lot": "FAB1"}})
    assert resp.status_code == 403
