"""Input and output schemas of purchase orders and the die bank (the API and the pages
share them)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from mes.catalog.schemas import CODE
from mes.pagination import ListArgs

PO = validate.Length(min=1, max=60)
QUANTITY = validate.Range(min=1, max=2_000_000_000)
LINE_NO = validate.Range(min=1, max=9999)


class OrderLineIn(Schema):
    line = fields.Integer(required=True, validate=LINE_NO)
    product = fields.String(required=True, validate=CODE)
    quantity = fields.Integer(required=True, validate=QUANTITY)
    need_date = fields.Date(required=True)
    commit_date = fields.Date(load_default=None, allow_none=True)
    vehicle_program = fields.String(load_default=None, allow_none=True,
                                    validate=validate.Length(max=60))
    ship_to = fields.String(load_default=None, allow_none=True,
                            validate=validate.Length(max=120))


class OrderIn(Schema):
    customer = fields.String(required=True, validate=CODE)
    po = fields.String(required=True, validate=PO)
    lines = fields.List(fields.Nested(OrderLineIn), required=True,
                        validate=validate.Length(min=1, max=200))


class OrderLinePatch(Schema):
    """Only the fields given change; `commit_date: null` clears the commitment."""

    commit_date = fields.Date(allow_none=True)
    quantity = fields.Integer(validate=QUANTITY)
    need_date = fields.Date()


class OrderAllocationIn(Schema):
    lots = fields.List(fields.String(validate=validate.Length(min=1, max=60)), required=True,
                       validate=validate.Length(min=1, max=500))


class OrderQuery(ListArgs):
    customer = fields.String(load_default=None, validate=CODE)
    product = fields.String(load_default=None, validate=CODE)
    vehicle_program = fields.String(load_default=None, validate=validate.Length(max=60))


class OrderArgs(Schema):
    # Which customer's order, when several customers use the PO number (staff only).
    customer = fields.String(load_default=None, validate=CODE)


class OrderLineOut(Schema):
    """A PresentedLine."""

    line = fields.Integer(attribute="line.line_no")
    product = fields.Function(lambda shown: shown.line.product.code)
    quantity = fields.Integer(attribute="line.quantity")
    need_date = fields.Date(attribute="line.need_date")
    commit_date = fields.Date(attribute="line.commit_date", allow_none=True)
    vehicle_program = fields.String(attribute="line.vehicle_program", allow_none=True)
    ship_to = fields.String(attribute="line.ship_to", allow_none=True)
    shipped = fields.Integer(attribute="quantities.shipped")
    wip = fields.Integer(attribute="quantities.wip")
    finished = fields.Integer(attribute="quantities.finished")
    banked = fields.Integer(attribute="quantities.banked")
    allocated = fields.Integer(attribute="quantities.allocated")
    unallocated = fields.Integer(attribute="quantities.unallocated")
    lots = fields.List(fields.String(), attribute="lot_numbers")
    # Against the need date, from the allocated lots' completion forecasts
    # (mes.forecast.outlook): units expected by then at P50 and P90, what that leaves
    # short, and on_track / at_risk / short.
    projected_p50 = fields.Integer(attribute="outlook.projected_p50")
    projected_p90 = fields.Integer(attribute="outlook.projected_p90")
    short_p50 = fields.Integer(attribute="outlook.short_p50")
    short_p90 = fields.Integer(attribute="outlook.short_p90")
    status = fields.String(attribute="outlook.status")


class OrderOut(Schema):
    """A PresentedOrder."""

    customer = fields.Function(lambda shown: shown.order.customer.code)
    po = fields.String(attribute="order.po")
    created_at = fields.AwareDateTime(attribute="order.created_at")
    lines = fields.List(fields.Nested(OrderLineOut))


class BankReleaseIn(Schema):
    planned_start = fields.AwareDateTime(load_default=None, allow_none=True)


class BankPlanIn(Schema):
    planned_start = fields.AwareDateTime(required=True, allow_none=True)
