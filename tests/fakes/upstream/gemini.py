"""Gemini generateContent as the fake speaks it: error bodies, usage metadata, JSON, SSE
(CRLF frames) and the JSON-array stream without ``alt=sse``."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

from aiohttp import web

from tests.fakes.upstream.reply import Usage, args_obj, split_args
from tests.fakes.upstream.wire import Generation, sse_data

ERROR_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def error_body(status: int, message: str) -> dict[str, Any]:
    return {
        "error": {
            "code": status,
            "message": message,
            "status": ERROR_STATUS.get(
                status, "INTERNAL" if status >= 500 else "FAILED_PRECONDITION"
            ),
        }
    }


def usage(u: Usage) -> dict[str, Any]:
    inp, out, cache_read, _cache_write, reasoning = u
    # Gemini counts thoughts apart from candidates; the prompt count includes cached tokens.
    meta: dict[str, Any] = {
        "promptTokenCount": inp,
        "candidatesTokenCount": out - reasoning,
        "totalTokenCount": inp + out,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": inp}],
    }
    if cache_read:
        meta["cachedContentTokenCount"] = cache_read
    if reasoning:
        meta["thoughtsTokenCount"] = reasoning
    return meta


async def serve(call: Generation) -> web.StreamResponse:
    up, request, reply, _, model, stream = call
    rid = uuid.uuid4().hex[:22]
    finish = "MAX_TOKENS" if reply.stop == "max_tokens" else "STOP"

    def signed(part: dict[str, Any], first: list[bool]) -> dict[str, Any]:
        # Gemini attaches the thought signature to the first part after the thoughts.
        if first[0] and reply.signature:
            first[0] = False
            return {**part, "thoughtSignature": reply.signature}
        return part

    def candidate(parts: list[dict[str, Any]], done: bool) -> dict[str, Any]:
        cand: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
        if done:
            cand["finishReason"] = finish
        return cand

    def envelope(parts: list[dict[str, Any]], done: bool) -> dict[str, Any]:
        obj: dict[str, Any] = {"candidates": [candidate(parts, done)]}
        if done and not reply.no_usage:
            obj["usageMetadata"] = usage(reply.usage5)
        obj["modelVersion"] = model
        obj["responseId"] = rid
        return obj

    if not stream:
        first = [True]
        parts: list[dict[str, Any]] = []
        if reply.reasoning is not None:
            parts.append({"text": reply.reasoning, "thought": True})
        if reply.content is not None:
            parts.append(signed({"text": reply.content}, first))
        for tc in reply.tool_calls:
            parts.append(
                signed({"functionCall": {"name": tc.name, "args": args_obj(tc.arguments)}}, first)
            )
        return await up.send_json(reply, envelope(parts, True))

    def frames() -> Iterator[bytes]:
        first = [True]
        chunks: list[list[dict[str, Any]]] = []
        if reply.reasoning is not None:
            chunks.extend([{"text": p, "thought": True}] for p in split_args(reply.reasoning))
        chunks.extend([signed({"text": p}, first)] for p in reply.text_deltas())
        # Gemini never splits a function call: each arrives whole in one chunk.
        chunks.extend(
            [signed({"functionCall": {"name": tc.name, "args": args_obj(tc.arguments)}}, first)]
            for tc in reply.tool_calls
        )
        if not chunks:
            chunks.append([{"text": ""}])
        for i, parts in enumerate(chunks):
            yield sse_data(envelope(parts, i == len(chunks) - 1), crlf=True)

    if request.query.get("alt") != "sse":
        # Without alt=sse Gemini streams one JSON array; tests only need it to be valid.
        if reply.delay_first:
            await up.sleep(reply.delay_first)
        items = [json.loads(f.decode().split("data: ", 1)[1]) for f in frames()]
        return web.json_response(items)
    return await up.send_stream(request, reply, frames())
