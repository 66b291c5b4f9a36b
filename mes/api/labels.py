"""2D labels of pack units and scanning: a pack unit's label as PNG, SVG, PDF or ZPL, and
what a scanned code (lot, pack unit id, 15434 label, mark) means (API.md, "Packing, labels
and scanning")."""

from __future__ import annotations

from typing import Any

from flask import Response, url_for
from flask_login import current_user

from mes import db
from mes.api import bp
from mes.api.registry import api_route
from mes.auth.permissions import Permission
from mes.shipping import packing
from mes.shipping import schemas as ss
from mes.shipping.documents import LABEL_TYPES, label_response
from mes.trace import scan as scanning
from mes.trace import schemas as ts


@api_route(bp, "/pack-units/<code>/label", permission=Permission.LOT_READ,
           query=ss.LabelArgs, status=200, tag="packing", produces=tuple(LABEL_TYPES.values()))
def pack_unit_label(code: str, args: dict[str, Any]) -> Response:
    """The label of a reel, tray, tube, dry bag, box or carton: human-readable fields and a
    QR code holding the ISO/IEC 15434 format 06 message (K purchase order once shipped, P
    customer part number, 1P part number, Q quantity, 9D each date code, 1T each lot, 4L
    country of origin, 3S the pack unit's id); a dry bag's also carries the moisture
    caution. `format`: png (default), svg, pdf or zpl. Customers: their own only."""
    unit = packing.get_pack_unit(db.session(), code, current_user)
    return label_response(unit, args["format"])


@api_route(bp, "/scan", permission=Permission.TRACE_READ, query=ts.ScanQuery,
           response=ts.ScanOut, tag="trace")
def scan(args: dict[str, Any]) -> dict[str, Any]:
    """What a scanned code means: a lot number (`lot`), a pack unit id (`pack_unit`), a
    whole 2D label's ISO/IEC 15434 message (`label`: control characters as sent, or as ␞ ␝ ␄
    or <RS> <GS> <EOT>), or a package's mark, its date code and lot trace code (`mark`).
    Answers the lots and pack units it means, with the lots' traces; 404 naming what was
    tried when nothing matches. Customers resolve their own only."""
    found = scanning.scan(db.session(), args["code"], current_user)
    return {"code": found.code, "kind": found.kind, "lots": found.lots,
            "pack_units": found.pack_units,
            "traces": [{"lot_no": lot_no, "trace": url_for("api.lot_trace", lot_no=lot_no)}
                       for lot_no in found.lots]}
