"""Control limits and rule hits through the services, against values worked out by hand.

The data set (n = 5, X̄–R): subgroups 1–13 are 9.8, 9.9, 10.0, 10.1, 10.2 (mean 10.0,
range 0.4) except subgroup 25; subgroups 13–24 are 9.7, 9.9, 10.0, 10.1, 10.3 (mean 10.0,
range 0.6); subgroup 25 is 10.0, 10.1, 10.2, 10.3, 10.4 (mean 10.2, range 0.4).
X̿ = (24·10.0 + 10.2)/25 = 10.008; R̄ = (13·0.4 + 12·0.6)/25 = 0.496.
UCL = 10.008 + 0.577·0.496 = 10.294192; LCL = 10.008 − 0.286192 = 9.721808.
Range chart: UCL = 2.114·0.496 = 1.048544, LCL = 0·0.496 = 0. σ = 0.496/2.326.
σ of the X̄ chart = 0.286192/3 = 0.0953973…: 2σ above the centre = 10.1999947…, 1σ =
10.1033973….
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from mes.errors import InvalidInput
from mes.spc import services as spc
from mes.spc.models import SpcEvent, SpcLimits
from tests.helpers import refused
from tests.spc.helpers import at_wb, make_plan, sample

NARROW = [9.8, 9.9, 10.0, 10.1, 10.2]      # mean 10.0, range 0.4
WIDE = [9.7, 9.9, 10.0, 10.1, 10.3]        # mean 10.0, range 0.6
HIGH = [10.0, 10.1, 10.2, 10.3, 10.4]      # mean 10.2, range 0.4
ABOVE_A = [9.85, 9.95, 10.05, 10.15, 10.25]  # mean 10.05 (within 1σ), range 0.4
ABOVE_B = [9.75, 9.95, 10.05, 10.15, 10.35]  # mean 10.05, range 0.6
BEYOND_2S = [10.05, 10.15, 10.25, 10.35, 10.45]  # mean 10.25 (beyond 2σ, inside UCL)


@pytest.fixture
def baseline(session, receive):
    plan = make_plan(session, n=5)
    lot = at_wb(session, receive)
    for i in range(25):
        sample(session, plan, lot, NARROW if i < 12 else WIDE if i < 24 else HIGH)
    return plan, lot


def test_xbar_r_limits_for_n_5(session, baseline):
    plan, _lot = baseline
    limits = spc.freeze_limits(session, "eng", plan)
    assert limits.version == 1 and limits.subgroups == 25
    assert limits.center == pytest.approx(10.008, abs=1e-9)
    assert limits.ucl == pytest.approx(10.294192, abs=1e-9)
    assert limits.lcl == pytest.approx(9.721808, abs=1e-9)
    assert limits.r_center == pytest.approx(0.496, abs=1e-9)
    assert limits.r_ucl == pytest.approx(1.048544, abs=1e-9)
    assert limits.r_lcl == 0.0
    assert limits.sigma == pytest.approx(0.496 / 2.326, abs=1e-9)
    assert plan.limits_id == limits.id


def test_a_second_freeze_is_a_new_version_from_the_last_n(session, baseline):
    plan, lot = baseline
    spc.freeze_limits(session, "eng", plan)
    # The last 25 of 26: subgroups 2–26, the 26th NARROW: X̿ = (24·10.0 + 10.2)/25 again,
    # R̄ = (12·0.4 + 12·0.6 + 0.4)/25 = 0.496 … minus one NARROW plus one NARROW: the same.
    sample(session, plan, lot, WIDE)
    second = spc.freeze_limits(session, "eng", plan, from_subgroups=25)
    # Subgroups 2–26: 11 NARROW, 12 WIDE, HIGH, WIDE: R̄ = (12·0.4 + 13·0.6)/25 = 0.504.
    assert second.version == 2
    assert second.r_center == pytest.approx(0.504, abs=1e-9)
    assert [v.version for v in session.scalars(select(SpcLimits).where(
        SpcLimits.plan_id == plan.id).order_by(SpcLimits.version))] == [1, 2]


def test_fewer_than_25_subgroups_are_refused(session, receive):
    plan = make_plan(session)
    lot = at_wb(session, receive)
    for _ in range(24):
        sample(session, plan, lot, NARROW)
    refused(session, lambda: spc.freeze_limits(session, "eng", plan), InvalidInput,
            "too_few_subgroups")
    sample(session, plan, lot, NARROW)
    refused(session, lambda: spc.freeze_limits(session, "eng", plan, from_subgroups=26),
            InvalidInput, "too_few_subgroups")


def test_eight_means_above_the_centre_hit_rule_4_on_exactly_the_eighth(session, baseline):
    plan, lot = baseline
    limits = spc.freeze_limits(session, "eng", plan)
    judged = [sample(session, plan, lot, ABOVE_A if i % 2 else ABOVE_B) for i in range(8)]
    assert [j.subgroup.violations for j in judged[:7]] == [[]] * 7
    assert all(j.subgroup.in_control for j in judged[:7])
    assert judged[7].subgroup.violations == [{"rule": 4, "chart": "xbar"}]
    assert judged[7].subgroup.in_control is False
    assert judged[7].limits_version == limits.version == 1
    event = judged[7].event
    assert event is not None and event.rule == 4
    assert event.subgroups == [j.subgroup.id for j in judged]


def test_two_of_three_beyond_2_sigma_hit_rule_2(session, baseline):
    plan, lot = baseline
    spc.freeze_limits(session, "eng", plan)
    first = sample(session, plan, lot, BEYOND_2S)
    middle = sample(session, plan, lot, NARROW)
    third = sample(session, plan, lot, BEYOND_2S)
    assert first.subgroup.violations == [] and middle.subgroup.violations == []
    assert third.subgroup.violations == [{"rule": 2, "chart": "xbar"}]
    assert third.event.hits == [{"rule": 2, "chart": "xbar",
                                 "subgroups": [first.subgroup.id, third.subgroup.id]}]


def test_a_point_exactly_on_the_ucl_does_not_hit_rule_1(session, baseline):
    plan, lot = baseline
    spc.freeze_limits(session, "eng", plan)
    on = sample(session, plan, lot, [10.294192] * 5)
    assert on.subgroup.mean == 10.294192
    # Range 0 is on the range chart's LCL (0): not beyond it either.
    assert on.subgroup.spread == 0.0
    assert on.subgroup.violations == [] and on.event is None
    beyond = sample(session, plan, lot, [10.2942] * 5)
    # Beyond the UCL (rule 1), and with the point on it two of two beyond 2σ on the X̄
    # chart; on the range chart two ranges of 0 below R̄ − 2·R̄/3 = 0.1653… (rule 2).
    assert beyond.subgroup.violations == [{"rule": 1, "chart": "xbar"},
                                          {"rule": 2, "chart": "xbar"},
                                          {"rule": 2, "chart": "spread"}]


def test_rules_switched_off_are_not_judged(session, baseline):
    plan, lot = baseline
    spc.update_plan(session, "eng", plan, {"rules": [1, 2, 3]})
    spc.freeze_limits(session, "eng", plan)
    judged = [sample(session, plan, lot, ABOVE_A if i % 2 else ABOVE_B) for i in range(9)]
    assert all(j.subgroup.violations == [] for j in judged)
    assert session.scalar(select(SpcEvent.id)) is None


def test_the_range_chart_is_judged_too(session, baseline):
    plan, lot = baseline
    spc.freeze_limits(session, "eng", plan)
    # Mean 10.0 (centre side), range 1.1 > 1.048544.
    wide = sample(session, plan, lot, [9.45, 10.0, 10.0, 10.0, 10.55])
    assert wide.subgroup.violations == [{"rule": 1, "chart": "spread"}]


def test_before_limits_nothing_is_judged_but_spec_limits_flag(session, receive):
    plan = make_plan(session)
    lot = at_wb(session, receive)
    first = sample(session, plan, lot, [2.5, 8, 8, 8, 12.5])
    assert first.subgroup.out_of_spec == [2.5, 12.5]
    assert first.subgroup.in_control is None and first.limits_version is None
    assert first.subgroup.violations == []
