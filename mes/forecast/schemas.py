"""Output schemas of forecasts."""

from __future__ import annotations

from marshmallow import Schema, fields


class ForecastOut(Schema):
    """A lot's completion forecast (mes.forecast.services.LotForecastView)."""

    lot_no = fields.String()
    p50 = fields.AwareDateTime(allow_none=True)
    p90 = fields.AwareDateTime(allow_none=True)
    remaining_steps = fields.Integer()
    on_hold = fields.Boolean()
    expected_quantity = fields.Integer(allow_none=True)
    computed_at = fields.AwareDateTime()
    # Why there is no forecast (p50 and p90 null): "no_planned_start" (a banked lot
    # without a planned start) or "closed" (the lot is out of WIP).
    reason = fields.String(allow_none=True)
