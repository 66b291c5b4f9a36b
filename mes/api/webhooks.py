"""Webhook subscriptions: a customer's system is told of events on their lots, orders and
PCNs by signed POSTs (Standard Webhooks). The plant's admins manage every customer's
subscriptions, a customer user their own; another customer's is 404."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_login import current_user

from mes import db
from mes.api import bp
from mes.api.registry import ListArgs, Page, api_route, paginate
from mes.auth.permissions import Permission
from mes.events import schemas as s
from mes.events import services
from mes.events.models import Delivery, Webhook


@api_route(bp, "/webhooks", method="POST", permission=Permission.WEBHOOK, body=s.WebhookIn,
           response=s.WebhookCreatedOut, status=201, tag="webhooks")
def create_webhook(data: dict[str, Any]) -> Webhook:
    """Subscribe a URL to event types (`lot.hold.placed`, `shipment.created`...). The
    answer carries the signing `secret` (`whsec_...`), shown this once. Admins name the
    `customer`; a customer user's subscription is their own."""
    return services.create_webhook(
        db.session(), current_user, data,
        allow_private=current_app.config["WEBHOOK_ALLOW_PRIVATE_URLS"])


@api_route(bp, "/webhooks", permission=Permission.WEBHOOK, query=ListArgs,
           response=s.WebhookOut, many=True, tag="webhooks")
def list_webhooks(args: dict[str, Any]) -> Page:
    """Subscriptions, newest first (customers: their own), disabled ones included."""
    return paginate(db.session(), services.webhook_query(current_user), args)


@api_route(bp, "/webhooks/<int:webhook_id>", permission=Permission.WEBHOOK,
           response=s.WebhookOut, tag="webhooks")
def get_webhook(webhook_id: int) -> Webhook:
    """One subscription (without its secret)."""
    return services.get_webhook(db.session(), webhook_id, current_user)


@api_route(bp, "/webhooks/<int:webhook_id>", method="DELETE", permission=Permission.WEBHOOK,
           tag="webhooks")
def delete_webhook(webhook_id: int) -> None:
    """Disable the subscription: nothing more is sent to it; its delivery log stays. 409
    `not_active` when it is disabled already."""
    session = db.session()
    services.disable_webhook(session, current_user,
                             services.get_webhook(session, webhook_id, current_user))


@api_route(bp, "/webhooks/<int:webhook_id>/deliveries", permission=Permission.WEBHOOK,
           query=s.DeliveryQuery, response=s.DeliveryOut, many=True, tag="webhooks")
def list_deliveries(webhook_id: int, args: dict[str, Any]) -> Page:
    """The subscription's delivery log, newest first: state (pending, delivered, failed),
    attempts, the last answer's status and the next attempt. Filter: state."""
    session = db.session()
    stmt = services.delivery_query(services.get_webhook(session, webhook_id, current_user))
    if args.get("state"):
        stmt = stmt.where(Delivery.state == args["state"])
    return paginate(session, stmt, args)


@api_route(bp, "/webhooks/<int:webhook_id>/deliveries/<int:delivery_id>/redeliver",
           method="POST", permission=Permission.WEBHOOK, response=s.DeliveryOut, status=202,
           tag="webhooks")
def redeliver(webhook_id: int, delivery_id: int) -> Delivery:
    """Send a delivery again (the worker sends it shortly, with a fresh retry window).
    409 `not_active` when the subscription is disabled."""
    session = db.session()
    webhook = services.get_webhook(session, webhook_id, current_user)
    return services.redeliver(session, current_user,
                              services.get_delivery(session, webhook, delivery_id))
