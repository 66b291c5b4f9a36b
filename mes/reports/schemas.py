"""The reports' query arguments and, for the OpenAPI document, their rows."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask_babel import lazy_gettext as _l
from marshmallow import Schema, ValidationError, fields, validate

from mes.catalog.schemas import CODE
from mes.reports.services import PERIODS, WIP_AGES, WIP_GROUPS
from mes.vocabulary import EquipmentState


def _zone(name: str) -> None:
    try:
        ZoneInfo(name)
    except (ValueError, ZoneInfoNotFoundError):
        raise ValidationError(_l("Unknown time zone %(zone)s.", zone=name)) from None


class ReportArgs(Schema):
    """from / to: ISO dates (to inclusive; default the last 30 days); filters by code."""

    from_ = fields.Date(data_key="from", attribute="from", load_default=None)
    to = fields.Date(load_default=None)
    product = fields.String(load_default=None, validate=CODE)
    customer = fields.String(load_default=None, validate=CODE)
    step = fields.String(load_default=None, validate=CODE)
    format = fields.String(load_default="json", validate=validate.OneOf(("json", "csv")))
    # Beyond the contract: the time zone whose days `from` / `to` and the day and week
    # buckets are (an IANA name); UTC when not given, as the contract has it.
    tz = fields.String(load_default=None, validate=_zone)


class WipArgs(ReportArgs):
    by = fields.String(load_default="step", validate=validate.OneOf(WIP_GROUPS))


class LateArgs(ReportArgs):
    limit = fields.Integer(load_default=500, validate=validate.Range(1, 5000))


class TrendArgs(ReportArgs):
    period = fields.String(load_default="week", validate=validate.OneOf(PERIODS))


class EquipmentArgs(ReportArgs):
    by = fields.String(load_default="equipment", validate=validate.OneOf(("equipment", "kind")))
    kind = fields.String(load_default=None, validate=CODE)


def _report(name: str, row: dict[str, Any], **extra: Any) -> type[Schema]:
    """{rows: [row], from, to, ...extra} named `name`."""
    row_schema = Schema.from_dict(row, name=f"{name}Row")
    return Schema.from_dict({"rows": fields.List(fields.Nested(row_schema)),
                             "from": fields.Date(), "to": fields.Date(), **extra},
                            name=f"{name}Report")


_H = fields.Float
_AGES = {name: fields.Integer() for name, _d in WIP_AGES}
_STATES = {f"{s}_h": _H() for s in EquipmentState.codes()}

WipReport = _report("Wip", {
    "step": fields.String(metadata={"description": "or product / customer with ?by="}),
    "product": fields.String(), "customer": fields.String(),
    "lots": fields.Integer(), "quantity": fields.Integer(), "on_hold": fields.Integer(),
    "running": fields.Integer(), "late": fields.Integer(),
    "oldest_at_step": fields.AwareDateTime(), "oldest_age_h": _H(), **_AGES})
LateReport = _report("LateLots", {
    "lot_no": fields.String(), "product": fields.String(), "customer": fields.String(),
    "step": fields.String(), "state": fields.String(), "quantity": fields.Integer(),
    "due_date": fields.Date(), "days_late": fields.Integer(), "on_hold": fields.Boolean(),
    "at_step_h": _H()})
YieldReport = _report("Yield", {
    "step": fields.String(), "product": fields.String(), "runs": fields.Integer(),
    "quantity_in": fields.Integer(), "good": fields.Integer(), "rejected": fields.Integer(),
    "yield": _H(allow_none=True), "tested_units": fields.Integer(allow_none=True),
    "first_pass_yield": _H(allow_none=True), "final_yield": _H(allow_none=True)})
TrendReport = _report("YieldTrend", {
    "product": fields.String(), "period": fields.String(), "period_start": fields.Date(),
    "quantity_in": fields.Integer(), "good": fields.Integer(), "yield": _H(allow_none=True)})
FinalTestTrendReport = _report("FinalTestYieldTrend", {
    "product": fields.String(), "period": fields.String(), "period_start": fields.Date(),
    "quantity_in": fields.Integer(), "good": fields.Integer(), "yield": _H(allow_none=True)},
    measure=fields.String())
RejectReport = _report("Rejects", {
    "reason": fields.String(allow_none=True, metadata={
        "description": "customers: the customer category instead of the reason code"}),
    "step": fields.String(allow_none=True, metadata={"description": "customers: null"}),
    "category": fields.String(allow_none=True),
    "quantity": fields.Integer(), "kind": fields.String(), "share": _H(),
    "cumulative": _H()}, total=fields.Integer())
CycleReport = _report("CycleTime", {
    "step": fields.String(), "lots": fields.Integer(), "queue_median_h": _H(),
    "queue_p90_h": _H(), "process_median_h": _H(), "process_p90_h": _H(),
    "queue_mean_h": _H(), "process_mean_h": _H()})
LotCycleReport = _report("LotCycleTime", {
    "product": fields.String(), "lots": fields.Integer(), "cycle_median_h": _H(),
    "cycle_p90_h": _H(), "cycle_mean_h": _H()})
HoldReport = _report("Holds", {
    "bucket": fields.String(), "reason": fields.String(), "source": fields.String(),
    "count": fields.Integer(), "oldest_placed_at": fields.AwareDateTime()},
    open=fields.Integer())
DispositionReport = _report("Dispositions", {
    "week": fields.String(), "week_start": fields.Date(), "disposition": fields.String(),
    "count": fields.Integer(), "mean_hours_to_disposition": _H()},
    released=fields.Integer(), mean_hours_to_disposition=_H(allow_none=True))
EquipmentReport = _report("Equipment", {
    "equipment": fields.String(metadata={"description": "or kind (and tools) with ?by=kind"}),
    "kind": fields.String(), "tools": fields.Integer(metadata={"description": "?by=kind"}),
    **_STATES, "total_h": _H(),
    "utilisation": _H(allow_none=True), "lots_processed": fields.Integer(),
    **{name: _H(allow_none=True, metadata={"description": "percent; see the equipment page"})
       for name in ("availability", "performance", "quality", "oee")}})
DeliveryReport = _report("Delivery", {
    "customer": fields.String(), "week": fields.String(), "week_start": fields.Date(),
    "shipments": fields.Integer(), "lots": fields.Integer(), "quantity": fields.Integer(),
    "on_time": fields.Integer(), "late": fields.Integer(), "no_due_date": fields.Integer(),
    "on_time_pct": _H(allow_none=True)})
SpcReport = _report("SpcCapability", {
    "plan": fields.String(), "step": fields.String(), "characteristic": fields.String(),
    "unit": fields.String(),
    "subgroups": fields.Integer(metadata={"description": "Subgroups entered in the range."}),
    "cpk": _H(allow_none=True), "ppk": _H(allow_none=True),
    "events": fields.Integer(metadata={"description": "Out-of-control events opened in "
                                                      "the range."}),
    "open_events": fields.Integer(), "closed_events": fields.Integer(),
    "mean_hours_to_close": _H(allow_none=True), "median_hours_to_close": _H(allow_none=True)},
    events=fields.Integer(), open_events=fields.Integer(),
    median_hours_to_close=_H(allow_none=True))
