"""The openai_chat codec: streams (parse, render, errors)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openai.types.chat import ChatCompletionChunk

from router import ir
from router.formats import get_codec
from router.formats.openai_chat.codec import CODEC
from tests.router.formats.openai_chat.samples import sample_response, tool_call, usage
from tests.router.formats.shared import accumulate, parse_pieces, random_pieces, render_bytes


def sse(*chunks: dict[str, Any] | str) -> bytes:
    out = b""
    for chunk in chunks:
        data = chunk if isinstance(chunk, str) else json.dumps(chunk, ensure_ascii=False)
        out += f"data: {data}\n\n".encode()
    return out


def chunk(
    delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any
) -> dict[str, Any]:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {
        "id": "chatcmpl-9",
        "object": "chat.completion.chunk",
        "created": 1700000001,
        "model": "gpt-4o",
        "choices": choices,
        **extra,
    }


def tool_delta(
    index: int, args: str, call_id: str | None = None, name: str | None = None
) -> dict[str, Any]:
    call: dict[str, Any] = {"index": index, "function": {"arguments": args}}
    if call_id:
        call.update(id=call_id, type="function")
        call["function"]["name"] = name
    return {"tool_calls": [call]}


USAGE = usage(10, 7, cached=4, reasoning=2)

# an upstream stream: role-only chunk, reasoning, text, two parallel tools interleaved,
# finish, usage chunk, [DONE]
STREAM = sse(
    chunk({"role": "assistant", "content": ""}),
    chunk({"reasoning_content": "thinking é"}),
    chunk({"content": "Hello 👋"}),
    chunk({"content": " there"}),
    chunk(tool_delta(0, "", "call_a", "read")),
    chunk(tool_delta(1, '{"pa', "call_b", "write")),
    chunk(tool_delta(0, '{"path":')),
    chunk(tool_delta(1, 'th":"b"}')),
    chunk(tool_delta(0, '"a"}')),
    chunk({}, "tool_calls"),
    chunk(None, usage=USAGE),
    "[DONE]",
)

STREAM_EQUIVALENT = {
    "id": "chatcmpl-9",
    "object": "chat.completion",
    "created": 1700000001,
    "model": "gpt-4o",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "reasoning_content": "thinking é",
                "content": "Hello 👋 there",
                "tool_calls": [
                    tool_call("call_a", "read", '{"path":"a"}'),
                    tool_call("call_b", "write", '{"path":"b"}'),
                ],
            },
            "finish_reason": "tool_calls",
        }
    ],
    "usage": USAGE,
}


def parse_all(data: bytes, pieces: list[bytes] | None = None) -> list[ir.StreamEvent]:
    return parse_pieces(CODEC, pieces if pieces is not None else [data])


def test_stream_accumulates_to_the_equivalent_non_streamed_response() -> None:
    assert accumulate(parse_all(STREAM)) == CODEC.parse_response(STREAM_EQUIVALENT)


def test_stream_byte_by_byte_and_random_chunkings_give_identical_events() -> None:
    whole = parse_all(STREAM)
    assert parse_all(STREAM, [STREAM[i : i + 1] for i in range(len(STREAM))]) == whole
    for seed in range(20):
        assert parse_all(STREAM, random_pieces(STREAM, seed)) == whole


def test_case2_parallel_tool_calls_interleaved() -> None:
    events = parse_all(STREAM)
    starts = [e for e in events if isinstance(e, ir.BlockStart)]
    assert [(s.index, type(s.block).__name__) for s in starts] == [
        (0, "ThinkingBlock"),
        (1, "TextBlock"),
        (2, "ToolUseBlock"),
        (3, "ToolUseBlock"),
    ]
    args = {
        i: "".join(e.text for e in events if isinstance(e, ir.BlockDelta) and e.index == i)
        for i in (2, 3)
    }
    assert args == {2: '{"path":"a"}', 3: '{"path":"b"}'}


@pytest.mark.parametrize("cut", range(0, 14))
def test_case3_tool_args_split_anywhere(cut: int) -> None:
    arguments = '{"q":"naïve"}'
    data = sse(
        chunk(tool_delta(0, arguments[:cut], "call_1", "search")),
        chunk(tool_delta(0, arguments[cut:])),
        chunk({}, "tool_calls"),
        "[DONE]",
    )
    call = accumulate(parse_all(data)).tool_calls()[0]
    assert (call.id, call.name, call.input) == ("call_1", "search", {"q": "naïve"})


def test_case3_invalid_tool_args_keep_the_raw_string() -> None:
    data = sse(chunk(tool_delta(0, "{oops", "call_1", "f")), chunk({}, "tool_calls"), "[DONE]")
    call = accumulate(parse_all(data)).tool_calls()[0]
    assert call.raw_arguments == "{oops" and call.arguments_json() == "{oops"


def test_case7_content_and_finish_in_one_chunk() -> None:
    data = sse(chunk({"role": "assistant", "content": "all at once"}, "stop"), "[DONE]")
    events = parse_all(data)
    resp = accumulate(events)
    assert resp.text() == "all at once" and resp.stop_reason == "end_turn"
    kinds = [e.type for e in events]
    assert kinds == [
        "message_start",
        "block_start",
        "block_delta",
        "block_stop",
        "message_delta",
        "message_stop",
    ]


def test_case7_role_only_chunk_loses_nothing() -> None:
    events = parse_all(sse(chunk({"role": "assistant"}), chunk({}, "stop"), "[DONE]"))
    start = events[0]
    assert isinstance(start, ir.MessageStart)
    assert (start.id, start.model, start.created) == ("chatcmpl-9", "gpt-4o", 1700000001)
    assert accumulate(events).stop_reason == "end_turn"


def test_case9_sse_split_utf8_and_crlf() -> None:
    text = "ünïcödé 日本語 🎉"
    data = b": keep-alive\r\n\r\n" + sse(
        chunk({"content": text}), chunk({}, "stop"), "[DONE]"
    ).replace(b"\n", b"\r\n")
    whole = parse_all(data)
    assert accumulate(whole).text() == text
    assert parse_all(data, [data[i : i + 1] for i in range(len(data))]) == whole


def test_usage_chunk_becomes_message_delta_usage() -> None:
    resp = accumulate(parse_all(STREAM))
    assert resp.usage == ir.Usage(
        input_tokens=10, output_tokens=7, cache_read_tokens=4, reasoning_tokens=2
    )


def test_error_chunk_becomes_error_event() -> None:
    data = sse(
        chunk({"content": "x"}), {"error": {"message": "overloaded", "type": "server_error"}}
    )
    events = parse_all(data)
    assert events[-1] == ir.ErrorEvent("overloaded", "server_error")


def test_stream_cut_before_finish_is_an_error() -> None:
    events = parse_all(sse(chunk({"content": "partial"})))
    assert isinstance(events[-1], ir.ErrorEvent)
    assert "ended early" in events[-1].message


def test_finish_without_done_still_stops() -> None:
    events = parse_all(sse(chunk({"content": "x"}, "length")))
    assert isinstance(events[-1], ir.MessageStop)
    assert accumulate(events).stop_reason == "max_tokens"


def split_chunks(data: bytes) -> list[dict[str, Any] | str]:
    out: list[dict[str, Any] | str] = []
    for frame in data.decode().split("\n\n"):
        if frame.startswith("data: "):
            payload = frame[len("data: ") :]
            out.append(payload if payload == "[DONE]" else json.loads(payload))
    return out


def render_all(events: list[ir.StreamEvent], req: ir.Request) -> bytes:
    return render_bytes(CODEC, events, req)


@pytest.mark.parametrize("include_usage", [True, False])
def test_case5_renderer_sends_usage_only_when_asked(include_usage: bool) -> None:
    req = ir.Request(model="m", stream=True, include_usage=include_usage)
    chunks = split_chunks(render_all(ir.response_events(sample_response()), req))
    assert chunks[-1] == "[DONE]"
    with_usage = [c for c in chunks if isinstance(c, dict) and c.get("usage")]
    assert len(with_usage) == (1 if include_usage else 0)
    if include_usage:
        assert with_usage[0]["choices"] == []
        assert with_usage[0]["usage"]["prompt_tokens_details"]["cached_tokens"] == 10


def test_case2_renderer_tool_index_counts_only_tools() -> None:
    req = ir.Request(model="m", stream=True, include_usage=True)
    chunks = split_chunks(render_all(ir.response_events(sample_response()), req))
    parsed = [ChatCompletionChunk.model_validate(c) for c in chunks if isinstance(c, dict)]
    assert len({p.id for p in parsed}) == 1  # one stable id
    assert parsed[0].choices[0].delta.role == "assistant"
    starts = [
        call
        for p in parsed
        for choice in p.choices
        for call in choice.delta.tool_calls or []
        if call.id
    ]
    assert [(c.index, c.id) for c in starts] == [(0, "toolu_a"), (1, "toolu_b")]
    finishes = [ch.finish_reason for p in parsed for ch in p.choices if ch.finish_reason]
    assert finishes == ["tool_calls"]


def test_rendered_stream_parses_back_to_the_same_response() -> None:
    resp = sample_response()
    data = render_all(ir.response_events(resp), ir.Request(model="m", include_usage=True))
    back = accumulate(parse_all(data))
    assert back.tool_calls() == resp.tool_calls()
    assert back.text() == resp.text()
    assert back.usage == resp.usage and back.stop_reason == "tool_use"
    thinking = back.content[0]
    assert isinstance(thinking, ir.ThinkingBlock) and thinking.thinking == "deep"


def test_case8_error_is_sent_in_band_then_done() -> None:
    renderer = CODEC.stream_renderer(ir.Request(model="m"))
    out = renderer.render(ir.MessageStart(id="x", model="m"))
    out += renderer.render(ir.ErrorEvent("upstream died", "api_error"))
    chunks = split_chunks(out)
    assert chunks[-2] == {
        "error": {"message": "upstream died", "type": "api_error", "code": None, "param": None}
    }
    assert chunks[-1] == "[DONE]"
    assert renderer.finish() == b""
    assert CODEC.error_event("boom").endswith(b"data: [DONE]\n\n")


def test_finish_owes_done_when_message_stop_never_came() -> None:
    renderer = CODEC.stream_renderer(ir.Request(model="m"))
    renderer.render(ir.MessageStart(id="x", model="m"))
    assert renderer.finish() == b"data: [DONE]\n\n"
    assert renderer.finish() == b""


def test_get_codec_returns_this_codec() -> None:
    assert get_codec("openai-chat") is CODEC and CODEC.name == "openai-chat"
