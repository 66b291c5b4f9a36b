"""Customer portal pages (Permission.PORTAL: customer users only). Every query is scoped
to the user's customer; another customer's shipment is a 404, as if it did not exist.
Traces are the trace pages' (`trace.lot`, themselves scoped to the customer). Holds are
shown as the plant's policy lets customers see them (mes.portal.visibility); QA's "notify
the customer" action on a hold is here too (`notify`, HOLD_RELEASE), with the panel the
hold page includes (portal/_hold_notice.html)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, current_app, render_template, request, url_for
from flask_babel import get_timezone
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from werkzeug.routing import BuildError

from mes import db
from mes.auth.permissions import Permission, require
from mes.auth.scope import scope_customer
from mes.changes import schemas as change_schemas
from mes.changes import services as changes
from mes.db import utcnow
from mes.errors import NotFound
from mes.forecast import charts as outlook_charts
from mes.forecast import outlook
from mes.pagination import ListArgs
from mes.portal import services
from mes.portal.visibility import Visibility
from mes.quality import services as quality
from mes.quality.models import Hold
from mes.reports import services as reports
from mes.schemas import schema_instance
from mes.shipping import services as shipping
from mes.shipping.documents import (
    coc_download,
    coc_pdf,
    render_coc,
    render_labels,
    zpl_response,
)
from mes.vocabulary import (
    ChangeKind,
    CustomerCategory,
    Disposition,
    HoldPolicy,
    HoldSource,
    LineStatus,
    LotState,
    PcnStatus,
    ReasonKind,
)
from mes.web import forms
from mes.web.pager import pager

bp = Blueprint("portal", __name__, url_prefix="/portal")

SECTIONS = (("portal.index", _l("WIP")), ("portal.holds", _l("Holds")),
            ("portal.shipments", _l("Shipments")), ("portal.pcns", _l("Changes (PCNs)")),
            ("portal.yields", _l("Yields")), ("portal.rejects", _l("Rejects")),
            ("complaints.portal_list", _l("Complaints")),
            ("portal.orders", _l("Orders")),
            ("webhooks.index", _l("Webhooks")),
            ("partners.grants", _l("Partners")))
# Orders a page of the portal shows (each line with its chart and lots).
ORDERS_PER_PAGE = 5
# The window of the portal's reject Pareto, as its yields'.
REJECT_WINDOW = services.YIELD_WINDOW


def _customer_id() -> int:
    customer_id = scope_customer(current_user)
    if customer_id is None:
        # Only customer users hold PORTAL; a customer user always has a customer.
        raise NotFound(_l("No customer."))
    return customer_id


def _optional_url(endpoint: str, **values: Any) -> str | None:
    """A link to a page another part of the application provides, or None when it is not
    there (the portal does not depend on it to work)."""
    try:
        return url_for(endpoint, **values)
    except BuildError:
        return None


@bp.app_context_processor
def _inject() -> dict[str, Any]:
    return {"trace_url": lambda lot_no: _optional_url("trace.lot", lot_no=lot_no),
            "optional_url": _optional_url,
            "portal_sections": SECTIONS,
            "portal_reports_url": lambda: _optional_url("reports.index"),
            "customer_notice": _customer_notice}


def _customer_notice(hold: Hold) -> dict[str, Any]:
    """What the hold page's panel says of the customer: whether and since when they see the
    hold under the plant's policy, and who notified them."""
    seen = Visibility.configured()
    return {"policy": seen.policy, "policy_label": HoldPolicy(seen.policy).label,
            "delay_minutes": int(seen.delay.total_seconds() // 60),
            "seen": seen.sees(hold), "shown_at": seen.shown_at(hold),
            "notified_at": hold.customer_notified_at, "notified_by": hold.customer_notified_by}


@bp.route("/")
@require(Permission.PORTAL)
def index() -> Any:
    now = utcnow()
    customer_id = _customer_id()
    sess = db.session()
    wip = services.wip(sess, customer_id, now,
                       current_app.config["PORTAL_CYCLE_TIME_CACHE_SECONDS"])
    # Fifty lots a page, soonest expected completion first; the stages count every lot.
    page = pager(wip.lots)
    finished = services.finished_lots(sess, customer_id)
    return render_template("portal/index.html", wip=wip, now=now, lots=page.items, page=page,
                           finished=finished,
                           finished_held=services.held_lots(
                               sess, [lot.id for lot in finished if lot.open_holds], now),
                           finished_total=services.finished_count(sess, customer_id),
                           window_days=services.CYCLE_WINDOW.days,
                           default_hours=services.DEFAULT_STEP_HOURS,
                           default_min_hours=services.DEFAULT_MIN_STEP_HOURS)


@bp.route("/holds")
@require(Permission.PORTAL)
def holds() -> Any:
    # Fifty holds a page, open ones first, then newest first.
    page = pager(services.hold_query(_customer_id(), utcnow()))
    return render_template("portal/holds.html", rows=page.items, page=page,
                           source_labels=HoldSource.labels(),
                           disposition_labels=Disposition.labels())


@bp.route("/shipments")
@require(Permission.PORTAL)
def shipments() -> Any:
    _customer_id()
    page = pager(shipping.shipment_query(current_user))
    return render_template("portal/shipments.html", rows=page.items, next_url=page.next_url,
                           first_url=page.first_url)


@bp.route("/shipments/<int:shipment_id>")
@require(Permission.PORTAL)
def shipment(shipment_id: int) -> Any:
    sess = db.session()
    found = shipping.get_shipment(sess, shipment_id, current_user)
    return render_template("portal/shipment.html", shipment=found,
                           date_codes=shipping.date_codes(sess, found),
                           total=sum(row.quantity for row in found.lots))


@bp.route("/shipments/<int:shipment_id>/coc")
@require(Permission.PORTAL)
def coc(shipment_id: int) -> Any:
    found = shipping.get_shipment(db.session(), shipment_id, current_user)
    if request.args.get("download"):
        return coc_download(found)
    if request.args.get("format") == "pdf":
        return coc_pdf(found)
    return render_coc(found, back_url=url_for("portal.shipment", shipment_id=found.id))


@bp.route("/shipments/<int:shipment_id>/labels")
@require(Permission.PORTAL)
def labels(shipment_id: int) -> Any:
    found = shipping.get_shipment(db.session(), shipment_id, current_user)
    return render_labels(found, back_url=url_for("portal.shipment", shipment_id=found.id),
                         zpl_url=url_for("portal.labels_zpl", shipment_id=found.id))


@bp.route("/shipments/<int:shipment_id>/labels.zpl")
@require(Permission.PORTAL)
def labels_zpl(shipment_id: int) -> Any:
    return zpl_response(shipping.get_shipment(db.session(), shipment_id, current_user))


def _pcns_page(errors: dict[int, str] | None = None, status: int = 200) -> Any:
    _customer_id()
    page = pager(changes.pcn_query(current_user))
    return render_template("portal/pcns.html", rows=page.items, page=page,
                           errors=errors or {}, pcn_labels=PcnStatus.labels(),
                           kind_labels=ChangeKind.labels()), status


@bp.route("/pcns")
@require(Permission.PORTAL)
def pcns() -> Any:
    """The customer's product change notifications, pending ones to approve or reject."""
    return _pcns_page()


@bp.route("/pcns/<int:pcn_id>/decision", methods=["POST"])
@require(Permission.PORTAL)
def pcn_decision(pcn_id: int) -> Any:
    sess = db.session()
    pcn = changes.get_pcn(sess, pcn_id, current_user)

    def action() -> Any:
        data = forms.load(change_schemas.DecisionIn, {
            "approve": request.form.get("approve") == "1",
            "comment": forms.text(request.form, "comment")})
        return changes.decide_pcn(sess, current_user, pcn, data["approve"], data["comment"])

    decided, refused = forms.attempt(action)
    if decided is None:
        assert refused is not None
        return _pcns_page({pcn_id: refused.message}, refused.status)
    return forms.done(_("PCN %(id)s %(status)s.", id=decided.id,
                        status=PcnStatus.word(decided.status)), "portal.pcns")


@bp.route("/yields")
@require(Permission.PORTAL)
def yields() -> Any:
    since = utcnow() - services.YIELD_WINDOW
    rows = services.yields(db.session(), _customer_id(), since)
    return render_template("portal/yields.html", rows=rows,
                           window_days=services.YIELD_WINDOW.days)


@bp.route("/rejects")
@require(Permission.PORTAL)
def rejects() -> Any:
    """The reject and scrap Pareto of the customer's lots by customer category (never the
    plant's reason codes or texts) over the last REJECT_WINDOW days."""
    today = utcnow().date()
    q = reports.ReportQuery(start=today - REJECT_WINDOW, end=today,
                            customer_id=_customer_id())
    report = reports.rejects(db.session(), q)
    return render_template("portal/rejects.html", rows=report.rows,
                           total=report.extra["total"], window_days=REJECT_WINDOW.days,
                           category_labels=CustomerCategory.labels(),
                           kind_labels=ReasonKind.labels())


@bp.route("/holds/<int:hold_id>/notify-customer", methods=["POST"])
@require(Permission.HOLD_RELEASE)
def notify(hold_id: int) -> Any:
    """QA notifies the lot's customer of the hold (the hold page's panel); the customer
    sees it from now on."""
    sess = db.session()
    hold = quality.get_hold(sess, hold_id)
    _done, refused = forms.attempt(lambda: services.notify_customer(sess, current_user, hold))
    if refused is not None:
        return render_template("portal/notify_refused.html", hold=hold,
                               refused=refused), refused.status
    return forms.done(_("Customer %(customer)s notified of hold %(id)d on lot %(lot)s.",
                        customer=hold.lot.customer.code, id=hold.id, lot=hold.lot.lot_no),
                      "quality.hold_detail", hold_id=hold.id)


@bp.route("/orders")
@require(Permission.PORTAL)
def orders() -> Any:
    """The customer's orders: each line's need and commit dates, its status, the quantity
    expected over time at P50 and P90 against the need, and its lots' forecasts."""
    _customer_id()
    now = utcnow()
    page = pager(outlook.orders_query(current_user), schema_instance(ListArgs).load(
        {"limit": str(ORDERS_PER_PAGE),
         **({"cursor": request.args["cursor"]} if request.args.get("cursor") else {})}))
    outlooks = outlook.line_outlooks(db.session(), [line.id for order in page.items
                                                    for line in order.lines], now)
    labels = {"p50": _("Expected (P50)"), "p90": _("Expected (P90)"), "need": _("Need date"),
              "ordered": _("Ordered")}
    charts = {line_id: outlook_charts.outlook_chart(
        o.curve(), made=o.made, ordered=o.quantity, need=outlook.need_deadline(o.need_date),
        now=now, title=_("Quantity expected over time"), labels=labels)
        for line_id, o in outlooks.items()}
    zone = get_timezone()

    def stamp(at: datetime) -> str:
        # `datetimeformat('yyyy-MM-dd HH:mm')` (digits in every locale) at a fraction of
        # its cost: a page shows a thousand of them.
        return at.astimezone(zone).strftime("%Y-%m-%d %H:%M")

    return render_template("portal/orders.html", orders=page.items, outlooks=outlooks,
                           charts=charts, page=page, status_labels=LineStatus.labels(),
                           state_labels=LotState.labels(), stamp=stamp)
