"""The process control chart specifications (mes.spc.charts), worked out by hand."""

from __future__ import annotations

import math

from mes.spc import charts


def test_decimals_are_the_measured_ones_plus_one_at_most_four():
    assert charts.decimals([8.0, 12.0]) == 1
    assert charts.decimals([8.1, 7.95]) == 3
    assert charts.decimals([0.8523, 0.85, math.nan]) == 4
    assert charts.decimals([]) == 1


def test_bins_cover_the_range_with_the_largest_value_in_the_last_bin():
    # 9 values from 1 to 9: √9 = 3 < 5 bins, so 5 bins of width 1.6.
    bins = charts.bins([1, 2, 3, 4, 5, 6, 7, 8, 9])
    assert len(bins) == 5
    assert bins[0][0] == 1 and math.isclose(bins[-1][1], 9)
    # [1, 2.6) 1 2; [2.6, 4.2) 3 4; [4.2, 5.8) 5; [5.8, 7.4) 6 7; [7.4, 9] 8 9.
    assert [c for _a, _b, c in bins] == [2, 2, 1, 2, 2]
    # An inner edge belongs to the upper bin.
    assert [c for _a, _b, c in charts.bins([0, 1, 2], count=2)] == [1, 2]


def test_equal_values_make_one_bin_and_nothing_makes_none():
    ((low, high, count),) = charts.bins([5.0, 5.0, 5.0])
    assert low < 5.0 < high and count == 3
    assert charts.bins([]) == [] and charts.bins([math.inf]) == []


def test_control_chart_puts_spec_limits_only_when_given_and_empty_says_so():
    names = {"value": "Mean", "center": "CL", "ucl": "UCL", "lcl": "LCL", "usl": "USL",
             "lsl": "LSL", "y": "gf"}
    points = [charts.Point("a", None, None, None, None, False, "t"),
              charts.Point("b", 8.4, 8.0, 8.2, 7.8, True, "t", ("Rule 1",))]
    spec = charts.control(points, title="X", unit=" gf", digits=2, names=names, lsl=3.0)
    assert [s["name"] for s in spec["series"]] == ["Mean", "CL", "UCL", "LCL", "LSL"]
    assert spec["series"][0]["marked"] == [False, True]
    assert spec["points"][1] == {"title": "t", "lines": ["Rule 1"]}
    assert not charts.empty(spec)
    assert charts.empty(charts.control(points[:1], title="X", unit="", digits=1,
                                       names=names))
    hist = charts.histogram([], title="H", unit="", digits=1, name="v", y_title="n",
                            marks=[("LSL", None, "spec"), ("T", 2.0, "target")])
    assert charts.empty(hist) and [m["name"] for m in hist["marks"]] == ["T"]
