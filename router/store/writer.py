"""The background writer, so the request path never waits on the database.

One daemon thread (not an asyncio task: ``submit`` then works from any thread or event loop)
owns one database connection and drains every *channel* (call logs, recording-session records,
strategy state): each channel is a bounded in-memory queue whose batches go to that channel's
sink function in one call (one transaction). When a channel is full its *oldest* item is
dropped and counted: dropping beats blocking a live LLM stream on a slow disk.

Why one thread for every channel: with one writer thread per sink, each on its own SQLite
connection, the writers contended for SQLite's single write lock, and the loser slept in
SQLite's busy handler, whose back-off steps reach 100 ms. One connection never waits for
another writer.

Durability against SIGKILL does not depend on this thread being scheduled: a channel given a
codec also appends each item to a write-ahead :class:`Journal` in ``submit``, on the caller's
thread, as the caller answers its client (a proxied call's record and a stream's row before
the reply's end; a whole router reply's row in the loop step right after the reply was
written). One ``write(2)`` puts it in the OS page cache, which a killed process cannot take
back. Measured under load (a 2-core machine at load ~10), a thread that only sleeps 2 ms woke
up to 355 ms late and the writer committed up to 230 ms after a client saw its reply, so no
commit deadline could promise a window; the journal makes it one loop step at most. Each
writer round seals the journal segment holding what it took and deletes it once that is
committed; the next start replays leftover segments (the sinks upsert, so an item committed
just before the kill is harmless to write again). A power loss or OS crash can
still lose the page cache (``synchronous=NORMAL`` in store/db.py, no fsync per item).
SIGTERM/SIGINT close the writer, which drains every channel first.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypedDict, Unpack

from router.store import calllogs, sessions
from router.store.db import close_database
from router.store.records import CallLog

log = logging.getLogger(__name__)

# How long pending work waits for company before it is committed: a burst becomes one batch
# (one commit), and nothing waits longer than this plus the commits in front of it. The journal,
# not the commit, is what makes a finished call survive a kill, so this only trades how fresh
# the usage page is against commits per second: at 200 calls/s, 10 ms meant 100 commits (and
# journal segments) a second and 12% of the process's CPU on the writer thread; 50 ms means 20
# and 6% (bench, 2026-11-29). A flush (tests, shutdown, a reader that needs it) does not wait.
MAX_DELAY_S = 0.05
# How soon a commit follows a submit on a machine that gives the writer thread CPU (the
# batching delay plus a commit, with room). Not a durability promise: a loaded machine can
# hold the thread off for longer; what a SIGKILL cannot lose is what the journal holds.
DURABLE_WITHIN_S = 0.2

# An item as the journal holds it: bytes out, the item back (a channel's codec).
Codec = tuple[Callable[[Any], bytes], Callable[[bytes], Any]]


class Journal:
    """Write-ahead segment files in one directory (mode 0700, files 0600: they hold what the
    database holds). Frames are ``<channel> <length>\\n<payload>\\n``; a frame cut short by
    a crash ends its segment's replay. Not thread-safe: the writer calls it under its lock."""

    SUFFIX = ".wal"

    def __init__(self, directory: Path) -> None:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.directory = directory
        self._seq = 0
        # Segment paths are plain strings, never pathlib paths: on Python 3.12 pathlib interns
        # every part of a path it formats, and interned strings are immortal there, so each
        # new segment name (one per writer round, up to 20 a second) leaked ~120 bytes for
        # good: the 30-minute soak's steady RSS growth (bench/analysis.md).
        self._prefix = os.path.join(directory, f"{time.time_ns():020d}-{os.getpid()}")
        # Segments left by an earlier process, replayed by StoreWriter.recover; unless another
        # live process holds the directory (it would be replaying what it is still writing).
        self._lock = os.open(directory / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        owned = _try_lock(self._lock)
        self.leftover = sorted(directory.glob("*" + self.SUFFIX)) if owned else []
        self._fd, self._path, self._size = *self._open(), 0

    def _open(self) -> tuple[int, str]:
        self._seq += 1
        path = f"{self._prefix}-{self._seq:09d}{self.SUFFIX}"
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        return os.open(path, flags, 0o600), path

    def append(self, channel: str, payload: bytes) -> None:
        frame = b"%s %d\n%s\n" % (channel.encode(), len(payload), payload)
        view = memoryview(frame)
        while view:
            view = view[os.write(self._fd, view) :]
        self._size += len(frame)

    def seal(self) -> str | None:
        """Start a new segment; returns the finished one (None when it is empty: kept)."""
        if not self._size:
            return None
        os.close(self._fd)
        sealed = self._path
        self._fd, self._path, self._size = *self._open(), 0
        return sealed

    def close(self) -> None:
        """At a clean shutdown, after everything is committed."""
        os.close(self._fd)
        _remove(self._path)
        os.close(self._lock)

    @staticmethod
    def frames(path: Path) -> Iterator[tuple[str, bytes]]:
        data = path.read_bytes()
        pos = 0
        while pos < len(data):
            end = data.find(b"\n", pos)
            if end < 0:
                return
            try:
                name, size = data[pos:end].split(b" ")
                length = int(size)
            except ValueError:
                log.warning("journal %s: a malformed frame ends its replay", path.name)
                return
            start, stop = end + 1, end + 1 + length
            if stop + 1 > len(data):
                return  # cut short by the crash: that item was never acknowledged
            yield name.decode(), data[start:stop]
            pos = stop + 1


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _try_lock(fd: int) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows: one process per data dir is all ``up`` checks there
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


class StoreWriter:
    """One thread and one database connection for every background sink (see module doc)."""

    def __init__(
        self,
        *,
        name: str = "llmtap-writer",
        max_delay: float = MAX_DELAY_S,
        on_thread_exit: Callable[[], object] | None = close_database,
        journal: Path | None = None,
    ) -> None:
        self._name = name
        self._journal = Journal(journal) if journal is not None else None
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
        codec: Codec | None = None,
    ) -> BatchWriter[T]:
        """A new queue drained by this writer's thread into ``sink`` (journaled with
        ``codec``)."""
        return BatchWriter(
            sink, name=name, max_queue=max_queue, batch_size=batch_size, writer=self, codec=codec
        )

    def _attach(self, channel: BatchWriter[Any]) -> None:
        with self._cond:
            self._channels.append(channel)

    def recover(self, timeout: float | None = 60.0) -> int:
        """Replay what an earlier process journaled but may not have committed (it was
        killed), once every journaled channel is attached; returns how many items. Each item
        is journaled again before its old segment goes, so a crash here loses nothing."""
        journal = self._journal
        if journal is None or not journal.leftover:
            return 0
        with self._cond:
            by_name = {ch.name: ch for ch in self._channels if ch._codec is not None}
        count = 0
        for path in journal.leftover:
            try:
                frames = list(Journal.frames(path))
            except OSError as exc:
                log.warning("journal %s unreadable: %r", path.name, exc)
                continue
            for name, payload in frames:
                channel = by_name.get(name)
                if channel is None:
                    log.warning("journal %s: no channel %r; item skipped", path.name, name)
                    continue
                try:
                    item = channel._codec[1](payload)  # type: ignore[index]
                except Exception as exc:
                    log.warning("journal %s: undecodable %s item: %r", path.name, name, exc)
                    continue
                channel.submit(item)
                count += 1
        if not self.flush(timeout):
            return count  # not all written yet: keep the old segments for the next start
        for path in journal.leftover:
            path.unlink(missing_ok=True)
        journal.leftover = []
        if count:
            log.info("replayed %d journaled store writes from before a crash", count)
        return count

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

    def _write(self, channel: BatchWriter[Any], batch: list[Any]) -> None:
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

    def _pending(self) -> bool:
        return any(ch._items for ch in self._channels)

    def _next_round(self) -> tuple[list[tuple[BatchWriter[Any], list[Any]]], str | None] | None:
        """Everything pending, once it has waited up to max_delay for company, and the sealed
        journal segment that holds exactly those items (submit journals under the lock)."""
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
            taken = [(ch, ch._take()) for ch in self._channels if ch._items]
            sealed = self._journal.seal() if self._journal is not None else None
            return taken, sealed

    def _run(self) -> None:
        try:
            while (round_ := self._next_round()) is not None:
                taken, sealed = round_
                for channel, items in taken:
                    for start in range(0, len(items), channel._batch_size):
                        self._write(channel, items[start : start + channel._batch_size])
                if sealed is not None:
                    # Written, or failed and logged (a batch that cannot be written is not
                    # retried for ever): either way the segment has done its job.
                    _remove(sealed)
            if self._journal is not None:
                self._journal.close()
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
        codec: Codec | None = None,
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
        self._codec = codec
        # Journaled only when the writer has a journal and the channel says how.
        self._journal = self._writer._journal if codec is not None else None
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
        items = list(self._items)
        self._items.clear()
        return items

    def submit(self, item: T) -> None:
        """Queue ``item``; never waits on the database (only on a lock held for a few list
        operations and, with a journal, one append to a file in the page cache)."""
        payload = self._codec[0](item) if self._journal is not None else None  # type: ignore[index]
        with self._cond:
            self.submitted += 1
            if self._closed or self._writer.closed:
                self.dropped += 1
                return
            if self._journal is not None:
                assert payload is not None
                try:
                    self._journal.append(self.name, payload)
                except OSError as exc:  # a full disk: the item is still queued for the store
                    log.warning("%s: journal append failed: %r", self.name, exc)
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


class ChannelOptions(TypedDict, total=False):
    """What a caller may tune on a named channel (its sink, name and codec are fixed)."""

    max_queue: int
    batch_size: int
    max_delay: float
    writer: StoreWriter | None


def _encode_call_log(item: CallLog) -> bytes:
    return CallLog.__pydantic_serializer__.to_json(item)  # model_dump_json's bytes, not re-encoded


def _decode_call_log(payload: bytes) -> CallLog:
    return CallLog.model_validate_json(payload)


def _encode_session_record(item: tuple[str, str, str]) -> bytes:
    session_id, record_id, data = item  # ids are hex: never a newline
    return f"{session_id}\n{record_id}\n{data}".encode("utf-8", "surrogatepass")


def _decode_session_record(payload: bytes) -> tuple[str, str, str]:
    session_id, record_id, data = payload.decode("utf-8", "surrogatepass").split("\n", 2)
    return session_id, record_id, data


CALL_LOG_CODEC: Codec = (_encode_call_log, _decode_call_log)
SESSION_RECORD_CODEC: Codec = (_encode_session_record, _decode_session_record)


class CallLogWriter(BatchWriter[CallLog]):
    """One call-log row per router call, written in the background (journaled)."""

    def __init__(self, **options: Unpack[ChannelOptions]) -> None:
        super().__init__(
            calllogs.insert_many, name="llmtap-calllog-writer", codec=CALL_LOG_CODEC, **options
        )


class SessionRecordWriter(BatchWriter[tuple[str, str, str]]):
    """``(session_id, record_id, record_json)`` upserts for the recording sessions
    (journaled)."""

    def __init__(self, **options: Unpack[ChannelOptions]) -> None:
        codec = (_encode_session_record, _decode_session_record)
        super().__init__(
            sessions.upsert_records, name="llmtap-session-writer", codec=codec, **options
        )
