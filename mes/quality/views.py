"""QA pages: the hold queue with aging, a hold's detail with its lot's history and backward
genealogy and the release form, bulk release, mass hold with a preview, future holds.

Forms are converted to the API's shape, validated with the API's input schemas and handed to
the same services as the API, so a page accepts and refuses exactly what the API does. A
refused form is shown again with its values, the service's message and the API's status;
the request then rolls back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import Select, select
from sqlalchemy.orm import joinedload

from mes import db
from mes.auth.permissions import PLANT_LOT_READ, Permission, require
from mes.catalog.models import Customer, ReasonCode
from mes.db import utcnow
from mes.floor import genealogy
from mes.floor import services as floor
from mes.floor.models import Lot
from mes.i18n import localized
from mes.pagination import count
from mes.quality import schemas as s
from mes.quality import services
from mes.quality.match_form import (
    MATCH_FIELDS,
    checked_match,
    hold_reasons,
    match_dump,
    match_options,
    plant_time,
    window,
)
from mes.quality.models import FutureHold, Hold
from mes.vocabulary import (
    BULK_DISPOSITIONS,
    Disposition,
    EventKind,
    HoldSource,
    HoldStatus,
    LotState,
    MatchKind,
    ReasonKind,
    Role,
)
from mes.web import forms
from mes.web.pager import pager

bp = Blueprint("quality", __name__)

# Hold age after which the queue warns, and after which it flags the hold as overdue.
AGE_WARNING = timedelta(hours=24)
AGE_DANGER = timedelta(hours=72)
# The mass-hold preview lists this many lots in its table; the counts cover them all.
PREVIEW_ROWS = 500


# --- hold queue ------------------------------------------------------------------------

@dataclass
class QueueRow:
    hold: Hold
    age: timedelta

    @property
    def age_class(self) -> str:
        if self.age > AGE_DANGER:
            return "age-danger"
        return "age-warning" if self.age > AGE_WARNING else ""

    @property
    def age_text(self) -> str:
        hours = int(self.age.total_seconds() // 3600)
        return _("%(days)dd %(hours)dh", days=hours // 24, hours=hours % 24)


def _queue(filters: dict[str, str]) -> Select[Any]:
    """The open holds the filters select, in the queue's order."""
    stmt = select(Hold).join(Lot, Lot.id == Hold.lot_id).where(Hold.status == HoldStatus.OPEN)
    if filters.get("reason"):
        stmt = stmt.join(ReasonCode, ReasonCode.id == Hold.reason_id).where(
            ReasonCode.code == filters["reason"])
    if filters.get("source"):
        stmt = stmt.where(Hold.source == filters["source"])
    if filters.get("customer"):
        stmt = stmt.join(Customer, Customer.id == Lot.customer_id).where(
            Customer.code == filters["customer"])
    order = (Lot.lot_no, Hold.id) if filters.get("sort") == "lot" else (Hold.placed_at,
                                                                         Hold.id)
    return stmt.order_by(*order)


def _queue_page(*, errors: list[str] | None = None, form: dict[str, Any] | None = None,
                status: int = 200) -> Any:
    filters = {key: request.args.get(key, "") for key in ("reason", "source", "customer",
                                                         "sort") if request.args.get(key)}
    sess = db.session()
    customers = [(c.code, f"{c.code} · {c.name}")
                 for c in sess.scalars(select(Customer).order_by(Customer.code))]
    reasons = [(r.code, r.code) for r in sess.scalars(
        select(ReasonCode).where(ReasonCode.kind == ReasonKind.HOLD).order_by(ReasonCode.code))]
    queue = _queue(filters)
    # Fifty holds a page, oldest first; a refused bulk release shows the page it came from.
    page = pager(queue.options(joinedload(Hold.reason),
                               joinedload(Hold.lot).joinedload(Lot.customer)),
                 keep=filters, endpoint="quality.holds")
    now = utcnow()
    return render_template(
        "quality/holds.html", rows=[QueueRow(hold, now - hold.placed_at) for hold in page.items],
        total=count(sess, queue), page=page, filters=filters,
        options={"reasons": reasons, "customers": customers,
                 "sources": HoldSource.choices(),
                 "sorts": [("age", _("Age (oldest first)")), ("lot", _("Lot number"))],
                 "dispositions": Disposition.choices(BULK_DISPOSITIONS)},
        source_labels=HoldSource.labels(), bulk_errors=errors or [], form=form or {}), status


@bp.route("/holds/queue")
@require(Permission.HOLD_READ)
def holds() -> Any:
    return _queue_page()


@bp.route("/holds/bulk-release", methods=["POST"])
@require(Permission.HOLD_RELEASE)
def bulk_release() -> Any:
    """Release the checked holds with one disposition, all or nothing."""
    sess = db.session()
    form = request.form
    ids = [int(v) for v in form.getlist("hold") if v.isdigit()]
    disposition = forms.text(form, "disposition")
    data: dict[str, Any] = {"disposition": disposition, "comment": forms.text(form, "comment")}
    if disposition == Disposition.USE_AS_IS:
        data["concession"] = forms.text(form, "concession") or None
    errors: list[str] = []
    status = 422
    if not ids:
        errors.append(_("Check at least one hold."))
    if disposition not in BULK_DISPOSITIONS:
        errors.append(_("Bulk release takes the disposition release or use as is."))
    if not errors:
        released, refused = forms.attempt(lambda: services.release_holds(
            sess, current_user, ids, forms.load(s.ReleaseIn, data)))
        if refused is None:
            return forms.done(_("%(n)d hold(s) released.", n=len(released or [])),
                              "quality.holds")
        # The service's refusal lists each refused hold (field `holds`) and why.
        errors = [m for msgs in refused.fields.values() for m in msgs] or [refused.message]
        status = refused.status
    return _queue_page(errors=errors, form={**form.to_dict(), "hold": ids}, status=status)


# --- hold detail and release -----------------------------------------------------------

def _detail_page(hold_id: int, *, refused: forms.Refused | None = None,
                 form: dict[str, str] | None = None, status: int = 200) -> Any:
    sess = db.session()
    hold = services.get_hold(sess, hold_id)
    lot = hold.lot
    scrap_reasons = [(r.code, f"{r.code} · {localized(r.description, r.description_zh)}")
                     for r in sess.scalars(
        select(ReasonCode).where(ReasonCode.kind == ReasonKind.SCRAP, ReasonCode.active.is_(True))
        .order_by(ReasonCode.code))]
    # Only the steps a rework may return to; without any, rework is not offered.
    steps = [(st.code, f"{st.seq}. {st.code} · {localized(st.name, st.name_zh)}")
             for st in services.rework_steps(lot)]
    dispositions = [(code, label) for code, label in Disposition.choices()
                    if steps or code != Disposition.REWORK]
    is_admin = getattr(current_user, "role", None) == Role.ADMIN
    return render_template(
        "quality/hold_detail.html", hold=hold, lot=lot,
        events=floor.history(sess, lot), backward=genealogy.backward(sess, lot),
        event_labels=EventKind.labels(), source_labels=HoldSource.labels(),
        dispositions=dispositions,
        scrap_reasons=scrap_reasons, steps=steps, refused=refused,
        errors=refused.fields if refused else {}, form=form or {},
        release_refusal=services.release_refusal(current_user, hold),
        releasers=services.releasers(sess, hold) if hold.status == HoldStatus.OPEN else [],
        own_override=is_admin and hold.placed_by == current_user.username), status


@bp.route("/holds/<int:hold_id>/view")
@require(Permission.HOLD_READ)
def hold_detail(hold_id: int) -> Any:
    return _detail_page(hold_id)


RELEASE_FIELDS = ("disposition", "comment", "rework_step", "scrap_qty", "scrap_reason",
                  "concession", "override_reason")


@bp.route("/holds/<int:hold_id>/view", methods=["POST"])
@require(Permission.HOLD_RELEASE)
def release(hold_id: int) -> Any:
    sess = db.session()
    hold = services.get_hold(sess, hold_id)
    form = {name: forms.text(request.form, name) for name in RELEASE_FIELDS}
    data = {name: value for name, value in form.items() if value}
    released, refused = forms.attempt(lambda: services.release_hold(
        sess, current_user, hold, forms.load(s.ReleaseIn, data)))
    if released is not None:
        return forms.done(_("Hold %(id)d on lot %(lot)s released (%(disposition)s).", id=hold_id,
                            lot=hold.lot.lot_no, disposition=Disposition(
                                released.disposition or Disposition.RELEASE).label),
                          "quality.hold_detail", hold_id=hold_id)
    assert refused is not None
    return _detail_page(hold_id, refused=refused, form=form, status=refused.status)


# --- a hold on one lot ------------------------------------------------------------------

@bp.route("/lots/<lot_no>/hold", methods=["GET", "POST"])
@require(Permission.HOLD_PLACE, *PLANT_LOT_READ)
def place_hold(lot_no: str) -> Any:
    """Put one lot on hold from its page: a hold reason and a comment."""
    sess = db.session()
    lot = floor.get_lot(sess, lot_no, current_user)
    form: dict[str, str] = {}
    refused: forms.Refused | None = None
    if request.method == "POST":
        form = {k: forms.text(request.form, k) for k in ("reason", "comment")}
        hold, refused = forms.attempt(lambda: services.hold_lot(
            sess, current_user, lot, **forms.load(s.HoldIn, form)))
        if hold is not None:
            return forms.done(_("Lot %(lot)s put on hold (%(reason)s).", lot=lot.lot_no,
                                reason=hold.reason.code), "floor.lot_detail", lot_no=lot.lot_no)
    return render_template(
        "quality/place_hold.html", lot=lot, form=form, refused=refused,
        errors=refused.fields if refused else {}, reasons=hold_reasons(),
        holdable=lot.state in services.IN_PLANT,
        open_holds=services.lot_holds(sess, lot, HoldStatus.OPEN)), \
        refused.status if refused else 200


# --- matches: mass hold and future holds -----------------------------------------------

@bp.route("/holds/mass", methods=["GET", "POST"])
@require(Permission.HOLD_PLACE)
def mass_hold() -> Any:
    """Mass hold in two steps: the preview of what the match selects, then the hold."""
    sess = db.session()
    form: dict[str, str] = {}
    preview: dict[str, list[str]] | None = None
    rows: list[services.PreviewRow] = []
    refused: forms.Refused | None = None
    if request.method == "POST":
        form = {k: forms.text(request.form, k) for k in (*MATCH_FIELDS, "reason", "comment")}
        if request.form.get("confirm"):
            done, refused = forms.attempt(lambda: services.mass_hold(
                sess, current_user, **forms.load(s.MassHoldIn, {
                    "reason": form["reason"], "comment": form["comment"],
                    "match": match_dump(checked_match(form))})))
            if done is not None:
                return forms.done(_("%(n)d lot(s) put on hold; %(shipped)d already shipped.",
                                    n=len(done.lots), shipped=len(done.shipped)), "quality.holds")
        else:
            found, refused = forms.attempt(lambda: services.match_preview(
                sess, checked_match(form), limit=PREVIEW_ROWS))
            if found is not None:
                preview, rows = found
    return render_template(
        "quality/mass_hold.html", form=form, preview=preview, rows=rows,
        more=sum(map(len, preview.values())) - len(rows) if preview else 0,
        state_labels=LotState.labels(), window=window(form) if preview else None, refused=refused,
        errors=refused.fields if refused else {}, kinds=match_options(),
        reasons=hold_reasons()), refused.status if refused else 200


def _future_page(*, form: dict[str, str] | None = None,
                 preview: dict[str, list[str]] | None = None, refused: forms.Refused | None = None,
                 status: int = 200) -> Any:
    sess = db.session()
    rules = services.present_rules(sess, list(sess.scalars(
        services.future_hold_query({}).order_by(None)
        .order_by(FutureHold.status, FutureHold.id.desc()))))
    return render_template(
        "quality/future_holds.html", rules=rules, form=form or {}, preview=preview,
        refused=refused, errors=refused.fields if refused else {}, kinds=match_options(),
        reasons=hold_reasons(), match_labels=MatchKind.labels(), plant_time=plant_time), status


@bp.route("/holds/future")
@require(Permission.HOLD_READ)
def future_holds() -> Any:
    """The future-hold rules, active and retired, and the form to create one."""
    return _future_page()


@bp.route("/holds/future", methods=["POST"])
@require(Permission.HOLD_PLACE)
def create_future_hold() -> Any:
    """Create a rule in two steps: the preview of the lots matching now, then the rule."""
    sess = db.session()
    form = {k: forms.text(request.form, k) for k in (*MATCH_FIELDS, "reason", "comment",
                                                "at_step")}
    if request.form.get("confirm"):
        made, refused = forms.attempt(lambda: services.create_future_hold(
            sess, current_user, **forms.load(s.FutureHoldIn, {
                "reason": form["reason"], "comment": form["comment"],
                "at_step": form["at_step"], "match": match_dump(checked_match(form))})))
        if made is not None:
            assert made.matching_now is not None
            now = made.matching_now
            return forms.done(_("Future hold %(id)d created at step %(step)s: %(before)d matching "
                                "lot(s) will be held on arrival; %(at)d are at the step now and "
                                "are not held by it.", id=made.rule.id, step=made.rule.at_step,
                                before=now["before_step"], at=now["at_step"]),
                              "quality.future_holds")
        return _future_page(form=form, refused=refused,
                            status=refused.status if refused else 200)
    preview, refused = forms.attempt(lambda: services.match_lots(sess, checked_match(form)))
    return _future_page(form=form, preview=preview, refused=refused,
                        status=refused.status if refused else 200)


@bp.route("/holds/future/<int:rule_id>/retire", methods=["POST"])
@require(Permission.HOLD_PLACE)
def retire_future_hold(rule_id: int) -> Any:
    sess = db.session()
    rule = services.get_future_hold(sess, rule_id)
    done, refused = forms.attempt(lambda: services.retire_future_hold(sess, current_user, rule))
    if refused is not None:
        flash(refused.message, "error")
        return redirect(url_for("quality.future_holds"), code=303)
    return forms.done(_("Future hold %(id)d retired.", id=rule_id), "quality.future_holds")
