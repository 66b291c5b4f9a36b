"""Input and output schemas of lots."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from mes.catalog.schemas import CODE
from mes.floor.models import LOT_STATES
from mes.pagination import ListArgs

LOT_NO = validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,59}$",
                         error="Use 1 to 60 letters, digits, '.', '_' or '-'.")


class WaferIn(Schema):
    wafer_id = fields.String(required=True, validate=validate.Length(min=1, max=40))
    die_qty = fields.Integer(load_default=None, allow_none=True,
                             validate=validate.Range(min=0))


class LotIn(Schema):
    product = fields.String(required=True, validate=CODE)
    customer = fields.String(required=True, validate=CODE)
    quantity = fields.Integer(required=True, validate=validate.Range(min=1, max=100_000_000))
    fab_lot = fields.String(required=True, validate=validate.Length(min=1, max=60))
    wafers = fields.List(fields.Nested(WaferIn), load_default=list,
                         validate=validate.Length(max=50))
    lot_no = fields.String(load_default=None, allow_none=True, validate=LOT_NO)
    priority = fields.Integer(load_default=3, validate=validate.Range(1, 5))
    due_date = fields.Date(load_default=None, allow_none=True)


class LotOut(Schema):
    lot_no = fields.String()
    product = fields.Function(lambda lot: lot.product.code)
    customer = fields.Function(lambda lot: lot.customer.code)
    route = fields.Function(lambda lot: lot.route.code)
    route_version = fields.Function(lambda lot: lot.route.version)
    step = fields.String(attribute="step_code")
    step_seq = fields.Integer()
    steps_total = fields.Integer()
    state = fields.String()
    quantity = fields.Integer()
    wafer_count = fields.Integer()
    fab_lot = fields.String()
    priority = fields.Integer()
    due_date = fields.Date(allow_none=True)
    on_hold = fields.Boolean()
    holds = fields.List(fields.Integer(), attribute="hold_ids")
    parents = fields.List(fields.String(), attribute="parent_nos")
    children = fields.List(fields.String(), attribute="child_nos")
    equipment = fields.Function(lambda lot: lot.equipment.code if lot.equipment else None,
                                allow_none=True)
    arrived_at = fields.AwareDateTime()
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()


class LotQuery(ListArgs):
    state = fields.String(load_default=None, validate=validate.OneOf(LOT_STATES))
    step = fields.String(load_default=None, validate=CODE)
    product = fields.String(load_default=None, validate=CODE)
    customer = fields.String(load_default=None, validate=CODE)
    fab_lot = fields.String(load_default=None)
    on_hold = fields.Boolean(load_default=None, allow_none=True)


class TrackInIn(Schema):
    step = fields.String(required=True, validate=CODE)
    equipment = fields.String(required=True, validate=CODE)
    materials = fields.List(fields.String(validate=validate.Length(min=1, max=60)),
                            load_default=list, validate=validate.Length(max=20))


class RejectIn(Schema):
    reason = fields.String(required=True, validate=CODE)
    qty = fields.Integer(required=True, validate=validate.Range(min=0))


class TrackOutIn(Schema):
    step = fields.String(required=True, validate=CODE)
    good_qty = fields.Integer(required=True, validate=validate.Range(min=0))
    rejects = fields.List(fields.Nested(RejectIn), load_default=list,
                          validate=validate.Length(max=50))


class SplitIn(Schema):
    quantities = fields.List(fields.Integer(validate=validate.Range(min=1)), required=True,
                             validate=validate.Length(min=2, max=100))


class MergeIn(Schema):
    lots = fields.List(fields.String(validate=LOT_NO), required=True,
                       validate=validate.Length(min=2, max=100))


class SplitOut(Schema):
    parent = fields.Nested(LotOut)
    children = fields.List(fields.Nested(LotOut))


class EventOut(Schema):
    id = fields.Integer()
    kind = fields.String()
    at = fields.AwareDateTime()
    by = fields.String(allow_none=True)
    step = fields.String(attribute="step_code", allow_none=True)
    equipment = fields.String(allow_none=True)
    qty_in = fields.Integer(allow_none=True)
    qty_out = fields.Integer(allow_none=True)
    data = fields.Dict()
