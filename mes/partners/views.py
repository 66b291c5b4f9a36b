"""Partner pages: a customer's grants (list, grant, revoke: Permission.GRANT_WRITE, shown
in the portal's sections), and a partner user's granted lots, one lot and one shipment
(Permission.PARTNER_READ). What a partner sees starts from its active grants on every
request (mes.partners.access); any other lot or shipment is a 404."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request
from flask_babel import gettext as _
from flask_login import current_user

from mes import db
from mes.auth.permissions import Permission, require
from mes.db import utcnow
from mes.errors import NotFound
from mes.partners import schemas as s
from mes.partners import services
from mes.vocabulary import Disposition, HoldSource, LotState
from mes.web import forms
from mes.web.pager import pager

bp = Blueprint("partners", __name__, url_prefix="/partners")


def _partner_id() -> int:
    partner = services.partner_of(current_user)
    if partner is None:
        raise NotFound(_("No partner organisation."))
    return partner


def _owner_id() -> int | None:
    return services.owner_of(current_user)


# --- the owner's grants --------------------------------------------------------------------

def _grants_page(form: dict[str, Any] | None = None,
                 refused: forms.Refused | None = None) -> Any:
    own = _owner_id()
    page = pager(services.grants_query(current_user))
    lines = services.owner_lines(db.session(), own) if own is not None else []
    programs = sorted({program for *_rest, program in lines if program})
    line_options = [(f"{po}#{line}", " · ".join(
        str(part) for part in (f"{po} / {line}", product, program) if part))
        for po, line, product, program in lines]
    return render_template("partners/grants.html", rows=page.items, page=page,
                           line_options=line_options, programs=programs, form=form or {},
                           errors=refused.fields if refused else {},
                           refused=refused, section="partners.grants",
                           customer_field=own is None), refused.status if refused else 200


@bp.route("/grants")
@require(Permission.GRANT_WRITE)
def grants() -> Any:
    """The grants the customer made: partner, PO line or vehicle program; grant, revoke."""
    return _grants_page()


@bp.route("/grants", methods=["POST"])
@require(Permission.GRANT_WRITE)
def grant() -> Any:
    sess = db.session()
    posted = {key: forms.text(request.form, key)
              for key in ("partner", "customer", "scope", "vehicle_program")}

    def action() -> Any:
        po, _sep, line = posted["scope"].partition("#")
        data = forms.load(s.GrantIn, {
            "partner": posted["partner"], "customer": posted["customer"] or None,
            **({"vehicle_program": posted["vehicle_program"]} if posted["vehicle_program"]
               else {"po": po or None, "line": line or None})})
        return services.create_grant(sess, current_user, data)

    made, refused = forms.attempt(action)
    if made is None:
        assert refused is not None
        return _grants_page(posted, refused)
    return forms.done(_("%(partner)s may now see the lots of grant %(id)s.",
                        partner=made.partner.code, id=made.id), "partners.grants")


@bp.route("/grants/<int:grant_id>/revoke", methods=["POST"])
@require(Permission.GRANT_WRITE)
def revoke(grant_id: int) -> Any:
    sess = db.session()
    _done, refused = forms.attempt(
        lambda: services.revoke_grant(sess, current_user, grant_id))
    if refused is not None:
        return _grants_page(None, refused)
    return forms.done(_("Grant %(id)s revoked.", id=grant_id), "partners.grants")


# --- what a partner sees ---------------------------------------------------------------------

@bp.route("/")
@require(Permission.PARTNER_READ)
def index() -> Any:
    """The partner's granted lots by owner and PO line, with the grants received."""
    partner = _partner_id()
    sess = db.session()
    now = utcnow()
    page = pager(services.granted_lot_query(partner))
    rows = services.granted_rows(sess, partner, page.items, now)
    return render_template("partners/index.html", rows=rows, page=page,
                           grants=list(sess.scalars(services.grants_query(current_user)
                                                    .limit(100))),
                           state_labels=LotState.labels())


@bp.route("/lots/<lot_no>")
@require(Permission.PARTNER_READ)
def lot(lot_no: str) -> Any:
    partner = _partner_id()
    sess = db.session()
    now = utcnow()
    found = services.granted_lot(sess, partner, lot_no, now)
    return render_template("partners/lot.html", row=found,
                           holds=services.lot_holds(sess, found.lot.id, now),
                           shipments=services.lot_shipments(sess, partner, found.lot.id),
                           state_labels=LotState.labels(),
                           source_labels=HoldSource.labels(),
                           disposition_labels=Disposition.labels())


@bp.route("/shipments/<int:shipment_id>")
@require(Permission.PARTNER_READ)
def shipment(shipment_id: int) -> Any:
    shipped, lines = services.granted_shipment(db.session(), _partner_id(), shipment_id)
    return render_template("partners/shipment.html", shipment=shipped, lines=lines,
                           total=sum(line.quantity for line in lines))
