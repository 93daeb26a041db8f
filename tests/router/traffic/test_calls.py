"""Router /v1 calls as inspector records (router/traffic/calls.py)."""

from __future__ import annotations

import json
import time

import pytest

from router import ir
from router.engine import CallInfo, Inbound
from router.formats import get_codec
from router.traffic.buffer import LiveBuffer
from router.traffic.calls import record_from_call
from router.traffic.service import Inspector


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
    for record in (start, final):  # built unvalidated: the types hold all the same
        assert type(record).model_validate(record.model_dump()) == record
    assert final.timestamp.timestamp() == pytest.approx(info.started_at)
    assert final.timestamp.timestamp() <= time.time()


def test_the_upstream_request_follows_a_changed_connection() -> None:
    """The upstream request's URL and masked headers are built once per connection, model and
    header set: a new key or URL on the connection is a new entry, never the old one."""
    from router.routing.resolve import Step
    from router.store.records import ProviderConnection
    from router.traffic.calls import upstream_from_call

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

    from router.traffic.calls import CallRecorder

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


def _finished_call(secret: str) -> CallInfo:
    body = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": f"my key is {secret}"}],
    }
    info = CallInfo(Inbound(format="openai-chat", body=body, path="/v1/chat/completions"))
    info.requested_model = "gpt-4o-mini"
    info.request = get_codec("openai-chat").parse_request(body)
    info.upstream_body = body
    info.status, info.finished = 200, True
    info.response = ir.Response(model="gpt-4o-mini", content=[ir.TextBlock(f"echo {secret}")])
    info.usage = ir.Usage(5, 2)
    info.response_bytes = json.dumps({"choices": [{"message": {"content": secret}}]}).encode()
    return info


def test_a_finished_call_built_at_once_equals_in_flight_then_final() -> None:
    """A call that is over when first recorded gets its final record in one build (no
    in-flight record copied): the same record, masked, as building both states gives."""
    secret = "sk-" + "z" * 40
    info = _finished_call(secret)
    at_once = record_from_call(info, port=20128)
    info.finished = False
    start = record_from_call(info, port=20128)
    info.finished = True
    two_steps = record_from_call(info, port=20128, base=start)
    assert at_once.masked and two_steps.masked
    assert at_once == two_steps
    assert at_once.status == 200 and secret not in at_once.model_dump_json()
    # Built without validation (trusted): every value already has its field's type, so
    # validating the record's own dump gives the same record back.
    from router.traffic.record import InterceptedRequest

    for record in (at_once, start):
        assert InterceptedRequest.model_validate(record.model_dump()) == record


@pytest.mark.parametrize("watched", [False, True])
async def test_the_in_flight_record_is_built_only_when_someone_watches(watched: bool) -> None:
    """A call that ends before its in-flight record is due: with a subscriber that wants
    events, it sees ``new`` (in flight) then ``update``; with nobody watching (no WebSocket
    client, no recording session) only the final record is built and held."""
    from router.traffic.calls import CallRecorder

    inspector = Inspector(LiveBuffer(10, max_body_kb=64))
    events: list[tuple[str, object]] = []
    inspector.subscribe(
        lambda ev, rec: events.append((ev, rec.status if rec else None)),
        wants=lambda: watched,
    )
    recorder = CallRecorder(inspector, lambda: 20128)
    secret = "sk-" + "q" * 40
    info = _finished_call(secret)
    info.finished = False
    recorder.record(info, "start")
    info.finished = True
    recorder.record(info, "finish")
    (held,) = inspector.list()
    assert held.status == 200 and held.masked and secret not in held.model_dump_json()
    assert inspector.watched() is watched
    # The subscriber is called either way (it decides what to do); what differs is the states.
    assert events == ([("new", "in-flight"), ("update", 200)] if watched else [("new", 200)])


async def test_one_timer_publishes_the_in_flight_records_that_are_due() -> None:
    """While someone watches, calls still running when their in-flight record is due are
    published by the timer (one for all of them, re-armed for a later start), with no read;
    a call that ended first never shows in flight."""
    import asyncio

    from router.traffic.calls import CallRecorder

    inspector = Inspector(LiveBuffer(10, max_body_kb=64))
    inspector.subscribe(lambda _event, _record: None, wants=lambda: True)
    recorder = CallRecorder(inspector, lambda: 20128)
    quick, slow, later = (_finished_call("x") for _ in range(3))
    for info in (quick, slow):
        info.finished = False
        recorder.record(info, "start")
    quick.finished = True
    recorder.record(quick, "finish")
    await asyncio.sleep(recorder.IN_FLIGHT_AFTER_S / 2)
    later.finished = False
    recorder.record(later, "start")
    peek = inspector.buffer.peek  # reads without publishing: only the timer builds them here
    for _ in range(200):  # bounded: 2 s
        await asyncio.sleep(0.01)
        if all(peek(i.inbound.request_id) is not None for i in (slow, later)):
            break
    states = {
        name: (record.status if (record := peek(i.inbound.request_id)) else None)
        for name, i in (("quick", quick), ("slow", slow), ("later", later))
    }
    assert states == {"quick": 200, "slow": "in-flight", "later": "in-flight"}
    slow.finished = True
    recorder.record(slow, "finish")
    final = inspector.get(slow.inbound.request_id)
    assert final is not None and final.status == 200 and final.masked


async def test_a_due_in_flight_record_nobody_watches_waits_for_a_reader() -> None:
    """With nobody watching, the timer builds no in-flight record: a read on the calls' own
    loop does (a read from another thread leaves it to its handler). Once someone watches,
    the timer of the next call started publishes every due record, the older ones too."""
    import asyncio

    from router.traffic.calls import CallRecorder

    inspector = Inspector(LiveBuffer(10, max_body_kb=64))
    recorder = CallRecorder(inspector, lambda: 20128)
    first, second, third = (_finished_call("x") for _ in range(3))
    ids = [i.inbound.request_id for i in (first, second, third)]
    for info in (first, second):
        info.finished = False
        recorder.record(info, "start")
    await asyncio.sleep(recorder.IN_FLIGHT_AFTER_S * 4)  # both due
    peek = inspector.buffer.peek
    assert [peek(i) for i in ids] == [None, None, None]  # due, unseen: not built
    assert await asyncio.to_thread(inspector.list) == []  # another thread: not published
    record = inspector.get(ids[0])  # on the loop: every due one is published
    assert record is not None and record.status == "in-flight" and record.masked
    assert [r.status for r in inspector.list()] == ["in-flight", "in-flight"]

    for info in (first, second):  # their final records replace the in-flight ones
        info.finished = True
        recorder.record(info, "finish")
    assert [(r.id, r.status) for r in inspector.list()] == [(ids[1], 200), (ids[0], 200)]

    inspector.clear()
    fourth = _finished_call("w")
    fourth.finished = False
    recorder.record(fourth, "start")  # nobody watches yet: no timer
    await asyncio.sleep(recorder.IN_FLIGHT_AFTER_S * 4)
    inspector.subscribe(lambda _event, _record: None, wants=lambda: True)
    third.finished = False
    recorder.record(third, "start")
    for _ in range(200):  # bounded: 2 s
        await asyncio.sleep(0.01)
        if peek(ids[2]) is not None:
            break
    assert [(r.id, r.status) for r in inspector.buffer.list()] == [
        (ids[2], "in-flight"),
        (fourth.inbound.request_id, "in-flight"),
    ]


def _passthrough_call(body: dict[str, object], sent_model: str) -> CallInfo:
    """A finished same-format call: the client's body went upstream with the model replaced."""
    from router.routing.resolve import Step
    from router.store.records import ProviderConnection

    info = CallInfo(Inbound(format="openai-chat", body=body, path="/v1/chat/completions"))
    info.requested_model = str(body["model"])
    info.request = get_codec("openai-chat").parse_request(body)
    conn = ProviderConnection(id="c1", provider="openai", name="oa", url="https://one.test/v1")
    info.step = Step(connection=conn, model=sent_model)
    info.target_format = "openai-chat"
    info.upstream_body = get_codec("openai-chat").passthrough_body(body, sent_model, stream=False)
    info.status, info.finished = 200, True
    info.response = ir.Response(model=sent_model, content=[ir.TextBlock("ok")])
    info.response_bytes = b'{"choices":[{"message":{"content":"ok"}}]}'
    return info


@pytest.mark.parametrize("two_steps", [False, True])
@pytest.mark.parametrize(
    ("content", "sent_model"),
    [
        ("plain words", "gpt-4o-mini"),
        ("my key is sk-" + "k" * 40, "gpt-4o-mini"),  # the client's body needs masking
        ("plain words", "sk-" + "m" * 40),  # only the model sent upstream does
    ],
)
def test_a_passthrough_calls_upstream_body_is_masked_as_its_request_is(
    content: str, sent_model: str, two_steps: bool
) -> None:
    """A same-format call's upstream body is the client's body with the model replaced: when
    no masking rule fired in the client's body it is not scanned again (the model sent is);
    whatever needed masking in either is masked in both, at once or via the in-flight record."""
    from router.traffic.calls import CallRecorder

    body = {"model": "fast", "messages": [{"role": "user", "content": content}]}
    info = _passthrough_call(body, sent_model)
    recorder = CallRecorder(Inspector(LiveBuffer(10)), lambda: 20128)
    if two_steps:  # in flight first (a slow call), then final from that record
        recorder._start(info)
    recorder.record(info, "finish")
    record = recorder.inspector.get(info.inbound.request_id)
    assert record is not None and record.status == 200 and record.upstream_request is not None
    sent = json.loads(record.upstream_request.body or "")
    kept = json.loads(record.request_body or "")
    assert sent["messages"] == kept["messages"]  # the same (masked) content in both
    dumped = record.model_dump_json()
    assert "k" * 40 not in dumped and "m" * 40 not in dumped
    if content == "plain words" and sent_model == "gpt-4o-mini":
        assert sent == {**body, "model": "gpt-4o-mini"}  # nothing to mask: as it was sent
