"""The router API (/v1) cannot be driven by a web page: DNS rebinding (a foreign Host), a
cross-site "simple" POST (foreign Origin, text/plain or form body) and a non-loopback listener
without router API keys are refused. The SDK lanes (tests/web/test_v1_lanes.py) still pass."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from router.errors import BadRequest
from router.settings import build
from tests.fakes.upstream import FakeUpstream, Reply
from tests.web.harness import Server, start_server
from web.security import HOP_HEADER, HOP_SECRET

# Every POST path that spends provider keys, the Cloud Code envelope and the /api aliases too.
ROUTER_POSTS = (
    "/v1/chat/completions",
    "/v1/messages",
    "/v1/responses",
    "/v1internal:generateContent",
    "/v1internal:streamGenerateContent",
    "/api/v1internal:generateContent",
    "/api/v1/chat/completions",
)
CHAT = {"model": "oa/gpt-4o-mini", "messages": [{"role": "user", "content": "spend"}]}


async def _calls(server: Server) -> int:
    return len(server.upstream.requests)


async def test_dns_rebinding_request_is_refused(server: Server) -> None:
    server.upstream.script(Reply.text("should not be sent"))
    async with httpx.AsyncClient(base_url=server.url) as client:
        for path in ROUTER_POSTS:
            resp = await client.post(path, json=CHAT, headers={"Host": "evil.example"})
            assert resp.status_code == 403, resp.text
            err = resp.json()["error"]
            assert err["type"] == "permission_error" and err["requestId"]
        models = await client.get("/v1/models", headers={"Host": "evil.example:20128"})
        assert models.status_code == 403
    assert await _calls(server) == 0


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example", "Content-Type": "text/plain"},
        {"Origin": "https://evil.example", "Content-Type": "application/x-www-form-urlencoded"},
        {"Origin": "https://evil.example", "Content-Type": "application/json"},
        {"Origin": "null", "Content-Type": "text/plain"},
        {"Content-Type": "text/plain"},  # an old browser that sends no Origin
        {"Content-Type": "multipart/form-data; boundary=x"},
        {"Sec-Fetch-Site": "cross-site", "Content-Type": "application/json"},
    ],
)
async def test_cross_site_simple_post_is_refused(server: Server, headers: dict[str, str]) -> None:
    server.upstream.script(Reply.text("should not be sent"))
    raw = httpx.Request("POST", "/", json=CHAT).content
    async with httpx.AsyncClient(base_url=server.url) as client:
        for path in ROUTER_POSTS:
            resp = await client.post(path, content=raw, headers=headers)
            assert resp.status_code in (403, 415), (path, headers, resp.text)
            assert resp.json()["error"]["requestId"]
    assert await _calls(server) == 0


async def test_same_origin_page_and_sdks_still_work(server: Server) -> None:
    server.upstream.script(Reply.text("one"), Reply.text("two"))
    async with httpx.AsyncClient(base_url=server.url) as client:
        sdk_like = await client.post("/v1/chat/completions", json=CHAT)
        assert sdk_like.status_code == 200, sdk_like.text
        own_page = await client.post(
            "/v1/chat/completions", json=CHAT, headers={"Origin": server.url}
        )
        assert own_page.status_code == 200, own_page.text
        charset = await client.post(
            "/v1/chat/completions",
            content=httpx.Request("POST", "/", json=CHAT).content,
            headers={"Content-Type": "application/json; charset=utf-8", "Host": "localhost"},
        )
        assert charset.status_code == 200, charset.text


async def test_the_hop_secret_is_the_one_exception(server: Server) -> None:
    server.upstream.script(Reply.text("diverted"))
    async with httpx.AsyncClient(base_url=server.url) as client:
        forged = await client.post(
            "/v1/chat/completions", json=CHAT,
            headers={"Host": "api.openai.com", HOP_HEADER: HOP_SECRET[:-1] + "x"},
        )  # fmt: skip
        assert forged.status_code == 403
        hop = await client.post(
            "/v1/chat/completions", json=CHAT,
            headers={"Host": "api.openai.com", HOP_HEADER: HOP_SECRET},
        )  # fmt: skip
        assert hop.status_code == 200, hop.text


def test_non_loopback_listener_needs_router_api_keys(tmp_path: Path) -> None:
    for host in ("0.0.0.0", "::", "192.0.2.10", "example.internal", ""):
        with pytest.raises(BadRequest) as info:
            build(cli={"data_dir": tmp_path, "host": host}, env={})
        assert "requireApiKey" in info.value.message or any(
            "requireApiKey" in d.message for d in info.value.details
        )
        assert build(cli={"data_dir": tmp_path, "host": host, "require_api_key": True}, env={})
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.5"):
        assert build(cli={"data_dir": tmp_path, "host": host}, env={}).host == host


async def test_keys_off_is_refused_while_exposed(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    server, webapp = await start_server(
        tmp_path / "data", fake_upstream, lanes=[], host="0.0.0.0", require_api_key=True
    )
    try:
        resp = await server.api("PATCH", "/api/settings", json={"requireApiKey": False})
        assert resp.status_code == 400, resp.text
        assert "requireApiKey" in resp.text
        assert server.runtime.settings.require_api_key is True
    finally:
        await webapp.done()
        await server.runtime.close()
