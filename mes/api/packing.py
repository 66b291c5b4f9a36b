"""Packing endpoints: a lot into reels (trays, tubes), pack units into dry bags, boxes and
cartons, and what a pack unit holds."""

from __future__ import annotations

from typing import Any

from flask_login import current_user

from mes import db
from mes.api import bp
from mes.api.registry import api_route
from mes.auth.permissions import Permission
from mes.floor import services as floor
from mes.shipping import packing
from mes.shipping import schemas as s
from mes.shipping.packing import PresentedPackUnit


@api_route(bp, "/lots/<lot_no>/pack", method="POST", permission=Permission.PACK,
           body=s.PackIn, response=s.LotPackOut, status=201, tag="packing")
def pack_lot(lot_no: str, data: dict[str, Any]) -> dict[str, Any]:
    """Pack the lot into reels, trays or tubes of the product's standard pack quantity (or
    `quantity_per`, or the carriers' `quantities`), the last one partial. The lot must be
    at its pack step (tape and reel) or completed, free of holds, not packed before."""
    session = db.session()
    lot = floor.get_lot(session, lot_no)
    units = packing.pack_lot(session, current_user, lot, carrier=data["carrier"],
                             quantity_per=data.get("quantity_per"),
                             quantities=data.get("quantities"))
    return {"lot_no": lot.lot_no,
            "units": [packing.present_unit(session, unit) for unit in units]}


@api_route(bp, "/pack-units", method="POST", permission=Permission.PACK, body=s.PackageIn,
           response=s.PackUnitOut, status=201, tag="packing")
def create_pack_unit(data: dict[str, Any]) -> PresentedPackUnit:
    """Put pack units into a new dry bag (reels, trays, tubes), box (carriers of products
    that are not moisture-sensitive, or dry bags) or carton (boxes). One product and one
    customer per package; quantities balance (`quantity`, when given, must be the sum)."""
    session = db.session()
    unit = packing.make_package(session, current_user, kind=data["kind"],
                                children=data["children"], quantity=data.get("quantity"))
    return packing.present_unit(session, unit)


@api_route(bp, "/pack-units/<code>", permission=Permission.LOT_READ, response=s.PackUnitOut,
           tag="packing")
def get_pack_unit(code: str) -> PresentedPackUnit:
    """A pack unit: its kind, parent, children, quantity, product, lots with their
    quantities, date codes, seal time (dry bags) and shipment. Customers: their own only."""
    session = db.session()
    return packing.present_unit(session, packing.get_pack_unit(session, code, current_user))
