"""Webhook pages: a customer user manages their own subscriptions (reached from the
portal), the plant's admins every customer's. The secret of a new subscription is shown on
the page that answers its creation, once; it is never in a redirect or a flash message."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, render_template, request
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from mes import db
from mes.auth.permissions import Permission, require
from mes.auth.scope import scope_customer
from mes.catalog.models import Customer
from mes.events import schemas, services
from mes.events.models import Webhook
from mes.vocabulary import DeliveryState, EventType
from mes.web import forms
from mes.web.pager import pager

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")


def _list_page(form: dict[str, Any] | None = None, refused: forms.Refused | None = None,
               created: Webhook | None = None, status: int = 200) -> Any:
    sess = db.session()
    page = pager(services.webhook_query(current_user))
    plant = scope_customer(current_user) is None
    customers = [c.code for c in sess.scalars(select(Customer).order_by(Customer.code))] \
        if plant else []
    return render_template(
        "webhooks/index.html", rows=page.items, page=page, plant=plant, customers=customers,
        form=form or {"events": []}, refused=refused, created=created,
        event_choices=EventType.choices(), section="webhooks.index"), status


@bp.route("/")
@require(Permission.WEBHOOK)
def index() -> Any:
    """The subscriptions (customers: their own) and the form to add one."""
    return _list_page()


@bp.route("/", methods=["POST"])
@require(Permission.WEBHOOK)
def create() -> Any:
    form = {"url": forms.text(request.form, "url"), "events": request.form.getlist("events"),
            "customer": forms.text(request.form, "customer") or None}

    def action() -> Webhook:
        data = forms.load(schemas.WebhookIn, form)
        return services.create_webhook(
            db.session(), current_user, data,
            allow_private=current_app.config["WEBHOOK_ALLOW_PRIVATE_URLS"])

    created, refused = forms.attempt(action)
    if created is None:
        assert refused is not None
        return _list_page(form, refused, status=refused.status)
    db.session().flush()
    # The one answer that shows the secret: a page, not a redirect.
    return _list_page(created=created, status=201)


@bp.route("/<int:webhook_id>/disable", methods=["POST"])
@require(Permission.WEBHOOK)
def disable(webhook_id: int) -> Any:
    sess = db.session()
    webhook = services.get_webhook(sess, webhook_id, current_user)
    _done, refused = forms.attempt(lambda: services.disable_webhook(sess, current_user, webhook))
    if refused is not None:
        return forms.done(refused.message, "webhooks.index", category="error")
    return forms.done(_("Webhook %(id)s disabled.", id=webhook.id), "webhooks.index")


@bp.route("/<int:webhook_id>")
@require(Permission.WEBHOOK)
def deliveries(webhook_id: int) -> Any:
    """A subscription's delivery log, newest first, with a redeliver button per delivery."""
    sess = db.session()
    webhook = services.get_webhook(sess, webhook_id, current_user)
    page = pager(services.delivery_query(webhook))
    return render_template("webhooks/deliveries.html", webhook=webhook, rows=page.items,
                           page=page, state_labels=DeliveryState.labels(),
                           type_labels=EventType.labels(), section="webhooks.index")


@bp.route("/<int:webhook_id>/deliveries/<int:delivery_id>/redeliver", methods=["POST"])
@require(Permission.WEBHOOK)
def redeliver(webhook_id: int, delivery_id: int) -> Any:
    sess = db.session()
    webhook = services.get_webhook(sess, webhook_id, current_user)
    delivery = services.get_delivery(sess, webhook, delivery_id)
    _done, refused = forms.attempt(lambda: services.redeliver(sess, current_user, delivery))
    if refused is not None:
        return forms.done(refused.message, "webhooks.deliveries", category="error",
                          webhook_id=webhook.id)
    return forms.done(_("Delivery %(id)s will be sent again shortly.", id=delivery.id),
                      "webhooks.deliveries", webhook_id=webhook.id)
