"""The HTTP contract beyond the happy path: 405s name what is allowed (RFC 9110)."""

from __future__ import annotations

from tests.web.harness import Server


async def test_405_carries_allow(server: Server) -> None:
    for method, path, allowed in [
        ("DELETE", "/api/settings", {"GET", "PATCH"}),
        ("PUT", "/api/providers", {"GET", "POST"}),
        ("GET", "/v1/chat/completions", {"POST"}),
    ]:
        resp = await server.api(method, path, headers={"Content-Type": "application/json"})
        assert resp.status_code == 405, (method, path, resp.text)
        assert resp.json()["error"]["type"] == "method_not_allowed"
        got = {m.strip() for m in resp.headers["Allow"].split(",")}
        assert allowed <= got, (path, got)
