"""Input and output schemas of complaints and their 8D (the API and the pages share them)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from mes.catalog.schemas import CODE
from mes.complaints.services import MAX_UNITS
from mes.pagination import ListArgs
from mes.trace.scan import MAX_CODE
from mes.vocabulary import ComplaintState

TEXT = validate.Length(max=4000)


class ComplaintUnitIn(Schema):
    # The code as scanned or typed: a label's ISO/IEC 15434 message, a pack unit id, a
    # package mark or a lot number.
    scan = fields.String(required=True, validate=validate.Length(min=1, max=MAX_CODE))
    failure_mode = fields.String(required=True, validate=validate.Length(min=1, max=200))
    count = fields.Integer(load_default=1, validate=validate.Range(min=1, max=10_000_000))


class ComplaintIn(Schema):
    # Implied (and optional) for a customer's user.
    customer = fields.String(load_default=None, allow_none=True, validate=CODE)
    reference = fields.String(required=True, validate=validate.Length(min=1, max=80))
    vehicle_program = fields.String(load_default=None, allow_none=True,
                                    validate=validate.Length(max=60))
    received_at = fields.AwareDateTime(required=True)
    description = fields.String(required=True, validate=validate.Length(min=1, max=4000))
    units = fields.List(fields.Nested(ComplaintUnitIn), required=True,
                        validate=validate.Length(min=1, max=MAX_UNITS))


class ComplaintStepIn(Schema):
    owner = fields.String(load_default=None, allow_none=True,
                          validate=validate.Length(min=1, max=80))
    text = fields.String(load_default=None, allow_none=True, validate=TEXT)
    internal_note = fields.String(load_default=None, allow_none=True, validate=TEXT)
    root_cause_occurrence = fields.String(load_default=None, allow_none=True, validate=TEXT)
    root_cause_escape = fields.String(load_default=None, allow_none=True, validate=TEXT)
    verification = fields.String(load_default=None, allow_none=True, validate=TEXT)
    done = fields.Boolean(load_default=None, allow_none=True)


class ComplaintQuery(ListArgs):
    state = fields.String(load_default=None, validate=validate.OneOf(ComplaintState.codes()))
    overdue = fields.Boolean(load_default=False)


class ComplaintUnitOut(Schema):
    scan = fields.String()
    kind = fields.String()
    failure_mode = fields.String()
    count = fields.Integer()


class ComplaintStepOut(Schema):
    """A step of the 8D. Customers' users get no owner, done_by or internal note, and the
    customer-facing steps only (D3, D4, D5, D6, D8)."""

    step = fields.String()
    title = fields.String()
    owner = fields.String(allow_none=True)
    owner_name = fields.String(allow_none=True)
    due_at = fields.AwareDateTime()
    done_at = fields.AwareDateTime(allow_none=True)
    done_by = fields.String(allow_none=True)
    overdue = fields.Boolean()
    text = fields.String()
    internal_note = fields.String()
    root_cause_occurrence = fields.String(allow_none=True)
    root_cause_escape = fields.String(allow_none=True)
    verification = fields.String(allow_none=True)


class ComplaintContainmentOut(Schema):
    """A containment run for the complaint (customers: the lots of theirs it held only)."""

    id = fields.String()
    at = fields.AwareDateTime(allow_none=True)
    by = fields.String()
    reason = fields.String()
    lots_held = fields.List(fields.String())
    open_holds = fields.List(fields.Integer())


class ComplaintOut(Schema):
    """A complaint as `mes.complaints.present.present` shows it to the reader."""

    id = fields.Integer()
    customer = fields.String()
    customer_name = fields.String()
    reference = fields.String()
    vehicle_program = fields.String(allow_none=True)
    received_at = fields.AwareDateTime()
    description = fields.String()
    state = fields.String()
    created_at = fields.AwareDateTime()
    created_by = fields.String()
    closed_at = fields.AwareDateTime(allow_none=True)
    overdue = fields.Boolean()
    internal_notes = fields.String()
    lots = fields.List(fields.String())
    units = fields.List(fields.Nested(ComplaintUnitOut))
    eightd = fields.List(fields.Nested(ComplaintStepOut))
    containments = fields.List(fields.Nested(ComplaintContainmentOut))
    returns = fields.List(fields.Dict())
