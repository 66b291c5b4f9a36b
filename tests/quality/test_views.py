"""QA pages: the hold queue, a hold's detail and release, bulk release, mass hold with its
preview, future holds. The pages call the same services as the API; these tests check what
a person sees and that a refused form changes nothing."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from urllib.parse import unquote

import pytest
from sqlalchemy import select

from mes.db import simulated_time, utcnow
from mes.floor.models import Lot
from mes.quality import services as quality
from mes.quality.models import FutureHold, Hold
from tests.quality.helpers import quality_state


def text(resp: Any) -> str:
    return resp.get_data(as_text=True)


def place(session, actor: Any, lot_no: str, comment: str = "Suspect bond lifts") -> Hold:
    lot = session.scalar(select(Lot).where(Lot.lot_no == lot_no))
    placed = quality.hold_lot(session, actor, lot, reason="H-ENG", comment=comment)
    session.commit()
    return placed


@pytest.fixture
def qa(make_user, login):
    user = make_user("qa", username="qa-page")
    login(user)
    return user


@pytest.fixture
def held(session, receive, make_user):
    """Two lots held by another QA engineer, one of them two days ago."""
    other = make_user("qa", username="qa-other")
    receive(100, lot_no="LOT-A")
    receive(100, lot_no="LOT-B")
    with simulated_time(utcnow() - timedelta(hours=49)):
        first = place(session, other, "LOT-A")
    second = place(session, other, "LOT-B")
    return first, second


@pytest.mark.parametrize("path", ["/holds/queue", "/holds/mass", "/holds/future"])
def test_qa_pages_render_for_qa(client, qa, held, path):
    resp = client.get(path)
    assert resp.status_code == 200, text(resp)[:500]


def test_hold_detail_renders_history_and_release_form(client, qa, held):
    resp = client.get(f"/holds/{held[0].id}/view")
    body = text(resp)
    assert resp.status_code == 200
    assert "LOT-A" in body and "Release hold" in body and "Lot history" in body


def test_hold_queue_highlights_aging_and_filters(client, qa, held):
    body = text(client.get("/holds/queue"))
    row = re.search(rf'<tr class="([^"]*)" data-hold="{held[0].id}"', body)
    assert row and row.group(1) == "age-warning"
    assert f'class="" data-hold="{held[1].id}"' in body
    filtered = text(client.get("/holds/queue?source=future"))
    assert f'data-hold="{held[0].id}"' not in filtered


@pytest.mark.parametrize("method,path", [("get", "/holds/mass"), ("post", "/holds/mass"),
                                         ("post", "/holds/future"),
                                         ("post", "/holds/bulk-release"),
                                         ("post", "/holds/1/view")])
def test_operator_may_not_place_or_release(client, make_user, login, held, method, path):
    login(make_user("operator"))
    assert getattr(client, method)(path, data={}).status_code == 403


def test_release_through_the_form(client, qa, held, session):
    resp = client.post(f"/holds/{held[0].id}/view",
                       data={"disposition": "release", "comment": "Bonds pulled fine"})
    assert resp.status_code == 303
    session.expire_all()
    assert session.get(Hold, held[0].id).status == "released"


def test_release_refused_by_the_two_person_rule_shows_why_and_changes_nothing(
        client, qa, receive, session):
    receive(100, lot_no="LOT-C")
    own = place(session, qa, "LOT-C")
    before = quality_state(session)
    resp = client.post(f"/holds/{own.id}/view",
                       data={"disposition": "release", "comment": "mine"})
    assert resp.status_code == 409
    assert "may not release" in text(resp) or "two-person" in text(resp).lower()
    session.expire_all()
    assert quality_state(session) == before


def test_mass_hold_preview_counts_then_confirm_holds(client, qa, receive, session):
    for n in ("1", "2"):
        receive(100, lot_no=f"LOT-F{n}", fab_lot="FAB-X")
    data = {"kind": "fab_lot", "value": "FAB-X", "reason": "H-ENG", "comment": "Fab excursion"}
    before = quality_state(session)
    preview = client.post("/holds/mass", data=data)
    assert preview.status_code == 200
    assert '<strong data-count="to_hold">2</strong>' in text(preview)
    session.expire_all()
    assert quality_state(session) == before
    done = client.post("/holds/mass", data={**data, "confirm": "1"})
    assert done.status_code == 303
    session.expire_all()
    held = session.scalars(select(Lot.lot_no).where(Lot.open_holds == 1)).all()
    assert sorted(held) == ["LOT-F1", "LOT-F2"]


def test_bulk_release_is_all_or_nothing(client, qa, held, session):
    own = place(session, qa, "LOT-B", comment="my own")
    before = quality_state(session)
    resp = client.post("/holds/bulk-release", data={
        "hold": [str(held[0].id), str(held[1].id), str(own.id)],
        "disposition": "release", "comment": "all good"})
    assert resp.status_code == 409
    assert f"Hold {own.id}:" in text(resp)
    session.expire_all()
    assert quality_state(session) == before


def test_bulk_release_releases_every_checked_hold(client, qa, held, session):
    resp = client.post("/holds/bulk-release", data={
        "hold": [str(h.id) for h in held], "disposition": "release", "comment": "all good"})
    assert resp.status_code == 303
    session.expire_all()
    assert {session.get(Hold, h.id).status for h in held} == {"released"}


def test_future_hold_preview_then_create_and_retire(client, qa, receive, session):
    receive(100, lot_no="LOT-G", fab_lot="FAB-Y")
    data = {"kind": "fab_lot", "value": "FAB-Y", "at_step": "FT", "reason": "H-ENG",
            "comment": "Stop at final test"}
    preview = client.post("/holds/future", data=data)
    assert preview.status_code == 200
    assert '<strong data-count="to_hold">1</strong>' in text(preview)
    assert session.scalar(select(FutureHold.id)) is None
    assert client.post("/holds/future", data={**data, "confirm": "1"}).status_code == 303
    rule = session.scalars(select(FutureHold)).one()
    assert client.post(f"/holds/future/{rule.id}/retire").status_code == 303
    session.expire_all()
    assert session.get(FutureHold, rule.id).status == "retired"
    assert f'data-rule="{rule.id}"' in text(client.get("/holds/future"))


def test_hold_queue_pages_by_fifty_oldest_first_keeping_filters(client, qa, session, receive,
                                                                make_user):
    other = make_user("qa", username="qa-other")
    start = utcnow() - timedelta(days=10)
    for i in range(53):
        receive(10, lot_no=f"LOT-{i:02d}")
        with simulated_time(start + timedelta(hours=i)):
            place(session, other, f"LOT-{i:02d}")
    ids = [h.id for h in session.scalars(select(Hold).order_by(Hold.placed_at, Hold.id))]
    first = text(client.get("/holds/queue?source=manual"))
    assert re.findall(r'data-hold="(\d+)"', first) == [str(i) for i in ids[:50]]
    assert "53 open hold(s)" in first
    next_url = re.search(r'href="([^"]+)" rel="next"', first).group(1).replace("&amp;", "&")
    assert next_url.startswith("/holds/queue?") and "source=manual" in next_url
    second = text(client.get(next_url))
    assert re.findall(r'data-hold="(\d+)"', second) == [str(i) for i in ids[50:]]
    assert 'rel="next"' not in second and 'rel="prev"' in second
    # A refused bulk release from the second page shows that page again, its links on the
    # queue's address, and releases nothing.
    cursor = unquote(re.search(r"cursor=([^&]+)", next_url).group(1))
    before = quality_state(session)
    resp = client.post("/holds/bulk-release", data={
        "hold": [str(ids[51])], "disposition": "scrap", "comment": "x", "cursor": cursor})
    assert resp.status_code == 422
    assert re.findall(r'data-hold="(\d+)"', text(resp)) == [str(i) for i in ids[50:]]
    prev_url = re.search(r'href="([^"]+)" rel="prev"', text(resp)).group(1)
    assert prev_url.startswith("/holds/queue")
    session.expire_all()
    assert quality_state(session) == before
