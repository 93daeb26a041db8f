"""SSE merge for all five formats through the real codecs, conversation turns, llm summary."""

from __future__ import annotations

import json
from typing import Any

import pytest

from router import ir
from router.traffic.detect import context_key
from router.traffic.merge import (
    llm_summary,
    merge_stream,
    model_from_path,
    parse_response,
)
from tests.router.formats.openai_chat.samples import usage as chat_usage
from tests.router.formats.responses.samples import usage as responses_usage


def sse(*events: tuple[str | None, Any]) -> bytes:
    out = []
    for name, data in events:
        payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
        out.append((f"event: {name}\n" if name else "") + f"data: {payload}\n\n")
    return "".join(out).encode()


# --------------------------------------------------------------------------- captures

OPENAI_CHUNK = {
    "id": "chatcmpl-9x",
    "object": "chat.completion.chunk",
    "created": 1746100000,
    "model": "gpt-4o-mini-2024-07-18",
}


def openai_chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        **OPENAI_CHUNK,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


OPENAI_STREAM = sse(
    (None, openai_chunk({"role": "assistant", "content": "", "refusal": None})),
    (None, openai_chunk({"content": "Let me "})),
    (None, openai_chunk({"content": "check."})),
    (
        None,
        openai_chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_abc",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    }
                ]
            }
        ),
    ),
    (None, openai_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]})),
    (None, openai_chunk({"tool_calls": [{"index": 0, "function": {"arguments": ' "Paris"}'}}]})),
    (None, openai_chunk({}, "tool_calls")),
    (
        None,
        {
            **OPENAI_CHUNK,
            "choices": [],
            "usage": chat_usage(42, 17, cached=8, reasoning=0),
        },
    ),
    (None, "[DONE]"),
)


def block_delta(index: int, delta: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """An Anthropic ``content_block_delta`` event."""
    return ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})


def responses_event(kind: str, seq: int, **fields: Any) -> tuple[str, dict[str, Any]]:
    """A Responses API event: its SSE name is its type."""
    return (kind, {"type": kind, "sequence_number": seq, **fields})


ANTHROPIC_STREAM = sse(
    (
        "message_start",
        {
            "type": "message_start",
            "message": {
                "id": "msg_01XYZ",
                "type": "message",
                "role": "assistant",
                "model": "claude-sonnet-4-5-20250929",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {
                    "input_tokens": 25,
                    "cache_creation_input_tokens": 10,
                    "cache_read_input_tokens": 100,
                    "output_tokens": 1,
                },
            },
        },
    ),
    (
        "content_block_start",
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "thinking", "thinking": "", "signature": ""},
        },
    ),
    block_delta(0, {"type": "thinking_delta", "thinking": "The user wants "}),
    block_delta(0, {"type": "thinking_delta", "thinking": "the weather."}),
    block_delta(0, {"type": "signature_delta", "signature": "EqQBCgIYAhIM"}),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    ("ping", {"type": "ping"}),
    (
        "content_block_start",
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
    ),
    block_delta(1, {"type": "text_delta", "text": "Checking "}),
    block_delta(1, {"type": "text_delta", "text": "now."}),
    ("content_block_stop", {"type": "content_block_stop", "index": 1}),
    (
        "content_block_start",
        {
            "type": "content_block_start",
            "index": 2,
            "content_block": {
                "type": "tool_use",
                "id": "toolu_01A",
                "name": "get_weather",
                "input": {},
            },
        },
    ),
    block_delta(2, {"type": "input_json_delta", "partial_json": ""}),
    block_delta(2, {"type": "input_json_delta", "partial_json": '{"city": "Pa'}),
    block_delta(2, {"type": "input_json_delta", "partial_json": 'ris", "days": 3}'}),
    ("content_block_stop", {"type": "content_block_stop", "index": 2}),
    (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {"output_tokens": 64},
        },
    ),
    ("message_stop", {"type": "message_stop"}),
)


RESPONSES_BASE = {
    "id": "resp_0a1",
    "object": "response",
    "created_at": 1746100000,
    "model": "gpt-5-codex",
    "output": [],
}
MSG_ITEM = {
    "id": "msg_0a2",
    "type": "message",
    "status": "completed",
    "role": "assistant",
    "content": [{"type": "output_text", "text": "Reading the file.", "annotations": []}],
}
FC_ITEM = {
    "id": "fc_0a3",
    "type": "function_call",
    "status": "completed",
    "call_id": "call_r1",
    "name": "shell",
    "arguments": '{"cmd":["cat","a.py"]}',
}

RESPONSES_STREAM = sse(
    responses_event(
        "response.created", 0, response={**RESPONSES_BASE, "status": "in_progress", "usage": None}
    ),
    responses_event(
        "response.in_progress",
        1,
        response={**RESPONSES_BASE, "status": "in_progress", "usage": None},
    ),
    responses_event(
        "response.output_item.added",
        2,
        output_index=0,
        item={**MSG_ITEM, "status": "in_progress", "content": []},
    ),
    responses_event(
        "response.content_part.added",
        3,
        item_id="msg_0a2",
        output_index=0,
        content_index=0,
        part={"type": "output_text", "text": "", "annotations": []},
    ),
    responses_event(
        "response.output_text.delta",
        4,
        item_id="msg_0a2",
        output_index=0,
        content_index=0,
        delta="Reading ",
    ),
    responses_event(
        "response.output_text.delta",
        5,
        item_id="msg_0a2",
        output_index=0,
        content_index=0,
        delta="the file.",
    ),
    responses_event(
        "response.output_text.done",
        6,
        item_id="msg_0a2",
        output_index=0,
        content_index=0,
        text="Reading the file.",
    ),
    responses_event(
        "response.content_part.done",
        7,
        item_id="msg_0a2",
        output_index=0,
        content_index=0,
        part=MSG_ITEM["content"][0],
    ),
    responses_event("response.output_item.done", 8, output_index=0, item=MSG_ITEM),
    responses_event(
        "response.output_item.added",
        9,
        output_index=1,
        item={**FC_ITEM, "status": "in_progress", "arguments": ""},
    ),
    responses_event(
        "response.function_call_arguments.delta",
        10,
        item_id="fc_0a3",
        output_index=1,
        delta='{"cmd":',
    ),
    responses_event(
        "response.function_call_arguments.delta",
        11,
        item_id="fc_0a3",
        output_index=1,
        delta='["cat","a.py"]}',
    ),
    responses_event(
        "response.function_call_arguments.done",
        12,
        item_id="fc_0a3",
        output_index=1,
        arguments=FC_ITEM["arguments"],
    ),
    responses_event("response.output_item.done", 13, output_index=1, item=FC_ITEM),
    responses_event(
        "response.completed",
        14,
        response={
            **RESPONSES_BASE,
            "status": "completed",
            "output": [MSG_ITEM, FC_ITEM],
            "usage": responses_usage(300, 40, cached=200, reasoning=12),
        },
    ),
)


def gemini_chunk(
    parts: list[dict[str, Any]], finish: str | None = None, usage: dict[str, int] | None = None
) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    chunk: dict[str, Any] = {
        "candidates": [candidate],
        "modelVersion": "gemini-2.5-pro",
        "responseId": "gRsp-1",
    }
    chunk["usageMetadata"] = usage or {"promptTokenCount": 31, "totalTokenCount": 31}
    return chunk


GEMINI_USAGE = {
    "promptTokenCount": 31,
    "candidatesTokenCount": 9,
    "thoughtsTokenCount": 5,
    "cachedContentTokenCount": 11,
    "totalTokenCount": 45,
}
GEMINI_CHUNKS = [
    gemini_chunk(
        [
            {
                "text": "Weather ",
            }
        ]
    ),
    gemini_chunk([{"text": "lookup."}]),
    gemini_chunk(
        [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}], "STOP", GEMINI_USAGE
    ),
]
GEMINI_STREAM = sse(*[(None, c) for c in GEMINI_CHUNKS])
CLOUDCODE_STREAM = sse(*[(None, {"response": c, "traceId": "trace-7"}) for c in GEMINI_CHUNKS])


# --------------------------------------------------------------------------- merge


def test_merge_openai_chat() -> None:
    resp = merge_stream("openai-chat", OPENAI_STREAM)
    assert resp is not None
    assert resp.model == "gpt-4o-mini-2024-07-18"
    assert resp.text() == "Let me check."
    [call] = resp.tool_calls()
    assert (call.id, call.name, call.input) == ("call_abc", "get_weather", {"city": "Paris"})
    assert resp.stop_reason == "tool_use"
    assert resp.usage is not None
    assert (resp.usage.input_tokens, resp.usage.output_tokens, resp.usage.cache_read_tokens) == (
        42,
        17,
        8,
    )


def test_merge_anthropic_with_thinking_and_joined_tool_input() -> None:
    resp = merge_stream("anthropic", ANTHROPIC_STREAM)
    assert resp is not None
    assert resp.id == "msg_01XYZ"
    thinking, text, tool = resp.content
    assert isinstance(thinking, ir.ThinkingBlock)
    assert thinking.thinking == "The user wants the weather."
    assert thinking.signature == "EqQBCgIYAhIM"
    assert isinstance(text, ir.TextBlock) and text.text == "Checking now."
    assert isinstance(tool, ir.ToolUseBlock)
    assert (tool.id, tool.name, tool.input) == (
        "toolu_01A",
        "get_weather",
        {"city": "Paris", "days": 3},
    )
    assert resp.stop_reason == "tool_use"
    assert resp.usage is not None
    # OpenAI semantics: the prompt includes cache reads and writes.
    assert resp.usage.input_tokens == 25 + 10 + 100
    assert (resp.usage.cache_read_tokens, resp.usage.cache_write_tokens) == (100, 10)
    assert resp.usage.output_tokens == 64


def test_merge_responses() -> None:
    resp = merge_stream("responses", RESPONSES_STREAM)
    assert resp is not None
    assert resp.model == "gpt-5-codex"
    assert resp.text() == "Reading the file."
    [call] = resp.tool_calls()
    assert (call.id, call.name, call.input) == ("call_r1", "shell", {"cmd": ["cat", "a.py"]})
    assert resp.usage is not None
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (300, 40)
    assert (resp.usage.cache_read_tokens, resp.usage.reasoning_tokens) == (200, 12)


@pytest.mark.parametrize(
    ("kind", "raw"), [("gemini", GEMINI_STREAM), ("cloudcode", CLOUDCODE_STREAM)]
)
def test_merge_gemini_and_cloudcode(kind: str, raw: bytes) -> None:
    resp = merge_stream(kind, raw)
    assert resp is not None
    assert resp.model == "gemini-2.5-pro"
    assert resp.text() == "Weather lookup."
    [call] = resp.tool_calls()
    assert (call.name, call.input) == ("get_weather", {"city": "Paris"})
    assert resp.usage is not None
    assert resp.usage.input_tokens == 31
    assert resp.usage.output_tokens == 9 + 5  # reasoning included, as in ir.Usage
    assert resp.usage.cache_read_tokens == 11


def test_merge_of_a_cut_stream_keeps_what_arrived() -> None:
    whole = merge_stream("anthropic", ANTHROPIC_STREAM)
    # The recorder hands the whole body at once; a stream cut mid-way still merges what came.
    cut = merge_stream("anthropic", ANTHROPIC_STREAM[: len(ANTHROPIC_STREAM) // 2])
    assert whole is not None and cut is not None
    assert isinstance(cut.content[0], ir.ThinkingBlock)
    assert len(cut.content) < len(whole.content) or cut.stop_reason is None


def _finish_reason(kind: str, rendered: dict[str, Any]) -> Any:
    match kind:
        case "openai-chat":
            return rendered["choices"][0]["finish_reason"]
        case "anthropic":
            return rendered["stop_reason"]
        case "responses":
            return rendered["status"]
        case "cloudcode":
            return rendered["response"]["candidates"][0].get("finishReason")
        case _:
            return rendered["candidates"][0].get("finishReason")


CUT_CASES = [
    ("openai-chat", OPENAI_STREAM, "stop"),
    ("anthropic", ANTHROPIC_STREAM, "end_turn"),
    ("responses", RESPONSES_STREAM, "completed"),
    ("gemini", GEMINI_STREAM, "STOP"),
    ("cloudcode", CLOUDCODE_STREAM, "STOP"),
]


@pytest.mark.parametrize(("kind", "raw", "finish"), CUT_CASES, ids=[c[0] for c in CUT_CASES])
def test_a_cut_stream_is_incomplete_with_no_invented_finish_reason(
    kind: str, raw: bytes, finish: str
) -> None:
    """A stream cut mid-way was shown as a normal reply with ``stop_reason: end_turn``."""
    whole = merge_stream(kind, raw)
    assert whole is not None and not whole.incomplete
    whole_info = llm_summary(kind, {}, whole, streamed=True)
    assert whole_info.response is not None and not whole_info.incomplete
    assert _finish_reason(kind, whole_info.response) in (finish, "tool_calls", "tool_use")

    cut = merge_stream(kind, raw[: len(raw) // 2])
    assert cut is not None and cut.incomplete and cut.stop_reason is None
    info = llm_summary(kind, {}, cut, streamed=True)
    assert info.incomplete and info.response is not None
    assert _finish_reason(kind, info.response) in (None, "incomplete")


def test_merge_without_a_codec_or_content() -> None:
    assert merge_stream(None, OPENAI_STREAM) is None
    assert merge_stream("zed", OPENAI_STREAM) is None
    assert merge_stream("openai-chat", b"") is None
    assert merge_stream("openai-chat", b"<html>not a stream</html>") is None


# --------------------------------------------------------------------------- conversation

ANTHROPIC_REQUEST = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 1024,
    "system": [{"type": "text", "text": "You are Claude Code."}],
    "messages": [
        {"role": "user", "content": "What is the weather in Paris?"},
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "toolu_0",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                }
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_0", "content": "sunny"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
                },
            ],
        },
    ],
    "stream": True,
}


def test_conversation_turns_from_the_codec() -> None:
    merged = merge_stream("anthropic", ANTHROPIC_STREAM)
    convo = llm_summary("anthropic", ANTHROPIC_REQUEST, merged).conversation
    assert convo is not None
    assert convo["contextKey"] == context_key("anthropic", ANTHROPIC_REQUEST)
    roles = [t["role"] for t in convo["request"]]
    assert roles == ["system", "user", "assistant", "user"]
    assert convo["request"][0]["blocks"] == [{"type": "text", "text": "You are Claude Code."}]
    assert convo["request"][2]["blocks"][0] == {
        "type": "tool_use",
        "id": "toolu_0",
        "name": "get_weather",
        "input": {"city": "Paris"},
    }
    result, image = convo["request"][3]["blocks"]
    assert result["type"] == "tool_result" and result["toolUseId"] == "toolu_0"
    assert result["content"] == [{"type": "text", "text": "sunny"}]
    assert image["type"] == "image" and image["mediaType"] == "image/png"
    assert "data" not in image  # the conversation never carries base64 payloads
    [answer] = convo["response"]
    assert answer["role"] == "assistant"
    assert [b["type"] for b in answer["blocks"]] == ["thinking", "text", "tool_use"]
    assert answer["blocks"][2]["input"] == {"city": "Paris", "days": 3}


def test_conversation_of_an_unparseable_body_is_empty() -> None:
    convo = llm_summary("anthropic", {"messages": "nope"}, None).conversation
    assert convo == {"request": [], "response": [], "contextKey": None}
    none = llm_summary(None, ANTHROPIC_REQUEST, None).conversation
    assert none is not None and none["request"] == []


# --------------------------------------------------------------------------- llm summary


def test_llm_summary_streamed_with_cost_and_masking() -> None:
    secret = "sk-ant-api03-" + "Q" * 40
    request = {
        **ANTHROPIC_REQUEST,
        "messages": [{"role": "user", "content": f"my key is {secret}"}],
    }
    # The secret arrives split across two deltas, so only the merged text holds it whole.
    half = len(secret) // 2
    stream = ANTHROPIC_STREAM.replace(
        b'"Checking "', json.dumps(f"key {secret[:half]}").encode()
    ).replace(b'"now."', json.dumps(secret[half:]).encode())
    priced: list[tuple[str, ir.Usage]] = []

    def cost_fn(model: str, usage: ir.Usage) -> float:
        priced.append((model, usage))
        return usage.input_tokens * 1e-6 + usage.output_tokens * 5e-6

    merged = merge_stream("anthropic", stream)
    info = llm_summary(
        "anthropic", request, merged, provider="anthropic", streamed=True, cost_fn=cost_fn
    )
    assert info.model == "claude-sonnet-4-5-20250929"
    assert info.streamed and info.provider == "anthropic" and info.format == "anthropic"
    assert (info.tokens_in, info.tokens_out, info.cache_read_tokens, info.cache_write_tokens) == (
        135,
        64,
        100,
        10,
    )
    assert info.cost_usd == pytest.approx(135e-6 + 64 * 5e-6)
    assert priced[0][0] == "claude-sonnet-4-5-20250929"
    assert not info.usage_estimated
    assert info.response is not None and info.response["type"] == "message"
    assert info.response["content"][2]["input"] == {"city": "Paris", "days": 3}
    wire = info.model_dump_json(by_alias=True)
    assert secret not in wire and secret[6:-2] not in wire
    assert '"tokensIn":135' in wire and '"apiKind":"anthropic"' in wire


def test_llm_summary_non_streamed_gemini_model_from_path_and_estimate() -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "Hello there, how are you?"}]}]}
    response = parse_response(
        "gemini",
        {
            "candidates": [
                {"content": {"role": "model", "parts": [{"text": "Fine."}]}, "finishReason": "STOP"}
            ]
        },
    )
    assert response is not None
    path = "/v1beta/models/gemini-2.5-flash:generateContent?key=xyz"
    assert model_from_path(path) == "gemini-2.5-flash"
    info = llm_summary("gemini", body, response, provider="gemini", path=path)
    assert info.model == "gemini-2.5-flash"
    assert info.usage_estimated and info.tokens_in > 0 and info.tokens_out > 0
    assert info.cost_usd is None  # no pricing function given
    assert info.conversation is not None
    assert [t["role"] for t in info.conversation["request"]] == ["user"]


def test_llm_summary_without_a_response() -> None:
    info = llm_summary(
        "openai-chat", {"model": "gpt-4o", "messages": []}, None, cost_fn=lambda m, u: 1.0
    )
    assert info.model == "gpt-4o"
    assert (info.tokens_in, info.tokens_out, info.cost_usd, info.response) == (0, 0, None, None)
