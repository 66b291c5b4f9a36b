"""The WIP feed (GET /api/v1/feeds/wip, docs/feeds.md): one row per open (queued, running)
or banked lot of one customer, or of the lots a partner's grants show, for the customer's
planning system.

A page is two indexed queries whatever the number of lots: the lots with their product,
PO line, current step's kind and forecast in one (the page's lot ids chosen first, with
their LIMIT: the customer's lots from ix_lot_feed, a partner's from its grants), and the
holds the customer sees on those of them with open holds in the other. Pages are
keyset-paged by lot id, so the thousandth page costs what the first does; the CSV answer
streams every page.

The stage of a lot: `die_bank` while banked; else its current step's kind (`assembly`,
`test`, `pack`), an inspection step counting as the stage of the nearest earlier
non-inspection step of its route (a final visual inspection after test is `test`; an
inspection first in its route is `assembly`).
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, and_, select, text
from sqlalchemy.orm import Session, aliased

from mes.catalog.models import Customer, Product, ReasonCode, RouteStep
from mes.errors import InvalidInput
from mes.floor.models import Lot
from mes.forecast.models import LotForecast
from mes.orders.models import OrderAllocation, OrderLine, PurchaseOrder
from mes.partners.access import granted_lot_ids
from mes.partners.models import FEED_STATES_SQL
from mes.portal.visibility import Visibility
from mes.quality.models import Hold
from mes.vocabulary import HoldStatus, LotState, StepKind, WipStage

# The lots the feed lists.
FEED_STATES = (LotState.QUEUED, LotState.RUNNING, LotState.BANKED)
# The field names, in the CSV's column order: a contract with ERP imports (docs/feeds.md).
FIELDS = ("lot_no", "customer", "po", "line", "product", "step", "stage", "state",
          "quantity", "p50", "p90", "holds", "hold_reasons", "hold_reason_texts")
# Lots per CSV query.
CSV_BATCH = 1000
# Items of a list in a CSV cell are joined by this.
CSV_LIST_SEPARATOR = "|"

_STAGE_OF_KIND = {StepKind.ASSEMBLY: WipStage.ASSEMBLY, StepKind.TEST: WipStage.TEST,
                  StepKind.PACK: WipStage.PACK}


@dataclass(frozen=True)
class FeedScope:
    """Whose lots: a customer's own (`customer_id`), or those a partner's grants show
    (`partner_id`); `owner_id` narrows a partner's to one granting owner."""

    customer_id: int | None = None
    partner_id: int | None = None
    owner_id: int | None = None


def forecast_columns(stmt: Select[Any]) -> Select[Any]:
    """`stmt` (over Lot) with the lot's forecast P50 and P90 completion times as the
    columns `p50` and `p90` (the one place the feed reads forecasts from)."""
    return (stmt.add_columns(LotForecast.p50_at.label("p50"), LotForecast.p90_at.label("p90"))
            .outerjoin(LotForecast, LotForecast.lot_id == Lot.id))


def _stage_kind() -> Any:
    """The kind of the nearest earlier non-inspection step of the lot's route."""
    earlier = aliased(RouteStep)
    return (select(earlier.kind)
            .where(earlier.route_id == Lot.route_id, earlier.seq < Lot.step_seq,
                   earlier.kind != StepKind.INSPECTION)
            .order_by(earlier.seq.desc()).limit(1)
            .correlate(Lot).scalar_subquery())


def lots_query(scope: FeedScope, after: int = 0, limit: int | None = None) -> Select[Any]:
    """The feed's lots with every column of a row but the holds, in lot id order: those
    with ids above `after`, at most `limit` of them.

    The page's lot ids are chosen first, alone (a derived table with its LIMIT, from
    ix_lot_feed or the grants), and only those lots joined to the rest: planned as one
    query, PostgreSQL would walk the primary key through the whole history (a million
    closed lots) expecting to meet the customer's open lots early."""
    ids = (select(Lot.id)
           # Written out as the partial index ix_lot_feed's condition, so that the database
           # sees the index applies (a bound IN list would not show it).
           .where(text(FEED_STATES_SQL), Lot.id > after))
    if scope.partner_id is not None:
        ids = ids.where(Lot.id.in_(granted_lot_ids(scope.partner_id)))
        if scope.owner_id is not None:
            ids = ids.where(Lot.customer_id == scope.owner_id)
    else:
        ids = ids.where(Lot.customer_id == scope.customer_id)
    chosen = ids.order_by(Lot.id).limit(limit).subquery("page")
    step = aliased(RouteStep)
    stmt = (select(Lot.id, Lot.lot_no, Lot.state, Lot.step_code, Lot.quantity, Lot.open_holds,
                   Customer.code.label("customer"), Product.code.label("product"),
                   PurchaseOrder.po, OrderLine.line_no, step.kind.label("kind"),
                   _stage_kind().label("earlier_kind"))
            .select_from(chosen)
            .join(Lot, Lot.id == chosen.c.id)
            .join(Customer, Customer.id == Lot.customer_id)
            .join(Product, Product.id == Lot.product_id)
            .outerjoin(step, and_(step.route_id == Lot.route_id, step.seq == Lot.step_seq))
            .outerjoin(OrderAllocation, OrderAllocation.lot_id == Lot.id)
            .outerjoin(OrderLine, OrderLine.id == OrderAllocation.line_id)
            .outerjoin(PurchaseOrder, PurchaseOrder.id == OrderLine.order_id))
    return forecast_columns(cast("Select[Any]", stmt)).order_by(Lot.id)


def stage(state: str, kind: str | None, earlier_kind: str | None) -> str:
    if state == LotState.BANKED:
        return WipStage.DIE_BANK
    if kind == StepKind.INSPECTION:
        kind = earlier_kind or StepKind.ASSEMBLY
    return _STAGE_OF_KIND.get(StepKind(kind), WipStage.ASSEMBLY) if kind else WipStage.ASSEMBLY


def _holds(session: Session, lot_ids: Sequence[int], now: datetime
           ) -> dict[int, list[tuple[str, str]]]:
    """The open holds the customer sees on `lot_ids`: (reason code, description) per lot."""
    found: dict[int, list[tuple[str, str]]] = defaultdict(list)
    if not lot_ids:
        return found
    for lot_id, code, description in session.execute(
            select(Hold.lot_id, ReasonCode.code, ReasonCode.description)
            .join(ReasonCode, ReasonCode.id == Hold.reason_id)
            .where(Hold.lot_id.in_(lot_ids), Hold.status == HoldStatus.OPEN,
                   Visibility.configured().clause(now))
            .order_by(Hold.lot_id, Hold.id)):
        found[lot_id].append((code, description))
    return found


def page(session: Session, scope: FeedScope, now: datetime, after: int = 0,
         limit: int = 50) -> tuple[list[dict[str, Any]], int | None]:
    """Up to `limit` rows of lots with ids above `after`, and the last id when there may be
    more (None otherwise)."""
    lots = session.execute(lots_query(scope, after, limit + 1)).all()
    more = len(lots) > limit
    lots = lots[:limit]
    holds = _holds(session, [lot.id for lot in lots if lot.open_holds], now)
    rows = []
    for lot in lots:
        reasons = holds.get(lot.id, [])
        banked = lot.state == LotState.BANKED
        rows.append({
            "lot_no": lot.lot_no, "customer": lot.customer, "po": lot.po,
            "line": lot.line_no, "product": lot.product,
            "step": None if banked else lot.step_code,
            "stage": str(stage(lot.state, lot.kind, lot.earlier_kind)),
            "state": lot.state, "quantity": lot.quantity, "p50": lot.p50, "p90": lot.p90,
            "holds": len(reasons),
            "hold_reasons": sorted({code for code, _text in reasons}),
            "hold_reason_texts": sorted({text for _code, text in reasons})})
    return rows, (lots[-1].id if more and lots else None)


# --- cursors and CSV -------------------------------------------------------------------

def encode_cursor(after: int) -> str:
    return base64.urlsafe_b64encode(f"lot:{after}".encode()).decode()


def decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        kind, _, value = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        after = int(value)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        kind, after = "", -1
    if kind != "lot" or not 0 <= after < 2**63:
        raise InvalidInput(_l("The cursor is not valid."),
                           fields={"cursor": [_l("Not a cursor from this API.")]})
    return after


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list):
        return CSV_LIST_SEPARATOR.join(str(item).replace(CSV_LIST_SEPARATOR, "/")
                                       for item in value)
    return value


def csv_lines(session: Session, scope: FeedScope, now: datetime) -> Iterator[str]:
    """The whole feed as CSV text (header first), CSV_BATCH lots per query."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(FIELDS)
    after: int | None = 0
    while after is not None:
        rows, after = page(session, scope, now, after, CSV_BATCH)
        for row in rows:
            writer.writerow([_cell(row[name]) for name in FIELDS])
        yield out.getvalue()
        out.seek(0)
        out.truncate()
