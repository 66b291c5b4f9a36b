"""PAT and SBA statistics, with the check values of PRODUCT.md."""

from __future__ import annotations

import math

import pytest

from mes.testfloor.stats import (
    PAT_METHOD,
    SbaLimits,
    pat_failures,
    pat_limits,
    quantiles_linear,
    sba_bin_limits,
    sba_evaluate,
    sba_yield_limits,
    static_pat_limits,
)

CHECK_PAT = [*range(1, 20), 100]
CHECK_YIELDS = [95.0, 96.0, 94.5, 95.5, 96.5, 95.0]


# --- quantiles ------------------------------------------------------------------------------

@pytest.mark.parametrize(("values", "expected"), [
    # numpy.percentile(values, [25, 50, 75]) for each
    (CHECK_PAT, (5.75, 10.5, 15.25)),
    ([1, 2, 3, 4], (1.75, 2.5, 3.25)),
    ([7, 1, 3], (2.0, 3.0, 5.0)),
    ([42.0], (42.0, 42.0, 42.0)),
    ([0.1, 0.7], (0.25, 0.39999999999999997, 0.5499999999999999)),
    ([-3, -1, -2, 10, 4], (-2.0, -1.0, 4.0)),
])
def test_quantiles_interpolate_linearly_like_numpy(values, expected):
    assert quantiles_linear(values) == expected


def test_quantiles_do_not_reorder_the_callers_list():
    values = [3.0, 1.0, 2.0]
    quantiles_linear(values)
    assert values == [3.0, 1.0, 2.0]


@pytest.mark.parametrize("values", [[], [1.0, math.nan], [math.inf, 1.0]])
def test_quantiles_refuse_empty_or_non_finite_input(values):
    with pytest.raises(ValueError):
        quantiles_linear(values)


# --- PAT ------------------------------------------------------------------------------------

def test_pat_check_value_from_product_spec():
    limits = pat_limits(CHECK_PAT)
    assert round(limits.lo, 6) == -31.722222
    assert round(limits.hi, 6) == 52.722222
    assert (limits.n, limits.median, limits.q1, limits.q3, limits.k) == (20, 10.5, 5.75, 15.25, 6)
    assert limits.robust_sigma == pytest.approx(9.5 / 1.35)
    assert limits.method == PAT_METHOD == "robust: median, (Q3-Q1)/1.35, linear quantiles"
    assert not limits.flagged and limits.reason is None and limits.lots is None


def test_pat_k_scales_the_width():
    limits = pat_limits(CHECK_PAT, k=3)
    assert limits.hi - limits.median == pytest.approx(3 * 9.5 / 1.35)


def test_pat_limits_never_wider_than_spec():
    limits = pat_limits(CHECK_PAT, spec_lo=-10.0, spec_hi=40.0)
    assert (limits.lo, limits.hi) == (-10.0, 40.0)
    assert (limits.spec_lo, limits.spec_hi) == (-10.0, 40.0)
    wide = pat_limits(CHECK_PAT, spec_lo=-100.0, spec_hi=100.0)
    assert round(wide.lo, 6) == -31.722222 and round(wide.hi, 6) == 52.722222
    one_side = pat_limits(CHECK_PAT, spec_hi=20.0)
    assert round(one_side.lo, 6) == -31.722222 and one_side.hi == 20.0


def test_pat_robust_sigma_zero_is_flagged_and_not_applied():
    values = [1.0] * 15 + [0.9, 1.2, 5.0]
    limits = pat_limits(values, spec_lo=0.0, spec_hi=2.0)
    assert limits.robust_sigma == 0
    assert limits.flagged is True
    assert "robust sigma is 0" in limits.reason
    assert limits.lo is None and limits.hi is None
    assert pat_failures(values, limits) == 0


@pytest.mark.parametrize("k", [0, -6])
def test_pat_refuses_non_positive_k(k):
    with pytest.raises(ValueError, match="k must be positive"):
        pat_limits(CHECK_PAT, k=k)


def test_pat_refuses_no_values():
    with pytest.raises(ValueError, match="no values"):
        pat_limits([])


def test_pat_failures_count_values_strictly_outside_the_limits():
    limits = pat_limits(CHECK_PAT, spec_lo=0.0, spec_hi=50.0)
    assert pat_failures([0.0, 50.0, 25.0], limits) == 0  # on a limit passes
    assert pat_failures([-0.001, 50.001, 100.0, 1.0], limits) == 3
    assert pat_failures(CHECK_PAT, pat_limits(CHECK_PAT)) == 1  # the 100


def lots_of(count, size, start=0.0):
    return {f"LOT{i}": [start + (i + j % 10) / 10 for j in range(size)] for i in range(count)}


def test_static_pat_pools_six_lots_of_thirty():
    lots = lots_of(6, 30)
    limits = static_pat_limits(lots)
    pooled = [v for values in lots.values() for v in values]
    expected = pat_limits(pooled)
    assert (limits.lo, limits.hi, limits.n, limits.method) == \
        (expected.lo, expected.hi, 180, PAT_METHOD)
    assert limits.lots == 6


def test_static_pat_refuses_fewer_than_six_lots():
    with pytest.raises(ValueError, match="at least 6 lots with at least 30 passing parts each; "
                                         "5 of 5 lots qualify"):
        static_pat_limits(lots_of(5, 100))


def test_static_pat_refuses_when_a_lot_is_too_small_to_count():
    lots = lots_of(6, 30)
    lots["LOT5"] = lots["LOT5"][:29]
    with pytest.raises(ValueError, match="5 of 6 lots qualify"):
        static_pat_limits(lots)


def test_static_pat_leaves_small_lots_out_of_the_pool():
    lots = lots_of(6, 30) | {"TINY": [1000.0] * 5}
    limits = static_pat_limits(lots, spec_lo=0.2)
    assert (limits.n, limits.lots, limits.lo) == (180, 6, 0.2)


def test_static_pat_thresholds_are_parameters():
    assert static_pat_limits(lots_of(3, 10), min_lots=3, min_parts_per_lot=10).lots == 3


# --- SBA ------------------------------------------------------------------------------------

def test_sba_yield_check_value_from_product_spec():
    limits = sba_yield_limits(CHECK_YIELDS)
    assert isinstance(limits, SbaLimits)
    mean, sigma, syl1, syl2 = limits
    assert round(syl1, 6) == 93.208726
    assert round(syl2, 6) == 92.472746
    assert mean == pytest.approx(95.416667, abs=1e-6)
    # sample standard deviation (n - 1), not the population one
    assert sigma == pytest.approx(math.sqrt(2.7083333333 / 5))


def test_sba_bin_limits_are_above_the_mean():
    mean, sigma, sbl1, sbl2 = sba_bin_limits([1.0, 2.0, 3.0])
    assert (mean, sigma) == (2.0, 1.0)
    assert (sbl1, sbl2) == (5.0, 6.0)


def test_sba_limits_are_not_clamped_to_percent_range():
    assert sba_bin_limits([0.0, 0.0, 60.0]).level2 > 100
    assert sba_yield_limits([0.0, 0.0, 60.0]).level1 < 0


@pytest.mark.parametrize("function", [sba_yield_limits, sba_bin_limits])
def test_sba_limits_need_two_values(function):
    with pytest.raises(ValueError, match="at least 2 values"):
        function([95.0])
    with pytest.raises(ValueError, match="finite"):
        function([95.0, math.nan])


def test_sba_insufficient_history_with_fewer_than_six_lots():
    result = sba_evaluate(CHECK_YIELDS[:5], {}, 50.0, {})
    assert result.status == "insufficient_history"
    assert result.history_lots == 5
    assert result.yield_limits is None and result.bin_limits == {} and result.yield_breach is None


def test_sba_ok_within_limits():
    result = sba_evaluate(CHECK_YIELDS, {}, 94.0, {})
    assert result.status == "ok"
    assert result.yield_limits == sba_yield_limits(CHECK_YIELDS)
    assert result.yield_breach is None


def test_sba_yield_exactly_at_syl1_is_not_a_breach():
    syl1 = sba_yield_limits(CHECK_YIELDS).level1
    assert sba_evaluate(CHECK_YIELDS, {}, syl1, {}).status == "ok"
    below = sba_evaluate(CHECK_YIELDS, {}, math.nextafter(syl1, 0), {})
    assert (below.status, below.yield_breach) == ("level1", "level1")


def test_sba_yield_below_syl2_is_level2_and_exactly_at_syl2_level1():
    syl2 = sba_yield_limits(CHECK_YIELDS).level2
    assert sba_evaluate(CHECK_YIELDS, {}, syl2, {}).status == "level1"
    assert sba_evaluate(CHECK_YIELDS, {}, 92.0, {}).status == "level2"


HISTORY_BINS = {5: [1.0, 2.0, 3.0, 1.0, 2.0, 3.0], 7: [0.5] * 6, 9: [1.0] * 3}


def test_sba_bin_exactly_at_sbl1_is_not_a_breach_above_is():
    sbl1 = sba_bin_limits(HISTORY_BINS[5]).level1
    ok = sba_evaluate(CHECK_YIELDS, HISTORY_BINS, 95.0, {5: sbl1})
    assert ok.status == "ok" and ok.bin_breaches == {}
    above = sba_evaluate(CHECK_YIELDS, HISTORY_BINS, 95.0, {5: math.nextafter(sbl1, 100)})
    assert (above.status, above.bin_breaches) == ("level1", {5: "level1"})


def test_sba_bin_above_sbl2_is_level2():
    sbl2 = sba_bin_limits(HISTORY_BINS[5]).level2
    assert sba_evaluate(CHECK_YIELDS, HISTORY_BINS, 95.0, {5: sbl2}).bin_breaches == \
        {5: "level1"}
    result = sba_evaluate(CHECK_YIELDS, HISTORY_BINS, 95.0, {5: sbl2 + 0.01, 7: 0.6})
    assert result.status == "level2"
    # bin 7 never varied (sigma 0): any increase breaches both levels
    assert result.bin_breaches == {5: "level2", 7: "level2"}


def test_sba_bin_absent_from_the_lot_counts_zero_and_short_history_is_not_judged():
    result = sba_evaluate(CHECK_YIELDS, HISTORY_BINS, 95.0, {9: 50.0})
    assert result.status == "ok"
    assert set(result.bin_limits) == {5, 7}
    assert result.bins_insufficient == [9]


def test_sba_status_is_the_worst_of_yield_and_bins():
    sbl1 = sba_bin_limits(HISTORY_BINS[5]).level1
    result = sba_evaluate(CHECK_YIELDS, HISTORY_BINS, 80.0, {5: sbl1 + 0.01})
    assert (result.status, result.yield_breach, result.bin_breaches) == \
        ("level2", "level2", {5: "level1"})


def test_sba_min_lots_is_a_parameter():
    assert sba_evaluate(CHECK_YIELDS[:3], {}, 95.0, {}, min_lots=3).status == "ok"
