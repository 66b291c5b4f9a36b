"""Forecast endpoints: a lot's completion forecast."""

from __future__ import annotations

from typing import Any

from flask_login import current_user

from mes import db
from mes.api import bp
from mes.api.registry import api_route
from mes.auth.permissions import Permission
from mes.floor import services as floor
from mes.forecast import (
    outlook,  # noqa: F401  (its receivers announce changes)
    services,
)
from mes.forecast import schemas as s


@api_route(bp, "/lots/<lot_no>/forecast", permission=Permission.LOT_READ,
           response=s.ForecastOut, tag="lots")
def lot_forecast(lot_no: str) -> dict[str, Any]:
    """The lot's completion forecast: P50 and P90 times, remaining steps, on hold.

    Drawn from the recent durations of its remaining steps and, when held, of holds of the
    same reason (docs/forecasting.md). A banked lot is forecast from its planned start; one
    without a planned start has none (p50 and p90 null, reason "no_planned_start").
    """
    session = db.session()
    lot = floor.get_lot(session, lot_no, current_user)
    return services.lot_forecast_view(session, lot, current_user)
