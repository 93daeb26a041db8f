"""The divert path end to end, real processes on loopback: an agent's own call, sent to the
agent's DEFAULT host through the HTTP proxy or straight at the AgentBridge with SNI = that
host, is answered by the router from a fake upstream of another wire format when a mapping
applies (streamed back in the agent's format), and reaches a TLS fake "real origin" resolved
through a loopback DNS server when none does. One record per call, with the mapping on it."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from router.store import agents as store_agents
from router.store import db as store_db
from tests.addons.agentstack import AGENT_HOSTS, Stack, divert_up, dns, stack
from tests.addons.proc import Llmtap, free_port
from tests.addons.test_http_proxy import ca_file, records
from tests.fakes.fixtures import tls_cert_for
from tests.fakes.upstream import FakeUpstream, Reply
from tests.router.bridge.dnsfake import FakeDns

__all__ = ["dns", "stack"]  # the fixtures, imported for this module's tests

WORDS = ["alpha ", "beta ", "gamma ", "delta"]


@dataclass(frozen=True)
class Case:
    """One divertable wire format, as its agent sends it to its default host."""

    agent: str
    host: str
    path: str
    fmt: str
    target: str  # a provider of ANOTHER wire format answers

    def body(self, stream: bool) -> dict[str, Any]:
        prompt = "say hi"
        if self.fmt == "anthropic":
            return {
                "model": "claude-sonnet-4-5",
                "max_tokens": 64,
                "stream": stream,
                "messages": [{"role": "user", "content": prompt}],
            }
        if self.fmt == "responses":
            return {"model": "gpt-5-codex", "input": prompt, "stream": stream}
        if self.fmt == "openai-chat":
            return {
                "model": "gpt-4.1",
                "stream": stream,
                "messages": [{"role": "user", "content": prompt}],
            }
        return {  # cloudcode: the Gemini request inside the v1internal envelope
            "model": "gemini-2.5-pro",
            "project": "p-123",
            "request": {"contents": [{"role": "user", "parts": [{"text": prompt}]}]},
        }

    def url_path(self, stream: bool) -> str:
        if self.fmt == "cloudcode":
            return "/v1internal:streamGenerateContent?alt=sse" if stream else self.path
        return self.path

    @property
    def source_model(self) -> str:
        return str(self.body(False)["model"])


CASES = [
    Case("claude-code", "api.anthropic.com", "/v1/messages", "anthropic", "fo/gpt-4o-mini"),
    Case("codex", "chatgpt.com", "/backend-api/codex/responses", "responses", "fa/claude-x"),
    Case("copilot", "api.githubcopilot.com", "/chat/completions", "openai-chat", "fa/claude-x"),
    Case(
        "antigravity",
        "cloudcode-pa.googleapis.com",
        "/v1internal:generateContent",
        "cloudcode",
        "fo/gpt-4o-mini",
    ),
]


def reply_text(fmt: str, body: dict[str, Any]) -> str:
    """The answer's text, read the way the agent's own client reads its format."""
    if fmt == "anthropic":
        return "".join(b.get("text", "") for b in body["content"])
    if fmt == "responses":
        return "".join(
            c.get("text", "")
            for item in body["output"]
            if item.get("type") == "message"
            for c in item["content"]
        )
    if fmt == "openai-chat":
        return str(body["choices"][0]["message"]["content"])
    inner = body.get("response", body)
    return "".join(p.get("text", "") for p in inner["candidates"][0]["content"]["parts"])


def stream_text(fmt: str, raw: str) -> str:
    """Concatenate the text deltas of an SSE answer in the agent's format."""
    out: list[str] = []
    for line in raw.splitlines():
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if not data or data == "[DONE]":
            continue
        ev = json.loads(data)
        if fmt == "anthropic" and ev.get("type") == "content_block_delta":
            out.append(ev["delta"].get("text", ""))
        elif fmt == "responses" and ev.get("type") == "response.output_text.delta":
            out.append(ev["delta"])
        elif fmt == "openai-chat" and ev.get("choices"):
            out.append(ev["choices"][0].get("delta", {}).get("content") or "")
        elif fmt == "cloudcode":
            inner = ev.get("response", ev)
            for cand in inner.get("candidates", []):
                out.extend(p.get("text", "") for p in cand.get("content", {}).get("parts", []))
    return "".join(out)


# --------------------------------------------------------------------------- set-up


def proxy_client(app: Llmtap) -> httpx.AsyncClient:
    """An agent configured with HTTPS_PROXY and llmtap's CA (what `llmtap run` sets up)."""
    ctx = ssl.create_default_context(cafile=str(ca_file(app)))
    return httpx.AsyncClient(proxy=f"http://127.0.0.1:{app.proxy_port}", verify=ctx, timeout=30)


class HostsFileResolver(AbstractResolver):
    """What the hosts-file lines do for a real agent: its hosts resolve to loopback."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(
                hostname=host, host="127.0.0.1", port=port, family=socket.AF_INET, proto=0, flags=0
            )
        ]

    async def close(self) -> None:
        return None


def bridge_session(cafile: Path) -> aiohttp.ClientSession:
    ctx = ssl.create_default_context(cafile=str(cafile))
    connector = aiohttp.TCPConnector(ssl=ctx, resolver=HostsFileResolver())
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30))


async def call_via_proxy(
    app: Llmtap, case: Case, stream: bool
) -> tuple[int, dict[str, str], str, list[float]]:
    arrivals: list[float] = []
    chunks: list[str] = []
    async with (
        proxy_client(app) as http,
        http.stream(
            "POST",
            f"https://{case.host}{case.url_path(stream)}",
            json=case.body(stream),
            headers={"authorization": "Bearer agent-own-token-0123456789"},
        ) as resp,
    ):
        async for chunk in resp.aiter_text():
            arrivals.append(time.monotonic())
            chunks.append(chunk)
        return resp.status_code, dict(resp.headers), "".join(chunks), arrivals


async def call_via_bridge(
    port: int, cafile: Path, case: Case, stream: bool
) -> tuple[int, dict[str, str], str, list[float]]:
    arrivals: list[float] = []
    chunks: list[str] = []
    async with (
        bridge_session(cafile) as session,
        session.post(
            f"https://{case.host}:{port}{case.url_path(stream)}",
            json=case.body(stream),
            # an agent that resolved its host to us still names its host, without our port
            headers={"Host": case.host, "x-api-key": "agent-own-key-0123456789"},
        ) as resp,
    ):
        async for chunk in resp.content.iter_any():
            arrivals.append(time.monotonic())
            chunks.append(chunk.decode())
        return resp.status, dict(resp.headers), "".join(chunks), arrivals


def final_records(app: Llmtap, host: str, count: int, timeout: float = 20) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = [r for r in records(app) if r["host"] == host and r["status"] != "in-flight"]
        if len(got) >= count:
            return got
        time.sleep(0.1)
    raise AssertionError(f"expected {count} final records for {host}: {records(app)}")


def check_answer(case: Case, stream: bool, status: int, headers: dict, text: str) -> None:
    assert status == 200, text
    content_type = {k.lower(): v for k, v in headers.items()}["content-type"]
    if stream:
        assert "text/event-stream" in content_type
        assert stream_text(case.fmt, text) == "".join(WORDS), text
    else:
        assert "application/json" in content_type
        assert reply_text(case.fmt, json.loads(text)) == "".join(WORDS), text


def check_diverted(stack: Stack, case: Case, stream: bool, rec: dict, source: str) -> None:
    assert rec["source"] == source
    assert rec["agent"] == case.agent
    assert rec["sourceModel"] == case.source_model
    assert rec["mappedModel"] == case.target
    assert rec["host"] == case.host and rec["path"] == case.url_path(stream)
    assert rec["status"] == 200
    assert rec["llm"] is not None and rec["llm"]["streamed"] is stream
    # The hop's internal headers and the agent's own credentials never reach a record.
    dumped = json.dumps(rec)
    assert "x-llmtap-hop" not in dumped
    assert "agent-own" not in dumped
    # The fake upstream of the other format answered, with the mapped model.
    sent = stack.upstream.requests[-1]
    target_model = case.target.split("/", 1)[1]
    assert sent.json["model"] == target_model
    assert ("/messages" in sent.path) == case.target.startswith("fa/")
    # The agent's credentials for its own provider never went to another provider.
    assert "agent-own" not in json.dumps(dict(sent.headers))


# --------------------------------------------------------------------------- divert


async def test_proxy_divert_every_format_stream_and_not(stack: Stack) -> None:
    for case in CASES:
        stack.map(case.agent, [("*", case.target)])
    for case in CASES:
        for stream in (False, True):
            stack.upstream.script(Reply.text("".join(WORDS), chunks=WORDS))
            status, headers, text, _ = await call_via_proxy(stack.app, case, stream)
            check_answer(case, stream, status, headers, text)
            recs = final_records(stack.app, case.host, 2 if stream else 1)
            rec = next(r for r in recs if r["path"] == case.url_path(stream) and
                       r["llm"]["streamed"] is stream)  # fmt: skip
            check_diverted(stack, case, stream, rec, "http-proxy")
    # One record per call: the router hop made no record of its own.
    all_recs = records(stack.app)
    assert len(all_recs) == 2 * len(CASES)
    assert not [r for r in all_recs if r["source"] == "router"]
    assert stack.origin.requests == []  # nothing reached the real origins
    assert stack.detected("claude-code", 2) == [
        {"model": "claude-sonnet-4-5", "count": 2, "mappedTo": "fo/gpt-4o-mini"}
    ]


async def test_bridge_divert_every_format_stream_and_not(stack: Stack) -> None:
    for case in CASES:
        stack.map(case.agent, [("*", case.target)])
    cafile = ca_file(stack.app)
    for case in CASES:
        for stream in (False, True):
            stack.upstream.script(Reply.text("".join(WORDS), chunks=WORDS))
            status, headers, text, _ = await call_via_bridge(
                stack.bridge_port, cafile, case, stream
            )
            check_answer(case, stream, status, headers, text)
            recs = final_records(stack.app, case.host, 2 if stream else 1)
            rec = next(r for r in recs if r["llm"]["streamed"] is stream)
            check_diverted(stack, case, stream, rec, "agent-bridge")
    assert len(records(stack.app)) == 2 * len(CASES)
    assert stack.origin.requests == []
    state = stack.app.api("GET", "/api/tools/traffic-inspector/capture-modes").json()
    assert state["agentBridge"] == {"active": True, "port": stack.bridge_port}


async def test_bridge_streams_token_by_token_with_the_routers_status(stack: Stack) -> None:
    case = CASES[0]
    stack.map(case.agent, [("claude-sonnet-4-5", case.target)])
    stack.upstream.script(Reply.text("".join(WORDS), chunks=WORDS, chunk_delay=0.3))
    status, _, text, arrivals = await call_via_bridge(
        stack.bridge_port, ca_file(stack.app), case, True
    )
    assert status == 200 and stream_text(case.fmt, text) == "".join(WORDS)
    # Four deltas 0.3 s apart: a buffering hop would hand them over in one piece at the end.
    assert len(arrivals) >= 3 and arrivals[-1] - arrivals[0] > 0.5
    # The router's own error status comes back as it is (no forced 200): an upstream 429.
    stack.upstream.script(Reply.error(429, "slow down"))
    status, headers, text, _ = await call_via_bridge(
        stack.bridge_port, ca_file(stack.app), case, False
    )
    assert status == 429, text
    assert "x-omniroute-request-id" in {k.lower() for k in headers}


async def test_mapping_is_read_live_exact_before_star(stack: Stack) -> None:
    case = CASES[0]
    cafile = ca_file(stack.app)
    # No mapping yet: passthrough to the real origin (DNS-resolved, certificate verified).
    stack.origin.script(Reply.text("from the real origin"))
    status, _, text, _ = await call_via_bridge(stack.bridge_port, cafile, case, False)
    assert status == 200 and reply_text("anthropic", json.loads(text)) == "from the real origin"
    assert len(stack.origin.requests) == 1
    assert stack.origin.requests[0].headers.get("x-api-key") == "agent-own-key-0123456789"
    assert stack.dns.queries[(case.host, "A")] >= 1
    # A mapping written now applies to the very next call; exact beats '*'.
    stack.map(case.agent, [("*", "fa/claude-x"), (case.source_model, "fo/gpt-4o-mini")])
    stack.upstream.script(Reply.text("".join(WORDS)))
    status, _, text, _ = await call_via_bridge(stack.bridge_port, cafile, case, False)
    assert status == 200 and reply_text("anthropic", json.loads(text)) == "".join(WORDS)
    assert stack.upstream.requests[-1].json["model"] == "gpt-4o-mini"
    recs = final_records(stack.app, case.host, 2)
    mapped = {r["mappedModel"] for r in recs}
    assert mapped == {None, "fo/gpt-4o-mini"}
    assert {r["source"] for r in recs} == {"agent-bridge"}


async def test_proxy_unmapped_and_non_chat_paths_pass_through(stack: Stack) -> None:
    case = CASES[0]
    stack.map(case.agent, [("some-other-model", "fo/gpt-4o-mini")])
    stack.origin.script(Reply.text("origin says hi"))
    status, _, text, _ = await call_via_proxy(stack.app, case, False)
    assert status == 200 and reply_text("anthropic", json.loads(text)) == "origin says hi"
    # count_tokens is on the agent's host but not a chat path: the origin answers it too.
    async with proxy_client(stack.app) as http:
        r = await http.post(
            f"https://{case.host}/v1/messages/count_tokens",
            json={"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "x"}]},
        )
    assert r.status_code == 200
    assert [q.path for q in stack.origin.requests] == [
        "/v1/messages",
        "/v1/messages/count_tokens",
    ]
    assert stack.upstream.requests == []
    recs = final_records(stack.app, case.host, 2)
    assert {r["agent"] for r in recs} == {"claude-code"}
    assert all(r["mappedModel"] is None for r in recs)


async def test_bridge_bypass_is_tunnelled_undecrypted(tmp_path: Path, dns: FakeDns) -> None:
    origin_tls = tls_cert_for(tmp_path, hosts=AGENT_HOSTS, name="origin")
    # A user bypass pattern in the store before start (the API edits it at runtime).
    data = tmp_path / "data"
    data.mkdir()
    store_db.open_database(data / "llmtap.db")
    try:
        store_agents.replace_bypass(["*.githubcopilot.com"])
    finally:
        store_db.close_database()
    async with FakeUpstream(ssl_context=origin_tls.server_context()) as origin:
        args = ("--upstream-ca", str(origin_tls.ca_pem))
        with divert_up(tmp_path, dns, *args, origin_port=origin.port, data_dir=data) as running:
            app, bridge_port = running
            case = CASES[2]  # copilot
            origin.script(Reply.text("untouched"))
            # The client trusts only the ORIGIN's CA: it works only if nothing was decrypted.
            status, _, text, _ = await call_via_bridge(bridge_port, origin_tls.ca_pem, case, False)
            assert status == 200 and reply_text(case.fmt, json.loads(text)) == "untouched"
            assert len(origin.requests) == 1
            # And with llmtap's CA alone the handshake fails: it is the origin's certificate.
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                await call_via_bridge(bridge_port, ca_file(app), case, False)
            await asyncio.sleep(0.2)
            assert not [r for r in records(app) if r["host"] == case.host and r["method"] == "POST"]


async def test_bridge_passthrough_loop_is_508(tmp_path: Path, dns: FakeDns) -> None:
    bridge_port = free_port()
    # The DNS answer for the agent's host is loopback, and the origin port is our own
    # listener: a real origin that is llmtap itself.
    with divert_up(tmp_path, dns, origin_port=bridge_port, bridge_port=bridge_port) as (app, _):
        status, _, text, _ = await call_via_bridge(bridge_port, ca_file(app), CASES[0], False)
        assert status == 508, text
        assert json.loads(text)["error"]["code"] == "loop_detected"
