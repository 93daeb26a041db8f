"""The benchmark's fake LLM upstream: fixed latency, paced SSE, OpenAI and Anthropic shapes.

Run in its own process (``python -m bench.upstream --port P``) so its CPU never counts against
the arm under test. Every body is prebuilt; a request costs one JSON parse at most.

Timing, all measured from the moment the request was read:

* non-streaming: the JSON answer after ``latency_ms`` (L);
* streaming: headers after L, the first content frame at ``t0_ms`` (T0, never before L),
  then ``chunks - 1`` more content frames every ``interval_ms`` (d), then the finish frame,
  a usage frame and ``data: [DONE]`` (OpenAI) or ``message_delta``/``message_stop``
  (Anthropic) at once.

``POST /_bench/config`` with any of ``latency_ms``, ``t0_ms``, ``chunks``, ``interval_ms``
changes the pacing for later requests (the driver switches L between experiments without a
restart); ``GET /_bench/config`` returns it with the request count.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import time
from dataclasses import asdict, dataclass
from typing import Any

from aiohttp import web

TEXT = "Hello from the bench upstream"
USAGE_IN = 10
USAGE_OUT = 5


@dataclass(slots=True)
class Pacing:
    latency_ms: float = 0.0
    t0_ms: float = 0.0
    chunks: int = 20
    interval_ms: float = 5.0


def _sse(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


def _anthropic_event(kind: str, obj: dict[str, Any]) -> bytes:
    payload = json.dumps({"type": kind, **obj}, separators=(",", ":")).encode()
    return b"event: " + kind.encode() + b"\ndata: " + payload + b"\n\n"


def openai_json(model: str) -> bytes:
    return json.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": 1700000000,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": TEXT},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": USAGE_IN,
                "completion_tokens": USAGE_OUT,
                "total_tokens": USAGE_IN + USAGE_OUT,
            },
        },
        separators=(",", ":"),
    ).encode()


def anthropic_json(model: str) -> bytes:
    return json.dumps(
        {
            "id": "msg_bench",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": TEXT}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": USAGE_IN, "output_tokens": USAGE_OUT},
        },
        separators=(",", ":"),
    ).encode()


def openai_frames(model: str, chunks: int) -> tuple[list[bytes], bytes]:
    """(content frames, tail) for one OpenAI chat stream."""
    base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1700000000}
    frames = []
    for i in range(chunks):
        delta: dict[str, Any] = {"content": f"tok{i} "}
        if i == 0:
            delta["role"] = "assistant"
        frames.append(
            _sse(
                {
                    **base,
                    "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
                }
            )
        )
    tail = (
        _sse(
            {
                **base,
                "model": model,
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            }
        )
        + _sse(
            {
                **base,
                "model": model,
                "choices": [],
                "usage": {
                    "prompt_tokens": USAGE_IN,
                    "completion_tokens": chunks,
                    "total_tokens": USAGE_IN + chunks,
                },
            }
        )
        + b"data: [DONE]\n\n"
    )
    return frames, tail


def anthropic_frames(model: str, chunks: int) -> tuple[list[bytes], bytes]:
    """(content frames, tail) for one Anthropic messages stream; the first content frame
    carries message_start and content_block_start with it, as real servers flush them."""
    head = _anthropic_event(
        "message_start",
        {
            "message": {
                "id": "msg_bench",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": USAGE_IN, "output_tokens": 1},
            }
        },
    ) + _anthropic_event(
        "content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}
    )
    frames = [
        _anthropic_event(
            "content_block_delta",
            {"index": 0, "delta": {"type": "text_delta", "text": f"tok{i} "}},
        )
        for i in range(chunks)
    ]
    frames[0] = head + frames[0]
    tail = (
        _anthropic_event("content_block_stop", {"index": 0})
        + _anthropic_event(
            "message_delta",
            {
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": chunks},
            },
        )
        + _anthropic_event("message_stop", {})
    )
    return frames, tail


class Upstream:
    def __init__(self, pacing: Pacing) -> None:
        self.pacing = pacing
        self.requests = 0

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/_bench/config", self.get_config)
        app.router.add_post("/_bench/config", self.set_config)
        app.router.add_post("/{prefix:.*}chat/completions", self.openai)
        app.router.add_post("/{prefix:.*}messages", self.anthropic)
        app.router.add_get("/{prefix:.*}models", self.models)
        return app

    async def get_config(self, request: web.Request) -> web.Response:
        return web.json_response({**asdict(self.pacing), "requests": self.requests})

    async def set_config(self, request: web.Request) -> web.Response:
        body = await request.json()
        for key in ("latency_ms", "t0_ms", "interval_ms"):
            if key in body:
                setattr(self.pacing, key, float(body[key]))
        if "chunks" in body:
            self.pacing.chunks = max(1, int(body["chunks"]))
        return await self.get_config(request)

    async def models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "bench", "object": "model"}]})

    async def openai(self, request: web.Request) -> web.StreamResponse:
        return await self._answer(request, openai_json, openai_frames, "text/event-stream")

    async def anthropic(self, request: web.Request) -> web.StreamResponse:
        return await self._answer(request, anthropic_json, anthropic_frames, "text/event-stream")

    async def _answer(
        self,
        request: web.Request,
        as_json: Any,
        as_frames: Any,
        content_type: str,
    ) -> web.StreamResponse:
        start = time.monotonic()
        self.requests += 1
        pacing = self.pacing
        body = await request.json()
        model = str(body.get("model") or "bench")
        if pacing.latency_ms > 0:
            await asyncio.sleep(pacing.latency_ms / 1000)
        if not body.get("stream"):
            return web.Response(body=as_json(model), content_type="application/json")
        frames, tail = as_frames(model, pacing.chunks)
        resp = web.StreamResponse(
            headers={"Content-Type": content_type, "Cache-Control": "no-cache"}
        )
        await resp.prepare(request)
        for i, frame in enumerate(frames):
            due = start + (max(pacing.t0_ms, pacing.latency_ms) + i * pacing.interval_ms) / 1000
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await resp.write(frame if i < len(frames) - 1 else frame + tail)
        await resp.write_eof()
        return resp


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--t0-ms", type=float, default=0.0)
    parser.add_argument("--chunks", type=int, default=20)
    parser.add_argument("--interval-ms", type=float, default=5.0)
    parser.add_argument("--tls-cert", help="PEM chain; serve HTTPS (for the MITM experiment)")
    parser.add_argument("--tls-key")
    args = parser.parse_args(argv)
    ctx = None
    if args.tls_cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
    up = Upstream(Pacing(args.latency_ms, args.t0_ms, args.chunks, args.interval_ms))
    web.run_app(
        up.app(),
        host=args.host,
        port=args.port,
        ssl_context=ctx,
        access_log=None,
        print=None,
        backlog=4096,
    )


if __name__ == "__main__":
    main()
