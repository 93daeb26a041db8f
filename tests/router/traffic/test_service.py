"""The Inspector (live records, sessions, annotations) and router calls as records."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

import pytest

from router import ir
from router.engine import CallInfo, Inbound
from router.errors import NotFound
from router.formats import get_codec
from router.store import sessions as store_sessions
from router.store.writer import SessionRecordWriter
from router.traffic.buffer import LiveBuffer
from router.traffic.record import InterceptedRequest
from router.traffic.service import Inspector, record_from_call
from tests.router.traffic.factory import make_record


class Sink:
    """Collects session upserts the way SessionRecordWriter would, final state per id."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str, str]] = []

    def __call__(self, session_id: str, record_id: str, data: str) -> None:
        self.items.append((session_id, record_id, data))

    def final(self, session_id: str) -> dict[str, InterceptedRequest]:
        out: dict[str, InterceptedRequest] = {}
        for sid, rid, data in self.items:
            if sid == session_id:
                out[rid] = InterceptedRequest.model_validate_json(data)
        return out


def stored_inspector(writer: SessionRecordWriter, size: int) -> Inspector:
    """An Inspector whose sessions ``writer`` stores, wired as the running process wires it."""
    return Inspector(LiveBuffer(size), lambda s, r, d: writer.submit((s, r, d)))


def test_add_then_update_is_one_record_with_two_events(sqlite_db: Path) -> None:
    inspector = Inspector(LiveBuffer(10), Sink())
    events: list[tuple[str, str | None]] = []
    inspector.subscribe(lambda ev, rec: events.append((ev, rec.id if rec else None)))
    rec = make_record(status="in-flight", response_body=None)
    inspector.add(rec)
    inspector.update(rec.model_copy(update={"status": 200, "response_body": "{}"}))
    assert events == [("new", rec.id), ("update", rec.id)]
    assert len(inspector.list()) == 1
    stored = inspector.get(rec.id)
    assert stored is not None and stored.status == 200


def test_inspector_fields_survive_a_capture_update(sqlite_db: Path) -> None:
    inspector = Inspector(LiveBuffer(10), Sink())
    rec = make_record(status="in-flight")
    inspector.add(rec)
    inspector.expect_note(rec.id, "replay of x")
    inspector.annotate(rec.id, "look at this")
    final = inspector.update(rec.model_copy(update={"status": 200}))
    assert final.annotation == "look at this"
    assert final.note == "replay of x"
    # the note is consumed by the final state
    again = inspector.update(make_record(id="other-id"))
    assert again.note is None


def test_session_records_final_state_of_a_call_in_flight_when_it_started(sqlite_db: Path) -> None:
    sink = Sink()
    inspector = Inspector(LiveBuffer(10), sink)
    before = make_record(status="in-flight", response_body=None)
    inspector.add(before)
    session = inspector.start_session("s1", "all")
    inspector.update(before.model_copy(update={"status": 200, "response_body": '{"done":1}'}))
    during = inspector.add(make_record(1))
    final = sink.final(session.id)
    assert set(final) == {before.id, during.id}
    assert final[before.id].status == 200
    assert json.loads(final[before.id].response_body or "") == {"done": 1}
    assert all(r.session_id == session.id for r in final.values())
    assert inspector.get(during.id) is not None
    assert inspector.get(during.id).session_id == session.id  # type: ignore[union-attr]

    inspector.stop_session(session.id)
    inspector.add(make_record(2))
    assert len(sink.final(session.id)) == 2
    assert store_sessions.get(session.id).ended_at is not None


def test_session_profile_filters_what_it_records(sqlite_db: Path) -> None:
    sink = Sink()
    inspector = Inspector(LiveBuffer(10), sink)
    session = inspector.start_session(None, "llm")
    llm = inspector.add(make_record(0))
    inspector.add(make_record(1, detected_kind="app", host="example.com"))
    assert set(sink.final(session.id)) == {llm.id}


def test_update_of_an_evicted_record_still_reaches_the_session(sqlite_db: Path) -> None:
    sink = Sink()
    inspector = Inspector(LiveBuffer(2), sink)
    session = inspector.start_session()
    old = inspector.add(make_record(0, status="in-flight"))
    for n in range(1, 4):
        inspector.add(make_record(n))
    assert inspector.get(old.id) is None
    inspector.update(old.model_copy(update={"status": 201}))
    assert inspector.get(old.id) is None  # not re-added: the timeline must not jump
    assert sink.final(session.id)[old.id].status == 201


def test_sessions_are_persisted_and_closed_at_shutdown(sqlite_db: Path) -> None:
    with contextlib.closing(SessionRecordWriter(max_delay=0.0)) as writer:
        inspector = stored_inspector(writer, 10)
        session = inspector.start_session("kept")
        rec = inspector.add(make_record(0))
        assert writer.flush(10)
        # a second Inspector on the same store (a restart) finds the open session
        reopened = stored_inspector(writer, 10)
        assert [s.id for s in reopened.active_sessions()] == [session.id]
        assert reopened.close() == 1
        assert reopened.active_sessions() == []
    stored = store_sessions.get(session.id)
    assert stored.ended_at is not None and stored.request_count == 1
    [data] = store_sessions.list_records(session.id)
    assert json.loads(data)["id"] == rec.id


def test_annotation_updates_live_record_and_every_session_copy(sqlite_db: Path) -> None:
    with contextlib.closing(SessionRecordWriter(max_delay=0.0)) as writer:
        inspector = stored_inspector(writer, 1)
        first = inspector.start_session("a")
        rec = inspector.add(make_record(0))
        inspector.stop_session(first.id)
        second = inspector.start_session("b")
        inspector.update(rec)
        inspector.stop_session(second.id)
        inspector.add(make_record(1))  # evicts rec from the ring of one
        assert writer.flush(10)
        annotated = inspector.annotate(rec.id, "why this prompt?")
        assert annotated.annotation == "why this prompt?"
        assert writer.flush(10)
        for session in (first, second):
            [data] = store_sessions.list_records(session.id)
            assert json.loads(data)["annotation"] == "why this prompt?"
        found = inspector.find(rec.id)
        assert found is not None and found.annotation == "why this prompt?"
        with pytest.raises(NotFound):
            inspector.annotate("no-such-id", "x")


def test_twenty_thousand_records_keep_the_buffer_bounded(sqlite_db: Path) -> None:
    inspector = Inspector(LiveBuffer(1000), None)
    for n in range(20_000):
        rec = inspector.add(make_record(n, status="in-flight"))
        if n % 10 == 0:
            inspector.update(rec.model_copy(update={"status": 200}))
    assert len(inspector.buffer) == 1000
    assert len(inspector.list()) == 1000


def test_record_from_call_in_flight_then_final() -> None:
    body = {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "hi"},
        ],
    }
    info = CallInfo(Inbound(format="openai-chat", body=body, path="/v1/chat/completions"))
    info.requested_model = "gpt-4o-mini"
    info.request = get_codec("openai-chat").parse_request(body)
    start = record_from_call(info, port=20128)
    assert start.status == "in-flight"
    assert start.source == "router" and start.scheme == "http" and start.port == 20128
    assert start.id == info.inbound.request_id
    assert start.total_latency_ms is None and start.context_key is not None

    t0 = info.t0
    info.t_sent, info.t_headers, info.t_done = t0 + 0.010, t0 + 0.030, t0 + 0.100
    info.status = 200
    info.response = ir.Response(
        model="gpt-4o-mini",
        content=[ir.TextBlock("hello")],
        stop_reason="end_turn",
        usage=ir.Usage(12, 3),
    )
    info.usage = ir.Usage(12, 3)
    info.cost_usd = 0.0042
    info.response_bytes = json.dumps({"choices": [{"message": {"content": "hello"}}]}).encode()
    info.finished = True
    final = record_from_call(info, port=20128)
    assert final.id == start.id and final.status == 200
    assert final.proxy_latency_ms == pytest.approx(10, abs=0.01)
    assert final.ttfb_ms == pytest.approx(20, abs=0.01)
    assert final.upstream_latency_ms == pytest.approx(90, abs=0.01)
    assert final.total_latency_ms == pytest.approx(100, abs=0.01)
    assert final.llm is not None
    assert (final.llm.tokens_in, final.llm.tokens_out, final.llm.cost_usd) == (12, 3, 0.0042)
    # A whole reply is the response body; llm.response holds no second copy of it.
    assert final.llm.response is None
    assert final.response_body is not None and "hello" in final.response_body
    assert final.llm.conversation is not None
    assert final.llm.conversation["response"][0]["blocks"] == [{"type": "text", "text": "hello"}]
    assert [t["role"] for t in final.llm.conversation["request"]] == ["system", "user"]
    assert start.masked and final.masked  # built masked: the buffer takes them as they are
    assert final.timestamp.timestamp() == pytest.approx(info.started_at)
    assert final.timestamp.timestamp() <= time.time()


def test_the_upstream_request_follows_a_changed_connection() -> None:
    """The upstream request's URL and masked headers are built once per connection, model and
    header set: a new key or URL on the connection is a new entry, never the old one."""
    from router.routing.resolve import Step
    from router.store.records import ProviderConnection
    from router.traffic.service import upstream_from_call

    def call(conn: ProviderConnection, extra: dict[str, str] | None = None) -> CallInfo:
        info = CallInfo(Inbound(format="openai-chat", body={}, path="/v1/chat/completions"))
        info.step = Step(connection=conn, model="gpt-4o-mini")
        info.target_format, info.upstream_body = "openai-chat", {"model": "gpt-4o-mini"}
        info.upstream_extra_headers = extra
        return info

    conn = ProviderConnection(
        id="c1", provider="openai", name="oa", url="https://one.test/v1", api_key="sk-" + "a" * 40
    )
    first = upstream_from_call(call(conn))
    again = upstream_from_call(call(conn))
    rotated = upstream_from_call(
        call(conn.model_copy(update={"api_key": "sk-" + "b" * 40, "url": "https://two.test/v1"}))
    )
    forwarded = upstream_from_call(call(conn, {"user-agent": "agent/1"}))
    assert first is not None and again is not None and rotated is not None
    assert forwarded is not None
    assert again.headers == first.headers and again.url == first.url
    assert first.url == "https://one.test/v1/chat/completions"
    assert rotated.url == "https://two.test/v1/chat/completions"
    assert forwarded.headers.get("user-agent") == "agent/1" and "user-agent" not in first.headers
    assert first.headers["authorization"] == "Bearer ***"
    assert "a" * 40 not in first.model_dump_json() and "b" * 40 not in rotated.model_dump_json()


def test_recording_a_huge_request_caps_it_before_masking_and_keeps_no_copy() -> None:
    """Issue 12: a 30 MB prompt through the router. Recording cuts every string to the live
    buffer's body cap before masking or serialising it, so building the in-flight and final
    records allocates a small fraction of the body (it made several whole masked copies:
    body text, conversation, upstream body), and what the ring keeps afterwards is bounded by
    the cap, not by the body (it held the whole conversation and upstream body)."""
    import gc
    import tracemalloc

    from router.traffic.service import CallRecorder

    text = "word " * (6 << 20)  # 30 MiB in one message
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]}
    size = len(json.dumps(body))
    inbound = Inbound(
        format="openai-chat",
        body=body,
        path="/v1/chat/completions",
        headers={"content-type": "application/json", "content-length": str(size)},
    )
    info = CallInfo(inbound)
    info.requested_model = "gpt-4o-mini"
    info.request = get_codec("openai-chat").parse_request(body)
    info.upstream_body = body  # same format: what went upstream is the body again
    recorder = CallRecorder(Inspector(LiveBuffer(10, max_body_kb=64)), lambda: 20128)
    gc.collect()
    tracemalloc.start()
    try:
        recorder.record(info, "start")
        info.status, info.finished = 200, True
        info.response = ir.Response(model="gpt-4o-mini", content=[ir.TextBlock("ok")])
        info.usage = ir.Usage(6 << 20, 1)
        info.response_bytes = b'{"choices":[{"message":{"content":"ok"}}]}'
        recorder.record(info, "finish")
        gc.collect()
        retained, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < size // 8, f"recording peaked at {peak >> 20} MiB for a {size >> 20} MiB body"
    assert retained < size // 32, f"{retained >> 20} MiB kept after a {size >> 20} MiB call"
    (held,) = recorder.inspector.list()
    assert held.body_truncated and held.request_body is not None
    assert len(held.request_body) <= 64 * 1024
    convo = held.llm.conversation if held.llm is not None else None
    assert convo is not None and len(json.dumps(convo)) < 70 * 1024
    assert convo["request"][0]["blocks"][0]["text"].endswith("…(truncated)")
