"""A scriptable fake LLM upstream speaking the OpenAI, Anthropic and Gemini wire formats.

Every wire shape here is hand-written from the vendors' API references and SDK types and never
imports our codecs, so a bug in a codec cannot hide itself by agreeing with the fake.

Routing is by path suffix, so any prefix works (``{url}/v1/chat/completions``,
``{url}/openai/v1/chat/completions``):

* ``.../chat/completions``                 OpenAI chat (JSON or SSE + ``data: [DONE]``)
* ``.../responses``                        OpenAI Responses (JSON or typed SSE events)
* ``.../messages``                         Anthropic messages (JSON or SSE)
* ``.../messages/count_tokens``            Anthropic token count
* ``.../models/{m}:generateContent``       Gemini (``:streamGenerateContent?alt=sse`` streams)
* ``GET .../models``                       model list; the Gemini shape under ``/v1beta``, the
  Anthropic shape when the request carries ``x-api-key``/``anthropic-version``, else OpenAI's.

Scripting: ``upstream.script(Reply.text("hi"), Reply.error(429, "slow down"))``. Generation
endpoints consume the queue in order; model lists and token counts consume the head only when
it is an error reply (so a test can make them fail without eating a generation reply).
An empty queue answers ``upstream.default_reply``: ``Reply.text("Hello from fake upstream")``
with usage (10, 5) unless a test sets another (agents make several calls per prompt).
``reset()`` forgets the queue, the recorded requests and the counters (for a fake shared by
the tests of a module).

Usage tuples are ``(input, output, cache_read, cache_write, reasoning)`` with OpenAI semantics:
``input`` is the whole prompt including cache reads and writes, ``output`` includes reasoning.
Each format renders them in its own semantics.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import re
import ssl
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

Usage = tuple[int, int, int, int, int]
DEFAULT_TEXT = "Hello from fake upstream"
DEFAULT_USAGE: Usage = (10, 5, 0, 0, 0)


@dataclass(slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # the JSON text exactly as the model "produced" it (may be invalid JSON)


@dataclass(slots=True)
class Reply:
    """One scripted answer. Build with the constructors; every modifier is a keyword."""

    content: str | None = None  # the assistant text
    chunks: list[str] | None = None  # exact text deltas; default splits ``content`` by words
    tool_calls: list[ToolCall] = field(default_factory=list)
    reasoning: str | None = None  # thinking text
    signature: str | None = None
    status: int = 200
    message: str | None = None  # error message
    headers: dict[str, str] | None = None
    body: Any = None  # raw error body (dict -> JSON, str/bytes verbatim)
    usage: Usage | tuple[int, ...] = DEFAULT_USAGE
    no_usage: bool = False
    delay_first: float = 0.0  # seconds before the response headers
    chunk_delay: float = 0.0  # seconds between SSE events
    cut_after: int | None = None  # abort the connection after n SSE events, no terminator
    hold_eof: float = 0.0  # seconds to keep a finished stream open before its end (EOF)
    stall_after: int | None = None  # after n SSE events, send nothing more (until cancelled)
    frames: list[bytes] | None = None  # exact SSE bytes, one write each (see Reply.sse)
    model: str | None = None
    interleave: bool = False  # interleave parallel tool-call argument deltas (OpenAI chat)
    stop: str | None = None  # Anthropic vocabulary; "max_tokens" renders as truncation
    verbatim: bool = False  # send ``body`` as is with ``status`` (see Reply.raw)

    @classmethod
    def text(cls, text: str, *, chunks: list[str] | None = None, **mods: Any) -> Reply:
        return cls(content=text, chunks=chunks, **mods)

    @classmethod
    def tools(cls, calls: list[ToolCall], text: str | None = None, **mods: Any) -> Reply:
        return cls(content=text, tool_calls=list(calls), **mods)

    @classmethod
    def thinking(cls, thinking: str, signature: str, text: str, **mods: Any) -> Reply:
        return cls(content=text, reasoning=thinking, signature=signature, **mods)

    @classmethod
    def error(
        cls,
        status: int,
        message: str,
        headers: dict[str, str] | None = None,
        body: Any = None,
        **mods: Any,
    ) -> Reply:
        return cls(status=status, message=message, headers=headers, body=body, **mods)

    @classmethod
    def raw(
        cls, body: Any, *, status: int = 200, headers: dict[str, str] | None = None, **mods: Any
    ) -> Reply:
        """Answer any endpoint with exactly this body and status (for malformed upstreams)."""
        return cls(status=status, body=body, headers=headers, verbatim=True, **mods)

    @classmethod
    def sse(cls, *frames: bytes | str, **mods: Any) -> Reply:
        """Answer any generation endpoint with 200 and exactly these SSE frames, one write each
        (for in-band errors, malformed and garbage streams); delays, stall and cut apply."""
        raw = [f.encode() if isinstance(f, str) else f for f in frames]
        return cls(frames=raw, **mods)

    def with_(self, **mods: Any) -> Reply:
        return dataclasses.replace(self, **mods)

    # -------------------------------------------------------------- derived views

    @property
    def is_error(self) -> bool:
        """Answered from ``status``/``body`` rather than rendered in the endpoint's format."""
        return self.status >= 400 or self.verbatim

    @property
    def usage5(self) -> Usage:
        u = (*self.usage, 0, 0, 0, 0, 0)[:5]
        return (u[0], u[1], u[2], u[3], u[4])

    def text_deltas(self) -> list[str]:
        if self.chunks is not None:
            return list(self.chunks)
        if not self.content:
            return []
        return re.findall(r"\s*\S+|\s+$", self.content) or [self.content]


def split_args(arguments: str, parts: int = 3) -> list[str]:
    """Split tool arguments into several deltas (at arbitrary points, as real models do)."""
    if not arguments:
        return []
    size = max(1, math.ceil(len(arguments) / parts))
    return [arguments[i : i + size] for i in range(0, len(arguments), size)]


@dataclass(slots=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    json: Any


def _new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:24]}"


def _args_obj(arguments: str) -> dict[str, Any]:
    try:
        value = json.loads(arguments) if arguments else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


# ------------------------------------------------------------------------ error bodies

_OPENAI_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "invalid_request_error",
    429: "rate_limit_exceeded",
}
_ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
_GEMINI_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def openai_error_body(status: int, message: str) -> dict[str, Any]:
    etype = _OPENAI_ERROR_TYPES.get(
        status, "server_error" if status >= 500 else "invalid_request_error"
    )
    code = (
        "invalid_api_key" if status == 401 else ("rate_limit_exceeded" if status == 429 else None)
    )
    return {"error": {"message": message, "type": etype, "param": None, "code": code}}


def anthropic_error_body(status: int, message: str) -> dict[str, Any]:
    etype = _ANTHROPIC_ERROR_TYPES.get(
        status, "api_error" if status >= 500 else "invalid_request_error"
    )
    return {
        "type": "error",
        "error": {"type": etype, "message": message},
        "request_id": _new_id("req_"),
    }


def gemini_error_body(status: int, message: str) -> dict[str, Any]:
    return {
        "error": {
            "code": status,
            "message": message,
            "status": _GEMINI_STATUS.get(
                status, "INTERNAL" if status >= 500 else "FAILED_PRECONDITION"
            ),
        }
    }


# ------------------------------------------------------------------------ the server


class FakeUpstream:
    """An aiohttp server on 127.0.0.1:0. ``await start()`` / ``await close()``, or async with."""

    def __init__(
        self, *, ssl_context: ssl.SSLContext | None = None, host: str = "127.0.0.1"
    ) -> None:
        self.ssl_context = ssl_context
        self.host = host  # any loopback address (127.0.0.0/8)
        self.requests: list[RecordedRequest] = []
        self.models: list[str] = ["fake-small", "fake-large"]
        self.api_key: str | None = None  # when set, requests without this key get a 401
        self.connections_closed = 0  # streams whose client went away before the end
        self.disconnected = asyncio.Event()
        self.in_flight = 0
        self.peak_in_flight = 0
        self.port = 0
        self.default_reply = Reply(content=DEFAULT_TEXT, usage=DEFAULT_USAGE)
        self._queue: deque[Reply] = deque()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://{self.host}:{self.port}"

    def script(self, *replies: Reply) -> None:
        self._queue.extend(replies)

    def reset(self) -> None:
        """Back to a fresh fake (same port): no script, no recorded requests, zero counters."""
        self._queue.clear()
        self.requests.clear()
        self.models = ["fake-small", "fake-large"]
        self.api_key = None
        self.connections_closed = 0
        self.disconnected = asyncio.Event()
        self.in_flight = self.peak_in_flight = 0
        self.default_reply = Reply(content=DEFAULT_TEXT, usage=DEFAULT_USAGE)

    @property
    def pending(self) -> int:
        return len(self._queue)

    async def start(self) -> FakeUpstream:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # handler_cancellation: a client that goes away cancels the handler, which is how the
        # fake notices a disconnect while it is sleeping (delay_first / chunk_delay).
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0, ssl_context=self.ssl_context)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[attr-defined]
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeUpstream:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ---------------------------------------------------------------- dispatch

    def _next_reply(self, *, generation: bool) -> Reply:
        if self._queue and (generation or self._queue[0].is_error):
            return self._queue.popleft()
        if generation:
            return self.default_reply
        return Reply()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        # How many requests are being served at once (maxConcurrent tests read the peak).
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            return await self._serve(request)
        finally:
            self.in_flight -= 1

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        self.requests.append(
            RecordedRequest(
                method=request.method,
                path=request.path,
                query=dict(request.query),
                headers={k.lower(): v for k, v in request.headers.items()},
                body=raw,
                json=body,
            )
        )
        path = request.path
        kind = self._kind_for(request)
        if self.api_key is not None and not self._authorized(request, kind):
            return self._error_response(kind, Reply.error(401, "Invalid API key"))
        payload: dict[str, Any] = body if isinstance(body, dict) else {}

        if request.method == "GET" and path.rstrip("/").endswith("/models"):
            reply = self._next_reply(generation=False)
            if reply.is_error:
                return await self._error_after_delay(kind, reply)
            return web.json_response(self._models_body(kind))
        if path.endswith("/messages/count_tokens"):
            reply = self._next_reply(generation=False)
            if reply.is_error:
                return await self._error_after_delay(kind, reply)
            return web.json_response({"input_tokens": max(1, len(raw) // 4)})

        handler: Callable[..., Any] | None = None
        stream = bool(payload.get("stream"))
        model = str(payload.get("model") or "")
        if path.endswith("/chat/completions"):
            handler = self._openai_chat
        elif path.endswith("/responses"):
            handler = self._responses
        elif path.endswith("/messages"):
            handler = self._anthropic
        elif m := re.search(r"/models/([^/:]+):(generateContent|streamGenerateContent)$", path):
            handler = self._gemini
            model = m.group(1)
            stream = m.group(2) == "streamGenerateContent"
        if handler is None:
            return web.json_response({"error": {"message": f"no route {path}"}}, status=404)

        reply = self._next_reply(generation=True)
        if reply.is_error:
            return await self._error_after_delay(kind, reply)
        if reply.frames is not None:
            return await self._stream(request, reply, iter(reply.frames))
        model = reply.model or model or "fake-model"
        resp: web.StreamResponse = await handler(request, reply, payload, model, stream)
        return resp

    @staticmethod
    def _kind_for(request: web.Request) -> str:
        path = request.path
        if "/v1beta" in path or ":generateContent" in path or ":streamGenerateContent" in path:
            return "gemini"
        if path.endswith(("/messages", "/messages/count_tokens")):
            return "anthropic"
        if "x-api-key" in request.headers or "anthropic-version" in request.headers:
            return "anthropic"
        return "openai"

    def _authorized(self, request: web.Request, kind: str) -> bool:
        h = request.headers
        if kind == "anthropic" and h.get("x-api-key") == self.api_key:
            return True  # newer anthropic SDKs send the key as a Bearer token instead
        if kind == "gemini":
            return self.api_key in (h.get("x-goog-api-key"), request.query.get("key"))
        return h.get("authorization") == f"Bearer {self.api_key}"

    def _error_response(self, kind: str, reply: Reply) -> web.Response:
        message = reply.message or "error"
        if reply.body is not None:
            if isinstance(reply.body, (dict, list)):
                data = json.dumps(reply.body).encode()
                ctype = "application/json"
            else:
                data = reply.body.encode() if isinstance(reply.body, str) else bytes(reply.body)
                ctype = "text/plain"
        else:
            maker = {"anthropic": anthropic_error_body, "gemini": gemini_error_body}.get(
                kind, openai_error_body
            )
            data = json.dumps(maker(reply.status, message)).encode()
            ctype = "application/json"
        headers = {"Content-Type": ctype, **(reply.headers or {})}
        return web.Response(status=reply.status, body=data, headers=headers)

    async def _error_after_delay(self, kind: str, reply: Reply) -> web.Response:
        if reply.delay_first:
            await self._sleep(reply.delay_first)
        return self._error_response(kind, reply)

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            self._mark_disconnect()
            raise

    def _mark_disconnect(self) -> None:
        self.connections_closed += 1
        self.disconnected.set()

    def _models_body(self, kind: str) -> dict[str, Any]:
        if kind == "gemini":
            return {
                "models": [
                    {
                        "name": f"models/{m}",
                        "version": "001",
                        "displayName": m,
                        "description": f"fake {m}",
                        "inputTokenLimit": 1048576,
                        "outputTokenLimit": 65536,
                        "supportedGenerationMethods": ["generateContent", "countTokens"],
                    }
                    for m in self.models
                ]
            }
        if kind == "anthropic":
            data = [
                {
                    "type": "model",
                    "id": m,
                    "display_name": m,
                    "created_at": "2025-01-01T00:00:00Z",
                }
                for m in self.models
            ]
            return {
                "data": data,
                "has_more": False,
                "first_id": self.models[0] if self.models else None,
                "last_id": self.models[-1] if self.models else None,
            }
        return {
            "object": "list",
            "data": [
                {"id": m, "object": "model", "created": 1700000000, "owned_by": "fake"}
                for m in self.models
            ],
        }

    # ---------------------------------------------------------------- SSE plumbing

    async def _stream(
        self,
        request: web.Request,
        reply: Reply,
        frames: Iterator[bytes],
        headers: dict[str, str] | None = None,
    ) -> web.StreamResponse:
        if reply.delay_first:
            await self._sleep(reply.delay_first)
        resp = web.StreamResponse(
            status=200,
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                **(headers or {}),
            },
        )
        await resp.prepare(request)
        sent = 0
        try:
            for frame in frames:
                if sent and reply.chunk_delay:
                    await asyncio.sleep(reply.chunk_delay)
                if reply.cut_after is not None and sent >= reply.cut_after:
                    if request.transport is not None:
                        request.transport.abort()
                    return resp
                if reply.stall_after is not None and sent >= reply.stall_after:
                    await asyncio.sleep(3600)  # ends when the client goes away
                await resp.write(frame)
                sent += 1
            if reply.hold_eof:
                await asyncio.sleep(reply.hold_eof)
            await resp.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            self._mark_disconnect()
            raise
        return resp

    @staticmethod
    def _data(obj: Any, *, event: str | None = None, crlf: bool = False) -> bytes:
        nl = "\r\n" if crlf else "\n"
        head = f"event: {event}{nl}" if event else ""
        return f"{head}data: {json.dumps(obj, separators=(',', ':'))}{nl}{nl}".encode()

    async def _json_reply(
        self, reply: Reply, obj: Any, headers: dict[str, str] | None = None
    ) -> web.Response:
        if reply.delay_first:
            await self._sleep(reply.delay_first)
        return web.json_response(obj, headers=headers)

    # ---------------------------------------------------------------- OpenAI chat

    @staticmethod
    def _openai_usage(u: Usage) -> dict[str, Any]:
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

    @staticmethod
    def _openai_finish(reply: Reply) -> str:
        if reply.stop == "max_tokens":
            return "length"
        if reply.stop == "content_filter":
            return "content_filter"
        return "tool_calls" if reply.tool_calls else "stop"

    async def _openai_chat(
        self, request: web.Request, reply: Reply, payload: dict[str, Any], model: str, stream: bool
    ) -> web.StreamResponse:
        cid = _new_id("chatcmpl-")
        created = int(time.time())
        headers = {"x-request-id": _new_id("req_"), "openai-processing-ms": "1"}
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
                        "finish_reason": self._openai_finish(reply),
                    }
                ],
                "service_tier": "default",
                "system_fingerprint": "fp_fake",
            }
            if not reply.no_usage:
                obj["usage"] = self._openai_usage(reply.usage5)
            return await self._json_reply(reply, obj, headers)

        opts = payload.get("stream_options")
        include_usage = isinstance(opts, dict) and bool(opts.get("include_usage"))

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            obj = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "service_tier": "default",
                "system_fingerprint": "fp_fake",
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
            }
            if include_usage:
                obj["usage"] = None  # OpenAI sends an explicit null on every chunk but the last
            return self._data(obj)

        def frames() -> Iterator[bytes]:
            yield chunk({"role": "assistant", "content": "", "refusal": None})
            if reply.reasoning is not None:
                for piece in split_args(reply.reasoning):
                    yield chunk({"reasoning_content": piece})
            for piece in reply.text_deltas():
                yield chunk({"content": piece})
            pieces = [split_args(tc.arguments) for tc in reply.tool_calls]
            heads = [
                {
                    "index": i,
                    "id": tc.id,
                    "type": "function",
                    "function": {"name": tc.name, "arguments": ""},
                }
                for i, tc in enumerate(reply.tool_calls)
            ]
            if reply.interleave:
                for head in heads:
                    yield chunk({"tool_calls": [head]})
                for step in range(max((len(p) for p in pieces), default=0)):
                    for i, parts in enumerate(pieces):
                        if step < len(parts):
                            yield chunk(
                                {
                                    "tool_calls": [
                                        {"index": i, "function": {"arguments": parts[step]}}
                                    ]
                                }
                            )
            else:
                for i, head in enumerate(heads):
                    yield chunk({"tool_calls": [head]})
                    for part in pieces[i]:
                        yield chunk({"tool_calls": [{"index": i, "function": {"arguments": part}}]})
            yield chunk({}, self._openai_finish(reply))
            if include_usage and not reply.no_usage:
                yield self._data(
                    {
                        "id": cid,
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": model,
                        "service_tier": "default",
                        "system_fingerprint": "fp_fake",
                        "choices": [],
                        "usage": self._openai_usage(reply.usage5),
                    }
                )
            yield b"data: [DONE]\n\n"

        return await self._stream(request, reply, frames(), headers)

    # ---------------------------------------------------------------- OpenAI Responses

    @staticmethod
    def _responses_usage(u: Usage) -> dict[str, Any]:
        inp, out, cache_read, cache_write, reasoning = u
        return {
            "input_tokens": inp,
            "input_tokens_details": {
                "cached_tokens": cache_read,
                "cache_write_tokens": cache_write,
            },
            "output_tokens": out,
            "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": inp + out,
        }

    async def _responses(
        self, request: web.Request, reply: Reply, payload: dict[str, Any], model: str, stream: bool
    ) -> web.StreamResponse:
        rid = _new_id("resp_")
        created = int(time.time())
        incomplete = reply.stop == "max_tokens"
        final_status = "incomplete" if incomplete else "completed"

        # Output items in their final form; the stream builds them up step by step.
        items: list[dict[str, Any]] = []
        if reply.reasoning is not None:
            items.append(
                {
                    "id": _new_id("rs_"),
                    "type": "reasoning",
                    "summary": [{"type": "summary_text", "text": reply.reasoning}],
                    "encrypted_content": reply.signature,
                }
            )
        if reply.content is not None:
            items.append(
                {
                    "id": _new_id("msg_"),
                    "type": "message",
                    "status": "completed",
                    "role": "assistant",
                    "content": [
                        {
                            "type": "output_text",
                            "text": reply.content,
                            "annotations": [],
                            "logprobs": [],
                        }
                    ],
                }
            )
        for tc in reply.tool_calls:
            items.append(
                {
                    "id": _new_id("fc_"),
                    "type": "function_call",
                    "status": "completed",
                    "arguments": tc.arguments,
                    "call_id": tc.id,
                    "name": tc.name,
                }
            )

        def response(status: str, output: list[dict[str, Any]], usage: bool) -> dict[str, Any]:
            return {
                "id": rid,
                "object": "response",
                "created_at": created,
                "status": status,
                "background": False,
                "error": None,
                "incomplete_details": {"reason": "max_output_tokens"}
                if incomplete and status == "incomplete"
                else None,
                "instructions": payload.get("instructions"),
                "max_output_tokens": payload.get("max_output_tokens"),
                "model": model,
                "output": output,
                "parallel_tool_calls": payload.get("parallel_tool_calls", True),
                "previous_response_id": payload.get("previous_response_id"),
                "reasoning": {"effort": None, "summary": None},
                "store": payload.get("store", True),
                "temperature": payload.get("temperature", 1.0),
                "text": {"format": {"type": "text"}},
                "tool_choice": payload.get("tool_choice", "auto"),
                "tools": payload.get("tools", []),
                "top_p": payload.get("top_p", 1.0),
                "truncation": "disabled",
                "usage": self._responses_usage(reply.usage5)
                if usage and not reply.no_usage
                else None,
                "user": None,
                "metadata": {},
            }

        headers = {"x-request-id": _new_id("req_")}
        if not stream:
            return await self._json_reply(reply, response(final_status, items, True), headers)

        seq = 0

        def ev(obj: dict[str, Any]) -> bytes:
            nonlocal seq
            obj["sequence_number"] = seq
            seq += 1
            return self._data(obj, event=obj["type"])

        def frames() -> Iterator[bytes]:
            yield ev({"type": "response.created", "response": response("in_progress", [], False)})
            yield ev(
                {"type": "response.in_progress", "response": response("in_progress", [], False)}
            )
            for idx, item in enumerate(items):
                iid = item["id"]
                if item["type"] == "reasoning":
                    text = item["summary"][0]["text"]
                    yield ev(
                        {
                            "type": "response.output_item.added",
                            "output_index": idx,
                            "item": {**item, "summary": [], "encrypted_content": None},
                        }
                    )
                    part = {"type": "summary_text", "text": ""}
                    base = {"item_id": iid, "output_index": idx, "summary_index": 0}
                    yield ev(
                        {"type": "response.reasoning_summary_part.added", **base, "part": part}
                    )
                    for piece in split_args(text):
                        yield ev(
                            {
                                "type": "response.reasoning_summary_text.delta",
                                **base,
                                "delta": piece,
                            }
                        )
                    yield ev({"type": "response.reasoning_summary_text.done", **base, "text": text})
                    yield ev(
                        {
                            "type": "response.reasoning_summary_part.done",
                            **base,
                            "part": {"type": "summary_text", "text": text},
                        }
                    )
                elif item["type"] == "message":
                    text = item["content"][0]["text"]
                    yield ev(
                        {
                            "type": "response.output_item.added",
                            "output_index": idx,
                            "item": {**item, "status": "in_progress", "content": []},
                        }
                    )
                    base = {"item_id": iid, "output_index": idx, "content_index": 0}
                    empty = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
                    yield ev({"type": "response.content_part.added", **base, "part": empty})
                    for piece in reply.text_deltas():
                        yield ev(
                            {
                                "type": "response.output_text.delta",
                                **base,
                                "delta": piece,
                                "logprobs": [],
                            }
                        )
                    yield ev(
                        {"type": "response.output_text.done", **base, "text": text, "logprobs": []}
                    )
                    yield ev(
                        {"type": "response.content_part.done", **base, "part": item["content"][0]}
                    )
                else:
                    yield ev(
                        {
                            "type": "response.output_item.added",
                            "output_index": idx,
                            "item": {**item, "status": "in_progress", "arguments": ""},
                        }
                    )
                    base = {"item_id": iid, "output_index": idx}
                    for piece in split_args(item["arguments"]):
                        yield ev(
                            {
                                "type": "response.function_call_arguments.delta",
                                **base,
                                "delta": piece,
                            }
                        )
                    yield ev(
                        {
                            "type": "response.function_call_arguments.done",
                            **base,
                            "arguments": item["arguments"],
                        }
                    )
                yield ev({"type": "response.output_item.done", "output_index": idx, "item": item})
            done_type = "response.incomplete" if incomplete else "response.completed"
            yield ev({"type": done_type, "response": response(final_status, items, True)})

        return await self._stream(request, reply, frames(), headers)

    # ---------------------------------------------------------------- Anthropic

    @staticmethod
    def _anthropic_stop(reply: Reply) -> str:
        if reply.stop:
            return reply.stop
        return "tool_use" if reply.tool_calls else "end_turn"

    async def _anthropic(
        self, request: web.Request, reply: Reply, payload: dict[str, Any], model: str, stream: bool
    ) -> web.StreamResponse:
        mid = _new_id("msg_")
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
                {"type": "tool_use", "id": tc.id, "name": tc.name, "input": _args_obj(tc.arguments)}
            )
        headers = {"request-id": _new_id("req_")}
        message: dict[str, Any] = {
            "id": mid,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": blocks,
            "stop_reason": self._anthropic_stop(reply),
            "stop_sequence": None,
        }
        if not reply.no_usage:
            message["usage"] = usage
        if not stream:
            return await self._json_reply(reply, message, headers)

        def ev(obj: dict[str, Any]) -> bytes:
            return self._data(obj, event=obj["type"])

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
                "delta": {"stop_reason": self._anthropic_stop(reply), "stop_sequence": None},
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

        return await self._stream(request, reply, with_ping(), headers)

    # ---------------------------------------------------------------- Gemini

    @staticmethod
    def _gemini_usage(u: Usage) -> dict[str, Any]:
        inp, out, cache_read, _cache_write, reasoning = u
        # Gemini counts thoughts apart from candidates; the prompt count includes cached tokens.
        usage: dict[str, Any] = {
            "promptTokenCount": inp,
            "candidatesTokenCount": out - reasoning,
            "totalTokenCount": inp + out,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": inp}],
        }
        if cache_read:
            usage["cachedContentTokenCount"] = cache_read
        if reasoning:
            usage["thoughtsTokenCount"] = reasoning
        return usage

    async def _gemini(
        self, request: web.Request, reply: Reply, payload: dict[str, Any], model: str, stream: bool
    ) -> web.StreamResponse:
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
                obj["usageMetadata"] = self._gemini_usage(reply.usage5)
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
                    signed(
                        {"functionCall": {"name": tc.name, "args": _args_obj(tc.arguments)}}, first
                    )
                )
            return await self._json_reply(reply, envelope(parts, True))

        def frames() -> Iterator[bytes]:
            first = [True]
            chunks: list[list[dict[str, Any]]] = []
            if reply.reasoning is not None:
                chunks.extend([{"text": p, "thought": True}] for p in split_args(reply.reasoning))
            chunks.extend([signed({"text": p}, first)] for p in reply.text_deltas())
            # Gemini never splits a function call: each arrives whole in one chunk.
            chunks.extend(
                [
                    signed(
                        {"functionCall": {"name": tc.name, "args": _args_obj(tc.arguments)}}, first
                    )
                ]
                for tc in reply.tool_calls
            )
            if not chunks:
                chunks.append([{"text": ""}])
            for i, parts in enumerate(chunks):
                yield self._data(envelope(parts, i == len(chunks) - 1), crlf=True)

        if request.query.get("alt") != "sse":
            # Without alt=sse Gemini streams one JSON array; tests only need it to be valid.
            if reply.delay_first:
                await self._sleep(reply.delay_first)
            items = [json.loads(f.decode().split("data: ", 1)[1]) for f in frames()]
            return web.json_response(items)
        return await self._stream(request, reply, frames())
