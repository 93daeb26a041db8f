"""The router end of the divert hop: internal headers count only with this process's secret
(then the router key is not required, the call keeps the capture's id and takes the mapping),
are stripped from what the router forwards, and Cloud Code's v1internal is served inbound."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from router.bridge.divert import Hop
from tests.fakes.upstream import FakeUpstream, Reply
from tests.web.harness import Server, start_server
from web.security import HOP_SECRET


@pytest.fixture
async def keyed(fake_upstream: FakeUpstream, tmp_path: Path) -> AsyncIterator[Server]:
    srv, webapp = await start_server(tmp_path / "data", fake_upstream, require_api_key=True)
    try:
        yield srv
    finally:
        await webapp.done()
        await srv.runtime.close()


BODY = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 32,
    "messages": [{"role": "user", "content": "hi"}],
}


async def test_hop_with_the_secret_is_routed_with_the_mapping(keyed: Server) -> None:
    secret = HOP_SECRET
    hop = Hop("claude-code", "agent-bridge", "capture-record-1", "oa/gpt-4o-mini", "high")
    keyed.upstream.script(Reply.text("mapped"))
    resp = await keyed.api("POST", "/v1/messages", json=BODY, headers=hop.headers(secret))
    assert resp.status_code == 200, resp.text
    assert resp.json()["content"][0]["text"] == "mapped"  # still the agent's own format
    assert resp.headers["x-omniroute-request-id"] == "capture-record-1"
    sent = keyed.upstream.requests[-1]
    assert sent.path.endswith("/chat/completions")
    assert sent.json["model"] == "gpt-4o-mini"
    assert sent.json["reasoning_effort"] == "high"
    assert not [h for h in sent.headers if h.startswith("x-llmtap-hop")]


async def test_hop_headers_without_the_secret_count_for_nothing(keyed: Server) -> None:
    hop = Hop("claude-code", "agent-bridge", "forged", "oa/gpt-4o-mini")
    resp = await keyed.api("POST", "/v1/messages", json=BODY, headers=hop.headers("guessed"))
    assert resp.status_code == 401  # the router key is still required
    assert keyed.upstream.requests == []


async def test_cloudcode_inbound(server: Server) -> None:
    body = {
        "model": server.model("an"),
        "project": "p-1",
        "request": {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
    }
    server.upstream.script(Reply.text("from claude"))
    resp = await server.api("POST", "/v1internal:generateContent", json=body)
    assert resp.status_code == 200, resp.text
    data = resp.json()
    assert data["response"]["candidates"][0]["content"]["parts"][0]["text"] == "from claude"
    server.upstream.script(Reply.text("streamed", chunks=["stre", "amed"]))
    resp = await server.api("POST", "/v1internal:streamGenerateContent?alt=sse", json=body)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/event-stream")
    assert '"response"' in resp.text and "amed" in resp.text
