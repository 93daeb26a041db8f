"""/api/resilience, /api/monitoring/health, /api/settings and /api/openapi/spec."""

from __future__ import annotations

import re
from typing import Any

import pytest

from router.settings import MUTABLE
from tests.web.harness import Server
from tests.web.manage import assert_error
from web.app import create_app

# --------------------------------------------------------------------------- resilience


async def test_resilience_get_patch_applies_and_persists(server: Server) -> None:
    current = (await server.api("GET", "/api/resilience")).json()
    assert current["failureThreshold"] == 5 and current["cooldownSeconds"] == 30.0

    resp = await server.api(
        "PATCH", "/api/resilience", json={"failureThreshold": 2, "cooldownSeconds": 5}
    )
    assert resp.status_code == 200, resp.text
    assert resp.json() == current | {"failureThreshold": 2, "cooldownSeconds": 5.0}
    breakers = server.runtime.guard.breakers
    assert breakers.settings.failure_threshold == 2  # applied to the running breakers
    from router.store import config as store_config

    assert store_config.get_resilience()["failureThreshold"] == 2  # and stored


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"failureThreshold": 0}, "failureThreshold"),
        ({"failureThreshold": "many"}, "failureThreshold"),
        ({"cooldownSeconds": -1}, "cooldownSeconds"),
        ({"halfOpenProbes": 2}, "halfOpenProbes"),
        ({"cooldownSeconds": 900, "maxCooldownSeconds": 60}, "body"),
    ],
)
async def test_bad_resilience_changes_nothing(
    server: Server, body: dict[str, Any], field: str
) -> None:
    before = (await server.api("GET", "/api/resilience")).json()
    resp = await server.api("PATCH", "/api/resilience", json=body)
    assert resp.status_code == 400, resp.text
    if field != "body":  # the cross-field rule has no single field
        assert_error(resp, 400, field)
    assert (await server.api("GET", "/api/resilience")).json() == before


async def test_reset_closes_breakers(server: Server) -> None:
    conn = server.connection_ids["oa"]
    breakers = server.runtime.guard.breakers
    for _ in range(breakers.settings.failure_threshold):
        breakers.on_failure(conn, True)
    health = (await server.api("GET", "/api/monitoring/health")).json()
    assert health["breakers"][conn]["state"] == "open"
    resp = await server.api("POST", "/api/resilience/reset", json={})
    assert resp.status_code == 200 and resp.json()["reset"] >= 1
    assert breakers.state(conn).value == "closed"


# --------------------------------------------------------------------------- health


async def test_health(server: Server) -> None:
    data = (await server.api("GET", "/api/monitoring/health")).json()
    assert data["status"] == "ok" and data["version"]
    assert data["uptimeSeconds"] >= 0 and data["memory"]["rssBytes"] > 0
    listeners = {item["name"]: item for item in data["listeners"]}
    port = int(server.url.rsplit(":", 1)[1])
    assert listeners["api"] == {"name": "api", "host": "127.0.0.1", "port": port, "active": True}
    assert {"httpProxy", "agentBridge"} <= set(listeners)


# --------------------------------------------------------------------------- settings


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


async def test_settings_get_patch_applied_and_stored(server: Server) -> None:
    data = (await server.api("GET", "/api/settings")).json()
    assert set(data) == {camel(n) for n in MUTABLE} | {"pendingRestart"}
    assert data["requireApiKey"] is False and data["bufferSize"] == 1000
    assert data["pendingRestart"] == []

    resp = await server.api("PATCH", "/api/settings", json={"bufferSize": 50, "guardMinutes": 5})
    assert resp.status_code == 200
    assert resp.json() == data | {"bufferSize": 50, "guardMinutes": 5}
    settings = server.runtime.settings
    assert (settings.buffer_size, settings.guard_minutes) == (50, 5)
    from router.store import config as store_config

    assert store_config.get_settings() == {"buffer_size": 50, "guard_minutes": 5}


async def test_buffer_settings_take_effect_at_once(server: Server) -> None:
    """Not an echo: the live buffer holds at most the new size, and cuts bodies at the new
    cap, from the moment the PATCH returns."""
    from tests.router.traffic.factory import make_record

    inspector = server.runtime.inspector
    for n in range(8):
        inspector.add(make_record(n))
    assert len(inspector.buffer) == 8
    resp = await server.api("PATCH", "/api/settings", json={"bufferSize": 3, "maxBodyKb": 1})
    assert resp.status_code == 200 and resp.json()["pendingRestart"] == []
    assert len(inspector.list()) == 3
    cut = inspector.add(make_record(9, response_body="a b " * 1000))
    assert cut.body_truncated and len((cut.response_body or "").encode()) <= 1024
    assert len(inspector.list()) == 3


async def test_settings_a_restart_applies_are_marked(server: Server) -> None:
    """The request size cap belongs to the HTTP server and the AgentBridge port to a listener
    bound at start: a change is stored and reported as waiting for a restart, and going back
    to the running value clears the mark."""
    running = server.runtime.settings.max_request_mb
    resp = await server.api("PATCH", "/api/settings", json={"maxRequestMb": running + 1})
    assert resp.status_code == 200
    assert resp.json()["pendingRestart"] == ["maxRequestMb"]
    assert (await server.api("GET", "/api/settings")).json()["pendingRestart"] == ["maxRequestMb"]
    resp = await server.api("PATCH", "/api/settings", json={"maxRequestMb": running})
    assert resp.json()["pendingRestart"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"bufferSize": "big"}, "bufferSize"),
        ({"bufferSize": 0}, "bufferSize"),
        ({"proxyPort": 70000}, "proxyPort"),
        ({"requireApiKey": None}, "requireApiKey"),
        ({"host": "0.0.0.0"}, "host"),
        ({"guardMinutes": 10, "nonsense": 1}, "nonsense"),
        ({"buffer_size": 10}, "buffer_size"),
    ],
)
async def test_bad_settings_write_nothing(server: Server, body: dict[str, Any], field: str) -> None:
    before = (await server.api("GET", "/api/settings")).json()
    assert_error(await server.api("PATCH", "/api/settings", json=body), 400, field)
    assert (await server.api("GET", "/api/settings")).json() == before
    from router.store import config as store_config

    assert store_config.get_settings() == {}


# --------------------------------------------------------------------------- OpenAPI


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        out = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return out + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


async def test_openapi_spec_is_structurally_valid_and_complete(server: Server) -> None:
    resp = await server.api("GET", "/api/openapi/spec")
    assert resp.status_code == 200
    spec = resp.json()
    assert spec["openapi"] == "3.1.0" and spec["info"]["title"] and spec["info"]["version"]
    schemas = spec["components"]["schemas"]
    op_ids: list[str] = []
    for path, item in spec["paths"].items():
        assert path.startswith("/") and item, path
        declared = set(re.findall(r"\{(\w+)\}", path))
        for method, op in item.items():
            assert method in {"get", "post", "put", "patch", "delete"}
            assert op["responses"] and op["summary"] and op["operationId"]
            op_ids.append(op["operationId"])
            in_path = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert in_path == declared, (path, method)
            for status, response in op["responses"].items():
                assert re.fullmatch(r"[1-5]\d\d", status) and response["description"]
    assert len(op_ids) == len(set(op_ids)), "operationIds must be unique"
    for ref in _refs(spec):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas, ref
    # Each component is itself a valid JSON Schema (2020-12, what OpenAPI 3.1 uses).
    from jsonschema import Draft202012Validator

    for schema in schemas.values():
        Draft202012Validator.check_schema(schema)

    # Every route the app registers is in the spec (HEAD twins of GET aside).
    # The same factory the server used; route registration does not depend on runtime state.
    app = create_app(server.runtime)
    routes = {
        (r.method.lower(), r.resource.canonical)
        for r in app.router.routes()
        if r.method != "HEAD" and r.resource is not None
    }
    documented = {(m, p) for p, item in spec["paths"].items() for m in item}
    assert routes <= documented, routes - documented
    assert ("post", "/v1/chat/completions") in documented
    assert ("post", "/api/combos") in documented and ("get", "/api/openapi/spec") in documented


async def test_openapi_models_match_the_wire(server: Server) -> None:
    spec = (await server.api("GET", "/api/openapi/spec")).json()
    post = spec["paths"]["/api/combos"]["post"]
    ref = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    props = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]["properties"]
    assert {"name", "strategy", "nodes"} <= set(props)
    assert "201" in post["responses"] and "400" in post["responses"]
    settings = spec["paths"]["/api/settings"]["patch"]["requestBody"]["content"]["application/json"]
    name = settings["schema"]["$ref"].rsplit("/", 1)[1]
    assert set(spec["components"]["schemas"][name]["properties"]) == {camel(n) for n in MUTABLE}
