import os
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from router.store import calllogs, sessions
from router.store.records import CallLog
from router.store.writer import BatchWriter, CallLogWriter, SessionRecordWriter

from .conftest import DbTarget


def _log(i: int) -> CallLog:
    return CallLog(
        id=f"log-{i:05d}",
        timestamp=datetime(2025, 1, 1, tzinfo=UTC),
        path="/v1/messages",
        requested_model="m",
        status=200,
    )


def test_burst_of_10k_drains(db: DbTarget) -> None:
    writer = CallLogWriter()
    try:
        for i in range(10_000):
            writer.submit(_log(i))
        assert writer.flush(timeout=60)
        assert calllogs.count() == 10_000
        assert (writer.written, writer.dropped, writer.failed) == (10_000, 0, 0)
    finally:
        assert writer.close()


def test_full_queue_drops_oldest_without_blocking() -> None:
    entered, release = threading.Event(), threading.Event()
    written: list[int] = []

    def stuck_sink(batch: list[int]) -> None:
        entered.set()
        release.wait()
        written.extend(batch)

    writer: BatchWriter[int] = BatchWriter(
        stuck_sink, max_queue=5, batch_size=1, max_delay=0, on_thread_exit=None
    )
    writer.submit(0)
    assert entered.wait(timeout=10)  # the worker is now stuck inside the sink holding item 0
    for i in range(1, 101):
        writer.submit(i)  # would hang the test if a full queue blocked
    assert writer.pending == 5
    assert writer.dropped == 95
    assert writer.flush(timeout=0.01) is False  # cannot finish while the sink is stuck
    release.set()
    assert writer.flush(timeout=10)
    assert written == [0, 96, 97, 98, 99, 100]  # the oldest went, the newest stayed
    assert writer.close()


def test_failed_batch_is_counted_and_writer_continues() -> None:
    seen: list[str] = []

    def sink(batch: list[str]) -> None:
        if "bad" in batch:
            raise ValueError("boom")
        seen.extend(batch)

    writer: BatchWriter[str] = BatchWriter(sink, batch_size=1, on_thread_exit=None)
    writer.submit("bad")
    assert writer.flush(timeout=10)
    writer.submit("good")
    assert writer.flush(timeout=10)
    assert (writer.failed, writer.written, seen) == (1, 1, ["good"])
    assert writer.close()


def test_close_drains_then_drops_late_submits() -> None:
    seen: list[int] = []
    writer: BatchWriter[int] = BatchWriter(seen.extend, max_delay=60, on_thread_exit=None)
    for i in range(10):
        writer.submit(i)
    assert writer.close()  # does not wait for max_delay: close flushes
    assert seen == list(range(10))
    writer.submit(99)
    assert writer.dropped == 1 and seen == list(range(10))


def test_session_record_writer(db: DbTarget) -> None:
    s = sessions.create()
    writer = SessionRecordWriter()
    try:
        writer.submit((s.id, "r1", '{"status":"in-flight"}'))
        writer.submit((s.id, "r2", "{}"))
        writer.submit((s.id, "r1", '{"status":200}'))
        assert writer.flush(timeout=10)
    finally:
        assert writer.close()
    assert sessions.list_records(s.id) == ['{"status":200}', "{}"]


async def test_submit_from_event_loop(db: DbTarget) -> None:
    writer = CallLogWriter()
    try:
        writer.submit(_log(1))  # called on the loop thread, returns at once
        assert writer.flush(timeout=10)
        assert calllogs.get_log("log-00001").status == 200
    finally:
        assert writer.close()


def test_every_channel_runs_on_the_one_writer_thread(db: DbTarget) -> None:
    """Two writer threads on two connections contend for SQLite's write lock (and sleep in its
    busy handler); the call-log, session and state sinks share one thread instead."""
    from router.store.writer import StoreWriter

    threads: dict[str, set[str]] = {"a": set(), "b": set()}
    writer = StoreWriter()
    try:
        a = writer.channel(
            lambda batch: threads["a"].add(threading.current_thread().name), name="a"
        )
        b = writer.channel(
            lambda batch: threads["b"].add(threading.current_thread().name), name="b"
        )
        logs = CallLogWriter(writer=writer)
        for i in range(50):
            a.submit(i)
            b.submit(i)
            logs.submit(_log(i))
        assert writer.flush(timeout=10)
        assert (a.written, b.written, logs.written) == (50, 50, 50)
        assert calllogs.count() == 50
        assert threads["a"] == threads["b"] == {"llmtap-writer"}
        assert sum(t.name == "llmtap-writer" for t in threading.enumerate()) == 1
        assert a.close(timeout=10)  # closing a channel leaves the thread to the others
        a.submit(99)
        b.submit(99)
        assert b.flush(timeout=10) and (a.dropped, b.written) == (1, 51)
    finally:
        assert writer.close()
    assert not any(t.name == "llmtap-writer" for t in threading.enumerate())


# --------------------------------------------------------------------------- the journal

_INTS = (lambda item: str(item).encode(), lambda payload: int(payload))

_KILLED_CHILD = """
import sys, threading
from pathlib import Path
from router.store.writer import StoreWriter

writer = StoreWriter(journal=Path(sys.argv[1]), on_thread_exit=None)
stuck = threading.Event()  # the sink never returns: nothing is ever committed
channel = writer.channel(lambda batch: stuck.wait(), name="ints", codec=CODEC)
for i in range(500):
    channel.submit(i)
print("submitted", flush=True)
stuck.wait()
"""


def _journal_writer(directory: Path, sink: Callable[[list[int]], object]) -> tuple[Any, Any]:
    from router.store.writer import StoreWriter

    writer = StoreWriter(journal=directory, on_thread_exit=None)
    return writer, writer.channel(sink, name="ints", codec=_INTS)


def test_sigkill_loses_nothing_submitted(tmp_path: Path) -> None:
    """What ``submit`` returned from is replayed after a SIGKILL, even when the writer thread
    never got to commit any of it (here: a sink that never returns)."""
    journal = tmp_path / "journal"
    code = "CODEC = (lambda i: str(i).encode(), lambda b: int(b))\n" + _KILLED_CHILD
    root = Path(__file__).resolve().parents[3]
    env = {**os.environ, "PYTHONPATH": str(root)}
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(journal)], cwd=root, env=env, stdout=subprocess.PIPE
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == b"submitted\n"
    finally:
        child.kill()
        child.wait(30)
    got: list[int] = []
    writer, _channel = _journal_writer(journal, got.extend)
    try:
        assert writer.recover() == 500
        assert sorted(got) == list(range(500))
    finally:
        assert writer.close()
    assert not list(journal.glob("*.wal"))  # replayed, then a clean close: nothing left


def test_recovery_stops_at_a_frame_cut_short(tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    journal.mkdir()
    frames = b"".join(b"ints 1\n%d\n" % i for i in range(3)) + b"ints 5\n123"
    (journal / "00000000000000000001-1-000000001.wal").write_bytes(frames)  # killed mid-write
    got: list[int] = []
    writer, _channel = _journal_writer(journal, got.extend)
    try:
        assert writer.recover() == 3
        assert got == [0, 1, 2]
    finally:
        assert writer.close()


def test_a_live_owner_keeps_its_journal(tmp_path: Path) -> None:
    """A second writer on a journal another live writer holds replays nothing of it."""
    journal = tmp_path / "journal"
    release = threading.Event()
    owner, channel = _journal_writer(journal, lambda batch: release.wait())
    try:
        channel.submit(1)
        other_got: list[int] = []
        other, _ = _journal_writer(journal, other_got.extend)
        try:
            assert other.recover() == 0 and other_got == []
        finally:
            assert other.close()
        assert list(journal.glob("*.wal"))  # the owner's segments are still there
    finally:
        release.set()
        assert owner.close()
    assert not list(journal.glob("*.wal"))


def test_call_log_and_session_record_round_trip_the_journal() -> None:
    """The two journaled channels' codecs give back what was submitted."""
    from router.store.writer import CALL_LOG_CODEC, SESSION_RECORD_CODEC

    log = _log(7).model_copy(update={"error": "boom", "attempts": [{"status": 500}]})
    encode, decode = CALL_LOG_CODEC
    assert decode(encode(log)) == log
    record = ("s1", "r1", '{"body": "line\\nbreak \ud800"}')  # a lone surrogate survives
    encode, decode = SESSION_RECORD_CODEC
    assert decode(encode(record)) == record


def test_a_journal_keeps_no_memory_per_segment(tmp_path: Path) -> None:
    """A writer round seals a segment and deletes it once committed: up to 20 a second for as
    long as llmtap runs. Nothing may stay behind per segment (on Python 3.12 a pathlib path
    interns its parts for good: the soak's steady RSS growth)."""
    import gc
    import os
    import tracemalloc

    from router.store.writer import Journal

    journal = Journal(tmp_path / "journal")

    def rounds(n: int) -> None:
        for _ in range(n):
            journal.append("calllog", b"{}")
            sealed = journal.seal()
            assert sealed is not None
            os.unlink(sealed)

    tracemalloc.start()
    try:
        rounds(200)
        gc.collect()
        before = tracemalloc.take_snapshot()
        rounds(3000)
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    assert grown < 64 * 1024, f"{grown} bytes kept for 3000 segments"
    assert set(os.listdir(tmp_path / "journal")) == {"lock", os.path.basename(journal._path)}
    journal.close()
