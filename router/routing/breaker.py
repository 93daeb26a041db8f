"""Per-connection circuit breakers and 429 cooldowns (router.md "Fallback and resilience").

A breaker is per connection (a dead upstream is dead for every model). A 429 cools down the
model it was for on that connection (vendors rate-limit per model), unless the upstream said
the limit is the whole account's; then the whole connection waits.

Everything here runs on the event loop thread, so there are no locks. Time comes from an
injected ``clock`` so the state machine is testable without sleeping.

Instances of a team gateway share what they learn through a :class:`BreakerShare`
(store/shared.py): a breaker one instance opens, and a 429 cooldown it starts, is honoured by
the others (read from a local copy, no I/O per request); after the cooldown exactly one
instance wins the probe (an atomic claim in the database), and its outcome closes or reopens
the breaker everywhere. Shared times are wall-clock seconds (``wall``), as processes on
different hosts have no common monotonic clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, Protocol, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from router.store.records import RemoteBreaker

Clock = Callable[[], float]

# Why a connection is refused right now; the same strings appear in plans and attempt logs.
BreakerReason = Literal["breaker_open", "probe_in_flight", "rate_limited"]


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class ResilienceSettings(BaseModel):
    """Breaker thresholds and cooldowns (GET/PATCH /api/resilience)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, validate_assignment=True)

    # Bounded: a 1e308 cooldown would keep a breaker open for ever.
    failure_threshold: int = Field(default=5, ge=1, le=10_000, alias="failureThreshold")
    cooldown_s: float = Field(default=30.0, gt=0, le=86_400, alias="cooldownSeconds")
    max_cooldown_s: float = Field(default=600.0, gt=0, le=7 * 86_400, alias="maxCooldownSeconds")
    rate_limit_default_cooldown_s: float = Field(
        default=60.0, ge=0, le=86_400, alias="rateLimitDefaultCooldownSeconds"
    )

    @model_validator(mode="after")
    def _cap_above_base(self) -> Self:
        if self.max_cooldown_s < self.cooldown_s:
            raise ValueError("maxCooldownSeconds must be >= cooldownSeconds")
        return self


class BreakerShare(Protocol):
    """Breaker state shared with other instances (store/shared.py implements it)."""

    def view(self, conn_id: str) -> RemoteBreaker | None: ...

    def opened(self, conn_id: str, until: float, cooldown_s: float) -> None: ...

    def closed(self, conn_id: str | None) -> None: ...

    def rate_limited(self, conn_id: str, model: str | None, until: float) -> None: ...

    def claim_probe(self, conn_id: str, until: float) -> bool: ...

    def release_probe(self, conn_id: str) -> None: ...


@dataclass(slots=True)
class _Breaker:
    cooldown_s: float
    state: BreakerState = BreakerState.CLOSED
    consecutive_failures: int = 0
    opened_at: float = 0.0
    probe_started_at: float | None = None
    probe_id: int | None = None
    rate_limited_until: float = 0.0  # the whole connection (an account-wide limit)
    model_limited_until: dict[str, float] = field(default_factory=dict)  # per model
    trips: int = 0
    total_failures: int = 0
    last_failure_at: float | None = None


class BreakerRegistry:
    """One breaker and one 429 cooldown per connection id, created on first sight.

    ``allow`` is the gate right before a request is sent: in HALF_OPEN it hands out the single
    probe. ``peek`` answers the same question without taking the probe, for planning and dry
    runs. Every ``allow`` that returned True must be followed by ``on_success``,
    ``on_failure`` or ``on_cancel`` so a half-open probe is never leaked.
    """

    def __init__(
        self,
        settings: ResilienceSettings | None = None,
        clock: Clock = time.monotonic,
        *,
        share: BreakerShare | None = None,
        wall: Clock = time.time,
    ):
        self.settings = settings or ResilienceSettings()
        self.clock = clock
        self.share = share
        self.wall = wall
        self._breakers: dict[str, _Breaker] = {}
        self._probe_seq = 0
        self._remote_probes: set[str] = set()  # connections whose shared probe we hold

    def _get(self, conn_id: str) -> _Breaker:
        b = self._breakers.get(conn_id)
        if b is None:
            b = self._breakers[conn_id] = _Breaker(cooldown_s=self.settings.cooldown_s)
        return b

    def _refresh(self, b: _Breaker, now: float) -> None:
        # OPEN -> HALF_OPEN is lazy: it happens when somebody looks after the cooldown.
        if b.state is BreakerState.OPEN and now >= b.opened_at + b.cooldown_s:
            b.state = BreakerState.HALF_OPEN
            b.probe_started_at = None
        # A probe whose owner never reported back (a bug or a lost task) must not wedge the
        # connection forever; after the longest cooldown another probe may go.
        if (
            b.state is BreakerState.HALF_OPEN
            and b.probe_started_at is not None
            and now - b.probe_started_at >= self.settings.max_cooldown_s
        ):
            b.probe_started_at = None

    @staticmethod
    def _limited_until(b: _Breaker, model: str | None) -> float:
        until = b.rate_limited_until
        if model is not None:
            until = max(until, b.model_limited_until.get(model, 0.0))
        return until

    def _check(
        self, conn_id: str, model: str | None, *, take_probe: bool
    ) -> tuple[bool, BreakerReason | None]:
        now = self.clock()
        b = self._get(conn_id)
        self._refresh(b, now)
        if b.state is BreakerState.OPEN:
            return False, "breaker_open"
        if now < self._limited_until(b, model):
            return False, "rate_limited"
        if b.state is BreakerState.HALF_OPEN:
            if b.probe_started_at is not None:
                return False, "probe_in_flight"
            if take_probe:
                if self.share is not None:
                    # Opened here, but the probe is one for all instances.
                    wall = self.wall()
                    if not self.share.claim_probe(conn_id, wall + self.settings.max_cooldown_s):
                        return False, "probe_in_flight"
                    self._remote_probes.add(conn_id)
                self._probe_seq += 1
                b.probe_started_at, b.probe_id = now, self._probe_seq
        elif self.share is not None:
            return self._check_shared(conn_id, model, b, now, take_probe=take_probe)
        return True, None

    def _check_shared(
        self, conn_id: str, model: str | None, b: _Breaker, now: float, *, take_probe: bool
    ) -> tuple[bool, BreakerReason | None]:
        """Locally closed: what did the other instances learn?"""
        assert self.share is not None
        remote = self.share.view(conn_id)
        if remote is None:
            return True, None
        wall = self.wall()
        if wall < remote.limited_until(model):
            return False, "rate_limited"
        if remote.open_until <= 0:
            return True, None
        if wall < remote.open_until:
            return False, "breaker_open"
        if wall < remote.probe_until:
            return False, "probe_in_flight"
        if not take_probe:
            return True, None
        # The cooldown is over: one instance (whoever claims first) sends the probe.
        if not self.share.claim_probe(conn_id, wall + self.settings.max_cooldown_s):
            return False, "probe_in_flight"
        self._remote_probes.add(conn_id)
        b.state = BreakerState.HALF_OPEN
        b.cooldown_s = max(remote.cooldown_s, self.settings.cooldown_s)
        self._probe_seq += 1
        b.probe_started_at, b.probe_id = now, self._probe_seq
        return True, None

    def allow(self, conn_id: str, model: str | None = None) -> tuple[bool, BreakerReason | None]:
        """May a request for ``model`` go to ``conn_id`` now? In HALF_OPEN this takes the one
        probe slot. Without ``model`` only connection-wide cooldowns count."""
        return self._check(conn_id, model, take_probe=True)

    def peek(self, conn_id: str, model: str | None = None) -> tuple[bool, BreakerReason | None]:
        """Like :meth:`allow` but without side effects (planning, dry runs)."""
        return self._check(conn_id, model, take_probe=False)

    def retry_in(self, conn_id: str, model: str | None = None) -> float | None:
        """Seconds until ``conn_id`` (for ``model``) may be tried again, or None if now."""
        now = self.clock()
        b = self._get(conn_id)
        self._refresh(b, now)
        waits = [self._limited_until(b, model) - now]
        if b.state is BreakerState.OPEN:
            waits.append(b.opened_at + b.cooldown_s - now)
        remote = self.share.view(conn_id) if self.share is not None else None
        if remote is not None:
            wall = self.wall()
            waits += [remote.limited_until(model) - wall, remote.open_until - wall]
        wait = max(waits)
        return wait if wait > 0 else None

    def state(self, conn_id: str) -> BreakerState:
        b = self._get(conn_id)
        self._refresh(b, self.clock())
        return b.state

    def on_success(self, conn_id: str, model: str | None = None) -> None:
        b = self._get(conn_id)
        if self.share is not None:
            remote = self.share.view(conn_id)
            if (
                conn_id in self._remote_probes
                or b.state is not BreakerState.CLOSED
                or (remote is not None and (remote.open_until > 0 or remote.rate_limited_until > 0))
            ):
                self.share.closed(conn_id)  # the probe (or any success) closes it everywhere
            self._remote_probes.discard(conn_id)
        # Any success proves the upstream works, even one that was in flight when it opened;
        # it proves the account has room, but says nothing about another model's limit.
        b.state = BreakerState.CLOSED
        b.consecutive_failures = 0
        b.cooldown_s = self.settings.cooldown_s
        b.probe_started_at = None
        b.rate_limited_until = 0.0
        if model is None:
            b.model_limited_until.clear()
        else:
            b.model_limited_until.pop(model, None)

    def on_failure(
        self,
        conn_id: str,
        breaker_worthy: bool,
        retry_after: float | None = None,
        rate_limited: bool = False,
        model: str | None = None,
        connection_wide: bool = False,
    ) -> None:
        """Record a failed call. Only ``breaker_worthy`` failures (timeouts, connection errors,
        408, 5xx) move the breaker; a 429 (``rate_limited``) starts the cooldown instead, for
        ``model`` on this connection, or for all of it when ``connection_wide`` (or no model
        is given)."""
        now = self.clock()
        b = self._get(conn_id)
        self._refresh(b, now)
        was_probe = b.state is BreakerState.HALF_OPEN
        b.probe_started_at = None  # a non-worthy probe result frees the slot for the next one
        b.total_failures += 1
        b.last_failure_at = now
        if rate_limited:
            wait = (
                self.settings.rate_limit_default_cooldown_s if retry_after is None else retry_after
            )
            until = now + max(wait, 0.0)
            if model is None or connection_wide:
                b.rate_limited_until = max(b.rate_limited_until, until)
            else:
                b.model_limited_until[model] = max(b.model_limited_until.get(model, 0.0), until)
            if self.share is not None:
                scope = None if model is None or connection_wide else model
                self.share.rate_limited(conn_id, scope, self.wall() + max(wait, 0.0))
        if conn_id in self._remote_probes and not breaker_worthy:
            # The shared probe came back without a verdict on the upstream: free it.
            self._remote_probes.discard(conn_id)
            if self.share is not None:
                self.share.release_probe(conn_id)
        if not breaker_worthy:
            return
        b.consecutive_failures += 1
        if was_probe:
            self._open(b, now, min(b.cooldown_s * 2, self.settings.max_cooldown_s), conn_id)
        elif (
            b.state is BreakerState.CLOSED
            and b.consecutive_failures >= self.settings.failure_threshold
        ):
            self._open(b, now, self.settings.cooldown_s, conn_id)
        # Already OPEN: stragglers that were in flight before it opened change nothing.

    def probe_id(self, conn_id: str) -> int | None:
        """The id of the probe now out on ``conn_id`` (right after ``allow``: the caller's)."""
        b = self._breakers.get(conn_id)
        return None if b is None or b.probe_started_at is None else b.probe_id

    def on_cancel(self, conn_id: str, probe_id: int | None = None) -> None:
        """The caller gave up (client disconnect) without an outcome: free the probe it held.
        With ``probe_id``, only that probe is freed, never a newer caller's."""
        b = self._get(conn_id)
        if probe_id is None or b.probe_id == probe_id:
            b.probe_started_at = None
            if conn_id in self._remote_probes:
                self._remote_probes.discard(conn_id)
                if self.share is not None:
                    self.share.release_probe(conn_id)

    def _open(self, b: _Breaker, now: float, cooldown: float, conn_id: str) -> None:
        b.state = BreakerState.OPEN
        b.opened_at = now
        b.cooldown_s = cooldown
        b.probe_started_at = None
        b.trips += 1
        if self.share is not None:
            self._remote_probes.discard(conn_id)
            self.share.opened(conn_id, self.wall() + cooldown, cooldown)

    def reset(self, conn_id: str | None = None) -> None:
        """Forget one connection's breaker, or all of them (POST /api/resilience/reset)."""
        if conn_id is None:
            self._breakers.clear()
            self._remote_probes.clear()
        else:
            self._breakers.pop(conn_id, None)
            self._remote_probes.discard(conn_id)
        if self.share is not None:
            self.share.closed(conn_id)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Per connection id, the JSON view for /api/combos/metrics and /api/monitoring/health."""
        now = self.clock()
        out: dict[str, dict[str, Any]] = {}
        for conn_id, b in self._breakers.items():
            self._refresh(b, now)
            out[conn_id] = {
                "state": b.state.value,
                "consecutiveFailures": b.consecutive_failures,
                "cooldownSeconds": b.cooldown_s,
                "retryInSeconds": self.retry_in(conn_id),
                "rateLimited": now < b.rate_limited_until,
                "rateLimitedModels": {
                    m: round(until - now, 3)
                    for m, until in sorted(b.model_limited_until.items())
                    if until > now
                },
                "probeInFlight": b.probe_started_at is not None,
                "trips": b.trips,
                "totalFailures": b.total_failures,
                "secondsSinceLastFailure": (
                    None if b.last_failure_at is None else round(now - b.last_failure_at, 3)
                ),
            }
        return out
