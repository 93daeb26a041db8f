"""Wire fidelity through /v1 (issue 8): what the client sent that the upstream must see, and what
the upstream said that the client must see. The fake upstream records every request it got."""

from __future__ import annotations

import asyncio
from typing import Any

import anthropic
import httpx
import openai

from tests.fakes.upstream import Reply
from tests.web.harness import Server

CLIENT_KEY = "sk-client-own-key-0123456789"
MESSAGES = [{"role": "user", "content": "hi"}]


# --------------------------------------------------------------------------- client headers


async def _sent_by_anthropic_sdk(server: Server, kind: str, headers: dict[str, str]) -> Any:
    """The headers the upstream got for one Anthropic SDK call carrying ``headers``."""
    client = anthropic.AsyncAnthropic(base_url=server.url, api_key=CLIENT_KEY)
    await client.messages.create(
        model=server.model(kind),
        max_tokens=50,
        messages=MESSAGES,  # type: ignore[arg-type]
        extra_headers=headers,
    )
    return server.upstream.requests[-1].headers


async def _sent_by_openai_sdk(server: Server, kind: str, headers: dict[str, str]) -> Any:
    """The headers the upstream got for one OpenAI SDK chat call carrying ``headers``."""
    client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key=CLIENT_KEY)
    await client.chat.completions.create(
        model=server.model(kind),
        messages=MESSAGES,  # type: ignore[arg-type]
        extra_headers=headers,
    )
    return server.upstream.requests[-1].headers


async def test_client_headers_are_dropped_anthropic_beta_and_version(server: Server) -> None:
    """Claude Code's ``anthropic-beta`` and ``anthropic-version`` reach an Anthropic upstream on
    a same-format call; the client's own key does not."""
    sent = await _sent_by_anthropic_sdk(
        server,
        "an",
        {
            "anthropic-beta": "interleaved-thinking-2025-05-14,oauth-2025-04-20",
            "anthropic-version": "2024-10-22",
        },
    )
    assert sent["anthropic-beta"] == "interleaved-thinking-2025-05-14"  # no auth-mode beta
    assert sent["anthropic-version"] == "2024-10-22"
    assert sent["x-api-key"] == "sk-test-an-0123456789abcdef"
    assert CLIENT_KEY not in str(sent)


async def test_client_headers_are_dropped_anthropic_beta_from_another_format(
    server: Server,
) -> None:
    """From an OpenAI client the beta flag still goes to Anthropic, but the version stays the
    router's: the body Anthropic gets was written by the router, in the router's version."""
    sent = await _sent_by_openai_sdk(
        server, "an", {"anthropic-beta": "context-1m-2025-08-07", "anthropic-version": "1999"}
    )
    assert sent["anthropic-beta"] == "context-1m-2025-08-07"
    assert sent["anthropic-version"] == "2023-06-01"
    assert CLIENT_KEY not in str(sent)


async def test_client_headers_are_dropped_openai_beta(server: Server) -> None:
    sent = await _sent_by_openai_sdk(
        server, "oa", {"OpenAI-Beta": "assistants=v2", "anthropic-beta": "x-2025"}
    )
    assert sent["openai-beta"] == "assistants=v2"
    assert "anthropic-beta" not in sent  # meaningless to an OpenAI upstream
    assert sent["authorization"] == "Bearer sk-test-oa-0123456789abcdef"


async def test_client_headers_are_dropped_anthropic_headers_never_reach_openai(
    server: Server,
) -> None:
    sent = await _sent_by_anthropic_sdk(
        server, "oa", {"anthropic-beta": "interleaved-thinking-2025-05-14"}
    )
    assert "anthropic-beta" not in sent and "anthropic-version" not in sent
    assert "x-api-key" not in sent


async def _sent_by_gemini_call(server: Server, kind: str, headers: dict[str, str]) -> Any:
    """The headers the upstream got for one generateContent call carrying ``headers``."""
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    async with httpx.AsyncClient() as http:
        resp = await http.post(
            f"{server.url}/v1beta/models/{server.model(kind)}:generateContent",
            json=body,
            headers=headers,
        )
    assert resp.status_code == 200, resp.text
    return server.upstream.requests[-1].headers


async def test_client_headers_are_dropped_goog_api_client(server: Server) -> None:
    headers = {"x-goog-api-client": "google-genai-sdk/1.0 gl-python/3.12", "x-goog-api-key": "c"}
    sent = await _sent_by_gemini_call(server, "ge", headers)
    assert sent["x-goog-api-client"] == headers["x-goog-api-client"]
    assert sent["x-goog-api-key"] == "sk-test-ge-0123456789abcdef"
    # Translated, the SDK's identification would describe a body it did not write.
    assert "x-goog-api-client" not in await _sent_by_gemini_call(server, "oa", headers)


# --------------------------------------------------------------------------- provider URLs


async def test_provider_urls_must_be_forgiving(server: Server) -> None:
    """The SDKs' base URLs (no version segment) work as connection URLs: the API normalises
    them once, shows the result, and calls land on the versioned endpoints."""
    up = server.upstream.url
    resp = await server.api(
        "POST", "/api/providers", json={"provider": "anthropic", "name": "an-sdk", "url": up + "/"}
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["url"] == up + "/v1"
    resp = await server.api(
        "POST", "/api/providers", json={"provider": "gemini", "name": "ge-sdk", "url": up}
    )
    assert resp.status_code == 201, resp.text
    ge_id = resp.json()["id"]
    assert resp.json()["url"] == up + "/v1beta"

    client = anthropic.AsyncAnthropic(base_url=server.url, api_key=CLIENT_KEY)
    await client.messages.create(
        model="an-sdk/claude-sonnet-4",
        max_tokens=50,
        messages=MESSAGES,  # type: ignore[arg-type]
    )
    assert server.upstream.requests[-1].path == "/v1/messages"
    oa = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key=CLIENT_KEY)
    await oa.chat.completions.create(model="ge-sdk/gemini-2.5-flash", messages=MESSAGES)  # type: ignore[arg-type]
    assert server.upstream.requests[-1].path == "/v1beta/models/gemini-2.5-flash:generateContent"

    # PATCH normalises too; a URL that is not one is a field-level 400.
    resp = await server.api(
        "PATCH", f"/api/providers/{ge_id}", json={"url": up + "/v1beta/models?pageSize=5"}
    )
    assert resp.status_code == 200 and resp.json()["url"] == up + "/v1beta"
    resp = await server.api("PATCH", f"/api/providers/{ge_id}", json={"url": "localhost:9"})
    assert resp.status_code == 400
    assert [d["field"] for d in resp.json()["error"]["details"]] == ["url"]


# --------------------------------------------------------------------------- bare model names


async def _chat(server: Server, model: str) -> httpx.Response:
    """One chat call over plain HTTP: no SDK retries, so a 429 itself is what is seen."""
    body = {"model": model, "messages": MESSAGES}
    async with httpx.AsyncClient() as http:
        return await http.post(server.url + "/v1/chat/completions", json=body)


async def test_a_typo_reaches_an_upstream(server: Server) -> None:
    """Connections without a model list (the oa/an/ge lanes) no longer catch every bare name:
    a typo is a 404 with suggestions, and no upstream is called."""
    await server.add_connection("openai-2", models=["gpt-4o-mini", "gpt-4o"])
    before = len(server.upstream.requests)
    resp = await _chat(server, "gpt-4o-mni")
    assert resp.status_code == 404, resp.text
    error = resp.json()["error"]
    assert error["code"] == "model_not_found"
    assert "gpt-4o-mini" in error["message"]
    resp = await server.api("POST", "/api/combos/test", json={"model": "totally-made-up"})
    assert resp.status_code == 404, resp.text
    assert resp.json()["error"]["code"] == "model_not_found"
    assert len(server.upstream.requests) == before

    # The listed name still resolves; an unlisted one is served as connection/model only.
    assert (await _chat(server, "gpt-4o-mini")).headers["x-omniroute-provider"] == "openai-2"
    resp = await _chat(server, "llama-3.3-70b")
    assert resp.status_code == 404
    assert "oa/llama-3.3-70b" in resp.json()["error"]["message"]  # the way to reach it
    resp = await _chat(server, "oa/llama-3.3-70b")
    assert resp.status_code == 200 and resp.headers["x-omniroute-provider"] == "oa"


async def test_bare_name_listed_twice_goes_by_priority_then_creation(server: Server) -> None:
    """Two connections list the model: the same one serves it every time (priority, then the
    older one, never the name's alphabetical order), the next one is its failover, and the
    response headers name the connection that answered."""
    await server.add_connection("zz-first", models=["shared-model"])
    late = await server.add_connection("aa-second", models=["shared-model"])
    for _ in range(3):
        resp = await _chat(server, "shared-model")
        assert resp.status_code == 200, resp.text
        assert resp.headers["x-omniroute-provider"] == "zz-first"
        assert resp.headers["x-omniroute-model"] == "shared-model"
    server.upstream.script(Reply.error(500, "boom"), Reply.text("from the second"))
    resp = await _chat(server, "shared-model")
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-omniroute-provider"] == "aa-second"
    assert resp.headers["x-omniroute-fallback-attempts"] == "1"
    resp = await server.api("PATCH", f"/api/providers/{late}", json={"priority": -1})
    assert resp.status_code == 200, resp.text
    assert (await _chat(server, "shared-model")).headers["x-omniroute-provider"] == "aa-second"
    plan = (await server.api("POST", "/api/combos/test", json={"model": "shared-model"})).json()
    assert [s["connection"] for s in plan["steps"]] == ["aa-second", "zz-first"]


# --------------------------------------------------------------------------- rate limits


def _upstream_calls(server: Server) -> int:
    return sum(1 for r in server.upstream.requests if r.method == "POST")


async def test_retry_after_is_lost(server: Server) -> None:
    """A final 429 gives the client the upstream's Retry-After and x-ratelimit-* headers."""
    limits = {
        "retry-after": "17",
        "x-ratelimit-limit-requests": "500",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "17s",
    }
    server.upstream.script(Reply.error(429, "Rate limit reached for gpt-4o", headers=limits))
    resp = await _chat(server, "oa/gpt-4o")
    assert resp.status_code == 429, resp.text
    for name, value in limits.items():
        assert resp.headers[name] == value
    assert resp.json()["error"]["requestId"]


async def test_retry_after_from_a_gemini_body_becomes_a_header(server: Server) -> None:
    body = {
        "error": {
            "code": 429,
            "message": "Resource has been exhausted",
            "status": "RESOURCE_EXHAUSTED",
            "details": [
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "6.2s"}
            ],
        }
    }
    server.upstream.script(Reply.error(429, "exhausted", body=body))
    resp = await _chat(server, "ge/gemini-2.5-flash")
    assert resp.status_code == 429, resp.text
    assert resp.headers["retry-after"] == "7"


async def test_a_429_on_one_model_cools_down_the_whole_connection(server: Server) -> None:
    """Issue 12: a 429 for one model cools down that model on the connection, not the
    connection: another model on it still answers; the limited one is answered 429 with the
    remaining cooldown, without another upstream call."""
    server.upstream.script(Reply.error(429, "slow down", headers={"retry-after": "30"}))
    assert (await _chat(server, "oa/model-a")).status_code == 429
    other = await _chat(server, "oa/model-b")
    assert other.status_code == 200, other.text
    calls = _upstream_calls(server)
    again = await _chat(server, "oa/model-a")
    assert again.status_code == 429, again.text
    assert again.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(again.headers["retry-after"]) <= 30
    assert _upstream_calls(server) == calls  # answered from the cooldown


async def test_an_account_wide_429_cools_down_the_connection(server: Server) -> None:
    quota = {
        "error": {
            "message": "You exceeded your current quota",
            "type": "insufficient_quota",
            "param": None,
            "code": "insufficient_quota",
        }
    }
    server.upstream.script(Reply.error(429, "quota", body=quota))
    assert (await _chat(server, "oa/model-a")).status_code == 429
    calls = _upstream_calls(server)
    other = await _chat(server, "oa/model-b")
    assert other.status_code == 429, other.text
    assert int(other.headers["retry-after"]) >= 1
    assert _upstream_calls(server) == calls


async def test_every_attempt_cooling_down_answers_429_with_the_shortest_wait(
    server: Server,
) -> None:
    nodes = [
        {"connectionId": server.connection_ids["oa"], "model": "m-1"},
        {"connectionId": server.connection_ids["an"], "model": "m-2"},
    ]
    resp = await server.api(
        "POST", "/api/combos", json={"name": "duo", "strategy": "priority", "nodes": nodes}
    )
    assert resp.status_code == 201, resp.text
    server.upstream.script(
        Reply.error(429, "later", headers={"retry-after": "40"}),
        Reply.error(429, "sooner", headers={"retry-after": "9"}),
    )
    first = await _chat(server, "duo")
    assert first.status_code == 429, first.text
    assert first.headers["retry-after"] == "9"
    assert [a["status"] for a in first.json()["error"]["attempts"]] == [429, 429]
    calls = _upstream_calls(server)
    second = await _chat(server, "duo")
    assert second.status_code == 429, second.text
    assert 1 <= int(second.headers["retry-after"]) <= 9
    assert [a["skipped"] for a in second.json()["error"]["attempts"]] == ["rate_limited"] * 2
    assert _upstream_calls(server) == calls


# --------------------------------------------------------------------------- Responses


RESPONSES_BODY: dict[str, Any] = {
    "input": [
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAAAB-opaque"},
        {"role": "user", "content": [{"type": "input_text", "text": "what is new?"}]},
    ],
    "tools": [{"type": "web_search"}],
    "previous_response_id": "resp_previous_123",
    "include": ["reasoning.encrypted_content"],
    "store": False,
    "reasoning": {"effort": "high", "summary": "auto"},
}


async def _call_log(server: Server, request_id: str) -> dict[str, Any]:
    """The call-log row of one call (written just after the client has its answer)."""
    for _ in range(100):
        resp = await server.api("GET", f"/api/usage/call-logs/{request_id}")
        if resp.status_code == 200:
            return resp.json()  # type: ignore[no-any-return]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no call-log row for {request_id}")


async def test_responses_to_an_openai_connection_with_responses_pass_through(
    server: Server,
) -> None:
    """A connection that serves /responses gets Responses calls untranslated: built-in tools,
    encrypted reasoning and previous_response_id reach it; nothing is listed as dropped."""
    resp = await server.api(
        "POST", "/api/providers", json={"provider": "openai", "url": "https://api.openai.com"}
    )
    assert resp.status_code == 201 and resp.json()["supportsResponses"] is True  # the default
    oai = await server.add_connection("oai")
    assert (await server.api("GET", f"/api/providers/{oai}")).json()["supportsResponses"] is False
    resp = await server.api("PATCH", f"/api/providers/{oai}", json={"supportsResponses": True})
    assert resp.status_code == 200 and resp.json()["supportsResponses"] is True

    client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key=CLIENT_KEY, max_retries=0)
    raw = await client.responses.with_raw_response.create(model="oai/gpt-5", **RESPONSES_BODY)
    assert raw.parse().output_text == "Hello from fake upstream"
    sent = server.upstream.requests[-1]
    assert sent.path == "/v1/responses"
    assert sent.json == {"model": "gpt-5", **RESPONSES_BODY}
    row = await _call_log(server, raw.headers["x-omniroute-request-id"])
    assert (row["targetFormat"], row["droppedFields"]) == ("responses", [])

    # Streaming passes through too: the upstream's own event stream.
    text = ""
    stream = await client.responses.create(model="oai/gpt-5", stream=True, **RESPONSES_BODY)
    async for event in stream:
        if event.type == "response.output_text.delta":
            text += event.delta
    assert text == "Hello from fake upstream"
    assert server.upstream.requests[-1].json == {"model": "gpt-5", "stream": True, **RESPONSES_BODY}


async def test_responses_to_a_chat_only_connection_are_translated_and_say_what_was_dropped(
    server: Server,
) -> None:
    client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key=CLIENT_KEY, max_retries=0)
    raw = await client.responses.with_raw_response.create(model="oa/gpt-5", **RESPONSES_BODY)
    assert raw.parse().output_text == "Hello from fake upstream"
    assert server.upstream.requests[-1].path == "/v1/chat/completions"
    row = await _call_log(server, raw.headers["x-omniroute-request-id"])
    assert row["targetFormat"] == "openai-chat"
    assert {"tools", "previous_response_id"} <= set(row["droppedFields"])
    resp = await server.api(
        "PATCH", f"/api/providers/{server.connection_ids['an']}", json={"supportsResponses": True}
    )
    assert resp.status_code == 400
    assert [d["field"] for d in resp.json()["error"]["details"]] == ["supportsResponses"]
