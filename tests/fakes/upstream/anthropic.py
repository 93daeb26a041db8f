"""Anthropic Messages as the fake speaks it: error bodies, stop reasons, usage without the
cached part, JSON and SSE (with the ping after the first block start)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from aiohttp import web

from tests.fakes.upstream.reply import Reply, args_obj, new_id, split_args
from tests.fakes.upstream.wire import Generation, sse_data

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def error_body(status: int, message: str) -> dict[str, Any]:
    etype = ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {
        "type": "error",
        "error": {"type": etype, "message": message},
        "request_id": new_id("req_"),
    }


def stop_reason(reply: Reply) -> str:
    if reply.stop:
        return reply.stop
    return "tool_use" if reply.tool_calls else "end_turn"


async def serve(call: Generation) -> web.StreamResponse:
    up, request, reply, _, model, stream = call
    mid = new_id("msg_")
    inp, out, cache_read, cache_write, _reasoning = reply.usage5
    # Anthropic's input_tokens exclude what was read from or written to the cache.
    usage = {
        "input_tokens": max(0, inp - cache_read - cache_write),
        "cache_creation_input_tokens": cache_write,
        "cache_read_input_tokens": cache_read,
        "output_tokens": out,
        "service_tier": "standard",
    }
    blocks: list[dict[str, Any]] = []
    if reply.reasoning is not None:
        blocks.append(
            {
                "type": "thinking",
                "thinking": reply.reasoning,
                "signature": reply.signature or "",
            }
        )
    if reply.content is not None:
        blocks.append({"type": "text", "text": reply.content})
    for tc in reply.tool_calls:
        blocks.append(
            {"type": "tool_use", "id": tc.id, "name": tc.name, "input": args_obj(tc.arguments)}
        )
    headers = {"request-id": new_id("req_")}
    message: dict[str, Any] = {
        "id": mid,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": blocks,
        "stop_reason": stop_reason(reply),
        "stop_sequence": None,
    }
    if not reply.no_usage:
        message["usage"] = usage
    if not stream:
        return await up.send_json(reply, message, headers)

    def ev(obj: dict[str, Any]) -> bytes:
        return sse_data(obj, event=obj["type"])

    def frames() -> Iterator[bytes]:
        start = {**message, "content": [], "stop_reason": None}
        if not reply.no_usage:
            start["usage"] = {**usage, "output_tokens": 1}
        yield ev({"type": "message_start", "message": start})
        for idx, block in enumerate(blocks):
            if block["type"] == "thinking":
                yield ev(
                    {
                        "type": "content_block_start",
                        "index": idx,
                        "content_block": {"type": "thinking", "thinking": "", "signature": ""},
                    }
                )
                for piece in split_args(block["thinking"]):
                    yield ev(
                        {
                            "type": "content_block_delta",
                            "index": idx,
                            "delta": {"type": "thinking_delta", "thinking": piece},
                        }
                    )
                yield ev(
                    {
                        "type": "content_block_delta",
                        "index": idx,
                        "delta": {"type": "signature_delta", "signature": block["signature"]},
                    }
                )
            elif block["type"] == "text":
                yield ev(
                    {
                        "type": "content_block_start",
                        "index": idx,
                        "content_block": {"type": "text", "text": ""},
                    }
                )
                for piece in reply.text_deltas():
                    yield ev(
                        {
                            "type": "content_block_delta",
                            "index": idx,
                            "delta": {"type": "text_delta", "text": piece},
                        }
                    )
            else:
                tc = reply.tool_calls[idx - len(blocks) + len(reply.tool_calls)]
                yield ev(
                    {
                        "type": "content_block_start",
                        "index": idx,
                        "content_block": {**block, "input": {}},
                    }
                )
                for piece in ["", *split_args(tc.arguments)]:
                    yield ev(
                        {
                            "type": "content_block_delta",
                            "index": idx,
                            "delta": {"type": "input_json_delta", "partial_json": piece},
                        }
                    )
            yield ev({"type": "content_block_stop", "index": idx})
        delta_event: dict[str, Any] = {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason(reply), "stop_sequence": None},
        }
        delta_event["usage"] = (
            {"output_tokens": 0}
            if reply.no_usage
            else {k: v for k, v in usage.items() if k != "service_tier"}
        )
        yield ev(delta_event)
        yield ev({"type": "message_stop"})

    def with_ping() -> Iterator[bytes]:
        # Anthropic sends its first ping right after the first content_block_start.
        pinged = False
        for frame in frames():
            yield frame
            if not pinged and frame.startswith(b"event: content_block_start"):
                pinged = True
                yield ev({"type": "ping"})

    return await up.send_stream(request, reply, with_ping(), headers)
