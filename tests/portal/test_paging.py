"""The portal's long lists come fifty to a page (lots in the plant, holds); completed lots
show the most recent fifty with the count of all; the plant's median step times are
computed at most once per configured interval."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import update

from mes.db import utcnow
from mes.floor.models import Lot
from mes.portal import services
from mes.quality import services as quality
from tests.helpers import as_user


def _rows(html: str, attr: str) -> list[str]:
    return re.findall(rf'<tr data-{attr}="([^"]+)"', html)


def _next(html: str) -> str:
    return re.search(r'href="([^"]+)" rel="next"', html).group(1).replace("&amp;", "&")


def test_lots_in_the_plant_fifty_a_page_with_every_lot_in_the_stages(app, session, receive,
                                                                     make_user):
    user = make_user("customer", customer="OEM")
    lots = [receive(10, lot_no=f"W-{i:02d}") for i in range(53)]
    client = as_user(app, user)
    first = client.get("/portal/").get_data(as_text=True)
    # Same step, same arrival order: soonest expected completion, then lot number.
    assert _rows(first, "lot") == [lot.lot_no for lot in lots[:50]]
    assert re.search(r'<tr data-stage="SAW">.*?data-lots>53<', first, re.S)
    second = client.get(_next(first)).get_data(as_text=True)
    assert _rows(second, "lot") == [lot.lot_no for lot in lots[50:]]
    assert 'rel="next"' not in second and 'rel="prev"' in second


def test_completed_lots_show_the_latest_fifty_and_the_count(app, session, receive, make_user):
    user = make_user("customer", customer="OEM")
    lots = [receive(10, lot_no=f"C-{i:02d}") for i in range(53)]
    session.execute(update(Lot).where(Lot.id.in_([lot.id for lot in lots]))
                    .values(state="completed"))
    session.commit()
    html = as_user(app, user).get("/portal/").get_data(as_text=True)
    assert len(_rows(html, "finished")) == 50
    assert "53 lots; the 50 most recently completed are shown." in html


def test_holds_fifty_a_page_open_first(app, session, receive, make_user):
    user = make_user("customer", customer="OEM")
    qa = make_user("qa")
    holds = []
    for i in range(52):
        lot = receive(10, lot_no=f"H-{i:02d}")
        holds.append(quality.hold_lot(session, qa, lot, reason="H-ENG", comment="check"))
    session.commit()
    client = as_user(app, user)
    first = client.get("/portal/holds").get_data(as_text=True)
    newest_first = [str(h.id) for h in reversed(holds)]
    assert _rows(first, "hold") == newest_first[:50]
    second = client.get(_next(first)).get_data(as_text=True)
    assert _rows(second, "hold") == newest_first[50:]


def test_median_step_times_are_computed_once_per_interval(session, plant, monkeypatch):
    calls: list[Any] = []

    def counted(session: Any, now: Any) -> services.CycleTimes:
        calls.append(now)
        return services.CycleTimes({"SAW": float(len(calls))}, 24.0)

    monkeypatch.setattr(services, "cycle_times", counted)
    monkeypatch.setattr(services, "_CYCLE_CACHE", {})
    now = utcnow()
    clock = iter([0.0, 299.0, 300.0, 301.0]).__next__
    seen = [services.cached_cycle_times(session, now, 300, clock).hours("SAW")
            for _ in range(4)]
    assert seen == [1.0, 1.0, 2.0, 2.0] and len(calls) == 2
    # 0 seconds: every page computes them.
    assert services.cached_cycle_times(session, now, 0).hours("SAW") == 3.0
    assert services.cached_cycle_times(session, now, 0).hours("SAW") == 4.0
