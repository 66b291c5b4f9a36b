"""PAT (AEC-Q001) and SBA (AEC-Q002) statistics: pure Python, no numpy, no Flask, no ORM.

PAT: robust mean = median, robust sigma = (Q3 - Q1) / 1.35, limits = median +/- k x robust
sigma (k = 6), never wider than the spec limits; quartiles by linear interpolation, the
default of numpy.percentile. SBA: from at least 6 earlier lots, sample standard deviation
(n - 1); yield limits SYL1/SYL2 = mean - 3/4 sigma, bin limits SBL1/SBL2 = mean + 3/4 sigma.
All SBA figures are percent and are not clamped to 0..100: a limit outside that range simply
cannot be breached.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, NamedTuple


def N_(message: str) -> str:
    """Marks a string for extraction without translating it (gettext_noop): pages translate
    the reason stored with flagged limits when they show it."""
    return message


# Why flagged PAT limits are not applied, stored with them (pages translate it).
FLAT_DISTRIBUTION = N_("robust sigma is 0 (Q1 == Q3): PAT limits not applied")

__all__ = [
    "PAT_METHOD",
    "PatLimits",
    "SbaLimits",
    "SbaResult",
    "quantiles_linear",
    "pat_limits",
    "static_pat_limits",
    "pat_failures",
    "sba_yield_limits",
    "sba_bin_limits",
    "sba_evaluate",
]

PAT_METHOD = "robust: median, (Q3-Q1)/1.35, linear quantiles"
# (Q3 - Q1) / 1.35 estimates sigma of a normal distribution (its IQR is 1.349 sigma).
_IQR_PER_SIGMA = 1.35


def _checked(values: Sequence[float], what: str) -> list[float]:
    data = sorted(values)
    if not data:
        raise ValueError(f"{what}: no values")
    if not all(map(math.isfinite, data)):
        raise ValueError(f"{what}: values must be finite numbers (no NaN or infinity)")
    return data


def _quantile(data: list[float], q: float) -> float:
    # numpy's "linear" method: virtual index (n - 1) q, and numpy's two-sided lerp, which
    # interpolates from the upper neighbour when the fraction is >= 0.5 (same float result).
    h = (len(data) - 1) * q
    i = math.floor(h)
    t = h - i
    if i + 1 >= len(data):
        return data[i]
    a, b = data[i], data[i + 1]
    if t >= 0.5:
        return b - (b - a) * (1 - t)
    return a + (b - a) * t


def quantiles_linear(values: Sequence[float]) -> tuple[float, float, float]:
    """(Q1, median, Q3) by linear interpolation between order statistics, as
    numpy.percentile(values, [25, 50, 75]) with its default method. Raises ValueError for no
    values or a non-finite value."""
    data = _checked(values, "quantiles")
    return _quantile(data, 0.25), _quantile(data, 0.5), _quantile(data, 0.75)


@dataclass(frozen=True)
class PatLimits:
    """A PAT limit set and how it was made. When `flagged`, the limits are not applied
    (lo and hi are None) and `reason` says why."""

    method: str
    n: int
    median: float
    q1: float
    q3: float
    robust_sigma: float
    k: float
    spec_lo: float | None
    spec_hi: float | None
    lo: float | None
    hi: float | None
    flagged: bool = False
    reason: str | None = None
    lots: int | None = None


def pat_limits(values: Sequence[float], *, k: float = 6, spec_lo: float | None = None,
               spec_hi: float | None = None) -> PatLimits:
    """Dynamic PAT limits from one population (the passing parts of a lot for one test).

    lo/hi = median -/+ k x (Q3 - Q1) / 1.35, then clamped so they are never wider than the
    spec limits (lo = max(lo, spec_lo), hi = min(hi, spec_hi)). A robust sigma of 0 (at least
    half the values identical) would give zero-width limits that fail every other part, so
    the set is flagged and no limits are applied. Raises ValueError for no values, a
    non-finite value or k <= 0.
    """
    if not k > 0:
        raise ValueError("k must be positive")
    q1, median, q3 = quantiles_linear(values)
    sigma = (q3 - q1) / _IQR_PER_SIGMA
    common: dict[str, Any] = {
        "method": PAT_METHOD, "n": len(values), "median": median, "q1": q1, "q3": q3,
        "robust_sigma": sigma, "k": k, "spec_lo": spec_lo, "spec_hi": spec_hi}
    if sigma == 0:
        return PatLimits(**common, lo=None, hi=None, flagged=True, reason=FLAT_DISTRIBUTION)
    lo = median - k * sigma
    hi = median + k * sigma
    if spec_lo is not None:
        lo = max(lo, spec_lo)
    if spec_hi is not None:
        hi = min(hi, spec_hi)
    return PatLimits(**common, lo=lo, hi=hi)


def static_pat_limits(lots: Mapping[str, Sequence[float]], *, min_lots: int = 6,
                      min_parts_per_lot: int = 30, k: float = 6,
                      spec_lo: float | None = None,
                      spec_hi: float | None = None) -> PatLimits:
    """Static PAT limits from earlier lots: the passing-part values of every lot that has at
    least `min_parts_per_lot` of them are pooled and passed to `pat_limits`; smaller lots are
    left out. Raises ValueError when fewer than `min_lots` lots qualify (AEC-Q001: 6 lots of
    at least 30 parts). `lots` on the result is the number of lots pooled."""
    qualified = [list(v) for v in lots.values() if len(v) >= min_parts_per_lot]
    if len(qualified) < min_lots:
        raise ValueError(
            f"static PAT limits need at least {min_lots} lots with at least "
            f"{min_parts_per_lot} passing parts each; {len(qualified)} of {len(lots)} "
            "lots qualify"
        )
    pooled = [v for values in qualified for v in values]
    limits = pat_limits(pooled, k=k, spec_lo=spec_lo, spec_hi=spec_hi)
    return replace(limits, lots=len(qualified))


def pat_failures(values: Sequence[float], limits: PatLimits) -> int:
    """How many values lie outside [lo, hi]; a value equal to a limit passes. A side whose
    limit is None (a flagged set) fails nothing."""
    lo, hi = limits.lo, limits.hi
    return sum((lo is not None and v < lo) or (hi is not None and v > hi) for v in values)


class SbaLimits(NamedTuple):
    """mean, sample sigma and the two limits (level 1 = 3 sigma, level 2 = 4 sigma)."""

    mean: float
    sigma: float
    level1: float
    level2: float


def _mean_sigma(values: Sequence[float], what: str) -> tuple[float, float]:
    if len(values) < 2:
        raise ValueError(f"{what}: the sample standard deviation needs at least 2 values")
    _checked(values, what)
    return statistics.fmean(values), statistics.stdev(values)


def sba_yield_limits(yields: Sequence[float]) -> SbaLimits:
    """Statistical yield limits from earlier lots' yields (percent): SYL1 = mean - 3 sigma,
    SYL2 = mean - 4 sigma, sigma the sample standard deviation (n - 1). Raises ValueError
    for fewer than 2 values or a non-finite value."""
    mean, sigma = _mean_sigma(yields, "SBA yield limits")
    return SbaLimits(mean, sigma, mean - 3 * sigma, mean - 4 * sigma)


def sba_bin_limits(percents: Sequence[float]) -> SbaLimits:
    """Statistical bin limits from earlier lots' percentages of one failing bin: SBL1 =
    mean + 3 sigma, SBL2 = mean + 4 sigma (sample sigma, n - 1). Raises ValueError for fewer
    than 2 values or a non-finite value."""
    mean, sigma = _mean_sigma(percents, "SBA bin limits")
    return SbaLimits(mean, sigma, mean + 3 * sigma, mean + 4 * sigma)


SbaStatus = Literal["ok", "level1", "level2", "insufficient_history"]
_RANK = {None: 0, "level1": 1, "level2": 2}


@dataclass(frozen=True)
class SbaResult:
    """The SBA verdict on one lot. level1 = hold for engineering review, level2 = hold for
    the material review board; the system proposes, a person disposes."""

    status: SbaStatus
    history_lots: int
    yield_pct: float
    yield_limits: SbaLimits | None = None
    yield_breach: Literal["level1", "level2"] | None = None
    bin_limits: dict[int, SbaLimits] = field(default_factory=dict)
    bin_breaches: dict[int, Literal["level1", "level2"]] = field(default_factory=dict)
    bins_insufficient: list[int] = field(default_factory=list)


def sba_evaluate(history_yields: Sequence[float],
                 history_bins: Mapping[int, Sequence[float]],
                 yield_pct: float, bin_pcts: Mapping[int, float], *,
                 min_lots: int = 6) -> SbaResult:
    """Judge a lot against limits from earlier lots of the same product and test step.

    With fewer than `min_lots` earlier yields the status is insufficient_history and nothing
    is judged. Otherwise the yield breaches level 2 when strictly below SYL2, level 1 when
    strictly below SYL1 (a yield exactly at a limit is not a breach). Each bin in
    `history_bins` (the controlled failing bins; a lot without the bin counts 0 %) breaches
    level 2 when its percentage is strictly above SBL2, level 1 when strictly above SBL1; a
    bin missing from `bin_pcts` is 0 %; a bin with fewer than `min_lots` history values is
    not judged and is listed in bins_insufficient. The status is the worst breach, else ok.
    """
    if len(history_yields) < min_lots:
        return SbaResult("insufficient_history", len(history_yields), yield_pct)
    yield_limits = sba_yield_limits(history_yields)
    yield_breach: Literal["level1", "level2"] | None = (
        "level2" if yield_pct < yield_limits.level2
        else "level1" if yield_pct < yield_limits.level1 else None)
    bin_limits: dict[int, SbaLimits] = {}
    bin_breaches: dict[int, Literal["level1", "level2"]] = {}
    insufficient = []
    for bin_no, history in history_bins.items():
        if len(history) < min_lots:
            insufficient.append(bin_no)
            continue
        limits = bin_limits[bin_no] = sba_bin_limits(history)
        pct = bin_pcts.get(bin_no, 0.0)
        if pct > limits.level2:
            bin_breaches[bin_no] = "level2"
        elif pct > limits.level1:
            bin_breaches[bin_no] = "level1"
    worst = max([yield_breach, *bin_breaches.values()], key=_RANK.__getitem__)
    return SbaResult(worst or "ok", len(history_yields), yield_pct, yield_limits, yield_breach,
                     bin_limits, bin_breaches, insufficient)
