"""Traceability endpoints: backward and forward traces of a lot, backward trace of a
shipment, forward trace of a criterion, containment (API.md, "Traceability")."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify
from flask_login import current_user

from mes import db
from mes.api import bp
from mes.api.registry import api_route, schema_instance
from mes.auth.permissions import PLANT_TRACE_READ, Permission
from mes.auth.scope import scope_customer
from mes.floor import services as floor
from mes.trace import schemas as s
from mes.trace import services
from mes.trace.services import Containment


def _customer() -> bool:
    return scope_customer(current_user) is not None


@api_route(bp, "/lots/<lot_no>/trace", permission=Permission.TRACE_READ, query=s.TraceQuery,
           response=s.BackwardOut, tag="trace")
def lot_trace(lot_no: str, args: dict[str, Any]) -> Response:
    """Trace a lot backward (default: what it came from) or forward (where it went).

    `direction=backward`: the lot, its ancestors at any depth through splits and merges,
    their fab lots, wafers, material lots, equipment, steps, test runs, holds and product
    qualifications. `direction=forward`: the lot, its descendants (lot_no, state, step,
    on_hold), the shipments that carried them and their customers (answered as
    `ForwardOut`). Customers: their own lots only (another's is 404), and no names: steps
    without `operator`, qualifications without `created_by`, holds without comments or who
    placed and released them (`CustomerBackwardOut`).
    """
    session = db.session()
    lot = floor.get_lot(session, lot_no, current_user)
    if args["direction"] == "forward":
        return jsonify(schema_instance(s.ForwardOut).dump(
            services.forward(session, lot, current_user)))
    schema = s.CustomerBackwardOut if _customer() else s.BackwardOut
    return jsonify(schema_instance(schema).dump(services.backward(session, lot, current_user)))


@api_route(bp, "/shipments/<int:shipment_id>/trace", permission=PLANT_TRACE_READ,
           response=s.ShipmentBackwardOut, tag="trace")
def shipment_trace(shipment_id: int) -> Response:
    """Backward trace of every lot a shipment carried (plant roles; customers trace their
    lots one by one)."""
    return jsonify(schema_instance(s.ShipmentBackwardOut).dump(
        services.shipment_backward(db.session(), shipment_id, current_user)))


@api_route(bp, "/trace", permission=PLANT_TRACE_READ, query=s.TraceMatchQuery,
           response=s.MatchForwardOut, tag="trace")
def match_trace(args: dict[str, Any]) -> dict[str, Any]:
    """Forward trace of every lot a criterion names: `fab_lot`, `wafer` (and `fab_lot`),
    `material_lot`, `equipment` with `since` and `until`, or `lots` (comma-separated).

    Answers the lots named directly (`lots`), every lot they went into (`descendants`),
    the shipments that carried any of them and their customers. Plant roles only.
    """
    return services.forward_match(db.session(), args)


@api_route(bp, "/containments", method="POST", permission=Permission.HOLD_PLACE,
           body=s.ContainmentIn, response=s.ContainmentOut, tag="trace")
def contain(data: dict[str, Any]) -> Containment:
    """Containment: hold every lot the match reaches that is still in the plant.

    In one transaction, every lot the match selects and every descendant through splits
    and merges that is queued, running or completed gets a hold of source `containment`
    (also when it is on hold already). The answer lists the shipments that carried
    matching lots (`shipped`, by shipment and customer) and the `customers` to notify;
    when every matching lot has shipped, nothing is held and the lists still come. The
    containment is recorded under its `id`. A match selecting no lot is 422 `no_match`.
    """
    return services.contain(db.session(), current_user, **data)


@api_route(bp, "/containments/<containment_id>", permission=Permission.HOLD_READ,
           response=s.RecordedContainmentOut, tag="trace")
def get_containment(containment_id: str) -> dict[str, Any]:
    """A recorded containment: who ran it, when, and its answer."""
    return services.get_containment(db.session(), containment_id)
