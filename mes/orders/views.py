"""Purchase order pages for the plant (planners enter orders, commit dates and allocate lots;
the other plant roles read them) and the die bank (banked lots, their planned start and
their release to the floor). Customers read their orders through the API and the portal."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, render_template, request
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from mes import db
from mes.auth.permissions import PLANT_LOT_READ, Permission, has_permission, require
from mes.catalog.models import Customer
from mes.floor import services as floor
from mes.orders import schemas as s
from mes.orders import services
from mes.orders.models import OrderLine, PurchaseOrder
from mes.vocabulary import LotState
from mes.web import forms
from mes.web.pager import pager

bp = Blueprint("orders", __name__, url_prefix="/orders")

READ = (Permission.ORDER_READ, Permission.MASTER_READ)
ORDER_FIELDS = ("customer", "po", "lines")
LINE_FIELDS = ("commit_date", "quantity", "need_date")


def _when(text: str) -> str | None:
    """A datetime-local input's value (plant time, PLANT_TIMEZONE) as an aware ISO time;
    text that is not a time is left for the schema to refuse."""
    if not text:
        return None
    if re.search(r"(Z|[+-]\d\d:?\d\d)$", text):
        return text
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    zone = ZoneInfo(current_app.config["PLANT_TIMEZONE"])
    return moment.replace(tzinfo=zone).astimezone(UTC).isoformat()


def _errors(refused: forms.Refused) -> dict[str, Any]:
    return {**refused.fields, **({"_schema": [refused.message]} if not refused.fields else {})}


def _lines(text: str) -> list[dict[str, Any]]:
    """`line | product | quantity | need date | vehicle program | ship-to` per line (the
    last two optional); what cannot be read is left for the schema to refuse."""
    rows: list[dict[str, Any]] = []
    for raw in text.splitlines():
        if not raw.strip():
            continue
        cells = [c.strip() for c in raw.split("|")] + [""] * 6
        rows.append({"line": cells[0], "product": cells[1], "quantity": cells[2],
                     "need_date": cells[3], "vehicle_program": cells[4] or None,
                     "ship_to": cells[5] or None})
    return rows


@bp.route("/")
@require(*READ)
def index() -> Any:
    page = pager(services.order_query(current_user))
    return render_template("orders/index.html", rows=[services.present(o) for o in page.items],
                           page=page,
                           can_write=has_permission(current_user, Permission.ORDER_WRITE))


@bp.route("/new", methods=["GET", "POST"])
@require(Permission.ORDER_WRITE)
def new() -> Any:
    sess = db.session()
    form: dict[str, Any] = {}
    errors: dict[str, Any] = {}
    status = 200
    if request.method == "POST":
        form = request.form.to_dict()

        def action() -> PurchaseOrder:
            data = forms.load(s.OrderIn, {"customer": forms.text(request.form, "customer"),
                                          "po": forms.text(request.form, "po"),
                                          "lines": _lines(request.form.get("lines", ""))})
            return services.create_order(sess, current_user, data)

        order, refused = forms.attempt(action)
        if order is not None:
            return forms.done(_("Order %(po)s of %(customer)s entered with %(n)s line(s).",
                                po=order.po, customer=order.customer.code,
                                n=len(order.lines)), "orders.detail", order_id=order.id)
        assert refused is not None
        errors, status = _errors(refused), refused.status
    customers = [(c.code, f"{c.code} · {c.name}")
                 for c in sess.scalars(select(Customer).order_by(Customer.code))]
    return render_template("orders/form.html", form=form, errors=errors,
                           fields=ORDER_FIELDS, customers=customers), status


def _detail(order_id: int, *, errors: dict[str, Any] | None = None,
            line_no: int | None = None, form: dict[str, Any] | None = None,
            status: int = 200) -> Any:
    sess = db.session()
    order = services.get_order_by_id(sess, order_id, current_user)
    can_write = has_permission(current_user, Permission.ORDER_WRITE)
    shown = services.present(order)
    candidates = {line.line_no: services.allocatable_lots(sess, order, line, limit=20)
                  for line in order.lines} if can_write else {}
    return render_template("orders/detail.html", order=order, shown=shown,
                           candidates=candidates, can_write=can_write, errors=errors or {},
                           error_line=line_no, form=form or {},
                           state_labels=LotState.labels()), status


@bp.route("/<int:order_id>")
@require(*READ)
def detail(order_id: int) -> Any:
    return _detail(order_id)


def _line(order_id: int, line_no: int) -> tuple[PurchaseOrder, OrderLine]:
    order = services.get_order_by_id(db.session(), order_id, current_user)
    return order, services.get_line(order, line_no)


@bp.route("/<int:order_id>/lines/<int:line_no>/edit", methods=["POST"])
@require(Permission.ORDER_WRITE)
def edit_line(order_id: int, line_no: int) -> Any:
    order, line = _line(order_id, line_no)

    def action() -> OrderLine:
        raw = {name: forms.text(request.form, name) for name in LINE_FIELDS}
        data = forms.load(s.OrderLinePatch, {"commit_date": raw["commit_date"] or None,
                                        **{k: raw[k] for k in ("quantity", "need_date")
                                           if raw[k]}})
        return services.update_line(db.session(), current_user, order, line, data)

    done, refused = forms.attempt(action)
    if done is not None:
        return forms.done(_("Line %(line)s of %(po)s saved.", line=line_no, po=order.po),
                          "orders.detail", order_id=order_id)
    assert refused is not None
    return _detail(order_id, errors=_errors(refused), line_no=line_no,
                   form=request.form.to_dict(), status=refused.status)


@bp.route("/<int:order_id>/lines/<int:line_no>/allocate", methods=["POST"])
@require(Permission.ORDER_WRITE)
def allocate(order_id: int, line_no: int) -> Any:
    order, line = _line(order_id, line_no)
    numbers = [n for n in re.split(r"[\s,]+", request.form.get("lots", "")) if n]
    numbers += request.form.getlist("lot")

    def action() -> OrderLine:
        data = forms.load(s.OrderAllocationIn, {"lots": numbers})
        return services.allocate(db.session(), current_user, order, line, data["lots"])

    done, refused = forms.attempt(action)
    if done is not None:
        return forms.done(_("Allocated to line %(line)s: %(lots)s.", line=line_no,
                            lots=", ".join(numbers)), "orders.detail", order_id=order_id)
    assert refused is not None
    return _detail(order_id, errors=_errors(refused), line_no=line_no,
                   form=request.form.to_dict(), status=refused.status)


@bp.route("/<int:order_id>/lines/<int:line_no>/deallocate", methods=["POST"])
@require(Permission.ORDER_WRITE)
def deallocate(order_id: int, line_no: int) -> Any:
    order, line = _line(order_id, line_no)
    lot_no = forms.text(request.form, "lot")
    services.deallocate(db.session(), current_user, order, line, lot_no)
    return forms.done(_("Lot %(lot)s taken off line %(line)s.", lot=lot_no, line=line_no),
                      "orders.detail", order_id=order_id)


# --- the die bank ----------------------------------------------------------------------

def _bank(errors: dict[str, Any] | None = None, lot_no: str | None = None,
          status: int = 200) -> Any:
    sess = db.session()
    lots = services.banked_lots(sess, current_user)
    return render_template("orders/bank.html", lots=lots,
                           lines=services.lines_by_lot(sess, [lot.id for lot in lots]),
                           errors=errors or {}, error_lot=lot_no,
                           can_release=has_permission(current_user, Permission.LOT_RECEIVE),
                           ), status


@bp.route("/bank")
@require(*PLANT_LOT_READ)
def bank() -> Any:
    return _bank()


def _done(message: str, lot_no: str) -> Any:
    """Back to the lot page when the form was sent from it, else to the die bank."""
    if request.form.get("back") == "lot":
        return forms.done(message, "floor.lot_detail", lot_no=lot_no)
    return forms.done(message, "orders.bank")


@bp.route("/bank/<lot_no>/release", methods=["POST"])
@require(Permission.LOT_RECEIVE)
def release(lot_no: str) -> Any:
    sess = db.session()
    lot = floor.get_lot(sess, lot_no, current_user)

    def action() -> Any:
        data = forms.load(s.BankReleaseIn, {"planned_start": _when(
            forms.text(request.form, "planned_start"))})
        return services.release_lot(sess, current_user, lot, data.get("planned_start"))

    done, refused = forms.attempt(action)
    if done is not None:
        return _done(_("Lot %(lot)s released to the floor: queued at %(step)s.",
                       lot=lot.lot_no, step=lot.step_code), lot.lot_no)
    assert refused is not None
    return _bank(_errors(refused), lot.lot_no, refused.status)


@bp.route("/bank/<lot_no>/plan", methods=["POST"])
@require(Permission.LOT_RECEIVE)
def plan(lot_no: str) -> Any:
    sess = db.session()
    lot = floor.get_lot(sess, lot_no, current_user)

    def action() -> Any:
        data = forms.load(s.BankPlanIn, {"planned_start": _when(
            forms.text(request.form, "planned_start"))})
        return services.plan_lot(sess, current_user, lot, data["planned_start"])

    done, refused = forms.attempt(action)
    if done is not None:
        return _done(_("Planned start of lot %(lot)s saved.", lot=lot.lot_no), lot.lot_no)
    assert refused is not None
    return _bank(_errors(refused), lot.lot_no, refused.status)
