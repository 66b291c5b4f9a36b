"""Input and output schemas of commonality, containment from a factor, returns and failure
analysis (API.md, "Complaints")."""

from __future__ import annotations

from typing import Any

from flask import url_for
from flask_babel import lazy_gettext as _l
from marshmallow import Schema, ValidationError, fields, pre_load, validate

from mes.catalog.schemas import POSITIVE_COUNT, ROW_ID
from mes.commonality.services import FactorKind
from mes.floor.schemas import LOT_NO
from mes.quality.schemas import HoldIn
from mes.trace.schemas import ContainmentOut
from mes.vocabulary import AnalysisResult


def _split(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class CommonalityQuery(Schema):
    """`complaints` (comma-separated ids) and/or `lots` (comma-separated lot numbers): the
    complained lots are those the complaints resolved to, and the lots named."""

    complaints = fields.List(fields.Integer(strict=False, validate=ROW_ID),
                             validate=validate.Length(max=100))
    lots = fields.List(fields.String(validate=LOT_NO), validate=validate.Length(max=500))
    days = fields.Integer(validate=validate.Range(min=0, max=365), metadata={
        "description": "Days the base period extends the complained lots' shipments on "
                       "each side (default COMMONALITY_BASE_DAYS)."})
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))

    @pre_load
    def _lists(self, data: dict[str, Any], **_kw: Any) -> dict[str, Any]:
        data = dict(data)
        for name in ("complaints", "lots"):
            if name in data:
                data[name] = _split(data[name])
        if not data.get("complaints") and not data.get("lots"):
            raise ValidationError({"complaints": [str(_l("Give complaints (or lots)."))]})
        return data


class WindowSchema(Schema):
    since = fields.AwareDateTime(required=True)
    until = fields.AwareDateTime(required=True)


class FactorOut(Schema):
    kind = fields.String()
    label = fields.String()
    value = fields.String()
    step = fields.String(allow_none=True, metadata={"description": "Equipment: the step."})
    window = fields.Nested(WindowSchema, allow_none=True)
    complained_lots = fields.Integer()
    base_lots = fields.Integer()
    lift = fields.Float()
    p_value = fields.Float(metadata={
        "description": "The chance that as many complained lots would share the factor if "
                       "they were lots of the base taken at random (the ranking's key)."})
    ranked = fields.Boolean(metadata={"description": "Shared by at least two complained "
                                                     "lots (or by the only one)."})
    lots = fields.List(fields.String(), metadata={"description": "The complained lots "
                                                                 "sharing it."})


class PeriodOut(Schema):
    since = fields.AwareDateTime(allow_none=True)
    until = fields.AwareDateTime(allow_none=True)
    days = fields.Integer(attribute="base_days")


class CommonalityOut(Schema):
    lots = fields.List(fields.String())
    complaints = fields.List(fields.Integer())
    complained = fields.Integer(metadata={"description": "How many complained lots."})
    base = fields.Integer(metadata={"description": "How many lots in the base."})
    period = fields.Function(lambda c: PeriodOut().dump(c))
    factors = fields.List(fields.Nested(FactorOut))


class FactorIn(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(FactorKind.codes()))
    value = fields.String(required=True, validate=validate.Length(min=1, max=200))
    window = fields.Nested(WindowSchema)
    step = fields.String(validate=validate.Length(max=40))


class FactorContainmentIn(HoldIn):
    factor = fields.Nested(FactorIn, required=True)


class FactorContainmentOut(ContainmentOut):
    complaints = fields.List(fields.Integer())
    factor = fields.Dict()


class ReturnIn(Schema):
    units = fields.Integer(required=True, strict=True, validate=POSITIVE_COUNT)
    received_at = fields.AwareDateTime(required=True)


class AnalysisIn(Schema):
    step = fields.String(required=True, validate=validate.Length(min=1, max=40))
    result = fields.String(required=True, validate=validate.OneOf(AnalysisResult.codes()))
    notes = fields.String(load_default="", validate=validate.Length(max=4000))


def _attachment_url(attachment: Any) -> str:
    ret = attachment.analysis.ret
    return url_for("api.analysis_attachment", complaint_id=ret.complaint_id,
                   attachment_id=attachment.id)


class AttachmentOut(Schema):
    id = fields.Integer()
    filename = fields.String()
    content_type = fields.String()
    size = fields.Integer()
    sha256 = fields.String()
    url = fields.Function(_attachment_url)


class AnalysisOut(Schema):
    id = fields.Integer()
    step = fields.String()
    result = fields.String()
    notes = fields.String()
    created_at = fields.AwareDateTime()
    attachments = fields.List(fields.Nested(AttachmentOut))


class PlantAnalysisOut(AnalysisOut):
    created_by = fields.String()


class ReturnOut(Schema):
    id = fields.Integer()
    complaint = fields.Integer(attribute="complaint_id")
    units = fields.Integer()
    received_at = fields.AwareDateTime()
    analyses = fields.List(fields.Nested(AnalysisOut))


class PlantReturnOut(ReturnOut):
    created_by = fields.String()
    created_at = fields.AwareDateTime()
    analyses = fields.List(fields.Nested(PlantAnalysisOut))
