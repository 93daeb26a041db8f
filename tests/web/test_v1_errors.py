"""Bad input and bad upstreams: clear errors in the envelope, in-band errors mid-stream,
never a hung client, never a stack trace."""

from __future__ import annotations

import asyncio
import json
import socket

import anthropic
import httpx
import openai
import pytest

from tests.fakes.upstream import Reply
from tests.web.harness import Server

CHAT = {"model": "oa/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def assert_envelope(resp: httpx.Response, status: int, err_type: str | None = None) -> dict:
    assert resp.status_code == status, resp.text
    body = resp.json()
    err = body["error"]
    assert err["message"] and err["requestId"] == resp.headers["x-omniroute-request-id"]
    if err_type:
        assert err["type"] == err_type
    assert "Traceback" not in resp.text and "/work/" not in resp.text
    return err


async def test_malformed_json(server: Server) -> None:
    resp = await server.api(
        "POST",
        "/v1/chat/completions",
        content=b'{"model": ',
        headers={"content-type": "application/json"},
    )
    err = assert_envelope(resp, 400, "invalid_request_error")
    assert err["details"][0]["field"] == "body"


async def test_body_not_an_object(server: Server) -> None:
    resp = await server.api("POST", "/v1/messages", json=[1, 2])
    assert_envelope(resp, 400)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}]}, "model"),
        ("/v1/chat/completions", {"model": "oa/x"}, "messages"),
        ("/v1/chat/completions", {"model": "oa/x", "messages": "nope"}, "messages"),
        ("/v1/chat/completions", {**CHAT, "temperature": "hot"}, "temperature"),
        (
            "/v1/messages",
            {"model": "an/x", "messages": [{"role": "user", "content": "x"}]},
            "max_tokens",
        ),
        ("/v1/messages", {"model": "an/x", "max_tokens": "ten", "messages": []}, "max_tokens"),
        ("/v1/responses", {"model": "oa/x"}, "input"),
    ],
)
async def test_missing_and_wrong_fields(server: Server, path: str, body: dict, field: str) -> None:
    resp = await server.api("POST", path, json=body)
    err = assert_envelope(resp, 400, "invalid_request_error")
    assert any(field in d["field"] for d in err["details"]), err
    assert server.upstream.requests == [], "a bad request never reaches upstream"


async def test_unknown_model_is_404_with_suggestions(server: Server) -> None:
    resp = await server.api("POST", "/v1/chat/completions", json={**CHAT, "model": "nosuch/thing"})
    # No connection named "nosuch": the whole name is a bare model that no list contains.
    # Connections without a model list may still serve it, so it reaches upstream; make the
    # catalog explicit to get a 404.
    for conn_id in server.connection_ids.values():
        await server.api("PATCH", f"/api/providers/{conn_id}", json={"models": ["gpt-4o-mini"]})
    resp = await server.api("POST", "/v1/chat/completions", json={**CHAT, "model": "gpt-4o-mimi"})
    err = assert_envelope(resp, 404, "not_found_error")
    assert err["code"] == "model_not_found"
    assert "gpt-4o-mini" in err["message"]


async def test_oversized_body_is_413(server: Server) -> None:
    server.runtime.settings.max_request_mb = 1
    big = {**CHAT, "messages": [{"role": "user", "content": "x" * (2 << 20)}]}
    resp = await server.api("POST", "/v1/chat/completions", json=big)
    err = assert_envelope(resp, 413)
    assert err["code"] == "payload_too_large"


async def test_unknown_route_and_method_use_the_envelope(server: Server) -> None:
    assert_envelope(await server.api("GET", "/v1/nothing-here"), 404)
    assert_envelope(await server.api("GET", "/v1/chat/completions"), 405)


@pytest.mark.parametrize(
    ("reply", "status", "kind_word"),
    [
        (Reply.error(500, "upstream exploded"), 502, "exploded"),
        (Reply.error(429, "slow down", headers={"retry-after": "7"}), 429, "slow down"),
        (Reply.error(400, "bad thing in request"), 400, "bad thing"),
        (Reply.error(401, "invalid key"), 502, "invalid key"),
    ],
)
async def test_upstream_errors_map_to_status(
    server: Server, reply: Reply, status: int, kind_word: str
) -> None:
    server.upstream.script(reply)
    resp = await server.api("POST", "/v1/chat/completions", json=CHAT)
    err = assert_envelope(resp, status)
    assert kind_word in err["message"]
    assert "sk-test-oa" not in resp.text, "the provider key never appears in an error"


async def test_upstream_timeout_is_504(server: Server) -> None:
    server.runtime.router.timeouts.first_byte = 0.3
    server.upstream.script(Reply.text("late", delay_first=5))
    resp = await server.api("POST", "/v1/chat/completions", json=CHAT)
    err = assert_envelope(resp, 504)
    assert "no response within" in err["message"]


async def test_connection_refused_is_502(server: Server) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    resp = await server.api(
        "POST",
        "/api/providers",
        json={"provider": "openai", "name": "dead", "url": f"http://127.0.0.1:{dead_port}/v1"},
    )
    assert resp.status_code == 201
    resp = await server.api("POST", "/v1/chat/completions", json={**CHAT, "model": "dead/x"})
    err = assert_envelope(resp, 502)
    assert "dead" in err["message"]


@pytest.mark.parametrize("lane", ["oa", "an", "ge"])
async def test_case8_stream_cut_midway_becomes_in_band_error_openai_client(
    server: Server, lane: str
) -> None:
    server.upstream.script(Reply.text("one two three four five six", cut_after=4))
    client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
    stream = await client.chat.completions.create(
        model=server.model(lane), messages=[{"role": "user", "content": "go"}], stream=True
    )
    with pytest.raises(openai.APIError):
        async with asyncio.timeout(10):  # never a hung client
            async for _chunk in stream:
                pass


@pytest.mark.parametrize("lane", ["oa", "an", "ge"])
async def test_case8_stream_cut_midway_anthropic_client_gets_error_event(
    server: Server, lane: str
) -> None:
    server.upstream.script(Reply.text("alpha beta gamma delta epsilon", cut_after=4))
    client = anthropic.AsyncAnthropic(base_url=server.url, api_key="unused", max_retries=0)
    with pytest.raises(anthropic.APIError):
        async with asyncio.timeout(10):
            async with client.messages.stream(
                model=server.model(lane),
                max_tokens=50,
                messages=[{"role": "user", "content": "go"}],
            ) as stream:
                async for _event in stream:
                    pass


async def test_case8_responses_client_gets_response_failed(server: Server) -> None:
    server.upstream.script(Reply.text("alpha beta gamma delta epsilon", cut_after=4))
    async with httpx.AsyncClient() as http:
        resp = await http.post(
            server.url + "/v1/responses",
            json={"model": "an/claude-sonnet-4", "input": "go", "stream": True},
        )
    events = [line for line in resp.text.splitlines() if line.startswith("event: ")]
    assert events[-1] == "event: response.failed"


async def test_cut_before_any_byte_fails_over_to_next_connection(server: Server) -> None:
    # Same model on two connections: the first one's stream dies before any content.
    for lane in ("oa", "an"):
        await server.api(
            "PATCH",
            f"/api/providers/{server.connection_ids[lane]}",
            json={"models": ["shared-model"]},
        )
    server.upstream.script(Reply.error(503, "overloaded"), Reply.text("from the second"))
    client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
    raw = await client.chat.completions.with_raw_response.create(
        model="shared-model", messages=[{"role": "user", "content": "x"}]
    )
    assert raw.parse().choices[0].message.content == "from the second"
    assert raw.headers["x-omniroute-fallback-attempts"] == "1"


async def test_case11_client_disconnect_cancels_upstream_and_records_partial_usage(
    server: Server,
) -> None:
    server.upstream.script(
        Reply.text(
            " ".join(f"w{i}" for i in range(200)), chunk_delay=0.05, usage=(50, 200, 0, 0, 0)
        )
    )
    async with (
        httpx.AsyncClient(timeout=10) as http,
        http.stream(
            "POST", server.url + "/v1/chat/completions", json={**CHAT, "stream": True}
        ) as resp,
    ):
        got = 0
        async for _chunk in resp.aiter_bytes():
            got += 1
            if got >= 3:
                break  # the client goes away mid-stream
    async with asyncio.timeout(10):
        await server.upstream.disconnected.wait()
    assert server.upstream.connections_closed >= 1
    writer = server.runtime.writer
    assert writer.flush(5)
    from router.store import calllogs

    logs = calllogs.list_logs(10, 0)
    row = logs[0]
    assert row.status == 499
    assert row.tokens_in > 0 and row.tokens_out > 0, "partial usage is estimated and recorded"
    assert row.usage_estimated


async def test_case5_anthropic_message_start_has_input_tokens_and_final_usage(
    server: Server,
) -> None:
    server.upstream.script(Reply.text("x y z", usage=(40, 3, 30, 0, 0)))
    async with httpx.AsyncClient() as http:
        resp = await http.post(
            server.url + "/v1/messages",
            json={
                "model": "an/claude-sonnet-4",
                "max_tokens": 20,
                "stream": True,
                "messages": [{"role": "user", "content": "go"}],
            },
        )
    datas = [json.loads(line[6:]) for line in resp.text.splitlines() if line.startswith("data: ")]
    start = next(d for d in datas if d["type"] == "message_start")
    delta = next(d for d in datas if d["type"] == "message_delta")
    # IR input (40) includes the 30 cache reads; Anthropic's input_tokens excludes them.
    assert start["message"]["usage"]["input_tokens"] == 10
    assert start["message"]["usage"]["cache_read_input_tokens"] == 30
    assert delta["usage"]["output_tokens"] == 3


async def test_case9_sse_headers_and_trailer(server: Server) -> None:
    server.upstream.script(Reply.text("abc def"))
    async with httpx.AsyncClient() as http:
        resp = await http.post(server.url + "/v1/chat/completions", json={**CHAT, "stream": True})
    assert resp.headers["content-type"].startswith("text/event-stream")
    assert resp.headers["cache-control"] == "no-cache"
    assert resp.headers["x-accel-buffering"] == "no"
    assert ": x-omniroute-response-cost=" in resp.text
