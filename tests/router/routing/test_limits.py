"""Per-connection concurrency: non-blocking try-acquire, FIFO waiting, in-flight counts."""

from __future__ import annotations

import asyncio

import pytest

from router.routing.limits import ConcurrencyLimiter, Slot


def full_limiter() -> tuple[ConcurrencyLimiter, Slot]:
    """A limiter of one slot for c1, with that slot taken."""
    lim = ConcurrencyLimiter({"c1": 1})
    slot = lim.try_acquire("c1")
    assert slot is not None
    return lim, slot


def test_try_acquire_skips_a_full_connection_and_release_frees_it() -> None:
    lim = ConcurrencyLimiter({"c1": 2})
    a = lim.try_acquire("c1")
    b = lim.try_acquire("c1")
    assert a is not None and b is not None
    assert lim.in_flight("c1") == 2
    assert lim.is_full("c1")
    assert lim.try_acquire("c1") is None
    a.release()
    a.release()  # idempotent: a double release must not free a slot someone else holds
    assert lim.in_flight("c1") == 1
    c = lim.try_acquire("c1")
    assert c is not None
    assert lim.try_acquire("c1") is None


def test_unlimited_connections_still_count_in_flight() -> None:
    lim = ConcurrencyLimiter({"zero": 0})
    slots = [lim.try_acquire("c1") for _ in range(50)] + [lim.try_acquire("zero")]
    assert all(s is not None for s in slots)
    assert lim.in_flight("c1") == 50
    assert lim.limit("zero") is None
    assert not lim.is_full("c1")


def test_context_manager_releases_even_on_error() -> None:
    lim, slot = full_limiter()
    with pytest.raises(RuntimeError), slot:
        assert lim.in_flight("c1") == 1
        raise RuntimeError("upstream broke")
    assert lim.in_flight("c1") == 0


async def test_acquire_waits_and_gets_the_slot_before_later_try_acquirers() -> None:
    lim, held = full_limiter()
    waiter = asyncio.create_task(lim.acquire("c1"))
    await asyncio.sleep(0)
    assert not waiter.done()
    assert lim.snapshot()["c1"] == {"inFlight": 1, "maxConcurrent": 1, "waiting": 1}
    held.release()
    # The slot is handed straight to the waiter: a barging try_acquire finds it taken.
    assert lim.try_acquire("c1") is None
    async with await waiter:
        assert lim.in_flight("c1") == 1
    assert lim.in_flight("c1") == 0


async def test_acquire_without_wait_behaves_like_try_acquire() -> None:
    lim = ConcurrencyLimiter({"c1": 1})
    first = await lim.acquire("c1", wait=False)
    assert first is not None
    assert await lim.acquire("c1", wait=False) is None


async def test_waiters_are_served_in_order() -> None:
    lim, held = full_limiter()
    served: list[int] = []

    async def wait(n: int) -> None:
        async with await lim.acquire("c1"):
            served.append(n)

    tasks = [asyncio.create_task(wait(n)) for n in range(3)]
    await asyncio.sleep(0)
    held.release()
    await asyncio.gather(*tasks)
    assert served == [0, 1, 2]
    assert lim.in_flight("c1") == 0


async def test_cancelled_waiter_does_not_leak_a_slot() -> None:
    lim, held = full_limiter()
    doomed = asyncio.create_task(lim.acquire("c1"))
    await asyncio.sleep(0)
    held.release()  # handed to the waiter ...
    doomed.cancel()  # ... which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await doomed
    assert lim.in_flight("c1") == 0
    assert lim.try_acquire("c1") is not None


async def test_raising_the_limit_admits_waiters() -> None:
    lim, _ = full_limiter()
    waiter = asyncio.create_task(lim.acquire("c1"))
    await asyncio.sleep(0)
    lim.set_limit("c1", 2)
    slot = await waiter
    assert lim.in_flight("c1") == 2
    slot.release()
