"""Moisture floor-life clocks of lots (J-STD-033): operators open, seal, store dry and bake
at pack; every plant role reads."""

from __future__ import annotations

from typing import Any

from flask_login import current_user

from mes import db
from mes.api import bp
from mes.api.registry import api_route
from mes.auth.permissions import Permission
from mes.floor import services as floor
from mes.quality import schemas as s
from mes.quality import services
from mes.quality.services import BakeResult, MoistureView


@api_route(bp, "/lots/<lot_no>/moisture", method="POST", permission=Permission.LOT_TRACK,
           body=s.MoistureIn, response=s.MoistureOut, status=200, tag="moisture")
def moisture_action(lot_no: str, data: dict[str, Any]) -> MoistureView:
    """Move the lot's moisture clock: `open` starts or resumes it, `seal` (dry pack) and
    `dry_storage` pause it keeping the exposure, `bake` resets the exposure.

    MSL 6 lots need `label_hours` (the floor life on the label) when first opened. An
    expired lot is refused at pack steps and at shipment (409 `floor_life_expired`) until
    baked. MSL 1 lots are 409 `not_moisture_sensitive`.
    """
    session = db.session()
    lot = floor.get_lot(session, lot_no, current_user)
    return services.moisture_action(session, current_user, lot, data["action"],
                                    data.get("label_hours"), bake_of(data))


def bake_of(data: dict[str, Any]) -> dict[str, Any] | None:
    """The bake parameters of a moisture action, None when none is given."""
    bake: dict[str, Any] = {key: data[key] for key in ("temperature_c", "hours", "rh_pct")
                            if key in data}
    return bake or None


@api_route(bp, "/lots/<lot_no>/bakes", method="POST", permission=Permission.LOT_TRACK,
           body=s.BakeIn, response=s.BakeOut, status=201, tag="moisture")
def record_bake(lot_no: str, data: dict[str, Any]) -> BakeResult:
    """Record a bake of the lot (J-STD-033 Table 4-1). It counts, resetting the exposure
    (the clock runs again from the bake's end), when it meets the bake table for the
    product's MSL and body thickness at its temperature: 125 °C, or 90 °C / 40 °C at
    ≤ 5 % RH. Else 422 `insufficient_bake` with `required_hours`. A 125 °C bake of a lot
    on reels or in tubes is 409 `carrier_temperature`; MSL 1 is 409
    `not_moisture_sensitive`."""
    session = db.session()
    lot = floor.get_lot(session, lot_no, current_user)
    return services.record_bake(session, current_user, lot, temperature_c=data["temperature_c"],
                                hours=data["hours"], rh_pct=data.get("rh_pct"))


# Plant roles only (API.md "Customer users": every endpoint beyond the customer list
# answers 403): customers hold lot:read but not master:read.
@api_route(bp, "/lots/<lot_no>/moisture", permission=(Permission.LOT_READ,
                                                     Permission.MASTER_READ),
           response=s.MoistureOut, tag="moisture")
def get_moisture(lot_no: str) -> MoistureView:
    """The lot's moisture clock: state, exposure, remaining floor life, expired."""
    session = db.session()
    return services.moisture_view(session, floor.get_lot(session, lot_no, current_user))
