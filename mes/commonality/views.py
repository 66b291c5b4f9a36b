"""Pages: the commonality of complaints with a containment action on each factor (QA), a
complaint's returned units and failure analysis with file uploads (QA records, plant roles
read), and the customer's view of their complaint's returns and analysis results in the
portal (their own complaints only; another's is a 404)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from mes import db
from mes.auth.permissions import Permission, has_permission, require
from mes.catalog.models import ReasonCode
from mes.commonality import containment, returns
from mes.commonality import schemas as s
from mes.commonality.services import FactorKind, commonality
from mes.complaints.models import ComplaintLot
from mes.errors import InvalidInput, NotFound
from mes.quality.match_form import plant_time
from mes.vocabulary import AnalysisResult, ReasonKind
from mes.web import forms

bp = Blueprint("commonality", __name__, url_prefix="/commonality")
portal_bp = Blueprint("fa_portal", __name__, url_prefix="/portal/complaints")


@bp.app_template_global()
def fa_context() -> dict[str, Any]:
    """What the returns section of a complaint's page needs (commonality/_returns.html)."""
    return {"steps": [(code, returns.step_word(code)) for code in returns.analysis_steps()],
            "results": AnalysisResult.choices(), "result_labels": AnalysisResult.labels(),
            "step_word": returns.step_word,
            "limit_mib": returns.attachment_limit() // returns.MIB,
            "can_record": has_permission(current_user, Permission.COMPLAINT_MANAGE)}


def _complaint_ids(raw: str) -> list[int]:
    ids = []
    for part in raw.replace(" ", ",").split(","):
        if part.strip():
            if not part.strip().isdigit():
                raise NotFound(_("No complaint %(id)s.", id=part.strip()))
            ids.append(int(part))
    return list(dict.fromkeys(ids))


def _reasons() -> list[tuple[str, str]]:
    return [(r.code, f"{r.code} · {r.description}") for r in db.session().scalars(
        select(ReasonCode).where(ReasonCode.kind == ReasonKind.HOLD,
                                 ReasonCode.active.is_(True)).order_by(ReasonCode.code))]


def _page(ids: list[int], errors: dict[str, Any] | None = None, form: dict[str, Any] |
          None = None, status: int = 200) -> Any:
    sess = db.session()
    complaints = [returns.get_complaint(sess, cid, current_user) for cid in ids]
    lot_ids = list(sess.scalars(select(ComplaintLot.lot_id)
                                .where(ComplaintLot.complaint_id.in_(ids)))) if ids else []
    result = commonality(sess, lot_ids, limit=200) if lot_ids else None
    return render_template(
        "commonality/index.html", complaints=complaints, ids=",".join(map(str, ids)),
        result=result, errors=errors or {}, form=form or {}, reasons=_reasons(),
        kind_labels=FactorKind.labels(), plant_time=plant_time,
        can_contain=has_permission(current_user, Permission.HOLD_PLACE),
        linked=containment.linked(sess, ids) if ids else []), status


@bp.route("/")
@require(Permission.COMPLAINT_MANAGE)
def index() -> Any:
    return _page(_complaint_ids(request.args.get("complaints", "")))


@bp.route("/contain", methods=["POST"])
@require(Permission.COMPLAINT_MANAGE, Permission.HOLD_PLACE)
def contain() -> Any:
    """The page's action on a factor: contain by it, linked to every complaint analysed."""
    ids = _complaint_ids(request.form.get("complaints", ""))
    sess = db.session()

    def action() -> Any:
        if not ids:
            raise InvalidInput(_("No complaint."), fields={"complaints": [_("No complaint.")]})
        factor: dict[str, Any] = {"kind": forms.text(request.form, "kind"),
                                  "value": forms.text(request.form, "value")}
        if forms.text(request.form, "since"):
            factor["window"] = {"since": forms.text(request.form, "since"),
                                "until": forms.text(request.form, "until")}
        if forms.text(request.form, "step"):
            factor["step"] = forms.text(request.form, "step")
        data = forms.load(s.FactorContainmentIn, {
            "factor": factor, "reason": forms.text(request.form, "reason"),
            "comment": forms.text(request.form, "comment")})
        complaints = [returns.get_complaint(sess, cid, current_user) for cid in ids]
        return containment.contain_factor(sess, current_user, complaints,
                                          factor=data["factor"], reason=data["reason"],
                                          comment=data["comment"])

    done, refused = forms.attempt(action)
    if done is not None:
        return forms.done(_("Containment %(id)s: %(held)s lot(s) held, %(shipped)s shipment(s) "
                            "to notify.", id=done.id, held=len(done.lots_held),
                            shipped=len(done.shipped)),
                          "commonality.index", complaints=",".join(map(str, ids)))
    assert refused is not None
    return _page(ids, {**refused.fields, "_schema": [refused.message]},
                 request.form.to_dict(), refused.status)


# --- returns and failure analysis (plant) ------------------------------------------------

def _returns_page(complaint_id: int, errors: dict[str, Any] | None = None,
                  form: dict[str, Any] | None = None, status: int = 200) -> Any:
    sess = db.session()
    complaint = returns.get_complaint(sess, complaint_id, current_user)
    return render_template(
        "commonality/returns.html", complaint=complaint,
        rows=returns.complaint_returns(sess, complaint), errors=errors or {},
        form=form or {}, steps=[(code, returns.step_word(code))
                                for code in returns.analysis_steps()],
        step_word=returns.step_word, results=AnalysisResult.choices(),
        result_labels=AnalysisResult.labels(),
        limit_mib=returns.attachment_limit() // returns.MIB,
        can_record=has_permission(current_user, Permission.COMPLAINT_MANAGE)), status


@bp.route("/complaints/<int:complaint_id>/returns")
@require(Permission.COMPLAINT_READ, Permission.MASTER_READ)
def complaint_returns(complaint_id: int) -> Any:
    return _returns_page(complaint_id)


@bp.route("/complaints/<int:complaint_id>/returns", methods=["POST"])
@require(Permission.COMPLAINT_MANAGE)
def record_return(complaint_id: int) -> Any:
    sess = db.session()
    complaint = returns.get_complaint(sess, complaint_id, current_user)

    def action() -> Any:
        received = forms.text(request.form, "received_at")
        data = forms.load(s.ReturnIn, {"units": _int(forms.text(request.form, "units")),
                                       "received_at": _aware(received)})
        return returns.record_return(sess, current_user, complaint, **data)

    done, refused = forms.attempt(action)
    if done is not None:
        return forms.done(_("Return of %(units)s unit(s) recorded.", units=done.units),
                          "commonality.complaint_returns", complaint_id=complaint_id)
    assert refused is not None
    return _returns_page(complaint_id, {**refused.fields, "_schema": [refused.message]},
                         request.form.to_dict(), refused.status)


@bp.route("/complaints/<int:complaint_id>/returns/<int:return_id>/analyses",
          methods=["POST"])
@require(Permission.COMPLAINT_MANAGE)
def record_analysis(complaint_id: int, return_id: int) -> Any:
    sess = db.session()
    complaint = returns.get_complaint(sess, complaint_id, current_user)
    ret = returns.get_return(sess, complaint, return_id)

    def action() -> Any:
        data = forms.load(s.AnalysisIn, {"step": forms.text(request.form, "step"),
                                         "result": forms.text(request.form, "result"),
                                         "notes": forms.text(request.form, "notes")})
        files = []
        for upload in request.files.getlist("files"):
            with upload.stream:
                content = upload.read()
            if upload.filename or content:
                files.append(returns.Upload(upload.filename or "", upload.mimetype or "",
                                            content))
        return returns.record_analysis(sess, current_user, ret, files=files, **data)

    done, refused = forms.attempt(action)
    if done is not None:
        return forms.done(_("%(step)s recorded with %(n)s file(s).",
                            step=returns.step_word(done.step), n=len(done.attachments)),
                          "commonality.complaint_returns", complaint_id=complaint_id)
    assert refused is not None
    return _returns_page(complaint_id, {**refused.fields, "_schema": [refused.message]},
                         {**request.form.to_dict(), "return_id": return_id}, refused.status)


@bp.route("/complaints/<int:complaint_id>/attachments/<int:attachment_id>")
@require(Permission.COMPLAINT_READ, Permission.MASTER_READ)
def attachment(complaint_id: int, attachment_id: int) -> Any:
    from mes.commonality.download import attachment_response

    sess = db.session()
    complaint = returns.get_complaint(sess, complaint_id, current_user)
    return attachment_response(returns.get_attachment(sess, complaint, attachment_id))


def _int(value: str) -> Any:
    return int(value) if value.isdigit() else value


def _aware(value: str) -> str:
    """A time typed in plant time (datetime-local) as ISO 8601 with the plant's offset."""
    if not value:
        return value
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.tzinfo is None:
        from zoneinfo import ZoneInfo

        from mes.quality.match_form import plant_zone_name

        moment = moment.replace(tzinfo=ZoneInfo(plant_zone_name()))
    return moment.isoformat()


# --- the customer's view -------------------------------------------------------------------

@portal_bp.route("/<int:complaint_id>/returns")
@require(Permission.PORTAL)
def portal_returns(complaint_id: int) -> Any:
    sess = db.session()
    complaint = returns.get_complaint(sess, complaint_id, current_user)
    return render_template("commonality/portal_returns.html", complaint=complaint,
                           rows=returns.complaint_returns(sess, complaint),
                           step_word=returns.step_word,
                           result_labels=AnalysisResult.labels(),
                           file_url=lambda a: url_for("fa_portal.portal_attachment",
                                                      complaint_id=complaint.id,
                                                      attachment_id=a.id))


@portal_bp.route("/<int:complaint_id>/attachments/<int:attachment_id>")
@require(Permission.PORTAL)
def portal_attachment(complaint_id: int, attachment_id: int) -> Any:
    from mes.commonality.download import attachment_response

    sess = db.session()
    complaint = returns.get_complaint(sess, complaint_id, current_user)
    return attachment_response(returns.get_attachment(sess, complaint, attachment_id))
