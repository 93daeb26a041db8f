"""Shared anthropic wire samples and helpers for the codec tests."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

import anthropic
from aiohttp import web
from aiohttp.test_utils import TestServer

from router import ir
from router.formats.anthropic.codec import CODEC
from router.formats.sse import SSEParser
from tests.router.formats.shared import cut, parse_pieces, render_bytes

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]

SAFE_ID = re.compile(r"^[a-zA-Z0-9_-]+$")


def sse(event: str, data: dict[str, Any], crlf: bool = False) -> bytes:
    nl = "\r\n" if crlf else "\n"
    return f"event: {event}{nl}data: {json.dumps(data, ensure_ascii=False)}{nl}{nl}".encode()


def parse_all(raw: bytes, chunks: list[int] | None = None) -> list[ir.StreamEvent]:
    """Feed ``raw`` to a fresh parser, cut at ``chunks`` sizes (whole when None)."""
    return parse_pieces(CODEC, cut(raw, chunks or []))


def render_all(events: list[ir.StreamEvent], req: ir.Request | None = None) -> bytes:
    return render_bytes(CODEC, events, req or ir.Request(model="claude-sonnet-4-5"))


def sse_payloads(raw: bytes) -> list[tuple[str | None, dict[str, Any]]]:
    parser = SSEParser()
    found = parser.feed(raw) + parser.close()
    return [(e.event, json.loads(e.data)) for e in found]


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
