"""The router engine: one inbound call -> attempt plan -> upstream -> reply.

:mod:`router.engine.call` says what a call is (inbound, what is known of it, the reply, the
guard protocol); :mod:`router.engine.router` walks the plan (attempts, failover, bookkeeping);
:mod:`router.engine.stream` carries a streamed reply and reports back through its hooks.
"""

# What the edges use; the guard and stream-pipe interfaces are imported from their modules.
from router.engine.call import CallInfo, Inbound, Reply, Timeouts
from router.engine.router import Router, count_tokens, model_list

__all__ = ["CallInfo", "Inbound", "Reply", "Router", "Timeouts", "count_tokens", "model_list"]
