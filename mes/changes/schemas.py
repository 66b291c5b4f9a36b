"""Input and output schemas of product changes and PCNs (the API and the pages share them)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from mes.catalog.schemas import CODE, NAME
from mes.pagination import ListArgs
from mes.vocabulary import ChangeKind, PcnStatus

REVISION = validate.Length(min=1, max=20)


class ChangeItemIn(Schema):
    step = fields.String(required=True, validate=CODE)
    material = fields.String(required=True, validate=CODE)


class ChangeIn(Schema):
    title = fields.String(required=True, validate=NAME)
    kind = fields.String(required=True, validate=validate.OneOf(ChangeKind.codes()))
    products = fields.List(fields.String(validate=CODE), required=True,
                           validate=validate.Length(min=1, max=50))
    bom_revision = fields.String(load_default=None, allow_none=True, validate=REVISION)
    # Default: the items that differ between the new revision and the one before.
    items = fields.List(fields.Nested(ChangeItemIn), load_default=None, allow_none=True,
                        validate=validate.Length(max=200))
    description = fields.String(load_default="", validate=validate.Length(max=4000))


class PcnsIn(Schema):
    notice_days = fields.Integer(load_default=None, allow_none=True,
                                 validate=validate.Range(min=1, max=3650))


class DecisionIn(Schema):
    # Required (mes.changes.services.decide_pcn): checked once the PCN is found, so that
    # another customer's PCN is 404 whatever the body.
    approve = fields.Boolean(load_default=None)
    comment = fields.String(load_default="", validate=validate.Length(max=2000))


class PcnQuery(ListArgs):
    status = fields.String(load_default=None, validate=validate.OneOf(PcnStatus.codes()))
    change = fields.Integer(load_default=None, validate=validate.Range(min=1, max=2**63 - 1))


class PcnOut(Schema):
    id = fields.Integer()
    change = fields.Integer(attribute="change_id")
    title = fields.Function(lambda pcn: pcn.change.title)
    kind = fields.Function(lambda pcn: pcn.change.kind)
    products = fields.Function(lambda pcn: [row.product.code for row in pcn.change.products])
    bom_revision = fields.Function(lambda pcn: pcn.change.bom_revision)
    description = fields.Function(lambda pcn: pcn.change.description)
    customer = fields.Function(lambda pcn: pcn.customer.code)
    notice_days = fields.Integer()
    sent_at = fields.AwareDateTime()
    effective_date = fields.Date()
    status = fields.String()
    decided_at = fields.AwareDateTime(allow_none=True)
    decided_by = fields.String(allow_none=True)
    comment = fields.String()


class RequalificationOut(Schema):
    product = fields.String()
    bom_revision = fields.String(allow_none=True)
    required = fields.List(fields.String())
    passed = fields.List(fields.String())
    missing = fields.List(fields.String())
    items = fields.List(fields.Dict())
    done = fields.Boolean()


class ChangeOut(Schema):
    """A change as `mes.changes.services.present` shows it (a PresentedChange)."""

    id = fields.Integer(attribute="change.id")
    title = fields.String(attribute="change.title")
    kind = fields.String(attribute="change.kind")
    description = fields.String(attribute="change.description")
    products = fields.Function(lambda shown: [row.product for row in shown.products])
    bom_revision = fields.String(attribute="change.bom_revision", allow_none=True)
    required_stresses = fields.List(fields.String(), attribute="change.required_stresses")
    status = fields.String()
    requalified = fields.Boolean()
    requalification = fields.List(fields.Nested(RequalificationOut), attribute="products")
    pcns = fields.List(fields.Nested(PcnOut))
    created_at = fields.AwareDateTime(attribute="change.created_at")
    created_by = fields.String(attribute="change.created_by", allow_none=True)
