"""Units returned under a complaint and their failure analysis: each analysis step (one of
FA_STEPS) with its result, notes and files (images, PDF reports) kept in the database, at
most FA_ATTACHMENT_LIMIT_MIB each.

A file is accepted when its declared content type is one of ATTACHMENT_TYPES and its first
bytes are that type's signature (a PNG that says it is a PNG): a file that is something else
is refused, whatever its name says. Plant users see every complaint's returns; a customer
user only their own complaints' (another's is not found).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app, has_app_context
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from mes import audit
from mes.auth.actor import Actor, actor_name
from mes.commonality.models import AnalysisAttachment, ComplaintReturn, FailureAnalysis
from mes.complaints import services as complaints_service
from mes.complaints.models import Complaint
from mes.errors import InvalidInput, NotFound, TooLarge

MIB = 1024 * 1024
DEFAULT_STEPS = "electrical_verification,xray,acoustic_microscopy,decap,cross_section"
DEFAULT_LIMIT_MIB = 10
# The files an analysis step may carry: declared type -> the signatures its bytes start with.
ATTACHMENT_TYPES: dict[str, tuple[bytes, ...]] = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/tiff": (b"II*\x00", b"MM\x00*"),
    "application/pdf": (b"%PDF-",),
}
# How the analysis steps of the default list read on pages.
STEP_WORDS: dict[str, Any] = {
    "electrical_verification": _l("Electrical verification"), "xray": _l("X-ray"),
    "acoustic_microscopy": _l("Acoustic microscopy"), "decap": _l("Decap"),
    "cross_section": _l("Cross-section"),
}
# The most files one analysis step takes.
MAX_FILES = 20


def analysis_steps() -> list[str]:
    """The configured analysis steps (FA_STEPS, comma-separated codes), in order."""
    raw = (current_app.config.get("FA_STEPS", DEFAULT_STEPS) if has_app_context()
           else DEFAULT_STEPS)
    return [code.strip() for code in str(raw).split(",") if code.strip()]


def step_word(code: str) -> str:
    return str(STEP_WORDS.get(code, code.replace("_", " ")))


def attachment_limit() -> int:
    mib = (current_app.config.get("FA_ATTACHMENT_LIMIT_MIB", DEFAULT_LIMIT_MIB)
           if has_app_context() else DEFAULT_LIMIT_MIB)
    return int(mib) * MIB


def get_complaint(session: Session, complaint_id: int, actor: Actor | None) -> Complaint:
    """The complaint (a customer user: only their customer's; another's is NotFound)."""
    return complaints_service.get_complaint(session, complaint_id, actor)


def complaint_returns(session: Session, complaint: Complaint) -> list[ComplaintReturn]:
    """The complaint's returns, oldest first, with their analyses and attachments (the
    files' content is not read)."""
    return list(session.scalars(
        select(ComplaintReturn).where(ComplaintReturn.complaint_id == complaint.id)
        .order_by(ComplaintReturn.received_at, ComplaintReturn.id)
        .options(selectinload(ComplaintReturn.analyses)
                 .selectinload(FailureAnalysis.attachments))))


def get_return(session: Session, complaint: Complaint, return_id: int) -> ComplaintReturn:
    ret = session.scalar(select(ComplaintReturn).where(
        ComplaintReturn.id == return_id, ComplaintReturn.complaint_id == complaint.id))
    if ret is None:
        raise NotFound(_l("No return %(id)s for this complaint.", id=return_id))
    return ret


def record_return(session: Session, actor: Actor, complaint: Complaint, *, units: int,
                  received_at: datetime) -> ComplaintReturn:
    """Record `units` units received back on `received_at`. Raises InvalidInput for a
    receipt before the complaint was received."""
    if received_at < complaint.received_at:
        message = _l("The units cannot come back before the complaint was received.")
        raise InvalidInput(message, fields={"received_at": [message]})
    ret = ComplaintReturn(complaint_id=complaint.id, units=units, received_at=received_at,
                          created_by=actor_name(actor))
    session.add(ret)
    session.flush()
    audit.record(session, actor=actor, code="complaint:return", subject_type="complaint",
                 subject_key=str(complaint.id),
                 data={"return": ret.id, "units": units, "received_at": received_at})
    return ret


@dataclass(frozen=True)
class Upload:
    """A file as received: its name, declared content type and bytes."""

    filename: str
    content_type: str
    content: bytes


def _check_files(files: list[Upload]) -> None:
    if len(files) > MAX_FILES:
        message = _l("At most %(count)s files per analysis step.", count=MAX_FILES)
        raise InvalidInput(message, fields={"files": [message]})
    limit = attachment_limit()
    for upload in files:
        if len(upload.content) > limit:
            raise TooLarge(_l("%(name)s is larger than the limit of %(limit)s MiB "
                              "(FA_ATTACHMENT_LIMIT_MIB).", name=upload.filename,
                              limit=limit // MIB))
        kind = upload.content_type.split(";")[0].strip().lower()
        signatures = ATTACHMENT_TYPES.get(kind)
        if signatures is None:
            message = _l("%(name)s: only images (PNG, JPEG, TIFF) and PDF files are taken.",
                         name=upload.filename)
            raise InvalidInput(message, fields={"files": [message]})
        if not upload.content.startswith(signatures):
            message = _l("%(name)s is not the %(type)s file it says it is.",
                         name=upload.filename, type=kind)
            raise InvalidInput(message, fields={"files": [message]})
        if not upload.filename.strip():
            message = _l("Each file needs a name.")
            raise InvalidInput(message, fields={"files": [message]})


def record_analysis(session: Session, actor: Actor, ret: ComplaintReturn, *, step: str,
                    result: str, notes: str, files: list[Upload]) -> FailureAnalysis:
    """Record an analysis step on returned units with its files. Raises InvalidInput (a
    step not in FA_STEPS, a file neither an image nor a PDF) and TooLarge (a file over
    FA_ATTACHMENT_LIMIT_MIB); nothing is stored then."""
    if step not in analysis_steps():
        message = _l("Unknown analysis step %(step)s; the steps are %(steps)s.", step=step,
                     steps=", ".join(analysis_steps()))
        raise InvalidInput(message, fields={"step": [message]})
    _check_files(files)
    analysis = FailureAnalysis(return_id=ret.id, step=step, result=result,
                               notes=(notes or "").strip(), created_by=actor_name(actor))
    for upload in files:
        analysis.attachments.append(AnalysisAttachment(
            filename=upload.filename.strip()[-200:],
            content_type=upload.content_type.split(";")[0].strip().lower(),
            size=len(upload.content), sha256=hashlib.sha256(upload.content).hexdigest(),
            content=upload.content))
    session.add(analysis)
    session.flush()
    audit.record(session, actor=actor, code="complaint:analysis", subject_type="complaint",
                 subject_key=str(ret.complaint_id),
                 data={"return": ret.id, "analysis": analysis.id, "step": step,
                       "result": result,
                       "files": [{"name": a.filename, "sha256": a.sha256}
                                 for a in analysis.attachments]})
    return analysis


def get_attachment(session: Session, complaint: Complaint, attachment_id: int
                   ) -> AnalysisAttachment:
    """An attachment of one of the complaint's analyses, with its content."""
    found = session.scalar(
        select(AnalysisAttachment)
        .join(FailureAnalysis, FailureAnalysis.id == AnalysisAttachment.analysis_id)
        .join(ComplaintReturn, ComplaintReturn.id == FailureAnalysis.return_id)
        .where(AnalysisAttachment.id == attachment_id,
               ComplaintReturn.complaint_id == complaint.id)
        .options(selectinload(AnalysisAttachment.analysis)))
    if found is None:
        raise NotFound(_l("No attachment %(id)s for this complaint.", id=attachment_id))
    return found


def presented_returns(session: Session, complaint: Complaint, staff: bool
                      ) -> list[dict[str, Any]]:
    """The complaint's returns as its reader sees them (customers: without who entered
    them), with each analysis step and its files' download addresses."""
    from mes.commonality import schemas as s

    schema = s.PlantReturnOut if staff else s.ReturnOut
    return list(schema(many=True).dump(complaint_returns(session, complaint)))
