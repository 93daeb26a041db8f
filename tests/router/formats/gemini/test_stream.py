"""The gemini codec: streams (parse, render, errors)."""

from __future__ import annotations

import json
import random

from router import ir
from router.formats.gemini.codec import CODEC
from tests.router.formats.gemini.samples import (
    merged_body,
    parse_in_pieces,
    render_all,
    sse,
    stream_chunks,
)
from tests.router.formats.shared import accumulate


def test_case9_stream_parse_is_identical_for_any_chunking() -> None:
    data = sse(stream_chunks()).replace(b"data: ", b": keep-alive\r\n\r\ndata: ", 1)
    whole = parse_in_pieces(data, [])
    assert parse_in_pieces(data, [1] * len(data)) == whole
    rng = random.Random(1234)
    for _ in range(25):
        sizes = [rng.randint(1, 40) for _ in range(len(data) // 10)]
        assert parse_in_pieces(data, sizes) == whole
    assert isinstance(whole[0], ir.MessageStart) and whole[0].id == "r-42"
    assert whole[0].usage == ir.Usage(input_tokens=50)
    assert isinstance(whole[-1], ir.MessageStop)
    delta = whole[-2]
    assert isinstance(delta, ir.MessageDelta) and delta.stop_reason == "tool_use"
    assert delta.usage == ir.Usage(
        input_tokens=50, output_tokens=20, cache_read_tokens=10, reasoning_tokens=8
    )


def test_case3_each_function_call_is_one_whole_tool_block() -> None:
    events = parse_in_pieces(sse(stream_chunks()), [])
    tool_starts = [
        e for e in events if isinstance(e, ir.BlockStart) and isinstance(e.block, ir.ToolUseBlock)
    ]
    assert [
        (s.block.id, s.block.name) for s in tool_starts if isinstance(s.block, ir.ToolUseBlock)
    ] == [
        ("call_get_weather_0", "get_weather"),
        ("call_get_weather_1", "get_weather"),
    ]
    for start in tool_starts:
        deltas = [e for e in events if isinstance(e, ir.BlockDelta) and e.index == start.index]
        assert len(deltas) == 1 and deltas[0].kind == "input_json"
        assert ir.BlockStop(start.index) in events


def test_stream_accumulates_to_the_equivalent_response() -> None:
    streamed = accumulate(parse_in_pieces(sse(stream_chunks()), [7, 3, 100]))
    assert streamed == CODEC.parse_response(merged_body())
    assert streamed.text() == "Hello, wörld ✓"
    thinking = streamed.content[0]
    assert isinstance(thinking, ir.ThinkingBlock)
    assert (thinking.thinking, thinking.signature) == ("Let me think ☃", "tsig")


def test_stream_cut_without_finish_reason_is_an_error() -> None:
    chunks = stream_chunks()[:3]
    events = parse_in_pieces(sse(chunks), [5])
    assert isinstance(events[-1], ir.ErrorEvent)
    assert not any(isinstance(e, ir.MessageStop) for e in events)
    parser = CODEC.stream_parser()
    assert parser.feed(b"") == []
    assert [type(e) for e in parser.close()] == [ir.ErrorEvent]


def test_case7_content_and_finish_reason_in_one_chunk_lose_nothing() -> None:
    chunk = {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": "all at once"}]},
                "finishReason": "MAX_TOKENS",
            }
        ],
        "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 4},
    }
    resp = accumulate(parse_in_pieces(sse([chunk]), []))
    assert resp.text() == "all at once"
    assert resp.stop_reason == "max_tokens"
    assert resp.usage == ir.Usage(input_tokens=3, output_tokens=4)


def test_case8_upstream_error_chunk_becomes_error_event() -> None:
    data = sse(
        [
            stream_chunks()[2],
            {"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}},
        ]
    )
    events = parse_in_pieces(data, [])
    assert events[-1] == ir.ErrorEvent("quota", "rate_limit_error", 429)


def test_case8_error_event_rendering_in_gemini_framing() -> None:
    payload = CODEC.error_event("boom", "overloaded_error")
    assert payload.startswith(b"data: ") and payload.endswith(b"\n\n")
    assert json.loads(payload[6:]) == {
        "error": {"code": 503, "message": "boom", "status": "UNAVAILABLE"}
    }
    renderer = CODEC.stream_renderer(ir.Request(model="m"))
    out = renderer.render(ir.ErrorEvent("cut", "api_error"))
    assert json.loads(out[6:]) == {"error": {"code": 500, "message": "cut", "status": "INTERNAL"}}
    assert renderer.finish() == b""
    # our own parser reads it back as an error
    parsed = parse_in_pieces(out, [])
    assert isinstance(parsed[0], ir.ErrorEvent) and parsed[0].message == "cut"


def test_render_stream_reparses_to_the_same_response() -> None:
    original = CODEC.parse_response(merged_body())
    data = render_all(CODEC, ir.response_events(original), ir.Request(model="gemini-2.5-flash"))
    chunks = [json.loads(line[6:]) for line in data.split(b"\n\n") if line]
    # one chunk per text delta and per whole call, then the final chunk
    assert all("finishReason" not in c["candidates"][0] for c in chunks[:-1])
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert chunks[-1]["usageMetadata"] == merged_body()["usageMetadata"]
    assert accumulate(parse_in_pieces(data, [13])) == original


def test_case3_renderer_buffers_split_arguments_into_one_function_call() -> None:
    args = '{"path": "/tmp/ü", "n": [1, 2]}'
    events: list[ir.StreamEvent] = [
        ir.MessageStart(id="x", model="gpt"),
        ir.BlockStart(0, ir.TextBlock()),
        ir.BlockDelta(0, "text", "ok"),
        ir.BlockStart(1, ir.ToolUseBlock(id="call_A", name="ls")),
        ir.BlockStart(2, ir.ToolUseBlock(id="call_B", name="cat")),
        *(ir.BlockDelta(1, "input_json", args[i : i + 3]) for i in range(0, len(args), 3)),
        ir.BlockDelta(2, "input_json", "{}"),
        ir.BlockStop(0),
        ir.BlockStop(2),
        ir.BlockStop(1),
        ir.MessageDelta(stop_reason="tool_use", usage=ir.Usage(input_tokens=9, output_tokens=2)),
    ]
    data = render_all(CODEC, events, ir.Request(model="m"))  # no MessageStop: finish() ends it
    chunks = [json.loads(line[6:]) for line in data.split(b"\n\n") if line]
    calls = [
        p["functionCall"]
        for c in chunks
        for p in c["candidates"][0]["content"]["parts"]
        if "functionCall" in p
    ]
    assert calls == [
        {"name": "cat", "args": {}, "id": "call_B"},
        {"name": "ls", "args": json.loads(args), "id": "call_A"},
    ]
    assert chunks[-1]["usageMetadata"]["promptTokenCount"] == 9
    assert accumulate(parse_in_pieces(data, [])).stop_reason == "tool_use"
