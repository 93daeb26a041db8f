"""Recording sessions on a real server: lifecycle, in-flight calls, restarts, HAR export."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import jsonschema

from tests.fakes.upstream import FakeUpstream, Reply
from tests.web.harness import Server, start_server

P = "/api/tools/traffic-inspector"
HAR_SCHEMA = json.loads(
    (Path(__file__).parents[1] / "router/traffic/har-1.2.schema.json").read_text()
)


async def chat(server: Server, text: str = "hi", lane: str = "oa", **extra: Any) -> httpx.Response:
    body = {"model": server.model(lane), "messages": [{"role": "user", "content": text}], **extra}
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        return await client.post("/v1/chat/completions", json=body)


async def test_session_lifecycle(server: Server) -> None:
    server.upstream.script(Reply.text("a"), Reply.text("b"), Reply.text("c"))
    await chat(server, "before")
    started = await server.api("POST", P + "/sessions", json={"name": "debug run"})
    assert started.status_code == 201
    session = started.json()
    assert session["name"] == "debug run" and session["ended_at"] is None
    await chat(server, "during 1")
    await chat(server, "during 2")
    stopped = await server.api("PATCH", f"{P}/sessions/{session['id']}", json={"action": "stop"})
    assert stopped.status_code == 200 and stopped.json()["ended_at"] is not None
    assert stopped.json()["request_count"] == 2
    await chat(server, "after")

    got = (await server.api("GET", f"{P}/sessions/{session['id']}")).json()
    texts = [r["llm"]["conversation"]["request"][0]["blocks"][0]["text"] for r in got["requests"]]
    assert sorted(texts) == ["during 1", "during 2"]
    assert all(r["status"] == 200 and r["sessionId"] == session["id"] for r in got["requests"])

    by_filter = (
        await server.api("GET", P + "/requests", params={"sessionId": session["id"]})
    ).json()
    assert {r["id"] for r in by_filter} == {r["id"] for r in got["requests"]}

    renamed = await server.api(
        "PATCH", f"{P}/sessions/{session['id']}", json={"action": "rename", "name": "renamed"}
    )
    assert renamed.json()["name"] == "renamed"
    bad = await server.api("PATCH", f"{P}/sessions/{session['id']}", json={"action": "pause"})
    assert bad.status_code == 400
    listed = (await server.api("GET", P + "/sessions")).json()
    assert [s["name"] for s in listed] == ["renamed"]

    assert (await server.api("DELETE", f"{P}/sessions/{session['id']}")).status_code == 204
    assert (await server.api("GET", P + "/sessions")).json() == []


async def test_a_session_records_the_final_state_of_a_call_in_flight(server: Server) -> None:
    words = ["slow", "and", "steady", "wins"]
    server.upstream.script(Reply.text(" ".join(words), chunk_delay=0.5))
    async with (
        aiohttp.ClientSession() as client,
        client.ws_connect(server.url + P + "/ws") as ws,
    ):
        assert json.loads((await ws.receive(timeout=30)).data)["type"] == "snapshot"
        call = asyncio.create_task(chat(server, stream=True))
        new = json.loads((await ws.receive(timeout=30)).data)
        assert new["type"] == "new" and new["data"]["status"] == "in-flight"
        session = (await server.api("POST", P + "/sessions", json={})).json()
        resp = await call
    assert resp.status_code == 200 and "wins" in resp.text
    await server.api("PATCH", f"{P}/sessions/{session['id']}", json={"action": "stop"})
    got = (await server.api("GET", f"{P}/sessions/{session['id']}")).json()
    [rec] = got["requests"]
    assert rec["id"] == new["data"]["id"]
    assert rec["status"] == 200
    assert rec["llm"]["response"]["choices"][0]["message"]["content"] == " ".join(words)


async def test_sessions_survive_a_restart_and_export_valid_har(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    server, webapp = await start_server(data_dir, fake_upstream)
    try:
        fake_upstream.script(
            Reply.text("json answer"),
            Reply.text("streamed answer"),
            Reply.error(500, "upstream broke"),
        )
        session = (await server.api("POST", P + "/sessions", json={"name": "kept"})).json()
        await chat(server, "one")
        await chat(server, "two", lane="an", stream=True)
        await chat(server, "three", lane="ge")
        [rec] = [
            r
            for r in (await server.api("GET", P + "/requests")).json()
            if r["llm"]["conversation"]["request"][0]["blocks"][0]["text"] == "one"
        ]
        await server.api("PUT", f"{P}/requests/{rec['id']}/annotation", json={"annotation": "kept"})
    finally:
        await webapp.done()
        await server.runtime.close()  # the session is still active: closed with ended_at

    server, webapp = await start_server(data_dir, fake_upstream, lanes=[])
    try:
        assert (await server.api("GET", P + "/requests")).json() == []  # the buffer is live only
        [stored] = (await server.api("GET", P + "/sessions")).json()
        assert stored["id"] == session["id"] and stored["ended_at"] is not None
        assert stored["request_count"] == 3
        got = (await server.api("GET", f"{P}/requests/{rec['id']}")).json()
        assert got["annotation"] == "kept"  # found in the session after the restart

        resp = await server.api("GET", f"{P}/sessions/{session['id']}/export.har")
        assert resp.status_code == 200 and "attachment" in resp.headers["content-disposition"]
        har = resp.json()
        errors = list(jsonschema.Draft7Validator(HAR_SCHEMA).iter_errors(har))
        assert errors == []
        entries = har["log"]["entries"]
        assert len(entries) == 3
        statuses = sorted(e["response"]["status"] for e in entries)
        assert statuses[:2] == [200, 200] and statuses[2] >= 500
        assert any(e["response"].get("_error") for e in entries)
        assert entries[0]["comment"] == "kept" and entries[0]["request"]["url"].startswith(
            "http://"
        )
        assert all(e["_sessionId"] == session["id"] for e in entries)
        assert any("text/event-stream" in e["response"]["content"]["mimeType"] for e in entries)

        filtered = await server.api("GET", P + "/export.har", params={"sessionId": session["id"]})
        assert len(filtered.json()["log"]["entries"]) == 3
        missing = await server.api("GET", f"{P}/sessions/nope/export.har")
        assert missing.status_code == 404
    finally:
        await webapp.done()
        await server.runtime.close()
