"""Rolling node statistics: window by age and by count, p50s, last known good."""

from __future__ import annotations

import pytest

from router.routing.stats import NodeStats, node_key


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def test_window_counts_rates_and_medians() -> None:
    clock = FakeClock()
    st = NodeStats(clock=clock)
    key = node_key("c1", "gpt-4o")
    for ttft in (100, 300, 200):
        st.record(key, True, latency_ms=ttft * 2, ttft_ms=ttft)
    st.record(key, False, latency_ms=5)  # failures do not skew latency figures
    w = st.window(key)
    assert (w.requests, w.failures) == (4, 1)
    assert w.success_rate == pytest.approx(0.75)
    assert w.p50_ttft_ms == 200
    assert w.p50_latency_ms == 400
    assert w.last_used == clock.now


def test_old_samples_leave_the_window_but_totals_stay() -> None:
    clock = FakeClock()
    st = NodeStats(window_s=300, clock=clock)
    st.record("k", False)
    clock.now += 301
    st.record("k", True, latency_ms=10, ttft_ms=5)
    w = st.window("k")
    assert (w.requests, w.failures, w.success_rate) == (1, 0, 1.0)
    snap = st.snapshot()["k"]
    assert (snap["requests"], snap["failures"]) == (2, 1)
    assert snap["window"]["requests"] == 1
    assert snap["avgLatencyMs"] == 10


def test_window_is_also_bounded_by_count() -> None:
    st = NodeStats(max_samples=10, clock=FakeClock())
    for n in range(25):
        st.record("k", n % 5 != 0)
    assert st.window("k").requests == 10


def test_known_good_follows_the_latest_outcome() -> None:
    clock = FakeClock()
    st = NodeStats(clock=clock)
    assert not st.window("k").known_good
    st.record("k", True)
    assert st.window("k").known_good
    clock.now += 1
    st.record("k", False)
    assert not st.window("k").known_good
    clock.now += 1
    st.record("k", True)
    assert st.window("k").known_good


def test_unknown_node_has_an_empty_window() -> None:
    w = NodeStats().window("nobody")
    assert (w.requests, w.success_rate, w.p50_ttft_ms, w.last_used) == (0, None, None, None)
