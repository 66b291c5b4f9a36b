"""Input and output schemas of holds and future holds."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, post_dump, pre_dump, pre_load, validate

from mes.catalog.schemas import CODE, POSITIVE_COUNT, ROW_ID
from mes.floor.schemas import LOT_NO
from mes.pagination import ListArgs
from mes.quality.models import PresentedRule
from mes.vocabulary import (
    Disposition,
    FutureHoldStatus,
    HoldSource,
    HoldStatus,
    MoistureAction,
    MoistureState,
)

COMMENT = validate.Length(min=1, max=4000)
# A mass hold or a future hold may name a long list of lots (a customer complaint's reels).
MAX_MATCH_LOTS = 10_000
# A bulk release names holds one by one (the queue page shows at most 500).
MAX_RELEASE_HOLDS = 1000


class MatchIn(Schema):
    """Exactly one criterion: `fab_lot`; `wafer` (optionally with `fab_lot`);
    `material_lot`; `equipment` with `since` and optionally `until` (an open window
    otherwise); `lots`; `date_code`; `route_version` with `route`; or `bom_revision` with
    `product` (the last three not for future holds). Every descendant through splits and
    merges matches too."""

    fab_lot = fields.String(validate=validate.Length(min=1, max=60))
    wafer = fields.String(validate=validate.Length(min=1, max=40))
    material_lot = fields.String(validate=validate.Length(min=1, max=60))
    equipment = fields.String(validate=CODE)
    since = fields.AwareDateTime()
    until = fields.AwareDateTime(allow_none=True)
    lots = fields.List(fields.String(validate=LOT_NO),
                       validate=validate.Length(min=1, max=MAX_MATCH_LOTS))
    date_code = fields.String(validate=validate.Length(min=1, max=4))
    route = fields.String(validate=CODE)
    route_version = fields.Integer(strict=True, validate=validate.Range(min=1))
    product = fields.String(validate=CODE)
    bom_revision = fields.String(validate=validate.Length(min=1, max=20))


class MatchQuery(MatchIn):
    """The match as query parameters (`lots` comma-separated)."""

    @pre_load
    def _split_lots(self, data: dict[str, Any], **_kw: Any) -> dict[str, Any]:
        if isinstance(data.get("lots"), str):
            data = {**data, "lots": [n.strip() for n in data["lots"].split(",") if n.strip()]}
        return data


class HoldIn(Schema):
    reason = fields.String(required=True, validate=CODE)
    comment = fields.String(required=True, validate=COMMENT)


class MassHoldIn(HoldIn):
    match = fields.Nested(MatchIn, required=True)


class FutureHoldIn(HoldIn):
    at_step = fields.String(required=True, validate=CODE)
    match = fields.Nested(MatchIn, required=True)


class ReleaseIn(Schema):
    disposition = fields.String(required=True, validate=validate.OneOf(Disposition.codes()))
    comment = fields.String(required=True, validate=COMMENT)
    rework_step = fields.String(load_default=None, allow_none=True, validate=CODE)
    scrap_qty = fields.Integer(load_default=None, allow_none=True, validate=POSITIVE_COUNT)
    scrap_reason = fields.String(load_default=None, allow_none=True, validate=CODE)
    concession = fields.String(load_default=None, allow_none=True,
                               validate=validate.Length(min=1, max=80))
    # Honoured only for an admin releasing a hold they placed (the two-person rule).
    override_reason = fields.String(load_default=None, allow_none=True,
                                    validate=validate.Length(min=1, max=4000))


class ReleaseManyIn(ReleaseIn):
    holds = fields.List(fields.Integer(validate=ROW_ID), required=True,
                        validate=validate.Length(min=1, max=MAX_RELEASE_HOLDS))


class HoldQuery(ListArgs):
    status = fields.String(load_default=None, validate=validate.OneOf(HoldStatus.codes()))
    lot = fields.String(load_default=None, validate=LOT_NO)
    source = fields.String(load_default=None, validate=validate.OneOf(HoldSource.codes()))


class FutureHoldQuery(ListArgs):
    status = fields.String(load_default=None, validate=validate.OneOf(FutureHoldStatus.codes()))
    at_step = fields.String(load_default=None, validate=CODE)


class HoldOut(Schema):
    id = fields.Integer()
    lot_no = fields.Function(lambda hold: hold.lot.lot_no)
    reason = fields.Function(lambda hold: hold.reason.code)
    reason_description = fields.Function(lambda hold: hold.reason.description)
    comment = fields.String()
    status = fields.String()
    source = fields.String()
    step = fields.String(attribute="step_code", allow_none=True)
    placed_by = fields.String()
    placed_at = fields.AwareDateTime()
    future_hold = fields.Integer(attribute="future_hold_id", allow_none=True)
    released_by = fields.String(allow_none=True)
    released_at = fields.AwareDateTime(allow_none=True)
    disposition = fields.String(allow_none=True)
    release_comment = fields.String(allow_none=True)
    rework_step = fields.String(allow_none=True)
    scrap_qty = fields.Integer(allow_none=True)
    scrap_reason = fields.Function(
        lambda hold: hold.scrap_reason.code if hold.scrap_reason else None, allow_none=True)
    concession = fields.String(allow_none=True)
    override_reason = fields.String(allow_none=True)
    # When and by whom QA notified the customer (POST /holds/{id}/notify-customer).
    customer_notified_at = fields.AwareDateTime(allow_none=True)
    customer_notified_by = fields.String(allow_none=True)
    data = fields.Dict()


class ReleaseManyOut(Schema):
    holds = fields.List(fields.Nested(HoldOut), metadata={"description": "Holds released."})


class MassHoldOut(Schema):
    holds = fields.List(fields.Nested(HoldOut))
    lots = fields.List(fields.String(), metadata={"description": "Lots held."})
    shipped = fields.List(fields.String(),
                          metadata={"description": "Matching lots already shipped: not held."})
    skipped = fields.List(fields.String(),
                          metadata={"description": "Matching lots scrapped or merged."})


class MatchPreviewOut(Schema):
    to_hold = fields.List(fields.String(), metadata={"description": "Lots a hold would hold."})
    shipped = fields.List(fields.String())
    skipped = fields.List(fields.String())


class MatchingNowOut(Schema):
    before_step = fields.Integer(metadata={"description": "Will be held on arrival."})
    at_step = fields.Integer(metadata={"description": "At the step now: not held by the "
                                                      "rule."})
    past_step = fields.Integer()
    not_on_route = fields.Integer()
    shipped = fields.Integer()
    at_step_lots = fields.List(fields.String())


class FutureHoldOut(Schema):
    """A rule as quality.services.present_rules shows it (a PresentedRule, never a bare
    FutureHold)."""

    id = fields.Integer(attribute="rule.id")
    reason = fields.Function(lambda shown: shown.rule.reason.code)
    comment = fields.String(attribute="rule.comment")
    at_step = fields.String(attribute="rule.at_step")
    match = fields.Dict(attribute="rule.match")
    status = fields.String(attribute="rule.status")
    created_by = fields.String(attribute="rule.created_by")
    created_at = fields.AwareDateTime(attribute="rule.created_at")
    retired_by = fields.String(attribute="rule.retired_by", allow_none=True)
    retired_at = fields.AwareDateTime(attribute="rule.retired_at", allow_none=True)
    holds_placed = fields.Integer()
    # Only in the answer to the rule's creation.
    matching_now = fields.Nested(MatchingNowOut)

    @pre_dump
    def _presented(self, shown: object, **kwargs: object) -> PresentedRule:
        # A bare rule would lose its hold count without a word.
        if not isinstance(shown, PresentedRule):
            raise TypeError(f"FutureHoldOut shows a PresentedRule, not {type(shown).__name__}")
        return shown

    @post_dump
    def _only_on_creation(self, data: dict[str, Any], **kwargs: object) -> dict[str, Any]:
        if data["matching_now"] is None:
            del data["matching_now"]
        return data


class MoistureIn(Schema):
    action = fields.String(required=True,
                           validate=validate.OneOf(MoistureAction.codes()))
    # MSL 6 only: the floor life printed on the label, in hours, when opening.
    label_hours = fields.Float(validate=validate.Range(min=0, min_inclusive=False, max=8760))
    # A bake only: oven temperature, time and humidity (see BakeIn).
    temperature_c = fields.Float(validate=validate.Range(min=20, max=200))
    hours = fields.Float(validate=validate.Range(min=0, max=24 * 200, min_inclusive=False))
    rh_pct = fields.Float(allow_none=True, validate=validate.Range(0, 100))


class BakeIn(Schema):
    """A bake (J-STD-033 Table 4-1): oven temperature in °C, hours, and the oven's relative
    humidity (90 °C and 40 °C bakes count at ≤ 5 % RH; omitted: a dry oven)."""

    temperature_c = fields.Float(required=True, validate=validate.Range(min=20, max=200))
    hours = fields.Float(required=True, validate=validate.Range(min=0, max=24 * 200,
                                                                 min_inclusive=False))
    rh_pct = fields.Float(load_default=None, allow_none=True, validate=validate.Range(0, 100))


class SealOut(Schema):
    sealed_at = fields.AwareDateTime()
    shelf_life_until = fields.AwareDateTime()


class MoistureOut(Schema):
    lot_no = fields.String()
    msl = fields.String()
    state = fields.String(metadata={"enum": list(MoistureState.codes())})
    exposure_hours = fields.Float()
    floor_life_hours = fields.Float(allow_none=True)
    remaining_hours = fields.Float(allow_none=True)
    expired = fields.Boolean()
    open_since = fields.AwareDateTime(allow_none=True)
    label_hours = fields.Float(allow_none=True)
    baked_at = fields.AwareDateTime(allow_none=True)
    updated_at = fields.AwareDateTime(allow_none=True)
    # The packaging house (J-STD-033): exposure since the last bake or since the clock
    # started (None: no clock), hours since the last bake, the product's manufacturer's
    # exposure time, the dry bag's seal and shelf life while sealed.
    exposure_h = fields.Float(allow_none=True)
    since_bake_h = fields.Float(allow_none=True)
    met_h = fields.Float()
    seal = fields.Nested(SealOut, allow_none=True)


class BakeOut(Schema):
    lot_no = fields.String()
    temperature_c = fields.Float()
    hours = fields.Float()
    rh_pct = fields.Float(allow_none=True)
    meets_table = fields.Boolean()
    required_hours = fields.Float()
    # The table column the bake counted in (125, 90 or 40 °C).
    table_temperature_c = fields.Integer()
    baked_at = fields.AwareDateTime()
    step = fields.String(allow_none=True)
    moisture = fields.Nested(MoistureOut, attribute="view")
