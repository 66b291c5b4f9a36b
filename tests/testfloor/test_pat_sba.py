"""PAT (AEC-Q001) and SBA (AEC-Q002) through the test-floor services, with the check values
of PRODUCT.md and hand-computed histories."""

from __future__ import annotations

import itertools
import statistics
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select

from mes.catalog import services as cat
from mes.catalog.models import ReasonCode
from mes.db import utcnow
from mes.errors import Conflict, InvalidInput
from mes.floor.models import Lot
from mes.quality.models import Hold
from mes.testfloor import insertions, programs, services
from mes.testfloor.models import PatLimitSet, TestRun
from mes.testfloor.stats import PAT_METHOD
from mes.testfloor.stdf_writer import PartSpec, TestSpec
from tests.helpers import audit_codes, refused
from tests.testfloor.helpers import lot_at_final_test, receive_lot, stdf

pytestmark = pytest.mark.usefixtures("plant")

CHECK_PAT = [*range(1, 20), 100]
CHECK_LO, CHECK_HI = -31.722222, 52.722222
CHECK_YIELDS = [95.0, 96.0, 94.5, 95.5, 96.5, 95.0]
SYL1, SYL2 = 93.208726, 92.472746


@pytest.fixture
def new_lot(session):
    """A lot queued at final test: new_lot("L1", product="P2")."""
    def make(lot_no: str, product: str = "P1") -> Lot:
        return lot_at_final_test(session, lot_no, product=product)
    return make


# --- PAT -------------------------------------------------------------------------------

def values_file(values: list[float], salt: str, *, test: int = 300,
                spec: TestSpec | None = None) -> bytes:
    """One passing part per value, each a unit of its own."""
    parts = [PartSpec(hard_bin=1, passed=True, part_id=f"{salt}-{i}", results=[(test, v)])
             for i, v in enumerate(values)]
    return stdf(parts, tests={test: spec or TestSpec("x", "u")})


_files = itertools.count()


def import_values(session, lot: Lot, values: list[float], pass_: str | None = None,
                  **kw: Any) -> TestRun:
    """Import a file of these passing values (a new file each time: no duplicates)."""
    run = services.import_stdf(session, "op", lot,
                               values_file(values, f"f{next(_files)}", **kw), pass_=pass_)
    session.commit()
    return run


def history(session, new_lot, per_lot: list[list[float]], **kw: Any) -> list[Lot]:
    """Lots H0, H1 ... each with one run of these passing values."""
    lots = []
    for j, values in enumerate(per_lot):
        lot = new_lot(f"H{j}")
        import_values(session, lot, values, **kw)
        lots.append(lot)
    return lots


def check_lots(scale: float = 1.0) -> list[list[float]]:
    """Six lots of 30 values whose pool is CHECK_PAT nine times (the same quartiles)."""
    pooled = sorted(v * scale for v in CHECK_PAT * 9)
    return [pooled[j::6] for j in range(6)]


def test_dynamic_pat_gives_the_check_values_and_counts_the_parts_outside(session, new_lot):
    run = import_values(session, new_lot("L1"), CHECK_PAT * 2)
    test = run.pat["per_test"]["300"]
    assert test["dynamic"]["lo"] == pytest.approx(CHECK_LO, abs=1e-6)
    assert test["dynamic"]["hi"] == pytest.approx(CHECK_HI, abs=1e-6)
    assert (test["dynamic"]["median"], test["dynamic"]["q1"], test["dynamic"]["q3"]) == (
        10.5, 5.75, 15.25)
    assert (test["lo"], test["hi"], test["n"], test["failures"], test["flagged"]) == (
        test["dynamic"]["lo"], test["dynamic"]["hi"], 40, 2, False)
    assert (run.pat["mode"], run.pat["failures"], run.pat["method"]) == ("dynamic", 2,
                                                                         PAT_METHOD)


def test_dynamic_pat_needs_30_passing_parts(session, new_lot):
    run = import_values(session, new_lot("L1"), CHECK_PAT + [5.0] * 9)
    test = run.pat["per_test"]["300"]
    assert (test["dynamic"], test["lo"], test["hi"], test["failures"]) == (None, None, None, 0)
    assert "29 passing parts" in test["skipped"]
    assert run.pat["mode"] == "none"


def test_the_run_page_says_why_in_the_reader_s_language(session, new_lot, make_user, login,
                                                        client):
    skipped = import_values(session, new_lot("L1"), CHECK_PAT + [5.0] * 9)
    user = make_user("engineer")
    user.locale = "zh_CN"
    session.commit()
    login(user)
    page = client.get(f"/test-runs/{skipped.id}").get_data(as_text=True)
    assert "29 个合格器件；动态限值至少需要 30 个。" in page
    assert "passing parts;" not in page


def test_dynamic_pat_with_robust_sigma_0_is_flagged_and_not_applied(session, new_lot):
    run = import_values(session, new_lot("L1"), [1.5] * 31 + [1.75] * 9)
    test = run.pat["per_test"]["300"]
    assert test["dynamic"]["flagged"] is True
    assert "robust sigma is 0" in test["dynamic"]["reason"]
    assert (test["flagged"], test["lo"], test["hi"], test["failures"]) == (True, None, None, 0)
    assert run.pat["mode"] == "none"


def test_dynamic_pat_limits_are_never_wider_than_the_test_limits(session, new_lot):
    values = [1.0 + i / 40 for i in range(41)]  # 1.0 .. 2.0, robust sigma about 0.37
    run = import_values(session, new_lot("L1"), values, spec=TestSpec("v", "V", 1.0, 2.0))
    test = run.pat["per_test"]["300"]
    assert (test["lo"], test["hi"], test["failures"]) == (1.0, 2.0, 0)


def test_dynamic_pat_limits_are_never_wider_than_the_spec_limits_either(session, new_lot):
    values = [1.0 + i / 40 for i in range(41)]
    run = import_values(session, new_lot("L1"), values,
                        spec=TestSpec("v", "V", 1.0, 2.0, spec_lo=0.5, spec_hi=1.875))
    test = run.pat["per_test"]["300"]
    assert (test["lo"], test["hi"], test["failures"]) == (1.0, 1.875, 5)


def test_static_pat_limits_from_six_lots_give_the_check_values(session, new_lot):
    lots = history(session, new_lot, check_lots())
    made = services.compute_pat_limits(session, "eng", lots[0].product, step="FT")
    session.commit()
    assert made.skipped == []
    (limits,) = made.limit_sets
    assert limits.lo == pytest.approx(CHECK_LO, abs=1e-6)
    assert limits.hi == pytest.approx(CHECK_HI, abs=1e-6)
    assert (limits.test_num, limits.test_name, limits.method, limits.n, limits.lots,
            limits.median, limits.q1, limits.q3, limits.k, limits.flagged, limits.active) == (
        300, "x", PAT_METHOD, 180, 6, 10.5, 5.75, 15.25, 6, False, True)
    assert limits.robust_sigma == pytest.approx(9.5 / 1.35)
    assert limits.source_lots == [f"H{j}" for j in range(6)]
    assert abs(limits.valid_until - (utcnow() + timedelta(days=180))) < timedelta(minutes=1)
    assert audit_codes(session, "product", "P1")[-1] == "product:pat_limits"


def test_static_pat_uses_the_latest_run_of_each_lot(session, new_lot):
    lots = history(session, new_lot, check_lots())
    # More files of the lot's first pass, after a tester stop: the latest counts.
    import_values(session, lots[0], [1000.0] * 40, pass_="resume")  # replaced by a later run
    import_values(session, lots[0], check_lots()[0], pass_="resume")
    (limits,) = services.compute_pat_limits(session, "eng", lots[0].product,
                                            step="FT").limit_sets
    assert (limits.n, limits.median) == (180, 10.5)


def test_static_pat_leaves_retests_out(session, new_lot):
    """A retest's good parts are marginal ones that failed before: the lot's first pass is
    its history, even when a retest came later."""
    lots = history(session, new_lot, check_lots())
    failing = stdf([PartSpec(hard_bin=5, passed=False, part_id=f"rt-{k}") for k in range(40)])
    lot = new_lot("H-RT")
    services.import_stdf(session, "op", lot, failing, step="FT")
    import_values(session, lot, [1000.0] * 40, pass_="retest")
    made = services.compute_pat_limits(session, "eng", lots[0].product, step="FT")
    (limits,) = made.limit_sets
    # The retest's 40 values at 1000 would have made a seventh lot and moved the median.
    assert (limits.n, limits.lots, limits.median) == (180, 6, 10.5)


def test_static_pat_applies_at_import_with_the_dynamic_limits(session, new_lot):
    lots = history(session, new_lot, check_lots(scale=0.5))
    (limits,) = services.compute_pat_limits(session, "eng", lots[0].product,
                                            step="FT").limit_sets
    session.commit()
    assert limits.hi == pytest.approx(CHECK_HI / 2, abs=1e-6)
    # Within the lot's own dynamic limits (-31.7 .. 52.7), above the static 26.4.
    run = import_values(session, new_lot("L1"), [*range(1, 20), 30] * 2)
    test = run.pat["per_test"]["300"]
    assert test["static"]["id"] == limits.id
    assert test["dynamic"]["hi"] == pytest.approx(CHECK_HI, abs=1e-6)
    assert (test["lo"], test["hi"]) == (pytest.approx(CHECK_LO / 2, abs=1e-6),
                                        pytest.approx(CHECK_HI / 2, abs=1e-6))
    assert (test["failures"], run.pat["failures"], run.pat["mode"]) == (2, 2, "both")


def test_static_pat_alone_applies_below_30_passing_parts(session, new_lot):
    lots = history(session, new_lot, check_lots(scale=0.5))
    services.compute_pat_limits(session, "eng", lots[0].product, step="FT")
    session.commit()
    run = import_values(session, new_lot("L1"), [5.0, 30.0, -20.0])
    assert (run.pat["mode"], run.pat["failures"]) == ("static", 2)


def test_expired_static_limits_do_not_apply(session, new_lot):
    lots = history(session, new_lot, check_lots(scale=0.5))
    services.compute_pat_limits(session, "eng", lots[0].product, step="FT", valid_days=1)
    session.commit()
    for limits in session.scalars(select(PatLimitSet)):
        limits.valid_until = utcnow() - timedelta(seconds=1)
    session.commit()
    run = import_values(session, new_lot("L1"), [*range(1, 20), 30] * 2)
    assert (run.pat["mode"], run.pat["failures"], run.pat["per_test"]["300"]["static"]) == (
        "dynamic", 0, None)


def test_static_pat_with_robust_sigma_0_is_flagged_and_not_applied(session, new_lot):
    lots = history(session, new_lot, [[2.0] * 30] * 6)
    (limits,) = services.compute_pat_limits(session, "eng", lots[0].product,
                                            step="FT").limit_sets
    session.commit()
    assert (limits.flagged, limits.lo, limits.hi, limits.robust_sigma) == (True, None, None, 0)
    assert "robust sigma is 0" in limits.reason
    run = import_values(session, new_lot("L1"), [1.0, 3.0])
    assert run.pat["per_test"]["300"]["flagged"] is True
    assert (run.pat["mode"], run.pat["failures"]) == ("none", 0)


def test_static_pat_limits_are_clamped_to_the_test_limits(session, new_lot):
    lots = history(session, new_lot, check_lots(), spec=TestSpec("x", "u", 0.0, 40.0))
    (limits,) = services.compute_pat_limits(session, "eng", lots[0].product,
                                            step="FT").limit_sets
    assert (limits.spec_lo, limits.spec_hi, limits.lo) == (0.0, 40.0, 0.0)
    assert limits.hi == 40.0


def test_new_static_limits_retire_the_test_s_earlier_set(session, new_lot):
    lots = history(session, new_lot, check_lots())
    (first,) = services.compute_pat_limits(session, "eng", lots[0].product,
                                           step="FT").limit_sets
    session.commit()
    (second,) = services.compute_pat_limits(session, "eng", lots[0].product,
                                            step="FT").limit_sets
    session.commit()
    assert (first.active, second.active) == (False, True)
    assert list(services.active_static_limits(session, lots[0].product_id, "FT")) == [300]
    assert services.active_static_limits(session, lots[0].product_id, "FT")[300].id == \
        second.id


def test_static_pat_refused_with_fewer_than_six_qualifying_lots(session, new_lot):
    per_lot = check_lots()
    per_lot[5] = per_lot[5][:29]  # 29 passing parts: the sixth lot does not qualify
    lots = history(session, new_lot, per_lot)
    error = refused(session, lambda: services.compute_pat_limits(session, "eng", lots[0].product,
                                                        step="FT"),
                    Conflict, "insufficient_history")
    assert "test 300: 5 lot(s)" in error.message


def test_static_pat_leaves_out_tests_without_history_unless_named(session, new_lot):
    lots = history(session, new_lot, check_lots())
    import_values(session, new_lot("X1"), [1.0] * 30, test=400)
    made = services.compute_pat_limits(session, "eng", lots[0].product, step="FT")
    assert [s.test_num for s in made.limit_sets] == [300]
    assert [(s["test_num"], s["lots"]) for s in made.skipped] == [(400, 1)]
    session.commit()
    refused(session, lambda: services.compute_pat_limits(session, "eng", lots[0].product, step="FT",
                                                tests=[300, 400]), Conflict, "insufficient_history")
    refused(session, lambda: services.compute_pat_limits(session, "eng", lots[0].product, step="FT",
                                                tests=[999]), Conflict, "insufficient_history")


def test_static_pat_refused_without_any_history(session, new_lot):
    lot = new_lot("L1")
    error = refused(session, lambda: services.compute_pat_limits(session, "eng", lot.product,
                                                        step="FT"),
                    Conflict, "insufficient_history")
    assert "no test data" in error.message


def test_static_pat_refused_for_a_step_that_is_not_a_test_step(session, new_lot):
    lot = new_lot("L1")
    for step in ("SAW", "NOPE"):
        error = refused(session, lambda step=step: services.compute_pat_limits(
                            session, "eng", lot.product, step=step), InvalidInput, "invalid")
        assert error.fields == {"step": [f"{step} is not a test step of the route of "
                                         "product P1."]}


# --- SBA -------------------------------------------------------------------------------

def bins(yield_pct: float, *, units: int = 1000, **fails: float) -> list[dict[str, Any]]:
    """A bin summary at this final yield; failing bins in percent (`b9=0.5`), the rest of
    the fallout in bin 8."""
    good = round(units * yield_pct / 100)
    counts = {int(name[1:]): round(units * pct / 100) for name, pct in fails.items()}
    counts.setdefault(8, units - good - sum(counts.values()))
    return [{"bin": 1, "count": good, "passed": True},
            *({"bin": b, "count": n, "passed": False} for b, n in sorted(counts.items()))]


def bin_run(session, lot: Lot, yield_pct: float, **fails: float) -> SimpleNamespace:
    """A bin summary of `lot` as its insertion's first pass, closed (SBA judges the closing
    insertion): the run's id and the insertion's SBA verdict."""
    run = services.record_bins(session, "op", lot, bins=bins(yield_pct, **fails))
    closed = insertions.close(session, "op", lot, run.step_code)
    session.commit()
    return SimpleNamespace(id=run.id, sba=closed.sba, run=run)


def sba_history(session, new_lot, yields: list[float], product: str = "P1",
                **fails: float) -> list[Lot]:
    lots = []
    for j, value in enumerate(yields):
        lot = new_lot(f"{product}-S{j}", product)
        bin_run(session, lot, value, **fails)
        lots.append(lot)
    return lots


def open_holds(session, lot: Lot) -> list[Hold]:
    return list(session.scalars(select(Hold).where(Hold.lot_id == lot.id,
                                                   Hold.status == "open")))


def test_sba_limits_from_six_lots_give_the_check_values(session, new_lot):
    sba_history(session, new_lot, CHECK_YIELDS)
    lot = new_lot("L1")
    run = bin_run(session, lot, 93.3)
    sba = run.sba
    assert (sba["status"], sba["history_lots"], sba["hold"], sba["breaches"]) == (
        "ok", 6, None, [])
    assert sba["yield"]["syl1"] == pytest.approx(SYL1, abs=1e-6)
    assert sba["yield"]["syl2"] == pytest.approx(SYL2, abs=1e-6)
    assert sba["yield"]["mean"] == pytest.approx(statistics.fmean(CHECK_YIELDS))
    assert sba["yield"]["value"] == pytest.approx(93.3)
    assert sba["lots"] == [f"P1-S{j}" for j in reversed(range(6))]
    assert open_holds(session, lot) == []


def test_yield_below_syl1_holds_the_lot_for_engineering_review(session, new_lot):
    sba_history(session, new_lot, CHECK_YIELDS)
    lot = new_lot("L1")
    run = bin_run(session, lot, 93.0)
    assert run.sba["status"] == "level1"
    assert run.sba["breaches"][0] == {"kind": "yield", "level": "level1",
                                      "value": pytest.approx(93.0),
                                      "limit": pytest.approx(SYL1, abs=1e-6)}
    (hold,) = open_holds(session, lot)
    assert run.sba["hold"] == hold.id
    assert (hold.source, hold.placed_by, hold.reason.code, hold.step_code) == (
        "sba", "system", "H-ENG", "FT")
    assert (hold.data["mrb"], hold.data["test_run"], hold.data["triggered_by"]) == (
        False, run.id, "op")
    assert "final yield 93.00 % is below SYL1 93.21 %" in hold.comment
    assert "material review board" not in hold.comment
    assert lot.open_holds == 1


def test_yield_below_syl2_holds_the_lot_for_the_material_review_board(session, new_lot):
    sba_history(session, new_lot, CHECK_YIELDS)
    lot = new_lot("L1")
    run = bin_run(session, lot, 92.0)
    assert (run.sba["status"], run.sba["mrb"]) == ("level2", True)
    assert run.sba["breaches"][0]["level"] == "level2"
    (hold,) = open_holds(session, lot)
    assert hold.data["mrb"] is True
    assert "level 2 (material review board)" in hold.comment
    assert "below SYL2 92.47 %" in hold.comment


def test_failing_bin_above_sbl_holds_the_lot_though_the_yield_is_normal(session, new_lot):
    sba_history(session, new_lot, CHECK_YIELDS, b9=0.5)
    lot = new_lot("L1")
    # The yield is at the history's mean, but the fallout moved from bin 8 to bin 9.
    run = bin_run(session, lot, 95.4, b9=3.0)
    assert run.sba["yield"]["breach"] is None
    assert run.sba["bins"]["9"]["breach"] == "level2"  # history sigma 0: any step is level 2
    assert run.sba["bins"]["8"]["breach"] is None
    (breach,) = run.sba["breaches"]
    assert (breach["kind"], breach["bin"], breach["value"]) == ("bin", 9, pytest.approx(3.0))
    (hold,) = open_holds(session, lot)
    assert "bin 9 at 3.00 % is above SBL2 0.50 %" in hold.comment


def test_bin_limits_from_a_varying_history(session, new_lot):
    history_pcts = [0.5, 0.7, 0.3, 0.5, 1.0, 0.5]
    for j, pct in enumerate(history_pcts):
        bin_run(session, new_lot(f"S{j}"), 95.0, b9=pct)
    mean, sigma = statistics.fmean(history_pcts), statistics.stdev(history_pcts)
    run = bin_run(session, new_lot("L1"), 95.0, b9=1.4)
    limits = run.sba["bins"]["9"]
    assert (limits["sbl1"], limits["sbl2"]) == (pytest.approx(mean + 3 * sigma),
                                                pytest.approx(mean + 4 * sigma))
    assert mean + 3 * sigma < 1.4 < mean + 4 * sigma
    assert (limits["breach"], run.sba["status"]) == ("level1", "level1")


def test_sba_with_fewer_than_six_earlier_lots_judges_nothing(session, new_lot):
    sba_history(session, new_lot, CHECK_YIELDS[:5])
    lot = new_lot("L1")
    run = bin_run(session, lot, 10.0)
    assert (run.sba["status"], run.sba["history_lots"], run.sba["hold"]) == (
        "insufficient_history", 5, None)
    assert "syl1" not in run.sba["yield"]
    assert open_holds(session, lot) == []


def test_sba_history_is_the_closed_insertions_of_other_lots_of_the_product_at_the_step(
        session, new_lot):
    sba_history(session, new_lot, CHECK_YIELDS)
    sba_history(session, new_lot, [10.0] * 6, product="P2")  # another product
    open_one = new_lot("OPEN")
    services.record_bins(session, "op", open_one, bins=bins(10.0))  # not closed
    lot = new_lot("L1")
    run = bin_run(session, lot, 93.3)
    assert run.sba["history_lots"] == 6
    assert sorted(run.sba["lots"]) == [f"P1-S{j}" for j in range(6)]
    assert run.sba["yield"]["mean"] == pytest.approx(statistics.fmean(CHECK_YIELDS))
    assert run.sba["status"] == "ok"


def test_sba_uses_only_the_latest_lots(session, new_lot, monkeypatch):
    monkeypatch.setattr(insertions, "SBA_HISTORY_LOTS", 6)
    sba_history(session, new_lot, [50.0, *CHECK_YIELDS])
    run = bin_run(session, new_lot("L1"), 93.3)
    assert (run.sba["history_lots"], run.sba["status"]) == (6, "ok")
    assert "P1-S0" not in run.sba["lots"]


def test_sba_hold_reason_is_hold_sba_when_the_plant_has_it(session, new_lot):
    cat.create_reason_code(session, "test", {"code": "HOLD-SBA", "kind": "hold",
                                             "description": "SBA"})
    sba_history(session, new_lot, CHECK_YIELDS)
    lot = new_lot("L1")
    bin_run(session, lot, 93.0)
    assert open_holds(session, lot)[0].reason.code == "HOLD-SBA"


def test_sba_hold_reason_is_created_when_the_plant_has_no_hold_code(session, new_lot):
    for reason in session.scalars(select(ReasonCode).where(ReasonCode.kind == "hold")):
        reason.active = False
    session.commit()
    sba_history(session, new_lot, CHECK_YIELDS)
    lot = new_lot("L1")
    bin_run(session, lot, 93.0)
    reason = open_holds(session, lot)[0].reason
    assert (reason.code, reason.kind, reason.active) == ("HOLD-SBA", "hold", True)


def test_sba_never_releases_a_hold_it_placed(session, new_lot):
    sba_history(session, new_lot, CHECK_YIELDS)
    lot = new_lot("L1")
    bin_run(session, lot, 92.0)
    # Voiding the run changes the closed insertion's figures, not its verdict or hold.
    first = session.scalars(select(TestRun).where(TestRun.lot_id == lot.id)).one()
    programs.void_run(session, "eng", first, reason="wrong file")
    session.commit()
    assert len(open_holds(session, lot)) == 1
    assert lot.open_holds == 1


def test_stdf_import_feeds_sba_like_a_bin_summary(session, new_lot):
    sba_history(session, new_lot, CHECK_YIELDS)
    lot = new_lot("L1")
    parts = [PartSpec(hard_bin=1, passed=True, part_id=f"g{i}") for i in range(90)]
    parts += [PartSpec(hard_bin=8, passed=False, part_id=f"b{i}") for i in range(10)]
    run = services.import_stdf(session, "op", lot, stdf(parts))
    session.commit()
    assert open_holds(session, lot) == []  # a file alone is never judged
    closed = insertions.close(session, "op", lot, "FT")
    session.commit()
    assert (run.final_yield, closed.sba["status"]) == (90.0, "level2")
    assert closed.sba["bins"]["8"]["value"] == pytest.approx(10.0)
    assert len(open_holds(session, lot)) == 1
    # History of the next lot: the STDF run counts like any other.
    assert bin_run(session, new_lot("L2"), 95.0).sba["history_lots"] == 7


def test_bin_summary_counts(session, new_lot):
    lot = new_lot("L1")
    run = services.record_bins(session, "op", lot, bins=[
        {"bin": 3, "count": 5, "passed": False}, {"bin": 1, "count": 90, "passed": True},
        {"bin": 2, "count": 5, "passed": True}, {"bin": 7, "count": 0, "passed": False}])
    assert (run.source, run.parts_tested, run.units, run.first_pass_good, run.final_good,
            run.first_pass_yield, run.final_yield, run.sha256) == (
        "bins", 100, 100, 95, 95, 95.0, 95.0, None)
    assert run.hard_bins == {"1": 90, "2": 5, "3": 5, "7": 0}
    assert (run.soft_bins, run.failing_bins, run.pat["mode"]) == ({}, [3, 7], "none")


@pytest.mark.parametrize(("given", "message"), [
    ([], "at least one bin"),
    ([{"bin": 1, "count": 5, "passed": True}, {"bin": 1, "count": 2, "passed": False}],
     "Bin 1 is given more than once"),
    ([{"bin": 1, "count": -1, "passed": True}], "negative"),
    ([{"bin": 1, "count": 0, "passed": True}, {"bin": 8, "count": 0, "passed": False}],
     "add up to 0"),
])
def test_bin_summary_refusals(session, new_lot, given, message):
    lot = new_lot("L1")
    error = refused(session, lambda: services.record_bins(session, "op", lot, bins=given),
                    InvalidInput, "invalid")
    assert message in error.fields["bins"][0]


def test_bin_summary_at_a_step_that_is_not_a_test_step_is_refused(session):
    lot = receive_lot(session, "L-SAW", 100)
    refused(session, lambda: services.record_bins(session, "op", lot, bins=bins(95.0)),
            Conflict, "wrong_step")
    refused(session, lambda: services.record_bins(session, "op", lot, step="FT", bins=bins(95.0)),
            Conflict, "wrong_step")
