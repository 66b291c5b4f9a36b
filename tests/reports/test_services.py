"""Every report on the hand-built history of conftest.py, each figure worked out by hand
in the comments next to it."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest
from sqlalchemy import literal, select, union_all

from mes.catalog.models import Customer, Equipment, EquipmentStateChange, Route
from mes.errors import Forbidden, InvalidInput
from mes.floor.models import Lot, StepRun
from mes.reports import services
from mes.reports.services import ReportQuery
from tests.reports.helpers import END, NOW, START, T


def Q(**kw) -> ReportQuery:
    return ReportQuery(start=kw.pop("start", START), end=kw.pop("end", END), **kw)


def oem(session) -> int:
    return session.scalar(select(Customer.id).where(Customer.code == "OEM"))


# --- WIP -------------------------------------------------------------------------------

@pytest.fixture
def plant_config(app):
    """Lateness is judged against the plant's date, from the configured plant time zone."""
    with app.app_context():
        yield


@pytest.mark.usefixtures("plant_config")
def test_wip_per_step_counts_lots_quantities_holds_lateness_and_age(session, history):
    rows = services.wip(session, Q(), now=NOW).rows
    assert rows == [
        # D: running at SAW since 03-12 09:00 = 3 d 15 h = 87 h before now, no due date.
        {"step": "SAW", "lots": 1, "quantity": 300, "on_hold": 0, "running": 1, "late": 0,
         "oldest_at_step": T(3, 12, 9).isoformat(), "oldest_age_h": 87.0,
         "age_lt_1d": 0, "age_1_3d": 0, "age_3_7d": 1, "age_gt_7d": 0},
        # E: at FT since 02-27 12:00 = 1.5 d to 03-01 + 15 d = 396 h, two holds, due 03-01.
        {"step": "FT", "lots": 1, "quantity": 80, "on_hold": 1, "running": 0, "late": 1,
         "oldest_at_step": T(2, 27, 12).isoformat(), "oldest_age_h": 396.0,
         "age_lt_1d": 0, "age_1_3d": 0, "age_3_7d": 0, "age_gt_7d": 1},
        # C: at PACK since 03-09 15:30 = 6 d 8.5 h = 152.5 h, held, due 03-08.
        {"step": "PACK", "lots": 1, "quantity": 40, "on_hold": 1, "running": 0, "late": 1,
         "oldest_at_step": T(3, 9, 15, 30).isoformat(), "oldest_age_h": 152.5,
         "age_lt_1d": 0, "age_1_3d": 0, "age_3_7d": 1, "age_gt_7d": 0},
    ]


@pytest.mark.usefixtures("plant_config")
def test_wip_per_product_and_customer(session, history):
    # P1: D (300) and E (80); P2: C (40). Same split by customer: OEM = P1's, IND = P2's.
    by_product = services.wip(session, Q(by="product"), now=NOW).rows
    assert [(r["product"], r["lots"], r["quantity"], r["on_hold"], r["late"],
             r["oldest_age_h"]) for r in by_product] == [("P1", 2, 380, 1, 1, 396.0),
                                                         ("P2", 1, 40, 1, 1, 152.5)]
    by_customer = services.wip(session, Q(by="customer"), now=NOW).rows
    assert [(r["customer"], r["lots"], r["quantity"]) for r in by_customer] == [
        ("IND", 1, 40), ("OEM", 2, 380)]


@pytest.mark.usefixtures("plant_config")
def test_wip_filters_and_customer_scope(session, history):
    assert [r["step"] for r in services.wip(session, Q(product="P1"), now=NOW).rows] == [
        "SAW", "FT"]
    assert [r["step"] for r in services.wip(session, Q(step="FT"), now=NOW).rows] == ["FT"]
    scoped = services.wip(session, Q(customer_id=oem(session)), now=NOW).rows
    assert [(r["step"], r["quantity"]) for r in scoped] == [("SAW", 300), ("FT", 80)]
    # A customer naming another customer gets nothing of theirs.
    assert services.wip(session, Q(customer="IND", customer_id=oem(session)), now=NOW).rows == []
    assert services.wip(session, Q(product="NOPE"), now=NOW).rows == []


@pytest.mark.usefixtures("plant_config")
def test_late_lots_most_overdue_first(session, history):
    rows = services.late_lots(session, Q(), now=NOW).rows
    # E due 03-01 (15 days late on 03-16), C due 03-08 (8 days); D has no due date.
    assert [(r["lot_no"], r["due_date"], r["days_late"], r["on_hold"], r["at_step_h"])
            for r in rows] == [("E", "2026-03-01", 15, True, 396.0),
                               ("C", "2026-03-08", 8, True, 152.5)]
    assert [r["lot_no"] for r in services.late_lots(session, Q(limit=1), now=NOW).rows] == [
        "E"]


# --- yield -----------------------------------------------------------------------------

def test_yield_per_step_and_product_with_first_pass_and_final_at_test(session, history):
    rows = services.yield_report(session, Q()).rows
    assert rows == [
        # SAW P1: A 100→95 + B 200→180 = 300 in, 275 good; 275/300 = 91.666… %.
        {"step": "SAW", "product": "P1", "runs": 2, "quantity_in": 300, "good": 275,
         "rejected": 25, "yield": 91.67, "tested_units": None, "first_pass_yield": None,
         "final_yield": None},
        {"step": "SAW", "product": "P2", "runs": 1, "quantity_in": 50, "good": 50,
         "rejected": 0, "yield": 100.0, "tested_units": None, "first_pass_yield": None,
         "final_yield": None},
        # FT P1: A 92→90 + B 180→170 = 272 → 260 = 95.588 %; test runs 92 + 180 units,
        # first-pass 85 + 160 = 245 → 90.074 %, final 90 + 170 = 260 → 95.588 %.
        {"step": "FT", "product": "P1", "runs": 2, "quantity_in": 272, "good": 260,
         "rejected": 12, "yield": 95.59, "tested_units": 272, "first_pass_yield": 90.07,
         "final_yield": 95.59},
        # FT P2: C 50→40; its test run 50 units, 36 first-pass, 40 final.
        {"step": "FT", "product": "P2", "runs": 1, "quantity_in": 50, "good": 40,
         "rejected": 10, "yield": 80.0, "tested_units": 50, "first_pass_yield": 72.0,
         "final_yield": 80.0},
        {"step": "PACK", "product": "P1", "runs": 2, "quantity_in": 260, "good": 260,
         "rejected": 0, "yield": 100.0, "tested_units": None, "first_pass_yield": None,
         "final_yield": None},
    ]


def test_yield_leaves_voided_test_runs_out(session, history):
    from mes.testfloor.models import TestRun

    lot_b = session.scalar(select(Lot).where(Lot.lot_no == "B"))
    run_b = session.scalar(select(TestRun).where(TestRun.lot_id == lot_b.id))
    run_b.voided_at = run_b.created_at
    session.commit()
    ft = next(r for r in services.yield_report(session, Q()).rows
              if (r["step"], r["product"]) == ("FT", "P1"))
    # Only A's run counts: 92 units, 85 first-pass, 90 final.
    assert (ft["tested_units"], ft["first_pass_yield"], ft["final_yield"]) == (
        92, 92.39, 97.83)


def test_yield_sums_each_lots_insertion_a_retest_adds_good_not_units(session, history):
    from mes.testfloor.models import TestRun

    lot_a = session.scalar(select(Lot).where(Lot.lot_no == "A"))
    p1 = session.scalar(select(TestRun).where(TestRun.lot_id == lot_a.id))
    # A's R1 retests its 2 final failures (92 units, 90 good): 1 passes.
    session.add(TestRun(lot_id=lot_a.id, product_id=lot_a.product_id,
                        customer_id=lot_a.customer_id, step_code="FT", source="bins",
                        parts_tested=2, units=2, first_pass_good=1, final_good=1,
                        first_pass_yield=50.0, final_yield=50.0,
                        created_at=p1.created_at + timedelta(hours=1)))
    session.commit()
    ft = next(r for r in services.yield_report(session, Q()).rows
              if (r["step"], r["product"]) == ("FT", "P1"))
    # Units stay 92 + 180 = 272; first pass 85 + 160 = 245 → 90.07 %; final
    # 90 + 1 + 170 = 261 → 95.955 %.
    assert (ft["tested_units"], ft["first_pass_yield"], ft["final_yield"]) == (
        272, 90.07, 95.96)


def test_yield_range_edges_count_track_outs_of_whole_days(session, history):
    # E's SAW track-out (02-27 12:00) is outside 03-02..03-15 and inside 02-27..02-27.
    assert services.yield_report(session, Q(start=date(2026, 2, 27),
                                            end=date(2026, 2, 27))).rows[0] == {
        "step": "SAW", "product": "P1", "runs": 1, "quantity_in": 87, "good": 80,
        "rejected": 7, "yield": 91.95, "tested_units": None, "first_pass_yield": None,
        "final_yield": None}
    # 03-03 only: A's FT and PACK, B's SAW and FT (B's PACK ended 03-04 02:00).
    rows = services.yield_report(session, Q(start=date(2026, 3, 3), end=date(2026, 3, 3))).rows
    assert [(r["step"], r["quantity_in"], r["good"]) for r in rows] == [
        ("SAW", 200, 180), ("FT", 272, 260), ("PACK", 90, 90)]


def test_yield_scoped_to_a_customer(session, history):
    rows = services.yield_report(session, Q(customer_id=oem(session))).rows
    assert {r["product"] for r in rows} == {"P1"}
    assert services.yield_report(session, Q(customer="IND", customer_id=oem(session))).rows == []


def test_yield_trend_per_week_and_per_day(session, history):
    rows = services.yield_trend(session, Q()).rows
    # Week 10 (03-02..03-08), P1, all six track-outs of A and B: in 100+92+90+200+180+170
    # = 832, good 95+90+90+180+170+170 = 795 → 95.552 %. Week 11, P2: C 100 in, 90 good.
    assert rows == [
        {"product": "P1", "period": "2026-W10", "period_start": "2026-03-02",
         "quantity_in": 832, "good": 795, "yield": 95.55},
        {"product": "P2", "period": "2026-W11", "period_start": "2026-03-09",
         "quantity_in": 100, "good": 90, "yield": 90.0},
    ]
    daily = services.yield_trend(session, Q(period="day", step="SAW")).rows
    assert [(r["product"], r["period"], r["yield"]) for r in daily] == [
        ("P1", "2026-03-02", 95.0), ("P1", "2026-03-03", 90.0), ("P2", "2026-03-09", 100.0)]


def test_final_test_yield_counts_only_the_last_test_step_of_the_route(session, history):
    report = services.final_test_yield_trend(session, Q())
    # FT is QFN's only (so last) test step. Week 10, P1: A 92 -> 90 and B 180 -> 170:
    # 260 / 272 = 95.588 %. Week 11, P2: C 50 -> 40 = 80 %. (SAW and PACK do not count.)
    assert report.rows == [
        {"product": "P1", "period": "2026-W10", "period_start": "2026-03-02",
         "quantity_in": 272, "good": 260, "yield": 95.59},
        {"product": "P2", "period": "2026-W11", "period_start": "2026-03-09",
         "quantity_in": 50, "good": 40, "yield": 80.0},
    ]
    assert report.extra == {"measure": "final_test"}
    at_saw = services.final_test_yield_trend(session, Q(step="SAW"))
    assert at_saw.extra == {"measure": "step"}
    # SAW, week 10, P1: (95 + 180) / (100 + 200) = 91.67; week 11, P2: 50 / 50.
    assert [(r["product"], r["yield"]) for r in at_saw.rows] == [("P1", 91.67), ("P2", 100.0)]


def test_final_test_is_the_later_of_two_test_steps(session, history):
    from sqlalchemy import update

    from mes.catalog.models import RouteStep

    # Make PACK (seq 3) a test step: now it is the final test, where A and B lose nothing.
    session.execute(update(RouteStep).where(RouteStep.code == "PACK").values(kind="test"))
    session.flush()
    rows = services.final_test_yield_trend(session, Q()).rows
    # Week 10, P1: A 90 -> 90, B 170 -> 170; C still queued at PACK (no track-out).
    assert [(r["product"], r["quantity_in"], r["yield"]) for r in rows] == [("P1", 260, 100.0)]


def test_reject_and_scrap_pareto_largest_first(session, history):
    report = services.rejects(session, Q())
    # R-CHIP at SAW 5 + 20; R-OPEN at FT 2 + 6 + 10; R-CHIP at FT 4; scrap S-DMG at FT 3
    # (E's 7 rejects are before the range). Total 50.
    assert report.rows == [
        {"reason": "R-CHIP", "step": "SAW", "category": "other", "quantity": 25,
         "kind": "reject", "share": 50.0, "cumulative": 50.0},
        {"reason": "R-OPEN", "step": "FT", "category": "other", "quantity": 18,
         "kind": "reject", "share": 36.0, "cumulative": 86.0},
        {"reason": "R-CHIP", "step": "FT", "category": "other", "quantity": 4,
         "kind": "reject", "share": 8.0, "cumulative": 94.0},
        {"reason": "S-DMG", "step": "FT", "category": "other", "quantity": 3,
         "kind": "scrap", "share": 6.0, "cumulative": 100.0},
    ]
    assert report.extra == {"total": 50}
    scoped = services.rejects(session, Q(customer_id=oem(session)))
    # Without C's 10 R-OPEN: 25, 8, 4 rejected and 3 scrapped, by customer category only
    # (every code of the test plant is "other").
    assert [(r["reason"], r["step"], r["quantity"]) for r in scoped.rows] == [
        ("other", None, 37), ("other", None, 3)]
    assert [r["quantity"] for r in services.rejects(session, Q(step="SAW")).rows] == [25]


# --- cycle time ------------------------------------------------------------------------

CYCLE_ROWS = [
    # SAW: queue A 2 h, B 1 h, C 4 h → sorted 1, 2, 4: median 2; p90 at rank 0.9 × 2 = 1.8
    # → 2 + 0.8 × (4 − 2) = 3.6; mean 7/3. Process 3, 4, 0.5 → 0.5, 3, 4: median 3,
    # p90 3 + 0.8 × 1 = 3.8, mean 2.5.
    {"step": "SAW", "lots": 3, "queue_median_h": 2.0, "queue_p90_h": 3.6,
     "process_median_h": 3.0, "process_p90_h": 3.8, "queue_mean_h": 2.33,
     "process_mean_h": 2.5},
    # FT: queue A 24, B 1, C 2 → median 2, p90 2 + 0.8 × 22 = 19.6, mean 9; process 2, 6,
    # 1 → median 2, p90 2 + 0.8 × 4 = 5.2, mean 3.
    {"step": "FT", "lots": 3, "queue_median_h": 2.0, "queue_p90_h": 19.6,
     "process_median_h": 2.0, "process_p90_h": 5.2, "queue_mean_h": 9.0,
     "process_mean_h": 3.0},
    # PACK: queue A 1, B 6 → median 3.5, p90 1 + 0.9 × 5 = 5.5; process 1, 2 → 1.5, 1.9.
    {"step": "PACK", "lots": 2, "queue_median_h": 3.5, "queue_p90_h": 5.5,
     "process_median_h": 1.5, "process_p90_h": 1.9, "queue_mean_h": 3.5,
     "process_mean_h": 1.5},
]


def test_cycle_time_per_step_medians_and_90th_percentiles(session, history):
    assert services.cycle_time(session, Q()).rows == CYCLE_ROWS


def test_cycle_time_portable_percentiles_give_the_same_figures(session, history):
    assert services.cycle_time(session, Q(), portable=True).rows == CYCLE_ROWS


def test_cycle_time_filters(session, history):
    # OEM: lots A and B only. SAW queue 1, 2 → median 1.5, p90 1.9.
    rows = services.cycle_time(session, Q(customer_id=oem(session), step="SAW")).rows
    assert [(r["step"], r["lots"], r["queue_median_h"], r["queue_p90_h"]) for r in rows] == [
        ("SAW", 2, 1.5, 1.9)]


def test_lot_cycle_time_from_receipt_to_last_track_out(session, history):
    rows = services.lot_cycle_time(session, Q()).rows
    # A 03-02 08:00 → 03-03 17:00 = 33 h; B 03-03 06:00 → 03-04 02:00 = 20 h. G and H
    # finished before the range; C, D, E are still in WIP.
    assert rows == [{"product": "P1", "lots": 2, "cycle_median_h": 26.5,
                     "cycle_p90_h": 31.7, "cycle_mean_h": 26.5}]
    assert services.lot_cycle_time(session, Q(), portable=True).rows == rows


def test_percentile_cont_and_the_portable_method_agree_on_many_values(session, history):
    """Random durations in seconds, groups of 1 to 40 values: both methods, rounded to
    hours as the reports do, give identical figures."""
    rng = random.Random(11)
    parts = [select(literal(f"g{g:02d}").label("k"), literal(rng.randint(0, 400_000)).label("v"))
             for g in range(30) for _ in range(1 + g)]
    base = union_all(*parts).subquery()
    portable = services.distribution(session, base, "k", ("v",), portable=True)
    expected = {}
    for k in portable:
        values = sorted(float(v) for kk, v in session.execute(select(base.c.k, base.c.v))
                        if kk == k)
        expected[k] = {p: round(_cont(values, p) / 3600, 2) for p in services.PERCENTILES}
        assert {p: round(x / 3600, 2) for p, x in portable[k]["v"].items()} == expected[k]
    if session.get_bind().dialect.name == "postgresql":
        native = services.distribution(session, base, "k", ("v",), portable=False)
        assert {k: {p: round(x / 3600, 2) for p, x in d["v"].items()}
                for k, d in native.items()} == expected


def _cont(values: list[float], p: float) -> float:
    """percentile_cont by its definition."""
    pos = p * (len(values) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (pos - lo)


# --- holds -----------------------------------------------------------------------------

def test_open_holds_by_age_bucket_reason_and_source(app, session, history):
    report = services.holds(session, Q(), now=NOW)
    # H4 12 h old (<1d), H1 placed 03-10 08:00 = 5 d 16 h (3-7d), H5 since 02-01 (>30d).
    assert report.rows == [
        {"bucket": "<1d", "reason": "H-ENG", "source": "future", "count": 1,
         "oldest_placed_at": T(3, 15, 12).isoformat()},
        {"bucket": "3-7d", "reason": "H-ENG", "source": "manual", "count": 1,
         "oldest_placed_at": T(3, 10, 8).isoformat()},
        {"bucket": ">30d", "reason": "H-MAT", "source": "mass", "count": 1,
         "oldest_placed_at": T(2, 1).isoformat()},
    ]
    assert report.extra == {"open": 3}
    # A week later H4 is 7.5 days old (7-30d), H1 12 d 16 h, H5 still >30d.
    later = services.holds(session, Q(), now=NOW + timedelta(days=7)).rows
    assert [(r["bucket"], r["count"]) for r in later] == [("7-30d", 1), ("7-30d", 1),
                                                           (">30d", 1)]
    with app.app_context():  # a customer's holds follow the plant's PORTAL_HOLD_POLICY
        scoped = services.holds(session, Q(customer_id=oem(session)), now=NOW).rows
    assert [r["bucket"] for r in scoped] == ["<1d", ">30d"]


def test_dispositions_per_week_and_mean_time_to_disposition(app, session, history):
    report = services.dispositions(session, Q())
    # H2 placed 03-02 14:00, scrapped 20:00 (6 h, week 10); H3 03-09 16:00 → 03-11 16:00
    # released (48 h, week 11). Mean (6 + 48) / 2 = 27 h.
    assert report.rows == [
        {"week": "2026-W10", "week_start": "2026-03-02", "disposition": "scrap", "count": 1,
         "mean_hours_to_disposition": 6.0},
        {"week": "2026-W11", "week_start": "2026-03-09", "disposition": "release",
         "count": 1, "mean_hours_to_disposition": 48.0},
    ]
    assert report.extra == {"released": 2, "mean_hours_to_disposition": 27.0}
    with app.app_context():  # a customer's holds follow the plant's PORTAL_HOLD_POLICY
        scoped = services.dispositions(session, Q(customer_id=oem(session)))
    assert [r["disposition"] for r in scoped.rows] == ["scrap"]


# --- equipment -------------------------------------------------------------------------

def test_equipment_hours_in_each_e10_state(session, history):
    rows = {r["equipment"]: r for r in services.equipment(session, Q(), now=NOW).rows}
    # SAW-1 over 03-02 00:00 .. 03-16 00:00 (336 h): standby until 08:00 (8 h), productive
    # to 03-05 08:00 (72 h), unscheduled down 24 h, productive to 03-14 00:00 (184 h),
    # non-scheduled 48 h. Utilisation 256 / (336 − 48) = 88.89 %. Track-outs: A, B, C.
    # OEE: planned time 336 − 48 non-scheduled − 0 scheduled down = 288 h, availability
    # 256 / 288 = 88.89 %; the saw's ideal rate is 100 units/h, so the 100 + 200 + 50 units
    # in are 3.5 ideal hours: performance 3.5 / 256 = 1.37 %; quality (95 + 180 + 50) / 350
    # = 92.86 %; OEE = 3.5/288 × 325/350 = 3.25 / 288 = 1.13 %.
    assert rows["SAW-1"] == {
        "equipment": "SAW-1", "kind": "saw", "productive_h": 256.0, "standby_h": 8.0,
        "engineering_h": 0.0, "scheduled_down_h": 0.0, "unscheduled_down_h": 24.0,
        "non_scheduled_h": 48.0, "total_h": 336.0, "utilisation": 88.89, "lots_processed": 3,
        "availability": 88.89, "performance": 1.37, "quality": 92.86, "oee": 1.13}
    # TST-1 exists from 03-04: engineering 24 h, productive 03-05..03-10 (120 h), scheduled
    # down 12 h, standby 03-10 12:00 .. 03-16 (132 h): 288 h; 120 / 288 = 41.67 %.
    # Availability 120 / (288 − 12) = 43.48 %; the test step has no ideal rate: no
    # performance, no OEE; quality (90 + 170 + 40) / (92 + 180 + 50) = 93.17 %.
    assert rows["TST-1"] == {
        "equipment": "TST-1", "kind": "tester", "productive_h": 120.0, "standby_h": 132.0,
        "engineering_h": 24.0, "scheduled_down_h": 12.0, "unscheduled_down_h": 0.0,
        "non_scheduled_h": 0.0, "total_h": 288.0, "utilisation": 41.67, "lots_processed": 3,
        "availability": 43.48, "performance": None, "quality": 93.17, "oee": None}
    # TR-1 has no state records: no hours, no utilisation; it packed A and B, all good.
    assert rows["TR-1"]["total_h"] == 0.0 and rows["TR-1"]["utilisation"] is None
    assert rows["TR-1"]["lots_processed"] == 2
    assert (rows["TR-1"]["availability"], rows["TR-1"]["quality"], rows["TR-1"]["oee"]) == \
        (None, 100.0, None)


def test_equipment_hours_stop_at_now(session, history):
    # Asked on 03-12 00:00: SAW-1's second productive stretch is 03-06 08:00 .. 03-12
    # 00:00 = 136 h; the ten days total 240 h.
    row = next(r for r in services.equipment(session, Q(), now=T(3, 12)).rows
               if r["equipment"] == "SAW-1")
    assert (row["standby_h"], row["productive_h"], row["unscheduled_down_h"],
            row["non_scheduled_h"], row["total_h"]) == (8.0, 208.0, 24.0, 0.0, 240.0)


def test_equipment_per_kind_and_kind_filter(session, history):
    rows = services.equipment(session, Q(by="kind"), now=NOW).rows
    assert [(r["kind"], r["tools"], r["productive_h"], r["lots_processed"]) for r in rows] == [
        ("saw", 1, 256.0, 3), ("taper", 1, 0.0, 2), ("tester", 1, 120.0, 3)]
    assert [(r["kind"], r["oee"]) for r in rows] == [("saw", 1.13), ("taper", None),
                                                     ("tester", None)]
    assert [r["equipment"] for r in services.equipment(session, Q(kind="tester"),
                                                       now=NOW).rows] == ["TST-1"]


def test_oee_of_a_tool_worked_by_hand(session, history):
    """One tool over a day, every figure worked by hand: 24 h recorded, 2 h non-scheduled,
    4 h scheduled down (PM), 12 h productive, 6 h standby. Two track-outs at a step of
    ideal rate 500 units/h: 2,000 units in (1,900 good) and 2,500 in (2,400 good)."""
    route = session.scalar(select(Route).where(Route.code == "QFN"))
    step = next(st for st in route.steps if st.code == "SAW")
    tool = Equipment(code="SAW-9", kind="saw9", name="SAW-9", state="standby",
                     state_since=T(3, 3), created_at=T(3, 3))
    session.add(tool)
    session.flush()
    for at, state in ((T(3, 3), "non_scheduled"), (T(3, 3, 2), "scheduled_down"),
                      (T(3, 3, 6), "productive"), (T(3, 3, 18), "standby"),
                      (T(3, 4), "standby")):
        session.add(EquipmentStateChange(equipment_id=tool.id, to_state=state, at=at))
    lot_id = session.scalar(select(Lot.id).where(Lot.lot_no == "A"))
    for started, finished, qty, good in ((T(3, 3, 6), T(3, 3, 11), 2000, 1900),
                                         (T(3, 3, 11), T(3, 3, 18), 2500, 2400)):
        session.add(StepRun(lot_id=lot_id, route_id=route.id, step_seq=step.seq,
                            step_code="SAW", equipment_id=tool.id, arrived_at=started,
                            started_at=started, finished_at=finished, qty_in=qty,
                            good_qty=good, reject_qty=qty - good))
    step.ideal_uph = 500
    session.flush()
    q = Q(start=date(2026, 3, 3), end=date(2026, 3, 3), kind="saw9")
    [row] = services.equipment(session, q, now=NOW).rows
    # Planned = 24 − 2 − 4 = 18 h: availability 12 / 18 = 66.67 %. Ideal time 4,500 / 500
    # = 9 h: performance 9 / 12 = 75 %. Quality 4,300 / 4,500 = 95.56 %. OEE = 2/3 × 3/4
    # × 43/45 = 47.78 % (= 4,300 good units × 1/500 h / 18 h).
    assert (row["productive_h"], row["total_h"]) == (12.0, 24.0)
    assert (row["availability"], row["performance"], row["quality"], row["oee"]) == \
        (66.67, 75.0, 95.56, 47.78)


def test_equipment_refused_to_customer_users(session, history):
    with pytest.raises(Forbidden):
        services.equipment(session, Q(customer_id=oem(session)), now=NOW)


# --- delivery --------------------------------------------------------------------------

def test_delivery_per_customer_and_week_with_on_time_lots(session, history):
    rows = services.delivery(session, Q()).rows
    assert rows == [
        # S3 03-11 (week 11): G without a due date.
        {"customer": "IND", "week": "2026-W11", "week_start": "2026-03-09", "shipments": 1,
         "lots": 1, "quantity": 25, "on_time": 0, "late": 0, "no_due_date": 1,
         "on_time_pct": None},
        # S1 03-04: A due 03-04, on time (the due day itself counts).
        {"customer": "OEM", "week": "2026-W10", "week_start": "2026-03-02", "shipments": 1,
         "lots": 1, "quantity": 90, "on_time": 1, "late": 0, "no_due_date": 0,
         "on_time_pct": 100.0},
        # S2 03-10: B due 03-05 late, H due 03-12 on time.
        {"customer": "OEM", "week": "2026-W11", "week_start": "2026-03-09", "shipments": 1,
         "lots": 2, "quantity": 200, "on_time": 1, "late": 1, "no_due_date": 0,
         "on_time_pct": 50.0},
    ]
    scoped = services.delivery(session, Q(customer_id=oem(session)))
    assert {r["customer"] for r in scoped.rows} == {"OEM"}
    assert services.delivery(session, Q(customer="IND", customer_id=oem(session))).rows == []
    assert [r["lots"] for r in services.delivery(session, Q(product="P2")).rows] == [1]


# --- the query and CSV -----------------------------------------------------------------

def test_query_defaults_to_the_last_30_days_and_refuses_bad_ranges():
    q = services.make_query(None, {}, today=date(2026, 3, 16))
    assert (q.start, q.end) == (date(2026, 2, 15), date(2026, 3, 16))
    with pytest.raises(InvalidInput) as err:
        services.make_query(None, {"from": date(2026, 3, 2), "to": date(2026, 3, 1)})
    assert "from" in err.value.fields
    with pytest.raises(InvalidInput):
        services.make_query(None, {"from": date(2020, 1, 1), "to": date(2026, 3, 1)})


@pytest.mark.usefixtures("plant_config")
def test_csv_has_a_header_and_the_same_rows(session, history):
    text = services.to_csv(services.late_lots(session, Q(), now=NOW))
    assert text.splitlines() == [
        "lot_no,product,customer,step,state,quantity,due_date,days_late,on_hold,at_step_h",
        "E,P1,OEM,FT,queued,80,2026-03-01,15,true,396.0",
        "C,P2,IND,PACK,queued,40,2026-03-08,8,true,152.5"]
