"""Commonality across complaints, containment from a common factor, returned units and their
failure analysis (API.md, "Complaints"). Commonality and containment are the plant's (QA);
customers read their own complaints' returns and analyses with the files."""

from __future__ import annotations

from typing import Any

from flask import Response, request
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from marshmallow import ValidationError
from sqlalchemy import select

from mes import db
from mes.api import bp
from mes.api.registry import Page, api_route
from mes.auth.permissions import Permission
from mes.auth.scope import scope_customer
from mes.commonality import containment, returns
from mes.commonality import schemas as s
from mes.commonality.download import attachment_response
from mes.commonality.models import ComplaintReturn, FailureAnalysis
from mes.commonality.services import Commonality, commonality
from mes.complaints.models import ComplaintLot
from mes.errors import InvalidInput, NotFound
from mes.floor.models import Lot
from mes.trace.services import Containment

ANALYSIS_BODY = {
    "required": True,
    "description": "The step's fields (`step`, `result`, `notes`) as form fields and its "
                   "files (images, PDF) as the multipart field `files` (repeated); or the "
                   "fields alone as JSON.",
    "content": {
        "multipart/form-data": {"schema": {
            "type": "object", "required": ["step", "result"],
            "properties": {"step": {"type": "string"}, "result": {"type": "string"},
                           "notes": {"type": "string"},
                           "files": {"type": "array",
                                     "items": {"type": "string", "format": "binary"}}}}},
        "application/json": {"schema": {
            "type": "object", "required": ["step", "result"],
            "properties": {"step": {"type": "string"}, "result": {"type": "string"},
                           "notes": {"type": "string"}}}},
    },
}


def complained_lot_ids(session: Any, complaint_ids: list[int], lot_nos: list[str]
                       ) -> list[int]:
    """The lots the complaints resolved to and the lots named; NotFound for a complaint or
    lot that does not exist."""
    ids: list[int] = []
    if complaint_ids:
        for complaint_id in complaint_ids:
            returns.get_complaint(session, complaint_id, current_user)
        ids += session.scalars(select(ComplaintLot.lot_id)
                               .where(ComplaintLot.complaint_id.in_(complaint_ids)))
    if lot_nos:
        found = dict(session.execute(select(Lot.lot_no, Lot.id)
                                     .where(Lot.lot_no.in_(lot_nos))).all())
        missing = [no for no in lot_nos if no not in found]
        if missing:
            raise NotFound(_l("No lot %(lot_no)s.", lot_no=", ".join(missing)))
        ids += found.values()
    if not ids:
        message = _l("The complaints name no lot yet.")
        raise InvalidInput(message, fields={"complaints": [message]})
    return ids


@api_route(bp, "/commonality", permission=Permission.COMPLAINT_MANAGE,
           query=s.CommonalityQuery, response=s.CommonalityOut, tag="complaints")
def get_commonality(args: dict[str, Any]) -> dict[str, Any]:
    """What the complained lots share (fab lots, wafers, material lots, tools at a step in
    a time window, date codes, route versions, BOM revisions) against every lot shipped in
    the period (the complained lots' shipments widened by `days`), best first: factors
    shared by two or more complained lots by lift, then those of one lot."""
    session = db.session()
    complaint_ids = args.get("complaints", [])
    ids = complained_lot_ids(session, complaint_ids, args.get("lots", []))
    result: Commonality = commonality(session, ids, days=args.get("days"),
                                      limit=args["limit"])
    return {**result.__dict__, "complaints": complaint_ids}


@api_route(bp, "/complaints/<int:complaint_id>/containments", method="POST",
           permission=(Permission.COMPLAINT_MANAGE, Permission.HOLD_PLACE),
           body=s.FactorContainmentIn, response=s.FactorContainmentOut, tag="complaints")
def contain_factor(complaint_id: int, data: dict[str, Any]) -> dict[str, Any]:
    """Contain by a commonality factor: the factor is the containment's match (fab lot,
    wafer `FAB/WAFER`, material lot, equipment with its `window`, date code, route version
    `ROUTE/VERSION`, BOM revision `PRODUCT/REVISION`); every matching lot still in the
    plant is held, the shipped ones listed by customer; the containment is linked to the
    complaint."""
    session = db.session()
    complaint = returns.get_complaint(session, complaint_id, current_user)
    result: Containment = containment.contain_factor(
        session, current_user, [complaint], factor=data["factor"], reason=data["reason"],
        comment=data["comment"])
    return {**result.__dict__, "complaints": [complaint.id],
            "factor": {k: v.isoformat() if hasattr(v, "isoformat") else v
                       for k, v in data["factor"].items() if k != "window"}}


def _return_schema() -> type[s.ReturnOut]:
    return s.ReturnOut if scope_customer(current_user) is not None else s.PlantReturnOut


@api_route(bp, "/complaints/<int:complaint_id>/returns", method="POST",
           permission=Permission.COMPLAINT_MANAGE, body=s.ReturnIn,
           response=s.PlantReturnOut, tag="complaints")
def create_return(complaint_id: int, data: dict[str, Any]) -> ComplaintReturn:
    """Record units received back from the customer under the complaint."""
    session = db.session()
    complaint = returns.get_complaint(session, complaint_id, current_user)
    return returns.record_return(session, current_user, complaint, **data)


@api_route(bp, "/complaints/<int:complaint_id>/returns", permission=Permission.COMPLAINT_READ,
           response=s.PlantReturnOut, many=True, tag="complaints")
def list_returns(complaint_id: int) -> Page | Response:
    """The complaint's returns with their failure analysis steps and files (customers:
    their own complaints', without who entered them)."""
    session = db.session()
    complaint = returns.get_complaint(session, complaint_id, current_user)
    items = returns.complaint_returns(session, complaint)
    if scope_customer(current_user) is not None:
        from flask import jsonify

        return jsonify({"items": s.ReturnOut(many=True).dump(items), "next": None})
    return Page(items, None)


def _analysis_fields() -> tuple[dict[str, Any], list[returns.Upload]]:
    if request.mimetype == "multipart/form-data":
        raw: Any = request.form.to_dict()
        files = []
        for upload in request.files.getlist("files"):
            # Read and closed at once: a large part is spooled to a temporary file.
            with upload.stream:
                content = upload.read()
            if upload.filename or content:
                files.append(returns.Upload(upload.filename or "", upload.mimetype or "",
                                            content))
    else:
        raw = request.get_json(silent=True)
        files = []
        if not isinstance(raw, dict):
            from mes.errors import BadRequest

            raise BadRequest(_l("The request body must be a JSON object or a multipart "
                                "form."))
    try:
        return s.AnalysisIn().load(raw), files
    except ValidationError as err:
        raise InvalidInput(_l("Some fields are missing or not valid."),
                           fields=err.normalized_messages()) from None


@api_route(bp, "/complaints/<int:complaint_id>/returns/<int:return_id>/analyses",
           method="POST", permission=Permission.COMPLAINT_MANAGE, raw_body=ANALYSIS_BODY,
           response=s.PlantAnalysisOut, tag="complaints")
def create_analysis(complaint_id: int, return_id: int) -> FailureAnalysis:
    """Record a failure analysis step (FA_STEPS) on the returned units: result pass, fail
    or finding, notes, and files (images, PDF; each at most FA_ATTACHMENT_LIMIT_MIB, 413
    over it; a file whose bytes are not its declared type is 422)."""
    session = db.session()
    complaint = returns.get_complaint(session, complaint_id, current_user)
    ret = returns.get_return(session, complaint, return_id)
    data, files = _analysis_fields()
    return returns.record_analysis(session, current_user, ret, files=files, **data)


@api_route(bp, "/complaints/<int:complaint_id>/attachments/<int:attachment_id>",
           permission=Permission.COMPLAINT_READ, tag="complaints",
           produces=("application/octet-stream",))
def analysis_attachment(complaint_id: int, attachment_id: int) -> Response:
    """A failure analysis file (plant users; customers: their own complaints' only)."""
    session = db.session()
    complaint = returns.get_complaint(session, complaint_id, current_user)
    found = returns.get_attachment(session, complaint, attachment_id)
    return attachment_response(found)
