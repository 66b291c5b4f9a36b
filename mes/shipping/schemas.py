"""Input and output schemas of shipments."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from marshmallow import (
    Schema,
    ValidationError,
    fields,
    pre_dump,
    validate,
    validates,
    validates_schema,
)

from mes.catalog.schemas import CODE
from mes.floor.schemas import LOT_NO
from mes.pagination import ListArgs
from mes.shipping.packing import MAX_CARRIERS, MAX_CHILDREN, PresentedPackUnit
from mes.shipping.services import MAX_LOTS, PO_LENGTH
from mes.vocabulary import CARRIERS, PACKAGES

# A pack unit id as typed or scanned (R-000123); the service says whether it exists.
PACK_ID = validate.Length(min=3, max=30)


class ShipmentIn(Schema):
    customer = fields.String(required=True, validate=CODE)
    po = fields.String(required=True, validate=validate.Length(min=1, max=PO_LENGTH))
    vehicle_program = fields.String(load_default=None, allow_none=True,
                                    validate=validate.Length(min=1, max=60))
    # Lots (a packed lot: all its reels not shipped yet) and/or pack units (outermost:
    # cartons, boxes, bags or loose reels); at least one of the two.
    lots = fields.List(fields.String(validate=LOT_NO), load_default=list,
                       validate=validate.Length(max=MAX_LOTS))
    pack_units = fields.List(fields.String(validate=PACK_ID), load_default=list,
                             validate=validate.Length(max=MAX_LOTS))

    @validates("lots")
    def _distinct(self, value: list[str], **_kw: object) -> None:
        if len(set(value)) != len(value):
            raise ValidationError(_l("Name each lot once."))

    @validates("pack_units")
    def _distinct_units(self, value: list[str], **_kw: object) -> None:
        if len({v.strip().upper() for v in value}) != len(value):
            raise ValidationError(_l("Name each pack unit once."))

    @validates_schema
    def _something(self, data: dict[str, Any], **_kw: object) -> None:
        if not data.get("lots") and not data.get("pack_units"):
            raise ValidationError(_l("Name the lots or the pack units to ship."),
                                  field_name="lots")


class ShipmentLotOut(Schema):
    lot_no = fields.Function(lambda row: row.lot.lot_no)
    quantity = fields.Integer()


class ShipmentOut(Schema):
    id = fields.Integer()
    pack_units = fields.Function(lambda shipment: [unit.code for unit in shipment.units])
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


# --- packing ---------------------------------------------------------------------------

class PackIn(Schema):
    """Pack a lot: the carrier and, optionally, the units per carrier (default: the
    product's standard pack quantity) or every carrier's quantity."""

    carrier = fields.String(required=True, validate=validate.OneOf([c.value for c in CARRIERS]))
    quantity_per = fields.Integer(load_default=None, allow_none=True,
                                  validate=validate.Range(min=1, max=10_000_000))
    quantities = fields.List(fields.Integer(validate=validate.Range(min=1, max=10_000_000)),
                             load_default=None, allow_none=True,
                             validate=validate.Length(min=1, max=MAX_CARRIERS))


class PackageIn(Schema):
    kind = fields.String(required=True, validate=validate.OneOf([k.value for k in PACKAGES]))
    children = fields.List(fields.String(validate=PACK_ID), required=True,
                           validate=validate.Length(min=1, max=MAX_CHILDREN))
    # The count on the packing list, checked against the children's (optional).
    quantity = fields.Integer(load_default=None, allow_none=True,
                              validate=validate.Range(min=1, max=1_000_000_000))


class LotShareOut(Schema):
    lot_no = fields.String()
    quantity = fields.Integer()


class PackUnitOut(Schema):
    """A pack unit as packing.present_unit shows it."""

    id = fields.String()
    kind = fields.String()
    parent = fields.String(allow_none=True)
    children = fields.List(fields.String())
    quantity = fields.Integer()
    product = fields.String()
    customer = fields.String()
    lots = fields.List(fields.Nested(LotShareOut))
    date_codes = fields.List(fields.String())
    sealed_at = fields.AwareDateTime(allow_none=True)
    shipment = fields.Integer(allow_none=True)
    created_at = fields.AwareDateTime()

    @pre_dump
    def _presented(self, shown: object, **kwargs: object) -> PresentedPackUnit:
        if not isinstance(shown, PresentedPackUnit):
            raise TypeError(f"PackUnitOut shows a PresentedPackUnit, not {type(shown).__name__}")
        return shown


class LotPackOut(Schema):
    lot_no = fields.String()
    units = fields.List(fields.Nested(PackUnitOut))


class CocArgs(Schema):
    """How the certificate of conformance is answered: `html` (default) or `pdf`."""

    format = fields.String(load_default="html", validate=validate.OneOf(("html", "pdf")))


class LabelArgs(Schema):
    """The format of a pack unit's label: png (default), svg, pdf or zpl."""

    format = fields.String(load_default="png",
                           validate=validate.OneOf(("png", "svg", "pdf", "zpl")))
