"""Input and output of grants and the WIP feed (the API and the pages share them)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_login import current_user
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from mes.catalog.schemas import CODE
from mes.vocabulary import Role

PO = validate.Length(min=1, max=60)
PROGRAM = validate.Length(min=1, max=60)


class GrantIn(Schema):
    """Exactly one scope: one PO line (`po` and `line`) or one vehicle program. `customer`
    names the chip owner; a customer user's own customer when left out (staff must name
    it)."""

    partner = fields.String(required=True, validate=CODE)
    customer = fields.String(load_default=None, allow_none=True, validate=CODE)
    po = fields.String(load_default=None, allow_none=True, validate=PO)
    line = fields.Integer(load_default=None, allow_none=True,
                          validate=validate.Range(min=1, max=2**31 - 1))
    vehicle_program = fields.String(load_default=None, allow_none=True, validate=PROGRAM)

    @validates_schema
    def _one_scope(self, data: dict[str, object], **_kwargs: object) -> None:
        by_line = data.get("po") is not None or data.get("line") is not None
        by_program = data.get("vehicle_program") is not None
        if by_line and by_program:
            raise ValidationError(_l("Grant one PO line or one vehicle program, not both."),
                                  "vehicle_program")
        if not by_line and not by_program:
            raise ValidationError(_l("Name a PO line (po and line) or a vehicle program."),
                                  "po")
        if by_line and data.get("po") is None:
            raise ValidationError(_l("Required with line."), "po")
        if by_line and data.get("line") is None:
            raise ValidationError(_l("Required with po."), "line")


class GrantQuery(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 500))
    cursor = fields.String(load_default=None)
    customer = fields.String(load_default=None, validate=CODE)


class GrantOut(Schema):
    id = fields.Integer()
    customer = fields.Function(lambda g: g.owner.code)
    partner = fields.Function(lambda g: g.partner.code)
    partner_name = fields.Function(lambda g: g.partner.name)
    po = fields.Function(lambda g: g.line.order.po if g.line is not None else None)
    line = fields.Function(lambda g: g.line.line_no if g.line is not None else None)
    vehicle_program = fields.String(allow_none=True)
    granted_at = fields.AwareDateTime()
    # Who granted: for the owner and the plant; a partner's users read null.
    granted_by = fields.Function(
        lambda g: None if getattr(current_user, "role", None) == Role.PARTNER
        else g.granted_by)


class FeedQuery(Schema):
    format = fields.String(load_default="json", validate=validate.OneOf(("json", "csv")))
    customer = fields.String(load_default=None, validate=CODE)
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 500))
    cursor = fields.String(load_default=None)


class FeedRowOut(Schema):
    lot_no = fields.String()
    customer = fields.String()
    po = fields.String(allow_none=True)
    line = fields.Integer(allow_none=True)
    product = fields.String()
    step = fields.String(allow_none=True)
    stage = fields.String()
    state = fields.String()
    quantity = fields.Integer()
    p50 = fields.AwareDateTime(allow_none=True)
    p90 = fields.AwareDateTime(allow_none=True)
    holds = fields.Integer()
    hold_reasons = fields.List(fields.String())
    hold_reason_texts = fields.List(fields.String())
