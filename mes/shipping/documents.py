"""A shipment's printable documents: the reel and carton labels (HTML to print, ZPL for
Zebra printers) and the certificate of conformance.

The shipping pages, the customer portal and the API all answer with these, so a label or a
certificate reads the same wherever it is fetched. The caller has already found the shipment
through `services.get_shipment`, which applies the customer's scope.
"""

from __future__ import annotations

from pathlib import Path

from flask import Response, current_app, render_template, request
from flask_babel import lazy_gettext as _l

from mes import db
from mes.shipping import coc, cocpdf, labels, services
from mes.shipping.models import Shipment

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
