"""Inputs that used to answer 500 (or make state that can never work) are 400s in the error
envelope naming the field: lone surrogates, absurd nesting, out-of-range numbers, names that
cannot be routed to, paging past any integer SQLite holds."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.fakes.upstream import Reply
from tests.web.harness import Server

JSON = {"Content-Type": "application/json"}


def _fields(resp: httpx.Response) -> list[str]:
    assert resp.status_code == 400, resp.text
    err = resp.json()["error"]
    assert err["type"] == "invalid_request_error" and err["requestId"]
    return [d["field"] for d in err.get("details", [])]


async def test_lone_surrogate_is_a_400_naming_the_field(server: Server) -> None:
    server.upstream.script(Reply.text("never"))
    raw = b'{"model": "oa/gpt-4o-mini", "messages": [{"role": "user", "content": "a\\ud800b"}]}'
    resp = await server.api("POST", "/v1/chat/completions", content=raw, headers=JSON)
    assert "messages.0.content" in _fields(resp)
    assert server.upstream.requests == []
    raw_mgmt = b'{"provider": "openai", "url": "http://127.0.0.1:9/v1", "name": "x\\udfffy"}'
    assert "name" in _fields(
        await server.api("POST", "/api/providers", content=raw_mgmt, headers=JSON)
    )


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/api/providers", "/api/combos"])
async def test_deep_nesting_is_a_400(server: Server, path: str) -> None:
    depth = 50_000
    raw = ('{"model": ' + "[" * depth + "]" * depth + "}").encode()
    assert _fields(await server.api("POST", path, content=raw, headers=JSON)) == ["model"]
    raw_list = ("[" * depth + "]" * depth).encode()
    assert _fields(await server.api("POST", path, content=raw_list, headers=JSON)) == ["body"]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"priority": 1e30}, "priority"),
        ({"priority": 10**40}, "priority"),
        ({"priority": -(10**12)}, "priority"),
        ({"maxConcurrent": 10**30}, "maxConcurrent"),
        ({"name": "a/b"}, "name"),
        ({"name": "x" * 100_000}, "name"),
        ({"name": "tab\there"}, "name"),
        ({"models": ["m"] * 5 + ["x" * 5000]}, "models.5"),
    ],
)
async def test_provider_fields_have_ranges_and_charsets(
    server: Server, body: dict[str, Any], field: str
) -> None:
    base = {"provider": "openai", "url": "http://127.0.0.1:9/v1", "name": "ok"}
    resp = await server.api("POST", "/api/providers", json={**base, **body})
    assert field in _fields(resp)
    patch = await server.api("PATCH", f"/api/providers/{server.connection_ids['oa']}", json=body)
    assert field in _fields(patch)


@pytest.mark.parametrize(
    "change, field",
    [
        ({"name": "oa/gpt-4o-mini"}, "name"),  # would shadow conn/model and never be reached
        ({"name": "x" * 100_000}, "name"),
        ({"name": ""}, "name"),
        ({"nodes.weight": 1e308}, "nodes.0.weight"),
        ({"nodes.weight": -1}, "nodes.0.weight"),
        ({"nodes.priority": 1e30}, "nodes.0.priority"),
    ],
)
async def test_combo_fields_have_ranges_and_charsets(
    server: Server, change: dict[str, Any], field: str
) -> None:
    node: dict[str, Any] = {"connectionId": server.connection_ids["oa"], "model": "m"}
    body: dict[str, Any] = {"name": "fine", "strategy": "weighted", "nodes": [node]}
    for key, value in change.items():
        if key.startswith("nodes."):
            node[key.split(".", 1)[1]] = value
        else:
            body[key] = value
    assert field in _fields(await server.api("POST", "/api/combos", json=body))


@pytest.mark.parametrize(
    "body, field",
    [
        ({"cooldownSeconds": 1e308}, "cooldownSeconds"),
        ({"failureThreshold": 10**30}, "failureThreshold"),
        ({"failureThreshold": 0}, "failureThreshold"),
    ],
)
async def test_resilience_numbers_have_ranges(
    server: Server, body: dict[str, Any], field: str
) -> None:
    assert field in _fields(await server.api("PATCH", "/api/resilience", json=body))


@pytest.mark.parametrize(
    "query, field",
    [
        ({"offset": "1" * 40}, "offset"),
        ({"offset": "-1"}, "offset"),
        ({"limit": "1" * 40}, "limit"),
        ({"limit": "0"}, "limit"),
        ({"limit": "abc"}, "limit"),
    ],
)
async def test_paging_is_bounded(server: Server, query: dict[str, str], field: str) -> None:
    resp = await server.api("GET", "/api/usage/call-logs", params=query)
    assert _fields(resp) == [field]
    ok = await server.api("GET", "/api/usage/call-logs", params={"limit": "1000", "offset": "0"})
    assert ok.status_code == 200
