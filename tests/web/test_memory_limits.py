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


async def test_a_large_request_body_is_held_once_and_let_go(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    """A 30 MB request: the body is read into one buffer (aiohttp's ``request.read()`` made a
    second copy and cached it on the request, which the keep-alive connection holds until its
    next request), and nothing of llmtap keeps the request once the call is over (the
    resolver kept the last request's token estimate, and with it the whole parsed request;
    the live buffer's record kept the whole prompt in its conversation and upstream body)."""
    import gc
    import json
    import tracemalloc

    import httpx

    server, webapp = await start_server(
        tmp_path / "data", fake_upstream, lanes=["oa"], max_request_mb=64
    )
    errors_py = str(Path(__file__).parents[2] / "web" / "errors.py")
    read_body = tracemalloc.Filter(True, errors_py, all_frames=True)
    try:
        text = "word " * (6 << 20)
        body = json.dumps(
            {"model": "oa/gpt-4o-mini", "messages": [{"role": "user", "content": text}]}
        )
        raw = body.encode()
        del text, body
        fake_upstream.script(Reply.text("ok"))
        async with httpx.AsyncClient(base_url=server.url, timeout=120) as client:
            gc.collect()
            tracemalloc.start(40)
            try:
                resp = await client.post(
                    "/v1/chat/completions",
                    content=raw,
                    headers={"Content-Type": "application/json"},
                )
                assert resp.status_code == 200, resp.text[:300]
                _current, peak = tracemalloc.get_traced_memory()
                gc.collect()
                snapshot = tracemalloc.take_snapshot()
            finally:
                tracemalloc.stop()
            # The keep-alive connection is still open here: the server still holds its request.
            # Nothing the edge read or parsed is still alive: neither the raw bytes nor the
            # parsed text (the inspector's record held the text whole in its conversation and
            # upstream body; recording now cuts strings to the body cap first).
            via_edge = snapshot.filter_traces([read_body])
            kept = sum(stat.size for stat in via_edge.statistics("filename"))
            assert kept < len(raw) // 10, f"{kept >> 20} MiB of a {len(raw) >> 20} MiB body kept"
            assert (await client.get("/v1/models")).status_code == 200
        router = server.runtime.router
        estimate = router.resolver._estimate  # the resolver's per-plan state is reset
        assert getattr(estimate, "__closure__", None) is None
        assert peak > len(raw)  # the measure saw the call at all
    finally:
        await webapp.done()
        await server.runtime.close()
