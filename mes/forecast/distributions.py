"""The arithmetic of completion forecasts, without the database: empirical duration
distributions, their sums by seeded sampling, conditioning on time already spent, and the
quantiles of the result. docs/forecasting.md explains the method and its limits.

A distribution is kept as its `points`: the recorded durations in hours, sorted (at most
MAX_POINTS of them: the evenly spaced order statistics of a larger history). A random
duration is one of the points, each equally likely. Sums are sampled: `samples` draws,
each a stratified, seeded permutation of the points (every point drawn equally often), so
the same inputs always give the same forecast on every machine and Python version.
"""

from __future__ import annotations

import math
import random
import zlib
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

# The most points a distribution keeps: more durations are summarised by their evenly
# spaced order statistics (a percentile every 1 %).
MAX_POINTS = 100


def summarise(durations: Sequence[float]) -> list[float]:
    """The points of the distribution of `durations` (hours): all of them sorted, or their
    MAX_POINTS evenly spaced order statistics."""
    ordered = sorted(durations)
    n = len(ordered)
    if n <= MAX_POINTS:
        return ordered
    return [ordered[min(n - 1, int((k + 0.5) * n / MAX_POINTS))] for k in range(MAX_POINTS)]


def quantile(ordered: Sequence[float], p: float) -> float:
    """The nearest-rank p-quantile of sorted values: the smallest value with at least a
    share p of the values at or below it."""
    return ordered[max(0, math.ceil(p * len(ordered)) - 1)]


def _seed(*key: object) -> int:
    # crc32 of the key's text: the same on every run (Python's hash() of a str is not).
    return zlib.crc32("/".join(str(k) for k in key).encode())


@lru_cache(maxsize=4096)
def permutation(samples: int, *key: object) -> list[int]:
    """A permutation of range(samples) fixed by `key` (kept: never change the list)."""
    order = list(range(samples))
    random.Random(_seed(*key)).shuffle(order)
    return order


def draws(points: Sequence[float], order: Sequence[int], start: int = 0) -> list[float]:
    """One draw per sample from points[start:], stratified: sample i takes the point at
    the rank order[i] falls on, so every point is drawn the same number of times (±1)."""
    m = len(points) - start
    n = len(order)
    return [points[start + (j * m) // n] for j in order]


@dataclass
class RouteForecaster:
    """Remaining-time distributions of one route version: `steps[i]` the points of step
    i+1's duration (queue plus process), `yields[i]` its expected yield. Suffix sums and
    the conditional sums for a lot's elapsed time are computed once and kept."""

    key: object
    steps: Sequence[Sequence[float]]
    yields: Sequence[float]
    samples: int = 500
    _suffix: dict[int, list[float]] = field(default_factory=dict)
    _yield: dict[int, float] = field(default_factory=dict)
    _cond: dict[tuple[int, int], tuple[list[float], float]] = field(default_factory=dict)
    _quantiles: dict[tuple[int, int], tuple[float, float]] = field(default_factory=dict)
    _orders: dict[int, list[int]] = field(default_factory=dict)

    def suffix(self, seq: int) -> list[float]:
        """Sampled total hours of steps seq..last (seq past the last: zeros), unsorted:
        sample i of every suffix is the same path through the route."""
        n = len(self.steps)
        if seq > n:
            return [0.0] * self.samples
        found = self._suffix.get(seq)
        if found is None:
            rest = self.suffix(seq + 1)
            own = draws(self.steps[seq - 1], permutation(self.samples, self.key, seq))
            found = [a + b for a, b in zip(own, rest, strict=True)]
            self._suffix[seq] = found
        return found

    def expected_yield(self, seq: int) -> float:
        """The product of the expected yields of steps seq..last."""
        found = self._yield.get(seq)
        if found is None:
            found = 1.0
            for y in self.yields[seq - 1:]:
                found *= y
            self._yield[seq] = found
        return found

    def remaining(self, seq: int, elapsed: float) -> tuple[list[float], float]:
        """The sampled remaining hours of a lot at step `seq` that arrived there `elapsed`
        hours ago, sorted, and a shift to subtract from every value.

        The current step's duration is conditioned on having lasted `elapsed` already:
        only the recorded durations longer than it count, less `elapsed`. A lot that has
        waited longer than every recorded duration is given one more typical duration of
        the step (drawn from all its points). The sums are kept per count of points
        passed, each against the largest point passed (t), and shifted by elapsed - t,
        which is exact: d - elapsed = (d - t) - (elapsed - t).
        """
        key, shift = self._key(seq, elapsed)
        return self._sums(key), shift

    def percentiles(self, seq: int, elapsed: float) -> tuple[float, float]:
        """P50 and P90 of the remaining hours (`remaining`), never below zero: a look-up
        once the step's sums for the points passed are known."""
        key, shift = self._key(seq, elapsed)
        found = self._quantile(key)
        return max(0.0, found[0] - shift), max(0.0, found[1] - shift)

    def passed_quantiles(self, seq: int, passed: int) -> tuple[float, float]:
        """P50 and P90 of the remaining hours of a lot at step `seq` that has waited past
        `passed` of the step's points (all of them: overdue), before the shift that
        `remaining` subtracts: the elapsed time less the largest point passed (none when
        overdue). The same numbers `percentiles` uses, for a caller that finds `passed`
        itself (the database, for a plant's lots at once)."""
        return self._quantile((seq, -1 if passed >= len(self.steps[seq - 1]) else passed))

    def _quantile(self, key: tuple[int, int]) -> tuple[float, float]:
        found = self._quantiles.get(key)
        if found is None:
            ordered = self._sums(key)
            found = self._quantiles[key] = (quantile(ordered, 0.5), quantile(ordered, 0.9))
        return found

    def _key(self, seq: int, elapsed: float) -> tuple[tuple[int, int], float]:
        points = self.steps[seq - 1]
        passed = bisect_right(points, elapsed)
        if passed == len(points):
            # Overdue at this step: one more typical duration from now.
            return (seq, -1), 0.0
        return (seq, passed), elapsed - (points[passed - 1] if passed else 0.0)

    def _sums(self, key: tuple[int, int]) -> list[float]:
        seq, passed = key
        points = self.steps[seq - 1]
        found = self._cond.get(key)
        if found is None:
            rest = self.suffix(seq + 1)
            start = 0 if passed == -1 else passed
            t = 0.0 if start == 0 else points[passed - 1]
            own = draws(points, self._order(seq), start)
            found = (sorted(a - t + b for a, b in zip(own, rest, strict=True)), t)
            self._cond[key] = found
        return found[0]

    def _order(self, seq: int) -> list[int]:
        found = self._orders.get(seq)
        if found is None:
            found = self._orders[seq] = permutation(self.samples, self.key, seq, "now")
        return found


def hold_remaining(points: Sequence[float], age: float, samples: int, *key: object
                   ) -> list[float]:
    """Sampled remaining hours of a hold that has lasted `age` hours, from the points of
    the durations of released holds of its reason: those longer than `age`, less `age`;
    when it has outlasted all of them, one more typical hold of the reason."""
    passed = bisect_right(points, age)
    order = permutation(samples, "hold", *key)
    if passed == len(points):
        return draws(points, order)
    return [d - age for d in draws(points, order, passed)]


def percentiles(ordered: Sequence[float], shift: float = 0.0) -> tuple[float, float]:
    """P50 and P90 of sorted samples less `shift`, never below zero."""
    return (max(0.0, quantile(ordered, 0.5) - shift), max(0.0, quantile(ordered, 0.9) - shift))
