"""The fake upstream's wire formats, proven against the official SDKs (and raw httpx for Gemini)."""

from __future__ import annotations

import asyncio
import json
import ssl
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from tests.fakes.upstream import FakeUpstream, Reply, ToolCall
from tests.router.formats.responses.samples import check_event_types

TOOLS_OPENAI = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]
CALLS = [
    ToolCall("call_a1", "get_weather", '{"city": "Paris", "unit": "c"}'),
    ToolCall("call_b2", "get_time", '{"tz": "Europe/Paris"}'),
]


def oai(fake: FakeUpstream) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{fake.url}/v1", api_key="sk-test", max_retries=0)


def ant(fake: FakeUpstream) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=fake.url, api_key="sk-ant-test", max_retries=0)


def sse_data(raw: bytes) -> list[str]:
    return [line[6:] for line in raw.decode().splitlines() if line.startswith("data: ")]


# ------------------------------------------------------------------------ OpenAI chat


async def test_openai_chat_non_stream_text_and_usage(fake_upstream: FakeUpstream) -> None:
    fake_upstream.script(Reply.text("Bonjour tout le monde", usage=(100, 20, 60, 0, 8)))
    async with oai(fake_upstream) as client:
        result = await client.chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": "hi"}]
        )
    assert result.choices[0].message.content == "Bonjour tout le monde"
    assert result.choices[0].finish_reason == "stop"
    assert result.model == "gpt-test"
    assert result.usage is not None
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (100, 20)
    assert result.usage.prompt_tokens_details is not None
    assert result.usage.prompt_tokens_details.cached_tokens == 60
    assert result.usage.completion_tokens_details is not None
    assert result.usage.completion_tokens_details.reasoning_tokens == 8
    req = fake_upstream.requests[-1]
    assert req.path == "/v1/chat/completions"
    assert req.headers["authorization"] == "Bearer sk-test"
    assert req.json["messages"][0]["content"] == "hi"


async def test_openai_chat_stream_parallel_tools(fake_upstream: FakeUpstream) -> None:
    fake_upstream.script(Reply.tools(CALLS, text="Checking.", interleave=True))
    async with (
        oai(fake_upstream) as client,
        client.chat.completions.stream(
            model="gpt-test",
            messages=[{"role": "user", "content": "weather?"}],
            tools=TOOLS_OPENAI,  # type: ignore[arg-type]
            stream_options={"include_usage": True},
        ) as stream,
    ):
        completion = await stream.get_final_completion()
    msg = completion.choices[0].message
    assert msg.content == "Checking."
    assert completion.choices[0].finish_reason == "tool_calls"
    assert msg.tool_calls is not None
    got = [(tc.id, tc.function.name, tc.function.arguments) for tc in msg.tool_calls]
    assert got == [(c.id, c.name, c.arguments) for c in CALLS]
    assert completion.usage is not None and completion.usage.total_tokens == 15


async def test_openai_chat_stream_usage_only_when_asked(fake_upstream: FakeUpstream) -> None:
    async with httpx.AsyncClient() as http:
        plain = await http.post(
            f"{fake_upstream.url}/v1/chat/completions",
            json={"model": "m", "stream": True, "messages": []},
        )
        with_usage = await http.post(
            f"{fake_upstream.url}/v1/chat/completions",
            json={"model": "m", "stream": True, "stream_options": {"include_usage": True}},
        )
    plain_events = sse_data(plain.content)
    assert plain_events[-1] == "[DONE]"
    assert all("usage" not in json.loads(e) for e in plain_events[:-1])
    events = [json.loads(e) for e in sse_data(with_usage.content)[:-1]]
    assert events[-1]["choices"] == [] and events[-1]["usage"]["completion_tokens"] == 5
    assert all(e["usage"] is None for e in events[:-1])
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in events[:-1])
    assert text == "Hello from fake upstream"
    assert sum(1 for e in events if e["choices"] and e["choices"][0]["delta"].get("content")) > 1


# ------------------------------------------------------------------------ OpenAI Responses


async def test_responses_non_stream(fake_upstream: FakeUpstream) -> None:
    fake_upstream.script(Reply.tools(CALLS[:1], text="Let me look.", usage=(50, 10, 20, 0, 0)))
    async with oai(fake_upstream) as client:
        resp = await client.responses.create(model="gpt-test", input="weather?")
    assert resp.output_text == "Let me look."
    calls = [item for item in resp.output if item.type == "function_call"]
    assert [(c.call_id, c.name, c.arguments) for c in calls] == [
        (CALLS[0].id, CALLS[0].name, CALLS[0].arguments)
    ]
    assert resp.usage is not None and resp.usage.input_tokens_details.cached_tokens == 20
    assert resp.status == "completed"


async def test_responses_stream_typed_events(fake_upstream: FakeUpstream) -> None:
    fake_upstream.script(Reply.tools(CALLS, text="On it."))
    seen: list[str] = []
    async with (
        oai(fake_upstream) as client,
        client.responses.stream(model="gpt-test", input="go") as stream,
    ):
        async for event in stream:
            seen.append(event.type)
        final = await stream.get_final_response()
    assert final.output_text == "On it."
    calls = [item for item in final.output if item.type == "function_call"]
    assert [(c.call_id, c.arguments) for c in calls] == [(c.id, c.arguments) for c in CALLS]
    check_event_types(seen)


async def test_responses_sequence_numbers_and_reasoning(fake_upstream: FakeUpstream) -> None:
    fake_upstream.script(Reply.thinking("I should greet.", "enc-sig", "Hi!"))
    async with httpx.AsyncClient() as http:
        r = await http.post(
            f"{fake_upstream.url}/v1/responses", json={"model": "m", "stream": True}
        )
    events = [json.loads(d) for d in sse_data(r.content)]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    done = events[-1]["response"]
    assert [item["type"] for item in done["output"]] == ["reasoning", "message"]
    assert done["output"][0]["summary"][0]["text"] == "I should greet."
    assert "event: response.reasoning_summary_text.delta" in r.text


# ------------------------------------------------------------------------ Anthropic


async def test_anthropic_non_stream_cache_semantics(fake_upstream: FakeUpstream) -> None:
    fake_upstream.script(Reply.text("ok", usage=(100, 7, 60, 30, 0)))
    async with ant(fake_upstream) as client:
        msg = await client.messages.create(
            model="claude-test", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
        )
    assert msg.content[0].type == "text" and msg.content[0].text == "ok"
    assert msg.stop_reason == "end_turn"
    assert msg.usage.input_tokens == 10  # 100 - 60 read - 30 written
    assert msg.usage.cache_read_input_tokens == 60
    assert msg.usage.cache_creation_input_tokens == 30
    req = fake_upstream.requests[-1]
    assert req.path == "/v1/messages"
    # The SDK sends the key as x-api-key (older releases) or a Bearer token (newer ones).
    assert "sk-ant-test" in (req.headers.get("x-api-key"), req.headers.get("authorization", "")[7:])
    assert "anthropic-version" in req.headers


async def test_anthropic_stream_thinking_and_tools(fake_upstream: FakeUpstream) -> None:
    reply = Reply.tools(CALLS, text="Looking up.").with_(reasoning="Need tools.", signature="sig==")
    fake_upstream.script(reply)
    async with (
        ant(fake_upstream) as client,
        client.messages.stream(
            model="claude-test", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
        ) as stream,
    ):
        msg = await stream.get_final_message()
    blocks = msg.content
    assert [b.type for b in blocks] == ["thinking", "text", "tool_use", "tool_use"]
    assert blocks[0].type == "thinking"
    assert (blocks[0].thinking, blocks[0].signature) == ("Need tools.", "sig==")
    tools = [b for b in blocks if b.type == "tool_use"]
    assert [(t.id, t.name, t.input) for t in tools] == [
        (c.id, c.name, json.loads(c.arguments)) for c in CALLS
    ]
    assert msg.stop_reason == "tool_use"
    assert msg.usage.output_tokens == 5


async def test_anthropic_raw_event_order(fake_upstream: FakeUpstream) -> None:
    fake_upstream.script(Reply.text("one two"))
    async with httpx.AsyncClient() as http:
        r = await http.post(f"{fake_upstream.url}/v1/messages", json={"stream": True})
    names = [line[7:] for line in r.text.splitlines() if line.startswith("event: ")]
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    datas = [json.loads(d) for d in sse_data(r.content)]
    assert [d["type"] for d in datas] == names  # every event names its type in both places


async def test_anthropic_stream_thinking_shortcut(fake_upstream: FakeUpstream) -> None:
    fake_upstream.script(Reply.thinking("hmm", "sig-1", "Answer", usage=(20, 9, 0, 0, 4)))
    async with (
        ant(fake_upstream) as client,
        client.messages.stream(
            model="claude-test", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
        ) as stream,
    ):
        text = "".join([t async for t in stream.text_stream])
        msg = await stream.get_final_message()
    assert text == "Answer"
    assert msg.content[0].type == "thinking" and msg.content[0].signature == "sig-1"


async def test_anthropic_count_tokens_and_models(fake_upstream: FakeUpstream) -> None:
    async with ant(fake_upstream) as client:
        count = await client.messages.count_tokens(
            model="claude-test", messages=[{"role": "user", "content": "hello there"}]
        )
        models = [m.id async for m in client.models.list()]
    assert count.input_tokens > 0
    assert models == fake_upstream.models


# ------------------------------------------------------------------------ Gemini


async def test_gemini_generate_and_stream(fake_upstream: FakeUpstream) -> None:
    fake_upstream.script(
        Reply.text("Hi there friend", usage=(40, 12, 10, 0, 2)),
        Reply.tools(CALLS[:1], text="Sure."),
    )
    base = f"{fake_upstream.url}/v1beta/models/gemini-test"
    headers = {"x-goog-api-key": "g-key"}
    async with httpx.AsyncClient() as http:
        r = await http.post(f"{base}:generateContent", json={"contents": []}, headers=headers)
        s = await http.post(
            f"{base}:streamGenerateContent", params={"alt": "sse"}, json={}, headers=headers
        )
    body = r.json()
    cand = body["candidates"][0]
    assert cand["content"] == {"role": "model", "parts": [{"text": "Hi there friend"}]}
    assert cand["finishReason"] == "STOP"
    assert body["usageMetadata"]["cachedContentTokenCount"] == 10
    assert body["usageMetadata"]["thoughtsTokenCount"] == 2
    assert body["usageMetadata"]["candidatesTokenCount"] == 10
    assert body["modelVersion"] == "gemini-test"
    assert "\r\n\r\n" in s.text
    chunks = [json.loads(d) for d in sse_data(s.content)]
    parts = [p for c in chunks for p in c["candidates"][0]["content"]["parts"]]
    assert parts[-1]["functionCall"] == {
        "name": "get_weather",
        "args": json.loads(CALLS[0].arguments),
    }
    assert "finishReason" in chunks[-1]["candidates"][0] and "usageMetadata" in chunks[-1]
    assert fake_upstream.requests[-1].query == {"alt": "sse"}
    assert fake_upstream.requests[-1].headers["x-goog-api-key"] == "g-key"


async def test_gemini_models(fake_upstream: FakeUpstream) -> None:
    async with httpx.AsyncClient() as http:
        r = await http.get(f"{fake_upstream.url}/v1beta/models")
    assert [m["name"] for m in r.json()["models"]] == [f"models/{m}" for m in fake_upstream.models]


# ------------------------------------------------------------------------ errors and faults


@pytest.mark.parametrize(
    ("path", "key"),
    [
        ("/v1/chat/completions", lambda b: b["error"]["message"]),
        ("/v1/messages", lambda b: b["error"]["message"] if b["type"] == "error" else None),
        ("/v1beta/models/g:generateContent", lambda b: b["error"]["message"]),
    ],
)
async def test_error_bodies_in_provider_shape(fake_upstream: FakeUpstream, path: str, key) -> None:  # type: ignore[no-untyped-def]
    fake_upstream.script(Reply.error(429, "slow down", headers={"Retry-After": "7"}))
    async with httpx.AsyncClient() as http:
        r = await http.post(f"{fake_upstream.url}{path}", json={"model": "m"})
    assert r.status_code == 429
    assert r.headers["retry-after"] == "7"
    assert key(r.json()) == "slow down"


async def test_sdk_sees_error(fake_upstream: FakeUpstream) -> None:
    fake_upstream.script(Reply.error(401, "bad key"))
    async with oai(fake_upstream) as client:
        with pytest.raises(openai.AuthenticationError) as info:
            await client.chat.completions.create(model="m", messages=[])
    assert "bad key" in str(info.value)


async def test_queue_order_and_default(fake_upstream: FakeUpstream) -> None:
    fake_upstream.script(Reply.text("one"), Reply.text("two", chunks=["t", "wo"]))
    async with oai(fake_upstream) as client:
        got = []
        for _ in range(3):
            r = await client.chat.completions.create(model="m", messages=[])
            got.append(r.choices[0].message.content)
    assert got == ["one", "two", "Hello from fake upstream"]


async def test_cut_after_aborts_stream(fake_upstream: FakeUpstream) -> None:
    fake_upstream.script(Reply.text("a b c d e f", cut_after=3))
    async with httpx.AsyncClient() as http:
        with pytest.raises(httpx.RemoteProtocolError):
            async with http.stream(
                "POST", f"{fake_upstream.url}/v1/chat/completions", json={"stream": True}
            ) as r:
                received = b""
                async for chunk in r.aiter_raw():
                    received += chunk
    assert len(sse_data(received)) == 3


async def test_disconnect_is_observed(fake_upstream: FakeUpstream) -> None:
    fake_upstream.script(Reply.text(" ".join(["w"] * 200), chunk_delay=0.02))
    async with (
        httpx.AsyncClient() as http,
        http.stream("POST", f"{fake_upstream.url}/v1/messages", json={"stream": True}) as r,
    ):
        async for _chunk in r.aiter_raw():
            break
    await asyncio.wait_for(fake_upstream.disconnected.wait(), 10)
    assert fake_upstream.connections_closed == 1


async def test_api_key_enforced(fake_upstream: FakeUpstream) -> None:
    fake_upstream.api_key = "right"
    async with httpx.AsyncClient() as http:
        bad = await http.post(f"{fake_upstream.url}/v1/messages", headers={"x-api-key": "wrong"})
        good = await http.post(
            f"{fake_upstream.url}/v1/messages", headers={"x-api-key": "right"}, json={}
        )
    assert bad.status_code == 401 and bad.json()["error"]["type"] == "authentication_error"
    assert good.status_code == 200


async def test_tls_fake_upstream(tls_fake_upstream: tuple[FakeUpstream, Path]) -> None:
    upstream, ca = tls_fake_upstream
    assert upstream.url.startswith("https://")
    async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=ca)) as http:
        r = await http.get(f"{upstream.url}/v1/models")
    assert [m["id"] for m in r.json()["data"]] == upstream.models
