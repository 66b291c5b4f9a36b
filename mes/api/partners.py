"""The WIP feed and partner grants: a customer's planning system pulls the feed; a chip
owner grants a partner organisation (its Tier-1, the vehicle maker) a view of the lots of
one PO line or one vehicle program, and revokes it (docs/feeds.md, docs/decisions.md
"Partners and the WIP feed")."""

from __future__ import annotations

from typing import Any

from flask import Response, stream_with_context
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select

from mes import db
from mes.api import bp
from mes.api.registry import Page, api_route, paginate
from mes.auth.permissions import Permission
from mes.auth.scope import scope_customer
from mes.catalog.models import Customer
from mes.db import utcnow
from mes.errors import InvalidInput, NotFound
from mes.partners import feed, services
from mes.partners import schemas as s
from mes.partners.models import Grant
from mes.vocabulary import CustomerKind


def feed_scope(customer: str | None) -> feed.FeedScope:
    """Whose lots the current user's feed lists: a customer user's own customer's; a partner
    user's granted lots (`customer`: of that owner only); staff name a customer (a partner
    organisation: what its users see)."""
    session = db.session()
    partner = services.partner_of(current_user)
    if partner is not None:
        owner = None
        if customer is not None:
            owner = session.scalar(select(Customer.id).where(Customer.code == customer))
            if owner is None:
                owner = 0
        return feed.FeedScope(partner_id=partner, owner_id=owner)
    own = scope_customer(current_user)
    if own is not None:
        if customer is not None and session.scalar(
                select(Customer.id).where(Customer.code == customer)) != own:
            raise NotFound(_l("No customer %(code)s.", code=customer))
        return feed.FeedScope(customer_id=own)
    if customer is None:
        raise InvalidInput(_l("Name the customer whose feed to read."),
                           fields={"customer": [_l("Required for plant users.")]})
    found = session.scalar(select(Customer).where(Customer.code == customer))
    if found is None:
        raise NotFound(_l("No customer %(code)s.", code=customer))
    if found.kind == CustomerKind.PARTNER:
        return feed.FeedScope(partner_id=found.id)
    return feed.FeedScope(customer_id=found.id)


@api_route(bp, "/feeds/wip", permission=Permission.FEED_READ, query=s.FeedQuery,
           response=s.FeedRowOut, many=True, tag="feeds",
           produces=("application/json", "text/csv"))
def wip_feed(args: dict[str, Any]) -> Page | Response:
    """The WIP feed: one row per open (queued, running) or banked lot, with its PO line,
    stage, forecast and the holds its customer sees (docs/feeds.md).

    Customer users read their own customer's lots; partner users the lots their grants
    show (`customer`: of one granting owner); plant users name the
    customer. JSON pages by `limit` and `cursor` in lot order; `format=csv` answers every
    row at once, streamed."""
    scope = feed_scope(args["customer"])
    session = db.session()
    now = utcnow()
    if args["format"] == "csv":
        return Response(stream_with_context(feed.csv_lines(session, scope, now)),
                        mimetype="text/csv", headers={
                            "Content-Disposition": "attachment; filename=wip.csv"})
    rows, after = feed.page(session, scope, now, feed.decode_cursor(args["cursor"]),
                            args["limit"])
    return Page(rows, feed.encode_cursor(after) if after is not None else None)


@api_route(bp, "/grants", method="POST", permission=Permission.GRANT_WRITE, body=s.GrantIn,
           response=s.GrantOut, tag="partners")
def create_grant(data: dict[str, Any]) -> Grant:
    """Grant a partner organisation a view of the lots of one PO line (`po`, `line`) or one
    vehicle program of a customer: the customer's own users, or an admin naming the
    `customer`.

    The partner's users then see those lots (WIP, forecast, holds the customer sees,
    shipments) in their pages and feed, and nothing else. An unknown partner, PO line or
    program is 422; the same grant held already is 409 `duplicate`."""
    return services.create_grant(db.session(), current_user, data)


@api_route(bp, "/grants", permission=Permission.GRANT_READ, query=s.GrantQuery,
           response=s.GrantOut, many=True, tag="partners")
def list_grants(args: dict[str, Any]) -> Page:
    """Active grants, newest first: those a customer made, those a partner received (plant
    users: all; `customer` filters on the owner or the partner)."""
    return paginate(db.session(), services.grants_query(current_user, args["customer"]), args)


@api_route(bp, "/grants/<int:grant_id>", method="DELETE", permission=Permission.GRANT_WRITE,
           tag="partners")
def revoke_grant(grant_id: int) -> None:
    """Revoke a grant: its partner's users no longer see its lots from their next request
    on. Another customer's grant is 404; one revoked already is 409 `not_active`."""
    services.revoke_grant(db.session(), current_user, grant_id)
