"""The benchmark's statistics: percentiles, round spreads, paired added latency, ratios, slopes."""

import math

import pytest

from bench.stats import added, frontier, percentile, ratios, slope_per_minute, spread


def test_percentile_interpolates_between_ranks():
    values = [4.0, 1.0, 3.0, 2.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 4.0
    assert percentile(values, 50) == 2.5
    assert percentile([10.0, 20.0], 25) == pytest.approx(12.5)
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError):
        percentile(values, 101)


def test_spread_is_median_with_min_max_and_drops_nan():
    s = spread([3.0, math.nan, 1.0, 2.0, math.inf])
    assert (s.median, s.lo, s.hi, s.n) == (2.0, 1.0, 3.0, 3)
    assert s.fmt(1, " ms") == "2.0 ms (1.0–3.0)"
    assert spread([5.0]).fmt(0) == "5"
    assert not spread([math.nan]).ok
    assert spread([]).fmt() == "n/a"


def test_added_and_ratios_pair_rounds():
    arm = [12.0, 15.0, 11.0]
    base = [10.0, 10.0, 10.0]
    assert added(arm, base) == [2.0, 5.0, 1.0]
    r = ratios([2.0, 6.0, 1.0], [1.0, 3.0, 0.0])
    assert r[:2] == [2.0, 2.0]
    assert math.isnan(r[2])  # a ratio against nothing means nothing
    with pytest.raises(ValueError):
        added([1.0], [1.0, 2.0])


def test_slope_per_minute_of_a_line():
    samples = [(t, 100.0 + 0.5 * t) for t in range(0, 60, 2)]  # +0.5 MB per second
    assert slope_per_minute(samples) == pytest.approx(30.0)
    assert slope_per_minute([(0.0, 1.0), (10.0, 1.0)]) == 0.0
    assert math.isnan(slope_per_minute([(0.0, 1.0)]))


def test_frontier_takes_best_clean_rung_under_limit():
    rungs = [(100.0, 2.0, 0), (400.0, 8.0, 0), (900.0, 30.0, 0), (1200.0, 9.0, 3)]
    assert frontier(rungs, 10) == 400.0
    assert frontier(rungs, 50) == 900.0
    assert frontier(rungs, 1) == 0.0
