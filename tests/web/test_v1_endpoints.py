"""The smaller /v1 endpoints: model listings, pinned provider routes, count_tokens, index,
and the same paths under /api/v1."""

from __future__ import annotations

import anthropic
import openai
import pytest

from tests.fakes.upstream import Reply
from tests.web.harness import Server


async def test_index(server: Server) -> None:
    for path in ("/v1", "/api/v1"):
        body = (await server.api("GET", path)).json()
        assert body["name"] == "llmtap" and body["status"] == "ok" and body["version"]


async def test_models_lists_connections_models_aliases_and_combos(server: Server) -> None:
    await server.api(
        "PATCH", f"/api/providers/{server.connection_ids['oa']}", json={"models": ["gpt-4o"]}
    )
    await server.api("POST", "/api/models/alias", json={"alias": "fast", "target": "oa/gpt-4o"})
    client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="unused")
    ids = {m.id: m.owned_by for m in (await client.models.list()).data}
    assert ids["oa/gpt-4o"] == "openai"
    assert ids["fast"] == "alias"
    also = (await server.api("GET", "/api/v1/models")).json()["data"]
    assert {m["id"] for m in also} == set(ids)


async def test_provider_models_and_unknown_provider(server: Server) -> None:
    await server.api(
        "PATCH", f"/api/providers/{server.connection_ids['an']}", json={"models": ["claude-x"]}
    )
    data = (await server.api("GET", "/v1/providers/an/models")).json()["data"]
    assert [m["id"] for m in data] == ["claude-x"]
    resp = await server.api("GET", "/v1/providers/nope/models")
    assert resp.status_code == 400
    assert resp.json()["error"]["details"][0]["field"] == "provider"


async def test_pinned_provider_route(server: Server) -> None:
    server.upstream.script(Reply.text("pinned"))
    client = openai.AsyncOpenAI(base_url=server.url + "/v1/providers/ge", api_key="unused")
    raw = await client.chat.completions.with_raw_response.create(
        model="gemini-2.5-flash", messages=[{"role": "user", "content": "x"}]
    )
    assert raw.parse().choices[0].message.content == "pinned"
    assert raw.headers["x-omniroute-provider"] == "ge"
    assert server.upstream.requests[-1].path.endswith("/models/gemini-2.5-flash:generateContent")


async def test_count_tokens(server: Server) -> None:
    resp = await server.api(
        "POST",
        "/v1/messages/count_tokens",
        json={
            "model": "an/claude-sonnet-4",
            "messages": [{"role": "user", "content": "hello " * 100}],
        },
    )
    assert resp.status_code == 200
    assert 100 <= resp.json()["input_tokens"] <= 300


async def test_count_tokens_uses_openais_tokenizer_for_openai_models(server: Server) -> None:
    """The official SDK's count_tokens against an OpenAI model: OpenAI's own count (two
    o200k tokens), not the four-characters-a-token estimate (three)."""
    client = anthropic.AsyncAnthropic(base_url=server.url, api_key="unused")
    count = await client.messages.count_tokens(
        model="oa/gpt-4o-mini", messages=[{"role": "user", "content": "hello world"}]
    )
    assert count.input_tokens == 2
    await client.close()


async def test_api_v1_prefix_routes_calls(server: Server) -> None:
    server.upstream.script(Reply.text("via api prefix"))
    client = openai.AsyncOpenAI(base_url=server.url + "/api/v1", api_key="unused")
    done = await client.chat.completions.create(
        model="oa/gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
    )
    assert done.choices[0].message.content == "via api prefix"


async def test_input_without_messages_on_chat_path_is_a_responses_body(server: Server) -> None:
    server.upstream.script(Reply.text("responses via chat path"))
    resp = await server.api(
        "POST", "/v1/chat/completions", json={"model": "oa/gpt-4o-mini", "input": "hello"}
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["object"] == "response"


async def test_dropped_fields_are_listed_in_the_call_log(server: Server) -> None:
    server.upstream.script(Reply.text("ok"))
    resp = await server.api(
        "POST",
        "/v1/chat/completions",
        json={
            "model": "an/claude-sonnet-4",
            "seed": 7,
            "messages": [{"role": "user", "content": "x"}],
        },
    )
    assert resp.status_code == 200
    request_id = resp.headers["x-omniroute-request-id"]
    server.runtime.writer.flush(5)
    row = (await server.api("GET", f"/api/usage/call-logs/{request_id}")).json()
    assert "seed" in row["droppedFields"], row


@pytest.mark.parametrize(
    "body",
    [
        {"model": "m", "messages": []},
        {"model": "m", "input": "hi"},
        {"model": "m", "input": "hi", "messages": []},
        {"model": "m", "system": "s", "messages": []},
        {"contents": []},
        {"request": {"contents": []}},
        {},
        None,
    ],
)
def test_the_chat_route_picks_the_format_the_codecs_detect(body: object) -> None:
    """The chat completions route resolves a call's format without asking every codec; it
    must give format_for_path's answer for each of the route's paths."""
    from router.formats import format_for_path
    from web.v1 import _ROUTES, _both, chat_completions, chat_path_format

    paths = [p for _m, ps, handler in _ROUTES if handler is chat_completions for p in ps]
    for path in (full.replace("{provider}", "oa") for p in paths for full in _both(p)):
        assert chat_path_format(body) == format_for_path(path, body), path
