"""What a planner does to lots: a due date in the past is refused (page and API, nothing
received), a split divides the wafers (chosen, or by die quantities), and the genealogy
picture writes the quantities on its edges and explains its line types."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from mes.db import simulated_time, utcnow
from mes.errors import InvalidInput
from mes.floor import services
from mes.floor.models import Lot, LotEvent, LotWafer, Wafer
from mes.trace import svg
from tests.helpers import refused

RECEIPT = {"product": "P1", "customer": "OEM", "quantity": 300, "fab_lot": "FAB1",
           "wafers": [{"wafer_id": "W01", "die_qty": 100}, {"wafer_id": "W02", "die_qty": 120},
                      {"wafer_id": "W03", "die_qty": 80}]}
# 20:00 UTC on 9 March is 04:00 on 10 March in Shanghai: the plant's date is the 10th.
EVENING_UTC = datetime(2026, 3, 9, 20, 0, tzinfo=UTC)


def text(resp: Any) -> str:
    return resp.get_data(as_text=True)


def wafers_of(session, lot_no: str) -> list[str]:
    return list(session.scalars(
        select(Wafer.wafer_id).join(LotWafer, LotWafer.wafer_pk == Wafer.id)
        .join(Lot, Lot.id == LotWafer.lot_id).where(Lot.lot_no == lot_no)
        .order_by(Wafer.wafer_id)))


# --- due dates ------------------------------------------------------------------------

def test_a_due_date_before_the_plants_today_is_refused_and_nothing_is_received(
        session, plant):
    data = {**RECEIPT, "wafers": [], "lot_no": "LOT-P", "priority": 3,
            "due_date": date(2026, 3, 9)}
    with simulated_time(EVENING_UTC):
        # The 9th is still today in UTC, but the plant is on the 10th already.
        err = refused(session, lambda: services.receive_lot(session, "planner", data),
                      InvalidInput, "invalid")
        assert "2026-03-09" in str(err.fields["due_date"][0])
        assert "2026-03-10" in str(err.fields["due_date"][0])
        lot = services.receive_lot(session, "planner", {**data, "due_date": date(2026, 3, 10)})
    assert lot.due_date == date(2026, 3, 10)


def test_the_api_refuses_a_past_due_date_with_a_field_error(api, session, plant):
    caller = api("planner")
    yesterday = (services.plant_date() - timedelta(days=1)).isoformat()
    error = refused(session, lambda: caller.post("/lots", json={
        **RECEIPT, "lot_no": "LOT-P", "due_date": yesterday}), 422, "invalid", "due_date")
    assert yesterday in error["fields"]["due_date"][0]
    today = services.plant_date().isoformat()
    resp = caller.post("/lots", json={**RECEIPT, "lot_no": "LOT-P", "due_date": today})
    assert resp.status_code == 201 and resp.get_json()["due_date"] == today


def test_the_receive_page_refuses_a_past_due_date_beside_the_field(
        client, session, plant, make_user, login):
    login(make_user("planner"))
    yesterday = (services.plant_date() - timedelta(days=1)).isoformat()
    body = refused(session, lambda: client.post("/lots/receive", data={
        "product": "P1", "customer": "OEM", "fab_lot": "FAB9", "quantity": "100",
        "priority": "3", "due_date": yesterday, "lot_no": "LOT-P", "wafers": ""}), 422)
    assert "before today" in body and 'id="f-due_date"' in body
    assert f'min="{services.plant_date().isoformat()}"' in text(client.get("/lots/receive"))


# --- splitting the wafers -------------------------------------------------------------

@pytest.fixture
def lot(session, receive) -> Lot:
    return receive(300, lot_no="LOT-W", wafers=RECEIPT["wafers"])


def test_without_a_choice_die_quantities_decide(session, lot):
    # W01 100, W02 120, W03 80 end to end: 0-100, 100-220, 220-300.
    children = services.split_lot(session, "planner", lot, [100, 120, 80])
    assert wafers_of(session, "LOT-W") == ["W01"]
    assert [wafers_of(session, c.lot_no) for c in children] == [["W02"], ["W03"]]
    assert (lot.wafer_count, [c.wafer_count for c in children]) == (1, [1, 1])


def test_a_wafer_across_two_parts_stays_on_both(session, lot):
    children = services.split_lot(session, "planner", lot, [150, 150])
    assert wafers_of(session, "LOT-W") == ["W01", "W02"]
    assert wafers_of(session, children[0].lot_no) == ["W02", "W03"]


def test_die_quantities_are_scaled_to_the_lots_quantity_after_rejects(session, receive):
    # 300 dies received, 150 left: each unit stands for two dies.
    lot = receive(300, lot_no="LOT-R", wafers=RECEIPT["wafers"])
    lot.quantity = 150
    services.split_lot(session, "planner", lot, [50, 100])
    assert wafers_of(session, "LOT-R") == ["W01"]
    assert wafers_of(session, "LOT-R.01") == ["W02", "W03"]


def test_wafers_without_die_quantities_count_alike(session, receive):
    lot = receive(90, lot_no="LOT-N", wafers=[{"wafer_id": w} for w in ("A", "B", "C")])
    services.split_lot(session, "planner", lot, [60, 30])
    assert (wafers_of(session, "LOT-N"), wafers_of(session, "LOT-N.01")) == (["A", "B"], ["C"])


def test_the_planner_chooses_each_new_lots_wafers(session, lot):
    children = services.split_lot(session, "planner", lot, [200, 60, 40],
                                  [["W03"], ["FAB1/W01"]])
    assert wafers_of(session, "LOT-W") == ["W02"]
    assert [wafers_of(session, c.lot_no) for c in children] == [["W03"], ["W01"]]
    split = session.scalars(select(LotEvent).where(LotEvent.lot_id == lot.id,
                                                   LotEvent.kind == "split")).one()
    assert split.data["wafers"] == ["W02"]
    assert [c["wafers"] for c in split.data["children"]] == [["W03"], ["W01"]]


@pytest.mark.parametrize("wafers,says", [
    ([["W01"]], "one per new lot"),
    ([["W01"], ["W09"]], "not a wafer of this lot"),
    ([["W01"], ["W01"]], "given to two new lots"),
    ([["W01", "W02"], ["W03"]], "keep at least one"),
    ([["W01"], []], "at least one wafer"),
], ids=["count", "unknown", "twice", "parent-keeps-none", "empty"])
def test_a_wafer_choice_that_does_not_fit_is_refused(session, lot, wafers, says):
    err = refused(session, lambda: services.split_lot(session, "planner", lot, [100, 100, 100],
                                                      wafers), InvalidInput, "invalid")
    assert says in str(err.fields["wafers"][0])


def test_a_wafer_id_of_two_fab_lots_must_name_its_fab_lot(session, receive):
    a = receive(100, lot_no="A", wafers=[{"wafer_id": "W1", "die_qty": 100}])
    b = receive(100, lot_no="B", fab_lot="FAB2", wafers=[{"wafer_id": "W1", "die_qty": 100},
                                                         {"wafer_id": "W2", "die_qty": 0}])
    services.merge_lots(session, "planner", [a, b])
    err = refused(session, lambda: services.split_lot(session, "planner", a, [100, 100],
                                                      [["W1"]]), InvalidInput, "invalid")
    assert "FAB_LOT/WAFER_ID" in str(err.fields["wafers"][0])
    services.split_lot(session, "planner", a, [100, 100], [["FAB2/W1"]])
    assert wafers_of(session, "A.01") == ["W1"]


def test_the_api_takes_the_wafers_of_each_child(api, session, lot):
    caller = api("planner")
    resp = caller.post("/lots/LOT-W/split", json={"quantities": [200, 100],
                                                   "wafers": [["W01"]]})
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert (body["parent"]["wafer_count"], body["children"][0]["wafer_count"]) == (2, 1)
    assert wafers_of(session, "LOT-W.01") == ["W01"]
    refused(session, lambda: caller.post("/lots/LOT-W/split", json={
        "quantities": [100, 100], "wafers": [["W09"]]}), 422, "invalid", "wafers")
    refused(session, lambda: caller.post("/lots/LOT-W/split", json={
        "quantities": [100, 100], "wafers": "W02"}), 422, "invalid", "wafers")


def test_the_lot_page_splits_with_chosen_wafers(client, session, lot, make_user, login):
    login(make_user("planner"))
    page = text(client.get("/lots/LOT-W"))
    assert 'name="wafers"' in page
    resp = client.post("/lots/LOT-W/split", data={"quantities": "200, 60, 40",
                                                  "wafers": "W02\nW03\n"})
    assert resp.status_code == 303
    assert (wafers_of(session, "LOT-W"), wafers_of(session, "LOT-W.01"),
            wafers_of(session, "LOT-W.02")) == (["W01"], ["W02"], ["W03"])


def test_the_lot_page_shows_a_wafer_refusal_beside_the_wafers(client, session, lot, make_user,
                                                              login):
    login(make_user("planner"))
    body = refused(session, lambda: client.post("/lots/LOT-W/split", data={
        "quantities": "200, 100", "wafers": "W01 W02 W03"}), 422)
    assert "keep at least one" in body
    assert 'class="field has-error"' in body and 'id="f-split-wafers"' in body
    bad_quantity = refused(session, lambda: client.post("/lots/LOT-W/split", data={
        "quantities": "200, 50", "wafers": ""}), 422)
    assert "Must add up to 300" in bad_quantity


# --- the genealogy picture ------------------------------------------------------------

def test_the_picture_writes_quantities_on_its_edges():
    nodes = [svg.Node(key=k, label=k, state="queued", href=f"/{k}") for k in ("A", "A.01")]
    picture = svg.genealogy(nodes, [svg.Link("A", "A.01", "split", 1234)],
                            [svg.Outbound("1", "Shipment 1", "OEM", ("A.01",), "/s/1",
                                          quantities=(("A.01", 77),))])
    assert '<text class="g-qty-text"' in picture
    assert ">1,234</text>" in picture and ">77</text>" in picture


def test_the_trace_page_explains_line_types_and_shows_split_quantities(
        client, session, lot, make_user, login):
    services.split_lot(session, "planner", lot, [250, 50])
    session.commit()
    login(make_user("qa"))
    body = text(client.get("/trace/lots/LOT-W"))
    assert ">50</text>" in body
    for line in ("g-line-split", "g-line-merge", "g-line-ship", "g-line-back"):
        assert f'class="line {line}"' in body


def test_received_lots_due_today_are_not_late(session, receive):
    lot = receive(10, lot_no="LOT-T", due_date=services.plant_date(utcnow()))
    assert not services.is_late(lot, services.plant_date())
