"""The webhook pages: a customer user manages their own subscriptions from the portal and
sees a new one's secret once; an admin manages every customer's; another customer's
subscription is not found."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from mes.events.models import Delivery, Event, Webhook
from tests.helpers import as_user


@pytest.fixture(autouse=True)
def private_ok(app):
    app.config["WEBHOOK_ALLOW_PRIVATE_URLS"] = True
    yield
    app.config["WEBHOOK_ALLOW_PRIVATE_URLS"] = False


def _hook(session, customer_code: str) -> Webhook:
    from mes.catalog.models import Customer

    customer = session.scalars(select(Customer).where(Customer.code == customer_code)).one()
    hook = Webhook(customer_id=customer.id, url=f"http://127.0.0.1:9/{customer_code}",
                   events=["pcn.sent"], secret="whsec_c2VjcmV0c2VjcmV0c2VjcmV0")
    session.add(hook)
    session.flush()
    event = Event(type="pcn.sent", customer_id=customer.id, data={})
    session.add(event)
    session.flush()
    session.add(Delivery(webhook_id=hook.id, event_id=event.id, state="failed", attempts=2,
                         next_attempt_at=None))
    session.commit()
    return hook


def test_a_customer_creates_a_webhook_and_sees_its_secret_once(app, session, plant,
                                                               make_user):
    client = as_user(app, make_user("customer", customer="OEM"))
    page = client.get("/webhooks/")
    assert page.status_code == 200 and "portal-sections" in page.get_data(as_text=True)
    resp = client.post("/webhooks/", data={"url": "http://127.0.0.1:9/x",
                                            "events": ["lot.hold.placed", "pcn.sent"]})
    assert resp.status_code == 201
    hook = session.scalars(select(Webhook)).one()
    assert hook.secret in resp.get_data(as_text=True)
    assert hook.events == ["lot.hold.placed", "pcn.sent"]
    assert hook.secret not in client.get("/webhooks/").get_data(as_text=True)


def test_a_bad_form_is_shown_again_with_the_reason_and_nothing_written(app, session, plant,
                                                                       make_user):
    client = as_user(app, make_user("customer", customer="OEM"))
    resp = client.post("/webhooks/", data={"url": "ftp://x", "events": []})
    assert resp.status_code == 422
    assert "has-error" in resp.get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(Webhook)) == 0


def test_a_customer_never_sees_or_touches_another_customers_webhook(app, session, plant,
                                                                    make_user):
    theirs = _hook(session, "IND")
    delivery = session.scalars(select(Delivery)).one()
    client = as_user(app, make_user("customer", customer="OEM"))
    assert theirs.url not in client.get("/webhooks/").get_data(as_text=True)
    assert client.get(f"/webhooks/{theirs.id}").status_code == 404
    assert client.post(f"/webhooks/{theirs.id}/disable").status_code == 404
    assert client.post(f"/webhooks/{theirs.id}/deliveries/{delivery.id}/redeliver"
                       ).status_code == 404
    assert client.post("/webhooks/", data={"url": "http://127.0.0.1:9/x", "customer": "IND",
                                           "events": ["pcn.sent"]}).status_code == 404
    session.expire_all()
    assert session.get(Webhook, theirs.id).active is True
    assert session.get(Delivery, delivery.id).state == "failed"
    assert session.scalar(select(func.count()).select_from(Webhook)) == 1


def test_an_admin_sees_every_customers_webhooks_and_redelivers(app, session, plant, make_user):
    hook = _hook(session, "IND")
    delivery = session.scalars(select(Delivery)).one()
    client = as_user(app, make_user("admin"))
    listed = client.get("/webhooks/").get_data(as_text=True)
    assert hook.url in listed and "IND" in listed
    log = client.get(f"/webhooks/{hook.id}")
    assert log.status_code == 200 and f"msg_{delivery.id}" in log.get_data(as_text=True)
    resp = client.post(f"/webhooks/{hook.id}/deliveries/{delivery.id}/redeliver")
    assert resp.status_code == 303
    session.expire_all()
    assert session.get(Delivery, delivery.id).state == "pending"
    assert client.post(f"/webhooks/{hook.id}/disable").status_code == 303
    session.expire_all()
    assert session.get(Webhook, hook.id).active is False


def test_plant_roles_other_than_admin_have_no_webhook_pages(app, session, plant, make_user):
    for role in ("operator", "qa", "planner", "engineer"):
        assert as_user(app, make_user(role)).get("/webhooks/").status_code == 403
