"""Recorded-stream samples for the merge tests: one stream per format, built from the
wire events each provider sends."""

from __future__ import annotations

import json
from typing import Any

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
