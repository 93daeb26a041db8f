"""Bounded memory: a whole upstream reply past ``maxResponseMb`` is a clear 502 (not a process
that grows with whatever the upstream sends), and a streamed reply is not subject to it."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.settings import build
from tests.fakes.upstream import FakeUpstream, Reply
from tests.web.harness import start_server


def test_the_cap_is_a_setting_with_a_default() -> None:
    assert build(cli={"data_dir": Path("/tmp/x")}, env={}).max_response_mb == 32
    env = {"LLMTAP_MAX_RESPONSE_MB": "8"}
    assert build(cli={"data_dir": Path("/tmp/x")}, env=env).max_response_mb == 8


@pytest.mark.parametrize("path, body", [
    ("/v1/chat/completions", {"model": "oa/gpt-4o-mini"}),
    ("/v1/messages", {"model": "an/claude-sonnet-4", "max_tokens": 10}),
])  # fmt: skip
async def test_an_oversized_whole_reply_is_a_502_naming_the_limit(
    fake_upstream: FakeUpstream, tmp_path: Path, path: str, body: dict
) -> None:
    server, webapp = await start_server(
        tmp_path / "data", fake_upstream, lanes=["oa", "an"], max_response_mb=1
    )
    try:
        big = "x" * (3 << 20)  # 3 MiB of text in one whole reply
        fake_upstream.script(Reply.text(big), Reply.text("small"), Reply.text(big, chunks=[big]))
        msgs = {"messages": [{"role": "user", "content": "hi"}]}
        resp = await server.api("POST", path, json={**body, **msgs}, timeout=60)
        assert resp.status_code == 502, resp.text[:300]
        message = resp.json()["error"]["message"]
        assert "1 MiB" in message and "LLMTAP_MAX_RESPONSE_MB" in message
        ok = await server.api("POST", path, json={**body, **msgs}, timeout=60)
        assert ok.status_code == 200
        # a streamed reply is passed on as it comes, never held whole: no cap applies
        streamed = await server.api("POST", path, json={**body, **msgs, "stream": True}, timeout=60)
        assert streamed.status_code == 200 and len(streamed.content) > (3 << 20)
    finally:
        await webapp.done()
        await server.runtime.close()
