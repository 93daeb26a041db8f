"""Tests for the openai-chat codec: requests, responses and streams, checked against the SDK."""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import openai
import pytest
from aiohttp import web
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from router import ir
from router.errors import BadRequest
from router.formats import get_codec
from router.formats.openai_chat.codec import CODEC

PNG = "iVBORw0KGgo="


def full_body() -> dict[str, Any]:
    return {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "content": "calling",
                "reasoning_content": "let me think",
                "tool_calls": [
                    {
                        "id": "call_a",
                        "type": "function",
                        "function": {"name": "read", "arguments": '{"path":"a.py"}'},
                    },
                    {
                        "id": "call_b",
                        "type": "function",
                        "function": {"name": "read", "arguments": "{not json"},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "call_a", "content": "print(1)"},
            {"role": "tool", "tool_call_id": "call_b", "content": "oops"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "look"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                    {"type": "image_url", "image_url": {"url": "https://x.test/a.jpg"}},
                ],
            },
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "read",
                    "description": "read a file",
                    "parameters": {"type": "object", "properties": {"path": {"type": "string"}}},
                    "strict": True,
                },
            }
        ],
        "tool_choice": {"type": "function", "function": {"name": "read"}},
        "parallel_tool_calls": False,
        "max_tokens": 100,
        "temperature": 0.5,
        "top_p": 0.9,
        "stop": ["END"],
        "seed": 7,
        "reasoning_effort": "low",
        "response_format": {"type": "json_object"},
        "stream": True,
        "stream_options": {"include_usage": True, "include_obfuscation": False},
        "user": "u1",
        "metadata": {"k": "v"},
        "frequency_penalty": 0.1,
        "logit_bias": {"50256": -100},
    }


# --------------------------------------------------------------------------- requests


def test_parse_request_maps_every_field() -> None:
    req = CODEC.parse_request(full_body())
    assert req.source_format == "openai-chat"
    assert req.system == [ir.TextBlock("be brief")]
    assert [m.role for m in req.messages] == ["user", "assistant", "user", "user"]
    assistant = req.messages[1]
    assert assistant.content[0] == ir.ThinkingBlock("let me think", origin="openai-chat")
    assert assistant.content[1] == ir.TextBlock("calling")
    good, bad = assistant.content[2], assistant.content[3]
    assert isinstance(good, ir.ToolUseBlock) and good.input == {"path": "a.py"}
    assert isinstance(bad, ir.ToolUseBlock) and bad.raw_arguments == "{not json"
    # consecutive tool messages become one user turn of tool results
    results = req.messages[2].content
    assert [b.tool_use_id for b in results if isinstance(b, ir.ToolResultBlock)] == [
        "call_a",
        "call_b",
    ]
    images = req.messages[3].content[1:]
    assert images == [
        ir.ImageBlock(media_type="image/png", data=PNG),
        ir.ImageBlock(url="https://x.test/a.jpg"),
    ]
    assert req.tools[0].name == "read" and req.tools[0].extra == {"strict": True}
    assert req.tool_choice == ir.ToolChoice("tool", "read")
    assert req.parallel_tool_calls is False
    assert (req.max_tokens, req.temperature, req.top_p, req.seed) == (100, 0.5, 0.9, 7)
    assert req.stop == ["END"] and req.reasoning_effort == "low"
    assert req.response_format == {"type": "json_object"}
    assert req.stream and req.include_usage
    assert (req.user, req.metadata) == ("u1", {"k": "v"})
    assert req.extra == {
        "frequency_penalty": 0.1,
        "logit_bias": {"50256": -100},
        "stream_options": {"include_obfuscation": False},
    }


def test_developer_role_string_stop_and_max_completion_tokens() -> None:
    req = CODEC.parse_request(
        {
            "model": "o3",
            "messages": [{"role": "developer", "content": [{"type": "text", "text": "rules"}]}],
            "stop": "X",
            "max_completion_tokens": 9,
            "max_tokens": 1,
        }
    )
    assert req.system == [ir.TextBlock("rules")]
    assert req.stop == ["X"]
    assert req.max_tokens == 9


def test_same_format_render_round_trips_the_body() -> None:
    body = full_body()
    assert CODEC.render_request(CODEC.parse_request(copy.deepcopy(body))) == body


def test_ir_round_trip_parse_render_parse() -> None:
    first = CODEC.parse_request(full_body())
    second = CODEC.parse_request(CODEC.render_request(first))
    first.dropped = second.dropped = []
    assert second == first


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": 3, "messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": "m"}, "messages"),
        ({"model": "m", "messages": "hi"}, "messages"),
        ({"model": "m", "messages": []}, "messages"),
        ({"model": "m", "messages": ["hi"]}, "messages[0]"),
        ({"model": "m", "messages": [{"content": "x"}]}, "messages[0].role"),
        ({"model": "m", "messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
        ({"model": "m", "messages": [{"role": "user"}]}, "messages[0].content"),
        (
            {"model": "m", "messages": [{"role": "tool", "content": "x"}]},
            "messages[0].tool_call_id",
        ),
        (
            {"model": "m", "messages": [{"role": "user", "content": [{"type": "text"}]}]},
            "messages[0].content[0].text",
        ),
        (
            {
                "model": "m",
                "messages": [
                    {
                        "role": "assistant",
                        "tool_calls": [{"id": "c", "function": {"arguments": ""}}],
                    }
                ],
            },
            "messages[0].tool_calls[0].function.name",
        ),
        (
            {"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"},
            "temperature",
        ),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}, "stream"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "stop": 5}, "stop"),
        (
            {"model": "m", "messages": [{"role": "user", "content": "x"}], "tool_choice": "any"},
            "tool_choice",
        ),
        (
            {
                "model": "m",
                "messages": [{"role": "user", "content": "x"}],
                "reasoning_effort": "max",
            },
            "reasoning_effort",
        ),
        (
            {
                "model": "m",
                "messages": [{"role": "user", "content": "x"}],
                "tools": [{"type": "function"}],
            },
            "tools[0].function",
        ),
        (
            {
                "model": "m",
                "messages": [{"role": "user", "content": "x"}],
                "stream_options": {"include_usage": 1},
            },
            "stream_options.include_usage",
        ),
    ],
)
def test_bad_requests_name_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(BadRequest) as info:
        CODEC.parse_request(body)
    assert [d.field for d in info.value.details] == [field]


def foreign_request(**overrides: Any) -> ir.Request:
    """An IR as the Anthropic codec would produce it."""
    req = ir.Request(
        model="gpt-4o",
        source_format="anthropic",
        system=[ir.TextBlock("a", cache_control={"type": "ephemeral"}), ir.TextBlock("b")],
        messages=[
            ir.Message("user", [ir.TextBlock("go")]),
            ir.Message(
                "assistant",
                [
                    ir.ThinkingBlock("hmm", signature="sig", origin="anthropic"),
                    ir.TextBlock("ok"),
                    ir.ToolUseBlock(id="toolu_1", name="ls", input={"d": "."}),
                ],
            ),
            ir.Message(
                "user",
                [
                    ir.ToolResultBlock("toolu_1", [ir.TextBlock("a.py")], is_error=True),
                    ir.TextBlock("next"),
                ],
            ),
        ],
        tools=[ir.Tool("ls", "list", {"type": "object"}, extra={"cache_control": {}})],
        tool_choice=ir.ToolChoice("required"),
        parallel_tool_calls=False,
        max_tokens=50,
        top_k=5,
        stop=["1", "2", "3", "4", "5"],
        metadata={"user_id": "someone"},
        extra={"service_tier": "auto"},
    )
    for key, value in overrides.items():
        setattr(req, key, value)
    return req


def test_render_from_anthropic_ir_drops_what_chat_cannot_carry() -> None:
    req = foreign_request()
    body = CODEC.render_request(req)
    messages = body["messages"]
    assert messages[0] == {
        "role": "system",
        "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
    }
    assistant = messages[2]
    assert "reasoning_content" not in assistant  # another provider's thinking is dropped
    assert assistant["tool_calls"][0]["id"] == "toolu_1"  # ids kept as given
    assert json.loads(assistant["tool_calls"][0]["function"]["arguments"]) == {"d": "."}
    # tool results come right after the calls, then the rest of the user turn
    assert messages[3] == {"role": "tool", "tool_call_id": "toolu_1", "content": "a.py"}
    assert messages[4] == {"role": "user", "content": "next"}
    assert body["tool_choice"] == "required"
    assert body["parallel_tool_calls"] is False
    assert body["stop"] == ["1", "2", "3", "4"]
    assert body["user"] == "someone"
    assert "service_tier" not in body and "top_k" not in body
    for name in (
        "top_k",
        "stop[4:]",
        "thinking",
        "cache_control",
        "tool_result.is_error",
        "tools.cache_control",
        "service_tier",
    ):
        assert name in req.dropped


def test_case10_reasoning_models_use_max_completion_tokens() -> None:
    req = foreign_request(model="openai/o3-mini", temperature=1.0, thinking_budget=20000)
    body = CODEC.render_request(req)
    assert body["max_completion_tokens"] == 50 and "max_tokens" not in body
    assert "temperature" not in body and "temperature" in req.dropped
    assert body["reasoning_effort"] == "high"
    plain = foreign_request(model="gpt-4o", temperature=1.0, thinking_budget=20000)
    body = CODEC.render_request(plain)
    assert body["max_tokens"] == 50 and body["temperature"] == 1.0
    assert "thinking_budget" in plain.dropped


def test_case10_named_tool_choice_and_no_tools() -> None:
    body = CODEC.render_request(foreign_request(tool_choice=ir.ToolChoice("tool", "ls")))
    assert body["tool_choice"] == {"type": "function", "function": {"name": "ls"}}
    # the API rejects tool_choice without tools
    body = CODEC.render_request(foreign_request(tools=[]))
    assert "tool_choice" not in body and "parallel_tool_calls" not in body


def test_case5_streaming_request_always_asks_for_usage() -> None:
    req = CODEC.parse_request(
        {"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}], "stream": True}
    )
    assert req.include_usage is False
    assert CODEC.render_request(req)["stream_options"] == {"include_usage": True}


# --------------------------------------------------------------------------- responses


def completion_body() -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-4o",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "héllo",
                    "reasoning_content": "thought",
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "ls", "arguments": '{"d":"."}'},
                        }
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {
            "prompt_tokens": 100,
            "completion_tokens": 20,
            "total_tokens": 120,
            "prompt_tokens_details": {"cached_tokens": 60},
            "completion_tokens_details": {"reasoning_tokens": 5},
        },
    }


def test_parse_response_maps_content_stop_and_usage() -> None:
    resp = CODEC.parse_response(completion_body())
    assert (resp.id, resp.model, resp.created) == ("chatcmpl-1", "gpt-4o", 1700000000)
    assert resp.content[0] == ir.ThinkingBlock("thought", origin="openai-chat")
    assert resp.text() == "héllo"
    assert resp.tool_calls()[0].input == {"d": "."}
    assert resp.stop_reason == "tool_use"
    assert resp.usage == ir.Usage(
        input_tokens=100, output_tokens=20, cache_read_tokens=60, reasoning_tokens=5
    )


def test_render_response_is_a_valid_sdk_chat_completion_and_round_trips() -> None:
    resp = CODEC.parse_response(completion_body())
    rendered = CODEC.render_response(resp, ir.Request(model="gpt-4o"))
    parsed = ChatCompletion.model_validate(rendered)
    assert parsed.choices[0].message.tool_calls is not None
    assert parsed.usage is not None and parsed.usage.prompt_tokens_details is not None
    assert parsed.usage.prompt_tokens_details.cached_tokens == 60
    assert CODEC.parse_response(rendered) == resp


@pytest.mark.parametrize(
    ("stop", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("content_filter", "content_filter"),
    ],
)
def test_case6_stop_reasons(stop: ir.StopReason, finish: str) -> None:
    resp = ir.Response(id="x", model="m", content=[ir.TextBlock("t")], stop_reason=stop)
    rendered = CODEC.render_response(resp, ir.Request(model="m"))
    assert ChatCompletion.model_validate(rendered).choices[0].finish_reason == finish
    back = CODEC.parse_response(rendered).stop_reason
    assert back == ("end_turn" if stop == "stop_sequence" else stop)


# --------------------------------------------------------------------------- stream parsing


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


USAGE = {
    "prompt_tokens": 10,
    "completion_tokens": 7,
    "total_tokens": 17,
    "prompt_tokens_details": {"cached_tokens": 4},
    "completion_tokens_details": {"reasoning_tokens": 2},
}

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
                    {
                        "id": "call_a",
                        "type": "function",
                        "function": {"name": "read", "arguments": '{"path":"a"}'},
                    },
                    {
                        "id": "call_b",
                        "type": "function",
                        "function": {"name": "write", "arguments": '{"path":"b"}'},
                    },
                ],
            },
            "finish_reason": "tool_calls",
        }
    ],
    "usage": USAGE,
}


def parse_all(data: bytes, pieces: list[bytes] | None = None) -> list[ir.StreamEvent]:
    parser = CODEC.stream_parser()
    events: list[ir.StreamEvent] = []
    for piece in pieces if pieces is not None else [data]:
        events.extend(parser.feed(piece))
    events.extend(parser.close())
    return events


def accumulate(events: list[ir.StreamEvent]) -> ir.Response:
    acc = ir.StreamAccumulator()
    acc.feed_all(events)
    assert acc.error is None and acc.stopped
    return acc.result()


def random_pieces(data: bytes, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    pieces, i = [], 0
    while i < len(data):
        step = rng.randint(1, 40)
        pieces.append(data[i : i + step])
        i += step
    return pieces


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


# --------------------------------------------------------------------------- stream rendering


def split_chunks(data: bytes) -> list[dict[str, Any] | str]:
    out: list[dict[str, Any] | str] = []
    for frame in data.decode().split("\n\n"):
        if frame.startswith("data: "):
            payload = frame[len("data: ") :]
            out.append(payload if payload == "[DONE]" else json.loads(payload))
    return out


def render_all(events: list[ir.StreamEvent], req: ir.Request) -> bytes:
    renderer = CODEC.stream_renderer(req)
    return b"".join(renderer.render(e) for e in events) + renderer.finish()


def sample_response() -> ir.Response:
    return ir.Response(
        id="msg_1",
        model="claude-x",
        created=1700000002,
        content=[
            ir.ThinkingBlock("deep", signature="sig", origin="anthropic"),
            ir.TextBlock("I'll look."),
            ir.ToolUseBlock(id="toolu_a", name="read", input={"p": 1}),
            ir.ToolUseBlock(id="toolu_b", name="grep", input={"q": "x"}),
        ],
        stop_reason="tool_use",
        usage=ir.Usage(input_tokens=30, output_tokens=12, cache_read_tokens=10, reasoning_tokens=3),
    )


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


# --------------------------------------------------------------------------- the real SDK


async def test_openai_sdk_reads_rendered_json_and_stream(aiohttp_server: Any) -> None:
    resp = sample_response()

    async def handler(request: web.Request) -> web.StreamResponse:
        req = CODEC.parse_request(await request.json())
        if not req.stream:
            return web.json_response(CODEC.render_response(resp, req))
        stream = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await stream.prepare(request)
        renderer = CODEC.stream_renderer(req)
        for event in ir.response_events(resp):
            await stream.write(renderer.render(event))
        await stream.write(renderer.finish())
        return stream

    app = web.Application()
    app.router.add_post("/v1/chat/completions", handler)
    server = await aiohttp_server(app)
    client = openai.AsyncOpenAI(api_key="test", base_url=str(server.make_url("/v1")))
    messages: Any = [{"role": "user", "content": "hi"}]
    completion = await client.chat.completions.create(model="m", messages=messages)
    assert completion.choices[0].finish_reason == "tool_calls"
    calls = completion.choices[0].message.tool_calls or []
    assert [c.id for c in calls] == ["toolu_a", "toolu_b"]

    stream = await client.chat.completions.create(
        model="m", messages=messages, stream=True, stream_options={"include_usage": True}
    )
    text, usage = "", None
    async for part in stream:
        if part.choices and part.choices[0].delta.content:
            text += part.choices[0].delta.content
        usage = part.usage or usage
    assert text == "I'll look."
    assert usage is not None and usage.prompt_tokens == 30

    stream = await client.chat.completions.create(model="m", messages=messages, stream=True)
    seen = [part async for part in stream]
    assert all(p.usage is None for p in seen)
    await client.close()
