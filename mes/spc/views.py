"""Process control pages: data collection plans (list, form), a plan's control charts with
its histogram and capability, freezing control limits, entering a subgroup (operators:
also from the station's prompt), and the out-of-control events with their closing (cause
and action, the OCAP).

Forms are loaded by the API's input schemas and handed to the same services as the API,
so a page accepts and refuses exactly what the API does.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request
from flask_babel import format_datetime, format_decimal
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from mes import db
from mes.auth.permissions import Permission, require
from mes.catalog.models import Equipment, Product, RouteStep
from mes.errors import ErrorCode
from mes.spc import charts, read, services
from mes.spc import schemas as s
from mes.spc.models import ChartPoint, PlanSummary, SpcPlan
from mes.spc.stats import RULES
from mes.vocabulary import ChartKind, SpcChart, SpcEventState
from mes.web import forms
from mes.web.pager import pager

bp = Blueprint("spc", __name__)

RULE_NAMES = {
    1: _l("Rule 1: a point beyond a control limit (3σ)"),
    2: _l("Rule 2: 2 of 3 consecutive beyond 2σ on one side"),
    3: _l("Rule 3: 4 of 5 consecutive beyond 1σ on one side"),
    4: _l("Rule 4: 8 consecutive on one side of the centre line"),
}
SPREAD_NAMES = {"xbar_r": _l("Range"), "xbar_s": _l("Standard deviation"),
                "i_mr": _l("Moving range")}
PLAN_FIELDS = ("code", "step", "characteristic", "unit", "subgroup_size", "frequency",
               "hours", "lsl", "usl", "target", "equipment_kind", "product", "rules")


def num(value: float | None, digits: int = 2) -> str:
    """A measured value or statistic in the locale's format with `digits` fraction digits
    (trailing zeros kept: a column of figures aligns); a dash for none."""
    if value is None:
        return "–"
    return str(format_decimal(value, "#,##0." + "0" * digits if digits else "#,##0"))


def _when(moment: Any) -> str:
    return str(format_datetime(moment, "yyyy-MM-dd HH:mm")) if moment else "–"


def _rule_word(hit: dict[str, Any]) -> str:
    return _("Rule %(rule)s on the %(chart)s chart", rule=hit["rule"],
             chart=SpcChart.labels().get(hit["chart"], hit["chart"]))


@bp.app_context_processor
def _inject() -> dict[str, Any]:
    return {"spc_num": num, "spc_rule_word": _rule_word}


# --- plans -----------------------------------------------------------------------------

def _plan_options() -> dict[str, list[tuple[str, str]]]:
    sess = db.session()
    return {
        "steps": [(c, c) for c in sess.scalars(
            select(RouteStep.code).distinct().order_by(RouteStep.code))],
        "kinds": [(c, c) for c in sess.scalars(
            select(Equipment.kind).distinct().order_by(Equipment.kind))],
        "products": [(c, c) for c in sess.scalars(select(Product.code).order_by(Product.code))],
        "frequencies": [("lot", _("every lot")), ("hours", _("every N hours per tool"))],
        "sizes": [(str(n), str(n)) for n in range(1, 26)],
    }


def _frequency(form: MultiDict[str, str]) -> str | None:
    kind = forms.text(form, "frequency")
    if kind == "hours":
        return f"hours:{forms.text(form, 'hours')}"
    return kind or None


def _rules(form: MultiDict[str, str]) -> list[str]:
    return [str(rule) for rule in RULES if form.get(f"rule{rule}")]


def _plan_data(form: MultiDict[str, str], *, new: bool) -> dict[str, Any]:
    data: dict[str, Any] = {}
    keys = ("code", "step", "characteristic", "unit", "subgroup_size") if new else ()
    for key in keys:
        if forms.text(form, key):
            data[key] = forms.text(form, key)
    frequency = _frequency(form)
    if frequency:
        data["frequency"] = frequency
    for key in ("lsl", "usl", "target"):
        data[key] = forms.text(form, key) or None
    if new:
        for key in ("equipment_kind", "product"):
            data[key] = forms.text(form, key) or None
    else:
        data["active"] = bool(form.get("active"))
    data["rules"] = _rules(form)
    return data


def _plan_form_values(plan: SpcPlan) -> dict[str, Any]:
    return {"frequency": "lot" if plan.frequency_hours is None else "hours",
            "hours": plan.frequency_hours or "", "lsl": "" if plan.lsl is None else plan.lsl,
            "usl": "" if plan.usl is None else plan.usl,
            "target": "" if plan.target is None else plan.target,
            "active": plan.active, **{f"rule{r}": r in plan.rules for r in RULES}}


def _form_state(form: MultiDict[str, str]) -> dict[str, Any]:
    shown: dict[str, Any] = form.to_dict()
    for rule in RULES:
        shown[f"rule{rule}"] = bool(form.get(f"rule{rule}"))
    return shown


def _errors(refused: forms.Refused | None) -> dict[str, Any]:
    if refused is None:
        return {}
    if refused.fields:
        return refused.fields
    key = "code" if refused.code == ErrorCode.DUPLICATE else "_schema"
    return {key: [refused.message]}


@bp.route("/spc")
@require(Permission.SPC_READ)
def plans() -> Any:
    sess = db.session()
    step = request.args.get("step", "").strip() or None
    show = request.args.get("show", "active")
    query = services.plan_query({"step": step, "active": None if show == "all" else True})
    page = pager(query)
    open_events: dict[int, int] = {}
    for event in sess.scalars(services.event_query({"state": SpcEventState.OPEN})):
        open_events[event.plan_id] = open_events.get(event.plan_id, 0) + 1
    return render_template("spc/plans.html", plans=page.items, next_url=page.next_url,
                           prev_url=page.prev_url, open_events=open_events,
                           options=_plan_options(), step=step or "", show=show,
                           chart_labels=ChartKind.labels())


@bp.route("/spc/plans/new", methods=["GET", "POST"])
@require(Permission.SPC_PLAN)
def plan_new() -> Any:
    form: dict[str, Any] = {"subgroup_size": "5", "frequency": "lot",
                            **{f"rule{r}": True for r in RULES}}
    refused = None
    if request.method == "POST":
        form = _form_state(request.form)
        plan, refused = forms.attempt(lambda: services.create_plan(
            db.session(), current_user,
            forms.load(s.SpcPlanIn, _plan_data(request.form, new=True))))
        if plan is not None:
            return forms.done(_("Data collection plan %(code)s created.", code=plan.code),
                              "spc.plan_detail", code=plan.code)
    return render_template("spc/plan_form.html", plan=None, form=form,
                           errors=_errors(refused), options=_plan_options(),
                           rule_names=RULE_NAMES), refused.status if refused else 200


@bp.route("/spc/plans/<code>/edit", methods=["GET", "POST"])
@require(Permission.SPC_PLAN)
def plan_edit(code: str) -> Any:
    sess = db.session()
    plan = services.get_plan(sess, code)
    form = _plan_form_values(plan)
    refused = None
    if request.method == "POST":
        form = _form_state(request.form)
        saved, refused = forms.attempt(lambda: services.update_plan(
            sess, current_user, plan,
            forms.load(s.SpcPlanPatch, _plan_data(request.form, new=False))))
        if saved is not None:
            return forms.done(_("Data collection plan %(code)s saved.", code=code),
                              "spc.plan_detail", code=code)
    return render_template("spc/plan_form.html", plan=plan, form=form,
                           errors=_errors(refused), options=_plan_options(),
                           rule_names=RULE_NAMES), refused.status if refused else 200


# --- a plan's charts -------------------------------------------------------------------

def _point_lines(point: ChartPoint, digits: int) -> list[str]:
    sg = point.subgroup
    lines = [_("Values: %(values)s", values=", ".join(num(v, digits - 1 if digits else 0)
                                                       for v in sg.values))]
    lines.append(_("Limits version %(version)s", version=point.limits_version)
                 if point.limits_version else _("Not judged: no control limits yet"))
    lines += [_rule_word(v) for v in sg.violations]
    if sg.out_of_spec:
        lines.append(_("Outside the specification: %(values)s",
                       values=", ".join(num(v, max(0, digits - 1)) for v in sg.out_of_spec)))
    return lines


def plan_charts(summary: PlanSummary) -> dict[str, Any]:
    """The chart specifications of a plan's page: the X̄ (individuals) chart, the spread
    chart and the histogram, with their number of fraction digits."""
    plan = summary.plan
    versions = {v.version: v for v in summary.versions}
    values = [float(v) for p in summary.points for v in p.subgroup.values]
    digits = charts.decimals(values)
    individual = plan.chart == "i_mr"
    xbar_points, spread_points = [], []
    for p in summary.points:
        sg = p.subgroup
        lim = versions.get(p.limits_version) if p.limits_version else None
        label = _when(sg.at)[5:]
        title = _("%(lot)s on %(tool)s, %(at)s", lot=p.lot_no, tool=p.equipment, at=_when(sg.at))
        lines = tuple(_point_lines(p, digits))
        hit = {v["chart"] for v in sg.violations}
        xbar_points.append(charts.Point(label, sg.mean, lim.center if lim else None,
                                        lim.ucl if lim else None, lim.lcl if lim else None,
                                        "xbar" in hit, title, lines))
        spread_points.append(charts.Point(label, sg.spread, lim.r_center if lim else None,
                                          lim.r_ucl if lim else None,
                                          lim.r_lcl if lim else None, "spread" in hit, title,
                                          lines))
    unit = f" {plan.unit}"
    value_name = _("Individual value") if individual else _("Subgroup mean")
    names = {"value": value_name, "center": _("Centre line"), "ucl": _("UCL"),
             "lcl": _("LCL"), "usl": _("USL (specification)"),
             "lsl": _("LSL (specification)"),
             "y": f"{plan.characteristic} ({plan.unit})"}
    xbar = charts.control(
        xbar_points, unit=unit, digits=digits, names=names, lsl=plan.lsl, usl=plan.usl,
        title=(_("Individuals chart: %(c)s", c=plan.characteristic) if individual
               else _("X̄ chart: mean of %(n)d values", n=plan.subgroup_size)))
    spread_name = str(SPREAD_NAMES[plan.chart])
    spread = charts.control(
        spread_points, unit=unit, digits=digits, title=_("%(name)s chart", name=spread_name),
        names={**names, "value": spread_name, "y": f"{spread_name} ({plan.unit})"})
    histogram = charts.histogram(
        values, title=_("Histogram of the %(n)d values shown", n=len(values)), unit=unit,
        digits=digits, name=_("Values"), y_title=_("Count"),
        marks=[(_("LSL"), plan.lsl, "spec"), (_("USL"), plan.usl, "spec"),
               (_("Target"), plan.target, "target")])
    return {"xbar": xbar, "spread": spread, "histogram": histogram, "digits": digits,
            "spread_name": spread_name}


def _plan_page(plan: SpcPlan, *, freeze_errors: dict[str, Any] | None = None,
               freeze_form: dict[str, Any] | None = None, status: int = 200) -> Any:
    sess = db.session()
    summary = services.plan_summary(sess, plan)
    figures = plan_charts(summary)
    return render_template(
        "spc/plan.html", plan=plan, summary=summary, figures=figures,
        empty=charts.empty(figures["xbar"]), chart_labels=ChartKind.labels(),
        rule_names=RULE_NAMES, freeze_errors=freeze_errors or {},
        freeze_form=freeze_form or {}, spread_name=figures["spread_name"],
        histogram_bins=figures["histogram"]["bins"]), status


@bp.route("/spc/plans/<code>")
@require(Permission.SPC_READ)
def plan_detail(code: str) -> Any:
    return _plan_page(services.get_plan(db.session(), code))


@bp.route("/spc/plans/<code>/limits", methods=["POST"])
@require(Permission.SPC_PLAN)
def freeze(code: str) -> Any:
    sess = db.session()
    plan = services.get_plan(sess, code)
    given = forms.text(request.form, "from_subgroups")
    limits, refused = forms.attempt(lambda: services.freeze_limits(
        sess, current_user, plan,
        forms.load(s.SpcLimitsIn, {"from_subgroups": given or None})["from_subgroups"]))
    if limits is not None:
        return forms.done(_("Control limits version %(version)d of plan %(code)s frozen from "
                            "%(n)d subgroups.", version=limits.version, code=code,
                            n=limits.subgroups), "spc.plan_detail", code=code)
    assert refused is not None
    errors = refused.fields or {"_schema": [refused.message]}
    if refused.fields and refused.message:
        errors = {**errors, "_schema": [refused.message]}
    return _plan_page(services.get_plan(sess, code), freeze_errors=errors,
                      freeze_form={"from_subgroups": given}, status=refused.status)


# --- entering a subgroup ---------------------------------------------------------------

def _sample_message(judged: Any, plan: SpcPlan, digits: int) -> tuple[str, str]:
    sg = judged.subgroup
    parts = [_("Subgroup of lot %(lot)s on %(tool)s entered for plan %(plan)s: mean "
               "%(mean)s %(unit)s.", lot=judged.lot_no, tool=judged.equipment, plan=plan.code,
               mean=num(sg.mean, digits), unit=plan.unit)]
    category = "success"
    if sg.out_of_spec:
        category = "warning"
        parts.append(_("Outside the specification limits: %(values)s.",
                       values=", ".join(num(v, max(0, digits - 1)) for v in sg.out_of_spec)))
    if judged.event is not None:
        category = "warning"
        event = judged.event
        parts.append(_("Out of control (%(rules)s): event %(id)d; %(tool)s is stopped "
                       "(engineering) and %(n)d lot(s) are held.",
                       rules="; ".join(_rule_word(v) for v in sg.violations), id=event.id,
                       tool=judged.equipment, n=len(event.held_lots)))
    elif sg.in_control is None:
        parts.append(_("Not judged: the plan has no control limits yet."))
    return " ".join(parts), category


@bp.route("/spc/plans/<code>/sample", methods=["GET", "POST"])
@require(Permission.SPC_SAMPLE)
def sample(code: str) -> Any:
    sess = db.session()
    plan = services.get_plan(sess, code)
    source = request.form if request.method == "POST" else request.args
    back = "station" if source.get("back") == "station" else ""
    form: dict[str, Any] = {"lot": forms.text(source, "lot"),
                            "equipment": forms.text(source, "equipment"),
                            "values": [v.strip() for v in source.getlist("value")]}
    refused = None
    if request.method == "POST":
        judged, refused = forms.attempt(lambda: services.add_sample(
            sess, current_user, plan, **forms.load(s.SpcSampleIn, {
                "lot": form["lot"], "equipment": form["equipment"],
                "values": [v for v in form["values"] if v != ""] or None})))
        if judged is not None:
            message, category = _sample_message(judged, plan, charts.decimals(
                [float(v) for v in judged.subgroup.values]))
            if back:
                return forms.done(message, "floor.station", category=category,
                                  lot=judged.lot_no)
            return forms.done(message, "spc.plan_detail", category=category, code=code)
    errors = _errors(refused)
    if "values" in errors and isinstance(errors["values"], dict):
        errors["values"] = forms.flatten(errors["values"])
    return render_template("spc/sample.html", plan=plan, form=form, errors=errors,
                           back=back, refused=refused), refused.status if refused else 200


# --- out-of-control events ---------------------------------------------------------------

@bp.route("/spc/events")
@require(Permission.SPC_READ)
def events() -> Any:
    state = request.args.get("state", "open")
    filters = {"state": state if state in SpcEventState.codes() else None,
               "plan": request.args.get("plan", "").strip() or None}
    page = pager(services.event_query(filters))
    return render_template("spc/events.html", events=page.items, next_url=page.next_url,
                           prev_url=page.prev_url, state=state, plan=filters["plan"] or "",
                           state_labels=SpcEventState.labels())


def _event_page(event_id: int, *, form: dict[str, Any] | None = None,
                errors: dict[str, Any] | None = None, status: int = 200) -> Any:
    sess = db.session()
    event = services.get_event(sess, event_id)
    points = read.event_points(sess, event)
    digits = charts.decimals([float(v) for p in points for v in p.subgroup.values])
    return render_template("spc/event.html", event=event, points=points, digits=digits,
                           form=form or {}, errors=errors or {},
                           state_labels=SpcEventState.labels()), status


@bp.route("/spc/events/<int:event_id>")
@require(Permission.SPC_READ)
def event_detail(event_id: int) -> Any:
    return _event_page(event_id)


@bp.route("/spc/events/<int:event_id>/close", methods=["POST"])
@require(Permission.SPC_CLOSE)
def event_close(event_id: int) -> Any:
    sess = db.session()
    event = services.get_event(sess, event_id)
    form = {"cause": forms.text(request.form, "cause"),
            "action": forms.text(request.form, "action")}
    closed, refused = forms.attempt(lambda: services.close_event(
        sess, current_user, event, **forms.load(s.SpcCloseIn, form)))
    if closed is not None:
        return forms.done(_("Out-of-control event %(id)d closed.", id=event_id),
                          "spc.event_detail", event_id=event_id)
    assert refused is not None
    return _event_page(event_id, form=form, errors=_errors(refused), status=refused.status)

