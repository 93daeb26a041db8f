"""The router engine: one inbound call -> attempt plan -> upstream -> reply.

:mod:`router.engine.call` says what a call is (inbound, what is known of it, the reply, the
guard protocol); :mod:`router.engine.router` walks the plan (attempts, failover, bookkeeping);
:mod:`router.engine.stream` carries a streamed reply and reports back through its hooks.
"""

from router.engine.call import (
    CallInfo,
    Guard,
    Inbound,
    Lease,
    Observer,
    OpenGuard,
    PriceFn,
    Reply,
    Timeouts,
)
from router.engine.router import SSE_HEADERS, Router, count_tokens, model_list
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
