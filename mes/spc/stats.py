"""Control chart arithmetic (AIAG SPC manual; PRODUCT.md, "Process control"): the
constants per subgroup size, a subgroup's statistics, control limits from a baseline, the
Western Electric rules and process capability. Pure computation: no Flask, no ORM.

A point exactly on a limit (or a zone boundary) is not beyond it; comparisons allow a
relative tolerance of 1e-9 so that a value entered as the printed limit is "on" it despite
binary rounding.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# n: (A2, D3, D4, d2) for X̄–R charts (PRODUCT.md's table).
XBAR_R = {
    2: (1.880, 0.0, 3.267, 1.128),
    3: (1.023, 0.0, 2.574, 1.693),
    4: (0.729, 0.0, 2.282, 2.059),
    5: (0.577, 0.0, 2.114, 2.326),
    6: (0.483, 0.0, 2.004, 2.534),
    7: (0.419, 0.076, 1.924, 2.704),
    8: (0.373, 0.136, 1.864, 2.847),
    9: (0.337, 0.184, 1.816, 2.970),
    10: (0.308, 0.223, 1.777, 3.078),
}
# Individuals and moving range (moving ranges of 2): E2 = 3/d2, D4 and d2 for n = 2.
E2 = 2.660
MR_D4 = 3.267
MR_D2 = 1.128

MAX_SUBGROUP = 25
MIN_BASELINE = 25
RULES = (1, 2, 3, 4)
XBAR, SPREAD = "xbar", "spread"


def chart_kind(n: int) -> str:
    """The chart pair for subgroup size n: i_mr (1), xbar_r (2 to 10), xbar_s (above)."""
    return "i_mr" if n == 1 else "xbar_r" if n <= 10 else "xbar_s"


def c4(n: int) -> float:
    """c4 = √(2/(n−1))·Γ(n/2)/Γ((n−1)/2)."""
    return math.sqrt(2.0 / (n - 1)) * math.exp(math.lgamma(n / 2) - math.lgamma((n - 1) / 2))


def s_constants(n: int) -> tuple[float, float, float, float]:
    """(A3, B3, B4, c4) for X̄–S charts of subgroup size n."""
    c = c4(n)
    width = 3 * math.sqrt(1 - c * c) / c
    return 3 / (c * math.sqrt(n)), max(0.0, 1 - width), 1 + width, c


def _round(x: float) -> float:
    """Twelve significant digits: the stored statistics do not carry binary noise."""
    return float(f"{x:.12g}")


def mean(values: Sequence[float]) -> float:
    return _round(math.fsum(values) / len(values))


def value_range(values: Sequence[float]) -> float:
    return _round(max(values) - min(values))


def sd(values: Sequence[float]) -> float:
    """The sample standard deviation (n − 1)."""
    m = math.fsum(values) / len(values)
    return _round(math.sqrt(math.fsum((v - m) ** 2 for v in values) / (len(values) - 1)))


def spread(kind: str, values: Sequence[float], previous_mean: float | None) -> float | None:
    """A subgroup's spread: range (X̄–R), standard deviation (X̄–S) or the moving range
    from the previous individual (I–MR; None for the first)."""
    if kind == "xbar_r":
        return value_range(values)
    if kind == "xbar_s":
        return sd(values)
    return None if previous_mean is None else _round(abs(values[0] - previous_mean))


@dataclass(frozen=True)
class Limits:
    center: float
    ucl: float
    lcl: float
    r_center: float
    r_ucl: float
    r_lcl: float
    sigma: float


def compute_limits(kind: str, n: int, means: Sequence[float],
                   spreads: Sequence[float | None]) -> Limits:
    """Control limits from a baseline of subgroups (oldest first): X̿ ± A2·R̄ with D3·R̄,
    D4·R̄ (X̄–R); X̿ ± A3·S̄ with B3·S̄, B4·S̄ (X̄–S); X̄ ± E2·MR̄ with 0, 3.267·MR̄ (I–MR,
    the moving ranges within the baseline). σ = R̄/d2, S̄/c4 or MR̄/1.128."""
    center = math.fsum(means) / len(means)
    if kind == "i_mr":
        ranges = [abs(b - a) for a, b in zip(means, means[1:], strict=False)]
        mr = math.fsum(ranges) / len(ranges)
        lim = (center, center + E2 * mr, center - E2 * mr, mr, MR_D4 * mr, 0.0, mr / MR_D2)
    elif kind == "xbar_r":
        a2, d3, d4, d2 = XBAR_R[n]
        r = math.fsum(s for s in spreads if s is not None) / len(spreads)
        lim = (center, center + a2 * r, center - a2 * r, r, d4 * r, d3 * r, r / d2)
    else:
        a3, b3, b4, c = s_constants(n)
        s = math.fsum(x for x in spreads if x is not None) / len(spreads)
        lim = (center, center + a3 * s, center - a3 * s, s, b4 * s, b3 * s, s / c)
    return Limits(*(_round(x) for x in lim))


def _beyond(x: float, bound: float, above: bool) -> bool:
    """x strictly beyond `bound` (above or below it); on it is not beyond."""
    tolerance = 1e-9 * max(1.0, abs(bound), abs(x))
    return x - bound > tolerance if above else bound - x > tolerance


def _zone(x: float, center: float, upper: float, lower: float, k: int) -> int:
    """+1 when x is beyond k σ above the centre, −1 beyond k σ below, 0 otherwise. σ is a
    third of the distance from the centre to the limit on that side (k = 0: the side of the
    centre line, a point on it being on neither)."""
    if _beyond(x, center + k * (upper - center) / 3, True):
        return 1
    if _beyond(x, center - k * (center - lower) / 3, False):
        return -1
    return 0


def judge(points: Sequence[float], center: float, upper: float, lower: float,
          rules: Sequence[int]) -> list[tuple[int, list[int]]]:
    """The Western Electric rules the last of `points` (oldest first, all judged by the same
    limits) breaks, each with the indexes of the points of its pattern:
    1 — beyond a control limit; 2 — two of three consecutive beyond 2σ on one side, the last
    one of them; 3 — four of five beyond 1σ on one side, the last one of them; 4 — eight
    consecutive on one side of the centre line."""
    hits: list[tuple[int, list[int]]] = []
    last = len(points) - 1
    x = points[last]
    if 1 in rules and (_beyond(x, upper, True) or _beyond(x, lower, False)):
        hits.append((1, [last]))
    for rule, k, of, need in ((2, 2, 3, 2), (3, 1, 5, 4)):
        side = _zone(x, center, upper, lower, k)
        if rule in rules and side and len(points) >= need:
            window = range(max(0, last - of + 1), last + 1)
            marked = [i for i in window if _zone(points[i], center, upper, lower, k) == side]
            if len(marked) >= need:
                hits.append((rule, marked))
    if 4 in rules and len(points) >= 8:
        sides = {_zone(points[i], center, upper, lower, 0) for i in range(last - 7, last + 1)}
        if len(sides) == 1 and 0 not in sides:
            hits.append((4, list(range(last - 7, last + 1))))
    return hits


def capability(values: Sequence[float], sigma_within: float | None, lsl: float | None,
               usl: float | None) -> tuple[float | None, ...]:
    """(mean, overall σ, Cp, Cpk, Pp, Ppk) of the individual values. Cp = (USL − LSL)/6σ,
    Cpk = min(USL − μ, μ − LSL)/3σ (the one side given when only one limit is), σ within
    subgroups for Cp/Cpk, the overall sample standard deviation for Pp/Ppk."""
    if not values:
        return (None, None, None, None, None, None)
    mu = math.fsum(values) / len(values)
    overall = sd(values) if len(values) > 1 else None

    def indices(sigma: float | None) -> tuple[float | None, float | None]:
        if not sigma:
            return None, None
        cp = (usl - lsl) / (6 * sigma) if usl is not None and lsl is not None else None
        sides = [d / (3 * sigma) for d in ((usl - mu) if usl is not None else None,
                                          (mu - lsl) if lsl is not None else None)
                 if d is not None]
        cpk = min(sides) if sides else None
        return (None if cp is None else round(cp, 4), None if cpk is None else round(cpk, 4))

    cp, cpk = indices(sigma_within)
    pp, ppk = indices(overall)
    return (_round(mu), overall, cp, cpk, pp, ppk)


def out_of_spec(values: Sequence[float], lsl: float | None, usl: float | None) -> list[float]:
    """The values beyond a specification limit (on it is within)."""
    return [v for v in values if (usl is not None and _beyond(v, usl, True))
            or (lsl is not None and _beyond(v, lsl, False))]
