"""A smoke run through every operation of the published OpenAPI document against a real
``llmtap up`` (temp hosts file, fake OS tools, a fake upstream): each answers with a status the
document lists for it, and no JSON it returns has a snake_case field name.

Field names are camelCase across the management and inspector API. The exceptions are fixed
by the API contract (/work/shared/spec/api.md and the seed OpenAPI document): the
provider wire formats under /v1 (OpenAI, Anthropic and Gemini shapes), and the rows the
contract spells in snake_case (CONTRACT_SNAKE below). Map-like objects (a schema with
``additionalProperties`` and no ``properties``: headers, a recorded upstream reply, usage by
model) hold data, not field names, and are not checked."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.addons.bridgeenv import BridgeEnv, bridge_env
from tests.addons.proc import Llmtap
from tests.fakes.upstream import FakeUpstream
from web.security import ingest_token

I = "/api/tools/traffic-inspector"  # noqa: E741
B = "/api/tools/agent-bridge"
PROVIDERS = {"oa": ("openai", "/v1"), "an": ("anthropic", "/v1"), "ge": ("gemini", "/v1beta")}
USER = [{"role": "user", "content": "hi"}]
GEMINI = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}

# Rows the contract spells in snake_case (api.md: InspectorSession, custom hosts, AgentBridge
# agents / agent state / mappings / bypass rows): the whole row keeps that one style.
CONTRACT_SNAKE = {
    "Session",
    "SessionWithRequests",
    "CustomHost",
    "AgentRow",
    "AgentState",
    "DnsResult",
    "MappingRow",
    "BypassRow",
}
# Single fields the contract names in snake_case inside camelCase objects (api.md: pricing
# "input, output, cached, cache_creation, reasoning").
CONTRACT_FIELDS = {name: {"cache_creation"} for name in ("ModelPrice", "PriceRow")}
# Paths whose bodies are another format: a provider's wire format, HAR, JSONL, PEM, OpenAPI.
# A replay answers with the router's reply in the record's own wire format.
FOREIGN = re.compile(r"^(/api)?/v1|\.har$|\.jsonl$|^/api/openapi/spec$|/replay$")
SNAKE = re.compile(r"_")


@dataclass
class Walk:
    spec: dict[str, Any]
    seen: dict[tuple[str, str], set[int]] = field(default_factory=dict)
    snake: list[str] = field(default_factory=list)
    undocumented: list[str] = field(default_factory=list)

    def op(self, method: str, template: str) -> dict[str, Any]:
        op: dict[str, Any] = self.spec["paths"][template][method.lower()]
        return op

    def resolve(self, schema: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
        name = None
        while "$ref" in schema:
            ref = schema["$ref"].rsplit("/", 1)[-1]
            schema = self.spec["components"]["schemas"][ref]
            name = re.sub(r"-(Input|Output)$", "", ref)  # pydantic's per-mode schema names
        return name, schema

    def check_keys(
        self, data: Any, schema: dict[str, Any], where: str, snake_ok: bool, fields: set[str]
    ) -> None:
        name, schema = self.resolve(schema)
        if name is not None:
            snake_ok, fields = name in CONTRACT_SNAKE, CONTRACT_FIELDS.get(name, set())
        for alt in schema.get("anyOf", []) + schema.get("oneOf", []):
            _, alt_schema = self.resolve(alt)
            if alt_schema.get("type") != "null" and data is not None:
                self.check_keys(data, alt, where, snake_ok, fields)
                return
        if isinstance(data, list):
            for i, item in enumerate(data):
                self.check_keys(item, schema.get("items", {}), f"{where}[{i}]", snake_ok, fields)
        elif isinstance(data, dict):
            props = schema.get("properties")
            if props is None and "additionalProperties" in schema:
                extra = schema["additionalProperties"]
                if isinstance(extra, dict):
                    for key, value in data.items():
                        self.check_keys(value, extra, f"{where}.{key}", snake_ok, fields)
                return  # a map: its keys are data
            for key, value in data.items():
                if SNAKE.search(key) and not snake_ok and key not in fields:
                    self.snake.append(f"{where}.{key}")
                sub = (props or {}).get(key, {})
                self.check_keys(value, sub, f"{where}.{key}", snake_ok, fields)

    def record(self, method: str, template: str, resp: httpx.Response) -> None:
        self.seen.setdefault((method, template), set()).add(resp.status_code)
        op = self.op(method, template)
        documented = op["responses"]
        status = str(resp.status_code)
        if status not in documented:
            self.undocumented.append(f"{method} {template} -> {status}: {resp.text[:200]}")
            return
        if FOREIGN.search(template) or resp.status_code >= 400:
            return
        if not resp.headers.get("content-type", "").startswith("application/json"):
            return
        schema = documented[status].get("content", {}).get("application/json", {}).get("schema")
        self.check_keys(resp.json(), schema or {}, f"{method} {template}", False, set())


@pytest.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream() as up:
        yield up


@pytest.fixture
def env(tmp_path: Any) -> BridgeEnv:
    return bridge_env(tmp_path)


@pytest.fixture
def app(env: BridgeEnv) -> Iterator[Llmtap]:
    inst = env.start()
    try:
        yield inst
    finally:
        assert inst.stop() == 0, inst.log()


async def test_every_operation_answers_documented_statuses_in_camel_case(
    app: Llmtap, upstream: FakeUpstream
) -> None:
    headers = {"X-Llmtap-Token": app.token}
    async with httpx.AsyncClient(base_url=app.url, headers=headers, timeout=60) as client:
        spec = (await client.get("/api/openapi/spec")).json()
        walk = Walk(spec)

        async def call(method: str, template: str, body: Any = None, **params: Any) -> Any:
            path, query = template, params.pop("query", None)
            for name, value in params.items():
                path = path.replace("{" + name + "}", value)
            kw: dict[str, Any] = {} if body is None else {"json": body}
            if query:
                kw["params"] = query
            resp = await client.request(method, path, **kw)
            walk.record(method, template, resp)
            ctype = resp.headers.get("content-type", "")
            return resp.json() if ctype.startswith("application/json") else resp

        # --- management: providers, keys, combos, models, chains, resilience, pricing -------
        ids: dict[str, str] = {}
        for name, (kind, suffix) in PROVIDERS.items():
            body = {"provider": kind, "name": name, "url": upstream.url + suffix,
                    "apiKey": f"sk-test-{name}-0123456789abcdef"}  # fmt: skip
            ids[name] = (await call("POST", "/api/providers", body))["id"]
        await call("GET", "/api/providers")
        await call("GET", "/api/providers/{id}", id=ids["oa"])
        await call("PATCH", "/api/providers/{id}", {"priority": 2}, id=ids["oa"])
        await call("POST", "/api/providers/{id}/test", id=ids["oa"])
        await call("GET", "/api/providers/{id}/models", id=ids["oa"])
        spare = await call("POST", "/api/providers", {"provider": "openai", "name": "spare",
                                                      "url": upstream.url + "/v1"})  # fmt: skip
        await call("DELETE", "/api/providers/{id}", id=spare["id"])
        await call("GET", "/api/providers/{id}", id="missing")

        key = await call("POST", "/api/keys", {"label": "smoke"})
        await call("GET", "/api/keys")
        await call("GET", "/api/keys/{id}", id=key["id"])
        await call("PATCH", "/api/keys/{id}", {"label": "smoke2"}, id=key["id"])
        await call("DELETE", "/api/keys/{id}", id=key["id"])

        node = {"connectionId": ids["oa"], "model": "gpt-4o-mini"}
        combo = await call("POST", "/api/combos", {"name": "smoke", "strategy": "priority",
                                                   "nodes": [node]})  # fmt: skip
        await call("POST", "/api/combos", {"name": "smoke", "nodes": [node]})  # 409
        await call("GET", "/api/combos")
        await call("GET", "/api/combos/metrics")
        await call("POST", "/api/combos/test", {"model": "smoke"})
        await call("GET", "/api/combos/{id}", id=combo["id"])
        await call("PATCH", "/api/combos/{id}", {"strategy": "round-robin"}, id=combo["id"])

        await call("POST", "/api/models/alias", {"alias": "fast", "target": "oa/gpt-4o-mini"})
        await call("GET", "/api/models")
        await call("DELETE", "/api/models/alias/{alias}", alias="fast")
        await call("POST", "/api/fallback/chains",
                   {"model": "oa/gpt-4o-mini", "chain": [{"provider": "an"}]})  # fmt: skip
        await call("GET", "/api/fallback/chains")
        await call("GET", "/api/resilience")
        await call("PATCH", "/api/resilience", {"failureThreshold": 4})
        await call("POST", "/api/resilience/reset")
        await call("POST", "/api/pricing", {"model": "smoke-model", "input": 1, "output": 2})
        await call("GET", "/api/pricing")
        await call("DELETE", "/api/pricing/{model}", model="smoke-model")
        await call("GET", "/api/settings")
        await call("PATCH", "/api/settings", {"bufferSize": 500})
        await call("GET", "/api/monitoring/health")
        await call("GET", "/api/openapi/spec")

        # --- the router API, under both prefixes ------------------------------------------
        for prefix in ("", "/api"):
            for path in ("/v1", "/v1/", "/v1/models"):
                await call("GET", prefix + path)
            await call("GET", prefix + "/v1/providers/{provider}/models", provider="oa")
            chat = {"model": "oa/gpt-4o-mini", "messages": USER}
            await call("POST", prefix + "/v1/chat/completions", chat)
            await call("POST", prefix + "/v1/chat/completions", {**chat, "stream": True})
            await call("POST", prefix + "/v1/providers/{provider}/chat/completions",
                       {"model": "gpt-4o-mini", "messages": USER}, provider="oa")  # fmt: skip
            msgs = {"model": "an/claude-sonnet-4", "max_tokens": 16, "messages": USER}
            await call("POST", prefix + "/v1/messages", msgs)
            await call("POST", prefix + "/v1/providers/{provider}/messages",
                       {**msgs, "model": "claude-sonnet-4"}, provider="an")  # fmt: skip
            await call("POST", prefix + "/v1/messages/count_tokens", msgs)
            await call("POST", prefix + "/v1/responses", {"model": "oa/gpt-4o-mini", "input": "hi"})
            await call("POST", prefix + "/v1/providers/{provider}/responses",
                       {"model": "gpt-4o-mini", "input": "hi"}, provider="oa")  # fmt: skip
            await call("POST", prefix + "/v1beta/models/{model_action}", GEMINI,
                       model_action="ge/gemini-2.5-flash:generateContent")  # fmt: skip
            await call("POST", prefix + "/v1/models/{model_action}", GEMINI,
                       model_action="ge/gemini-2.5-flash:generateContent")  # fmt: skip
            cloud = {"model": "ge/gemini-2.5-flash", "project": "p", "request": GEMINI}
            await call("POST", prefix + "/v1internal:generateContent", cloud)
            await call("POST", prefix + "/v1internal:streamGenerateContent", cloud)
        await call("GET", "/api/usage/call-logs")
        logs = await call("GET", "/api/usage/call-logs", query={"limit": "5"})
        await call("GET", "/api/usage/call-logs/{id}", id=logs["logs"][0]["id"])
        await call("GET", "/api/usage/analytics")

        # --- the inspector --------------------------------------------------------------------
        session = await call("POST", f"{I}/sessions", {"name": "smoke"})
        await call("POST", "/v1/chat/completions", {"model": "oa/gpt-4o-mini", "messages": USER})
        records = await call("GET", f"{I}/requests")
        rid = records[0]["id"]
        await call("GET", f"{I}/requests/{{id}}", id=rid)
        await call("PUT", f"{I}/requests/{{id}}/annotation", {"annotation": "a"}, id=rid)
        await call("POST", f"{I}/requests/{{id}}/replay", {}, id=rid)
        await call("POST", f"{I}/requests/{{id}}/resend", {}, id=rid)
        await call("GET", f"{I}/search", query={"q": "hi"})
        await call("GET", f"{I}/export.har")
        await call("GET", f"{I}/export.jsonl")
        await call("GET", f"{I}/sessions")
        await call("GET", f"{I}/sessions/{{id}}", id=session["id"])
        await call("PATCH", f"{I}/sessions/{{id}}", {"action": "rename", "name": "s2"},
                   id=session["id"])  # fmt: skip
        await call("PATCH", f"{I}/sessions/{{id}}", {"action": "stop"}, id=session["id"])
        await call("GET", f"{I}/sessions/{{id}}/export.har", id=session["id"])
        await call("DELETE", f"{I}/sessions/{{id}}", id=session["id"])
        await call("POST", f"{I}/hosts", {"host": "api.example.test", "kind": "llm"})
        await call("POST", f"{I}/hosts", {"host": "api.example.test"})  # 409
        await call("GET", f"{I}/hosts")
        await call("PATCH", f"{I}/hosts/{{host}}", {"enabled": False}, host="api.example.test")
        await call("DELETE", f"{I}/hosts/{{host}}", host="api.example.test")
        await call("GET", f"{I}/capture-modes")
        await call("POST", f"{I}/capture-modes/tls-intercept", {"enabled": True})
        await call("POST", f"{I}/capture-modes/http-proxy", {"action": "stop"})
        await call("POST", f"{I}/capture-modes/http-proxy", {"action": "start"})
        await call("POST", f"{I}/capture-modes/system-proxy", {"action": "revert"})
        token = ingest_token(app.data_dir)  # made on first use, by whichever side asks first
        record = {**records[0], "id": "smoke-ingested"}
        resp = await client.post(f"{I}/internal/ingest", json=record,
                                 headers={"X-Llmtap-Ingest-Token": token})  # fmt: skip
        walk.record("POST", f"{I}/internal/ingest", resp)
        await call("DELETE", f"{I}/requests")

        # --- the AgentBridge (temp hosts file, fake OS tools) ---------------------------------
        await call("GET", f"{B}/agents")
        await call("POST", f"{B}/agents/{{agentId}}/dns", {"enabled": True}, agentId="codex")
        await call("POST", f"{B}/agents/{{agentId}}/dns", {"enabled": False}, agentId="codex")
        await call("POST", f"{B}/agents/{{agentId}}/route-all", {"routeAll": True},
                   agentId="codex")  # fmt: skip
        await call("PUT", f"{B}/agents/{{agentId}}/mappings",
                   {"mappings": [{"source": "gpt-5", "target": "oa/gpt-4o-mini"}]},
                   agentId="codex")  # fmt: skip
        await call("GET", f"{B}/agents/{{agentId}}/mappings", agentId="codex")
        await call("GET", f"{B}/agents/{{agentId}}/detected-models", agentId="codex")
        await call("GET", f"{B}/agents/{{agentId}}/mappings", agentId="nobody")  # 404
        await call("PUT", f"{B}/bypass", {"patterns": ["*.bank.example"]})
        await call("GET", f"{B}/bypass")
        await call("GET", f"{B}/state")
        await call("POST", f"{B}/server", {"action": "start"})
        await call("POST", f"{B}/server", {"action": "stop"})
        await call("GET", f"{B}/cert")
        await call("POST", f"{B}/cert", {"action": "download"})
        await call("POST", f"{B}/cert/untrust")
        await call("GET", f"{B}/upstream-ca")
        await call("POST", f"{B}/upstream-ca", {"path": str(app.data_dir / "missing.pem")})
        await call("GET", f"{B}/diagnose")
        await call("POST", f"{B}/repair")

        # --- cleanup last: deletes ----------------------------------------------------------
        await call("DELETE", "/api/fallback/chains", query={"model": "oa/gpt-4o-mini"})
        await call("DELETE", "/api/combos/{id}", id=combo["id"])

    skipped = {("GET", f"{I}/ws"), ("GET", "/"), ("GET", "/static/{path}")}
    skipped |= {
        ("GET", p + "/v1" + r + "/responses")
        for p in ("", "/api")
        for r in ("", "/providers/{provider}")
    }  # WebSockets
    listed = {(method.upper(), path) for path, item in spec["paths"].items() for method in item}
    assert listed - skipped - set(walk.seen) == set(), "operations the smoke run missed"
    assert walk.undocumented == [], "\n".join(walk.undocumented)
    assert walk.snake == [], "\n".join(walk.snake)
