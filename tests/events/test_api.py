"""The webhook API: admins manage any customer's subscriptions, a customer user only their
own (another's is 404 on every endpoint); bad input is refused with nothing written."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from mes.errors import InvalidInput
from mes.events.models import Delivery, Event, Webhook
from mes.events.services import check_url

URL = "http://127.0.0.1:9/hook"


@pytest.fixture
def private_ok(app):
    app.config["WEBHOOK_ALLOW_PRIVATE_URLS"] = True
    yield
    app.config["WEBHOOK_ALLOW_PRIVATE_URLS"] = False


def _count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def _delivery(session, webhook_id: int, customer_id: int) -> Delivery:
    event = Event(type="lot.hold.placed", customer_id=customer_id, data={"lot_no": "L1"})
    session.add(event)
    session.flush()
    delivery = Delivery(webhook_id=webhook_id, event_id=event.id, state="failed",
                        attempts=3, next_attempt_at=None)
    session.add(delivery)
    session.commit()
    return delivery


def test_a_customer_user_subscribes_and_sees_the_secret_once(session, plant, api, private_ok):
    cust = api("customer", customer="OEM")
    resp = cust.post("/webhooks", json={"url": URL, "events": ["lot.hold.placed"]})
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["secret"].startswith("whsec_") and body["customer"] == "OEM"
    assert body["events"] == ["lot.hold.placed"]
    listed = cust.get("/webhooks").get_json()["items"]
    assert [hook["id"] for hook in listed] == [body["id"]]
    assert "secret" not in listed[0]
    assert "secret" not in cust.get(f"/webhooks/{body['id']}").get_json()


def test_an_admin_names_the_customer(session, plant, api, private_ok):
    admin = api("admin")
    refused = admin.post("/webhooks", json={"url": URL, "events": ["shipment.created"]})
    assert refused.status_code == 422
    assert "customer" in refused.get_json()["error"]["fields"]
    assert _count(session, Webhook) == 0
    resp = admin.post("/webhooks", json={"url": URL, "events": ["shipment.created"],
                                         "customer": "IND"})
    assert resp.status_code == 201 and resp.get_json()["customer"] == "IND"


@pytest.mark.parametrize("body, field", [
    ({"url": "ftp://example.com/x", "events": ["pcn.sent"]}, "url"),
    ({"url": "not a url", "events": ["pcn.sent"]}, "url"),
    ({"url": "https://user:pw@example.com/", "events": ["pcn.sent"]}, "url"),
    ({"url": "https://example.com/", "events": []}, "events"),
    ({"url": "https://example.com/", "events": ["lot.exploded"]}, "events"),
])
def test_bad_subscriptions_are_refused_and_nothing_is_written(session, plant, api, body, field):
    resp = api("customer", customer="OEM").post("/webhooks", json=body)
    assert resp.status_code == 422
    assert field in resp.get_json()["error"]["fields"]
    assert _count(session, Webhook) == 0


def test_private_addresses_are_refused_unless_allowed(session, plant, api):
    resp = api("customer", customer="OEM").post(
        "/webhooks", json={"url": "http://127.0.0.1:8080/", "events": ["pcn.sent"]})
    assert resp.status_code == 422 and "url" in resp.get_json()["error"]["fields"]
    assert _count(session, Webhook) == 0
    with pytest.raises(InvalidInput):
        check_url("http://10.1.2.3/", allow_private=False)
    with pytest.raises(InvalidInput):
        check_url("http://[::1]/", allow_private=False)
    assert check_url("http://10.1.2.3/", allow_private=True) == "http://10.1.2.3/"
    assert check_url("https://93.184.215.14/x", allow_private=False)


def test_plant_roles_other_than_admin_cannot_manage_webhooks(session, plant, api):
    for role in ("operator", "engineer", "qa", "planner"):
        assert api(role).get("/webhooks").status_code == 403


def test_a_customer_never_reaches_another_customers_webhook(session, plant, api, private_ok):
    admin = api("admin")
    theirs = admin.post("/webhooks", json={"url": URL, "events": ["pcn.sent"],
                                           "customer": "IND"}).get_json()
    hook = session.get(Webhook, theirs["id"])
    delivery = _delivery(session, hook.id, hook.customer_id)
    cust = api("customer", customer="OEM")
    hid, did = theirs["id"], delivery.id
    assert cust.get("/webhooks").get_json()["items"] == []
    assert cust.get(f"/webhooks/{hid}").status_code == 404
    assert cust.get(f"/webhooks/{hid}/deliveries").status_code == 404
    assert cust.post(f"/webhooks/{hid}/deliveries/{did}/redeliver").status_code == 404
    assert cust.delete(f"/webhooks/{hid}").status_code == 404
    # Nor subscribes in another customer's name.
    resp = cust.post("/webhooks", json={"url": URL, "events": ["pcn.sent"], "customer": "IND"})
    assert resp.status_code == 404
    session.expire_all()
    assert session.get(Webhook, hid).active is True
    assert session.get(Delivery, did).state == "failed"
    assert _count(session, Webhook) == 1


def test_disable_stops_a_subscription_once(session, plant, api, private_ok):
    cust = api("customer", customer="OEM")
    hid = cust.post("/webhooks", json={"url": URL, "events": ["pcn.sent"]}).get_json()["id"]
    assert cust.delete(f"/webhooks/{hid}").status_code == 204
    again = cust.delete(f"/webhooks/{hid}")
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "not_active"
    assert cust.get(f"/webhooks/{hid}").get_json()["active"] is False


def test_the_delivery_log_and_redelivery(session, plant, api, private_ok):
    cust = api("customer", customer="OEM")
    hid = cust.post("/webhooks", json={"url": URL, "events": ["lot.hold.placed"]}
                    ).get_json()["id"]
    hook = session.get(Webhook, hid)
    delivery = _delivery(session, hid, hook.customer_id)
    log = cust.get(f"/webhooks/{hid}/deliveries").get_json()["items"]
    assert [(d["id"], d["state"], d["attempts"], d["type"]) for d in log] == [
        (delivery.id, "failed", 3, "lot.hold.placed")]
    assert cust.get(f"/webhooks/{hid}/deliveries?state=delivered").get_json()["items"] == []
    resp = cust.post(f"/webhooks/{hid}/deliveries/{delivery.id}/redeliver")
    assert resp.status_code == 202
    assert resp.get_json()["state"] == "pending" and resp.get_json()["next_attempt_at"]
    assert cust.post(f"/webhooks/{hid}/deliveries/999999/redeliver").status_code == 404


def test_redelivery_to_a_disabled_subscription_is_refused(session, plant, api, private_ok):
    cust = api("customer", customer="OEM")
    hid = cust.post("/webhooks", json={"url": URL, "events": ["pcn.sent"]}).get_json()["id"]
    delivery = _delivery(session, hid, session.get(Webhook, hid).customer_id)
    cust.delete(f"/webhooks/{hid}")
    resp = cust.post(f"/webhooks/{hid}/deliveries/{delivery.id}/redeliver")
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "not_active"
    session.expire_all()
    assert session.get(Delivery, delivery.id).state == "failed"
