"""Two fake upstreams ("a" fails, "b" answers) behind a real llmtap server, for failover and
fault tests: one connection per provider kind on each upstream, and a priority combo per kind
that tries a first. Small first-byte and idle timeouts keep fault cases short."""

from __future__ import annotations

import asyncio
import json
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

    def hits(self, up: FakeUpstream) -> int:
        return sum(1 for r in up.requests if r.method == "POST")

    async def call(self, client: str, model: str, *, stream: bool) -> tuple[httpx.Response, str]:
        """One call; returns the response (status, headers) and the whole body text."""
        path, body = request_for(client, model, stream=stream)
        async with self.http.stream("POST", self.server.url + path, json=body) as resp:
            raw = (await resp.aread()).decode()
        return resp, raw

    async def last_log(self, *, after: int = 0) -> dict[str, Any]:
        """The newest call-log row once there are more than ``after`` rows (a streamed call
        is logged when its stream ends, just after the client read the last byte)."""
        writer = self.server.runtime.writer
        for _ in range(100):
            assert writer.flush(timeout=5)
            page = (
                await self.server.api("GET", "/api/usage/call-logs", params={"limit": 1})
            ).json()
            if page["total"] > after and page["logs"]:
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
            resp = await server.api(
                "POST",
                "/api/providers",
                json={
                    "provider": provider,
                    "name": f"{kind}-{name}",
                    "url": up.url + path,
                    "apiKey": f"sk-test-{kind}-{name}-0123456789",
                },
            )
            assert resp.status_code == 201, resp.text
            conn[f"{kind}-{name}"] = resp.json()["id"]
    for kind in KINDS:
        nodes = [
            {"connectionId": conn[f"{kind}-{n}"], "model": f"m-{n}", "priority": i}
            for i, n in enumerate("ab")
        ]
        body = {"name": f"duo-{kind}", "strategy": "priority", "nodes": nodes}
        resp = await server.api("POST", "/api/combos", json=body)
        assert resp.status_code == 201, resp.text
    http = httpx.AsyncClient(timeout=30)
    return Duo(server, webapp, a, b, conn, http)


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
