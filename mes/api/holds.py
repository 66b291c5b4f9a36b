"""Hold endpoints: hold one lot, mass hold by a match (with a preview), release with a
disposition, future holds (QA and admin place and release; plant roles read)."""

from __future__ import annotations

from typing import Any

from flask_login import current_user

from mes import db
from mes.api import bp
from mes.api.registry import Page, api_route, paginate
from mes.auth.permissions import Permission
from mes.floor import services as floor
from mes.quality import schemas as s
from mes.quality import services
from mes.quality.models import Hold, PresentedRule
from mes.quality.services import MassHold

PLACE, RELEASE, READ = Permission.HOLD_PLACE, Permission.HOLD_RELEASE, Permission.HOLD_READ


# --- holds -----------------------------------------------------------------------------

@api_route(bp, "/lots/<lot_no>/holds", method="POST", permission=PLACE, body=s.HoldIn,
           response=s.HoldOut, tag="holds")
def hold_lot(lot_no: str, data: dict[str, Any]) -> Hold:
    """Put a lot on hold with a hold reason code and a comment.

    A lot may carry several open holds and is free only when all are released. Queued,
    running and completed lots can be held; a running lot may still be tracked out.
    """
    session = db.session()
    lot = floor.get_lot(session, lot_no)
    return services.hold_lot(session, current_user, lot, **data)


@api_route(bp, "/holds", method="POST", permission=PLACE, body=s.MassHoldIn,
           response=s.MassHoldOut, tag="holds")
def mass_hold(data: dict[str, Any]) -> MassHold:
    """Mass hold: hold every lot the match selects and every descendant, in one transaction.

    Lots still in the plant (queued, running, completed) are held and listed in `lots`;
    shipped lots are listed in `shipped` and not held; scrapped and merged lots in
    `skipped`. A match selecting no lot is 422 `no_match`; one selecting only lots that
    have left the plant is 409 `nothing_to_hold`.
    """
    return services.mass_hold(db.session(), current_user, **data)


@api_route(bp, "/holds/preview", permission=READ, query=s.MatchQuery,
           response=s.MatchPreviewOut, tag="holds")
def preview_match(args: dict[str, Any]) -> dict[str, list[str]]:
    """What a mass hold would do with this match, changing nothing.

    The match as query parameters: `fab_lot`; `wafer` (and `fab_lot`); `material_lot`;
    `equipment`, `since` and `until`; or `lots` (comma-separated).
    """
    return services.match_lots(db.session(), args)


@api_route(bp, "/holds", permission=READ, query=s.HoldQuery, response=s.HoldOut, many=True,
           tag="holds")
def list_holds(args: dict[str, Any]) -> Page:
    """List holds, newest first; filters `status`, `lot`, `source`."""
    return paginate(db.session(), services.hold_query(args), args)


@api_route(bp, "/holds/<int:hold_id>", permission=READ, response=s.HoldOut, tag="holds")
def get_hold(hold_id: int) -> Hold:
    """One hold."""
    return services.get_hold(db.session(), hold_id)


@api_route(bp, "/holds/<int:hold_id>/release", method="POST", permission=RELEASE,
           body=s.ReleaseIn, response=s.HoldOut, status=200, tag="holds")
def release_hold(hold_id: int, data: dict[str, Any]) -> Hold:
    """Release a hold with a disposition: release, rework, scrap or use_as_is.

    The person who placed the hold may not release it (409 `two_person_rule`) unless an
    admin gives `override_reason`, which is recorded.
    """
    session = db.session()
    return services.release_hold(session, current_user, services.get_hold(session, hold_id),
                                 data)


@api_route(bp, "/holds/release", method="POST", permission=RELEASE, body=s.ReleaseManyIn,
           response=s.ReleaseManyOut, status=200, tag="holds")
def release_holds(data: dict[str, Any]) -> dict[str, list[Hold]]:
    """Release several holds with one disposition, as one release: all or nothing.

    Each hold is released under the rules of a single release (the two-person rule
    included). When any is refused none is released; `fields.holds` names each refused
    hold and why. An unknown hold id is 422.
    """
    data = dict(data)
    hold_ids = data.pop("holds")
    return {"holds": services.release_holds(db.session(), current_user, hold_ids, data)}


# --- future holds ----------------------------------------------------------------------

@api_route(bp, "/future-holds", method="POST", permission=PLACE, body=s.FutureHoldIn,
           response=s.FutureHoldOut, tag="holds")
def create_future_hold(data: dict[str, Any]) -> PresentedRule:
    """Create a future hold: hold each matching lot when it arrives at `at_step`.

    A lot matches when it or any of its ancestors matches, so lots split or merged later
    are caught. Lots already at or past the step are not held by the rule;
    `matching_now` tells how many matching lots are before, at and past the step.
    """
    return services.create_future_hold(db.session(), current_user, **data)


@api_route(bp, "/future-holds", permission=READ, query=s.FutureHoldQuery,
           response=s.FutureHoldOut, many=True, tag="holds")
def list_future_holds(args: dict[str, Any]) -> Page:
    """List future holds, newest first; filters `status` (active, retired), `at_step`."""
    session = db.session()
    page = paginate(session, services.future_hold_query(args), args)
    page.items = services.present_rules(session, page.items)
    return page


@api_route(bp, "/future-holds/<int:rule_id>", permission=READ, response=s.FutureHoldOut,
           tag="holds")
def get_future_hold(rule_id: int) -> PresentedRule:
    """One future hold, with how many holds it has placed."""
    session = db.session()
    return services.present_rules(session, [services.get_future_hold(session, rule_id)])[0]


@api_route(bp, "/future-holds/<int:rule_id>", method="DELETE", permission=PLACE,
           tag="holds")
def retire_future_hold(rule_id: int) -> None:
    """Retire a future hold: it holds no further lot and is kept for the record."""
    session = db.session()
    services.retire_future_hold(session, current_user,
                                services.get_future_hold(session, rule_id))
