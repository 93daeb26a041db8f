"""OpenAI Chat Completions as the fake speaks it: error bodies, usage, JSON and SSE chunks
(``data: [DONE]`` last)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from aiohttp import web

from tests.fakes.upstream.reply import Reply, Usage, new_id, split_args
from tests.fakes.upstream.wire import Generation, sse_data

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "invalid_request_error",
    429: "rate_limit_exceeded",
}


def error_body(status: int, message: str) -> dict[str, Any]:
    etype = ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    code = (
        "invalid_api_key" if status == 401 else ("rate_limit_exceeded" if status == 429 else None)
    )
    return {"error": {"message": message, "type": etype, "param": None, "code": code}}


def usage(u: Usage) -> dict[str, Any]:
    inp, out, cache_read, cache_write, reasoning = u
    details: dict[str, Any] = {"cached_tokens": cache_read, "audio_tokens": 0}
    if cache_write:
        details["cache_write_tokens"] = cache_write
    return {
        "prompt_tokens": inp,
        "completion_tokens": out,
        "total_tokens": inp + out,
        "prompt_tokens_details": details,
        "completion_tokens_details": {
            "reasoning_tokens": reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def finish_reason(reply: Reply) -> str:
    if reply.stop == "max_tokens":
        return "length"
    if reply.stop == "content_filter":
        return "content_filter"
    return "tool_calls" if reply.tool_calls else "stop"


async def serve(call: Generation) -> web.StreamResponse:
    up, request, reply, payload, model, stream = call
    cid = new_id("chatcmpl-")
    created = int(time.time())
    headers = {"x-request-id": new_id("req_"), "openai-processing-ms": "1"}
    if not stream:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": reply.content,
            "refusal": None,
            "annotations": [],
        }
        if reply.reasoning is not None:
            message["reasoning_content"] = reply.reasoning  # DeepSeek-style compatible servers
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": tc.id,
                    "type": "function",
                    "function": {"name": tc.name, "arguments": tc.arguments},
                }
                for tc in reply.tool_calls
            ]
        obj: dict[str, Any] = {
            "id": cid,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": finish_reason(reply),
                }
            ],
            "service_tier": "default",
            "system_fingerprint": "fp_fake",
        }
        if not reply.no_usage:
            obj["usage"] = usage(reply.usage5)
        return await up.send_json(reply, obj, headers)

    opts = payload.get("stream_options")
    include_usage = isinstance(opts, dict) and bool(opts.get("include_usage"))

    head = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "service_tier": "default",
        "system_fingerprint": "fp_fake",
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        obj: dict[str, Any] = {**head, "choices": [choice]}
        if include_usage:
            obj["usage"] = None  # OpenAI sends an explicit null on every chunk but the last
        return sse_data(obj)

    def frames() -> Iterator[bytes]:
        yield chunk({"role": "assistant", "content": "", "refusal": None})
        if reply.reasoning is not None:
            for piece in split_args(reply.reasoning):
                yield chunk({"reasoning_content": piece})
        for piece in reply.text_deltas():
            yield chunk({"content": piece})
        pieces = [split_args(tc.arguments) for tc in reply.tool_calls]
        calls = [
            {
                "index": i,
                "id": tc.id,
                "type": "function",
                "function": {"name": tc.name, "arguments": ""},
            }
            for i, tc in enumerate(reply.tool_calls)
        ]
        if reply.interleave:
            for call in calls:
                yield chunk({"tool_calls": [call]})
            for step in range(max((len(p) for p in pieces), default=0)):
                for i, parts in enumerate(pieces):
                    if step < len(parts):
                        yield chunk(
                            {"tool_calls": [{"index": i, "function": {"arguments": parts[step]}}]}
                        )
        else:
            for i, call in enumerate(calls):
                yield chunk({"tool_calls": [call]})
                for part in pieces[i]:
                    yield chunk({"tool_calls": [{"index": i, "function": {"arguments": part}}]})
        yield chunk({}, finish_reason(reply))
        if include_usage and not reply.no_usage:
            yield sse_data({**head, "choices": [], "usage": usage(reply.usage5)})
        yield b"data: [DONE]\n\n"

    return await up.send_stream(request, reply, frames(), headers)
