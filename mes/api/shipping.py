"""Shipment endpoints: planners ship completed lots; plant roles and the customer (their own
shipments only) read them."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask_login import current_user

from mes import db
from mes.api import bp
from mes.api.registry import Page, api_route, paginate
from mes.auth.permissions import Permission
from mes.shipping import schemas as s
from mes.shipping import services
from mes.shipping.documents import coc_pdf, render_coc, wants_pdf
from mes.shipping.models import Shipment


@api_route(bp, "/shipments", method="POST", permission=Permission.SHIP, body=s.ShipmentIn,
           response=s.ShipmentOut, tag="shipping")
def create_shipment(data: dict[str, Any]) -> Shipment:
    """Ship completed lots to their customer under a purchase order.

    Every lot must be of that customer, completed (not shipped before), free of holds,
    within its moisture floor life, and of a qualified product when the customer is
    automotive. All lots are checked first; the first refusal wins and nothing ships.
    """
    return services.create_shipment(db.session(), current_user, data)


@api_route(bp, "/shipments", permission=Permission.SHIPMENT_READ, query=s.ShipmentQuery,
           response=s.ShipmentOut, many=True, tag="shipping")
def list_shipments(args: dict[str, Any]) -> Page:
    """List shipments, newest first (customers: their own). Filters: customer, po,
    vehicle_program, lot (a lot number carried), since / until (shipping dates, UTC)."""
    return paginate(db.session(), services.filter_shipments(
        services.shipment_query(current_user), args), args)


@api_route(bp, "/shipments/<int:shipment_id>", permission=Permission.SHIPMENT_READ,
           response=s.ShipmentOut, tag="shipping")
def get_shipment(shipment_id: int) -> Shipment:
    """One shipment (customers: another customer's is 404)."""
    return services.get_shipment(db.session(), shipment_id, current_user)


@api_route(bp, "/shipments/<int:shipment_id>/coc", permission=Permission.SHIPMENT_READ,
           query=s.CocArgs, status=200, tag="shipping",
           produces=("text/html", "application/pdf"))
def get_coc(shipment_id: int, args: dict[str, Any]) -> Response:
    """The shipment's certificate of conformance, a print-ready HTML document (lots,
    quantities, date codes, routes, pack units, test summary per test step with PAT and
    SBA, the products' qualification, a signature block); `format=pdf` (or asking for
    `application/pdf` only in Accept) answers the same certificate as a PDF. Customers:
    another customer's is 404."""
    shipment = services.get_shipment(db.session(), shipment_id, current_user)
    if args["format"] == "pdf" or wants_pdf():
        return coc_pdf(shipment)
    return Response(render_coc(shipment), mimetype="text/html")
