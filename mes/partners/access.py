"""What a partner organisation may see: the lots of its active grants, read from the
database on every request (a revoked grant hides its lots from the next request on).

One definition, `granted_lots`: the lots allocated to a granted order line, or to any line
of a granted vehicle program of the granting owner, and of that owner (a lot of another
customer allocated by mistake stays invisible). Every partner page and the feed start
from it; another lot is simply not found.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Select, and_, or_, select

from mes.floor.models import Lot
from mes.orders.models import OrderAllocation, OrderLine, PurchaseOrder
from mes.partners.models import Grant


def granted_lots(partner_id: int) -> Select[Any]:
    """(lot id, owner id) of every lot partner `partner_id` may see now."""
    stmt = (select(OrderAllocation.lot_id, Grant.owner_id)
            .join(OrderLine, OrderLine.id == OrderAllocation.line_id)
            .join(PurchaseOrder, PurchaseOrder.id == OrderLine.order_id)
            .join(Grant, and_(Grant.partner_id == partner_id, Grant.revoked_at.is_(None),
                              Grant.owner_id == PurchaseOrder.customer_id,
                              or_(Grant.order_line_id == OrderLine.id,
                                  and_(Grant.vehicle_program.is_not(None),
                                       Grant.vehicle_program == OrderLine.vehicle_program))))
            .join(Lot, and_(Lot.id == OrderAllocation.lot_id,
                            Lot.customer_id == PurchaseOrder.customer_id)))
    return cast("Select[Any]", stmt)


def granted_lot_ids(partner_id: int) -> Select[Any]:
    """The ids of the lots partner `partner_id` may see now (for `Lot.id.in_(...)`)."""
    return granted_lots(partner_id).with_only_columns(OrderAllocation.lot_id).distinct()
