"""The control chart arithmetic on its own: constants and the Western Electric rules on a
chart with centre 0 and limits ±3 (σ = 1), worked out by hand."""

from __future__ import annotations

import pytest

from mes.spc import stats

ALL = (1, 2, 3, 4)


def judge(points, rules=ALL, center=0.0, upper=3.0, lower=-3.0):
    return stats.judge(points, center, upper, lower, rules)


def test_chart_kind_follows_the_subgroup_size():
    assert [stats.chart_kind(n) for n in (1, 2, 10, 11, 25)] == \
        ["i_mr", "xbar_r", "xbar_r", "xbar_s", "xbar_s"]


def test_s_chart_constants_for_n_25_match_the_aiag_table():
    # AIAG SPC manual, appendix E: n = 25: A3 = 0.606, B3 = 0.565, B4 = 1.435, c4 = 0.9896.
    a3, b3, b4, c4 = stats.s_constants(25)
    assert (round(a3, 3), round(b3, 3), round(b4, 3), round(c4, 4)) == \
        (0.606, 0.565, 1.435, 0.9896)


def test_individuals_limits_by_hand():
    # Individuals 10, 12, 11, 13: X̄ = 11.5; moving ranges 2, 1, 2: MR̄ = 5/3.
    # UCL = 11.5 + 2.660·5/3 = 15.9333…, LCL = 7.0666…, MR UCL = 3.267·5/3 = 5.445,
    # σ = (5/3)/1.128 = 1.47754…
    limits = stats.compute_limits("i_mr", 1, [10, 12, 11, 13], [None, 2, 1, 2])
    assert limits.center == 11.5
    assert limits.ucl == pytest.approx(15.933333333333, abs=1e-9)
    assert limits.lcl == pytest.approx(7.066666666667, abs=1e-9)
    assert (limits.r_center, limits.r_lcl) == (pytest.approx(5 / 3), 0.0)
    assert limits.r_ucl == pytest.approx(5.445, abs=1e-12)
    assert limits.sigma == pytest.approx(1.477541371158, abs=1e-9)


def test_rule_1_a_point_on_the_limit_is_not_beyond_it():
    assert judge([3.0]) == []
    assert judge([-3.0]) == []
    assert judge([3.0001]) == [(1, [0])]
    assert judge([-3.0001]) == [(1, [0])]


def test_rule_2_two_of_three_beyond_two_sigma_on_one_side():
    assert judge([2.5, 0.0]) == []
    assert judge([2.5, 0.0, 2.1]) == [(2, [0, 2])]
    # On the same side only, and the point completing it must itself be beyond.
    assert judge([2.5, 0.0, -2.1]) == []
    assert judge([2.5, 2.5, 0.0]) == []
    # Exactly at 2σ is not beyond 2σ.
    assert judge([2.0, 0.0, 2.0]) == []


def test_rule_3_four_of_five_beyond_one_sigma_on_one_side():
    assert judge([1.5, 1.5, 0.5, 1.5, 1.5]) == [(3, [0, 1, 3, 4])]
    assert judge([1.5, 1.5, 0.5, 0.5, 1.5]) == []
    assert judge([1.5, 1.5, 0.5, 1.5, 1.0]) == []


def test_rule_4_eight_on_one_side_hits_on_exactly_the_eighth():
    run = [0.5] * 8
    assert all(judge(run[:k]) == [] for k in range(1, 8))
    assert judge(run) == [(4, list(range(8)))]
    assert judge([-0.5] * 8) == [(4, list(range(8)))]
    # A point on the centre line is on neither side: it breaks the run.
    assert judge([0.5] * 3 + [0.0] + [0.5] * 4) == []


def test_rules_are_switchable():
    assert judge([0.5] * 8, rules=(1, 2, 3)) == []
    assert judge([4.0], rules=(2, 3, 4)) == []
    assert judge([1.5, 1.5, 0.5, 1.5, 1.5], rules=(1, 2, 4)) == []


def test_zones_follow_each_side_of_an_asymmetric_chart():
    # A range chart: centre 1, UCL 2.5 (σ above 0.5), LCL 0 (σ below 1/3).
    assert stats.judge([2.1, 1.0, 2.2], 1.0, 2.5, 0.0, ALL) == [(2, [0, 2])]
    assert stats.judge([0.3, 1.0, 0.3], 1.0, 2.5, 0.0, ALL) == [(2, [0, 2])]
    assert stats.judge([0.0], 1.0, 2.5, 0.0, ALL) == []


def test_capability_by_hand():
    # Values 9, 10, 11: μ = 10, s = 1. Spec 7..13, σ within 0.5:
    # Cp = 6/3 = 2, Cpk = 3/1.5 = 2; Pp = 6/6 = 1, Ppk = 3/3 = 1.
    assert stats.capability([9, 10, 11], 0.5, 7.0, 13.0) == (10.0, 1.0, 2.0, 2.0, 1.0, 1.0)
    # One-sided: no Cp, Cpk from the side given (13 − 10)/(3·0.5) = 2.
    assert stats.capability([9, 10, 11], 0.5, None, 13.0)[2:4] == (None, 2.0)


def test_out_of_spec_flags_values_beyond_not_on():
    assert stats.out_of_spec([3.0, 2.99, 12.0, 12.01, 8], 3.0, 12.0) == [2.99, 12.01]


def test_xbar_s_limits_by_hand_for_n_11():
    # AIAG table, n = 11: A3 = 0.927, B3 = 0.321, B4 = 1.679, c4 = 0.9754.
    # Means 10, 12; standard deviations 1, 3: X̿ = 11, S̄ = 2.
    # UCL = 11 + 0.927·2 = 12.854, LCL = 9.146; S chart 1.679·2 = 3.358, 0.321·2 = 0.642;
    # σ = 2/0.9754 = 2.0504.
    limits = stats.compute_limits("xbar_s", 11, [10, 12], [1, 3])
    assert (limits.center, limits.r_center) == (11.0, 2.0)
    assert limits.ucl == pytest.approx(12.854, abs=2e-3)
    assert limits.lcl == pytest.approx(9.146, abs=2e-3)
    assert limits.r_ucl == pytest.approx(3.358, abs=2e-3)
    assert limits.r_lcl == pytest.approx(0.642, abs=2e-3)
    assert limits.sigma == pytest.approx(2.0504, abs=2e-4)  # c4 to four places


def test_subgroup_statistics():
    assert stats.spread("xbar_r", [9.8, 10.2, 10.0], None) == 0.4
    # 1, 2, 3, 4, 5: s = √(10/4) = 1.5811…
    assert stats.spread("xbar_s", [1, 2, 3, 4, 5], None) == pytest.approx(1.58113883, abs=1e-8)
    assert stats.spread("i_mr", [10.5], None) is None
    assert stats.spread("i_mr", [10.5], 11.25) == 0.75
    assert stats.capability([], None, 1.0, 2.0) == (None,) * 6
    # One value: no overall σ, so no Pp/Ppk; no σ within, no Cp/Cpk.
    assert stats.capability([5.0], None, 1.0, 9.0) == (5.0, None, None, None, None, None)
