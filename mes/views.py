"""Home page, health check and the navigation shown to each role."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import text

from mes import db
from mes.auth.permissions import PLANT_LOT_READ, Permission, has_permission, public, require

bp = Blueprint("main", __name__)

# (label, endpoint, permissions needed, card text). The first entries are what a role sees
# first.
NAV: list[tuple[Any, str, tuple[Permission, ...], Any]] = [
    (_l("My lots"), "portal.index", (Permission.PORTAL,),
     _l("Your WIP and expected completion, holds, shipments, yields and traces.")),
    (_l("Operator station"), "floor.station", (Permission.LOT_TRACK,),
     _l("Scan a lot: see what blocks it, track it in and out.")),
    (_l("WIP"), "floor.wip", PLANT_LOT_READ,
     _l("Lots per step, priorities and due dates.")),
    (_l("Receive"), "floor.receive", (Permission.LOT_RECEIVE,),
     _l("Receive a wafer lot from the fab.")),
    (_l("Holds"), "quality.holds", (Permission.HOLD_READ,),
     _l("Open holds by age, release, mass holds and future holds.")),
    (_l("Trace"), "trace.index", (Permission.TRACE_READ,),
     _l("Backward and forward traces of lots, shipments and fab lots; containment.")),
    (_l("Test floor"), "testfloor.index", (Permission.TEST_READ,),
     _l("Test runs, PAT limits and SBA yield trends per product.")),
    (_l("SPC"), "spc.plans", (Permission.SPC_READ,),
     _l("Process control: data collection plans, control charts, out-of-control events.")),
    (_l("Reports"), "reports.index", (Permission.REPORT_READ,),
     _l("WIP, yield, rejects, cycle time, holds, equipment states and delivery.")),
    (_l("Packing"), "shipping.packing_page", (Permission.PACK, Permission.MASTER_READ),
     _l("Reels into dry bags, boxes and cartons; what a pack unit holds.")),
    (_l("Shipments"), "shipping.shipments", (Permission.SHIP,),
     _l("Ship completed lots; labels and certificates of conformance.")),
    (_l("Changes"), "changes.index", (Permission.MASTER_READ, Permission.PCN_READ),
     _l("Product changes, their requalification and the PCNs to automotive customers.")),
    (_l("Master data"), "catalog.index", (Permission.MASTER_WRITE,),
     _l("Customers, routes, products, equipment, reason codes, material lots.")),
    (_l("Equipment"), "catalog.equipment_list", (Permission.MASTER_READ,),
     _l("Tools and their E10 states.")),
    (_l("Users"), "auth.users", (Permission.USER_ADMIN,),
     _l("Accounts, roles and API tokens.")),
    (_l("Complaints"), "complaints.index", (Permission.COMPLAINT_READ, Permission.MASTER_READ),
     _l("Customer complaints: failing units to lots, containment and the 8D.")),
    (_l("Webhooks"), "webhooks.index", (Permission.WEBHOOK, Permission.MASTER_READ),
     _l("Customers' webhook subscriptions and their deliveries.")),
    (_l("Orders"), "orders.index", (Permission.ORDER_READ, Permission.MASTER_READ),
     _l("Customers' purchase orders: commit dates, lots allocated to lines, the die bank.")),
    (_l("Shared lots"), "partners.index", (Permission.PARTNER_READ,),
     _l("The lots your suppliers share with you: stage, expected completion, holds, "
        "shipments.")),
    (_l("Partner grants"), "partners.grants", (Permission.GRANT_WRITE, Permission.USER_ADMIN),
     _l("Which partner organisations see which customers' PO lines and vehicle programs.")),
]


# Entries the header leaves out when the page they are reached from is in it too (the
# master data pages list equipment and changes), so that it stays on one line; the home
# page's cards show them all. An administrator (the only one with Users) reaches orders,
# webhooks and partner grants from the home page's cards; planners, customers and QA keep
# theirs in the header.
FOLDED_INTO = {"catalog.equipment_list": "catalog.index", "changes.index": "catalog.index",
               "complaints.index": "quality.holds", "orders.index": "auth.users",
               "webhooks.index": "auth.users", "partners.grants": "auth.users"}


def nav_items(folded: bool = True) -> list[dict[str, Any]]:
    if not current_user.is_authenticated:
        return []
    allowed = [entry for entry in NAV
               if all(has_permission(current_user, p) for p in entry[2])]
    shown = {endpoint for _label, endpoint, _needs, _text in allowed}
    items = []
    for label, endpoint, _needs, text_ in allowed:
        if not (folded and FOLDED_INTO.get(endpoint) in shown):
            url = url_for(endpoint)
            items.append({"label": str(label), "url": url, "text": str(text_),
                          "active": request.path.startswith(url)})
    return items


@bp.app_context_processor
def _inject_nav() -> dict[str, Any]:
    return {"nav_items": nav_items()}


@bp.route("/")
@require()
def index() -> str:
    cards = [{"title": i["label"], "url": i["url"], "text": i["text"]}
             for i in nav_items(folded=False)]
    return render_template("main/index.html", cards=cards)


@bp.route("/healthz")
@public
def healthz() -> Any:
    try:
        db.session().execute(text("SELECT 1"))
    except Exception:
        return jsonify({"status": "degraded", "database": "unreachable"}), 503
    return jsonify({"status": "ok", "database": "ok"})
