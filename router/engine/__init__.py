"""The router engine: one inbound call -> attempt plan -> upstream -> reply.

:mod:`router.engine.router` walks the plan (attempts, failover, bookkeeping);
:mod:`router.engine.stream` carries a streamed reply and reports back through its hooks.
"""

from router.engine.router import (
    SSE_HEADERS,
    CallInfo,
    Guard,
    Inbound,
    Lease,
    Observer,
    OpenGuard,
    PriceFn,
    Reply,
    Router,
    Timeouts,
    count_tokens,
    model_list,
)
from router.engine.stream import StreamHooks, StreamOutcome, StreamPipe

__all__ = [
    "SSE_HEADERS",
    "CallInfo",
    "Guard",
    "Inbound",
    "Lease",
    "Observer",
    "OpenGuard",
    "PriceFn",
    "Reply",
    "Router",
    "StreamHooks",
    "StreamOutcome",
    "StreamPipe",
    "Timeouts",
    "count_tokens",
    "model_list",
]
