"""The anthropic codec: streams (parse, render, errors)."""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import anthropic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router import ir
from router.formats.anthropic.codec import CODEC
from tests.router.formats.anthropic.samples import (
    SAFE_ID,
    ServerFactory,
    message_body,
    parse_all,
    render_all,
    sdk_final,
    sdk_stream,
    sse,
    sse_payloads,
    stream_for,
    validated,
)
from tests.router.formats.shared import accumulate


def test_stream_accumulates_to_parse_response() -> None:
    body = message_body()
    events = parse_all(stream_for(body, noise=True))
    assert accumulate(events) == CODEC.parse_response(body)
    assert isinstance(events[-1], ir.MessageStop)


def test_case9_utf8_split_crlf_ping_comments() -> None:
    body = message_body(
        content=[{"type": "text", "text": "naïve 日本語 🎉 ok"}], stop_reason="end_turn"
    )
    plain = parse_all(stream_for(body))
    noisy = stream_for(body, crlf=True, noise=True)
    assert parse_all(noisy) == plain
    assert parse_all(noisy, [1] * len(noisy)) == plain  # byte by byte splits every UTF-8 char
    assert accumulate(plain).text() == "naïve 日本語 🎉 ok"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=40), max_size=80))
def test_parser_is_chunking_independent(cuts: list[int]) -> None:
    raw = stream_for(message_body(), crlf=True, noise=True)
    assert parse_all(raw, cuts) == parse_all(raw)


def test_case3_input_json_split_anywhere_and_invalid_json_kept_raw() -> None:
    args = '{"path": "/tmp/ä.txt", "lines": [1, 2, 3], "note": "quote \\" here"}'
    rng = random.Random(7)
    for _ in range(20):
        cuts = sorted(rng.sample(range(1, len(args)), 6))
        pieces = [args[a:b] for a, b in zip([0, *cuts], [*cuts, len(args)], strict=True)]
        raw = _tool_stream(pieces)
        call = accumulate(parse_all(raw)).tool_calls()[0]
        assert call.input == json.loads(args) and call.raw_arguments is None
    broken = accumulate(parse_all(_tool_stream(['{"path": ', "oops"]))).tool_calls()[0]
    assert broken.input == {} and broken.raw_arguments == '{"path": oops'
    # Rendered back, the raw string is what a client receives as partial JSON.
    payloads = sse_payloads(render_all(parse_all(_tool_stream(['{"path": ', "oops"]))))
    joined = "".join(
        p["delta"]["partial_json"] for _, p in payloads if p["type"] == "content_block_delta"
    )
    assert joined == '{"path": oops'


def _tool_stream(pieces: list[str]) -> bytes:
    start: dict[str, Any] = {"id": "msg_t", "type": "message", "role": "assistant", "model": "c", "content": [],
             "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 3, "output_tokens": 1}}  # fmt: skip
    block = {"type": "tool_use", "id": "toolu_9", "name": "read", "input": {}}
    out = [
        sse("message_start", {"type": "message_start", "message": start}),
        sse(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": block},
        ),
    ]
    for piece in pieces:
        delta = {"type": "input_json_delta", "partial_json": piece}
        out.append(
            sse("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta})
        )
    out.append(sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
    end: dict[str, Any] = {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use"},
        "usage": {"output_tokens": 5},
    }
    out += [sse("message_delta", end), sse("message_stop", {"type": "message_stop"})]
    return b"".join(out)


def test_server_tool_blocks_are_skipped_and_indices_stay_dense() -> None:
    body = message_body(
        content=[
            {
                "type": "server_tool_use",
                "id": "srvtoolu_1",
                "name": "web_search",
                "input": {"query": "x"},
            },
            {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
            {"type": "text", "text": "found it"},
        ],
        stop_reason="end_turn",
    )
    events = parse_all(stream_for(body))
    starts = [e for e in events if isinstance(e, ir.BlockStart)]
    assert [s.index for s in starts] == [0] and isinstance(starts[0].block, ir.TextBlock)
    assert accumulate(events) == CODEC.parse_response(body)
    assert CODEC.parse_response(body).text() == "found it"


def test_case8_in_band_error() -> None:
    raw = stream_for(message_body())
    cut = raw[: raw.index(b"event: content_block_stop")]
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    events = parse_all(cut + sse("error", error))
    assert events[-1] == ir.ErrorEvent("Overloaded", "overloaded_error")
    assert sum(isinstance(e, ir.ErrorEvent) for e in events) == 1
    # A stream that just stops is an error, never a silent success.
    truncated = parse_all(cut)
    assert isinstance(truncated[-1], ir.ErrorEvent) and "message_stop" in truncated[-1].message
    # Rendering: the exact Anthropic framing, and nothing after it.
    renderer = CODEC.stream_renderer(ir.Request(model="m"))
    renderer.render(ir.MessageStart(id="msg_1"))
    out = renderer.render(ir.ErrorEvent("upstream died", "server_error"))
    assert (
        out
        == b'event: error\ndata: {"type":"error","error":{"type":"api_error","message":"upstream died"}}\n\n'
    )
    assert renderer.render(ir.MessageStop()) == b"" and renderer.finish() == b""
    assert CODEC.error_event("slow down", "rate_limit_error") == (
        b'event: error\ndata: {"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}\n\n'
    )


async def test_case8_sdk_raises_on_rendered_error(aiohttp_server: ServerFactory) -> None:
    events: list[ir.StreamEvent] = [
        ir.MessageStart(id="msg_e"),
        ir.BlockStart(0, ir.TextBlock()),
        ir.BlockDelta(0, "text", "partial"),
        ir.ErrorEvent("Overloaded", "overloaded_error"),
    ]
    stream = await sdk_stream(aiohttp_server, render_all(events))
    with pytest.raises(anthropic.APIStatusError) as exc:
        await stream.get_final_message()
    assert "Overloaded" in str(exc.value)
    await stream.close()


def interleaved_events() -> list[ir.StreamEvent]:
    """What an OpenAI stream with a text part and two parallel tool calls turns into."""
    return [
        ir.MessageStart(id="chatcmpl-9", model="gpt-x"),
        ir.BlockStart(0, ir.TextBlock()),
        ir.BlockDelta(0, "text", "Calling "),
        ir.BlockStart(1, ir.ToolUseBlock(id="call_a", name="weather")),
        ir.BlockDelta(0, "text", "tools"),
        ir.BlockStart(2, ir.ToolUseBlock(id="call.b", name="time")),
        ir.BlockDelta(1, "input_json", '{"city":'),
        ir.BlockDelta(2, "input_json", '{"tz":'),
        ir.BlockDelta(2, "input_json", '"UTC"}'),
        ir.BlockDelta(1, "input_json", '"Paris"}'),
        ir.BlockStop(2),
        ir.BlockStop(0),
        ir.BlockStop(1),
        ir.MessageDelta("tool_use", usage=ir.Usage(input_tokens=20, output_tokens=9)),
        ir.MessageStop(),
    ]


def test_case2_interleaved_blocks_rendered_sequentially() -> None:
    payloads = [p for _, p in sse_payloads(render_all(interleaved_events()))]
    open_index: int | None = None
    seen: list[int] = []
    for p in payloads:
        if p["type"] == "content_block_start":
            assert open_index is None  # never two blocks open at once
            open_index = p["index"]
            seen.append(p["index"])
        elif p["type"] == "content_block_delta":
            assert p["index"] == open_index
        elif p["type"] == "content_block_stop":
            assert p["index"] == open_index
            open_index = None
    assert seen == [0, 1, 2] and open_index is None
    resp = accumulate(parse_all(render_all(interleaved_events())))
    assert resp.text() == "Calling tools"
    assert [(c.name, c.input) for c in resp.tool_calls()] == [
        ("weather", {"city": "Paris"}),
        ("time", {"tz": "UTC"}),
    ]


def test_renderer_closes_open_blocks_on_message_delta_and_finish() -> None:
    events: list[ir.StreamEvent] = [
        ir.BlockStart(0, ir.ToolUseBlock(id="a", name="f")),
        ir.BlockStart(1, ir.ToolUseBlock(id="b", name="g")),
        ir.BlockDelta(1, "input_json", "{}"),
        ir.BlockDelta(3, "text", "orphan delta"),  # implies its own text block
    ]
    renderer = CODEC.stream_renderer(ir.Request(model="claude-haiku-4-5"))
    raw = b"".join(renderer.render(e) for e in events) + renderer.finish()
    kinds = [p["type"] for _, p in sse_payloads(raw)]
    assert kinds == [
        "message_start",
        "content_block_start", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_stop",
        "message_delta", "message_stop",
    ]  # fmt: skip
    assert renderer.finish() == b""
    resp = accumulate(parse_all(raw))
    assert resp.model == "claude-haiku-4-5" and resp.text() == "orphan delta"


async def test_sdk_accepts_rendered_stream_of_anthropic_message(
    aiohttp_server: ServerFactory,
) -> None:
    body = message_body()
    raw = render_all(parse_all(stream_for(body, crlf=True, noise=True)))
    assert await sdk_final(aiohttp_server, raw) == validated(body)


async def test_sdk_accepts_rendered_stream_of_foreign_events(aiohttp_server: ServerFactory) -> None:
    events = [_shifted(e) for e in interleaved_events()]
    events.insert(1, ir.BlockStart(0, ir.ThinkingBlock(origin="openai-chat")))
    events.insert(2, ir.BlockDelta(0, "thinking", "hmm"))
    events.insert(3, ir.BlockStop(0))
    raw = render_all(events, ir.Request(model="gpt-x"))
    final = await sdk_final(aiohttp_server, raw)
    expected = CODEC.render_response(accumulate(events), ir.Request(model="gpt-x"))
    assert final == validated(expected)
    assert [b["type"] for b in final["content"]] == ["thinking", "text", "tool_use", "tool_use"]
    assert final["content"][0]["signature"] == ""
    assert final["content"][3]["input"] == {"tz": "UTC"} and SAFE_ID.match(
        final["content"][3]["id"]
    )


def _shifted(event: ir.StreamEvent) -> ir.StreamEvent:
    """The event with its block index moved up by one, to make room for a leading block."""
    if isinstance(event, ir.BlockStart | ir.BlockDelta | ir.BlockStop):
        event = copy.copy(event)
        event.index += 1
    return event


async def test_sdk_accepts_rendered_non_streamed_response(aiohttp_server: ServerFactory) -> None:
    resp = CODEC.parse_response(message_body(stop_reason="max_tokens"))
    raw = render_all(ir.response_events(resp))
    assert await sdk_final(aiohttp_server, raw) == validated(
        CODEC.render_response(resp, ir.Request(model="m"))
    )


def test_id_less_tool_calls_get_distinct_client_ids() -> None:
    resp = ir.Response(content=[ir.ToolUseBlock(name="a"), ir.ToolUseBlock(name="b")])
    ids = [b["id"] for b in CODEC.render_response(resp, ir.Request(model="m"))["content"]]
    assert len(set(ids)) == 2 and all(SAFE_ID.match(i) for i in ids)


def test_parser_survives_malformed_events() -> None:
    raw = b"".join(
        [
            b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":"x"}\n\n',
            b'event: error\ndata: {"type":"error","error":"boom"}\n\n',
        ]
    )
    events = parse_all(raw)
    assert events == [ir.ErrorEvent("upstream stream error", "api_error")]


def test_an_event_that_is_not_json_ends_the_stream_with_an_error() -> None:
    """The Anthropic parser skipped non-JSON events, so a garbage stream had no error at all
    (issue 12: "the Anthropic path records no error today")."""
    raw = b"event: message_start\ndata: not json\n\n" + b'event: ping\ndata: {"type":"ping"}\n\n'
    assert parse_all(raw) == [
        ir.ErrorEvent("upstream sent a stream event that is not JSON", "api_error")
    ]
