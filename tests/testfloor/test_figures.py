"""The figures the certificate, the portal and the reports read of a lot's test insertion
(mes.testfloor.figures): a retest adds good parts, never units; a resume adds units; an
insertion's own record and its closing SBA verdict stand; voided runs count nowhere."""

from __future__ import annotations

from mes.testfloor import figures
from mes.testfloor.models import TestInsertion, TestRun
from tests.floor.helpers import advance


def _run(session, lot, units, first, final, *, pass_kind=None, insertion=None, pat=None,
         sba=None, final_bins=None):
    run = TestRun(lot_id=lot.id, product_id=lot.product_id, customer_id=lot.customer_id,
                  step_code="FT", source="bins", parts_tested=units, units=units,
                  first_pass_good=first, final_good=final,
                  first_pass_yield=100.0 * first / units, final_yield=100.0 * final / units,
                  pass_kind=pass_kind, insertion_id=insertion.id if insertion else None,
                  pat=pat or {}, sba=sba or {}, final_bins=final_bins or {})
    session.add(run)
    session.flush()
    return run


def test_a_retest_adds_good_a_resume_adds_units_and_a_voided_run_nothing(session, receive):
    lot = advance(session, receive(1000, lot_no="LOT-F"), 2)
    _run(session, lot, 600, 570, 570)  # P1, stopped after 600 units
    _run(session, lot, 400, 380, 380)  # resume: 400 more units (more than the 50 failures)
    _run(session, lot, 50, 30, 30)  # R1 of the 50 failures: 30 pass
    voided = _run(session, lot, 20, 20, 20)
    voided.voided_at = voided.created_at
    session.flush()
    [ins] = figures.insertion_figures(session, [lot.id])
    # Units 600 + 400; first pass 570 + 380 = 950; final 950 + 30 = 980.
    assert (ins.runs, ins.retests, ins.units, ins.first_pass_good, ins.final_good) == (
        3, 1, 1000, 950, 980)
    assert (ins.first_pass_yield, ins.final_yield) == (95.0, 98.0)


def test_the_insertions_record_and_its_closing_verdict_stand(session, receive):
    lot = advance(session, receive(100, lot_no="LOT-I"), 2)
    row = TestInsertion(lot_id=lot.id, product_id=lot.product_id, step_code="FT",
                        state="closed", passes=[{"pass": "P1"}, {"pass": "R1"}], units=100,
                        first_pass_good=90, final_good=97,
                        pat={"limit_set": {"name": "P1-FT-PAT", "version": 2},
                             "dynamic": True, "escapes": 0, "removed": 2},
                        sba={"status": "ok"})
    session.add(row)
    session.flush()
    # Each file was judged alone before the close (a retest file of 10 units, 7 good,
    # looked bad); the close's verdict on the whole insertion stands.
    _run(session, lot, 100, 90, 90, pass_kind="first", insertion=row,
         sba={"status": "level1"})
    _run(session, lot, 10, 7, 7, pass_kind="retest", insertion=row,
         sba={"status": "level2"})
    [ins] = figures.insertion_figures(session, [lot.id])
    assert (ins.units, ins.first_pass_good, ins.final_good, ins.retests) == (100, 90, 97, 1)
    assert ins.sba == {"status": "ok"}
    assert ins.pat == {"limit_set": "P1-FT-PAT v2", "screened": False, "dynamic": True,
                       "escapes": 0, "removed": 2}


def test_a_run_without_pat_fields_counts_the_pat_bin_and_static_outliers_as_escapes(
        session, receive):
    lot = advance(session, receive(100, lot_no="LOT-S"), 2)
    # Static limits of no versioned set, no PAT bin defined, no re-screen: the 3 good parts
    # outside the static limits in force stayed good, escapes, not removed parts.
    _run(session, lot, 100, 95, 95, pat={"mode": "static", "failures": 3,
                                         "per_test": {"1000": {"static": {"id": 1}}}},
         final_bins={"1": 95, "9": 5})
    [ins] = figures.insertion_figures(session, [lot.id])
    assert ins.pat == {"limit_set": "unversioned", "screened": False, "dynamic": False,
                       "escapes": 3, "removed": 0}
