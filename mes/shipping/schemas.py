"""Input and output schemas of shipments."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from marshmallow import Schema, ValidationError, fields, validate, validates

from mes.catalog.schemas import CODE
from mes.floor.schemas import LOT_NO
from mes.pagination import ListArgs
from mes.shipping.services import MAX_LOTS, PO_LENGTH


class ShipmentIn(Schema):
    customer = fields.String(required=True, validate=CODE)
    po = fields.String(required=True, validate=validate.Length(min=1, max=PO_LENGTH))
    vehicle_program = fields.String(load_default=None, allow_none=True,
                                    validate=validate.Length(min=1, max=60))
    lots = fields.List(fields.String(validate=LOT_NO), required=True,
                       validate=validate.Length(min=1, max=MAX_LOTS))

    @validates("lots")
    def _distinct(self, value: list[str], **_kw: object) -> None:
        if len(set(value)) != len(value):
            raise ValidationError(_l("Name each lot once."))


class ShipmentLotOut(Schema):
    lot_no = fields.Function(lambda row: row.lot.lot_no)
    quantity = fields.Integer()


class ShipmentOut(Schema):
    id = fields.Integer()
    customer = fields.Function(lambda shipment: shipment.customer.code)
    po = fields.String()
    vehicle_program = fields.String(allow_none=True)
    shipped_at = fields.AwareDateTime()
    lots = fields.List(fields.Nested(ShipmentLotOut))


class ShipmentQuery(ListArgs):
    """Filters of the shipment lists (API and page): customer code, PO, vehicle program,
    a lot number the shipment carried, shipping dates (UTC days, inclusive)."""

    customer = fields.String(load_default=None, validate=validate.Length(max=40))
    po = fields.String(load_default=None, validate=validate.Length(max=PO_LENGTH))
    vehicle_program = fields.String(load_default=None, validate=validate.Length(max=60))
    lot = fields.String(load_default=None, validate=validate.Length(max=60))
    since = fields.Date(load_default=None)
    until = fields.Date(load_default=None)


class CocArgs(Schema):
    """How the certificate of conformance is answered: `html` (default) or `pdf`."""

    format = fields.String(load_default="html", validate=validate.OneOf(("html", "pdf")))


class LabelArgs(Schema):
    """The format of a pack unit's label: png (default), svg, pdf or zpl."""

    format = fields.String(load_default="png",
                           validate=validate.OneOf(("png", "svg", "pdf", "zpl")))
