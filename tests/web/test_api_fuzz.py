"""Property-based: random JSON bodies (wrong types, unknown fields, near-valid bodies) sent to
every POST/PATCH management endpoint of the generated OpenAPI spec never produce a 500."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.web.harness import Server

MANAGED = re.compile(r"^/api/(providers|keys|combos|models|fallback|resilience|pricing|settings)")

JSON = {"Content-Type": "application/json"}
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=16),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def near_valid(server: Server) -> dict[str, dict[str, Any]]:
    """A valid body per endpoint, for mutating one field at a time (reaches the deeper checks)."""
    oa = server.connection_ids["oa"]
    node = {"connectionId": oa, "model": "m", "weight": 1, "priority": 0}
    return {
        "/api/providers": {"provider": "openai", "url": "http://127.0.0.1:9/v1", "name": "fz"},
        "/api/keys": {"label": "fuzz"},
        "/api/combos": {"name": "fz", "strategy": "priority", "nodes": [node]},
        "/api/combos/test": {"model": "oa/m"},
        "/api/models/alias": {"alias": "fz", "target": "oa/m"},
        "/api/fallback/chains": {"model": "fz", "chain": [{"provider": "oa"}]},
        "/api/resilience": {"failureThreshold": 3},
        "/api/pricing": {"model": "fz", "input": 1, "output": 2},
        "/api/settings": {"bufferSize": 10},
    }


def bodies(props: list[str], valid: dict[str, Any] | None) -> st.SearchStrategy[Any]:
    keys = st.sampled_from(props) | st.text(max_size=12) if props else st.text(max_size=12)
    random_obj = st.dictionaries(keys, json_values, max_size=6)
    options = [random_obj, json_values]
    if valid:
        options.append(
            st.tuples(st.sampled_from(sorted(valid)) | keys, json_values).map(
                lambda kv: {**valid, kv[0]: kv[1]}
            )
        )
    return st.one_of(*options)


def never_500(client: httpx.Client, method: str, url: str, strategy: st.SearchStrategy[Any]) -> Any:
    @settings(max_examples=40, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
    @given(body=strategy)
    def check(body: Any) -> None:
        # json.dumps, not httpx's json=: it also sends NaN/Infinity literals, which Python's
        # parser on the server side accepts.
        raw = json.dumps(body).encode()
        resp = client.request(method, url, content=raw, headers=JSON)
        assert resp.status_code < 500, (method, url, body, resp.text)
        if resp.status_code >= 400:
            assert "error" in resp.json()

    return check


async def test_management_api_never_answers_500(server: Server) -> None:
    spec = (await server.api("GET", "/api/openapi/spec")).json()
    schemas = spec["components"]["schemas"]
    combo = await server.api(
        "POST",
        "/api/combos",
        json={
            "name": "base",
            "strategy": "priority",
            "nodes": [{"connectionId": server.connection_ids["oa"], "model": "m"}],
        },
    )
    key = await server.api("POST", "/api/keys", json={"label": "base"})
    ids = {"id": combo.json()["id"]}
    token = server.runtime.management_token()
    valid = near_valid(server)

    targets: list[tuple[str, str, str, list[str]]] = []
    for path, item in spec["paths"].items():
        if not MANAGED.match(path):
            continue
        for method, op in item.items():
            content = op.get("requestBody", {}).get("content", {}).get("application/json")
            if method not in ("post", "patch", "put") or content is None:
                continue
            ref = content["schema"].get("$ref", "")
            props = list(schemas.get(ref.rsplit("/", 1)[-1], {}).get("properties", {}))
            concrete = path.replace("{id}", ids["id"])
            if path.startswith("/api/keys/"):
                concrete = path.replace("{id}", key.json()["id"])
            elif path.startswith("/api/providers/"):
                concrete = path.replace("{id}", server.connection_ids["ge"])
            targets.append((method.upper(), concrete, path, props))
    assert len(targets) >= 12, targets  # every write endpoint of the management API

    def run() -> None:
        with httpx.Client(
            base_url=server.url, headers={"X-Llmtap-Token": token}, timeout=30
        ) as client:
            for method, url, path, props in targets:
                never_500(client, method, url, bodies(props, valid.get(path)))()

    await asyncio.to_thread(run)
