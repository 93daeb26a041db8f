"""What one routed call is, as the engine and its observers see it: the inbound call the web
edge hands over, everything learnt about it on the way (:class:`CallInfo`), the reply, the
timeouts, and the guard protocol (breakers, cooldowns, limits) the engine asks per attempt."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from router import ir
from router.errors import Attempt, UpstreamError
from router.routing.resolve import Step


@dataclass(slots=True)
class Inbound:
    """One call as the web edge hands it over."""

    format: str
    body: dict[str, Any]
    path: str
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    pinned: str | None = None  # /v1/providers/{provider}/...
    path_model: str | None = None  # Gemini puts the model in the path
    path_stream: bool | None = None  # ... and streaming too
    api_key_id: str | None = None
    agent: str | None = None
    source: str = "router"
    headers: dict[str, str] = field(default_factory=dict)  # the client's (masked when recorded)
    query: str = ""  # the client's query string, for the record's path
    # A diverted agent call's mapping (router/bridge/divert.py): the target model and an
    # optional reasoning-effort override ("none" removes the effort).
    model_override: str | None = None
    effort_override: str | None = None
    # A diverted call the capture side does not record as its own flow (one WebSocket flow
    # carries many calls): the router records it, like a call of its own.
    router_records: bool = False


@dataclass(slots=True)
class CallInfo:
    """Everything known about one routed call; observers read it at start and finish."""

    inbound: Inbound
    started_at: float = field(default_factory=time.time)
    t0: float = field(default_factory=time.perf_counter)
    request: ir.Request | None = None
    requested_model: str = ""
    parse_dropped: list[str] = field(default_factory=list)
    step: Step | None = None
    attempts: list[Attempt] = field(default_factory=list)
    target_format: str | None = None
    # The last attempt's body and forwarded client headers as sent upstream (the inspector
    # records them, masked, beside the client's request).
    upstream_body: dict[str, Any] | None = None
    upstream_extra_headers: dict[str, str] | None = None
    t_sent: float | None = None
    t_headers: float | None = None
    t_first_token: float | None = None
    t_done: float | None = None
    status: int | None = None
    streamed: bool = False
    response: ir.Response | None = None
    response_bytes: bytes | None = None  # what the client got (JSON or SSE text)
    usage: ir.Usage | None = None
    cost_usd: float | None = 0.0  # None: the model has no price (unknown, not $0)
    error: str | None = None
    finished: bool = False

    def ms(self, t: float | None) -> float | None:
        return None if t is None else round((t - self.t0) * 1000, 2)

    @property
    def latency_ms(self) -> float | None:
        return self.ms(self.t_done)

    @property
    def ttft_ms(self) -> float | None:
        return self.ms(self.t_first_token)


Observer = Callable[[CallInfo, str], None]  # phase: "start" | "finish"


class Lease(Protocol):
    def release(self) -> None: ...


class Guard(Protocol):
    """Resilience hooks: breakers, 429 cooldowns, concurrency limits, node stats."""

    async def admit(self, step: Step, *, last: bool) -> tuple[Lease | None, str | None]: ...

    def success(self, step: Step, latency_ms: float, ttft_ms: float | None) -> None: ...

    def failure(self, step: Step, error: UpstreamError) -> None: ...

    def retry_in(self, step: Step) -> float | None: ...


class _NoLease:
    def release(self) -> None:
        return None


class OpenGuard:
    """No breakers, no limits: every step is admitted."""

    async def admit(self, step: Step, *, last: bool) -> tuple[Lease | None, str | None]:
        return _NoLease(), None

    def success(self, step: Step, latency_ms: float, ttft_ms: float | None) -> None:
        return None

    def failure(self, step: Step, error: UpstreamError) -> None:
        return None

    def retry_in(self, step: Step) -> float | None:
        return None


PriceFn = Callable[[str, ir.Usage], float | None]  # None: the model has no price


@dataclass(slots=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes | None = None
    stream: AsyncIterator[bytes] | None = None


@dataclass(slots=True)
class Timeouts:
    first_byte: float = 120.0
    idle: float = 120.0
    max_response_bytes: int = 32 << 20  # a whole upstream reply larger than this is a 502
