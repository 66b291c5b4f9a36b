"""Report pages: one per report, each with its date range and filters, a chart where a
chart says more than the table, the table, and a CSV download (the API endpoint of the
same report with ?format=csv, computed by the same service). Customer users see the same
pages limited to their own lots; the equipment page is not theirs (403)."""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from time import monotonic
from typing import Any

from flask import Blueprint, current_app, g, render_template, request, url_for
from flask_babel import format_datetime, format_decimal, format_number
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from marshmallow import Schema, ValidationError
from sqlalchemy import select

from mes import db
from mes.auth.permissions import Permission, require
from mes.auth.scope import scope_customer
from mes.catalog.models import Customer, Product, RouteStep
from mes.db import utcnow
from mes.errors import InvalidInput
from mes.reports import charts, services
from mes.reports import schemas as s
from mes.reports.services import Report, ReportQuery
from mes.spc import read as spc_read
from mes.vocabulary import (
    CustomerCategory,
    Disposition,
    EquipmentKind,
    EquipmentState,
    HoldSource,
    LotState,
    ReasonKind,
)
from mes.web import forms

bp = Blueprint("reports", __name__)

# The longest chart: more categories than this are left to the table.
MAX_BARS = 30
MAX_TRENDS = 6

COLUMN_LABELS: dict[str, Any] = {
    "step": _l("Step"), "product": _l("Product"), "customer": _l("Customer"),
    "lots": _l("Lots"), "quantity": _l("Quantity"), "on_hold": _l("On hold"),
    "running": _l("Running"), "late": _l("Late"), "oldest_at_step": _l("Oldest arrival"),
    "oldest_age_h": _l("Oldest at step (h)"), "age_lt_1d": _l("< 1 day"),
    "age_1_3d": _l("1–3 days"), "age_3_7d": _l("3–7 days"), "age_gt_7d": _l("> 7 days"),
    "lot_no": _l("Lot"), "state": _l("State"), "due_date": _l("Due"),
    "days_late": _l("Days late"), "at_step_h": _l("At step (h)"), "runs": _l("Track-outs"),
    "quantity_in": _l("In"), "good": _l("Good"), "rejected": _l("Rejected"),
    "yield": _l("Yield %"), "tested_units": _l("Tested units"),
    "first_pass_yield": _l("First-pass yield %"), "final_yield": _l("Final yield %"),
    "period": _l("Period"), "period_start": _l("From"), "reason": _l("Reason"),
    "kind": _l("Kind"), "share": _l("Share %"), "cumulative": _l("Cumulative %"),
    "category": _l("Customer category"),
    "queue_median_h": _l("Queue median (h)"), "queue_p90_h": _l("Queue p90 (h)"),
    "process_median_h": _l("Process median (h)"), "process_p90_h": _l("Process p90 (h)"),
    "queue_mean_h": _l("Queue mean (h)"), "process_mean_h": _l("Process mean (h)"),
    "cycle_median_h": _l("Median (h)"), "cycle_p90_h": _l("p90 (h)"),
    "cycle_mean_h": _l("Mean (h)"), "bucket": _l("Age"), "source": _l("Source"),
    "count": _l("Holds"), "oldest_placed_at": _l("Oldest placed"), "week": _l("Week"),
    "week_start": _l("Monday"), "disposition": _l("Disposition"),
    "mean_hours_to_disposition": _l("Mean time to disposition (h)"),
    "equipment": _l("Equipment"), "tools": _l("Tools"), "productive_h": _l("Productive (h)"),
    "standby_h": _l("Standby (h)"), "engineering_h": _l("Engineering (h)"),
    "scheduled_down_h": _l("Scheduled down (h)"),
    "unscheduled_down_h": _l("Unscheduled down (h)"),
    "non_scheduled_h": _l("Non-scheduled (h)"), "total_h": _l("Recorded (h)"),
    "utilisation": _l("Utilisation %"), "lots_processed": _l("Lots processed"),
    "availability": _l("Availability %"), "performance": _l("Performance %"),
    "quality": _l("Quality %"), "oee": _l("OEE %"),
    "shipments": _l("Shipments"), "on_time": _l("On time"), "no_due_date": _l("No due date"),
    "on_time_pct": _l("On time %"),
    "plan": _l("Plan"), "characteristic": _l("Characteristic"), "unit": _l("Unit"),
    "subgroups": _l("Subgroups"), "cpk": "Cpk", "ppk": "Ppk", "events": _l("Events"),
    "open_events": _l("Open"), "closed_events": _l("Closed"),
    "mean_hours_to_close": _l("Mean time to close (h)"),
    "median_hours_to_close": _l("Median time to close (h)"),
}
# (endpoint, title, description, plant users only)
PAGES: list[tuple[str, Any, Any, bool]] = [
    ("reports.wip", _l("WIP"), _l("Lots and quantities per step, product and customer; "
                                  "time at the step; late lots."), False),
    ("reports.yield_page", _l("Yield"), _l("Yield per step and product, first-pass and "
                                           "final yield at test, trends."), False),
    ("reports.rejects", _l("Rejects and scrap"), _l("Pareto by reason code and step."),
     False),
    ("reports.cycle_time", _l("Cycle time"), _l("Queue and process time per step; lot "
                                                "cycle time per product."), False),
    ("reports.holds", _l("Holds"), _l("Open holds by age, reason and source; time to "
                                      "disposition."), False),
    ("reports.equipment", _l("Equipment"), _l("Time in each E10 state, utilisation, OEE, "
                                              "lots per tool."), True),
    ("reports.delivery", _l("Delivery"), _l("Shipments per customer and week, on-time "
                                            "delivery."), False),
    ("reports.spc", _l("Process control"), _l("Per data collection plan: Cpk, out-of-control "
                                              "events and their time to close."), True),
]


# Columns whose values are codes the interface has words for.
# (A `kind` is a reason's kind in the Pareto, a tool's kind in the equipment report; a kind
# of tool the vocabulary does not know, a plant's own code, stays as is.)
CODE_LABELS: dict[str, Mapping[str, Any]] = {
    "source": HoldSource.labels(), "disposition": Disposition.labels(),
    "state": LotState.labels(), "kind": {**ReasonKind.labels(), **EquipmentKind.labels()},
    "category": CustomerCategory.labels()}


@bp.app_template_filter("report_cell")
def report_cell(value: Any, column: str | None = None) -> str:
    """A table cell in the user's language: blank for none, yes/no, codes in words, numbers
    in the locale's format, times in the plant's time zone to the minute."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, float):
        return format_decimal(value, "#,##0.00")
    if isinstance(value, int):
        return format_number(value)
    if isinstance(value, str) and column in CODE_LABELS:
        return str(CODE_LABELS[column].get(value, value))
    if isinstance(value, str) and len(value) > 19 and value[10] == "T":
        return format_datetime(datetime.fromisoformat(value), "yyyy-MM-dd HH:mm")
    return str(value)


# (report function, query, database) -> (monotonic time it expires, when computed, report)
_FIGURES: OrderedDict[tuple[Any, ...], tuple[float, datetime, Report]] = OrderedDict()
_FIGURES_KEPT = 256


def _figures(report: Callable[[Any, ReportQuery], Report], q: ReportQuery) -> Report:
    """A report over a date range as this process computed it less than
    REPORT_CACHE_SECONDS ago (0: now); the page says when the oldest figure it shows was
    computed. Many people open the same report over the same days; the figures of finished
    history move little within a minute."""
    seconds = current_app.config["REPORT_CACHE_SECONDS"]
    sess = db.session()
    if seconds <= 0:
        return report(sess, q)
    key = (report.__name__, q, str(sess.get_bind().engine.url))
    clock = monotonic()
    hit = _FIGURES.get(key)
    if hit is None or clock >= hit[0]:
        hit = (clock + seconds, utcnow(), report(sess, q))
        _FIGURES[key] = hit
        while len(_FIGURES) > _FIGURES_KEPT:
            _FIGURES.popitem(last=False)
    _FIGURES.move_to_end(key)
    g.figures_at = min(g.get("figures_at", hit[1]), hit[1])
    return hit[2]


def _customer_user() -> bool:
    return scope_customer(current_user) is not None


def _load(schema: type[Schema]) -> tuple[ReportQuery, dict[str, Any], dict[str, Any]]:
    """The query of the page's arguments; invalid arguments give the default query and
    the errors to show."""
    raw = {k: v for k, v in request.args.items() if v != ""}
    # The dates people pick are days of the plant (the API's stay UTC days).
    zone = current_app.config["PLANT_TIMEZONE"]
    try:
        args = forms.load(schema, raw)
        return services.make_query(current_user, args, zone=zone), args, {}
    except ValidationError as err:
        errors: dict[str, Any] = err.normalized_messages()
    except InvalidInput as err:
        errors = dict(err.fields or {"_schema": [err.message]})
    args = forms.load(schema, {})
    return services.make_query(current_user, args, zone=zone), args, errors


def _options(q: ReportQuery) -> dict[str, list[tuple[str, str]]]:
    sess = db.session()
    products = select(Product.code).order_by(Product.code)
    if q.customer_id is not None:
        products = products.where(Product.customer_id == q.customer_id)
    return {
        "products": [(c, c) for c in sess.scalars(products)],
        "customers": [] if q.customer_id is not None else
        [(c, c) for c in sess.scalars(select(Customer.code).order_by(Customer.code))],
        "steps": [(c, c) for c in sess.scalars(
            select(RouteStep.code).distinct().order_by(RouteStep.code))],
    }


def _csv_url(endpoint: str, **extra: Any) -> str:
    args = {k: v for k, v in request.args.items() if v != "" and k != "format"}
    # The download covers the page's days: the plant's.
    return url_for(endpoint, **{**args, **extra, "tz": current_app.config["PLANT_TIMEZONE"],
                                "format": "csv"})


def _section(key: str, title: Any, report: Report, api: str, *,
             chart: dict[str, Any] | None = None, empty: Any = None, note: Any = None,
             **csv_args: Any) -> dict[str, Any]:
    """A report section: its table, and a chart (a mes.reports.charts specification) or,
    when the chart has nothing to draw, the `empty` sentence in its place."""
    if chart is not None and charts.empty(chart):
        chart = None
    else:
        empty = None
    return {"id": key, "title": title, "report": report, "chart": chart, "empty": empty,
            "note": note, "csv": _csv_url(api, **csv_args)}


def _page(template_title: Any, endpoint: str, schema: type[Schema],
          build: Callable[[ReportQuery, dict[str, Any]], list[dict[str, Any]]], *,
          filters: tuple[str, ...] = ("product", "customer", "step"),
          snapshot: bool = False, extra_fields: list[dict[str, Any]] | None = None) -> Any:
    q, args, errors = _load(schema)
    sections = build(q, args)
    return render_template(
        "reports/report.html", title=template_title, endpoint=endpoint, q=q, args=args,
        errors=errors, sections=sections, options=_options(q), filters=filters,
        customer_user=_customer_user(), snapshot=snapshot, labels=COLUMN_LABELS,
        figures_at=g.get("figures_at"),
        extra_fields=extra_fields or []), 422 if errors else 200


@bp.route("/reports")
@require(Permission.REPORT_READ)
def index() -> Any:
    customer = _customer_user()
    cards = [{"title": title, "url": url_for(endpoint), "text": text}
             for endpoint, title, text, plant_only in PAGES if not (plant_only and customer)]
    return render_template("reports/index.html", cards=cards)


@bp.route("/reports/wip")
@require(Permission.REPORT_READ)
def wip() -> Any:
    def build(q: ReportQuery, args: dict[str, Any]) -> list[dict[str, Any]]:
        sess = db.session()
        report = services.wip(sess, q)
        key = q.by
        rows = report.rows if key == "step" else sorted(report.rows,
                                                          key=lambda r: -r["lots"])
        rows = rows[:MAX_BARS]
        chart = charts.bar([str(r[key]) for r in rows], [r["lots"] for r in rows],
                           title=_("Lots in WIP"), name=_("Lots"), y_min=0,
                           horizontal=key != "step")
        late = services.late_lots(sess, replace(q, limit=100))
        return [_section("wip", _("WIP now"), report, "api.report_wip", chart=chart,
                         empty=_("No lots in WIP.")),
                _section("late", _("Late lots (the 100 most overdue)"), late,
                         "api.report_late_lots")]

    by_options = [("step", _("Step")), ("product", _("Product")), ("customer", _("Customer"))]
    if _customer_user():
        by_options = by_options[:2]
    return _page(_("WIP"), "reports.wip", s.WipArgs, build, snapshot=True, extra_fields=[
        {"name": "by", "label": _("Group by"), "options": by_options, "required": True}])


@bp.route("/reports/yield")
@require(Permission.REPORT_READ)
def yield_page() -> Any:
    def build(q: ReportQuery, args: dict[str, Any]) -> list[dict[str, Any]]:
        report = _figures(services.yield_report, q)
        per_step: dict[str, list[int]] = {}
        for r in report.rows:
            acc = per_step.setdefault(r["step"], [0, 0])
            acc[0] += r["good"]
            acc[1] += r["quantity_in"]
        steps = [(step, round(100.0 * g / n, 2)) for step, (g, n) in per_step.items() if n]
        steps = steps[:MAX_BARS]
        chart = charts.yield_bars([st for st, _y in steps], [y for _st, y in steps],
                                  title=_("Yield per step"), name=_("Yield %"))
        trend = _figures(services.final_test_yield_trend, q)
        series: dict[str, list[tuple[str, float | None]]] = defaultdict(list)
        for r in trend.rows:
            if len(series) < MAX_TRENDS or r["product"] in series:
                series[r["product"]].append((r["period"], r["yield"]))
        per = _("day") if q.period == "day" else _("week")
        if q.step:
            title = _("Yield at step %(step)s per product and %(period)s", step=q.step,
                      period=per)
            note = _("Good / in over the track-outs at step %(step)s in each %(period)s.",
                     step=q.step, period=per)
        else:
            title = _("Final-test yield per product and %(period)s", period=per)
            note = _("Final-test yield: good / in over the track-outs at the last test step "
                     "of each lot's route in each %(period)s (quantities of different steps "
                     "are not added). Products whose route has no test step are not "
                     "shown.", period=per)
        if len(set(r["product"] for r in trend.rows)) > MAX_TRENDS:
            note = note + " " + _("The chart shows the first %(n)d products; the table "
                                  "lists them all.", n=MAX_TRENDS)
        chart2 = charts.trend(series, title=title, y_title=_("Yield %"))
        return [_section("yield", _("Yield per step and product"), report,
                         "api.report_yield", chart=chart,
                         empty=_("No track-outs in the range."),
                         note=_("Yield per step: good / in over the track-outs in the range, "
                                "all products together. The axis starts at %(low)s %%.",
                                low=format_number(chart["y"]["min"]))),
                _section("trend", title, trend, "api.report_final_test_yield",
                         chart=chart2, empty=_("No track-outs at a test step in the range."),
                         note=note, period=q.period)]

    return _page(_("Yield"), "reports.yield_page", s.TrendArgs, build, extra_fields=[
        {"name": "period", "label": _("Trend per"), "required": True,
         "options": [("week", _("week")), ("day", _("day"))]}])


@bp.route("/reports/rejects")
@require(Permission.REPORT_READ)
def rejects() -> Any:
    def build(q: ReportQuery, args: dict[str, Any]) -> list[dict[str, Any]]:
        report = _figures(services.rejects, q)
        if q.customer_id is not None:
            # Customers read categories only (the rows carry no reason code or step).
            report = replace(report, columns=[c for c in report.columns
                                              if c not in ("reason", "step")])
            words, kinds = CustomerCategory.labels(), ReasonKind.labels()
            bars = ((f"{words.get(r['category'], r['category'])} · "
                     f"{kinds.get(r['kind'], r['kind'])}", r["quantity"]) for r in report.rows)
            title = _("Rejects and scrap by category")
            note = _("Bars: quantity per category, largest first; line: cumulative share of "
                     "the total.")
        else:
            bars = ((r["reason"] or "?", r["quantity"]) for r in report.rows)
            title = _("Rejects and scrap by reason code")
            note = _("Bars: quantity per reason code, all steps together, largest first (the "
                     "%(n)d largest, the rest as \"Other\"); line: cumulative share of the "
                     "total. The table lists every reason and step.", n=charts.PARETO_TOP - 1)
        chart = charts.pareto(bars, title=title, quantity=_("Quantity"),
                              cumulative=_("Cumulative %"), other=_("Other"))
        return [_section("rejects", _("Pareto (total %(n)s)",
                                      n=format_number(report.extra["total"])),
                         report, "api.report_rejects", chart=chart, note=note,
                         empty=_("No rejects or scrap in the range."))]

    return _page(_("Rejects and scrap"), "reports.rejects", s.ReportArgs, build)


@bp.route("/reports/cycle-time")
@require(Permission.REPORT_READ)
def cycle_time() -> Any:
    def build(q: ReportQuery, args: dict[str, Any]) -> list[dict[str, Any]]:
        report = _figures(services.cycle_time, q)
        rows = report.rows[:MAX_BARS]
        series = [(_("Queue median"), "queue"), (_("Process median"), "process")]
        chart = charts.stacked(
            [r["step"] for r in rows], series,
            [(r["queue_median_h"], r["process_median_h"]) for r in rows],
            title=_("Median queue and process time per step"), unit=" h")
        lots = _figures(services.lot_cycle_time, q)
        return [_section("steps", _("Per step"), report, "api.report_cycle_time",
                         chart=chart, empty=_("No track-outs in the range.")),
                _section("lots", _("Per lot, from receipt to the last step"), lots,
                         "api.report_lot_cycle_time")]

    return _page(_("Cycle time"), "reports.cycle_time", s.ReportArgs, build)


@bp.route("/reports/holds")
@require(Permission.REPORT_READ)
def holds() -> Any:
    def build(q: ReportQuery, args: dict[str, Any]) -> list[dict[str, Any]]:
        sess = db.session()
        report = services.holds(sess, q)
        per_bucket = dict.fromkeys((b for b, _d in services.HOLD_BUCKETS), 0)
        for r in report.rows:
            per_bucket[r["bucket"]] += r["count"]
        chart = charts.bar(list(per_bucket), list(per_bucket.values()),
                           title=_("Open holds by age"), name=_("Holds"), y_min=0)
        disp = _figures(services.dispositions, q)
        weeks = sorted({r["week"] for r in disp.rows})
        kinds = sorted({r["disposition"] for r in disp.rows})
        counts = {(r["week"], r["disposition"]): r["count"] for r in disp.rows}
        series = [(str(Disposition.labels().get(k, k)), f"disp-{k}") for k in kinds]
        chart2 = charts.stacked(
            weeks, series, [[counts.get((w, k), 0) for k in kinds] for w in weeks],
            title=_("Dispositions per week"))
        mean = disp.extra["mean_hours_to_disposition"]
        note = (_("%(n)d holds released in the range; mean time to disposition %(h)s h.",
                  n=disp.extra["released"], h=mean) if mean is not None else None)
        return [_section("open", _("Open holds now (%(n)d)", n=report.extra["open"]),
                         report, "api.report_holds", chart=chart,
                         empty=_("No open holds.")),
                _section("dispositions", _("Dispositions in the range"), disp,
                         "api.report_dispositions", chart=chart2, note=note,
                         empty=_("No holds released in the range."))]

    return _page(_("Holds"), "reports.holds", s.ReportArgs, build)


@bp.route("/reports/equipment")
@require(Permission.REPORT_READ, Permission.MASTER_READ)
def equipment() -> Any:
    """Plant users only: equipment is master data (MASTER_READ), which customers lack."""

    def build(q: ReportQuery, args: dict[str, Any]) -> list[dict[str, Any]]:
        report = _figures(services.equipment, q)
        key = "kind" if q.by == "kind" else "equipment"
        rows = report.rows[:MAX_BARS]
        series = [(str(st.label), st.value) for st in EquipmentState]
        chart = charts.stacked(
            [str(EquipmentKind.word(r[key])) if key == "kind" else r[key] for r in rows], series,
            [[r[f"{st.value}_h"] for st in EquipmentState] for r in rows],
            title=_("Hours in each E10 state"), unit=" h", horizontal=True)
        return [_section("equipment", _("Time in state"), report, "api.report_equipment",
                         chart=chart, empty=_("No equipment history."), note=_(
                             "Time in each state comes from the tool's state history (a "
                             "track-in makes a tool productive, its last track-out standby). "
                             "Utilisation = productive / (recorded - non-scheduled). "
                             "Availability = productive / planned time (recorded - "
                             "non-scheduled - scheduled down). Performance = ideal time of "
                             "the units tracked out in the range (units in / the step's ideal "
                             "units per hour; steps without one add none) / productive time. "
                             "Quality = good units / units in of those track-outs. OEE = "
                             "availability × performance × quality."))]

    return _page(_("Equipment"), "reports.equipment", s.EquipmentArgs, build, filters=(),
                 extra_fields=[{"name": "by", "label": _("Per"), "required": True,
                                "options": [("equipment", _("tool")), ("kind", _("kind"))]}])


@bp.route("/reports/delivery")
@require(Permission.REPORT_READ)
def delivery() -> Any:
    def build(q: ReportQuery, args: dict[str, Any]) -> list[dict[str, Any]]:
        report = _figures(services.delivery, q)
        weeks: dict[str, list[int]] = {}
        for r in report.rows:
            acc = weeks.setdefault(r["week"], [0, 0])
            acc[0] += r["on_time"]
            acc[1] += r["on_time"] + r["late"]
        bars = [(w, round(100.0 * on / n, 2)) for w, (on, n) in sorted(weeks.items()) if n]
        chart = charts.bar([w for w, _p in bars], [p for _w, p in bars],
                           title=_("Lots shipped on time per week"), name=_("On time %"),
                           unit="%", y_min=0, y_max=100)
        return [_section("delivery", _("Shipments per customer and week"), report,
                         "api.report_delivery", chart=chart,
                         empty=_("No shipped lots with a due date in the range."))]

    return _page(_("Delivery"), "reports.delivery", s.ReportArgs, build,
                 filters=("product", "customer"))


@bp.route("/reports/spc")
@require(Permission.REPORT_READ, Permission.SPC_READ)
def spc() -> Any:
    """Plant users only (process control is not the customers')."""

    def build(q: ReportQuery, args: dict[str, Any]) -> list[dict[str, Any]]:
        report = spc_read.capability_report(db.session(), q)
        rows = [r for r in report.rows if r["cpk"] is not None][:MAX_BARS]
        chart = charts.bar([r["plan"] for r in rows], [r["cpk"] for r in rows],
                           title=_("Cpk per plan"), name="Cpk", y_min=0, y_title="Cpk")
        median = report.extra["median_hours_to_close"]
        note = _("Cpk over the subgroups entered in the range (σ within subgroups of the "
                 "plan's current limits); events opened in the range: %(n)d, %(open)d still "
                 "open.", n=report.extra["events"], open=report.extra["open_events"])
        if median is not None:
            note += " " + _("Median time to close: %(h)s h.", h=format_decimal(median, "#,##0.00"))
        return [_section("spc", _("Capability and out-of-control events per plan"), report,
                         "api.report_spc", chart=chart, note=note,
                         empty=_("No subgroups with specification limits in the range."))]

    return _page(_("Process control"), "reports.spc", s.ReportArgs, build, filters=("step",))
