"""ResilienceGuard: the engine's admit/success/failure hook over breakers, limits and stats."""

from __future__ import annotations

import asyncio

from router.errors import UpstreamError
from router.routing.breaker import BreakerRegistry, BreakerState, ResilienceSettings
from router.routing.guard import ResilienceGuard
from router.routing.resolve import Step
from router.routing.stats import NodeStats
from router.store.records import ProviderConnection


class FakeClock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


def step(conn_id: str = "c1", max_concurrent: int | None = None) -> Step:
    conn = ProviderConnection(
        id=conn_id,
        provider="openai",
        name=conn_id,
        url="http://127.0.0.1:1",
        max_concurrent=max_concurrent,
    )
    return Step(conn, "gpt-4o")


def guard(clock: FakeClock, threshold: int = 2) -> ResilienceGuard:
    settings = ResilienceSettings(failure_threshold=threshold)
    return ResilienceGuard(BreakerRegistry(settings, clock=clock), stats=NodeStats(clock=clock))


async def test_full_connection_is_skipped_unless_it_is_the_last_step() -> None:
    g = guard(FakeClock())
    s = step(max_concurrent=1)
    held, _ = await g.admit(s, last=False)
    assert held is not None
    assert await g.admit(s, last=False) == (None, "at_capacity")
    waiter = asyncio.create_task(g.admit(s, last=True))
    await asyncio.sleep(0)
    assert not waiter.done()
    held.release()
    lease, reason = await waiter
    assert lease is not None and reason is None
    assert g.limiter.in_flight("c1") == 1
    lease.release()
    lease.release()
    assert g.limiter.in_flight("c1") == 0


async def test_failures_open_the_breaker_and_record_stats() -> None:
    clock = FakeClock()
    g = guard(clock)
    s = step()
    for _ in range(2):
        lease, _ = await g.admit(s, last=True)
        assert lease is not None
        g.failure(s, UpstreamError("boom", kind="server", status=503))
        lease.release()
    assert g.breakers.state("c1") is BreakerState.OPEN
    assert await g.admit(s, last=True) == (None, "breaker_open")
    assert g.limiter.in_flight("c1") == 0
    w = g.stats.window(s.key)
    assert (w.requests, w.failures) == (2, 2)


async def test_rate_limit_error_starts_the_cooldown_from_retry_after() -> None:
    clock = FakeClock()
    g = guard(clock)
    s = step()
    g.failure(s, UpstreamError("slow down", kind="rate_limit", status=429, retry_after=7))
    assert await g.admit(s, last=True) == (None, "rate_limited")
    clock.now += 7
    lease, _ = await g.admit(s, last=True)
    assert lease is not None
    g.success(s, 120.0, 40.0)
    lease.release()
    assert g.stats.window(s.key).p50_ttft_ms == 40.0


async def test_released_probe_without_outcome_lets_the_next_probe_go() -> None:
    clock = FakeClock()
    g = guard(clock)
    s = step()
    for _ in range(2):
        g.failure(s, UpstreamError("down", kind="connection"))
    clock.now += 30
    probe, _ = await g.admit(s, last=True)
    assert probe is not None
    assert await g.admit(s, last=True) == (None, "probe_in_flight")
    probe.release()  # the client went away before the upstream answered
    again, _ = await g.admit(s, last=True)
    assert again is not None
    g.success(s, 10.0, None)
    again.release()
    assert g.breakers.state("c1") is BreakerState.CLOSED
