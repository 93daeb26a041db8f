"""The inspector's search, resend and upstream-request parts on a real server with the fake
upstream: a word inside a prompt finds its call (live and in a stored session), a cut stream
is listed under "error", a resend returns the rendered answer, and a router call records the
request it sent upstream (translated, mapped, masked)."""

from __future__ import annotations

import json
from typing import Any

import httpx

from router.traffic.record import InterceptedRequest
from tests.fakes.upstream import Reply
from tests.web.harness import Server

P = "/api/tools/traffic-inspector"
SECRET = "sk-test-oa-0123456789abcdef"  # the oa connection's key (tests/web/harness.py)


async def chat(server: Server, text: str, lane: str = "oa", **extra: Any) -> httpx.Response:
    body = {"model": server.model(lane), "messages": [{"role": "user", "content": text}], **extra}
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        resp = await client.post("/v1/chat/completions", json=body)
        await resp.aread()
        return resp


async def search(server: Server, q: str, **params: str) -> dict[str, Any]:
    resp = await server.api("GET", P + "/search", params={"q": q, **params})
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()
    return data


async def test_search_finds_a_word_inside_a_prompt_and_a_reply(server: Server) -> None:
    server.upstream.script(Reply.text("The walrus sleeps."), Reply.text("Nothing here."))
    first = await chat(server, "Tell me about the aardvark habitat")
    second = await chat(server, "Something else entirely")
    found = await search(server, "AARDVARK")
    assert [r["id"] for r in found["results"]] == [first.headers["x-omniroute-request-id"]]
    (hit,) = found["results"]
    assert "conversation" in hit["fields"] and "request" in hit["fields"]
    assert "aardvark" in hit["snippet"] and hit["live"] is True
    assert found["records"] == []  # live records are not sent again
    # A word of the reply; every word must occur (and in any field).
    assert [r["id"] for r in (await search(server, "walrus"))["results"]] == [
        first.headers["x-omniroute-request-id"]
    ]
    assert (await search(server, "walrus entirely"))["results"] == []
    assert [r["id"] for r in (await search(server, "entirely"))["results"]] == [
        second.headers["x-omniroute-request-id"]
    ]


async def test_search_reaches_stored_sessions_after_the_buffer_is_cleared(server: Server) -> None:
    session = (await server.api("POST", P + "/sessions", json={"name": "kept"})).json()
    server.upstream.script(Reply.text("ok"))
    resp = await chat(server, "the quokka question")
    await server.api("PATCH", P + f"/sessions/{session['id']}", json={"action": "stop"})
    await server.api("DELETE", P + "/requests")
    found = await search(server, "quokka")
    (hit,) = found["results"]
    assert hit["id"] == resp.headers["x-omniroute-request-id"] and hit["live"] is False
    (record,) = found["records"]
    assert record["id"] == hit["id"] and record["sessionId"] == session["id"]
    scoped = await search(server, "quokka", sessionId=session["id"])
    assert [r["id"] for r in scoped["results"]] == [hit["id"]]


async def test_search_never_sees_unmasked_secrets(server: Server) -> None:
    secret = "sk-live-abcdefghijklmnopqrstuvwx"
    server.upstream.script(Reply.text("ok"))
    await chat(server, f"my key is {secret}")
    assert (await search(server, secret))["results"] == []
    assert len((await search(server, "my key is"))["results"]) == 1


async def test_search_refuses_bad_queries(server: Server) -> None:
    for params in ({"q": ""}, {"q": "x" * 201}, {"q": "a", "limit": "0"}, {"q": "a", "limit": "x"}):
        resp = await server.api("GET", P + "/search", params=params)
        assert resp.status_code == 400, params
        assert resp.json()["error"]["details"]


async def test_a_cut_stream_is_listed_under_error(server: Server) -> None:
    server.upstream.script(Reply.text("one two three four five", cut_after=3), Reply.text("fine"))
    cut = await chat(server, "cut me", stream=True)
    ok = await chat(server, "finish me", stream=True)
    listed = (await server.api("GET", P + "/requests", params={"status": "error"})).json()
    assert [r["id"] for r in listed] == [cut.headers["x-omniroute-request-id"]]
    assert listed[0]["llm"]["incomplete"] is True
    good = (await server.api("GET", P + "/requests", params={"status": "2xx"})).json()
    assert [r["id"] for r in good] == [ok.headers["x-omniroute-request-id"]]


async def test_a_router_call_records_the_request_sent_upstream(server: Server) -> None:
    # Anthropic in, OpenAI up: the upstream request is the translated Chat body, mapped model.
    server.upstream.script(Reply.text("translated"))
    body = {
        "model": server.model("oa"),
        "max_tokens": 50,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "hello upstream"}],
    }
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        resp = await client.post("/v1/messages", json=body)
    assert resp.status_code == 200, resp.text
    record = (
        await server.api("GET", P + f"/requests/{resp.headers['x-omniroute-request-id']}")
    ).json()
    up = record["upstreamRequest"]
    assert up["url"] == server.upstream.url + "/v1/chat/completions"
    assert up["format"] == "openai-chat" and up["provider"] == "oa"
    sent = json.loads(up["body"])
    assert sent["model"] == "gpt-4o-mini"  # the connection's own name, prefix resolved
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
    assert "hello upstream" in json.dumps(sent["messages"][1])
    assert up["headers"]["authorization"] != f"Bearer {SECRET}"
    assert SECRET not in json.dumps(record)


async def test_resend_through_the_router_with_an_edited_body(server: Server) -> None:
    server.upstream.script(Reply.text("first answer"), Reply.text("second answer", chunks=None))
    resp = await chat(server, "original question")
    record_id = resp.headers["x-omniroute-request-id"]
    record = (await server.api("GET", P + f"/requests/{record_id}")).json()
    edited = json.loads(record["requestBody"])
    edited["messages"][0]["content"] = "edited question"
    edited["stream"] = True
    out = await server.api(
        "POST", P + f"/requests/{record_id}/resend", json={"target": "router", "body": edited}
    )
    assert out.status_code == 200, out.text
    data = out.json()
    assert data["status"] == 200 and data["target"] == "router"
    # Rendered, never raw SSE: the merged answer as conversation turns.
    assert data["answer"] and data["answer"][0]["blocks"][0]["text"] == "second answer"
    assert data["original"]["answer"][0]["blocks"][0]["text"] == "first answer"
    assert data["body"].startswith("data:")
    new = (await server.api("GET", P + f"/requests/{data['recordId']}")).json()
    assert new["note"] == f"resend of {record_id}"
    assert "edited question" in new["requestBody"]
    sent = server.upstream.requests[-1]
    assert "edited question" in sent.body.decode()


async def test_resend_to_the_original_host(server: Server) -> None:
    # A record captured on its way to the (fake) provider itself, as the capture path makes.
    host, port = server.upstream.url.removeprefix("http://").split(":")
    captured = {
        "id": "cap-1",
        "source": "http-proxy",
        "timestamp": "2026-01-01T00:00:00Z",
        "method": "POST",
        "scheme": "http",
        "host": host,
        "port": int(port),
        "path": "/v1/chat/completions",
        "requestHeaders": {"content-type": "application/json", "authorization": "Bearer ***"},
        "requestBody": json.dumps(
            {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "direct"}]}
        ),
        "status": 200,
        "detectedKind": "llm",
        "llm": {"apiKind": "openai-chat"},
    }
    server.runtime.inspector.upsert(InterceptedRequest.model_validate(captured))
    server.upstream.script(Reply.text("straight from the host"))
    out = await server.api(
        "POST",
        P + "/requests/cap-1/resend",
        json={
            "target": "original",
            "model": "gpt-4o",
            "headers": {"authorization": f"Bearer {SECRET}"},
        },
    )
    assert out.status_code == 200, out.text
    data = out.json()
    assert data["status"] == 200 and data["recordId"] is None
    assert data["answer"][0]["blocks"][0]["text"] == "straight from the host"
    sent = server.upstream.requests[-1]
    assert sent.json["model"] == "gpt-4o"
    assert SECRET not in out.text


async def test_a_running_call_nobody_watches_is_in_flight_when_listed_fetched_or_searched(
    server: Server,
) -> None:
    """With no WebSocket client and no recording session, a running call's in-flight record
    is built when the live records are read, not by a timer: nothing is built while nobody
    looks, and the list, one record and the search (which reads on another thread) each
    see the call in flight. It ends as one record, final."""
    import asyncio

    gate = asyncio.Event()

    async def gated_sleep(_seconds: float) -> None:
        await gate.wait()

    setattr(server.upstream, "_sleep", gated_sleep)  # noqa: B010  (the fake's one delay)
    server.upstream.script(Reply.text("held answer", delay_first=1))
    body = {"model": server.model("oa"), "messages": [{"role": "user", "content": "OKAPI?"}]}
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        call = asyncio.create_task(client.post("/v1/chat/completions", json=body))
        for _ in range(300):  # bounded: 3 s, until the upstream holds the request
            if server.upstream.requests:
                break
            await asyncio.sleep(0.01)
        assert server.upstream.requests, "the call never reached the upstream"
        await asyncio.sleep(0.05)  # well past the in-flight delay (5 ms): the record is due
        buffer = server.runtime.inspector.buffer
        assert not server.runtime.inspector.watched()
        assert len(buffer) == 0  # due, but nobody watched: not built yet
        (hit,) = (await search(server, "OKAPI"))["results"]
        assert hit["live"] is True
        listed = (await server.api("GET", P + "/requests")).json()
        assert [(r["id"], r["status"]) for r in listed] == [(hit["id"], "in-flight")]
        one = await server.api("GET", f"{P}/requests/{hit['id']}")
        assert one.status_code == 200 and one.json()["status"] == "in-flight"
        gate.set()
        resp = await call
    assert resp.status_code == 200 and resp.headers["x-omniroute-request-id"] == hit["id"]
    final = (await server.api("GET", P + "/requests")).json()
    assert [(r["id"], r["status"]) for r in final] == [(hit["id"], 200)]
