"""Tests for the Anthropic Messages codec, incl. the official SDK reading rendered streams."""

from __future__ import annotations

import copy
import json
import random
import re
from collections.abc import Awaitable, Callable
from typing import Any

import anthropic
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import given, settings
from hypothesis import strategies as st

from router import ir
from router.errors import BadRequest
from router.formats import get_codec
from router.formats.anthropic.codec import CODEC
from router.formats.sse import SSEParser

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]

SAFE_ID = re.compile(r"^[a-zA-Z0-9_-]+$")


# --------------------------------------------------------------------------- helpers


def sse(event: str, data: dict[str, Any], crlf: bool = False) -> bytes:
    nl = "\r\n" if crlf else "\n"
    return f"event: {event}{nl}data: {json.dumps(data, ensure_ascii=False)}{nl}{nl}".encode()


def parse_all(raw: bytes, chunks: list[int] | None = None) -> list[ir.StreamEvent]:
    """Feed ``raw`` to a fresh parser, cut at ``chunks`` sizes (whole when None)."""
    parser = CODEC.stream_parser()
    events: list[ir.StreamEvent] = []
    pos = 0
    for size in chunks or []:
        events += parser.feed(raw[pos : pos + size])
        pos += size
    events += parser.feed(raw[pos:])
    events += parser.close()
    return events


def render_all(events: list[ir.StreamEvent], req: ir.Request | None = None) -> bytes:
    renderer = CODEC.stream_renderer(req or ir.Request(model="claude-sonnet-4-5"))
    return b"".join(renderer.render(e) for e in events) + renderer.finish()


def sse_payloads(raw: bytes) -> list[tuple[str | None, dict[str, Any]]]:
    parser = SSEParser()
    found = parser.feed(raw) + parser.close()
    return [(e.event, json.loads(e.data)) for e in found]


def accumulate(events: list[ir.StreamEvent]) -> ir.Response:
    acc = ir.StreamAccumulator()
    acc.feed_all(events)
    return acc.result()


def message_body(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "msg_01abc",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [
            {"type": "thinking", "thinking": "Let me think.", "signature": "sig=="},
            {"type": "redacted_thinking", "data": "opaque"},
            {"type": "text", "text": "Checking the weather é"},
            {"type": "tool_use", "id": "toolu_01", "name": "weather", "input": {"city": "Zürich"}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 12,
            "output_tokens": 40,
            "cache_creation_input_tokens": 100,
            "cache_read_input_tokens": 2000,
        },
    }
    body.update(over)
    return body


def stream_for(body: dict[str, Any], *, crlf: bool = False, noise: bool = False) -> bytes:
    """The SSE stream Anthropic would send for the message ``body``, built by hand."""
    start = {k: v for k, v in body.items() if k != "content"}
    start = {**start, "content": [], "stop_reason": None, "stop_sequence": None}
    start["usage"] = {**body["usage"], "output_tokens": 1}
    out = [sse("message_start", {"type": "message_start", "message": start}, crlf)]
    if noise:
        out.append(b": keep-alive\n\n")
        out.append(sse("ping", {"type": "ping"}, crlf))
    for i, block in enumerate(body["content"]):
        kind = block["type"]
        first: dict[str, Any]
        deltas: list[dict[str, Any]]
        if kind == "text":
            first = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": c} for c in _halves(block["text"])]
        elif kind == "thinking":
            first = {"type": "thinking", "thinking": "", "signature": ""}
            deltas = [{"type": "thinking_delta", "thinking": c} for c in _halves(block["thinking"])]
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
        elif kind == "tool_use":
            first = {**block, "input": {}}
            args = json.dumps(block["input"], ensure_ascii=False)
            deltas = [{"type": "input_json_delta", "partial_json": c} for c in ["", *_halves(args)]]
        else:
            first, deltas = block, []
        out.append(
            sse(
                "content_block_start",
                {"type": "content_block_start", "index": i, "content_block": first},
                crlf,
            )
        )
        for delta in deltas:
            out.append(
                sse(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": i, "delta": delta},
                    crlf,
                )
            )
        out.append(sse("content_block_stop", {"type": "content_block_stop", "index": i}, crlf))
        if noise:
            out.append(sse("ping", {"type": "ping"}, crlf))
    delta = {"stop_reason": body["stop_reason"], "stop_sequence": body["stop_sequence"]}
    usage = {"output_tokens": body["usage"]["output_tokens"]}
    out.append(
        sse("message_delta", {"type": "message_delta", "delta": delta, "usage": usage}, crlf)
    )
    out.append(sse("message_stop", {"type": "message_stop"}, crlf))
    return b"".join(out)


def _halves(text: str) -> list[str]:
    mid = len(text) // 2
    return [text[:mid], text[mid:]]


async def sdk_stream(aiohttp_server: ServerFactory, raw: bytes) -> anthropic.AsyncMessageStream:
    """Serve ``raw`` as a /v1/messages SSE response and open it with the official SDK."""

    async def handler(request: web.Request) -> web.StreamResponse:
        await request.read()
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(raw)
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_post("/v1/messages", handler)
    server = await aiohttp_server(app)
    client = anthropic.AsyncAnthropic(
        api_key="test-key", base_url=f"http://127.0.0.1:{server.port}", max_retries=0
    )
    manager = client.messages.stream(
        model="llmtap-test", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
    )
    return await manager.__aenter__()


async def sdk_final(aiohttp_server: ServerFactory, raw: bytes) -> dict[str, Any]:
    stream = await sdk_stream(aiohttp_server, raw)
    message = await stream.get_final_message()
    await stream.close()
    return message.model_dump(mode="json", exclude_none=True)


def validated(body: dict[str, Any]) -> dict[str, Any]:
    return anthropic.types.Message.model_validate(body).model_dump(mode="json", exclude_none=True)


FULL_REQUEST: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 20000,
    "system": [
        {"type": "text", "text": "You are terse."},
        {"type": "text", "text": "Cache me.", "cache_control": {"type": "ephemeral"}},
    ],
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in this image?"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"},
                },
                {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Look it up.", "signature": "c2lnbmF0dXJl"},
                {"type": "redacted_thinking", "data": "EnCrYpTeD"},
                {"type": "tool_use", "id": "toolu_01A", "name": "lookup", "input": {"q": "cat"}},
                {"type": "tool_use", "id": "toolu_01B", "name": "lookup", "input": {"q": "dog"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "a cat"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_01B",
                    "content": [
                        {"type": "text", "text": "not found"},
                        {"type": "text", "text": "retry later"},
                    ],
                    "is_error": True,
                },
                {"type": "text", "text": "Thanks", "cache_control": {"type": "ephemeral"}},
            ],
        },
    ],
    "tools": [
        {
            "name": "lookup",
            "description": "Look something up",
            "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}},
            "cache_control": {"type": "ephemeral"},
        },
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
    ],
    "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
    "stop_sequences": ["END"],
    "top_p": 0.99,
    "thinking": {"type": "enabled", "budget_tokens": 10000},
    "metadata": {"user_id": "user-42"},
    "stream": True,
    "service_tier": "auto",
    "container": "container_123",
}


# --------------------------------------------------------------------------- requests


def test_codec_is_registered() -> None:
    assert get_codec("anthropic") is CODEC
    assert CODEC.name == "anthropic"


def test_parse_request_maps_every_field() -> None:
    req = CODEC.parse_request(copy.deepcopy(FULL_REQUEST))
    assert req.source_format == "anthropic"
    assert req.model == "claude-sonnet-4-5" and req.max_tokens == 20000
    assert [b.text for b in req.system] == ["You are terse.", "Cache me."]
    assert req.system[1].cache_control == {"type": "ephemeral"}
    user, assistant, results = req.messages
    assert isinstance(user.content[1], ir.ImageBlock) and user.content[1].data == "iVBOR"
    assert (
        isinstance(user.content[2], ir.ImageBlock)
        and user.content[2].url == "https://example.com/a.png"
    )
    thinking, redacted, call_a, _ = assistant.content
    assert isinstance(thinking, ir.ThinkingBlock) and thinking.signature == "c2lnbmF0dXJl"
    assert thinking.origin == "anthropic" and not thinking.redacted
    assert (
        isinstance(redacted, ir.ThinkingBlock)
        and redacted.redacted
        and redacted.data == "EnCrYpTeD"
    )
    assert redacted.origin == "anthropic"
    assert isinstance(call_a, ir.ToolUseBlock) and call_a.input == {"q": "cat"}
    first, second, thanks = results.content
    assert isinstance(first, ir.ToolResultBlock) and first.text() == "a cat" and not first.is_error
    assert isinstance(second, ir.ToolResultBlock) and second.is_error and len(second.content) == 2
    assert isinstance(thanks, ir.TextBlock) and thanks.cache_control == {"type": "ephemeral"}
    lookup, search = req.tools
    assert lookup.parameters["properties"] == {"q": {"type": "string"}}
    assert lookup.extra == {"cache_control": {"type": "ephemeral"}}
    assert search.name == "web_search" and search.extra == {
        "type": "web_search_20250305",
        "max_uses": 3,
    }
    assert req.tool_choice == ir.ToolChoice("auto") and req.parallel_tool_calls is False
    assert req.stop == ["END"] and req.top_p == 0.99
    assert req.thinking_budget == 10000 and req.reasoning_effort == "high"
    assert req.user == "user-42" and req.stream and req.include_usage
    assert req.extra == {"service_tier": "auto", "container": "container_123"}


def test_request_round_trip_keeps_unknown_fields() -> None:
    body = copy.deepcopy(FULL_REQUEST)
    again = CODEC.render_request(CODEC.parse_request(copy.deepcopy(body)))
    # A tool_result made of several text blocks is kept as blocks; everything else verbatim.
    assert again == body


def test_string_content_and_system_round_trip() -> None:
    body = {
        "model": "claude-3-5-haiku-latest",
        "max_tokens": 100,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "Hello"}],
        "temperature": 0.2,
        "top_k": 5,
        "thinking": {"type": "disabled"},
    }
    req = CODEC.parse_request(copy.deepcopy(body))
    assert req.thinking_budget is None and req.extra == {"thinking": {"type": "disabled"}}
    assert CODEC.render_request(req) == body


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"model": None}, "model"),
        ({"model": 3}, "model"),
        ({"messages": "hi"}, "messages"),
        ({"max_tokens": None}, "max_tokens"),
        ({"max_tokens": "10"}, "max_tokens"),
        ({"max_tokens": True}, "max_tokens"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"messages": [{"role": "system", "content": "x"}]}, "messages.0.role"),
        ({"messages": [{"role": "user"}]}, "messages.0.content"),
        ({"messages": [{"role": "user", "content": [{"text": "x"}]}]}, "messages.0.content.0.type"),
        (
            {"messages": [{"role": "user", "content": [{"type": "text", "text": 1}]}]},
            "messages.0.content.0.text",
        ),
        (
            {
                "messages": [
                    {
                        "role": "assistant",
                        "content": [{"type": "tool_use", "id": "a", "name": "b", "input": "x"}],
                    }
                ]
            },
            "messages.0.content.0.input",
        ),
        (
            {
                "messages": [
                    {"role": "assistant", "content": [{"type": "thinking", "thinking": "t"}]}
                ]
            },
            "messages.0.content.0.signature",
        ),
        ({"temperature": "hot"}, "temperature"),
        ({"top_k": 1.5}, "top_k"),
        ({"stream": "yes"}, "stream"),
        ({"stop_sequences": ["a", 1]}, "stop_sequences"),
        ({"system": [{"type": "image"}]}, "system.0"),
        ({"tools": [{"name": "x"}]}, "tools.0.input_schema"),
        ({"tool_choice": {"type": "tool"}}, "tool_choice.name"),
        ({"tool_choice": {"type": "sometimes"}}, "tool_choice.type"),
        ({"thinking": {"type": "enabled"}}, "thinking.budget_tokens"),
        ({"thinking": {"type": "enabled", "budget_tokens": 100}}, "thinking.budget_tokens"),
        ({"metadata": "x"}, "metadata"),
    ],
)
def test_parse_request_rejects_bad_fields(patch: dict[str, Any], field: str) -> None:
    body: dict[str, Any] = {
        "model": "m",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}],
    }
    body.update(patch)
    if body["model"] is None:
        del body["model"]
    with pytest.raises(BadRequest) as exc:
        CODEC.parse_request(body)
    assert [d.field for d in exc.value.details] == [field]


def test_unrepresentable_blocks_are_listed_not_rejected() -> None:
    body = {
        "model": "m",
        "max_tokens": 10,
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "document",
                        "source": {"type": "text", "media_type": "text/plain", "data": "x"},
                    },
                    {"type": "text", "text": "summarise"},
                ],
            }
        ],
    }
    req = CODEC.parse_request(body)
    assert req.messages[0].text() == "summarise" and len(req.messages[0].content) == 1
    assert req.dropped == ["messages.0.content.0 (document)"]


def foreign_request(**over: Any) -> ir.Request:
    """A request as another format (OpenAI chat) would have parsed it."""
    req = ir.Request(
        model="claude-sonnet-4-5",
        source_format="openai-chat",
        system=[ir.TextBlock("sys one")],
        messages=[
            ir.Message("system", [ir.TextBlock("sys two")]),
            ir.Message("user", [ir.TextBlock("weather in Paris and Rome?")]),
            ir.Message(
                "assistant",
                [
                    ir.ThinkingBlock(thinking="openai reasoning", origin="openai-chat"),
                    ir.ToolUseBlock(id="call_abc.123:x", name="weather", input={"city": "Paris"}),
                    ir.ToolUseBlock(id="call_def", name="weather", input={"city": "Rome"}),
                ],
            ),
            ir.Message(
                "tool",
                [ir.ToolResultBlock(tool_use_id="call_abc.123:x", content=[ir.TextBlock("sunny")])],
            ),
            ir.Message(
                "tool", [ir.ToolResultBlock(tool_use_id="call_def", content=[ir.TextBlock("rain")])]
            ),
            ir.Message("user", [ir.TextBlock("and tomorrow?")]),
        ],
        tools=[
            ir.Tool(
                "weather",
                "Get weather",
                {"properties": {"city": {"type": "string"}}},
                {"strict": True},
            )
        ],
    )
    for key, value in over.items():
        setattr(req, key, value)
    return req


def test_case1_tool_ids_sanitized_stably() -> None:
    first = CODEC.render_request(foreign_request())
    second = CODEC.render_request(foreign_request())
    assert first == second
    assistant, results = first["messages"][1], first["messages"][2]
    uses = [b["id"] for b in assistant["content"] if b["type"] == "tool_use"]
    answers = [b["tool_use_id"] for b in results["content"] if b["type"] == "tool_result"]
    assert uses == answers
    assert all(SAFE_ID.match(i) for i in uses)
    assert uses[1] == "call_def"  # already valid ids stay as they are
    assert uses[0] != "call_abc.123:x" and uses[0] == ir.safe_tool_id("call_abc.123:x")
    # The same mapping in responses and streams, so the client sends back what we expect.
    resp = ir.Response(content=[ir.ToolUseBlock(id="call_abc.123:x", name="weather")])
    assert CODEC.render_response(resp, foreign_request())["content"][0]["id"] == uses[0]
    streamed = sse_payloads(render_all(ir.response_events(resp)))
    starts = [p["content_block"] for e, p in streamed if e == "content_block_start"]
    assert starts[0]["id"] == uses[0]


def test_foreign_request_merges_roles_and_lists_dropped_fields() -> None:
    req = foreign_request(
        seed=7, response_format={"type": "json_object"}, extra={"n": 1, "logprobs": True}
    )
    body = CODEC.render_request(req)
    assert body["system"] == [
        {"type": "text", "text": "sys one"},
        {"type": "text", "text": "sys two"},
    ]
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    results = body["messages"][2]["content"]
    assert [b["type"] for b in results] == ["tool_result", "tool_result", "text"]
    assert body["tools"] == [
        {
            "name": "weather",
            "description": "Get weather",
            "input_schema": {"properties": {"city": {"type": "string"}}, "type": "object"},
        }
    ]
    assert body["max_tokens"] == ir.claude_output_limits("claude-sonnet-4-5")[0]
    assert set(req.dropped) == {"n", "logprobs", "seed", "response_format", "tools.weather.strict"}


def test_case4_thinking_signature_round_trip_and_foreign_thinking_dropped() -> None:
    resp = CODEC.parse_response(message_body())
    thinking = resp.content[0]
    assert (
        isinstance(thinking, ir.ThinkingBlock)
        and thinking.signature == "sig=="
        and thinking.origin == "anthropic"
    )
    # The assistant turn goes back to Anthropic with its signature and redacted data intact...
    req = foreign_request()
    req.messages.insert(2, ir.Message("assistant", resp.content))
    req.messages.insert(3, ir.Message("user", [ir.TextBlock("go on")]))
    body = CODEC.render_request(req)
    sent = body["messages"][1]["content"]
    assert sent[0] == {"type": "thinking", "thinking": "Let me think.", "signature": "sig=="}
    assert sent[1] == {"type": "redacted_thinking", "data": "opaque"}
    # ...while the OpenAI-produced reasoning never reaches Anthropic.
    everything = json.dumps(body)
    assert "openai reasoning" not in everything
    # An Anthropic thinking block that lost its signature would be rejected: dropped too.
    unsigned = ir.Request(
        model="claude-sonnet-4-5",
        messages=[
            ir.Message(
                "assistant", [ir.ThinkingBlock("half", origin="anthropic"), ir.TextBlock("ok")]
            )
        ],
    )
    assert CODEC.render_request(unsigned)["messages"] == [{"role": "assistant", "content": "ok"}]
    # Streams: the signature delta survives parse -> render and reaches the SDK.
    events = parse_all(stream_for(message_body()))
    again = parse_all(render_all(events))
    assert accumulate(again).content[0] == thinking


def test_case10_max_tokens_default_tool_choice_mapping() -> None:
    assert ir.claude_output_limits("claude-opus-4-20250514") == (32000, 32000)
    assert ir.claude_output_limits("claude-opus-4-1-20250805") == (32000, 32000)
    assert ir.claude_output_limits("claude-opus-4-5") == (32000, 64000)
    assert ir.claude_output_limits("anthropic/claude-sonnet-4.5") == (32000, 64000)
    assert ir.claude_output_limits("claude-3-7-sonnet-latest") == (32000, 64000)
    assert ir.claude_output_limits("claude-3-5-sonnet-20241022") == (8192, 8192)
    assert ir.claude_output_limits("claude-3-haiku-20240307") == (4096, 4096)
    assert ir.claude_output_limits("some-model") == (4096, None)

    cases = [
        (ir.ToolChoice("required"), None, {"type": "any"}),
        (ir.ToolChoice("tool", "weather"), None, {"type": "tool", "name": "weather"}),
        (ir.ToolChoice("none"), None, {"type": "none"}),
        (ir.ToolChoice("auto"), False, {"type": "auto", "disable_parallel_tool_use": True}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        (ir.ToolChoice("required"), False, {"type": "any", "disable_parallel_tool_use": True}),
    ]
    for choice, parallel, expected in cases:
        body = CODEC.render_request(
            foreign_request(tool_choice=choice, parallel_tool_calls=parallel)
        )
        assert body["tool_choice"] == expected
    # tool_choice without tools is rejected by Anthropic: omitted.
    bare = foreign_request(tools=[], tool_choice=ir.ToolChoice("required"))
    assert "tool_choice" not in CODEC.render_request(bare)
    explicit = CODEC.render_request(foreign_request(max_tokens=123, stop=["a", "b", "c", "d", "e"]))
    assert explicit["max_tokens"] == 123 and explicit["stop_sequences"] == ["a", "b", "c", "d", "e"]


@pytest.mark.parametrize(
    ("effort", "max_tokens", "budget", "expected_max"),
    [
        ("low", None, 2048, 32000),
        ("medium", 1000, 8192, 9192),  # the asked-for answer room comes on top of the thinking
        ("high", 50000, 16384, 50000),
        ("xhigh", None, 32000, 64000),
    ],
)
def test_reasoning_effort_becomes_thinking_budget(
    effort: ir.Effort, max_tokens: int | None, budget: int, expected_max: int
) -> None:
    req = ir.Request(
        model="claude-sonnet-4-5",
        messages=[ir.Message("user", [ir.TextBlock("hi")])],
        reasoning_effort=effort,
        max_tokens=max_tokens,
        temperature=0.5,
        source_format="openai-chat",
    )
    body = CODEC.render_request(req)
    assert body["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert body["max_tokens"] == expected_max and body["max_tokens"] > budget
    assert "temperature" not in body and req.dropped == ["temperature"]


def test_thinking_respects_model_output_cap_and_api_rules() -> None:
    capped = ir.Request(
        model="claude-opus-4-1", reasoning_effort="xhigh", source_format="openai-chat"
    )
    body = CODEC.render_request(capped)
    assert body["max_tokens"] == 32000 and body["thinking"]["budget_tokens"] < 32000
    none = CODEC.render_request(ir.Request(model="claude-opus-4-1", reasoning_effort="none"))
    assert "thinking" not in none
    # Forced tool use and an unsigned tool loop both make Anthropic reject thinking.
    forced = foreign_request(reasoning_effort="high", tool_choice=ir.ToolChoice("required"))
    assert "thinking" not in CODEC.render_request(forced) and "reasoning_effort" in forced.dropped
    loop = foreign_request(reasoning_effort="high")
    loop.messages.pop()  # ends on the tool results of an assistant turn without thinking
    assert "thinking" not in CODEC.render_request(loop) and "reasoning_effort" in loop.dropped


def test_foreign_user_becomes_metadata_and_data_url_image_becomes_base64() -> None:
    req = ir.Request(
        model="m",
        user="u-1",
        metadata={"store": "x"},
        messages=[
            ir.Message("user", [ir.ImageBlock(url="data:image/jpeg;base64,AAAA"), ir.TextBlock("")])
        ],
        source_format="openai-chat",
    )
    body = CODEC.render_request(req)
    assert body["metadata"] == {"user_id": "u-1"} and req.dropped == ["metadata"]
    assert body["messages"][0]["content"] == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "AAAA"}}
    ]


# --------------------------------------------------------------------------- responses


def test_response_round_trip_validates_with_sdk() -> None:
    body = message_body(container={"id": "c1", "expires_at": "2030-01-01T00:00:00Z"})
    resp = CODEC.parse_response(copy.deepcopy(body))
    assert resp.id == "msg_01abc" and resp.stop_reason == "tool_use"
    assert resp.tool_calls()[0].input == {"city": "Zürich"}
    rendered = CODEC.render_response(resp, ir.Request(model="x"))
    assert rendered == body
    assert validated(rendered)["content"][3]["input"] == {"city": "Zürich"}


def test_render_response_from_foreign_ir_validates_with_sdk() -> None:
    resp = ir.Response(
        id="chatcmpl-1",
        content=[
            ir.ThinkingBlock(thinking="reasoned elsewhere", origin="openai-chat"),
            ir.TextBlock("hello"),
            ir.ToolUseBlock(id="call.1", name="f", input={}, raw_arguments="{broken"),
        ],
        stop_reason="error",
    )
    body = validated(CODEC.render_response(resp, ir.Request(model="gpt-x")))
    assert body["model"] == "gpt-x" and body["stop_reason"] == "end_turn"
    assert body["content"][0] == {
        "type": "thinking",
        "thinking": "reasoned elsewhere",
        "signature": "",
    }
    assert body["content"][2]["input"] == {} and SAFE_ID.match(body["content"][2]["id"])
    assert body["usage"]["input_tokens"] == 0


def test_case5_usage_conversion_cache_tokens() -> None:
    resp = CODEC.parse_response(message_body())
    assert resp.usage == ir.Usage(
        input_tokens=2112, output_tokens=40, cache_read_tokens=2000, cache_write_tokens=100
    )
    assert CODEC.render_response(resp, ir.Request(model="m"))["usage"] == message_body()["usage"]

    # Stream: message_start carries input figures; a newer-API message_delta refines them.
    raw = b"".join(
        [
            sse("message_start", {"type": "message_start", "message": {"id": "m", "model": "c", "usage": {
                "input_tokens": 10, "cache_read_input_tokens": 500, "cache_creation_input_tokens": 0, "output_tokens": 1}}}),
            sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {
                "output_tokens": 7, "input_tokens": 12, "cache_creation_input_tokens": 30,
                "output_tokens_details": {"thinking_tokens": 3}}}),
            sse("message_stop", {"type": "message_stop"}),
        ]
    )  # fmt: skip
    events = parse_all(raw)
    assert isinstance(events[0], ir.MessageStart) and events[0].usage is not None
    assert events[0].usage.input_tokens == 510
    final = accumulate(events).usage
    assert final == ir.Usage(
        input_tokens=542,
        output_tokens=7,
        cache_read_tokens=500,
        cache_write_tokens=30,
        reasoning_tokens=3,
    )

    # Rendering: message_start gets what is known so far, message_delta the final figures.
    start_known = [
        ir.MessageStart(id="x", usage=ir.Usage(input_tokens=1500, cache_read_tokens=1000))
    ]
    rest: list[ir.StreamEvent] = [
        ir.MessageDelta(
            "end_turn", usage=ir.Usage(input_tokens=1500, output_tokens=9, cache_read_tokens=1000)
        ),
        ir.MessageStop(),
    ]
    payloads = dict(sse_payloads(render_all(start_known + rest)))
    assert payloads["message_start"]["message"]["usage"] == {
        "input_tokens": 500, "output_tokens": 1, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 1000,
    }  # fmt: skip
    assert payloads["message_delta"]["usage"] == {
        "input_tokens": 500, "output_tokens": 9, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 1000,
    }  # fmt: skip
    # An OpenAI upstream only knows usage at the end: message_start says 0 input.
    late = dict(sse_payloads(render_all([ir.MessageStart(id="x"), *rest])))
    assert late["message_start"]["message"]["usage"]["input_tokens"] == 0
    assert late["message_delta"]["usage"]["input_tokens"] == 500


@pytest.mark.parametrize(
    ("wire", "internal", "back"),
    [
        ("end_turn", "end_turn", "end_turn"),
        ("max_tokens", "max_tokens", "max_tokens"),
        ("tool_use", "tool_use", "tool_use"),
        ("stop_sequence", "stop_sequence", "stop_sequence"),
        ("refusal", "content_filter", "refusal"),
        ("pause_turn", "pause_turn", "pause_turn"),
        ("model_context_window_exceeded", "max_tokens", "max_tokens"),
    ],
)
def test_case6_stop_reasons(wire: str, internal: str, back: str) -> None:
    resp = CODEC.parse_response(message_body(stop_reason=wire))
    assert resp.stop_reason == internal
    assert validated(CODEC.render_response(resp, ir.Request(model="m")))["stop_reason"] == back
    events = parse_all(stream_for(message_body(stop_reason=wire)))
    assert accumulate(events).stop_reason == internal
    payloads = dict(sse_payloads(render_all(events)))
    assert payloads["message_delta"]["delta"]["stop_reason"] == back


# --------------------------------------------------------------------------- stream parsing


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


# --------------------------------------------------------------------------- stream rendering


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
            b"event: message_start\ndata: not json\n\n",
            b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":"x"}\n\n',
            b'event: error\ndata: {"type":"error","error":"boom"}\n\n',
        ]
    )
    events = parse_all(raw)
    assert events == [ir.ErrorEvent("upstream stream error", "api_error")]
