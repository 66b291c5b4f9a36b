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
from mes.quality.services import MoistureView


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
                                    data.get("label_hours"))


# Plant roles only (API.md "Customer users": every endpoint beyond the customer list
# answers 403): customers hold lot:read but not master:read.
@api_route(bp, "/lots/<lot_no>/moisture", permission=(Permission.LOT_READ,
                                                     Permission.MASTER_READ),
           response=s.MoistureOut, tag="moisture")
def get_moisture(lot_no: str) -> MoistureView:
    """The lot's moisture clock: state, exposure, remaining floor life, expired."""
    session = db.session()
    return services.moisture_view(session, floor.get_lot(session, lot_no, current_user))
