"""Input and output schemas of traces and containments (API.md, "Traceability")."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from mes.catalog.schemas import QualificationOut
from mes.quality.schemas import HoldIn, HoldOut, MatchIn, MatchQuery
from mes.testfloor.schemas import TestRunOut

DIRECTIONS = ("backward", "forward")


class TraceQuery(Schema):
    direction = fields.String(load_default="backward", validate=validate.OneOf(DIRECTIONS))


class TraceMatchQuery(MatchQuery):
    """The criterion as query parameters, exactly one of: `fab_lot`; `wafer` (and
    optionally `fab_lot`); `material_lot`; `equipment` with `since` (and `until`); `lots`
    (comma-separated)."""


class ContainmentIn(HoldIn):
    match = fields.Nested(MatchIn, required=True)


class LotBriefOut(Schema):
    lot_no = fields.String()
    state = fields.String()
    step = fields.String()
    on_hold = fields.Boolean()
    customer = fields.String()
    product = fields.String()
    quantity = fields.Integer()
    fab_lot = fields.String()


class RejectOut(Schema):
    reason = fields.String()
    qty = fields.Integer()


class StepOut(Schema):
    lot_no = fields.String()
    step = fields.String()
    equipment = fields.String()
    operator = fields.String(allow_none=True)
    started_at = fields.AwareDateTime()
    finished_at = fields.AwareDateTime(allow_none=True)
    qty_in = fields.Integer()
    good_qty = fields.Integer(allow_none=True)
    rejects = fields.List(fields.Nested(RejectOut))


class WaferOut(Schema):
    fab_lot = fields.String()
    wafer_id = fields.String()
    die_qty = fields.Integer(allow_none=True)
    lots = fields.List(fields.String(), metadata={"description": "Lots of the trace holding "
                                                                 "dies of this wafer."})


class TracedMaterialLotOut(Schema):
    code = fields.String()
    material = fields.String()
    lots = fields.List(fields.String(), metadata={"description": "Lots that consumed it."})


class MaterialUseOut(Schema):
    material_lot = fields.String()
    material = fields.String()
    lot_no = fields.String()
    step = fields.String()
    at = fields.AwareDateTime()


class TracedEquipmentOut(Schema):
    code = fields.String()
    kind = fields.String()


class CustomerHoldOut(Schema):
    """What a customer sees of a hold on their lot: no names, no internal comments."""

    id = fields.Integer()
    lot_no = fields.Function(lambda hold: hold.lot.lot_no)
    reason = fields.Function(lambda hold: hold.reason.code)
    reason_description = fields.Function(lambda hold: hold.reason.description)
    status = fields.String()
    source = fields.String()
    step = fields.String(attribute="step_code", allow_none=True)
    placed_at = fields.AwareDateTime()
    released_at = fields.AwareDateTime(allow_none=True)
    disposition = fields.String(allow_none=True)


class _BackwardLists(Schema):
    ancestors = fields.List(fields.String(), metadata={
        "description": "Every lot the traced lot(s) came from, at any depth."})
    fab_lots = fields.List(fields.String())
    wafers = fields.List(fields.Nested(WaferOut))
    material_lots = fields.List(fields.Nested(TracedMaterialLotOut))
    materials = fields.List(fields.Nested(MaterialUseOut), metadata={
        "description": "Each consumption: which lot used which material lot at which step."})
    equipment = fields.List(fields.Nested(TracedEquipmentOut))
    steps = fields.List(fields.Nested(StepOut))
    test_runs = fields.List(fields.Nested(TestRunOut))
    holds = fields.List(fields.Nested(HoldOut))
    qualifications = fields.List(fields.Nested(QualificationOut))


class BackwardOut(_BackwardLists):
    lot = fields.Nested(LotBriefOut)


class CustomerStepOut(StepOut):
    """A step run as a customer sees it: where and when, not who ran it."""

    class Meta:
        exclude = ("operator",)


class CustomerQualificationOut(QualificationOut):
    """A product's qualification as a customer sees it: no staff name."""

    class Meta:
        exclude = ("created_by",)


class CustomerBackwardOut(BackwardOut):
    """A backward trace as a customer user gets it: their own lots only, and no names
    (no operators, no one who placed or released a hold or recorded a qualification) and
    no internal hold comments."""

    steps = fields.List(fields.Nested(CustomerStepOut))
    holds = fields.List(fields.Nested(CustomerHoldOut))
    qualifications = fields.List(fields.Nested(CustomerQualificationOut))


class ShipmentRefOut(Schema):
    id = fields.Integer()
    customer = fields.Function(lambda shipment: shipment.customer.code)
    po = fields.String()
    vehicle_program = fields.String(allow_none=True)
    shipped_at = fields.AwareDateTime()


class ShipmentBackwardOut(_BackwardLists):
    shipment = fields.Nested(ShipmentRefOut)
    lots = fields.List(fields.String(), metadata={"description": "The shipment's lots."})


class DescendantOut(LotBriefOut):
    pass


class TracedShipmentOut(Schema):
    id = fields.Integer()
    customer = fields.String()
    po = fields.String()
    vehicle_program = fields.String(allow_none=True)
    shipped_at = fields.AwareDateTime()
    lots = fields.List(fields.String(), metadata={"description": "The traced lots it carried."})


class ForwardOut(Schema):
    lot = fields.Nested(LotBriefOut)
    descendants = fields.List(fields.Nested(DescendantOut))
    shipments = fields.List(fields.Nested(TracedShipmentOut))
    customers = fields.List(fields.String())


class MatchForwardOut(Schema):
    match = fields.Dict()
    lots = fields.List(fields.Nested(LotBriefOut), metadata={
        "description": "The lots the criterion names directly."})
    descendants = fields.List(fields.Nested(DescendantOut), metadata={
        "description": "Every other lot they went into."})
    shipments = fields.List(fields.Nested(TracedShipmentOut))
    customers = fields.List(fields.String())


class ShippedOut(Schema):
    shipment = fields.Integer()
    customer = fields.String()
    po = fields.String()
    vehicle_program = fields.String(allow_none=True)
    shipped_at = fields.String()
    lots = fields.List(fields.String())


class ContainmentOut(Schema):
    id = fields.String(metadata={"description": "Addresses the recorded containment and its "
                                                "notification list."})
    holds = fields.List(fields.Nested(HoldOut))
    lots_held = fields.List(fields.String())
    shipped = fields.List(fields.Nested(ShippedOut))
    customers = fields.List(fields.String())
    skipped = fields.List(fields.String(), metadata={
        "description": "Matching lots scrapped or merged: neither held nor shipped."})
    match = fields.Dict()


class RecordedContainmentOut(Schema):
    id = fields.String()
    by = fields.String(allow_none=True)
    at = fields.AwareDateTime()
    reason = fields.String()
    comment = fields.String()
    match = fields.Dict()
    holds = fields.List(fields.Integer())
    lots_held = fields.List(fields.String())
    shipped = fields.List(fields.Nested(ShippedOut))
    customers = fields.List(fields.String())
    skipped = fields.List(fields.String())


class ScanQuery(Schema):
    """What was scanned: a lot number, a pack unit id, a whole 2D label, or a mark."""

    code = fields.String(required=True, validate=validate.Length(min=1, max=2000))


class ScanTraceOut(Schema):
    lot_no = fields.String()
    trace = fields.String()


class ScanOut(Schema):
    code = fields.String()
    kind = fields.String()
    lots = fields.List(fields.String())
    pack_units = fields.List(fields.String())
    traces = fields.List(fields.Nested(ScanTraceOut))
