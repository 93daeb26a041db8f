"""The official SDKs against the router, for every inbound x upstream format lane.

Inbound: OpenAI chat, OpenAI Responses, Anthropic messages (SDKs) and Gemini (raw HTTP).
Upstream: OpenAI-compatible, Anthropic, Gemini connections on one fake upstream.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.fakes.upstream import Reply, ToolCall
from tests.web.harness import (
    LANES,
    WEATHER_TOOL_ANTHROPIC,
    WEATHER_TOOL_OPENAI,
    WEATHER_TOOL_RESPONSES,
    Server,
)
from tests.web.test_v1_lanes_matrix import anthropic_tool_loop

PARALLEL = [
    ToolCall("call_a1", "get_weather", '{"city": "Paris"}'),
    ToolCall("call_b2", "get_weather", '{"city": "Tokyo"}'),
]


pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture
def server(shared_server: Server) -> Server:
    """One router and fake upstream for the module (reset before each test)."""
    return shared_server


def assert_figures(
    headers: httpx.Headers | dict[str, str], tokens_in: int, tokens_out: int
) -> None:
    assert headers["x-omniroute-tokens-in"] == str(tokens_in)
    assert headers["x-omniroute-tokens-out"] == str(tokens_out)
    assert float(headers["x-omniroute-response-cost"]) >= 0
    assert headers["x-omniroute-request-id"]


def trailer(raw: str) -> dict[str, str]:
    out = {}
    for line in raw.splitlines():
        if line.startswith(": x-omniroute-"):
            name, _, value = line[2:].partition("=")
            out[name] = value
    return out


# --------------------------------------------------------------------------- OpenAI chat in


@pytest.mark.parametrize("lane", LANES)
async def test_openai_chat_text(server: Server, lane: str) -> None:
    server.upstream.script(Reply.text("Bonjour le monde", usage=(12, 4, 0, 0, 0)))
    client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="unused")
    raw = await client.chat.completions.with_raw_response.create(
        model=server.model(lane), messages=[{"role": "user", "content": "Say hi in French"}]
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "Bonjour le monde"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.prompt_tokens == 12
    assert_figures(raw.headers, 12, 4)
    assert raw.headers["x-omniroute-provider"] == lane
    sent = server.upstream.requests[-1]
    assert "Say hi in French" in json.dumps(sent.json)


@pytest.mark.parametrize("lane", LANES)
async def test_openai_chat_stream_text(server: Server, lane: str) -> None:
    server.upstream.script(Reply.text("one two three four", usage=(9, 4, 0, 0, 0)))
    client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="unused")
    stream = await client.chat.completions.create(
        model=server.model(lane),
        messages=[{"role": "user", "content": "count"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, usage, finish, deltas = "", None, None, 0
    async for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            if choice.delta.content:
                text += choice.delta.content
                deltas += 1
            finish = choice.finish_reason or finish
    assert text == "one two three four"
    assert deltas >= 2, "the reply must arrive in several deltas, not one lump"
    assert finish == "stop"
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (9, 4)


@pytest.mark.parametrize("lane", LANES)
async def test_openai_chat_stream_without_include_usage_gets_no_usage_chunk(
    server: Server, lane: str
) -> None:
    server.upstream.script(Reply.text("hello there", usage=(3, 2, 0, 0, 0)))
    async with (
        httpx.AsyncClient() as http,
        http.stream(
            "POST",
            server.url + "/v1/chat/completions",
            json={
                "model": server.model(lane),
                "stream": True,
                "messages": [{"role": "user", "content": "hi"}],
            },
        ) as resp,
    ):
        raw = (await resp.aread()).decode()
    chunks = [
        json.loads(line[6:])
        for line in raw.splitlines()
        if line.startswith("data: ") and line != "data: [DONE]"
    ]
    assert all(c.get("choices") for c in chunks), (
        "router.md case 5: the extra usage chunk is stripped"
    )
    assert raw.rstrip().endswith("data: [DONE]")
    figures = trailer(raw)
    assert figures["x-omniroute-tokens-in"] == "3"
    assert figures["x-omniroute-tokens-out"] == "2"
    assert "x-omniroute-response-cost" in figures
    # The router asked upstream for usage anyway (it needs it for cost).
    if lane == "oa":
        assert server.upstream.requests[-1].json["stream_options"]["include_usage"] is True


@pytest.mark.parametrize("lane", LANES)
@pytest.mark.parametrize("stream", [False, True])
async def test_openai_chat_parallel_tool_calls(server: Server, lane: str, stream: bool) -> None:
    server.upstream.script(Reply.tools(PARALLEL, usage=(20, 10, 0, 0, 0)))
    client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="unused")
    kwargs: dict[str, Any] = {
        "model": server.model(lane),
        "messages": [{"role": "user", "content": "Weather in Paris and Tokyo?"}],
        "tools": [WEATHER_TOOL_OPENAI],
    }
    if stream:
        calls: dict[int, dict[str, str]] = {}
        finish = None
        async for chunk in await client.chat.completions.create(stream=True, **kwargs):
            for choice in chunk.choices:
                finish = choice.finish_reason or finish
                for tc in choice.delta.tool_calls or []:
                    slot = calls.setdefault(tc.index, {"id": "", "name": "", "args": ""})
                    slot["id"] += tc.id or ""
                    if tc.function is not None:
                        slot["name"] += tc.function.name or ""
                        slot["args"] += tc.function.arguments or ""
        got = [(calls[i]["name"], json.loads(calls[i]["args"])) for i in sorted(calls)]
        ids = [calls[i]["id"] for i in sorted(calls)]
    else:
        completion = await client.chat.completions.create(**kwargs)
        finish = completion.choices[0].finish_reason
        tcs = completion.choices[0].message.tool_calls or []
        got = [(tc.function.name, json.loads(tc.function.arguments)) for tc in tcs]  # type: ignore[union-attr]
        ids = [tc.id for tc in tcs]
    assert finish == "tool_calls"
    assert got == [("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Tokyo"})]
    assert len(set(ids)) == 2 and all(ids)


@pytest.mark.parametrize("lane", LANES)
async def test_openai_chat_multi_turn_tool_round_trip(server: Server, lane: str) -> None:
    server.upstream.script(
        Reply.tools([ToolCall("call_x/1", "get_weather", '{"city":"Oslo"}')]),
        Reply.text("It is 3 degrees in Oslo."),
    )
    client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="unused")
    messages: list[Any] = [{"role": "user", "content": "Weather in Oslo?"}]
    first = await client.chat.completions.create(
        model=server.model(lane), messages=messages, tools=[WEATHER_TOOL_OPENAI]
    )
    call = (first.choices[0].message.tool_calls or [])[0]
    messages.append(first.choices[0].message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": "3C, cloudy"})
    second = await client.chat.completions.create(
        model=server.model(lane), messages=messages, tools=[WEATHER_TOOL_OPENAI]
    )
    assert second.choices[0].message.content == "It is 3 degrees in Oslo."
    upstream_turn = json.dumps(server.upstream.requests[-1].json)
    assert "3C, cloudy" in upstream_turn
    assert "Oslo" in upstream_turn


# --------------------------------------------------------------------------- Anthropic in


@pytest.mark.parametrize("lane", LANES)
async def test_anthropic_text(server: Server, lane: str) -> None:
    server.upstream.script(Reply.text("Hello, human", usage=(30, 6, 0, 0, 0)))
    client = anthropic.AsyncAnthropic(base_url=server.url, api_key="unused")
    raw = await client.messages.with_raw_response.create(
        model=server.model(lane),
        max_tokens=100,
        system="Be brief.",
        messages=[{"role": "user", "content": "hi"}],
    )
    message = await raw.parse()
    assert message.content[0].type == "text"
    assert message.content[0].text == "Hello, human"
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens == 6
    assert_figures(raw.headers, 30, 6)
    assert "Be brief." in json.dumps(server.upstream.requests[-1].json)


@pytest.mark.parametrize("lane", LANES)
async def test_anthropic_stream_text(server: Server, lane: str) -> None:
    server.upstream.script(Reply.text("alpha beta gamma", usage=(8, 3, 0, 0, 0)))
    client = anthropic.AsyncAnthropic(base_url=server.url, api_key="unused")
    async with client.messages.stream(
        model=server.model(lane), max_tokens=50, messages=[{"role": "user", "content": "go"}]
    ) as stream:
        pieces = [text async for text in stream.text_stream]
        final = await stream.get_final_message()
    assert "".join(pieces) == "alpha beta gamma"
    assert len(pieces) >= 2
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 3


@pytest.mark.parametrize("lane", LANES)
@pytest.mark.parametrize("stream", [False, True])
async def test_anthropic_parallel_tool_use(server: Server, lane: str, stream: bool) -> None:
    server.upstream.script(Reply.tools(PARALLEL, text="Checking both."))
    client = anthropic.AsyncAnthropic(base_url=server.url, api_key="unused")
    kwargs: dict[str, Any] = {
        "model": server.model(lane),
        "max_tokens": 200,
        "tools": [WEATHER_TOOL_ANTHROPIC],
        "messages": [{"role": "user", "content": "Paris and Tokyo weather"}],
    }
    if stream:
        async with client.messages.stream(**kwargs) as s:
            message = await s.get_final_message()
    else:
        message = await client.messages.create(**kwargs)
    uses = [b for b in message.content if b.type == "tool_use"]
    assert [(u.name, u.input) for u in uses] == [
        ("get_weather", {"city": "Paris"}),
        ("get_weather", {"city": "Tokyo"}),
    ]
    assert message.stop_reason == "tool_use"
    assert all(u.id for u in uses) and len({u.id for u in uses}) == 2


@pytest.mark.parametrize("lane", LANES)
async def test_anthropic_multi_turn_tool_round_trip(server: Server, lane: str) -> None:
    server.upstream.script(
        Reply.tools([ToolCall("call_9", "get_weather", '{"city":"Lima"}')]),
        Reply.text("Lima is sunny."),
    )
    second = await anthropic_tool_loop(server, lane)  # the tool answers "3C, cloudy"
    assert second.content[0].type == "text" and second.content[0].text == "Lima is sunny."
    assert "3C, cloudy" in json.dumps(server.upstream.requests[-1].json)


# --------------------------------------------------------------------------- Responses in


@pytest.mark.parametrize("lane", LANES)
async def test_responses_text(server: Server, lane: str) -> None:
    server.upstream.script(Reply.text("Responses work", usage=(14, 2, 0, 0, 0)))
    client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="unused")
    raw = await client.responses.with_raw_response.create(
        model=server.model(lane), input="hello", instructions="Answer plainly."
    )
    response = raw.parse()
    assert response.output_text == "Responses work"
    assert response.status == "completed"
    assert response.usage is not None and response.usage.input_tokens == 14
    assert_figures(raw.headers, 14, 2)


@pytest.mark.parametrize("lane", LANES)
async def test_responses_stream_with_tools(server: Server, lane: str) -> None:
    server.upstream.script(Reply.tools(PARALLEL))
    client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="unused")
    async with client.responses.stream(
        model=server.model(lane), input="Paris and Tokyo?", tools=[WEATHER_TOOL_RESPONSES]
    ) as stream:
        types = [event.type async for event in stream]
        final = await stream.get_final_response()
    calls = [item for item in final.output if item.type == "function_call"]
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_weather", {"city": "Tokyo"}),
    ]
    assert all(c.call_id for c in calls)
    assert "response.function_call_arguments.delta" in types
    assert types[-1] == "response.completed"


@pytest.mark.parametrize("lane", LANES)
async def test_responses_stream_text(server: Server, lane: str) -> None:
    server.upstream.script(Reply.text("streamed responses text"))
    client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="unused")
    async with client.responses.stream(model=server.model(lane), input="go") as stream:
        deltas = [e.delta async for e in stream if e.type == "response.output_text.delta"]
        final = await stream.get_final_response()
    assert "".join(deltas) == "streamed responses text"
    assert final.output_text == "streamed responses text"


# --------------------------------------------------------------------------- Gemini in


@pytest.mark.parametrize("lane", LANES)
async def test_gemini_generate_and_stream(server: Server, lane: str) -> None:
    server.upstream.script(Reply.text("gemini says hi", usage=(5, 3, 0, 0, 0)), Reply.text("a b c"))
    body = {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
        "systemInstruction": {"parts": [{"text": "be nice"}]},
    }
    model = server.model(lane)
    async with httpx.AsyncClient(base_url=server.url) as http:
        resp = await http.post(f"/v1beta/models/{model}:generateContent", json=body)
        assert resp.status_code == 200, resp.text
        data = resp.json()
        assert data["candidates"][0]["content"]["parts"][0]["text"] == "gemini says hi"
        assert data["usageMetadata"]["promptTokenCount"] == 5
        resp = await http.post(f"/v1beta/models/{model}:streamGenerateContent?alt=sse", json=body)
    events = [json.loads(line[6:]) for line in resp.text.splitlines() if line.startswith("data: ")]
    text = "".join(
        p.get("text", "") for e in events for p in e["candidates"][0]["content"].get("parts", [])
    )
    assert text == "a b c"
    assert events[-1]["candidates"][0]["finishReason"] == "STOP"


# --------------------------------------------------------------------------- thinking


@pytest.mark.parametrize("lane", ["an"])
async def test_anthropic_thinking_signature_passes_through(server: Server, lane: str) -> None:
    server.upstream.script(Reply.thinking("Let me think.", "sig-abc123", "Answer: 4"))
    client = anthropic.AsyncAnthropic(base_url=server.url, api_key="unused")
    async with client.messages.stream(
        model=server.model(lane),
        max_tokens=2000,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[{"role": "user", "content": "2+2"}],
    ) as s:
        message = await s.get_final_message()
    thinking = next(b for b in message.content if b.type == "thinking")
    assert thinking.thinking == "Let me think."
    assert thinking.signature == "sig-abc123"


# --------------------------------------------------------------------------- clients that leave


TERMINAL = {
    "responses": ("/v1/responses", '"type":"response.completed"'),
    "anthropic": ("/v1/messages", "event: message_stop"),
    "chat": ("/v1/chat/completions", "data: [DONE]"),
}


@pytest.mark.parametrize("inbound", list(TERMINAL))
# Anthropic's stream ends with message_stop, and the fake holds its EOF after it: the client
# always leaves first. (OpenAI chat ends with [DONE], which the router may read before the
# client leaves; a Gemini stream has no end marker but EOF.)
@pytest.mark.parametrize("lane", ["an"])
async def test_client_leaving_after_the_terminal_event_is_a_success(
    server: Server, inbound: str, lane: str
) -> None:
    """Codex closes its connection as soon as it reads ``response.completed``; the upstream may
    not have ended its stream yet. The client has the whole answer: the call succeeded."""
    server.upstream.script(Reply.text("all of it", hold_eof=30))
    path, terminal = TERMINAL[inbound]
    body: dict[str, Any] = {"model": server.model(lane), "stream": True}
    if inbound == "responses":
        body["input"] = "hi"
    else:
        body["messages"] = [{"role": "user", "content": "hi"}]
        body["max_tokens"] = 50
    before = {r["id"] for r in await server.call_logs()}
    seen = ""
    async with (
        httpx.AsyncClient(timeout=20) as http,
        http.stream("POST", server.url + path, json=body) as resp,
    ):
        async for line in resp.aiter_lines():
            seen += line + "\n"
            if terminal in line:
                break  # and hang up, like Codex
    assert terminal in seen and "all" in seen
    rows = await server.new_call_logs(before)
    assert [(r["status"], r["error"]) for r in rows] == [(200, None)]
