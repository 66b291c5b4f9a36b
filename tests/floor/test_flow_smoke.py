def test_lot_goes_through_route_via_api(api, plant):
    planner, op = api("planner"), api("operator")
    r = planner.post("/lots", json={"product": "P1", "customer": "OEM", "quantity": 100,
                                    "fab_lot": "F1", "wafers": [{"wafer_id": "W1",
                                                                 "die_qty": 100}]})
    assert r.status_code == 201, r.get_json()
    lot = r.get_json()
    assert lot["state"] == "queued" and lot["step"] == "SAW" and lot["wafer_count"] == 1
    no = lot["lot_no"]
    r = op.post(f"/lots/{no}/track-in", json={"step": "SAW", "equipment": "SAW-1"})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["state"] == "running"
    r = op.post(f"/lots/{no}/track-out", json={"step": "SAW", "good_qty": 98,
                                               "rejects": [{"reason": "R-SCRATCH", "qty": 2}]})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["step"] == "WB" and r.get_json()["quantity"] == 98
    r = op.post(f"/lots/{no}/track-in", json={"step": "WB", "equipment": "WB-1"})
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "material_required"
    r = op.post(f"/lots/{no}/split", json={"quantities": [50, 48]})
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert body["parent"]["quantity"] == 50 and body["children"][0]["quantity"] == 48
    assert body["children"][0]["parents"] == [no]
    r = op.post("/lots/merge", json={"lots": [no, body["children"][0]["lot_no"]]})
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["quantity"] == 98
    r = op.get(f"/lots/{no}/history")
    kinds = [e["kind"] for e in r.get_json()["items"]]
    assert kinds == ["receive", "track_in", "track_out", "split", "merge"]
