"""Pure statistics for the benchmark: percentiles, round summaries, ratios, RSS slope."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between closest ranks (the
    same rule as numpy's default), NaN for no values."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile out of range: {q}")
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = math.floor(pos)
    hi = math.ceil(pos)
    if lo == hi:
        return ordered[lo]
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass(frozen=True, slots=True)
class Spread:
    """The median of per-round values with the min and max around it: the report's unit."""

    median: float
    lo: float
    hi: float
    n: int

    @property
    def ok(self) -> bool:
        return self.n > 0 and not math.isnan(self.median)

    def fmt(self, digits: int = 2, unit: str = "") -> str:
        if not self.ok:
            return "n/a"
        mid = f"{self.median:.{digits}f}{unit}"
        if self.n == 1 or (self.lo == self.hi):
            return mid
        return f"{mid} ({self.lo:.{digits}f}–{self.hi:.{digits}f})"


def spread(values: Sequence[float]) -> Spread:
    """Median and min/max of finite per-round values; NaNs (a round that produced nothing)
    are dropped rather than poisoning the median."""
    finite = [v for v in values if not math.isnan(v) and not math.isinf(v)]
    if not finite:
        return Spread(math.nan, math.nan, math.nan, 0)
    return Spread(statistics.median(finite), min(finite), max(finite), len(finite))


def added(arm: Sequence[float], base: Sequence[float]) -> list[float]:
    """Per-round added latency: the arm's round value minus the direct arm's value of the same
    round. Pairing by round is the point: both ran side by side, so drift cancels."""
    if len(arm) != len(base):
        raise ValueError("rounds differ in count")
    return [a - b for a, b in zip(arm, base, strict=True)]


def ratios(num: Sequence[float], den: Sequence[float]) -> list[float]:
    """Per-round ratios num/den; a round with a non-positive denominator gives NaN, because a
    ratio against nothing (an added latency at or below the noise floor) means nothing."""
    if len(num) != len(den):
        raise ValueError("rounds differ in count")
    return [n / d if d > 0 else math.nan for n, d in zip(num, den, strict=True)]


def slope_per_minute(samples: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value) samples, in value units per minute."""
    if len(samples) < 2:
        return math.nan
    xs = [s[0] for s in samples]
    ys = [s[1] for s in samples]
    mx = statistics.fmean(xs)
    my = statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return math.nan
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    return sxy / sxx * 60.0


def frontier(rungs: Sequence[tuple[float, float, int]], p99_limit_ms: float) -> float:
    """The most throughput among (rps, p99_ms, errors) rungs with p99 under the limit and no
    errors; 0 when no rung qualifies."""
    best = 0.0
    for rps, p99, errors in rungs:
        if errors == 0 and p99 < p99_limit_ms and rps > best:
            best = rps
    return best
