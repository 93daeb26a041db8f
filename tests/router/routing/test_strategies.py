"""Every combo strategy's order, with seeded randomness, real breakers, limiter and stats."""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable

import pytest

from router.errors import BadRequest
from router.routing.breaker import BreakerRegistry
from router.routing.limits import ConcurrencyLimiter
from router.routing.stats import NodeStats
from router.routing.strategies import (
    Candidate,
    MemoryStateStore,
    StrategyContext,
    order_nodes,
    validate_strategy,
)
from router.store.records import STRATEGIES, ModelPrice


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def nodes(
    *names: str, weight: list[float] | None = None, priority: list[int] | None = None
) -> list[Candidate]:
    return [
        Candidate(
            connection_id=name,
            model=f"m-{name}",
            weight=1.0 if weight is None else weight[i],
            priority=0 if priority is None else priority[i],
        )
        for i, name in enumerate(names)
    ]


def ctx(
    seed: int = 1,
    clock: FakeClock | None = None,
    *,
    limiter: ConcurrencyLimiter | None = None,
    state: MemoryStateStore | None = None,
    price_of: Callable[[str], ModelPrice | None] | None = None,
    estimated_tokens: int = 0,
) -> StrategyContext:
    clock = clock or FakeClock()
    return StrategyContext(
        rng=random.Random(seed),
        stats=NodeStats(clock=clock),
        breakers=BreakerRegistry(clock=clock),
        limiter=limiter or ConcurrencyLimiter(),
        state=state or MemoryStateStore(),
        price_of=price_of,
        estimated_tokens=estimated_tokens,
    )


def first_ids(strategy: str, ns: list[Candidate], c: StrategyContext, n: int) -> list[str]:
    return [order_nodes(strategy, "combo", ns, c).ordered[0].connection_id for _ in range(n)]


def ids(strategy: str, ns: list[Candidate], c: StrategyContext) -> list[str]:
    return [x.connection_id for x in order_nodes(strategy, "combo", ns, c).ordered]


def open_breaker(c: StrategyContext, conn: str) -> None:
    for _ in range(c.breakers.settings.failure_threshold):
        c.breakers.on_failure(conn, breaker_worthy=True)


# ---------------------------------------------------------------------- table-wide properties


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_returns_a_permutation_of_the_healthy_nodes(strategy: str) -> None:
    ns = nodes("a", "b", "c", "d", weight=[1, 2, 3, 4], priority=[3, 1, 2, 0])
    c = ctx()
    for _ in range(20):
        ordering = order_nodes(strategy, "combo", ns, c)
        assert sorted(ordering.order) == [0, 1, 2, 3]
        assert ordering.skipped == []


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_skips_open_breakers_and_rate_limited_nodes(strategy: str) -> None:
    ns = nodes("a", "b", "c")
    c = ctx()
    open_breaker(c, "a")
    c.breakers.on_failure("c", breaker_worthy=False, retry_after=20, rate_limited=True)
    for _ in range(10):
        ordering = order_nodes(strategy, "combo", ns, c)
        assert [x.connection_id for x in ordering.ordered] == ["b"]
        reasons = {s.candidate.connection_id: (s.reason, s.detail) for s in ordering.skipped}
        assert reasons == {
            "a": ("breaker_open", "retry in 30.0s"),
            "c": ("rate_limited", "retry in 20.0s"),
        }


def test_unknown_strategy_is_a_bad_request() -> None:
    with pytest.raises(BadRequest, match="unknown strategy 'fastest'"):
        order_nodes("fastest", "combo", nodes("a"), ctx())
    with pytest.raises(BadRequest):
        validate_strategy("Priority")
    assert validate_strategy("p2c") == "p2c"


def test_half_open_probe_in_flight_is_skipped_and_peeking_does_not_take_it() -> None:
    clock = FakeClock()
    c = ctx(clock=clock)
    ns = nodes("a", "b")
    open_breaker(c, "a")
    clock.now += 30
    # Planning twice must not consume the probe.
    assert ids("priority", ns, c) == ["a", "b"]
    assert ids("priority", ns, c) == ["a", "b"]
    assert c.breakers.allow("a") == (True, None)
    ordering = order_nodes("priority", "combo", ns, c)
    assert [s.reason for s in ordering.skipped] == ["probe_in_flight"]


def test_full_nodes_go_last_and_are_flagged() -> None:
    lim = ConcurrencyLimiter({"a": 1})
    c = ctx(limiter=lim)
    ns = nodes("a", "b", "c")
    assert lim.try_acquire("a") is not None
    ordering = order_nodes("priority", "combo", ns, c)
    assert [x.connection_id for x in ordering.ordered] == ["b", "c", "a"]
    view = ordering.as_dict()
    assert [o["atCapacity"] for o in view["order"]] == [False, False, True]
    assert view["strategy"] == "priority"
    assert view["skipped"] == []


# ---------------------------------------------------------------------- one test per strategy


def test_priority_lower_number_first_then_list_order() -> None:
    ns = nodes("a", "b", "c", "d", priority=[2, 1, 2, 0])
    assert ids("priority", ns, ctx()) == ["d", "b", "a", "c"]


def test_weighted_first_pick_follows_the_weights() -> None:
    ns = nodes("heavy", "light", weight=[3, 1])
    c = ctx(seed=42)
    draws = 4000
    counts = Counter(first_ids("weighted", ns, c, draws))
    p = 0.75
    sigma = math.sqrt(draws * p * (1 - p))
    assert abs(counts["heavy"] - draws * p) < 5 * sigma
    assert counts["heavy"] + counts["light"] == draws


def test_weighted_rest_by_weight_descending() -> None:
    ns = nodes("a", "b", "c", "d", weight=[1, 5, 3, 5])
    c = ctx(seed=7)
    for _ in range(50):
        order = ids("weighted", ns, c)
        rest = [x for x in ["b", "d", "c", "a"] if x != order[0]]
        assert order[1:] == rest


def test_weighted_zero_weight_is_never_first_unless_all_zero() -> None:
    c = ctx(seed=3)
    assert set(first_ids("weighted", nodes("a", "b", weight=[0, 1]), c, 200)) == {"b"}
    assert set(first_ids("weighted", nodes("a", "b", weight=[0, 0]), c, 200)) == {"a", "b"}


def test_round_robin_rotates_exactly() -> None:
    ns = nodes("a", "b", "c")
    c = ctx()
    orders = [ids("round-robin", ns, c) for _ in range(4)]
    assert orders == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"], ["a", "b", "c"]]


def test_round_robin_position_survives_a_state_store_round_trip() -> None:
    ns = nodes("a", "b", "c")
    store = MemoryStateStore()
    assert ids("round-robin", ns, ctx(state=store)) == ["a", "b", "c"]
    # A new process: fresh context, state rebuilt from the persisted (JSON) values.
    restored = MemoryStateStore(dict(store.data))
    assert ids("round-robin", ns, ctx(state=restored)) == ["b", "c", "a"]
    # Positions are per combo.
    assert ids("round-robin", ns, ctx(state=restored)) == ["c", "a", "b"]
    assert [
        x.connection_id
        for x in order_nodes("round-robin", "other", ns, ctx(state=restored)).ordered
    ] == ["a", "b", "c"]


def test_round_robin_skipped_node_does_not_double_its_neighbour() -> None:
    ns = nodes("a", "b", "c")
    c = ctx()
    open_breaker(c, "b")
    firsts = first_ids("round-robin", ns, c, 6)
    assert firsts == ["a", "c", "a", "c", "a", "c"]


def test_fill_first_sticks_to_the_first_node_until_it_fails_or_fills() -> None:
    ns = nodes("a", "b", "c")
    lim = ConcurrencyLimiter({"a": 1})
    c = ctx(limiter=lim)
    assert first_ids("fill-first", ns, c, 5) == ["a"] * 5
    slot = lim.try_acquire("a")
    assert slot is not None
    assert ids("fill-first", ns, c) == ["b", "c", "a"]
    slot.release()
    open_breaker(c, "a")
    assert ids("fill-first", ns, c) == ["b", "c"]


def test_random_is_a_seeded_shuffle() -> None:
    ns = nodes("a", "b", "c")
    a = [ids("random", ns, ctx(seed=5)) for _ in range(3)]
    assert a[0] == a[1] == a[2]  # same seed, same order
    c = ctx(seed=9)
    seen = {tuple(ids("random", ns, c)) for _ in range(300)}
    assert len(seen) == 6  # every permutation shows up


def test_strict_random_uses_each_node_once_per_deck() -> None:
    ns = nodes("a", "b", "c", "d")
    c = ctx(seed=11)
    firsts = first_ids("strict-random", ns, c, 40)
    decks = [firsts[i : i + 4] for i in range(0, 40, 4)]
    assert all(sorted(deck) == ["a", "b", "c", "d"] for deck in decks)
    assert len({tuple(d) for d in decks}) > 1  # reshuffled, not a fixed rotation


def test_strict_random_deck_survives_a_state_store_round_trip() -> None:
    ns = nodes("a", "b", "c", "d")
    store = MemoryStateStore()
    got = first_ids("strict-random", ns, ctx(seed=1, state=store), 2)
    restored = MemoryStateStore(dict(store.data))
    got += first_ids("strict-random", ns, ctx(seed=999, state=restored), 2)
    assert sorted(got) == ["a", "b", "c", "d"]


def test_strict_random_new_node_list_starts_a_new_deck() -> None:
    store = MemoryStateStore()
    first_ids("strict-random", nodes("a", "b", "c"), ctx(state=store), 2)
    got = first_ids("strict-random", nodes("x", "y"), ctx(state=store), 2)
    assert sorted(got) == ["x", "y"]


def test_strict_random_skips_unhealthy_cards_without_losing_turns() -> None:
    ns = nodes("a", "b", "c")
    c = ctx(seed=4)
    open_breaker(c, "b")
    firsts = first_ids("strict-random", ns, c, 20)
    assert "b" not in firsts
    pairs = [firsts[i : i + 2] for i in range(0, 20, 2)]
    assert all(sorted(p) == ["a", "c"] for p in pairs)


def test_least_used_balances_calls() -> None:
    ns = nodes("a", "b", "c")
    c = ctx()
    for _ in range(30):
        chosen = order_nodes("least-used", "combo", ns, c).ordered[0]
        c.stats.record(chosen.key, True, latency_ms=10)
    assert {k: v["requests"] for k, v in c.stats.snapshot().items()} == {
        "a:m-a": 10,
        "b:m-b": 10,
        "c:m-c": 10,
    }


def test_least_used_counts_calls_still_in_flight() -> None:
    ns = nodes("a", "b")
    c = ctx()
    c.stats.record(ns[1].key, True)
    assert ids("least-used", ns, c)[0] == "a"
    held = [c.limiter.try_acquire("a") for _ in range(2)]
    assert ids("least-used", ns, c) == ["b", "a"]
    assert all(h is not None for h in held)


def test_p2c_never_puts_an_open_breaker_first() -> None:
    ns = nodes("a", "b", "c")
    c = ctx(seed=2)
    open_breaker(c, "a")
    firsts = Counter(first_ids("p2c", ns, c, 500))
    assert "a" not in firsts
    assert set(firsts) == {"b", "c"}


def test_p2c_puts_the_better_of_the_two_first() -> None:
    ns = nodes("good", "flaky")
    c = ctx(seed=8)
    for n in range(10):
        c.stats.record(ns[0].key, True, latency_ms=500)
        c.stats.record(ns[1].key, n % 2 == 0, latency_ms=50)
    assert set(first_ids("p2c", ns, c, 50)) == {"good"}
    # Equal success rates: the lower latency wins.
    c2 = ctx(seed=8)
    c2.stats.record(ns[0].key, True, latency_ms=500)
    c2.stats.record(ns[1].key, True, latency_ms=50)
    assert set(first_ids("p2c", ns, c2, 50)) == {"flaky"}


def test_p2c_samples_two_of_many() -> None:
    ns = nodes("a", "b", "c", "d")
    c = ctx(seed=6)
    for n in ns:
        c.stats.record(n.key, True, latency_ms=100)
    # "d" is the worst; it can only be first if never sampled with a better one, which p2c
    # never does, so it is never first, while the three better ones all get traffic.
    c.stats.record(ns[3].key, False)
    firsts = Counter(first_ids("p2c", ns, c, 300))
    assert set(firsts) == {"a", "b", "c"}


def test_cost_optimized_cheapest_input_first_unknown_last() -> None:
    prices = {
        "m-a": ModelPrice(model="m-a", input=3.0, output=15.0),
        "m-b": ModelPrice(model="m-b", input=0.15, output=0.6),
        "m-d": ModelPrice(model="m-d", input=1.0, output=1.0),
    }
    ns = nodes("a", "b", "c", "d")
    assert ids("cost-optimized", ns, ctx(price_of=prices.get)) == ["b", "d", "a", "c"]
    assert ids("cost-optimized", ns, ctx()) == ["a", "b", "c", "d"]


def test_latency_optimized_lowest_p50_ttft_first_unknown_last() -> None:
    ns = nodes("a", "b", "c")
    c = ctx()
    for ttft in (900, 100, 950):
        c.stats.record(ns[0].key, True, latency_ms=1000, ttft_ms=ttft)
    for ttft in (300, 310, 5000):
        c.stats.record(ns[2].key, True, latency_ms=1000, ttft_ms=ttft)
    assert ids("latency-optimized", ns, c) == ["c", "a", "b"]


def test_lkgp_last_known_good_first() -> None:
    clock = FakeClock()
    ns = nodes("a", "b", "c")
    c = ctx(clock=clock)
    assert ids("lkgp", ns, c) == ["a", "b", "c"]
    c.stats.record(ns[1].key, True)
    clock.now += 1
    c.stats.record(ns[2].key, True)
    assert ids("lkgp", ns, c) == ["c", "a", "b"]
    clock.now += 1
    c.stats.record(ns[2].key, False)  # its latest call failed: no longer known good
    assert ids("lkgp", ns, c) == ["b", "a", "c"]


def test_context_optimized_largest_window_first_and_small_ones_skipped() -> None:
    ns = [
        Candidate("a", "small", context_window=8_000),
        Candidate("b", "big", context_window=1_000_000),
        Candidate("c", "unknown"),
        Candidate("d", "mid", context_window=200_000),
    ]
    ordering = order_nodes("context-optimized", "combo", ns, ctx(estimated_tokens=50_000))
    assert [x.model for x in ordering.ordered] == ["big", "mid", "unknown"]
    assert [(s.candidate.model, s.reason) for s in ordering.skipped] == [
        ("small", "context_too_small")
    ]
    assert ordering.skipped[0].detail == "window 8000 < ~50000 tokens"
    assert ordering.as_dict()["skipped"][0]["reason"] == "context_too_small"
    # A request that fits keeps every node, biggest first.
    small_req = order_nodes("context-optimized", "combo", ns, ctx(estimated_tokens=100))
    assert [x.model for x in small_req.ordered] == ["big", "mid", "small", "unknown"]
