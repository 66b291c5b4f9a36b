def test_healthz_answers_without_login(client):
    resp = client.get("/healthz")
    assert resp.status_code == 200
    assert resp.get_json() == {"status": "ok", "database": "ok"}


def test_create_customer_through_api(api, session):
    from mes.catalog.models import Customer

    eng = api("engineer")
    resp = eng.post("/customers", json={"code": "OEM1", "name": "OEM One", "automotive": True})
    assert resp.status_code == 201, resp.get_json()
    assert session.query(Customer).filter_by(code="OEM1").one().automotive is True
