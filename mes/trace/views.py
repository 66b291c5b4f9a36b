"""Trace pages: one search box (lot, pack unit, 2D label, mark, shipment, fab lot, wafer,
material lot), a lot's trace
(genealogy picture, steps, equipment, operators, materials, wafers, test runs, holds,
shipments) and its CSV export, a shipment's backward trace, the forward trace of a
criterion, and containment with its per-customer notification list.

Customer users reach the lot and shipment traces of their own customer only (another's is
404, as on the API); the criterion traces and containment are the plant's.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from marshmallow import ValidationError
from sqlalchemy import select

from mes import db
from mes.auth.permissions import PLANT_TRACE_READ, Permission, require
from mes.auth.scope import scope_customer, scoped
from mes.catalog.models import MaterialLot
from mes.errors import InvalidInput, NotFound
from mes.floor import services as floor
from mes.floor.models import Lot, Wafer
from mes.quality import schemas as qs
from mes.quality.match_form import (
    MATCH_FIELDS,
    checked_match,
    hold_reasons,
    match_dump,
    match_options,
)
from mes.shipping import iso15434
from mes.shipping.models import Shipment
from mes.trace import scan as scanning
from mes.trace import services, svg
from mes.trace.services import Backward, Graph
from mes.vocabulary import LotState, ScanKind
from mes.web import forms

bp = Blueprint("trace", __name__, url_prefix="/trace")

MATCH_KEYS = ("fab_lot", "wafer", "material_lot", "equipment", "since", "until", "lots")


def _customer() -> bool:
    return scope_customer(current_user) is not None


# --- search ----------------------------------------------------------------------------

def _resolve(text: str) -> str | None:
    """Where the search box's text leads: a lot, a shipment (by id), or for plant users a
    material lot, a fab lot or a wafer (forward trace of the criterion)."""
    sess = db.session()
    stmt = select(Lot.lot_no).where(Lot.lot_no == text)
    if sess.scalar(scoped(stmt, Lot.customer_id, current_user)) is not None:
        return url_for("trace.lot", lot_no=text)
    number = text.lstrip("#")
    if number.isdigit() and len(number) < 18:
        ship = select(Shipment.id).where(Shipment.id == int(number))
        if sess.scalar(scoped(ship, Shipment.customer_id, current_user)) is not None:
            return url_for("trace.shipment", shipment_id=int(number))
    if _customer():
        return None
    if sess.scalar(select(MaterialLot.id).where(MaterialLot.code == text)) is not None:
        return url_for("trace.match", material_lot=text)
    if sess.scalar(select(Lot.id).where(Lot.fab_lot == text).limit(1)) is not None:
        return url_for("trace.match", fab_lot=text)
    if sess.scalar(select(Wafer.id).where(Wafer.wafer_id == text).limit(1)) is not None:
        return url_for("trace.match", wafer=text)
    return None


@bp.route("/")
@require(Permission.TRACE_READ)
def index() -> Any:
    """The search box; a hit goes straight to its trace."""
    text = (request.args.get("q") or "").strip(" \t\r\n")
    if text:
        try:
            found = scanning.scan(db.session(), text, current_user)
        except NotFound:
            found = None
        if found is not None and found.kind == ScanKind.LOT:
            return redirect(url_for("trace.lot", lot_no=found.lots[0]), code=303)
        if found is not None:
            # A label, a pack unit or a mark may mean several lots: list them.
            return render_template("trace/index.html", q=iso15434.human(text), missing=False,
                                   customer=_customer(), scan=found,
                                   scan_kinds=ScanKind.labels())
        target = _resolve(text)
        if target is not None:
            return redirect(target, code=303)
    return render_template("trace/index.html", q=iso15434.human(text), missing=bool(text),
                           customer=_customer(), scan=None), 404 if text else 200


# --- the picture -----------------------------------------------------------------------

def _picture(graph: Graph, title: str) -> str:
    start = set(graph.start)
    nodes = [svg.Node(key=n.lot_no, label=n.lot_no, state=n.state, on_hold=n.on_hold,
                      href=url_for("trace.lot", lot_no=n.lot_no), start=n.lot_no in start,
                      note=f"{_(n.state)} · {n.step}" + (f" · {_('on hold')}"
                                                          if n.on_hold else ""))
             for n in graph.lots.values()]
    links = [svg.Link(e.parent, e.child, e.kind, e.qty) for e in graph.edges]
    ships = [svg.Outbound(key=str(s["id"]), label=_("Shipment %(id)d", id=s["id"]),
                          customer=s["customer"], lots=tuple(s["lots"]),
                          quantities=tuple(s.get("quantities", {}).items()),
                          href=url_for("trace.shipment", shipment_id=s["id"]))
             for s in graph.shipments]
    return svg.genealogy(nodes, links, ships, title=title,
                         too_large=_("Too many lots to draw; the tables list them all."))


def _combined(back: Graph, fwd: Graph) -> Graph:
    """Ancestors and descendants of one lot in one graph."""
    lots = {**back.lots, **fwd.lots}
    seen = set()
    edges = []
    for edge in [*back.edges, *fwd.edges]:
        key = (edge.parent, edge.child, edge.kind, edge.at)
        if key not in seen:
            seen.add(key)
            edges.append(edge)
    ordered = dict(sorted(lots.items(), key=lambda item: (item[1].created_at, item[0])))
    return Graph(lots=ordered, edges=edges, start=fwd.start, shipments=fwd.shipments)


# --- a lot's trace ---------------------------------------------------------------------

def _lot_trace(lot_no: str) -> tuple[Lot, dict[str, Any], dict[str, Any], Graph]:
    sess = db.session()
    lot = floor.get_lot(sess, lot_no, current_user)
    back = services.backward(sess, lot, current_user)
    fwd = services.forward(sess, lot, current_user)
    return lot, back, fwd, _combined(back["data"].graph, fwd["graph"])


def _operators(steps: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for step in steps:
        for name in {step["operator"], step["finished_by"]} - {None}:
            entry = found.setdefault(name, {"name": name, "steps": 0, "lots": set()})
            entry["steps"] += 1
            entry["lots"].add(step["lot_no"])
    return sorted(({**e, "lots": sorted(e["lots"])} for e in found.values()),
                  key=lambda e: e["name"])


@bp.route("/lots/<lot_no>")
@require(Permission.TRACE_READ)
def lot(lot_no: str) -> Any:
    """A lot's trace: the picture, backward tables and forward lots and shipments."""
    lot_obj, back, fwd, graph = _lot_trace(lot_no)
    return render_template(
        "trace/lot.html", lot=lot_obj, back=back, fwd=fwd,
        picture=_picture(graph, _("Genealogy of lot %(lot)s", lot=lot_obj.lot_no)),
        operators=_operators(back["steps"]), customer=_customer())


CSV_COLUMNS = ("kind", "relation", "lot_no", "state", "step", "equipment", "operator",
               "material_lot", "started_at", "finished_at", "qty_in", "good_qty", "rejects",
               "reference")
# A customer's CSV names no one: the same columns without the operator.
CUSTOMER_CSV_COLUMNS = tuple(c for c in CSV_COLUMNS if c != "operator")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    text = str(value)
    # A spreadsheet would run a cell starting with these as a formula.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _csv(rows: Iterable[dict[str, Any]], columns: Iterable[str], filename: str) -> Response:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    columns = list(columns)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def trace_rows(lot_no: str, back: dict[str, Any], fwd: dict[str, Any],
               graph: Graph) -> list[dict[str, Any]]:
    """The trace as one table: a row per lot (ancestor, traced, descendant), step run,
    material consumed, wafer, test run, hold and shipment."""
    data: Backward = back["data"]
    ancestors = set(back["ancestors"])
    rows: list[dict[str, Any]] = []
    for node in graph.lots.values():
        relation = ("traced" if node.lot_no == lot_no else
                    "ancestor" if node.lot_no in ancestors else "descendant")
        rows.append({"kind": "lot", "relation": relation, "lot_no": node.lot_no,
                     "state": node.state, "step": node.step, "qty_in": node.quantity,
                     "reference": f"fab lot {node.fab_lot}"
                                  + ("; on hold" if node.on_hold else "")})
    for step in data.steps:
        rows.append({"kind": "step", "lot_no": step["lot_no"], "step": step["step"],
                     "equipment": step["equipment"], "operator": step["operator"],
                     "started_at": step["started_at"], "finished_at": step["finished_at"],
                     "qty_in": step["qty_in"], "good_qty": step["good_qty"],
                     "rejects": "; ".join(f"{r['reason']} {r['qty']}"
                                          for r in step["rejects"])})
    for use in data.materials:
        rows.append({"kind": "material", "lot_no": use["lot_no"], "step": use["step"],
                     "material_lot": use["material_lot"], "started_at": use["at"],
                     "reference": use["material"]})
    for wafer in data.wafers:
        rows.append({"kind": "wafer", "lot_no": " ".join(wafer["lots"]),
                     "reference": f"{wafer['fab_lot']}/{wafer['wafer_id']}",
                     "qty_in": wafer["die_qty"]})
    for run in data.test_runs:
        rows.append({"kind": "test_run", "lot_no": run.lot.lot_no, "step": run.step_code,
                     "started_at": run.created_at, "qty_in": run.units,
                     "good_qty": run.final_good,
                     "reference": f"test run {run.id}; final yield {run.final_yield} %"})
    for hold in data.holds:
        rows.append({"kind": "hold", "lot_no": hold.lot.lot_no, "state": hold.status,
                     "step": hold.step_code, "started_at": hold.placed_at,
                     "finished_at": hold.released_at,
                     "reference": f"hold {hold.id}; {hold.reason.code}; {hold.source}"})
    for ship in fwd["shipments"]:
        for shipped in ship["lots"]:
            rows.append({"kind": "shipment", "lot_no": shipped, "state": LotState.SHIPPED,
                         "started_at": ship["shipped_at"],
                         "qty_in": ship["quantities"].get(shipped),
                         "reference": f"shipment {ship['id']}; {ship['customer']}; "
                                      f"PO {ship['po']}"
                                      + (f"; {ship['vehicle_program']}"
                                         if ship["vehicle_program"] else "")})
    return rows


@bp.route("/lots/<lot_no>/trace.csv")
@require(Permission.TRACE_READ)
def lot_csv(lot_no: str) -> Response:
    """The lot's trace as CSV (the same lots and records as the page; a customer's
    without the operator column)."""
    lot_obj, back, fwd, graph = _lot_trace(lot_no)
    return _csv(trace_rows(lot_obj.lot_no, back, fwd, graph),
                CUSTOMER_CSV_COLUMNS if _customer() else CSV_COLUMNS,
                f"trace-{lot_obj.lot_no}.csv")


# --- a shipment's backward trace -------------------------------------------------------

@bp.route("/shipments/<int:shipment_id>")
@require(Permission.TRACE_READ)
def shipment(shipment_id: int) -> Any:
    """Backward trace of every lot a shipment carried (customers: their own)."""
    back = services.shipment_backward(db.session(), shipment_id, current_user)
    data: Backward = back["data"]
    return render_template(
        "trace/shipment.html", shipment=back["shipment"], back=back,
        picture=_picture(data.graph, _("Genealogy of shipment %(id)d", id=shipment_id)),
        operators=_operators(back["steps"]), customer=_customer())


# --- forward trace of a criterion ------------------------------------------------------

def _query_match() -> dict[str, Any]:
    given = {k: request.args[k] for k in MATCH_KEYS if request.args.get(k)}
    try:
        return qs.MatchQuery().load(given)
    except ValidationError as err:
        raise InvalidInput(_("Some query parameters are not valid."),
                           fields=err.normalized_messages()) from None


@bp.route("/match")
@require(*PLANT_TRACE_READ)
def match() -> Any:
    """Forward trace of every lot a fab lot, wafer, material lot or equipment window
    names (the query as the API's /trace)."""
    sess = db.session()
    found, refused = forms.attempt(lambda: services.forward_match(sess, _query_match()))
    picture = None
    if found is not None:
        graph: Graph = found["graph"]
        picture = _picture(graph, _("Forward genealogy"))
    return render_template("trace/match.html", found=found, refused=refused,
                           picture=picture, args=request.args), \
        refused.status if refused else 200


# --- containment -----------------------------------------------------------------------

def _containment_page(form: dict[str, str], refused: forms.Refused | None = None,
                      preview: dict[str, Any] | None = None, status: int = 200) -> Any:
    return render_template(
        "trace/containments.html", form=form, refused=refused, preview=preview,
        errors=refused.fields if refused else {}, kinds=match_options(),
        reasons=hold_reasons(), recent=services.recent_containments(db.session())), status


@bp.route("/containments")
@require(Permission.HOLD_PLACE)
def containments() -> Any:
    """The containment form and the latest containments."""
    return _containment_page({})


@bp.route("/containments", methods=["POST"])
@require(Permission.HOLD_PLACE)
def contain() -> Any:
    """Containment in two steps: the forward trace of the match, then the holds."""
    sess = db.session()
    form = {k: (request.form.get(k) or "").strip()
            for k in (*MATCH_FIELDS, "reason", "comment")}
    if request.form.get("confirm"):
        done, refused = forms.attempt(lambda: services.contain(
            sess, current_user, **forms.load(qs.MassHoldIn, {
                "reason": form["reason"], "comment": form["comment"],
                "match": match_dump(checked_match(form))})))
        if done is not None:
            return forms.done(_("Containment %(id)s: %(n)d lot(s) held; %(s)d shipment(s) to "
                                "%(c)d customer(s) to notify.", id=done.id, n=len(done.lots_held),
                                s=len(done.shipped), c=len(done.customers)),
                                   "trace.containment", containment_id=done.id)
        return _containment_page(form, refused, status=refused.status if refused else 200)
    preview, refused = forms.attempt(lambda: services.forward_match(sess, checked_match(form)))
    return _containment_page(form, refused, preview,
                             status=refused.status if refused else 200)


@bp.route("/containments/<containment_id>")
@require(Permission.HOLD_READ)
def containment(containment_id: str) -> Any:
    """A recorded containment: what was held, what had shipped, whom to notify."""
    recorded = services.get_containment(db.session(), containment_id)
    return render_template("trace/containment.html", c=recorded,
                           rows=services.notification_rows(recorded))


@bp.route("/containments/<containment_id>/notifications.csv")
@require(Permission.HOLD_READ)
def notifications_csv(containment_id: str) -> Response:
    """The per-customer notification list of a containment: one row per shipped lot."""
    recorded = services.get_containment(db.session(), containment_id)
    return _csv(services.notification_rows(recorded), services.NOTIFY_COLUMNS,
                f"containment-{containment_id}-notifications.csv")
