"""The engine's resilience hook: breakers, 429 cooldowns, concurrency slots and node stats.

:class:`ResilienceGuard` fits ``router.engine.call.Guard`` structurally; it reads only
``step.connection.id``, ``step.connection.max_concurrent`` and ``step.model``.

With a :class:`LeaseShare` (the instances of a team gateway, store/shared.py) a connection's
``maxConcurrent`` holds across instances: besides its local slot, each call takes a lease in
the database, which expires if its instance dies instead of holding the slot for ever.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from router.errors import UpstreamError
from router.routing.breaker import BreakerRegistry
from router.routing.limits import ConcurrencyLimiter, Slot
from router.routing.stats import NodeStats, node_key


class ConnectionLike(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def max_concurrent(self) -> int | None: ...


class StepLike(Protocol):
    @property
    def connection(self) -> ConnectionLike: ...

    @property
    def model(self) -> str: ...


class LeaseShare(Protocol):
    """Concurrency leases shared by instances (store/shared.py implements it)."""

    def try_acquire(self, connection_id: str, limit: int) -> str | None: ...

    def release(self, lease_id: str) -> None: ...


LEASE_POLL_S = 0.05  # how often a call waiting for a shared slot asks again


class GuardLease:
    """A concurrency slot plus, when the breaker was half-open, its probe, plus a shared
    lease on a gateway. Release is idempotent; releasing without a reported outcome (client
    gone) frees the probe."""

    __slots__ = ("_breakers", "_lease", "_leases", "_slot", "connection_id", "probe_id")

    def __init__(
        self,
        slot: Slot,
        breakers: BreakerRegistry,
        connection_id: str,
        probe_id: int | None,
        leases: LeaseShare | None = None,
        lease: str | None = None,
    ) -> None:
        self._slot = slot
        self._breakers = breakers
        self.connection_id = connection_id
        self.probe_id = probe_id
        self._leases = leases
        self._lease = lease

    def release(self) -> None:
        if self.probe_id is not None:
            # A no-op when the outcome was already reported: that freed this probe already.
            self._breakers.on_cancel(self.connection_id, self.probe_id)
            self.probe_id = None
        if self._lease is not None and self._leases is not None:
            lease, self._lease = self._lease, None
            self._leases.release(lease)
        self._slot.release()


class ResilienceGuard:
    def __init__(
        self,
        breakers: BreakerRegistry | None = None,
        limiter: ConcurrencyLimiter | None = None,
        stats: NodeStats | None = None,
        leases: LeaseShare | None = None,
    ) -> None:
        self.breakers = breakers or BreakerRegistry()
        self.limiter = limiter or ConcurrencyLimiter()
        self.stats = stats or NodeStats()
        self.leases = leases

    async def admit(self, step: StepLike, *, last: bool) -> tuple[GuardLease | None, str | None]:
        """A lease to send ``step`` now, or (None, why). Only the ``last`` step of a plan
        waits for a concurrency slot; earlier ones are skipped when full."""
        conn = step.connection.id
        limit = step.connection.max_concurrent
        self.limiter.set_limit(conn, limit)
        model = step.model
        if not (self.leases is not None and limit):
            # The usual case: a free local slot and nothing shared to wait for. Nothing can
            # change between taking the slot and asking the breaker, so it is asked once.
            free = self.limiter.try_acquire(conn)
            if free is not None:
                ok, reason = self.breakers.allow(conn, model)
                if not ok:
                    free.release()
                    return None, reason
                probe = self.breakers.probe_id(conn)
                return GuardLease(free, self.breakers, conn, probe), None
        ok, reason = self.breakers.peek(conn, model)
        if not ok:
            return None, reason
        slot = self.limiter.try_acquire(conn)
        if slot is None:
            if not last:
                return None, "at_capacity"
            slot = await self.limiter.acquire(conn)
        lease: str | None = None
        if self.leases is not None and limit:
            try:
                lease = await self._shared_slot(conn, limit, wait=last)
            except BaseException:
                slot.release()
                raise
            if lease is None:
                slot.release()
                return None, "at_capacity"
        # Checked again after a possible wait; this is the call that takes a half-open probe.
        ok, reason = self.breakers.allow(conn, model)
        if not ok:
            if lease is not None and self.leases is not None:
                self.leases.release(lease)
            slot.release()
            return None, reason
        probe = self.breakers.probe_id(conn)
        return GuardLease(slot, self.breakers, conn, probe, self.leases, lease), None

    async def _shared_slot(self, conn: str, limit: int, *, wait: bool) -> str | None:
        """A lease on one of ``limit`` slots shared by every instance; the last step of a
        plan waits for one (polling: the holders may be other processes)."""
        assert self.leases is not None
        while True:
            lease = self.leases.try_acquire(conn, limit)
            if lease is not None or not wait:
                return lease
            await asyncio.sleep(LEASE_POLL_S)

    def success(self, step: StepLike, latency_ms: float, ttft_ms: float | None) -> None:
        self.stats.record(node_key(step.connection.id, step.model), True, latency_ms, ttft_ms)
        self.breakers.on_success(step.connection.id, step.model)

    def failure(self, step: StepLike, error: UpstreamError) -> None:
        self.stats.record(node_key(step.connection.id, step.model), False)
        self.breakers.on_failure(
            step.connection.id,
            error.breaker_worthy,
            retry_after=error.retry_after,
            rate_limited=error.kind == "rate_limit",
            model=step.model,
            connection_wide=error.rate_limit_scope == "connection",
        )

    def retry_in(self, step: StepLike) -> float | None:
        """Seconds until ``step`` may be tried again (breaker or cooldown), None if now."""
        return self.breakers.retry_in(step.connection.id, step.model)
