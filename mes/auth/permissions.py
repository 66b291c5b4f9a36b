"""One Permission enum and one role -> permission table; `@require` on every endpoint."""

from __future__ import annotations

import enum
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask_babel import lazy_gettext as _l
from flask_login import current_user

from mes.errors import Forbidden, Unauthenticated
from mes.vocabulary import Role

F = TypeVar("F", bound=Callable[..., Any])


class Permission(enum.StrEnum):
    MASTER_READ = "master:read"        # see customers, products, routes, equipment, codes
    MASTER_WRITE = "master:write"      # create and edit master data
    EQUIPMENT_STATE = "equipment:state"  # change an equipment's E10 state
    USER_ADMIN = "user:admin"          # manage users and their tokens
    AUDIT_READ = "audit:read"          # read the audit trail
    LOT_READ = "lot:read"              # see lots (customers: their own only)
    LOT_RECEIVE = "lot:receive"        # receive wafer lots
    LOT_TRACK = "lot:track"            # track in and out
    LOT_SPLIT_MERGE = "lot:split_merge"
    HOLD_READ = "hold:read"
    HOLD_PLACE = "hold:place"
    HOLD_RELEASE = "hold:release"
    TEST_READ = "test:read"            # see test runs and PAT limit sets (plant roles)
    TEST_WRITE = "test:write"          # import STDF and bin summaries
    LIMITS_WRITE = "limits:write"      # compute PAT/SBA limits, record qualifications
    SHIP = "ship"
    PACK = "pack"                      # pack lots into reels; build bags, boxes, cartons
    SHIPMENT_READ = "shipment:read"
    TRACE_READ = "trace:read"
    REPORT_READ = "report:read"
    PORTAL = "portal"                  # the customer portal pages
    SPC_READ = "spc:read"              # see process control plans, charts and events
    SPC_PLAN = "spc:plan"              # create data collection plans, freeze control limits
    SPC_SAMPLE = "spc:sample"          # enter measured subgroups (operators, gauges)
    SPC_CLOSE = "spc:close"            # close an out-of-control event (cause and action)
    PCN_READ = "pcn:read"              # see product change notifications (customers: own)
    COMPLAINT_READ = "complaint:read"  # see complaints and their 8D (customers: own)
    COMPLAINT_OPEN = "complaint:open"  # record a complaint (customers: their own)
    COMPLAINT_MANAGE = "complaint:manage"  # work a complaint's 8D
    WEBHOOK = "webhook"                # manage webhook subscriptions (customers: their own)
    ORDER_READ = "order:read"          # see purchase orders and their lines (customers: own)
    ORDER_WRITE = "order:write"        # enter orders, commit dates, allocate lots to lines
    FEED_READ = "feed:read"            # the WIP feed (customers and partners: their own)
    GRANT_READ = "grant:read"          # list partner grants (owners: made; partners: received)
    GRANT_WRITE = "grant:write"        # grant a partner a view of lots, revoke it
    PARTNER_READ = "partner:read"      # the partner pages: the lots granted to a partner
    PROGRAM_WRITE = "program:write"    # release test programs, define bins and PAT tests
    TEST_VOID = "test:void"            # void a test run (it then counts nowhere)


_READ_FLOOR = {Permission.MASTER_READ, Permission.LOT_READ, Permission.HOLD_READ,
               Permission.SHIPMENT_READ, Permission.TRACE_READ, Permission.REPORT_READ,
               Permission.TEST_READ, Permission.SPC_READ, Permission.PCN_READ,
               Permission.COMPLAINT_READ, Permission.ORDER_READ}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.OPERATOR: frozenset({Permission.MASTER_READ, Permission.LOT_READ, Permission.LOT_TRACK,
                              Permission.LOT_SPLIT_MERGE, Permission.EQUIPMENT_STATE,
                              Permission.HOLD_READ, Permission.TEST_READ,
                              Permission.TEST_WRITE, Permission.TRACE_READ,
                              Permission.SPC_READ, Permission.SPC_SAMPLE, Permission.PACK}),
    Role.ENGINEER: frozenset(_READ_FLOOR | {Permission.MASTER_WRITE, Permission.EQUIPMENT_STATE,
                                            Permission.TEST_WRITE, Permission.LIMITS_WRITE,
                                            Permission.SPC_PLAN, Permission.SPC_SAMPLE,
                                            Permission.SPC_CLOSE, Permission.PROGRAM_WRITE,
                                            Permission.TEST_VOID}),
    Role.QA: frozenset(_READ_FLOOR | {Permission.HOLD_PLACE, Permission.HOLD_RELEASE,
                                      Permission.AUDIT_READ, Permission.SPC_CLOSE,
                                      Permission.COMPLAINT_OPEN,
                                      Permission.COMPLAINT_MANAGE, Permission.TEST_VOID}),
    Role.PLANNER: frozenset(_READ_FLOOR | {Permission.LOT_RECEIVE, Permission.LOT_SPLIT_MERGE,
                                           Permission.SHIP, Permission.PACK,
                                           Permission.ORDER_WRITE, Permission.FEED_READ}),
    Role.ADMIN: frozenset(set(Permission) - {Permission.PORTAL, Permission.PARTNER_READ}),
    Role.CUSTOMER: frozenset({Permission.PORTAL, Permission.LOT_READ, Permission.SHIPMENT_READ,
                              Permission.TRACE_READ, Permission.REPORT_READ,
                              Permission.PCN_READ, Permission.COMPLAINT_READ,
                              Permission.COMPLAINT_OPEN, Permission.WEBHOOK,
                              Permission.ORDER_READ, Permission.FEED_READ,
                              Permission.GRANT_READ, Permission.GRANT_WRITE}),
    # Partner users read only what grants allow: never the lot, trace, order or shipment
    # endpoints.
    Role.PARTNER: frozenset({Permission.PARTNER_READ, Permission.FEED_READ,
                             Permission.GRANT_READ}),
}

PUBLIC = "public"

# The plant's lot pages (lot page, traveler, WIP board): every plant role, not customers,
# whose pages are the portal's (`master:read` is what only plant roles hold).
PLANT_LOT_READ = (Permission.LOT_READ, Permission.MASTER_READ)
# Traces that reach any customer's lots (from a criterion, a shipment's whole trace): the
# plant's roles only (customers lack `hold:read`).
PLANT_TRACE_READ = (Permission.TRACE_READ, Permission.HOLD_READ)


def has_permission(user: Any, permission: Permission) -> bool:
    if not getattr(user, "is_authenticated", False):
        return False
    return permission in ROLE_PERMISSIONS[Role(user.role)]


def require(*permissions: Permission) -> Callable[[F], F]:
    """Refuse the request unless the user holds every permission named.

    Anonymous: Unauthenticated (401 JSON for the API, redirect to the login page otherwise).
    Authenticated without the permission: Forbidden (403).
    """
    def decorate(fn: F) -> F:
        @wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            user = current_user._get_current_object()  # once, not through the proxy each time
            if not user.is_authenticated:
                raise Unauthenticated(_l("Log in to continue."))
            for perm in permissions:
                if not has_permission(user, perm):
                    raise Forbidden(_l("Your role does not allow this."))
            return fn(*args, **kwargs)

        # Read by the permission matrix (mes/auth/matrix.py); functions take any attribute.
        wrapper.mes_permissions = tuple(permissions)  # type: ignore[attr-defined]  # see above
        # wraps() gives the wrapper fn's name and signature.
        return cast(F, wrapper)

    return decorate


def public(fn: F) -> F:
    """Declare an endpoint open to everyone (login page, health check)."""
    fn.mes_permissions = PUBLIC  # type: ignore[attr-defined]  # read by mes/auth/matrix.py
    return fn
