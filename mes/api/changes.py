"""Product changes and product change notifications: engineers record a change and send
its PCNs; automotive customers read their PCNs and approve or reject them."""

from __future__ import annotations

from typing import Any

from flask_login import current_user

from mes import db
from mes.api import bp
from mes.api.registry import ListArgs, Page, api_route, paginate
from mes.auth.permissions import Permission
from mes.changes import schemas as s
from mes.changes import services
from mes.changes.models import Change, Pcn
from mes.changes.services import PresentedChange


@api_route(bp, "/changes", method="POST", permission=Permission.MASTER_WRITE, body=s.ChangeIn,
           response=s.ChangeOut, status=201, tag="changes")
def create_change(data: dict[str, Any]) -> PresentedChange:
    """Record a change to products (kind: material, process, site, design, test), with the
    BOM revision it introduces and the BOM items it alters. The answer lists the stresses
    AEC-Q100's change table requires (`required_stresses`); the new revision does not
    become current until they have passed on it."""
    session = db.session()
    return services.present(session, services.create_change(session, current_user, data))


@api_route(bp, "/changes", permission=Permission.MASTER_READ, query=ListArgs,
           response=s.ChangeOut, many=True, tag="changes")
def list_changes(args: dict[str, Any]) -> Page:
    """Changes, newest first, with their requalification status and PCNs."""
    session = db.session()
    page = paginate(session, services.change_query(), args)
    page.items = [services.present(session, change) for change in page.items]
    return page


@api_route(bp, "/changes/<int:change_id>", permission=Permission.MASTER_READ,
           response=s.ChangeOut, tag="changes")
def get_change(change_id: int) -> PresentedChange:
    """A change with its requalification status per product and its PCNs."""
    session = db.session()
    return services.present(session, services.get_change(session, change_id))


@api_route(bp, "/changes/<int:change_id>/pcns", method="POST",
           permission=Permission.MASTER_WRITE, body=s.PcnsIn, response=s.PcnOut, many=True,
           status=201, tag="changes")
def send_pcns(change_id: int, data: dict[str, Any]) -> Page:
    """Send the change's PCN to each automotive customer of its products that has none yet,
    effective `notice_days` (default and minimum: PCN_NOTICE_DAYS, 90) after today. The
    answer lists the PCNs sent (`{items, next}`, all on one page)."""
    session = db.session()
    change: Change = services.get_change(session, change_id)
    return Page(services.send_pcns(session, current_user, change, data.get("notice_days")),
                None)


@api_route(bp, "/pcns", permission=Permission.PCN_READ, query=s.PcnQuery,
           response=s.PcnOut, many=True, tag="changes")
def list_pcns(args: dict[str, Any]) -> Page:
    """PCNs, newest first (customers: their own). Filters: status, change (id)."""
    stmt = services.pcn_query(current_user)
    if args.get("status"):
        stmt = stmt.where(Pcn.status == args["status"])
    if args.get("change"):
        stmt = stmt.where(Pcn.change_id == args["change"])
    return paginate(db.session(), stmt, args)


@api_route(bp, "/pcns/<int:pcn_id>/decision", method="POST", permission=Permission.PORTAL,
           body=s.DecisionIn, response=s.PcnOut, status=200, tag="changes")
def decide_pcn(pcn_id: int, data: dict[str, Any]) -> Pcn:
    """The customer's answer to a PCN of theirs: approve or reject, with a comment. Another
    customer's PCN is 404; an answered one 409 `already_decided`."""
    session = db.session()
    pcn = services.get_pcn(session, pcn_id, current_user)
    return services.decide_pcn(session, current_user, pcn, data.get("approve"),
                               data.get("comment", ""))
