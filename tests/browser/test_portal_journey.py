"""A customer's journey through the portal under the plant's settings, in a real browser:
the WIP page's expected completions are never "now" for lots that waited long; the reject
Pareto shows customer categories, never the plant's reason codes; a hold placed minutes ago
is not shown until QA notifies the customer from the hold page, after which the customer
sees it (checked in the database too: the notice and its audit record). No page the
customer opens names a member of staff."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from mes.audit.models import AuditEvent
from mes.catalog.models import ReasonCode
from mes.db import session_scope
from mes.floor.models import Lot
from mes.quality import services as quality
from mes.quality.models import Hold
from tests.browser.helpers import shot, skip_without_browser, submit

skip_without_browser()

PASSWORDS = {"cyanlake": "demo-cyanlake-2026", "qa": "demo-qa-2026"}
STAFF = ("op1", "op2", "qa2", "planner", "engineer")


def _fresh_hold(app: Any) -> tuple[int, str]:
    """QA puts one of CYANLAKE's free lots in the plant on hold now: (hold id, lot no)."""
    with app.app_context(), session_scope(app) as sess:
        lot = sess.scalars(select(Lot).join(Lot.customer).where(
            Lot.state == "queued", Lot.open_holds == 0,
            Lot.customer.has(code="CYANLAKE")).order_by(Lot.id)).first()
        assert lot is not None
        hold = quality.hold_lot(sess, "qa", lot, reason="HOLD-ENG",
                                comment="Check the bond pull results (browser journey)")
        sess.flush()
        return hold.id, lot.lot_no


def _main_text(page: Any) -> str:
    return page.locator("main").inner_text()


def test_a_customer_sees_what_the_plant_lets_them_see(live, open_as):
    app, url = live["app"], live["url"]
    customer = open_as("cyanlake", PASSWORDS["cyanlake"])

    # WIP: each lot's expected completion is at least its remaining steps' minimum, and
    # later than now, also for lots queued for days.
    customer.goto(f"{url}/portal/")
    cells = customer.locator("td[data-expected]")
    assert cells.count() > 0
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M")
    for i in range(cells.count()):
        expected = cells.nth(i).get_attribute("data-expected")
        earliest = cells.nth(i).get_attribute("data-earliest")
        assert expected >= earliest > now, (expected, earliest, now)
    shot(customer, "customer-3-portal-wip")

    # Rejects: categories only, in the page's words; no reason code of the plant.
    customer.goto(f"{url}/portal/rejects")
    categories = customer.locator("tr[data-category]")
    assert categories.count() > 0
    with app.app_context(), session_scope(app) as sess:
        codes = set(sess.scalars(select(ReasonCode.code)))
    text = _main_text(customer)
    assert "Electrical test" in text
    assert not [code for code in codes if re.search(rf"(?<![\w-]){re.escape(code)}(?![\w-])",
                                                    text)]
    shot(customer, "customer-4-portal-rejects")

    # A hold placed now is not shown yet (the demo plant shows holds after 240 minutes).
    hold_id, lot_no = _fresh_hold(app)
    customer.goto(f"{url}/portal/holds")
    assert customer.locator(f"tr[data-hold='{hold_id}']").count() == 0
    api = customer.request.get(f"{url}/api/v1/lots/{lot_no}").json()
    assert (api["on_hold"], api["holds"]) == (False, [])

    # QA notifies the customer from the hold page.
    qa = open_as("qa", PASSWORDS["qa"])
    qa.goto(f"{url}/holds/{hold_id}/view")
    assert qa.locator("[data-customer-sees='no']").count() == 1
    submit(qa, lambda: qa.click("button[data-notify-customer]"))
    assert qa.locator("[data-customer-sees='yes']").count() == 1
    assert "notified" in _main_text(qa)
    shot(qa, "customer-5-qa-notified")
    with app.app_context(), session_scope(app) as sess:
        hold = sess.get(Hold, hold_id)
        assert hold.customer_notified_at is not None and hold.customer_notified_by == "qa"
        assert sess.scalars(select(AuditEvent).where(
            AuditEvent.code == "hold:notify_customer",
            AuditEvent.subject_key == str(hold_id))).one().actor == "qa"

    customer.goto(f"{url}/portal/holds")
    row = customer.locator(f"tr[data-hold='{hold_id}']")
    assert row.count() == 1 and lot_no in row.inner_text()
    api = customer.request.get(f"{url}/api/v1/lots/{lot_no}").json()
    assert (api["on_hold"], api["holds"]) == (True, [hold_id])
    shot(customer, "customer-6-portal-holds")
    for path in ("/portal/", "/portal/holds", "/portal/rejects", "/portal/yields"):
        customer.goto(url + path)
        text = _main_text(customer)
        assert not [n for n in STAFF if re.search(rf"(?<![\w-]){n}(?![\w-])", text)], path
        assert "Check the bond pull" not in text
