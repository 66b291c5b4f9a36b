"""Shop-floor pages: receive, the lot page (split, merge, the moisture clock actions) and its
traveler, the operator station, the WIP board.

Forms are converted to the API's shape, validated with the API's input schemas and handed
to the same services as the API, so a page accepts and refuses exactly what the API does.
A refused form is shown again with its values, the service's message and the API's status
(409 or 422); the request then rolls back.
"""

from __future__ import annotations

import re
from typing import Any

import segno
from flask import (
    Blueprint,
    get_flashed_messages,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from marshmallow import ValidationError
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from mes import db
from mes.auth.permissions import PLANT_LOT_READ, Permission, require
from mes.catalog import services as catalog
from mes.catalog.models import Customer, Equipment, Product
from mes.db import utcnow
from mes.errors import ErrorCode, InvalidInput, NotFound
from mes.floor import schemas as s
from mes.floor import services
from mes.floor import station as reads
from mes.floor.models import Lot
from mes.orders import services as orders
from mes.quality import schemas as qs
from mes.quality import services as quality
from mes.shipping import packing
from mes.spc import services as spc
from mes.vocabulary import (
    CARRIERS,
    AbortReason,
    EventKind,
    LotState,
    MoistureAction,
    MoistureState,
    PackKind,
    StepKind,
    StepStatus,
)
from mes.web import forms
from mes.web.pager import pager

bp = Blueprint("floor", __name__)

# The station offers at least this many empty reject rows; "add row" adds one more.
REJECT_ROWS = 3
MAX_REJECT_ROWS = 50
MOISTURE_DONE: dict[str, Any] = {
    MoistureAction.OPEN: _l("Lot %(lot)s opened: its floor-life clock runs."),
    MoistureAction.SEAL: _l("Lot %(lot)s sealed in a dry bag: its clock is paused."),
    MoistureAction.DRY_STORAGE: _l("Lot %(lot)s in dry storage: its clock is paused."),
    MoistureAction.BAKE: _l("Lot %(lot)s baked: its exposure is back to zero and runs again "
                            "from now.")}


def _words(text: str) -> list[str]:
    """Numbers or codes typed or scanned into one field, separated by commas or spaces."""
    return [w for w in re.split(r"[\s,;]+", text) if w]


# --- receive ---------------------------------------------------------------------------

RECEIVE_FIELDS = ("product", "customer", "fab_lot", "quantity", "priority", "due_date",
                  "lot_no", "wafers")


def _wafer_rows(text: str) -> tuple[list[dict[str, str]], list[int], list[str]]:
    """`WAFER_ID [die_qty]` per line: the rows, each row's line number, and messages for
    lines that do not read that way."""
    rows: list[dict[str, str]] = []
    numbers: list[int] = []
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        parts = _words(line)
        if not parts:
            continue
        if len(parts) > 2:
            problems.append(_("Line %(line)d: write a wafer ID and, optionally, its die "
                              "quantity.", line=number))
            continue
        rows.append(dict(zip(("wafer_id", "die_qty"), parts, strict=False)))
        numbers.append(number)
    return rows, numbers, problems


def _receive_data(form: MultiDict[str, str]) -> dict[str, Any]:
    """The receive form in the API's shape, validated by LotIn; wafer messages name their
    line."""
    data: dict[str, Any] = {name: forms.text(form, name) for name in
                            ("product", "customer", "fab_lot", "quantity", "priority")
                            if forms.text(form, name)}
    data["due_date"] = forms.text(form, "due_date") or None
    data["lot_no"] = forms.text(form, "lot_no") or None
    if form.get("bank"):
        data["bank"] = True
    rows, numbers, problems = _wafer_rows(form.get("wafers") or "")
    data["wafers"] = rows
    try:
        loaded = forms.load(s.LotIn, data)
    except ValidationError as err:
        messages = err.normalized_messages()
    else:
        if not problems:
            return loaded
        messages = {}
    assert isinstance(messages, dict)
    wafer_messages = messages.pop("wafers", None)
    lines = list(problems)
    if isinstance(wafer_messages, dict):
        for index, item in wafer_messages.items():
            if isinstance(index, int) and index < len(numbers):
                lines += [_("Line %(line)d: %(message)s", line=numbers[index], message=msg)
                          for msg in forms.flatten(item)]
            else:
                lines += forms.flatten(item)
    elif wafer_messages is not None:
        lines += forms.flatten(wafer_messages)
    if lines:
        messages["wafers"] = lines
    raise ValidationError(messages)


@bp.route("/lots/receive", methods=["GET", "POST"])
@require(Permission.LOT_RECEIVE)
def receive() -> Any:
    sess = db.session()
    form: dict[str, Any] = {"priority": "3"}
    refused: forms.Refused | None = None
    if request.method == "POST":
        form = request.form.to_dict()
        lot, refused = forms.attempt(lambda: services.receive_lot(
            sess, current_user, _receive_data(request.form)))
        if lot is not None and lot.state == LotState.BANKED:
            return forms.done(_("Lot %(lot)s received: %(qty)d units in the die bank.",
                                lot=lot.lot_no, qty=lot.quantity),
                              "floor.lot_detail", lot_no=lot.lot_no)
        if lot is not None:
            return forms.done(_("Lot %(lot)s received: %(qty)d units queued at %(step)s.",
                                lot=lot.lot_no, qty=lot.quantity, step=lot.step_code),
                              "floor.lot_detail", lot_no=lot.lot_no)
        if refused and refused.code == ErrorCode.DUPLICATE:
            refused.fields = {"lot_no": [refused.message]}
    products = [(p.code, f"{p.code} · {p.name}")
                for p in sess.scalars(select(Product).order_by(Product.code))]
    customers = [(c.code, f"{c.code} · {c.name}")
                 for c in sess.scalars(select(Customer).order_by(Customer.code))]
    return render_template("floor/receive.html", form=form, refused=refused,
                           errors=refused.fields if refused else {}, fields=RECEIVE_FIELDS,
                           products=products, customers=customers,
                           today=services.plant_date().isoformat(),
                           priorities=[str(p) for p in range(1, 6)]), \
        refused.status if refused else 200


# --- lot page, split, merge ------------------------------------------------------------

def _lot_page(lot_no: str, *, form: dict[str, str] | None = None,
              split_refused: forms.Refused | None = None,
              merge_refused: forms.Refused | None = None,
              moisture_refused: forms.Refused | None = None, status: int = 200) -> Any:
    sess = db.session()
    lot = services.get_lot(sess, lot_no, current_user)
    shown = services.present(sess, [lot])[0]
    return render_template(
        "floor/lot.html", lot=lot, shown=shown, page=reads.lot_page(sess, lot),
        moisture=quality.moisture_view(sess, lot) if lot.product.msl != "1" else None,
        moisture_refused=moisture_refused, moisture_labels=MoistureState.labels(),
        form=form or {},
        split_refused=split_refused, merge_refused=merge_refused,
        split_errors=_split_errors(split_refused),
        merge_errors=_renamed(merge_refused, "lots"),
        kind_labels=StepKind.labels(),
        pack_units=packing.lot_units(sess, lot) if lot.packed_qty else [],
        carriers=PackKind.choices(CARRIERS),
        progress_labels=StepStatus.labels(), event_labels=EventKind.labels(),
        reject_lines=reads.reject_lines, late=services.is_late(lot, services.plant_date()),
        order_line=orders.lot_allocation(sess, lot)), status


def _renamed(refused: forms.Refused | None, name: str) -> dict[str, list[str]]:
    """A refusal's messages, all shown beside the form's one field `name`."""
    if refused is None:
        return {}
    messages = [msg for msgs in refused.fields.values() for msg in msgs]
    return {name: messages or [refused.message]}


def _split_errors(refused: forms.Refused | None) -> dict[str, list[str]]:
    """A refused split's messages: those about the wafers beside the wafers field, every
    other one beside the quantities."""
    if refused is None:
        return {}
    wafers = forms.flatten(refused.fields.get("wafers", []))
    rest = [msg for name, msgs in refused.fields.items() if name != "wafers"
            for msg in forms.flatten(msgs)]
    errors: dict[str, list[str]] = {}
    if rest or not wafers:
        errors["quantities"] = rest or [refused.message]
    if wafers:
        errors["wafers"] = wafers
    return errors


@bp.route("/lots/<lot_no>")
@require(*PLANT_LOT_READ)
def lot_detail(lot_no: str) -> Any:
    return _lot_page(lot_no)


@bp.route("/lots/<lot_no>/split", methods=["POST"])
@require(Permission.LOT_SPLIT_MERGE)
def split(lot_no: str) -> Any:
    sess = db.session()
    lot = services.get_lot(sess, lot_no, current_user)
    text = forms.text(request.form, "quantities")
    wafer_text = request.form.get("wafers") or ""
    # One line per new lot, its wafer IDs; no line at all lets die quantities decide.
    lines = [_words(line) for line in wafer_text.splitlines() if line.strip()]

    def action() -> list[Lot]:
        data = forms.load(s.SplitIn, {"quantities": _words(text),
                                      **({"wafers": lines} if lines else {})})
        return services.split_lot(sess, current_user, lot, data["quantities"], data["wafers"])

    children, refused = forms.attempt(action)
    if children is not None:
        return forms.done(_("Lot %(lot)s split: it keeps %(qty)d; new lots %(children)s.",
                            lot=lot.lot_no, qty=lot.quantity,
                            children=", ".join(f"{c.lot_no} ({c.quantity})" for c in children))
                          + " " + _("Wafers kept: %(wafers)s.", wafers=", ".join(
                              w.wafer_id for w in reads.lot_wafers(sess, lot)) or "—"),
                          "floor.lot_detail", lot_no=lot.lot_no)
    assert refused is not None
    return _lot_page(lot_no, form={"quantities": text, "wafers": wafer_text},
                     split_refused=refused, status=refused.status)


@bp.route("/lots/<lot_no>/merge", methods=["POST"])
@require(Permission.LOT_SPLIT_MERGE)
def merge(lot_no: str) -> Any:
    sess = db.session()
    lot = services.get_lot(sess, lot_no, current_user)
    text = forms.text(request.form, "lots")

    def action() -> Lot:
        data = forms.load(s.MergeIn, {"lots": [lot.lot_no, *_words(text)]})
        return services.merge_lots(sess, current_user,
                                   services.lots_by_number(sess, data["lots"]))

    survivor, refused = forms.attempt(action)
    if survivor is not None:
        return forms.done(_("Lots %(others)s merged into %(lot)s; it now holds %(qty)d.",
                            others=", ".join(_words(text)), lot=survivor.lot_no,
                            qty=survivor.quantity), "floor.lot_detail", lot_no=survivor.lot_no)
    assert refused is not None
    return _lot_page(lot_no, form={"lots": text}, merge_refused=refused,
                     status=refused.status)


@bp.route("/lots/<lot_no>/moisture", methods=["POST"])
@require(Permission.LOT_TRACK)
def moisture_action(lot_no: str) -> Any:
    """Open, seal, store dry or bake a lot from its page."""
    sess = db.session()
    lot = services.get_lot(sess, lot_no, current_user)
    action = forms.text(request.form, "action")
    data = {"action": action}
    names = ["label_hours"] if action != MoistureAction.BAKE else ["temperature_c", "hours",
                                                                   "rh_pct"]
    data.update({name: value for name in names if (value := forms.text(request.form, name))})

    def act() -> Any:
        loaded = forms.load(qs.MoistureIn, data)
        bake: dict[str, Any] = {k: loaded.pop(k) for k in ("temperature_c", "hours", "rh_pct")
                                if k in loaded}
        return quality.moisture_action(sess, current_user, lot, **loaded, bake=bake or None)

    done, refused = forms.attempt(act)
    if done is not None:
        return forms.done(str(MOISTURE_DONE[action]) % {"lot": lot.lot_no}, "floor.lot_detail",
                          lot_no=lot.lot_no)
    assert refused is not None
    return _lot_page(lot_no, moisture_refused=refused, status=refused.status)


# --- traveler --------------------------------------------------------------------------

@bp.route("/lots/<lot_no>/traveler")
@require(*PLANT_LOT_READ)
def traveler(lot_no: str) -> Any:
    sess = db.session()
    lot = services.get_lot(sess, lot_no, current_user)
    shown = services.present(sess, [lot])[0]
    # segno writes the QR code as SVG paths from the lot number alone; nothing else of the
    # request reaches this markup, and the template marks only it safe.
    qr_svg = segno.make(lot.lot_no, error="m").svg_inline(
        scale=4, svgclass="qr", title=lot.lot_no)
    return render_template("floor/traveler.html", lot=lot, shown=shown, qr_svg=qr_svg,
                           now=utcnow(),
                           steps=services.route_steps(lot),
                           wafers=reads.lot_wafers(sess, lot),
                           kind_labels=StepKind.labels())


# --- operator station ------------------------------------------------------------------

def _typed_rejects(form: MultiDict[str, str]) -> list[dict[str, str]]:
    return [{"reason": (reason or "").strip(), "qty": (qty or "").strip()} for reason, qty
            in zip(form.getlist("reject_reason"), form.getlist("reject_qty"), strict=False)]


def _reject_rows(form: MultiDict[str, str], extra: int = 0) -> list[dict[str, str]]:
    """The reject rows to show: as typed, padded with empty rows (at least REJECT_ROWS)."""
    rows = _typed_rejects(form)
    count = min(max(len(rows), REJECT_ROWS) + extra, MAX_REJECT_ROWS)
    return (rows + [{"reason": "", "qty": ""}] * count)[:max(count, len(rows))]


def _track_in_data(form: MultiDict[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = {"step": forms.text(form, "step"), "materials": [
        m.strip() for m in form.getlist("material") if m.strip()]}
    if forms.text(form, "equipment"):
        data["equipment"] = forms.text(form, "equipment")
    return forms.load(s.TrackInIn, data)


def _track_out_data(form: MultiDict[str, str]) -> dict[str, Any]:
    """The track-out form in the API's shape; empty reject rows are skipped and messages
    about a reject name the row it was typed in."""
    filled = [(number, row) for number, row in enumerate(_typed_rejects(form), start=1)
              if row["reason"] or row["qty"]]
    data: dict[str, Any] = {"step": forms.text(form, "step"), "rejects": [
        {key: value for key, value in row.items() if value} for _number, row in filled]}
    if forms.text(form, "good_qty"):
        data["good_qty"] = forms.text(form, "good_qty")
    try:
        return forms.load(s.TrackOutIn, data)
    except ValidationError as err:
        messages = err.normalized_messages()
        rejects = messages.get("rejects") if isinstance(messages, dict) else None
        if isinstance(rejects, dict):
            assert isinstance(messages, dict)
            messages["rejects"] = [
                _("Row %(row)d: %(message)s", row=filled[index][0], message=msg)
                if isinstance(index, int) and index < len(filled) else msg
                for index, item in rejects.items() for msg in forms.flatten(item)]
        raise ValidationError(messages) from None


def _tracked_out_message(lot: Lot, step: str, good: int, rejected: int) -> str:
    done = _("%(lot)s tracked out of %(step)s: %(good)d good, %(rejected)d rejected.",
             lot=lot.lot_no, step=step, good=good, rejected=rejected)
    if lot.state == LotState.COMPLETED:
        moved = _("Completed.")
    elif lot.state == LotState.SCRAPPED:
        moved = _("Nothing good is left: the lot is scrapped.")
    else:
        moved = _("Moved to %(step)s.", step=lot.step_code)
    if lot.on_hold:
        moved += " " + _("It is now on hold.")
    return f"{done} {moved}"


def _focus(view: reads.StationLot | None, refused: forms.Refused | None, rows: int,
           added_row: bool) -> str:
    """The one field the station focuses: after a success the next lot's scan, else the
    field the operator (or the scanner) fills next."""
    if view is None or get_flashed_messages(category_filter=["success"]):
        return "lot"
    if view.running:
        return f"reject-{rows}" if added_row else "good_qty"
    if view.can_track_in:
        fields = refused.fields if refused else {}
        if "materials" in fields and "equipment" not in fields and view.step.materials:
            return "material-1"
        return "equipment"
    return "lot"


def _station_page(lot: Lot | None, *, scan: str = "", scan_error: str | None = None,
                  form: dict[str, Any] | None = None, refused: forms.Refused | None = None,
                  added_row: bool = False, status: int = 200) -> Any:
    sess = db.session()
    form = form or {}
    all_reasons = (request.values.get("all_reasons") == "1"
                   or request.form.get("action") == "all_reasons")
    view = reads.station_lot(sess, lot, all_reasons=all_reasons) if lot is not None else None
    proposal = view.insertion.proposal if view is not None and view.insertion is not None \
        and view.running else None
    if proposal and "good_qty" not in form:
        # A closed test insertion: its proposal pre-filled, a row for the unaccounted units.
        form["good_qty"] = str(proposal["good_qty"])
        form["rejects"] = [{"reason": r["reason"], "qty": str(r["qty"])}
                           for r in proposal["rejects"]]
        form["rejects"].append({"reason": "", "qty": str(proposal["unaccounted"])
                                if proposal["unaccounted"] else ""})
    form.setdefault("rejects", [{"reason": "", "qty": ""}] * REJECT_ROWS)
    if view is not None and view.other_reasons:
        # A reason typed (or kept from a refused form) that is not the step's own: show all.
        offered = {r.code for r in view.reject_reasons}
        if any(row["reason"] and row["reason"] not in offered for row in form["rejects"]):
            assert lot is not None
            view = reads.station_lot(sess, lot, all_reasons=True)
    # Process control: the subgroups the lot's plans ask for now (every lot: before
    # track-out).
    samples_due = spc.due_samples(sess, view.lot) if view and view.running else []
    return render_template(
        "floor/station.html", view=view, scan=scan, scan_error=scan_error, form=form,
        refused=refused, errors=refused.fields if refused else {},
        focus=("reject-1" if request.form.get("action") == "all_reasons" and view is not None
               and view.running else _focus(view, refused, len(form["rejects"]), added_row)),
        queue=reads.station_queue(sess, current_user, request.values.get("queue")),
        kind_labels=StepKind.labels(), max_rejects=MAX_REJECT_ROWS,
        samples_due=samples_due, abort_reasons=AbortReason.choices()), status


def _queue_arg() -> dict[str, str]:
    """The station's chosen queue, kept across its forms and redirects."""
    chosen = forms.text(request.values, "queue")
    return {"queue": chosen} if chosen and chosen != "mine" else {}


@bp.route("/station", methods=["GET", "POST"])
@require(Permission.LOT_TRACK)
def station() -> Any:
    sess = db.session()
    lot_no = forms.text(request.values, "lot")
    if not lot_no:
        if request.method == "POST":
            return _station_page(None, scan_error=_("Scan a lot first."), status=422)
        return _station_page(None)
    try:
        lot = services.get_lot(sess, lot_no, current_user)
    except NotFound:
        return _station_page(None, scan=lot_no, scan_error=_(
            "No lot %(lot)s. Check the traveler and scan again.", lot=lot_no), status=404)
    if request.method == "GET":
        return _station_page(lot, scan=lot.lot_no)

    action = request.form.get("action")
    form: dict[str, Any] = {
        "equipment": forms.text(request.form, "equipment"),
        "materials": [m.strip() for m in request.form.getlist("material")],
        "good_qty": forms.text(request.form, "good_qty"),
        "rejects": _reject_rows(request.form, 1 if action == "add_row" else 0)}
    if action == "track_in":
        step = lot.step_code
        done, refused = forms.attempt(lambda: services.track_in(
            sess, current_user, lot, **_track_in_data(request.form)))
        if done is not None:
            assert lot.equipment is not None
            return forms.done(_("%(lot)s tracked in on %(equipment)s at %(step)s.", lot=lot.lot_no,
                                equipment=lot.equipment.code, step=step),
                              "floor.station", lot=lot.lot_no, **_queue_arg())
    elif action == "batch_track_in":
        step = lot.step_code
        form.update(batch_equipment=forms.text(request.form, "batch_equipment"),
                    batch_lots=[n.strip() for n in request.form.getlist("batch_lot")
                                if n.strip()])

        def load_batch() -> tuple[Equipment, list[Lot]]:
            data = forms.load(s.BatchIn, {"step": forms.text(request.form, "step"),
                                          "lots": form["batch_lots"]})
            tool = form["batch_equipment"]
            if not tool or services.equipment_by_code(sess, tool) is None:
                message = _("Choose a batch tool.") if not tool else \
                    _("Unknown equipment %(code)s.", code=tool)
                raise InvalidInput(message, fields={"batch_equipment": [message]})
            return services.batch_track_in(sess, current_user, tool, **data)

        loaded, refused = forms.attempt(load_batch)
        if loaded is not None:
            batch_tool, batch_lots = loaded
            return forms.done(_("%(n)d lots tracked in together on %(equipment)s at %(step)s: "
                                "%(lots)s.", n=len(batch_lots), equipment=batch_tool.code,
                                step=step, lots=", ".join(b.lot_no for b in batch_lots)),
                              "floor.station", lot=lot.lot_no, **_queue_arg())
        if refused is not None:
            refused.fields = {{"lots": "batch_lots", "equipment": "batch_equipment"}.get(k, k): v
                              for k, v in refused.fields.items()}
    elif action == "track_out":
        step = lot.step_code
        data: dict[str, Any] = {}

        def out() -> Lot:
            data.update(_track_out_data(request.form))
            return services.track_out(sess, current_user, lot, **data)

        done, refused = forms.attempt(out)
        if done is not None:
            rejected = sum(r["qty"] for r in data["rejects"])
            return forms.done(_tracked_out_message(lot, step, data["good_qty"], rejected),
                              "floor.station", lot=lot.lot_no, **_queue_arg())
    elif action in ("material_thaw", "material_open"):
        code = forms.text(request.form, "material_lot")

        def record() -> Any:
            try:
                material = catalog.get_material_lot(sess, code)
            except NotFound as exc:
                raise InvalidInput(exc.message) from None
            if action == "material_thaw":
                return catalog.thaw_material_lot(sess, current_user, material)
            return catalog.open_material_lot(sess, current_user, material)

        done, refused = forms.attempt(record)
        if done is not None:
            return forms.done(_("Removal of %(code)s from the freezer recorded.", code=code)
                              if action == "material_thaw" else
                              _("Opening of %(code)s recorded.", code=code),
                              "floor.station", lot=lot.lot_no, **_queue_arg())
    elif action == "abort_track_in":
        form.update(abort_reason=forms.text(request.form, "abort_reason"),
                    abort_comment=forms.text(request.form, "abort_comment"))
        done, refused = forms.attempt(lambda: services.abort_track_in(
            sess, current_user, lot, **forms.load(s.TrackInAbortIn, {
                "reason": form["abort_reason"] or "", "comment": form["abort_comment"] or "",
                "step": forms.text(request.form, "step") or None})))
        if done is not None:
            return forms.done(_("Track-in of %(lot)s undone; it is queued at %(step)s.",
                                lot=lot.lot_no, step=lot.step_code),
                              "floor.station", lot=lot.lot_no, **_queue_arg())
        if refused is not None:
            refused.fields = {{"reason": "abort_reason", "comment": "abort_comment"}.get(k, k): v
                              for k, v in refused.fields.items()}
    elif action in ("add_row", "all_reasons"):
        refused = None
    else:
        refused = forms.Refused(_("Choose track-in or track-out."), {}, 400,
                                ErrorCode.BAD_REQUEST)
    return _station_page(lot, scan=lot.lot_no, form=form, refused=refused,
                         added_row=action == "add_row",
                         status=refused.status if refused else 200)


# --- WIP board -------------------------------------------------------------------------

WIP_FILTERS = ("product", "customer", "state", "on_hold", "step")


def _wip_options() -> dict[str, list[tuple[str, str]]]:
    sess = db.session()
    products = select(Product).order_by(Product.code)
    customers = select(Customer).order_by(Customer.code)
    return {
        "products": [(p.code, f"{p.code} · {p.name}") for p in sess.scalars(products)],
        "customers": [(c.code, f"{c.code} · {c.name}") for c in sess.scalars(customers)],
        "states": LotState.choices(),
        "on_hold": [("true", _("On hold")), ("false", _("Not on hold"))],
    }


@bp.route("/wip")
@require(*PLANT_LOT_READ)
def wip() -> Any:
    sess = db.session()
    raw = {key: value.strip() for key, value in request.args.items() if value.strip()}
    filters = {key: raw[key] for key in WIP_FILTERS if key in raw}
    options = _wip_options()
    try:
        args = forms.load(s.LotQuery, raw)
    except ValidationError as err:
        return render_template("floor/wip.html", filters=filters, options=options,
                               errors=forms.field_errors(err.normalized_messages()), lots=[],
                               summary=None, next_url=None, first_url=None,
                               late=set()), 422
    stmt = services.lot_query(args, current_user)
    page = pager(stmt, args, keep=raw)
    today = services.plant_date()
    all_steps: dict[str, Any] = {k: v for k, v in raw.items() if k not in ("step", "cursor")}
    return render_template(
        "floor/wip.html", filters=filters, options=options, errors={}, lots=page.items,
        all_steps_url=url_for("floor.wip", **all_steps),
        summary=reads.wip_summary(sess, stmt, args, current_user), next_url=page.next_url,
        first_url=page.first_url,
        late={lot.lot_no for lot in page.items if services.is_late(lot, today)})
