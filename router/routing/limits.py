"""Per-connection ``maxConcurrent`` limits and in-flight counts.

The router tries a full connection only as its last option: ``try_acquire`` never waits (the
plan moves on to the next node), ``acquire`` waits in FIFO order. A freed slot is handed
straight to the oldest waiter, so a stream of ``try_acquire`` callers cannot starve it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, overload


@dataclass(slots=True)
class _Conn:
    limit: int | None = None
    in_flight: int = 0
    waiters: deque[asyncio.Future[None]] = field(default_factory=deque)


class Slot:
    """One held unit of a connection's concurrency; release is idempotent.

    Works as a sync or async context manager, or call :meth:`release` directly when the slot
    must outlive the block (a streamed reply releases it when the stream ends).
    """

    __slots__ = ("_limiter", "connection_id", "released")

    def __init__(self, limiter: ConcurrencyLimiter, connection_id: str) -> None:
        self._limiter = limiter
        self.connection_id = connection_id
        self.released = False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self._limiter._release(self.connection_id)

    def __enter__(self) -> Slot:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    async def __aenter__(self) -> Slot:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


class ConcurrencyLimiter:
    """In-flight counts for every connection; a limit of None or <= 0 means unlimited."""

    def __init__(self, limits: Mapping[str, int | None] | None = None) -> None:
        self._conns: dict[str, _Conn] = {}
        for conn_id, limit in (limits or {}).items():
            self.set_limit(conn_id, limit)

    def _get(self, conn_id: str) -> _Conn:
        c = self._conns.get(conn_id)
        if c is None:
            c = self._conns[conn_id] = _Conn()
        return c

    def set_limit(self, conn_id: str, limit: int | None) -> None:
        """Set (or change at runtime) a connection's ``maxConcurrent``."""
        c = self._get(conn_id)
        c.limit = limit if limit is not None and limit > 0 else None
        self._wake(c)  # a raised limit may admit waiters right away

    def limit(self, conn_id: str) -> int | None:
        return self._get(conn_id).limit

    def in_flight(self, conn_id: str) -> int:
        c = self._conns.get(conn_id)
        return 0 if c is None else c.in_flight

    @staticmethod
    def _has_room(c: _Conn) -> bool:
        return c.limit is None or c.in_flight < c.limit

    def is_full(self, conn_id: str) -> bool:
        """Would :meth:`try_acquire` fail right now? (Waiters count: they are served first.)"""
        c = self._get(conn_id)
        return not self._has_room(c) or any(not w.done() for w in c.waiters)

    def try_acquire(self, conn_id: str) -> Slot | None:
        """Take a slot if one is free now; None means skip this connection."""
        if self.is_full(conn_id):
            return None
        self._get(conn_id).in_flight += 1
        return Slot(self, conn_id)

    @overload
    async def acquire(self, conn_id: str, *, wait: Literal[True] = ...) -> Slot: ...
    @overload
    async def acquire(self, conn_id: str, *, wait: bool) -> Slot | None: ...

    async def acquire(self, conn_id: str, *, wait: bool = True) -> Slot | None:
        """Take a slot, waiting for one in FIFO order (``wait=False``: as :meth:`try_acquire`)."""
        slot = self.try_acquire(conn_id)
        if slot is not None or not wait:
            return slot
        c = self._get(conn_id)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        c.waiters.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                # The slot was handed over just as we were cancelled: pass it on.
                self._release(conn_id)
            else:
                try:
                    c.waiters.remove(fut)
                except ValueError:
                    pass
            raise
        return Slot(self, conn_id)

    def _release(self, conn_id: str) -> None:
        c = self._get(conn_id)
        c.in_flight = max(c.in_flight - 1, 0)
        self._wake(c)

    def _wake(self, c: _Conn) -> None:
        # The count is taken on the waiter's behalf here, so nobody can slip in between.
        while c.waiters and self._has_room(c):
            fut = c.waiters.popleft()
            if not fut.done():
                c.in_flight += 1
                fut.set_result(None)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return {
            conn_id: {
                "inFlight": c.in_flight,
                "maxConcurrent": c.limit,
                "waiting": sum(1 for w in c.waiters if not w.done()),
            }
            for conn_id, c in self._conns.items()
        }
