"""Input and output schemas of webhook subscriptions and deliveries (API and pages)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from mes.catalog.schemas import CODE
from mes.pagination import ListArgs
from mes.vocabulary import DeliveryState, EventType


class WebhookIn(Schema):
    url = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    events = fields.List(fields.String(validate=validate.OneOf(EventType.codes())),
                         required=True, validate=validate.Length(min=1, max=20))
    # The plant's admins name the customer; a customer user's subscriptions are their own.
    customer = fields.String(load_default=None, allow_none=True, validate=CODE)


class WebhookOut(Schema):
    id = fields.Integer()
    customer = fields.Function(lambda hook: hook.customer.code)
    url = fields.String()
    events = fields.List(fields.String())
    active = fields.Boolean()
    created_at = fields.AwareDateTime()
    disabled_at = fields.AwareDateTime(allow_none=True)


class WebhookCreatedOut(WebhookOut):
    """The new subscription with its signing secret, shown this once."""

    secret = fields.String()


class DeliveryQuery(ListArgs):
    state = fields.String(load_default=None, validate=validate.OneOf(DeliveryState.codes()))


class DeliveryOut(Schema):
    id = fields.Integer()
    message_id = fields.Function(lambda delivery: f"msg_{delivery.id}")
    event = fields.Integer(attribute="event_id")
    type = fields.Function(lambda delivery: delivery.event.type)
    state = fields.String()
    attempts = fields.Integer()
    last_status = fields.Integer(allow_none=True)
    last_error = fields.String()
    last_attempt_at = fields.AwareDateTime(allow_none=True)
    next_attempt_at = fields.AwareDateTime(allow_none=True)
    delivered_at = fields.AwareDateTime(allow_none=True)
    created_at = fields.AwareDateTime()
