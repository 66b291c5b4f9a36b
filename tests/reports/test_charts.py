"""The figures the report charts add to their tables: the Pareto's cumulative line and
"Other" bar, and the lower end of a yield axis, each worked out by hand."""

from __future__ import annotations

import pytest

from mes.reports import charts


def test_pareto_adds_equal_reasons_sorts_largest_first_and_accumulates():
    # A 10 + 30 = 40, B 35, C 20, D 5: total 100.
    rows = charts.pareto_rows([("A", 10), ("B", 35), ("A", 30), ("C", 20), ("D", 5)])
    assert rows == [("A", 40, 40.0), ("B", 35, 75.0), ("C", 20, 95.0), ("D", 5, 100.0)]


def test_pareto_lumps_the_tail_into_other_and_ends_at_100_percent():
    items = [(f"R{n}", float(n)) for n in range(1, 7)]  # R1..R6, total 21
    rows = charts.pareto_rows(items, top=4, other="Other")
    # R6 6 (28.57 %), R5 5 (52.38 %), R4 4 (71.43 %), Other 3 + 2 + 1 = 6 (100 %).
    assert rows == [("R6", 6, 28.57), ("R5", 5, 52.38), ("R4", 4, 71.43),
                    ("Other", 6, 100.0)]


def test_pareto_ties_keep_label_order_and_zero_reasons_are_left_out():
    assert charts.pareto_rows([("B", 1), ("A", 1), ("Z", 0)]) == [
        ("A", 1, 50.0), ("B", 1, 100.0)]
    assert charts.pareto_rows([]) == []


def test_pareto_spec_puts_the_cumulative_line_on_a_percent_axis():
    spec = charts.pareto([("X", 3), ("Y", 1)], title="t", quantity="Qty",
                         cumulative="Cum %", other="Other")
    bars, line = spec["series"]
    assert bars["values"] == [3, 1] and "axis" not in bars
    assert line == {"name": "Cum %", "values": [75.0, 100.0], "axis": "pct",
                    "type": "line", "color": charts.colour("cumulative")}
    assert not charts.empty(spec)


@pytest.mark.parametrize(("values", "low"), [
    # 92.35: reach 92.35 - max(1, 7.65 / 4 = 1.91) = 90.44; span 9.56 -> 1 % steps: 90.
    ([92.35, 99.1, 100.0], 90.0),
    # 99.6: reach 98.6, 1 % steps: 98.
    ([99.6, 99.9], 98.0),
    # 60: reach 60 - 10 = 50; span 50 -> 5 % steps (50 / 5 = 10 ticks): 50.
    ([60.0, 95.0], 50.0),
    # 10: reach 10 - 22.5 < 0: 0.
    ([10.0], 0.0),
    ([None], 0.0),
    ([0.0, 50.0], 0.0),
])
def test_yield_axis_starts_just_below_the_lowest_yield(values, low):
    assert charts.yield_axis_min(values) == low


def test_trend_has_a_gap_where_a_product_has_no_value():
    spec = charts.trend({"P1": [("W2", 97.0), ("W1", 96.0)], "P2": [("W2", 91.5)]},
                        title="t")
    assert spec["labels"] == ["W1", "W2"]
    assert [s["values"] for s in spec["series"]] == [[96.0, 97.0], [None, 91.5]]
    # 91.5 - max(1, 8.5 / 4 = 2.125) = 89.375; span 10.6 -> 1 % steps: 89.
    assert spec["y"] == {"min": 89.0, "max": 100}


def test_stacked_spec_takes_each_series_from_its_column_and_empty_is_nothing_drawn():
    spec = charts.stacked(["T1", "T2"], [("Up", "productive"), ("Down", "standby")],
                          [(3.0, 1.0), (0.0, 2.0)], title="E10")
    assert [(s["name"], s["values"]) for s in spec["series"]] == [
        ("Up", [3.0, 0.0]), ("Down", [1.0, 2.0])]
    assert charts.empty(charts.stacked([], [], [], title="E10"))
    assert charts.empty(charts.bar(["a"], [0], title="t", name="n"))
