"""Shipping pages: the shipment list, the new-shipment form, a shipment's detail, its reel
and carton labels (HTML to print, ZPL for Zebra printers) and its certificate of
conformance.

The form is converted to the API's shape, validated with the API's input schema and handed
to the same service as the API, so the page accepts and refuses exactly what the API does;
a refused form is shown again with its values, the refusal and the API's status, and the
request rolls back. Labels and the certificate come from `mes.shipping.documents`.
"""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    current_app,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from marshmallow import ValidationError
from sqlalchemy import select

from mes import db
from mes.auth.permissions import PLANT_LOT_READ, Permission, require
from mes.catalog.models import Customer
from mes.errors import NotFound
from mes.floor import services as floor
from mes.shipping import iso15434, packing, services
from mes.shipping import schemas as s
from mes.shipping.documents import (
    LABEL_TYPES,
    coc_download,
    coc_pdf,
    label_response,
    pack_label,
    render_coc,
    render_labels,
    zpl_response,
)
from mes.shipping.models import PackUnit
from mes.vocabulary import CARRIERS, PACKAGES, PackKind
from mes.web import forms
from mes.web.pager import PER_PAGE, pager

bp = Blueprint("shipping", __name__)

# Pages show master data (customers, products) besides shipments: plant roles only; the
# customer's own view of its shipments is the portal.
READ = (Permission.SHIPMENT_READ, Permission.MASTER_READ)
WRITE = (Permission.SHIP, Permission.MASTER_READ)
PACK = (Permission.PACK, Permission.MASTER_READ)
# The loose pack units the packing page offers at most.
LOOSE_SHOWN = 300
FILTERS = ("customer", "po", "vehicle_program", "lot", "since", "until")


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
        args = forms.load(s.ShipmentQuery, {"limit": str(PER_PAGE), **raw})
    except ValidationError as err:
        return render_template("shipping/list.html", rows=[], filters=filters,
                               customers=customers,
                               errors=forms.field_errors(err.normalized_messages()),
                               next_url=None, first_url=None), 422
    # The days people pick are the plant's.
    page = pager(services.filter_shipments(services.shipment_query(current_user), args,
                                           current_app.config["PLANT_TIMEZONE"]), args,
                 keep=raw)
    return render_template(
        "shipping/list.html", rows=page.items, filters=filters, customers=customers,
        errors={}, next_url=page.next_url, first_url=page.first_url)


@bp.route("/shipments/<int:shipment_id>")
@require(*READ)
def shipment_detail(shipment_id: int) -> Any:
    sess = db.session()
    shipment = services.get_shipment(sess, shipment_id, current_user)
    return render_template("shipping/detail.html", shipment=shipment,
                           units=[packing.present_unit(sess, u) for u in shipment.units],
                           kind_labels=PackKind.labels(),
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
    if request.args.get("format") == "pdf":
        return coc_pdf(shipment)
    return render_coc(shipment, back_url=url_for("shipping.shipment_detail",
                                                 shipment_id=shipment.id))


# --- pack unit labels ------------------------------------------------------------------

@bp.route("/pack-units/<code>/label")
@require(*PLANT_LOT_READ)
def pack_label_page(code: str) -> Any:
    """A pack unit's label on screen: the picture, its human-readable fields, the 2D
    symbol's message (separators shown as ␞ ␝ ␄), and the PNG, SVG, PDF and ZPL files."""
    unit = packing.get_pack_unit(db.session(), code, current_user)
    label = pack_label(unit, country=current_app.config["PLANT_COUNTRY"],
                       zone=current_app.config["PLANT_TIMEZONE"])
    return render_template("shipping/pack_label.html", unit=unit, label=label,
                           payload=iso15434.human(label.payload()), formats=LABEL_TYPES)


@bp.route("/pack-units/<code>/label.<fmt>")
@require(*PLANT_LOT_READ)
def pack_label_file(code: str, fmt: str) -> Any:
    if fmt not in LABEL_TYPES:
        raise NotFound(_("No label format %(format)s.", format=fmt))
    unit = packing.get_pack_unit(db.session(), code, current_user)
    return label_response(unit, fmt, download=bool(request.args.get("download")))


# --- new shipment ----------------------------------------------------------------------

def _new_page(customer_code: str, form: dict[str, Any], errors: dict[str, list[str]],
              refused: forms.Refused | None = None, status: int = 200) -> Any:
    sess = db.session()
    customers = list(sess.scalars(select(Customer).order_by(Customer.code)))
    customer = next((c for c in customers if c.code == customer_code), None)
    candidates = []
    units: list[packing.PresentedPackUnit] = []
    if customer is not None:
        checked: set[tuple[int, int | None]] = set()
        for lot in services.shippable_lots(sess, customer):
            why = services.refusal(sess, lot, customer, checked)
            candidates.append({"lot": lot, "refusal": why})
        units = [packing.present_unit(sess, u)
                 for u in packing.loose_units(sess, customer_id=customer.id,
                                              limit=LOOSE_SHOWN)]
    elif customer_code:
        errors = {**errors, "customer": [_("Unknown customer %(code)s.", code=customer_code)]}
        status = max(status, 422)
    return render_template(
        "shipping/new.html", customers=[(c.code, f"{c.code} · {c.name}") for c in customers],
        customer=customer, candidates=candidates, units=units, kind_labels=PackKind.labels(),
        form=form, errors=errors, refusal=refused), status


@bp.route("/shipments/new", methods=["GET", "POST"])
@require(*WRITE)
def shipment_new() -> Any:
    if request.method == "GET":
        code = request.args.get("customer", "").strip()
        return _new_page(code, {"customer": code, "lots": [], "pack_units": []}, {})
    form: dict[str, Any] = {"customer": forms.text(request.form, "customer"),
            "po": forms.text(request.form, "po"),
            "vehicle_program": forms.text(request.form, "vehicle_program"),
            "lots": [n.strip() for n in request.form.getlist("lots") if n.strip()],
            "pack_units": [n.strip() for n in request.form.getlist("pack_units") if n.strip()]}
    data = {**form, "vehicle_program": form["vehicle_program"] or None}
    loaded, invalid = forms.attempt(lambda: forms.load(s.ShipmentIn, data))
    if loaded is None:
        assert invalid is not None
        return _new_page(form["customer"], form, invalid.fields, status=invalid.status)
    shipment, refused = forms.attempt(lambda: services.create_shipment(
        db.session(), current_user, loaded))
    if shipment is not None:
        return forms.done(_("Shipment %(id)d to %(customer)s created: %(n)d lot(s).",
                            id=shipment.id, customer=shipment.customer.code,
                            n=len(shipment.lots)),
                          "shipping.shipment_detail", shipment_id=shipment.id)
    assert refused is not None
    return _new_page(form["customer"], form, refused.fields, refused, refused.status)


# --- packing ---------------------------------------------------------------------------

def _pack_page(lot_no: str, form: dict[str, Any], errors: dict[str, list[str]],
               refused: forms.Refused | None = None, status: int = 200) -> Any:
    sess = db.session()
    lot = floor.get_lot(sess, lot_no, current_user)
    units = [packing.present_unit(sess, u) for u in packing.lot_units(sess, lot)]
    standard = lot.product.standard_pack_qty or {}
    return render_template(
        "shipping/pack_lot.html", lot=lot, units=units, form=form, errors=errors,
        refusal=refused, standard=standard, kind_labels=PackKind.labels(),
        carriers=PackKind.choices(CARRIERS)), status


@bp.route("/packing/lots/<lot_no>", methods=["GET", "POST"])
@require(*PACK)
def pack_lot(lot_no: str) -> Any:
    """Pack a lot into reels, trays or tubes (the lot page's form posts here)."""
    if request.method == "GET":
        return _pack_page(lot_no, {"carrier": PackKind.REEL.value}, {})
    sess = db.session()
    lot = floor.get_lot(sess, lot_no, current_user)
    form = {"carrier": forms.text(request.form, "carrier"),
            "quantity_per": forms.text(request.form, "quantity_per")}
    data = {"carrier": form["carrier"], "quantity_per": form["quantity_per"] or None}

    def action() -> list[PackUnit]:
        loaded = forms.load(s.PackIn, data)
        return packing.pack_lot(sess, current_user, lot, carrier=loaded["carrier"],
                                quantity_per=loaded.get("quantity_per"))

    units, refused = forms.attempt(action)
    if units is not None:
        return forms.done(_("Lot %(lot)s packed: %(n)d carrier(s), %(first)s to %(last)s.",
                            lot=lot.lot_no, n=len(units), first=units[0].code,
                            last=units[-1].code),
                          "shipping.pack_lot", lot_no=lot.lot_no)
    assert refused is not None
    return _pack_page(lot_no, form, refused.fields, refused, refused.status)


def _packing_page(form: dict[str, Any], errors: dict[str, list[str]],
                  refused: forms.Refused | None = None, status: int = 200) -> Any:
    sess = db.session()
    units = [packing.present_unit(sess, u)
             for u in packing.loose_units(sess, limit=LOOSE_SHOWN)]
    return render_template(
        "shipping/packing.html", units=units, form=form, errors=errors, refusal=refused,
        kinds=PackKind.choices(PACKAGES), kind_labels=PackKind.labels()), status


@bp.route("/packing", methods=["GET", "POST"])
@require(*PACK)
def packing_page() -> Any:
    """Loose pack units (in no package, not shipped) and the form that puts some of them
    into a new dry bag, box or carton; a box to look a pack unit up by its id."""
    if request.method == "GET":
        return _packing_page({"kind": PackKind.BAG.value, "children": []}, {})
    sess = db.session()
    form = {"kind": forms.text(request.form, "kind"),
            "children": [c.strip() for c in request.form.getlist("children") if c.strip()],
            "quantity": forms.text(request.form, "quantity")}
    data = {"kind": form["kind"], "children": form["children"],
            "quantity": form["quantity"] or None}

    def action() -> PackUnit:
        loaded = forms.load(s.PackageIn, data)
        return packing.make_package(sess, current_user, kind=loaded["kind"],
                                    children=loaded["children"],
                                    quantity=loaded.get("quantity"))

    unit, refused = forms.attempt(action)
    if unit is not None:
        return forms.done(_("%(kind)s %(id)s made: %(qty)s units.",
                            kind=PackKind.word(unit.kind), id=unit.code, qty=unit.quantity),
                          "shipping.pack_unit_page", code=unit.code)
    assert refused is not None
    return _packing_page(form, refused.fields, refused, refused.status)


@bp.route("/packing/units/<code>")
@require(*PLANT_LOT_READ)
def pack_unit_page(code: str) -> Any:
    """What a pack unit holds: children, lots with their quantities, date codes."""
    sess = db.session()
    shown = packing.present_unit(sess, packing.get_pack_unit(sess, code, current_user))
    return render_template("shipping/pack_unit.html", shown=shown,
                           kind_labels=PackKind.labels())


@bp.route("/packing/find")
@require(*PLANT_LOT_READ)
def find_pack_unit() -> Any:
    """The packing page's look-up box: to the pack unit's page (404 when unknown)."""
    code = (request.args.get("code") or "").strip()
    unit = packing.get_pack_unit(db.session(), code, current_user)
    return redirect(url_for("shipping.pack_unit_page", code=unit.code), 303)
