"""The forecast arithmetic against hand-computed values: sums of known step durations,
conditioning on the time already spent at a step or on hold, determinism."""

from __future__ import annotations

from mes.forecast import distributions as d


def _route(*steps, yields=None, samples=500):
    return d.RouteForecaster(key="R", steps=[sorted(s) for s in steps],
                             yields=yields or [1.0] * len(steps), samples=samples)


def test_constant_step_durations_add_up_exactly():
    route = _route([2.0], [3.0], [5.0])
    ordered, shift = route.remaining(1, 0.0)
    assert d.percentiles(ordered, shift) == (10.0, 10.0)
    ordered, shift = route.remaining(3, 0.0)
    assert d.percentiles(ordered, shift) == (5.0, 5.0)


def test_two_steps_of_one_or_three_hours_give_p50_four_and_p90_six():
    # Each step lasts 1 h or 3 h, equally often: the sum is 2 (1/4), 4 (1/2) or 6 (1/4).
    route = _route([1.0, 3.0], [1.0, 3.0])
    ordered, shift = route.remaining(1, 0.0)
    assert d.percentiles(ordered, shift) == (4.0, 6.0)


def test_time_already_spent_at_the_step_is_conditioned_on():
    # Step 1 lasts 2, 4, 6, 8 or 10 h; 5 h passed: 1, 3 or 5 h remain, then step 2's 10 h.
    route = _route([2.0, 4.0, 6.0, 8.0, 10.0], [10.0])
    ordered, shift = route.remaining(1, 5.0)
    assert d.percentiles(ordered, shift) == (13.0, 15.0)
    # Exact at any elapsed time between the points: 5.5 h passed leaves 0.5, 2.5, 4.5 h.
    ordered, shift = route.remaining(1, 5.5)
    assert d.percentiles(ordered, shift) == (12.5, 14.5)


def test_a_lot_waiting_longer_than_every_recorded_duration_is_never_due_now():
    # 72 h at a step that never took more than 10 h: one more typical duration remains.
    route = _route([2.0, 4.0, 6.0, 8.0, 10.0], [10.0])
    ordered, shift = route.remaining(1, 72.0)
    assert d.percentiles(ordered, shift) == (16.0, 20.0)
    last = _route([2.0, 4.0])
    ordered, shift = last.remaining(1, 72.0)
    p50, p90 = d.percentiles(ordered, shift)
    assert p50 > 0 and p90 >= p50


def test_a_hold_remaining_time_is_conditioned_on_its_age():
    # Holds of the reason lasted 24, 48 or 72 h; this one is 30 h old: 18 or 42 h remain.
    waits = sorted(d.hold_remaining([24.0, 48.0, 72.0], 30.0, 500, "H-ENG"))
    assert (d.quantile(waits, 0.5), d.quantile(waits, 0.9)) == (18.0, 42.0)
    # Older than every recorded hold: one more typical hold.
    waits = sorted(d.hold_remaining([24.0, 48.0, 72.0], 100.0, 500, "H-ENG"))
    assert d.quantile(waits, 0.5) == 48.0


def test_expected_yield_multiplies_the_remaining_steps():
    route = _route([1.0], [1.0], [1.0], yields=[0.5, 0.9, 0.8])
    assert round(route.expected_yield(2), 6) == 0.72
    assert round(route.expected_yield(1), 6) == 0.36


def test_the_same_inputs_give_the_same_forecast():
    steps = ([1.0, 2.0, 7.0, 9.0], [3.0, 3.5, 12.0], [0.5, 30.0])
    one = _route(*steps).remaining(1, 1.5)
    two = _route(*steps).remaining(1, 1.5)
    assert one == two


def test_many_durations_are_summarised_by_their_percentiles():
    points = d.summarise([float(i) for i in range(1000, 0, -1)])
    assert len(points) == d.MAX_POINTS
    assert points == sorted(points)
    assert points[0] == 6.0 and points[-1] == 996.0
    assert d.summarise([3.0, 1.0]) == [1.0, 3.0]
