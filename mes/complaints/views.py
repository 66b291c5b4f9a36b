"""Complaint pages: the plant's list, intake form and 8D page (QA works the steps), and the
customer portal's complaints (their own only: a list, a form naming their failing units,
the complaint with its customer-facing 8D, and the 8D report as a PDF). Another customer's
complaint is a 404, as if it did not exist."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, render_template, request
from flask_babel import gettext as _
from flask_login import current_user

from mes import db
from mes.auth.permissions import Permission, has_permission, require
from mes.complaints import schemas as s
from mes.complaints import services
from mes.complaints.pdf import report_pdf
from mes.complaints.present import present
from mes.db import utcnow
from mes.quality.match_form import _when, plant_zone_name
from mes.vocabulary import ComplaintState, EightDStep, ScanKind
from mes.web import forms
from mes.web.pager import pager

bp = Blueprint("complaints", __name__)

# The plant's pages are for plant roles (MASTER_READ), the portal's for customers (PORTAL).
PLANT_READ = (Permission.COMPLAINT_READ, Permission.MASTER_READ)
PORTAL_READ = (Permission.COMPLAINT_READ, Permission.PORTAL)
UNIT_ROWS = 6
FIELDS = ("customer", "reference", "vehicle_program", "received_at", "description", "units")
STEP_FIELDS = ("owner", "text", "internal_note", "root_cause_occurrence", "root_cause_escape",
               "verification")


def _labels() -> dict[str, Any]:
    return {"state_labels": ComplaintState.labels(), "step_labels": EightDStep.labels(),
            "kind_labels": ScanKind.labels(), "zone": plant_zone_name()}


# --- shared ----------------------------------------------------------------------------

def _intake(form: Any, portal: bool) -> Any:
    """Load the intake form (unit rows scan-N, failure_mode-N, count-N) and record it."""
    units = []
    for i in range(UNIT_ROWS):
        scan = (form.get(f"scan-{i}") or "").strip()
        mode = forms.text(form, f"failure_mode-{i}")
        count = forms.text(form, f"count-{i}")
        if scan or mode:
            units.append({"scan": scan, "failure_mode": mode, "count": count or "1"})
    data = forms.load(s.ComplaintIn, {
        **({} if portal else {"customer": forms.text(form, "customer") or None}),
        "reference": forms.text(form, "reference"),
        "vehicle_program": forms.text(form, "vehicle_program") or None,
        "received_at": _when(forms.text(form, "received_at")) or "",
        "description": forms.text(form, "description"), "units": units})
    return services.open_complaint(db.session(), current_user, data)


def _new(portal: bool) -> Any:
    form: dict[str, Any] = {}
    errors: dict[str, Any] = {}
    status = 200
    if request.method == "POST":
        form = request.form.to_dict()
        complaint, refused = forms.attempt(lambda: _intake(request.form, portal))
        if complaint is not None:
            return forms.done(_("Complaint %(id)s recorded: %(lots)s.", id=complaint.id,
                                lots=", ".join(link.lot.lot_no for link in complaint.lots)),
                              "complaints.portal_detail" if portal else "complaints.detail",
                              complaint_id=complaint.id)
        assert refused is not None
        errors = {**refused.fields, **({"_schema": [refused.message]}
                                       if not refused.fields or "units" in refused.fields
                                       else {})}
        errors.pop("units", None)
        status = refused.status
    return render_template("complaints/form.html", form=form, errors=errors, fields=FIELDS,
                           portal=portal, rows=range(UNIT_ROWS), **_labels()), status


def _pdf(complaint_id: int) -> Response:
    sess = db.session()
    complaint = services.get_complaint(sess, complaint_id, current_user)
    # The report is the customer's: it shows what the customer sees, whoever prints it.
    shown = present(sess, complaint, None, customer_view=True)
    body = report_pdf(shown, plant=current_app.config["PLANT_NAME"],
                      zone=current_app.config["PLANT_TIMEZONE"])
    return Response(body, mimetype="application/pdf", headers={
        "Content-Disposition": f'inline; filename="8d-{complaint.id}.pdf"'})


# --- the plant's pages -----------------------------------------------------------------

@bp.route("/complaints/")
@require(*PLANT_READ)
def index() -> Any:
    state = request.args.get("state") or None
    if state not in (None, *ComplaintState.codes()):
        state = None
    overdue = request.args.get("overdue") in ("1", "true", "on")
    page = pager(services.complaint_query(current_user, state=state, overdue=overdue))
    sess = db.session()
    rows = [present(sess, complaint, current_user) for complaint in page.items]
    return render_template("complaints/index.html", rows=rows, page=page, state=state,
                           overdue=overdue, portal=False,
                           can_open=has_permission(current_user, Permission.COMPLAINT_OPEN),
                           **_labels())


@bp.route("/complaints/new", methods=["GET", "POST"])
@require(Permission.COMPLAINT_OPEN, Permission.MASTER_READ)
def new() -> Any:
    return _new(portal=False)


def _detail(complaint_id: int, errors: dict[str, Any] | None = None, step: str | None = None,
            status: int = 200) -> Any:
    sess = db.session()
    complaint = services.get_complaint(sess, complaint_id, current_user)
    shown = present(sess, complaint, current_user)
    return render_template("complaints/detail.html", c=shown, portal=False,
                           errors=errors or {}, error_step=step,
                           can_manage=has_permission(current_user,
                                                     Permission.COMPLAINT_MANAGE)
                           and complaint.state == ComplaintState.OPEN,
                           **_labels()), status


@bp.route("/complaints/<int:complaint_id>")
@require(*PLANT_READ)
def detail(complaint_id: int) -> Any:
    return _detail(complaint_id)


@bp.route("/complaints/<int:complaint_id>/eightd/<step>", methods=["POST"])
@require(Permission.COMPLAINT_MANAGE, Permission.MASTER_READ)
def update_step(complaint_id: int, step: str) -> Any:
    sess = db.session()
    complaint = services.get_complaint(sess, complaint_id, current_user)

    def action() -> Any:
        raw: dict[str, Any] = {key: request.form[key] for key in STEP_FIELDS
                               if key in request.form}
        if request.form.get("done"):
            raw["done"] = True
        return services.update_step(sess, current_user, complaint, step.upper(),
                                    forms.load(s.ComplaintStepIn, raw))

    row, refused = forms.attempt(action)
    if row is not None:
        return forms.done(_("Step %(step)s saved.", step=row.step), "complaints.detail",
                          complaint_id=complaint_id, _anchor=f"step-{row.step}")
    assert refused is not None
    return _detail(complaint_id, {**refused.fields, "_schema": [refused.message]},
                   step.upper(), refused.status)


@bp.route("/complaints/<int:complaint_id>/8d.pdf")
@require(*PLANT_READ)
def report(complaint_id: int) -> Any:
    return _pdf(complaint_id)


# --- the customer portal ---------------------------------------------------------------

@bp.route("/portal/complaints")
@require(*PORTAL_READ)
def portal_list() -> Any:
    page = pager(services.complaint_query(current_user))
    sess = db.session()
    rows = [present(sess, complaint, current_user) for complaint in page.items]
    return render_template("complaints/index.html", rows=rows, page=page, portal=True,
                           section="complaints.portal_list", state=None, overdue=False,
                           can_open=has_permission(current_user, Permission.COMPLAINT_OPEN),
                           **_labels())


@bp.route("/portal/complaints/new", methods=["GET", "POST"])
@require(Permission.COMPLAINT_OPEN, Permission.PORTAL)
def portal_new() -> Any:
    return _new(portal=True)


@bp.route("/portal/complaints/<int:complaint_id>")
@require(*PORTAL_READ)
def portal_detail(complaint_id: int) -> Any:
    sess = db.session()
    shown = present(sess, services.get_complaint(sess, complaint_id, current_user),
                    current_user)
    return render_template("complaints/detail.html", c=shown, portal=True, errors={},
                           error_step=None, can_manage=False,
                           section="complaints.portal_list", **_labels())


@bp.route("/portal/complaints/<int:complaint_id>/8d.pdf")
@require(*PORTAL_READ)
def portal_report(complaint_id: int) -> Any:
    return _pdf(complaint_id)


def overdue_panel() -> dict[str, Any] | None:
    """The QA home page's panel of overdue 8D steps (None for who does not work them)."""
    if not (current_user.is_authenticated
            and has_permission(current_user, Permission.COMPLAINT_MANAGE)):
        return None
    sess = db.session()
    now = utcnow()
    return {"steps": services.overdue_steps(sess, now, limit=20),
            "count": services.count_overdue(sess, now), "step_labels": EightDStep.labels()}


@bp.app_context_processor
def _inject() -> dict[str, Any]:
    return {"complaints_overdue": overdue_panel}
