"""`mes check`: the demo plant checks clean; every invariant, broken by raw SQL, makes the
command exit non-zero with a readable line naming the lot."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, insert, select, text

from mes.catalog.models import Customer, Product
from mes.db import utcnow
from mes.errors import DomainError
from mes.floor import services as floor
from mes.floor.models import Lot, LotEdge, LotEvent, StepRun
from mes.integrity import check
from mes.quality import services as quality
from mes.quality.models import Hold
from mes.shipping import services as shipping


def _problem_lines(result: Any) -> list[str]:
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines()[-1].endswith("problem(s) found.")
    return [line for line in result.output.splitlines()
            if line.split(":")[0] in ("quantity", "hold", "shipping", "genealogy", "audit",
                                      "customer")]


def _lot(session, **where: Any) -> Lot:
    stmt = select(Lot).filter_by(**where).order_by(Lot.id)
    return session.scalars(stmt).first()


def _ship_one(session) -> Lot:
    """Ship the first demo lot that may ship, through the shipping service."""
    for lot in session.scalars(select(Lot).where(Lot.state == "completed",
                                                 Lot.open_holds == 0).order_by(Lot.id)):
        try:
            with session.begin_nested():
                shipping.create_shipment(session, "test", {
                    "customer": lot.customer.code, "po": "PO-1", "lots": [lot.lot_no]})
            return lot
        except DomainError:
            continue
    pytest.fail("no demo lot could ship")


def test_the_demo_plant_checks_clean(run_check):
    result = run_check()
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == "All invariants hold."
    assert "received =" in result.output


def test_shipping_scrapping_and_reworking_through_the_services_keeps_it_clean(demo, run_check):
    before = check(demo).counts
    shipped = _ship_one(demo)
    held = _lot(demo, state="queued", open_holds=0)
    hold = quality.hold_lot(demo, "qa", held, reason="HOLD-ENG", comment="check")
    quality.release_hold(demo, "qa2", hold, {"disposition": "scrap", "comment": "bad",
                                             "scrap_qty": 3, "scrap_reason": "SCRAP-ENG"})
    again = demo.scalars(select(Lot).where(Lot.state == "queued", Lot.open_holds == 0,
                                           Lot.step_seq >= 2, Lot.id != held.id)
                         .order_by(Lot.id)).first()
    hold = quality.hold_lot(demo, "qa", again, reason="HOLD-ENG", comment="check")
    quality.release_hold(demo, "qa2", hold, {
        "disposition": "rework", "comment": "redo",
        "rework_step": floor.route_steps(again)[0].code})
    demo.flush()
    report = check(demo)
    assert report.ok, report.lines()
    assert again.step_seq == 1
    assert report.counts["shipped"] == before["shipped"] + 1
    assert report.counts["scrapped"] == before["scrapped"] + 3
    assert shipped.state == "shipped"
    assert run_check().exit_code == 0


def test_a_lot_quantity_edited_by_hand_is_found(demo, run_check):
    lot = _lot(demo, state="queued", open_holds=0)
    demo.execute(text("UPDATE lot SET quantity = quantity + 7 WHERE id = :id"), {"id": lot.id})
    lines = _problem_lines(run_check())
    assert any(lot.lot_no in line and "holds" in line and "history leaves" in line
               for line in lines), lines
    assert any("received" in line and line.startswith("quantity") for line in lines), lines


def test_a_track_out_that_loses_units_is_found(demo, run_check):
    ev = demo.execute(select(LotEvent.id, LotEvent.lot_id).where(
        LotEvent.kind == "track_out").order_by(LotEvent.id).limit(1)).one()
    lot_no = demo.scalar(select(Lot.lot_no).where(Lot.id == ev.lot_id))
    demo.execute(text("UPDATE lot_event SET qty_out = qty_out - 1 WHERE id = :id"),
                 {"id": ev.id})
    lines = _problem_lines(run_check())
    assert any(f"lot {lot_no}: track_out event {ev.id}" in line and "went in" in line
               for line in lines), lines


def test_a_step_run_whose_counts_do_not_add_up_is_found(demo, run_check):
    run = demo.execute(select(StepRun.id, StepRun.lot_id).where(
        StepRun.finished_at.is_not(None)).order_by(StepRun.id).limit(1)).one()
    lot_no = demo.scalar(select(Lot.lot_no).where(Lot.id == run.lot_id))
    demo.execute(text("UPDATE step_run SET good_qty = good_qty + 2 WHERE id = :id"),
                 {"id": run.id})
    lines = _problem_lines(run_check())
    assert any(f"lot {lot_no}: step run {run.id}" in line for line in lines), lines


def test_a_split_edge_with_a_wrong_quantity_is_found(demo, run_check):
    edge = demo.execute(select(LotEdge.id, LotEdge.child_id, LotEdge.parent_id).where(
        LotEdge.kind == "split").order_by(LotEdge.id).limit(1)).one()
    child = demo.scalar(select(Lot.lot_no).where(Lot.id == edge.child_id))
    parent = demo.scalar(select(Lot.lot_no).where(Lot.id == edge.parent_id))
    demo.execute(text("UPDATE lot_edge SET qty = qty + 1 WHERE id = :id"), {"id": edge.id})
    lines = _problem_lines(run_check())
    assert any(f"lot {child}: split from {parent}" in line for line in lines), lines
    assert any(f"lot {parent}: its splits handed out" in line for line in lines), lines


def test_a_merge_edge_with_a_wrong_quantity_is_found(demo, run_check):
    edge = demo.execute(select(LotEdge.id, LotEdge.parent_id).where(
        LotEdge.kind == "merge").order_by(LotEdge.id).limit(1)).one()
    merged = demo.scalar(select(Lot.lot_no).where(Lot.id == edge.parent_id))
    demo.execute(text("UPDATE lot_edge SET qty = qty - 1 WHERE id = :id"), {"id": edge.id})
    lines = _problem_lines(run_check())
    assert any(f"lot {merged}: merged into" in line for line in lines), lines


def test_a_scrap_that_takes_more_than_it_says_is_found(demo, run_check):
    lot = _lot(demo, state="queued", open_holds=0)
    hold = quality.hold_lot(demo, "qa", lot, reason="HOLD-ENG", comment="check")
    quality.release_hold(demo, "qa2", hold, {"disposition": "scrap", "comment": "bad",
                                             "scrap_qty": 3, "scrap_reason": "SCRAP-ENG"})
    demo.flush()
    demo.execute(text("UPDATE lot_event SET qty_out = qty_out - 1 WHERE lot_id = :id "
                      "AND kind = 'scrap'"), {"id": lot.id})
    demo.execute(text("UPDATE lot SET quantity = quantity - 1 WHERE id = :id"), {"id": lot.id})
    lines = _problem_lines(run_check())
    assert any(f"lot {lot.lot_no}: scrap event" in line and "scraps 3" in line
               for line in lines), lines


def test_a_track_in_while_on_hold_is_found(demo, run_check):
    hold = demo.scalars(select(Hold).where(Hold.status == "open").order_by(Hold.id)).first()
    lot = hold.lot
    demo.execute(insert(LotEvent.__table__), {
        "lot_id": lot.id, "kind": "track_in", "at": utcnow(), "by": "mallory",
        "step_code": lot.step_code, "equipment": None, "qty_in": lot.quantity,
        "qty_out": None, "data": {}})
    lines = _problem_lines(run_check())
    assert any(f"lot {lot.lot_no}: track_in event" in line
               and f"while hold {hold.id} was open" in line for line in lines), lines


def test_a_hold_closed_behind_the_lots_back_is_found(demo, run_check):
    hold = demo.scalars(select(Hold).where(Hold.status == "open").order_by(Hold.id)).first()
    lot_no = hold.lot.lot_no
    demo.execute(text("UPDATE hold SET status = 'released' WHERE id = :id"), {"id": hold.id})
    lines = _problem_lines(run_check())
    assert any(f"lot {lot_no}: open holds by its history" in line for line in lines), lines
    assert any(f"lot {lot_no}: counts" in line for line in lines), lines


def test_a_lot_shipped_before_it_completed_is_found(demo, run_check):
    lot = _lot(demo, state="queued", open_holds=0)
    demo.execute(insert(LotEvent.__table__), {
        "lot_id": lot.id, "kind": "ship", "at": utcnow(), "by": "mallory",
        "step_code": lot.step_code, "equipment": None, "qty_in": None, "qty_out": None,
        "data": {"quantity": lot.quantity}})
    demo.execute(text("UPDATE lot SET state = 'shipped' WHERE id = :id"), {"id": lot.id})
    lines = _problem_lines(run_check())
    assert any(line.startswith("shipping:") and f"lot {lot.lot_no}: ship event" in line
               and "shipped while queued, not completed" in line for line in lines), lines


def test_a_shipment_row_for_a_lot_that_did_not_ship_is_found(demo, run_check):
    shipped = _ship_one(demo)
    demo.flush()
    demo.execute(text("UPDATE lot SET state = 'completed' WHERE id = :id"), {"id": shipped.id})
    lines = _problem_lines(run_check())
    assert any(f"lot {shipped.lot_no}: is on a shipment but completed" in line
               for line in lines), lines


def test_a_cycle_in_the_genealogy_is_found(demo, run_check):
    edge = demo.execute(select(LotEdge).where(LotEdge.kind == "split")
                        .order_by(LotEdge.id).limit(1)).scalar_one()
    parent = demo.scalar(select(Lot.lot_no).where(Lot.id == edge.parent_id))
    # The child handed units back to its parent at the very moment it was split off.
    demo.execute(text("INSERT INTO lot_edge (parent_id, child_id, kind, qty, step_code, at, "
                      "by) SELECT child_id, parent_id, 'split', 0, step_code, at, by "
                      "FROM lot_edge WHERE id = :id"), {"id": edge.id})
    lines = _problem_lines(run_check())
    assert any(f"genealogy: lot {parent}: descends from itself" in line
               for line in lines), lines


def test_a_split_child_merged_back_later_is_not_a_cycle(demo):
    # The demo merges split children back into their parents: a loop of lot ids, forward in
    # time, which is a legitimate genealogy.
    loops = demo.scalar(select(func.count()).select_from(LotEdge).where(
        LotEdge.kind == "merge", LotEdge.child_id.in_(
            select(LotEdge.parent_id).where(LotEdge.kind == "split"))))
    assert loops > 0
    assert not [p for p in check(demo).problems if p.check == "genealogy"]


def test_an_edge_older_than_its_lot_is_found(demo, run_check):
    edge = demo.execute(select(LotEdge).where(LotEdge.kind == "split")
                        .order_by(LotEdge.id).limit(1)).scalar_one()
    child = demo.scalar(select(Lot.lot_no).where(Lot.id == edge.child_id))
    demo.execute(text("UPDATE lot SET created_at = :at WHERE id = :id"),
                 {"at": utcnow(), "id": edge.child_id})
    lines = _problem_lines(run_check())
    assert any(f"genealogy: lot {child}: is the child of split edge" in line
               for line in lines), lines


def test_an_edited_audit_record_is_found(demo, run_check):
    lot = _lot(demo, state="queued", open_holds=0)
    demo.execute(text("UPDATE audit_event SET actor = 'mallory' WHERE subject_type = 'lot' "
                      "AND subject_key = :key AND seq = 1"), {"key": lot.lot_no})
    lines = _problem_lines(run_check())
    assert any(line.startswith("audit: audit trail broken") and f"lot:{lot.lot_no}" in line
               for line in lines), lines


def test_a_lot_row_pointing_past_its_chain_is_found(demo, run_check):
    lot = _lot(demo, state="queued", open_holds=0)
    demo.execute(text("DELETE FROM audit_event WHERE subject_type = 'lot' AND "
                      "subject_key = :key AND seq = :seq"),
                 {"key": lot.lot_no, "seq": lot.audit_seq})
    lines = _problem_lines(run_check())
    assert any(f"audit: lot {lot.lot_no}: its row names audit record #{lot.audit_seq}" in line
               for line in lines), lines


def test_a_lot_in_the_plant_of_another_customer_than_its_products_is_found(demo, run_check):
    """A product moved to another customer by hand under its lots: each lot still in the
    plant is named; its shipped lots went to the customer they belonged to and are not."""
    product_id, customer_id = demo.execute(
        select(Product.id, Product.customer_id).join(Lot, Lot.product_id == Product.id)
        .where(Product.customer_id.is_not(None), Lot.state == "shipped")
        .order_by(Product.id).limit(1)).one()
    other, other_code = demo.execute(select(Customer.id, Customer.code).where(
        Customer.id != customer_id).order_by(Customer.id).limit(1)).one()
    product = demo.get(Product, product_id)
    in_plant = set(demo.scalars(select(Lot.lot_no).where(
        Lot.product_id == product_id, Lot.state.in_(("queued", "running", "completed")))))
    shipped = set(demo.scalars(select(Lot.lot_no).where(Lot.product_id == product_id,
                                                        Lot.state == "shipped")))
    assert in_plant and shipped
    demo.execute(text("UPDATE product SET customer_id = :c WHERE id = :id"),
                 {"c": other, "id": product_id})
    lines = [line for line in _problem_lines(run_check()) if line.startswith("customer:")]
    named = {line.split()[2].rstrip(":") for line in lines}
    assert named == in_plant, lines
    assert all(f"its product {product.code} is made for {other_code}" in line
               for line in lines), lines
