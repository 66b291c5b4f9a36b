"""Shipping pages: the shipment list, the new-shipment form, a shipment's detail, its reel
and carton labels (HTML to print, ZPL for Zebra printers) and its certificate of
conformance.

The form is converted to the API's shape, validated with the API's input schema and handed
to the same service as the API, so the page accepts and refuses exactly what the API does;
a refused form is shown again with its values, the refusal and the API's status, and the
request rolls back. The label and certificate renderers are shared with the customer portal.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from marshmallow import Schema, ValidationError
from sqlalchemy import select

from mes import db
from mes.api.registry import paginate
from mes.auth.permissions import Permission, require
from mes.catalog.models import Customer
from mes.errors import DomainError, NotFound
from mes.shipping import coc, labels, services
from mes.shipping import schemas as s
from mes.shipping.models import Shipment

bp = Blueprint("shipping", __name__)

# Pages show master data (customers, products) besides shipments: plant roles only; the
# customer's own view of its shipments is the portal.
READ = (Permission.SHIPMENT_READ, Permission.MASTER_READ)
WRITE = (Permission.SHIP, Permission.MASTER_READ)
PER_PAGE = 50
FILTERS = ("customer", "po", "vehicle_program", "lot", "since", "until")
SBA_LABELS = {"ok": _l("within limits"), "level1": _l("level 1 breach (engineering review)"),
              "level2": _l("level 2 breach (MRB)"),
              "insufficient_history": _l("not judged (too little history)")}
PAT_LABELS = {"both": _l("dynamic and static"), "dynamic": _l("dynamic"),
              "static": _l("static"), "none": _l("not applied")}


def _flat(messages: Any) -> list[str]:
    """Schema messages as sentences; a list item's messages are named by its position."""
    if isinstance(messages, dict):
        return [f"{_('item %(n)d', n=key + 1)}: {msg}" if isinstance(key, int) else msg
                for key, value in messages.items() for msg in _flat(value)]
    if isinstance(messages, list | tuple):
        return [msg for item in messages for msg in _flat(item)]
    return [str(messages)]


def _messages(err: ValidationError) -> dict[str, list[str]]:
    raw = err.normalized_messages()
    if not isinstance(raw, dict):
        return {"_schema": _flat(raw)}
    return {key: _flat(value) for key, value in raw.items()}


# --- shared with the portal ------------------------------------------------------------

def render_labels(shipment: Shipment, *, back_url: str, zpl_url: str) -> str:
    """The print-ready reel and carton labels of a shipment, each with its QR code."""
    items = services.shipment_labels(db.session(), shipment)
    # segno writes the QR codes as SVG paths from the label fields; the template marks
    # only this markup safe.
    cards = [{"label": label, "qr": labels.qr_svg(label.qr_data(),
                                                  f"{label.kind} {label.lot_text}")}
             for label in items]
    return render_template("shipping/labels.html", shipment=shipment, cards=cards,
                           back_url=back_url, zpl_url=zpl_url)


def zpl_response(shipment: Shipment) -> Response:
    """The shipment's labels as one ZPL print job, downloaded as text."""
    body = labels.zpl_many(services.shipment_labels(db.session(), shipment))
    return Response(body, mimetype="text/plain", headers={
        "Content-Disposition": f'attachment; filename="shipment-{shipment.id}-labels.zpl"'})


def render_coc(shipment: Shipment, *, back_url: str | None = None,
               standalone: bool = False) -> str:
    """The certificate of conformance as a complete, print-ready HTML document. A
    `standalone` one (a download) carries its style sheet inline instead of linking it."""
    cert = coc.certificate(db.session(), shipment)
    css = (Path(current_app.static_folder or "") / "css" / "shipping.css").read_text(
        encoding="utf-8") if standalone else None
    return render_template("shipping/coc.html", cert=cert, back_url=back_url,
                           sba_labels=SBA_LABELS, pat_labels=PAT_LABELS, inline_css=css)


def coc_download(shipment: Shipment) -> Response:
    """The certificate as a file to keep: coc-<shipment>.html, style included."""
    return Response(render_coc(shipment, standalone=True), mimetype="text/html", headers={
        "Content-Disposition": f'attachment; filename="coc-{shipment.id}.html"'})


# --- list and detail -------------------------------------------------------------------

@bp.route("/shipments")
@require(*READ)
def shipments() -> Any:
    sess = db.session()
    raw = {key: value.strip() for key, value in request.args.items() if value.strip()}
    filters = {key: raw[key] for key in FILTERS if key in raw}
    customers = [(c.code, f"{c.code} · {c.name}")
                 for c in sess.scalars(select(Customer).order_by(Customer.code))]
    try:
        args = s.ShipmentQuery().load({"limit": str(PER_PAGE), **raw})
    except ValidationError as err:
        return render_template("shipping/list.html", rows=[], filters=filters,
                               customers=customers, errors=_messages(err), next_url=None,
                               first_url=None), 422
    stmt = services.filter_shipments(services.shipment_query(current_user), args)
    page = paginate(sess, stmt, args)
    keep = {key: value for key, value in raw.items() if key != "cursor"}
    return render_template(
        "shipping/list.html", rows=page.items, filters=filters, customers=customers,
        errors={},
        next_url=url_for("shipping.shipments", **keep, cursor=page.next) if page.next else None,
        first_url=url_for("shipping.shipments", **keep) if raw.get("cursor") else None)


@bp.route("/shipments/<int:shipment_id>")
@require(*READ)
def shipment_detail(shipment_id: int) -> Any:
    sess = db.session()
    shipment = services.get_shipment(sess, shipment_id, current_user)
    return render_template("shipping/detail.html", shipment=shipment,
                           date_codes=services.date_codes(sess, shipment),
                           total=sum(row.quantity for row in shipment.lots))


@bp.route("/shipments/<int:shipment_id>/labels")
@require(*READ)
def labels_page(shipment_id: int) -> Any:
    shipment = services.get_shipment(db.session(), shipment_id, current_user)
    return render_labels(
        shipment, back_url=url_for("shipping.shipment_detail", shipment_id=shipment.id),
        zpl_url=url_for("shipping.labels_zpl", shipment_id=shipment.id))


@bp.route("/shipments/<int:shipment_id>/labels.zpl")
@require(*READ)
def labels_zpl(shipment_id: int) -> Any:
    return zpl_response(services.get_shipment(db.session(), shipment_id, current_user))


@bp.route("/shipments/<int:shipment_id>/coc")
@require(*READ)
def coc_page(shipment_id: int) -> Any:
    shipment = services.get_shipment(db.session(), shipment_id, current_user)
    if request.args.get("download"):
        return coc_download(shipment)
    return render_coc(shipment, back_url=url_for("shipping.shipment_detail",
                                                 shipment_id=shipment.id))


# --- new shipment ----------------------------------------------------------------------

def _new_page(customer_code: str, form: dict[str, Any], errors: dict[str, list[str]],
              refusal: DomainError | None = None, status: int = 200) -> Any:
    sess = db.session()
    customers = list(sess.scalars(select(Customer).order_by(Customer.code)))
    customer = next((c for c in customers if c.code == customer_code), None)
    candidates = []
    if customer is not None:
        for lot in services.shippable_lots(sess, customer):
            why = services.refusal(sess, lot, customer)
            candidates.append({"lot": lot, "refusal": why})
    elif customer_code:
        errors = {**errors, "customer": [_("Unknown customer %(code)s.", code=customer_code)]}
        status = max(status, 422)
    return render_template(
        "shipping/new.html", customers=[(c.code, f"{c.code} · {c.name}") for c in customers],
        customer=customer, candidates=candidates, form=form, errors=errors,
        refusal=refusal), status


@bp.route("/shipments/new", methods=["GET", "POST"])
@require(*WRITE)
def shipment_new() -> Any:
    if request.method == "GET":
        code = request.args.get("customer", "").strip()
        return _new_page(code, {"customer": code, "lots": []}, {})
    form = {"customer": request.form.get("customer", "").strip(),
            "po": request.form.get("po", "").strip(),
            "vehicle_program": request.form.get("vehicle_program", "").strip(),
            "lots": [n.strip() for n in request.form.getlist("lots") if n.strip()]}
    data = {**form, "vehicle_program": form["vehicle_program"] or None}
    sess = db.session()
    try:
        loaded = _load(s.ShipmentIn, data)
        shipment = services.create_shipment(sess, current_user, loaded)
        # Flushed so that a lost race (a lot held meanwhile: its version counter) fails
        # here, before the success message is stored in the session cookie.
        sess.flush()
    except ValidationError as err:
        return _new_page(form["customer"], form, _messages(err), status=422)
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        fields_ = {k: [str(m) for m in v] for k, v in (exc.fields or {}).items()}
        return _new_page(form["customer"], form, fields_, refusal=exc, status=exc.status)
    flash(_("Shipment %(id)d to %(customer)s created: %(n)d lot(s).", id=shipment.id,
            customer=shipment.customer.code, n=len(shipment.lots)), "success")
    return redirect(url_for("shipping.shipment_detail", shipment_id=shipment.id), code=303)


def _load(schema: type[Schema], data: dict[str, Any]) -> dict[str, Any]:
    return schema().load(data)
