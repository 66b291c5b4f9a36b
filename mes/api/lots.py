"""Lot endpoints: receive, list, history, track-in/out (one lot, or a batch on one tool),
split, merge."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify
from flask_login import current_user

from mes import db
from mes.api import bp
from mes.api.registry import (
    ListArgs,
    Page,
    api_route,
    paginate,
    paginate_list,
    schema_instance,
)
from mes.auth.permissions import Permission
from mes.auth.scope import scope_customer
from mes.floor import schemas as s
from mes.floor import services
from mes.floor.models import Lot, PresentedLot


def _one(lot: Lot) -> PresentedLot:
    return services.present(db.session(), [lot], current_user)[0]


@api_route(bp, "/lots", method="POST", permission=Permission.LOT_RECEIVE, body=s.LotIn,
           response=s.LotOut, tag="lots")
def receive_lot(data: dict[str, Any]) -> PresentedLot:
    """Receive a wafer lot; it starts queued at the first step of its route, or with
    `bank: true` waits in the die bank (state `banked`, not in WIP, `planned_start`
    optional) until released (`POST /lots/{lot_no}/release`)."""
    return _one(services.receive_lot(db.session(), current_user, data))


@api_route(bp, "/lots", permission=Permission.LOT_READ, query=s.LotQuery, response=s.LotOut,
           many=True, tag="lots")
def list_lots(args: dict[str, Any]) -> Page:
    """List lots, most urgent first; filters state, step, product, customer, on_hold."""
    session = db.session()
    page = paginate(session, services.lot_query(args, current_user), args)
    page.items = services.present(session, page.items, current_user)
    return page


@api_route(bp, "/lots/<lot_no>", permission=Permission.LOT_READ, response=s.LotOut,
           tag="lots")
def get_lot(lot_no: str) -> PresentedLot:
    """One lot."""
    return _one(services.get_lot(db.session(), lot_no, current_user))


@api_route(bp, "/lots/<lot_no>/history", permission=Permission.LOT_READ, query=ListArgs,
           response=s.EventOut, many=True, tag="lots")
def lot_history(lot_no: str, args: dict[str, Any]) -> Page | Response:
    """The lot's events, oldest first.

    Customer users get each event as `{kind, at, step, qty_in, qty_out, reason,
    reason_description, disposition}` (`CustomerEventOut`): a hold's reason code and its
    description, a release's disposition; no names, comments or `data`.
    """
    session = db.session()
    lot = services.get_lot(session, lot_no, current_user)
    if scope_customer(current_user) is not None:
        page = paginate_list(services.customer_history(session, lot), args)
        return jsonify({"items": schema_instance(s.CustomerEventOut, True).dump(page.items),
                        "next": page.next})
    return paginate_list(services.history(session, lot), args)


@api_route(bp, "/lots/<lot_no>/track-in", method="POST", permission=Permission.LOT_TRACK,
           body=s.TrackInIn, response=s.LotOut, status=200, tag="lots")
def track_in(lot_no: str, data: dict[str, Any]) -> PresentedLot:
    """Start the lot at its current step on a piece of equipment."""
    session = db.session()
    lot = services.lot_to_move(session, lot_no, tool=data["equipment"])
    return _one(services.track_in(session, current_user, lot, **data))


@api_route(bp, "/equipment/<code>/batches", method="POST", permission=Permission.LOT_TRACK,
           body=s.BatchIn, response=s.BatchOut, status=200, tag="lots")
def batch_track_in(code: str, data: dict[str, Any]) -> dict[str, Any]:
    """Track several lots at the same step in together on a batch tool (an oven, a plating
    line), all or nothing; 409 capacity_exceeded above the tool's free places. Each lot
    tracks out on its own."""
    session = db.session()
    tool, lots = services.batch_track_in(session, current_user, code, **data)
    return {"equipment": tool, "lots": services.present(session, lots, current_user)}


@api_route(bp, "/lots/<lot_no>/track-in/abort", method="POST", permission=Permission.LOT_TRACK,
           body=s.TrackInAbortIn, response=s.LotOut, status=200, tag="lots")
def abort_track_in(lot_no: str, data: dict[str, Any]) -> PresentedLot:
    """Undo a track-in made by mistake: the lot is queued again at the same step and the
    tool freed; 409 run_has_data once data was recorded for the run."""
    session = db.session()
    lot = services.get_lot(session, lot_no)
    return _one(services.abort_track_in(session, current_user, lot, **data))


@api_route(bp, "/lots/<lot_no>/track-out", method="POST", permission=Permission.LOT_TRACK,
           body=s.TrackOutIn, response=s.LotOut, status=200, tag="lots")
def track_out(lot_no: str, data: dict[str, Any]) -> PresentedLot:
    """Finish the step with good and reject quantities; the lot moves on."""
    session = db.session()
    lot = services.lot_to_move(session, lot_no)
    return _one(services.track_out(session, current_user, lot, **data))


@api_route(bp, "/lots/<lot_no>/split", method="POST", permission=Permission.LOT_SPLIT_MERGE,
           body=s.SplitIn, response=s.SplitOut, tag="lots")
def split_lot(lot_no: str, data: dict[str, Any]) -> dict[str, Any]:
    """Split a queued lot: the parent keeps the first quantity, each other one is a child.
    `wafers` (optional) names each child's wafers, the parent keeping the others; without
    it the wafers' die quantities decide which part keeps which wafers."""
    session = db.session()
    lot = services.get_lot(session, lot_no)
    children = services.split_lot(session, current_user, lot, data["quantities"],
                                  data.get("wafers"))
    parent, *shown = services.present(session, [lot, *children])
    return {"parent": parent, "children": shown}


@api_route(bp, "/lots/merge", method="POST", permission=Permission.LOT_SPLIT_MERGE,
           body=s.MergeIn, response=s.LotOut, tag="lots")
def merge_lots(data: dict[str, Any]) -> PresentedLot:
    """Merge queued lots of one product, route version and step into the first named."""
    session = db.session()
    lots = services.lots_by_number(session, data["lots"])
    return _one(services.merge_lots(session, current_user, lots))
