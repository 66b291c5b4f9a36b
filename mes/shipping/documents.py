"""A shipment's printable documents: the reel and carton labels (HTML to print, ZPL for
Zebra printers) and the certificate of conformance.

The shipping pages, the customer portal and the API all answer with these, so a label or a
certificate reads the same wherever it is fetched. The caller has already found the shipment
through `services.get_shipment`, which applies the customer's scope.
"""

from __future__ import annotations

import calendar
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from flask import Response, current_app, render_template, request
from flask_babel import lazy_gettext as _l

from mes import db
from mes.catalog.models import Product
from mes.quality.moisture import FLOOR_LIFE
from mes.shipping import coc, cocpdf, iso15434, labels, packing, packlabels, services
from mes.shipping.models import PackUnit, Shipment
from mes.vocabulary import PackKind, PcnStatus

SBA_LABELS = {"ok": _l("within limits"), "level1": _l("level 1 breach (engineering review)"),
              "level2": _l("level 2 breach (MRB)"),
              "insufficient_history": _l("not judged (too little history)")}
PAT_LABELS = {"both": _l("dynamic and static"), "dynamic": _l("dynamic"),
              "static": _l("static"), "none": _l("not applied")}


def render_labels(shipment: Shipment, *, back_url: str, zpl_url: str) -> str:
    """The print-ready reel and carton labels of a shipment, each with its QR code."""
    items = services.shipment_labels(db.session(), shipment)
    # segno writes the QR codes as SVG paths from the label fields; the template marks
    # only this markup safe.
    cards = [{"label": label, "qr": labels.qr_svg(label.qr_data(),
                                                  f"{label.kind} {label.lot_text}")}
             for label in items]
    return render_template("shipping/labels.html", shipment=shipment, cards=cards,
                           back_url=back_url, zpl_url=zpl_url, human=iso15434.human)


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
                           sba_labels=SBA_LABELS, pat_labels=PAT_LABELS,
                           pcn_labels=PcnStatus.labels(), inline_css=css,
                           pack_kinds=PackKind.labels())


def coc_download(shipment: Shipment) -> Response:
    """The certificate as a file to keep: coc-<shipment>.html, style included."""
    return Response(render_coc(shipment, standalone=True), mimetype="text/html", headers={
        "Content-Disposition": f'attachment; filename="coc-{shipment.id}.html"'})


def coc_pdf(shipment: Shipment) -> Response:
    """The certificate as a PDF file, coc-<shipment>.pdf (the HTML one stays)."""
    body = cocpdf.coc_pdf(coc.certificate(db.session(), shipment),
                          plant=current_app.config["PLANT_NAME"],
                          zone=current_app.config["PLANT_TIMEZONE"])
    return Response(body, mimetype="application/pdf", headers={
        "Content-Disposition": f'inline; filename="coc-{shipment.id}.pdf"'})


def wants_pdf() -> bool:
    """Whether the request's Accept header prefers a PDF over HTML (a client asking for
    `application/pdf` only)."""
    best = request.accept_mimetypes.best_match(["text/html", "application/pdf"])
    return best == "application/pdf"


# --- pack unit labels ------------------------------------------------------------------

LABEL_TYPES = {"png": "image/png", "svg": "image/svg+xml", "pdf": "application/pdf",
               "zpl": "text/plain"}
SHELF_LIFE_MONTHS = 12


def peak_reflow_c(product: Product) -> int | None:
    """The product's peak package body temperature for the caution label (°C), when the
    product records one (moisture control's `peak_reflow_c`); None prints "see data
    sheet"."""
    value = getattr(product, "peak_reflow_c", None)
    return int(value) if value is not None else None


def floor_life_text(msl: str) -> str:
    """The floor life of `msl` as the caution label states it (J-STD-033)."""
    seconds = FLOOR_LIFE.get(msl)
    if msl == "6":
        return "TIME ON LABEL, BAKE BEFORE USE"
    if seconds is None:
        return "UNLIMITED AT <= 30 C / 85 % RH"
    hours = seconds // 3600
    if hours >= 24 * 365:
        return f"{hours // (24 * 365)} YEAR AT <= 30 C / 60 % RH"
    return f"{hours} HOURS AT <= 30 C / 60 % RH"


def add_months(day: date, months: int) -> date:
    """`day` plus whole months; a day the month lacks becomes its last (29 Feb + 12 months:
    28 Feb)."""
    total = day.month - 1 + months
    year, month = day.year + total // 12, total % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _shipment_of(unit: PackUnit) -> Shipment | None:
    """The shipment that carried the unit or the package it went out in."""
    node: PackUnit | None = unit
    while node is not None:
        if node.shipment is not None:
            return node.shipment
        node = node.parent
    return None


def pack_label(unit: PackUnit, *, country: str, zone: str) -> packlabels.PackLabel:
    """The label of `unit` (already scoped to the caller): its lots, quantities and every
    date code; the purchase order once it shipped (before, the label carries none); the
    caution block on a dry bag, with the seal date in plant time."""
    presented = packing.present_unit(db.session(), unit)
    product = unit.product
    shipment = _shipment_of(unit)
    caution = None
    if unit.kind == PackKind.BAG:
        sealed: datetime | None = unit.sealed_at
        sealed_day = sealed.astimezone(ZoneInfo(zone)).date() if sealed else None
        caution = packlabels.Caution(
            msl=product.msl, floor_life=floor_life_text(product.msl),
            peak_reflow_c=peak_reflow_c(product), sealed_at=sealed_day,
            shelf_life_until=add_months(sealed_day, SHELF_LIFE_MONTHS) if sealed_day
            else None)
    return packlabels.PackLabel(
        kind=unit.kind, unit_id=unit.code, part=product.code, part_name=product.name,
        quantity=unit.quantity, date_codes=tuple(presented.date_codes),
        lots=tuple(share.lot_no for share in presented.lots), country=country,
        msl=product.msl, customer=unit.customer.code,
        customer_part=product.customer_part_number,
        po=shipment.po if shipment is not None else None, caution=caution)


def label_response(unit: PackUnit, fmt: str, *, download: bool = False) -> Response:
    """The label of `unit` as `fmt` (png, svg, pdf, zpl)."""
    label = pack_label(unit, country=current_app.config["PLANT_COUNTRY"],
                       zone=current_app.config["PLANT_TIMEZONE"])
    body: bytes | str
    if fmt == "svg":
        body = packlabels.svg(label)
    elif fmt == "pdf":
        body = packlabels.pdf(label)
    elif fmt == "zpl":
        body = packlabels.zpl(label)
    else:
        body = packlabels.png(label)
    disposition = "attachment" if download or fmt == "zpl" else "inline"
    return Response(body, mimetype=LABEL_TYPES[fmt], headers={
        "Content-Disposition": f'{disposition}; filename="{unit.code}.{fmt}"'})
