"""The Traffic Inspector API on a real server: /v1 calls as records, filters, clear, 404s,
annotations, replay, custom hosts, capture modes."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import httpx

from tests.fakes.upstream import Reply
from tests.web.harness import Server

P = "/api/tools/traffic-inspector"


async def ws_next(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    msg = await ws.receive(timeout=30)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    data: dict[str, Any] = json.loads(msg.data)
    return data


async def chat(server: Server, lane: str = "oa", **extra: Any) -> httpx.Response:
    body = {"model": server.model(lane), "messages": [{"role": "user", "content": "hi"}], **extra}
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        return await client.post("/v1/chat/completions", json=body)


async def test_a_v1_call_is_one_record_in_flight_then_final(server: Server) -> None:
    server.upstream.script(Reply.text("Bonjour le monde", usage=(12, 4, 0, 0, 0)))
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(server.url + P + "/ws") as ws,
    ):
        assert await ws_next(ws) == {"type": "snapshot", "page": 0, "more": False, "data": []}
        resp = await chat(server)
        assert resp.status_code == 200
        new = await ws_next(ws)
        update = await ws_next(ws)
    assert new["type"] == "new" and new["data"]["status"] == "in-flight"
    assert update["type"] == "update" and update["data"]["id"] == new["data"]["id"]
    assert update["data"]["id"] == resp.headers["x-omniroute-request-id"]

    listed = (await server.api("GET", P + "/requests")).json()
    assert [r["id"] for r in listed] == [new["data"]["id"]]
    rec = listed[0]
    assert rec["status"] == 200 and rec["source"] == "router" and rec["scheme"] == "http"
    assert rec["path"] == "/v1/chat/completions" and rec["detectedKind"] == "llm"
    llm = rec["llm"]
    assert (llm["tokensIn"], llm["tokensOut"]) == (12, 4)
    assert llm["costUsd"] is not None and llm["apiKind"] == "openai-chat"
    # The reply is the response body; llm.response holds no second copy of a whole reply.
    assert llm["response"] is None
    body = json.loads(rec["responseBody"])
    assert body["choices"][0]["message"]["content"] == "Bonjour le monde"
    assert llm["conversation"]["request"][0]["blocks"][0]["text"] == "hi"
    for name in ("proxyLatencyMs", "ttfbMs", "upstreamLatencyMs", "totalLatencyMs"):
        assert rec[name] is not None and rec[name] >= 0
    assert rec["totalLatencyMs"] >= rec["upstreamLatencyMs"]
    assert json.loads(rec["responseBody"])["choices"][0]["message"]["content"]

    one = await server.api("GET", f"{P}/requests/{rec['id']}")
    assert one.status_code == 200 and one.json()["id"] == rec["id"]


async def test_a_streamed_call_keeps_the_sse_text_and_a_merged_response(server: Server) -> None:
    server.upstream.script(Reply.text("one two three", usage=(7, 3, 0, 0, 0)))
    resp = await chat(server, "an", stream=True)
    assert resp.status_code == 200 and "data:" in resp.text
    [rec] = (await server.api("GET", P + "/requests")).json()
    assert rec["llm"]["streamed"] is True
    assert rec["responseHeaders"]["content-type"].startswith("text/event-stream")
    assert "data:" in rec["responseBody"] and "three" in rec["responseBody"]
    assert rec["llm"]["response"]["choices"][0]["message"]["content"] == "one two three"
    assert (rec["llm"]["tokensIn"], rec["llm"]["tokensOut"]) == (7, 3)


async def test_filters_clear_and_not_found(server: Server) -> None:
    server.upstream.script(Reply.text("a"), Reply.error(500, "boom"), Reply.text("c"))
    assert (await chat(server, "oa")).status_code == 200
    assert (await chat(server, "ge")).status_code >= 500
    assert (await chat(server, "an")).status_code == 200

    everything = (await server.api("GET", P + "/requests")).json()
    assert len(everything) == 3
    assert everything[0]["timestamp"] >= everything[-1]["timestamp"]  # newest first
    ok = (await server.api("GET", P + "/requests", params={"status": "2xx"})).json()
    assert len(ok) == 2 and all(r["status"] == 200 for r in ok)
    failed = (await server.api("GET", P + "/requests", params={"status": "5xx"})).json()
    assert len(failed) == 1 and failed[0]["error"]
    assert len((await server.api("GET", P + "/requests", params={"source": "router"})).json()) == 3
    assert (await server.api("GET", P + "/requests", params={"profile": "custom"})).json() == []
    bad = await server.api("GET", P + "/requests", params={"profile": "nope"})
    assert bad.status_code == 400 and bad.json()["error"]["details"][0]["field"] == "profile"

    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(server.url + P + "/ws") as ws,
    ):
        snapshot = await ws_next(ws)
        assert [r["id"] for r in snapshot["data"]] == [r["id"] for r in everything]
        cleared = await server.api("DELETE", P + "/requests")
        assert cleared.status_code == 204
        assert await ws_next(ws) == {"type": "clear"}
    assert (await server.api("GET", P + "/requests")).json() == []

    for method, path, body in [
        ("GET", "/requests/nope", None),
        ("PUT", "/requests/nope/annotation", {"annotation": "x"}),
        ("POST", "/requests/nope/replay", {}),
        ("GET", "/sessions/nope", None),
        ("PATCH", "/sessions/nope", {"action": "stop"}),
        ("DELETE", "/sessions/nope", None),
        ("DELETE", "/hosts/nope.example", None),
    ]:
        resp = await server.api(method, P + path, json=body)
        assert resp.status_code == 404, (method, path, resp.text)
        assert resp.json()["error"]["type"] == "not_found_error"


async def test_annotation_limit_and_round_trip(server: Server) -> None:
    server.upstream.script(Reply.text("a"))
    await chat(server)
    [rec] = (await server.api("GET", P + "/requests")).json()
    url = f"{P}/requests/{rec['id']}/annotation"
    too_long = await server.api("PUT", url, json={"annotation": "x" * 10_001})
    assert too_long.status_code == 400
    assert too_long.json()["error"]["details"][0]["field"] == "annotation"
    missing = await server.api("PUT", url, json={})
    assert missing.status_code == 400
    text = "why? " * 2_000  # exactly the limit (prose: a long token run would be masked)
    ok = await server.api("PUT", url, json={"annotation": text})
    assert ok.status_code == 200 and ok.json()["annotation"] == text
    got = (await server.api("GET", f"{P}/requests/{rec['id']}")).json()
    assert got["annotation"] == text
    har = (await server.api("GET", P + "/export.har")).json()
    assert har["log"]["entries"][0]["comment"] == text


async def test_replay_with_a_model_override_is_recorded_and_linked(server: Server) -> None:
    server.upstream.script(Reply.text("first"), Reply.text("second", usage=(5, 1, 0, 0, 0)))
    await chat(server, "oa")
    [original] = (await server.api("GET", P + "/requests")).json()

    resp = await server.api(
        "POST", f"{P}/requests/{original['id']}/replay", json={"model": server.model("an")}
    )
    assert resp.status_code == 200, resp.text
    # the router's reply in the record's own format (OpenAI chat), from the Anthropic lane
    assert resp.json()["choices"][0]["message"]["content"] == "second"
    assert resp.headers["x-llmtap-replay-of"] == original["id"]
    assert server.upstream.requests[-1].path.endswith("/messages")

    records = (await server.api("GET", P + "/requests")).json()
    assert len(records) == 2
    replayed = records[0]
    assert replayed["note"] == f"replay of {original['id']}"
    assert replayed["source"] == "router" and replayed["status"] == 200
    assert replayed["id"] == resp.headers["x-omniroute-request-id"]
    assert replayed["sourceModel"] == server.model("an")
    assert replayed["llm"]["tokensIn"] == 5

    # without a body the recorded model is used (a bodiless POST proves itself by header)
    server.upstream.script(Reply.text("third"))
    again = await server.api(
        "POST", f"{P}/requests/{original['id']}/replay", headers={"X-Requested-With": "test"}
    )
    assert again.status_code == 200 and again.json()["choices"][0]["message"]["content"] == "third"


async def test_replay_of_a_gemini_record(server: Server) -> None:
    server.upstream.script(Reply.text("gem"), Reply.text("gem again"))
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    path = f"/v1beta/models/{server.model('ge')}:streamGenerateContent"
    async with httpx.AsyncClient(base_url=server.url) as client:
        assert (await client.post(path, json=body, params={"alt": "sse"})).status_code == 200
    [rec] = (await server.api("GET", P + "/requests")).json()
    assert rec["llm"]["apiKind"] == "gemini"
    resp = await server.api("POST", f"{P}/requests/{rec['id']}/replay", json={})
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/event-stream")
    assert "gem again" in "".join(
        part["text"]
        for line in resp.text.splitlines()
        if line.startswith("data:")
        for cand in json.loads(line[5:])["candidates"]
        for part in cand["content"]["parts"]
    )


async def test_exports(server: Server) -> None:
    server.upstream.script(Reply.text("a"), Reply.text("b"))
    await chat(server, "oa")
    await chat(server, "an")
    har = await server.api("GET", P + "/export.har", params={"profile": "llm"})
    assert har.status_code == 200
    assert "attachment" in har.headers["content-disposition"]
    assert len(har.json()["log"]["entries"]) == 2
    jsonl = await server.api("GET", P + "/export.jsonl")
    assert "attachment" in jsonl.headers["content-disposition"]
    lines = jsonl.text.splitlines()
    assert len(lines) == 2
    live = (await server.api("GET", P + "/requests")).json()
    assert [json.loads(line)["id"] for line in lines] == [r["id"] for r in live]


async def test_custom_hosts_crud(server: Server) -> None:
    created = await server.api(
        "POST", P + "/hosts", json={"host": "LLM.Example.com", "kind": "llm"}
    )
    assert created.status_code == 201
    assert created.json()["host"] == "llm.example.com" and created.json()["enabled"] is True
    dup = await server.api("POST", P + "/hosts", json={"host": "llm.example.com"})
    assert dup.status_code == 409
    bad = await server.api("POST", P + "/hosts", json={"host": "http://x/y"})
    assert bad.status_code == 400
    patched = await server.api("PATCH", P + "/hosts/llm.example.com", json={"enabled": False})
    assert patched.status_code == 200 and patched.json()["enabled"] is False
    assert [h["host"] for h in (await server.api("GET", P + "/hosts")).json()] == [
        "llm.example.com"
    ]
    assert (await server.api("DELETE", P + "/hosts/llm.example.com")).status_code == 204
    assert (await server.api("GET", P + "/hosts")).json() == []


async def test_capture_modes_without_mitmproxy(server: Server) -> None:
    state = (await server.api("GET", P + "/capture-modes")).json()
    assert {"agentBridge", "customHosts", "httpProxy", "systemProxy"} <= set(state)
    # Without mitmproxy in the process the API says so instead of showing modes as merely off.
    assert state["running"] is False and "llmtap up" in state["reason"]
    assert "capture is not running" in state["agentBridge"]["note"]
    assert state["httpProxy"]["port"] == server.runtime.settings.proxy_port
    bad = await server.api("POST", P + "/capture-modes/http-proxy", json={"action": "jump"})
    assert bad.status_code == 400 and bad.json()["error"]["details"][0]["field"] == "action"
    bad = await server.api(
        "POST", P + "/capture-modes/system-proxy", json={"action": "apply", "guardMinutes": 0}
    )
    assert bad.status_code == 400
    for path, body in [
        ("/capture-modes/http-proxy", {"action": "start"}),
        ("/capture-modes/system-proxy", {"action": "revert"}),
        ("/capture-modes/tls-intercept", {"enabled": False}),
    ]:
        resp = await server.api("POST", P + path, json=body)
        assert resp.status_code == 503, resp.text
        assert "capture is not running" in resp.json()["error"]["message"]


class FakeCapture:
    """Stands in for the addons' capture-modes controller (not a component of this layer)."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def state(self) -> dict[str, Any]:
        return {
            "agentBridge": {"active": True},
            "customHosts": {"active": False, "count": 0},
            "httpProxy": {"active": True, "port": 8080, "tlsIntercept": True},
            "systemProxy": {"active": False, "guardMinutes": 30, "guardUntil": None},
        }

    async def http_proxy(self, action: str) -> dict[str, Any]:
        self.calls.append(("http_proxy", action))
        return self.state()

    async def system_proxy(
        self, action: str, port: int | None, guard_minutes: int | None
    ) -> dict[str, Any]:
        self.calls.append(("system_proxy", action, port, guard_minutes))
        return self.state()

    async def tls_intercept(self, enabled: bool) -> dict[str, Any]:
        self.calls.append(("tls_intercept", enabled))
        return self.state()


async def test_capture_modes_delegate_to_the_controller(server: Server) -> None:
    capture = FakeCapture()
    server.runtime.capture = capture
    assert (await server.api("GET", P + "/capture-modes")).json() == capture.state()
    await server.api("POST", P + "/capture-modes/http-proxy", json={"action": "stop"})
    await server.api(
        "POST",
        P + "/capture-modes/system-proxy",
        json={"action": "apply", "port": 8081, "guardMinutes": 5},
    )
    await server.api("POST", P + "/capture-modes/tls-intercept", json={"enabled": False})
    assert capture.calls == [
        ("http_proxy", "stop"),
        ("system_proxy", "apply", 8081, 5),
        ("tls_intercept", False),
    ]


async def test_a_call_refused_before_it_started_is_still_recorded(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        resp = await client.post(
            "/v1/chat/completions",
            json={"model": "", "messages": [{"role": "user", "content": "hi"}]},
        )
    assert resp.status_code >= 400
    [rec] = (await server.api("GET", P + "/requests")).json()
    assert rec["status"] == resp.status_code and rec["error"]
    assert rec["id"] == resp.headers["x-omniroute-request-id"]
