"""The fake upstream server: an aiohttp app on a loopback port that records every request,
answers from its script queue and hands each generation call to its wire format's module."""

from __future__ import annotations

import asyncio
import json
import re
import ssl
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from aiohttp import web

from tests.fakes.upstream import anthropic, gemini, openai_chat, responses
from tests.fakes.upstream.reply import DEFAULT_TEXT, DEFAULT_USAGE, RecordedRequest, Reply
from tests.fakes.upstream.wire import Generation


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
            handler = openai_chat.serve
        elif path.endswith("/responses"):
            handler = responses.serve
        elif path.endswith("/messages"):
            handler = anthropic.serve
        elif m := re.search(r"/models/([^/:]+):(generateContent|streamGenerateContent)$", path):
            handler = gemini.serve
            model = m.group(1)
            stream = m.group(2) == "streamGenerateContent"
        if handler is None:
            return web.json_response({"error": {"message": f"no route {path}"}}, status=404)

        reply = self._next_reply(generation=True)
        if reply.is_error:
            return await self._error_after_delay(kind, reply)
        if reply.frames is not None:
            return await self.send_stream(request, reply, iter(reply.frames))
        model = reply.model or model or "fake-model"
        resp: web.StreamResponse = await handler(
            Generation(self, request, reply, payload, model, stream)
        )
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
            maker = {"anthropic": anthropic.error_body, "gemini": gemini.error_body}.get(
                kind, openai_chat.error_body
            )
            data = json.dumps(maker(reply.status, message)).encode()
            ctype = "application/json"
        headers = {"Content-Type": ctype, **(reply.headers or {})}
        return web.Response(status=reply.status, body=data, headers=headers)

    async def _error_after_delay(self, kind: str, reply: Reply) -> web.Response:
        if reply.delay_first:
            await self.sleep(reply.delay_first)
        return self._error_response(kind, reply)

    async def sleep(self, seconds: float) -> None:
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

    async def send_stream(
        self,
        request: web.Request,
        reply: Reply,
        frames: Iterator[bytes],
        headers: dict[str, str] | None = None,
    ) -> web.StreamResponse:
        if reply.delay_first:
            await self.sleep(reply.delay_first)
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

    async def send_json(
        self, reply: Reply, obj: Any, headers: dict[str, str] | None = None
    ) -> web.Response:
        if reply.delay_first:
            await self.sleep(reply.delay_first)
        return web.json_response(obj, headers=headers)
