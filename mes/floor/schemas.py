"""Input and output schemas of lots."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from marshmallow import Schema, fields, pre_dump, validate

from mes.catalog.schemas import CODE, COUNT, MAX_CAPACITY, MAX_COUNT, POSITIVE_COUNT, EquipmentOut
from mes.floor.models import CustomerEvent, PresentedLot
from mes.pagination import ListArgs
from mes.vocabulary import AbortReason, LotState

LOT_NO = validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,59}$",
                         error=_l("Use 1 to 60 letters, digits, '.', '_' or '-'."))


class WaferIn(Schema):
    wafer_id = fields.String(required=True, validate=validate.Length(min=1, max=40))
    die_qty = fields.Integer(load_default=None, allow_none=True, validate=COUNT)


class LotIn(Schema):
    product = fields.String(required=True, validate=CODE)
    customer = fields.String(required=True, validate=CODE)
    quantity = fields.Integer(required=True, validate=validate.Range(min=1, max=MAX_COUNT))
    fab_lot = fields.String(required=True, validate=validate.Length(min=1, max=60))
    wafers = fields.List(fields.Nested(WaferIn), load_default=list,
                         validate=validate.Length(max=50))
    lot_no = fields.String(load_default=None, allow_none=True, validate=LOT_NO)
    priority = fields.Integer(load_default=3, validate=validate.Range(1, 5))
    due_date = fields.Date(load_default=None, allow_none=True)
    # Default: the product's current BOM revision.
    bom_revision = fields.String(load_default=None, allow_none=True,
                                 validate=validate.Length(min=1, max=20))
    # Into the die bank (state banked) rather than queued at the first step; planned_start
    # is when the planner means to release it (banked lots only).
    bank = fields.Boolean(load_default=False)
    planned_start = fields.AwareDateTime(load_default=None, allow_none=True)


class LotOut(Schema):
    """A lot as floor.services.present shows it (a PresentedLot, never a bare Lot)."""

    lot_no = fields.String(attribute="lot.lot_no")
    product = fields.Function(lambda shown: shown.lot.product.code)
    customer = fields.Function(lambda shown: shown.lot.customer.code)
    route = fields.Function(lambda shown: shown.lot.route.code)
    route_version = fields.Function(lambda shown: shown.lot.route.version)
    bom_revision = fields.String(allow_none=True)
    step = fields.String(attribute="lot.step_code")
    step_seq = fields.Integer(attribute="lot.step_seq")
    steps_total = fields.Integer()
    state = fields.String(attribute="lot.state")
    quantity = fields.Integer(attribute="lot.quantity")
    wafer_count = fields.Integer(attribute="lot.wafer_count")
    fab_lot = fields.String(attribute="lot.fab_lot")
    priority = fields.Integer(attribute="lot.priority")
    due_date = fields.Date(attribute="lot.due_date", allow_none=True)
    # Whether `holds` lists any: a customer user's open holds are those the plant's policy
    # lets them see (floor.services.present).
    on_hold = fields.Boolean()
    holds = fields.List(fields.Integer())
    parents = fields.List(fields.String())
    children = fields.List(fields.String())
    equipment = fields.Function(
        lambda shown: shown.lot.equipment.code if shown.lot.equipment else None,
        allow_none=True)
    # From the marking step's track-out (None before it).
    date_code = fields.String(attribute="lot.date_code", allow_none=True)
    trace_code = fields.String(attribute="lot.trace_code", allow_none=True)
    mark = fields.String(attribute="lot.mark", allow_none=True)
    # Units in reels (trays, tubes), and units that left the plant.
    packed = fields.Integer(attribute="lot.packed_qty")
    shipped = fields.Integer(attribute="lot.shipped_qty")
    planned_start = fields.AwareDateTime(attribute="lot.planned_start", allow_none=True)
    arrived_at = fields.AwareDateTime(attribute="lot.arrived_at")
    created_at = fields.AwareDateTime(attribute="lot.created_at")
    updated_at = fields.AwareDateTime(attribute="lot.updated_at")

    @pre_dump
    def _presented(self, shown: object, **kwargs: object) -> PresentedLot:
        # A bare Lot would lose its holds, genealogy and step count without a word.
        if not isinstance(shown, PresentedLot):
            raise TypeError(f"LotOut shows a PresentedLot, not {type(shown).__name__}")
        return shown


class LotQuery(ListArgs):
    state = fields.String(load_default=None, validate=validate.OneOf(LotState.codes()))
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


class BatchIn(Schema):
    """A batch track-in: several lots at one step onto one tool."""

    step = fields.String(required=True, validate=CODE)
    lots = fields.List(fields.String(validate=LOT_NO), required=True,
                       validate=validate.Length(min=1, max=MAX_CAPACITY))
    # Material lots every lot of the batch uses (optional, as for a single track-in).
    materials = fields.List(fields.String(validate=validate.Length(min=1, max=60)),
                            load_default=list, validate=validate.Length(max=20))


class BatchOut(Schema):
    equipment = fields.Nested(EquipmentOut)
    lots = fields.List(fields.Nested(LotOut))


class TrackInAbortIn(Schema):
    reason = fields.String(required=True, validate=validate.OneOf(AbortReason.codes()))
    comment = fields.String(load_default="", validate=validate.Length(max=500))
    step = fields.String(load_default=None, validate=CODE)


class RejectIn(Schema):
    reason = fields.String(required=True, validate=CODE)
    qty = fields.Integer(required=True, validate=COUNT)


class TrackOutIn(Schema):
    step = fields.String(required=True, validate=CODE)
    good_qty = fields.Integer(required=True, validate=COUNT)
    rejects = fields.List(fields.Nested(RejectIn), load_default=list,
                          validate=validate.Length(max=50))


class SplitIn(Schema):
    quantities = fields.List(fields.Integer(validate=POSITIVE_COUNT), required=True,
                             validate=validate.Length(min=2, max=100))
    # Optional: each new lot's wafers (one list per quantity after the first); the parent
    # keeps the others. Without it the wafers' die quantities decide.
    wafers = fields.List(fields.List(fields.String(validate=validate.Length(min=1, max=101)),
                                     validate=validate.Length(max=50)),
                         load_default=None, allow_none=True,
                         validate=validate.Length(min=1, max=99))


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


class CustomerEventOut(Schema):
    """A history event as a customer user gets it (floor.services.customer_history, a
    CustomerEvent, never a bare LotEvent, whose `data` and `by` a customer must not read):
    kind, time, step, quantities, a hold's reason code with its customer-facing text and a
    release's disposition."""

    kind = fields.String()
    at = fields.AwareDateTime()
    step = fields.String(allow_none=True)
    qty_in = fields.Integer(allow_none=True)
    qty_out = fields.Integer(allow_none=True)
    reason = fields.String(allow_none=True)
    reason_description = fields.String(allow_none=True)
    disposition = fields.String(allow_none=True)

    @pre_dump
    def _customer_event(self, shown: object, **kwargs: object) -> CustomerEvent:
        # A LotEvent has most of these attribute names, and a field added here by mistake
        # would then show a customer what the plant keeps to itself; the read model
        # carries only what a customer may read.
        if not isinstance(shown, CustomerEvent):
            raise TypeError(f"CustomerEventOut shows a CustomerEvent, not {type(shown).__name__}")
        return shown
