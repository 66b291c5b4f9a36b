"""Webhook subscriptions and their deliveries, as the plant's admins and the customers'
users manage them. An admin manages any customer's subscriptions; a customer user only
their own (another customer's subscription is not found, as if it did not exist).

The secret is made here and shown once, in the answer that creates the subscription; it
stays in the database because signing needs it (docs/decisions.md, "Events and webhooks").
"""

from __future__ import annotations

import base64
import ipaddress
import secrets
import socket
from typing import Any
from urllib.parse import urlsplit

from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, select
from sqlalchemy.orm import Session, joinedload

from mes import audit
from mes.auth.actor import Actor, actor_name
from mes.auth.scope import scope_customer, scoped
from mes.catalog.models import Customer
from mes.db import utcnow
from mes.errors import Conflict, ErrorCode, InvalidInput, NotFound
from mes.events.models import Delivery, Webhook
from mes.vocabulary import DeliveryState, EventType

SECRET_BYTES = 24


def new_secret() -> str:
    """A Standard Webhooks secret: "whsec_" and the base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def private_address(host: str) -> bool:
    """`host` (a name or an address) is, or resolves to, an address that is not public:
    loopback, private, link-local, reserved... A name that does not resolve is not
    private (the delivery fails on its own)."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return False
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if not address.is_global:
            return True
    return False


def check_url(url: str, *, allow_private: bool) -> str:
    """The URL a subscription may POST to: http or https with a host, and, unless
    `allow_private` (WEBHOOK_ALLOW_PRIVATE_URLS), not to a loopback, private or link-local
    address (the plant's own network). Raises InvalidInput on field `url`."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018  # raises ValueError for a port that is not a number
    except ValueError:
        host = None
    if parts.scheme not in ("http", "https") or not host:
        raise InvalidInput(_l("Some fields are missing or not valid."), fields={
            "url": [str(_l("An http:// or https:// address with a host."))]})
    if parts.username or parts.password:
        raise InvalidInput(_l("Some fields are missing or not valid."), fields={
            "url": [str(_l("An address without a user name or password."))]})
    if not allow_private and private_address(host):
        raise InvalidInput(_l("Some fields are missing or not valid."), fields={
            "url": [str(_l("The address is on a private network; this plant sends events "
                           "to public addresses only."))]})
    return url


def webhook_query(actor: Actor | None = None) -> Select[Any]:
    """Subscriptions, newest first: every customer's for the plant, a customer user's own."""
    return scoped(select(Webhook), Webhook.customer_id, actor).order_by(Webhook.id.desc())


def get_webhook(session: Session, webhook_id: int, actor: Actor | None = None) -> Webhook:
    """The subscription `webhook_id`; another customer's is NotFound."""
    webhook = session.scalar(webhook_query(actor).where(Webhook.id == webhook_id))
    if webhook is None:
        raise NotFound(_l("No webhook %(webhook_id)s.", webhook_id=webhook_id))
    return webhook


def _customer_for(session: Session, actor: Actor, code: str | None) -> Customer:
    own = scope_customer(actor)
    if own is not None:
        customer = session.get(Customer, own)
        # A customer user names their own customer or none; another one does not exist.
        if customer is None or (code is not None and code != customer.code):
            raise NotFound(_l("No customer %(code)s.", code=code))
        return customer
    if code is None:
        raise InvalidInput(_l("Some fields are missing or not valid."), fields={
            "customer": [str(_l("Name the customer whose events are sent."))]})
    customer = session.scalar(select(Customer).where(Customer.code == code))
    if customer is None:
        raise InvalidInput(_l("Some fields are missing or not valid."), fields={
            "customer": [str(_l("No customer %(code)s.", code=code))]})
    return customer


def create_webhook(session: Session, actor: Actor, data: dict[str, Any], *,
                   allow_private: bool) -> Webhook:
    """Subscribe `data["url"]` to the event types `data["events"]` of a customer: the
    actor's own (customer users), or `data["customer"]` (the plant's admins, required).
    The new subscription's `secret` is for the caller to show once.

    Raises InvalidInput (url, events, customer), NotFound for a customer user naming
    another customer."""
    customer = _customer_for(session, actor, data.get("customer"))
    url = check_url(data["url"], allow_private=allow_private)
    events = list(dict.fromkeys(data["events"]))
    unknown = [code for code in events if code not in EventType.codes()]
    if unknown or not events:
        raise InvalidInput(_l("Some fields are missing or not valid."), fields={
            "events": [str(_l("One or more of: %(codes)s.",
                              codes=", ".join(EventType.codes())))]})
    webhook = Webhook(customer_id=customer.id, url=url, events=events, secret=new_secret(),
                      active=True, created_at=utcnow(), created_by=actor_name(actor))
    session.add(webhook)
    session.flush()
    audit.record(session, actor=actor, code="webhook:create", subject_type="webhook",
                 subject_key=str(webhook.id), new_subject=True,
                 data={"customer": customer.code, "url": url, "events": events})
    return webhook


def disable_webhook(session: Session, actor: Actor, webhook: Webhook) -> Webhook:
    """Stop sending to the subscription (its delivery log stays; pending deliveries are
    no longer tried). Raises Conflict `not_active` when it is disabled already."""
    if not webhook.active:
        raise Conflict(_l("Webhook %(id)s is disabled already.", id=webhook.id),
                       code=ErrorCode.NOT_ACTIVE)
    webhook.active = False
    webhook.disabled_at = utcnow()
    webhook.disabled_by = actor_name(actor)
    audit.record(session, actor=actor, code="webhook:disable", subject_type="webhook",
                 subject_key=str(webhook.id), data={"url": webhook.url})
    session.flush()
    return webhook


def delivery_query(webhook: Webhook) -> Select[Any]:
    """The subscription's deliveries, newest first, with their events."""
    return (select(Delivery).where(Delivery.webhook_id == webhook.id)
            .options(joinedload(Delivery.event)).order_by(Delivery.id.desc()))


def get_delivery(session: Session, webhook: Webhook, delivery_id: int) -> Delivery:
    """The delivery `delivery_id` of `webhook` (NotFound otherwise)."""
    delivery = session.scalar(delivery_query(webhook).where(Delivery.id == delivery_id))
    if delivery is None:
        raise NotFound(_l("No delivery %(delivery_id)s.", delivery_id=delivery_id))
    return delivery


def redeliver(session: Session, actor: Actor, delivery: Delivery) -> Delivery:
    """Send the delivery again, now, whatever its state, with a fresh retry window (the
    same message id, so a receiver that keeps ids knows it). Raises Conflict `not_active`
    when its subscription is disabled."""
    if not delivery.webhook.active:
        raise Conflict(_l("Webhook %(id)s is disabled.", id=delivery.webhook_id),
                       code=ErrorCode.NOT_ACTIVE)
    now = utcnow()
    delivery.state = DeliveryState.PENDING
    delivery.next_attempt_at = now
    delivery.window_start = now
    audit.record(session, actor=actor, code="webhook:redeliver", subject_type="webhook",
                 subject_key=str(delivery.webhook_id), data={"delivery": delivery.id})
    session.flush()
    return delivery
