"""The background writer, so the request path never waits on the database.

One daemon thread (not an asyncio task: ``submit`` then works from any thread or event loop)
owns one database connection and drains every *channel* (call logs, recording-session records,
strategy state): each channel is a bounded in-memory queue whose batches go to that channel's
sink function in one call (one transaction). When a channel is full its *oldest* item is
dropped and counted: dropping beats blocking a live LLM stream on a slow disk.

Why one thread for every channel: with one writer thread per sink, each on its own SQLite
connection, the writers contended for SQLite's single write lock, and the loser slept in
SQLite's busy handler, whose back-off steps reach 100 ms. A SIGKILL then lost calls a client
had seen finish a quarter of a second earlier. One connection never waits for another writer.

Durability: pending work waits at most ``MAX_DELAY_S`` for company, then is committed. SQLite in
WAL mode with ``synchronous=NORMAL`` (store/db.py) makes a commit survive the process being
killed (the WAL is in the OS page cache; only a power loss or OS crash can lose the last
commits, which FULL would prevent at an fsync per batch). So a SIGKILL loses at most what was
submitted in the last ``DURABLE_WITHIN_S``; SIGTERM/SIGINT close the writer, which drains every
channel first.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from router.store import calllogs, sessions
from router.store.db import close_database
from router.store.records import CallLog

log = logging.getLogger(__name__)

# How long pending work waits for company before it is committed: a burst becomes one batch
# (one commit), and nothing waits longer than this plus the commits in front of it.
MAX_DELAY_S = 0.01
# The promise the tests hold the writer to: what a client saw finish this long before a SIGKILL
# is on disk (the batching delay plus a commit, with room for a busy machine).
DURABLE_WITHIN_S = 0.05


class StoreWriter:
    """One thread and one database connection for every background sink (see module doc)."""

    def __init__(
        self,
        *,
        name: str = "llmtap-writer",
        max_delay: float = MAX_DELAY_S,
        on_thread_exit: Callable[[], object] | None = close_database,
    ) -> None:
        self._name = name
        self._max_delay = max_delay
        self._on_thread_exit = on_thread_exit
        self._cond = threading.Condition()
        self._channels: list[BatchWriter[Any]] = []
        self._closed = False
        self._flushers = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def closed(self) -> bool:
        return self._closed

    def channel[T](
        self,
        sink: Callable[[list[T]], object],
        *,
        name: str,
        max_queue: int = 10_000,
        batch_size: int = 200,
    ) -> BatchWriter[T]:
        """A new queue drained by this writer's thread into ``sink``."""
        return BatchWriter(sink, name=name, max_queue=max_queue, batch_size=batch_size, writer=self)

    def _attach(self, channel: BatchWriter[Any]) -> None:
        with self._cond:
            self._channels.append(channel)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything submitted to any channel before this call is written (or
        failed/dropped). Returns False on timeout."""
        with self._cond:
            targets = [(ch, ch.submitted) for ch in self._channels]
        return self._wait_for(targets, timeout)

    def _wait_for(self, targets: list[tuple[BatchWriter[Any], int]], timeout: float | None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._flushers += 1
            self._cond.notify_all()
            try:
                while any(ch.finished < target for ch, target in targets):
                    if not self._thread.is_alive():
                        return False
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._cond.wait(remaining)
                return True
            finally:
                self._flushers -= 1

    def close(self, timeout: float | None = 10.0) -> bool:
        """Drain every channel, then stop the thread. Later submits are dropped."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _pending(self) -> bool:
        return any(ch._items for ch in self._channels)

    def _next_round(self) -> list[tuple[BatchWriter[Any], list[Any]]] | None:
        with self._cond:
            while not self._pending() and not self._closed:
                self._cond.wait()
            if not self._pending():
                return None  # closed and drained
            # Give a burst up to max_delay to fill a batch, unless someone is waiting.
            deadline = time.monotonic() + self._max_delay
            while not self._closed and not self._flushers:
                if any(len(ch._items) >= ch._batch_size for ch in self._channels):
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            return [(ch, ch._take()) for ch in self._channels if ch._items]

    def _run(self) -> None:
        try:
            while (round_ := self._next_round()) is not None:
                for channel, batch in round_:
                    ok = True
                    try:
                        channel._sink(batch)
                    except Exception as exc:
                        ok = False
                        log.warning("%s: dropped a batch of %d: %r", channel.name, len(batch), exc)
                    with self._cond:
                        if ok:
                            channel.written += len(batch)
                        else:
                            channel.failed += len(batch)
                        self._cond.notify_all()
        finally:
            if self._on_thread_exit is not None:
                try:
                    self._on_thread_exit()
                except Exception as exc:
                    log.debug("%s: exit hook failed: %r", self._name, exc)


class BatchWriter[T]:
    """One channel: a bounded queue whose batches go to ``sink`` on the writer's thread.

    Given ``writer``, the channel shares that writer's thread (the process has one, made by the
    composition root); without one it starts a writer of its own and closes it on ``close``."""

    def __init__(
        self,
        sink: Callable[[list[T]], object],
        *,
        name: str = "llmtap-writer",
        max_queue: int = 10_000,
        batch_size: int = 200,
        max_delay: float = MAX_DELAY_S,
        on_thread_exit: Callable[[], object] | None = close_database,
        writer: StoreWriter | None = None,
    ) -> None:
        if max_queue < 1 or batch_size < 1:
            raise ValueError("max_queue and batch_size must be >= 1")
        self.name = name
        self._sink = sink
        self._max_queue = max_queue
        self._batch_size = batch_size
        self._owns_writer = writer is None
        self._writer = writer or StoreWriter(
            name=name, max_delay=max_delay, on_thread_exit=on_thread_exit
        )
        self._cond = self._writer._cond
        self._items: deque[T] = deque()
        self._closed = False
        self.submitted = 0
        self.written = 0
        self.failed = 0
        self.dropped = 0
        self._writer._attach(self)

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._items)

    @property
    def finished(self) -> int:
        return self.written + self.failed + self.dropped

    def _take(self) -> list[T]:
        count = min(self._batch_size, len(self._items))
        return [self._items.popleft() for _ in range(count)]

    def submit(self, item: T) -> None:
        """Queue ``item``; never blocks on I/O (only on a lock held for a few list operations)."""
        with self._cond:
            self.submitted += 1
            if self._closed or self._writer.closed:
                self.dropped += 1
                return
            if len(self._items) >= self._max_queue:
                self._items.popleft()
                self.dropped += 1
            self._items.append(item)
            if len(self._items) == 1 or len(self._items) >= self._batch_size:
                self._cond.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything submitted here before this call is written (or failed or
        dropped). Returns False on timeout."""
        with self._cond:
            target = self.submitted
        return self._writer._wait_for([(self, target)], timeout)

    def close(self, timeout: float | None = 10.0) -> bool:
        """Drain what is queued here; later submits are dropped. Stops the thread when the
        channel owns its writer."""
        with self._cond:
            self._closed = True
        if self._owns_writer:
            return self._writer.close(timeout)
        return self.flush(timeout)


class CallLogWriter(BatchWriter[CallLog]):
    """One call-log row per router call, written in the background."""

    def __init__(
        self,
        *,
        max_queue: int = 10_000,
        batch_size: int = 200,
        max_delay: float = MAX_DELAY_S,
        writer: StoreWriter | None = None,
    ):
        super().__init__(
            calllogs.insert_many,
            name="llmtap-calllog-writer",
            max_queue=max_queue,
            batch_size=batch_size,
            max_delay=max_delay,
            writer=writer,
        )


class SessionRecordWriter(BatchWriter[tuple[str, str, str]]):
    """``(session_id, record_id, record_json)`` upserts for the recording sessions."""

    def __init__(
        self,
        *,
        max_queue: int = 10_000,
        batch_size: int = 200,
        max_delay: float = MAX_DELAY_S,
        writer: StoreWriter | None = None,
    ):
        super().__init__(
            sessions.upsert_records,
            name="llmtap-session-writer",
            max_queue=max_queue,
            batch_size=batch_size,
            max_delay=max_delay,
            writer=writer,
        )
