"""What the plant decides customers see: QA notifies a lot's customer of a hold (the
customer portal and the customer's API answers show it from then on)."""

from __future__ import annotations

from flask_login import current_user

from mes import db
from mes.api import bp
from mes.api.registry import api_route
from mes.auth.permissions import Permission
from mes.portal import services
from mes.quality import schemas as s
from mes.quality import services as quality
from mes.quality.models import Hold


@api_route(bp, "/holds/<int:hold_id>/notify-customer", method="POST",
           permission=Permission.HOLD_RELEASE, response=s.HoldOut, status=200, tag="holds")
def notify_customer(hold_id: int) -> Hold:
    """Notify the lot's customer of the hold: customers see it from now on, whatever the
    plant's PORTAL_HOLD_POLICY (open or released holds alike; audited).

    A hold the customer was notified of before is 409 `already_notified`.
    """
    session = db.session()
    return services.notify_customer(session, current_user,
                                    quality.get_hold(session, hold_id))
