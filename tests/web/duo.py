"""Two fake upstreams ("a" fails, "b" answers) behind a real llmtap server, for failover and
fault tests: one connection per provider kind on each upstream, and a priority combo per kind
that tries a first. Small first-byte and idle timeouts keep fault cases short."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from addons.webapp import WebApp
from router.engine import Timeouts
from tests.fakes.upstream import FakeUpstream
from tests.web.harness import Server, start_server

KINDS = {"oa": ("openai", "/v1"), "an": ("anthropic", "/v1"), "ge": ("gemini", "/v1beta")}
TIMEOUT_S = 0.5  # first byte and idle: what a stalled upstream costs a fault case

# The client side of each inbound format: path (Gemini puts model and streaming in it), body.
CLIENTS = ("chat", "messages", "responses", "gemini")


def request_for(client: str, model: str, *, stream: bool) -> tuple[str, dict[str, Any]]:
    if client == "chat":
        body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
        return "/v1/chat/completions", {**body, "stream": stream}
    if client == "messages":
        body = {"model": model, "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}
        return "/v1/messages", {**body, "stream": stream}
    if client == "responses":
        return "/v1/responses", {"model": model, "input": "hi", "stream": stream}
    verb = "streamGenerateContent?alt=sse" if stream else "generateContent"
    return f"/v1beta/models/{model}:{verb}", {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}]
    }


# --------------------------------------------------------------------------- upstream frames
# Hand-written wire shapes from each vendor's documentation (never produced by our codecs).


def oa_chunk(delta: dict[str, object], finish: str | None = None, **extra: object) -> str:
    chunk = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "m-a",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }
    return f"data: {json.dumps(chunk)}\n\n"


def an_event(event: str, obj: dict[str, object] | str) -> str:
    data = obj if isinstance(obj, str) else json.dumps(obj)
    return f"event: {event}\ndata: {data}\n\n"


AN_START = an_event(
    "message_start",
    {
        "type": "message_start",
        "message": {
            "id": "msg_1", "type": "message", "role": "assistant", "model": "m-a",
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 5, "output_tokens": 1},
        },
    },
)  # fmt: skip
AN_PING = an_event("ping", {"type": "ping"})
AN_TEXT = an_event(
    "content_block_start",
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
) + an_event(
    "content_block_delta",
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "partial answer"}},
)  # fmt: skip
GE_TEXT = "data: " + json.dumps(
    {"candidates": [{"content": {"role": "model", "parts": [{"text": "partial answer"}]}, "index": 0}]}
) + "\n\n"  # fmt: skip
# The start of a stream up to its first content ("partial answer"), per upstream kind.
CONTENT_FRAMES = {
    "oa": [oa_chunk({"role": "assistant", "content": ""}), oa_chunk({"content": "partial answer"})],
    "an": [AN_START, AN_TEXT],
    "ge": [GE_TEXT],
}


def sse_events(raw: str) -> list[tuple[str | None, str]]:
    """``(event, data)`` of every SSE event in ``raw`` (comment lines skipped)."""
    out: list[tuple[str | None, str]] = []
    for block in raw.replace("\r\n", "\n").split("\n\n"):
        event, data = None, []
        for line in block.split("\n"):
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip())
        if event is not None or data:
            out.append((event, "\n".join(data)))
    return out


def stream_text(client: str, raw: str) -> str:
    """The assistant text a client of this format reads from a stream."""
    text = ""
    for _event, data in sse_events(raw):
        if data == "[DONE]":
            continue
        obj = json.loads(data)
        if client == "chat":
            for choice in obj.get("choices") or []:
                text += (choice.get("delta") or {}).get("content") or ""
        elif client == "messages":
            if (
                obj.get("type") == "content_block_delta"
                and obj["delta"].get("type") == "text_delta"
            ):
                text += obj["delta"]["text"]
        elif client == "responses":
            if obj.get("type") == "response.output_text.delta":
                text += obj["delta"]
        else:
            for cand in obj.get("candidates") or []:
                for part in (cand.get("content") or {}).get("parts") or []:
                    text += part.get("text", "") if not part.get("thought") else ""
    return text


def stream_error(client: str, raw: str) -> dict[str, Any] | None:
    """The in-band error a client of this format sees at the end of a stream, or None. Checks
    the framing each official SDK relies on: OpenAI chat ends with an ``error`` chunk and
    ``[DONE]``, Anthropic with ``event: error``, Responses with ``response.failed``, Gemini
    with a ``data:`` object carrying ``error``."""
    events = sse_events(raw)
    if not events:
        return None
    if client == "chat":
        if events[-1][1] != "[DONE]" or len(events) < 2:
            return None
        obj = json.loads(events[-2][1])
        return obj.get("error") if isinstance(obj.get("error"), dict) else None
    event, data = events[-1]
    obj = json.loads(data)
    if client == "messages":
        if event == "error" and obj.get("type") == "error":
            return dict(obj["error"])
        return None
    if client == "responses":
        if event == "response.failed" and obj.get("type") == "response.failed":
            return dict(obj["response"]["error"])
        return None
    return obj.get("error") if isinstance(obj.get("error"), dict) else None


@dataclass
class Duo:
    server: Server
    webapp: WebApp
    a: FakeUpstream
    b: FakeUpstream
    conn: dict[str, str]  # connection name ("oa-a") -> id
    http: httpx.AsyncClient
    logged: int = 0

    def combo(self, kind: str) -> str:
        return f"duo-{kind}"

    def single(self, kind: str) -> str:
        return f"{kind}-a/m-a"

    def dead_combo(self, kind: str) -> str:
        """A combo whose first connection's port has no listener (connection refused)."""
        return f"dead-{kind}"

    def hits(self, up: FakeUpstream) -> int:
        return sum(1 for r in up.requests if r.method == "POST")

    async def call(self, client: str, model: str, *, stream: bool) -> tuple[httpx.Response, str]:
        """One call; returns the response (status, headers) and the whole body text."""
        await self.mark()
        path, body = request_for(client, model, stream=stream)
        async with self.http.stream("POST", self.server.url + path, json=body) as resp:
            raw = (await resp.aread()).decode()
        return resp, raw

    async def leave_once(self, client: str, model: str, text: str, *, stream: bool = True) -> None:
        """One call the client hangs up on as soon as ``text`` arrived (:meth:`mark` first)."""
        await self.mark()
        path, body = request_for(client, model, stream=stream)
        async with self.http.stream("POST", self.server.url + path, json=body) as resp:
            seen = ""
            async for chunk in resp.aiter_text():
                seen += chunk
                if text in seen:
                    return

    async def _logs(self) -> dict[str, Any]:
        assert self.server.runtime.writer.flush(timeout=5)
        resp = await self.server.api("GET", "/api/usage/call-logs", params={"limit": 1})
        return dict(resp.json())

    async def mark(self) -> None:
        """Remember how many calls are logged (before the call :meth:`last_log` reads)."""
        self.logged = (await self._logs())["total"]

    async def last_log(self) -> dict[str, Any]:
        """The row of the call made since :meth:`mark`; waits for it (a streamed call is
        logged when its stream ends, just after the client read the last byte)."""
        for _ in range(100):
            page = await self._logs()
            if page["total"] > self.logged and page["logs"]:
                assert page["total"] == self.logged + 1, "one call, one row"
                return dict(page["logs"][0])
            await asyncio.sleep(0.05)
        raise AssertionError("no call-log row appeared")

    async def record(self, request_id: str) -> dict[str, Any]:
        """The finished inspector record of a router call."""
        for _ in range(100):
            resp = await self.server.api(
                "GET", f"/api/tools/traffic-inspector/requests/{request_id}"
            )
            if resp.status_code == 200 and resp.json()["status"] != "in-flight":
                return dict(resp.json())
            await asyncio.sleep(0.05)
        raise AssertionError(f"no finished record for {request_id}")


async def start_duo(data_dir: Path) -> Duo:
    a = await FakeUpstream().start()
    b = await FakeUpstream().start()
    server, webapp = await start_server(
        data_dir, a, lanes=[], first_byte_timeout_s=TIMEOUT_S, idle_timeout_s=TIMEOUT_S
    )
    conn: dict[str, str] = {}
    for name, up in (("a", a), ("b", b)):
        for kind, (provider, path) in KINDS.items():
            conn[f"{kind}-{name}"] = await server.add_connection(
                f"{kind}-{name}",
                up.url + path,
                provider=provider,
                apiKey=f"sk-test-{kind}-{name}-0123456789",
            )
    dead = f"http://127.0.0.1:{_closed_port()}"
    for kind, (provider, path) in KINDS.items():
        conn[f"{kind}-dead"] = await server.add_connection(
            f"{kind}-dead", dead + path, provider=provider, apiKey="sk-x"
        )
    for kind in KINDS:
        for combo, first in ((f"duo-{kind}", "a"), (f"dead-{kind}", "dead")):
            nodes = [
                {"connectionId": conn[f"{kind}-{name}"], "model": f"m-{name}", "priority": i}
                for i, name in enumerate((first, "b"))
            ]
            body = {"name": combo, "strategy": "priority", "nodes": nodes}
            resp = await server.api("POST", "/api/combos", json=body)
            assert resp.status_code == 201, resp.text
    http = httpx.AsyncClient(timeout=30)
    return Duo(server, webapp, a, b, conn, http)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def duo_module(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Duo]:
    """One server per test module (starting one costs more than most fault cases); tests
    using it run on the module's event loop: ``pytestmark = DUO_LOOP``."""
    d = await start_duo(tmp_path_factory.mktemp("duo") / "data")
    try:
        yield d
    finally:
        await d.http.aclose()
        await d.webapp.done()
        await d.server.runtime.close()
        await d.a.close()
        await d.b.close()


@pytest.fixture
def duo(duo_module: Duo) -> Duo:
    """The module's server with fresh upstream scripts, breakers and timeouts."""
    d = duo_module
    d.a.reset()
    d.b.reset()
    d.server.runtime.guard.breakers.reset()
    d.server.runtime.router.timeouts = Timeouts(first_byte=TIMEOUT_S, idle=TIMEOUT_S)
    return d


DUO_LOOP = pytest.mark.asyncio(loop_scope="module")
