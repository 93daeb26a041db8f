"""llmtap's own addons as one mitmproxy addon.

mitmproxy offers every event to every addon in its chain (``AddonManager.trigger_event``: a
coroutine, a context manager and two generators per addon per event, about 15 Python calls),
whether or not the addon handles it; a proxied HTTP flow raises eight events (request and
response, their headers, and an ``update`` after each), so each addon costs about 120 calls per
flow before any of its own work. :class:`Chain` is one addon whose hooks are its parts' own
bound methods (no wrapper at all where one part handles an event) or, where several do, one
function that calls them in the parts' order, each isolated as mitmproxy isolates addons: an
error is logged and the next part still runs; ``AddonHalt`` and ``OptionsError`` propagate.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Sequence
from typing import Any

from mitmproxy import exceptions, hooks

log = logging.getLogger("llmtap.addons")

_PROPAGATE = (exceptions.AddonHalt, exceptions.OptionsError)


class Chain:
    """The parts' hooks under one addon, in the parts' order (see the module docstring)."""

    name = "llmtap"

    def __init__(self, *parts: Any) -> None:
        self.parts = parts
        handlers: dict[str, list[Callable[..., Any]]] = {}
        for part in parts:
            for event in hooks.all_hooks:
                handler = getattr(part, event, None)
                if callable(handler):
                    handlers.setdefault(event, []).append(handler)
        for event, found in handlers.items():
            setattr(self, event, found[0] if len(found) == 1 else _in_order(event, found))

    def __repr__(self) -> str:
        return f"Chain({', '.join(type(p).__name__ for p in self.parts)})"


def _in_order(event: str, handlers: Sequence[Callable[..., Any]]) -> Callable[..., Any]:
    if any(inspect.iscoroutinefunction(h) for h in handlers):

        async def run_async(*args: Any) -> None:
            for handler in handlers:
                try:
                    result = handler(*args)
                    if inspect.isawaitable(result):
                        await result
                except _PROPAGATE:
                    raise
                except Exception:
                    log.exception("addon %s failed on %s", _owner(handler), event)

        return run_async

    def run(*args: Any) -> None:
        for handler in handlers:
            try:
                handler(*args)
            except _PROPAGATE:
                raise
            except Exception:
                log.exception("addon %s failed on %s", _owner(handler), event)

    return run


def _owner(handler: Callable[..., Any]) -> str:
    return type(getattr(handler, "__self__", handler)).__name__
