"""Every SDK lane: inbound format x upstream kind x JSON/stream x text/tools/thinking.

Inbound clients are the official SDKs: ``openai`` (chat completions and Responses),
``anthropic`` and ``google-genai``. Upstreams are the fake's OpenAI-chat (``oa``), Anthropic
(``an``) and Gemini (``ge``) connections. One router and one fake upstream serve the whole
module (``shared_server``); each case scripts its reply and reads what the fake received.

Each case checks what a user of that SDK sees (text, tool calls with arguments, the model's
reasoning where the format can carry it, the finish reason) and what the upstream was asked
(the prompt, the tool, a reasoning request). ``test_tool_loop`` runs a full two-turn tool loop.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import anthropic
import openai
import pytest
from google import genai
from google.genai import types as gtypes

from tests.fakes.upstream import Reply, ToolCall
from tests.web.harness import LANES, Server

pytestmark = pytest.mark.asyncio(loop_scope="module")

INBOUNDS = ("chat", "responses", "anthropic", "gemini")
CONTENTS = ("text", "tools", "thinking")
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}
CALLS = [
    ToolCall("call_p1", "get_weather", '{"city": "Paris"}'),
    ToolCall("call_t2", "get_weather", '{"city": "Tokyo"}'),
]
WANT_CALLS = [("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Tokyo"})]
THOUGHT, ANSWER = "Two and two make four.", "Answer: 4"


@dataclass
class Seen:
    """What the SDK user got, in one shape for every inbound format."""

    text: str = ""
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    call_ids: list[str] = field(default_factory=list)
    thinking: str = ""
    finish: str = ""  # "stop" or "tool"
    deltas: int = 0  # text/argument pieces seen while streaming


# --------------------------------------------------------------------------- the four SDKs


async def chat(server: Server, lane: str, stream: bool, content: str) -> Seen:
    client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
    kw: dict[str, Any] = {
        "model": server.model(lane),
        "messages": [{"role": "user", "content": "Weather in Paris and Tokyo? 2+2?"}],
    }
    if content == "tools":
        kw["tools"] = [
            {
                "type": "function",
                "function": {"name": "get_weather", "description": "Weather", "parameters": SCHEMA},
            }
        ]
    if content == "thinking":
        kw["reasoning_effort"] = "low"
    seen = Seen()
    if not stream:
        done = await client.chat.completions.create(**kw)
        msg = done.choices[0].message
        seen.text = msg.content or ""
        seen.thinking = (msg.model_extra or {}).get("reasoning_content") or ""
        for tc in msg.tool_calls or []:
            assert tc.type == "function"
            seen.calls.append((tc.function.name, json.loads(tc.function.arguments)))
            seen.call_ids.append(tc.id)
        seen.finish = {"tool_calls": "tool"}.get(done.choices[0].finish_reason, "stop")
        return seen
    slots: dict[int, dict[str, str]] = {}
    finish = None
    async for chunk in await client.chat.completions.create(stream=True, **kw):
        for choice in chunk.choices:
            delta = choice.delta
            finish = choice.finish_reason or finish
            if delta.content:
                seen.text += delta.content
                seen.deltas += 1
            seen.thinking += (delta.model_extra or {}).get("reasoning_content") or ""
            for tc in delta.tool_calls or []:
                slot = slots.setdefault(tc.index, {"id": "", "name": "", "args": ""})
                slot["id"] += tc.id or ""
                if tc.function is not None:
                    slot["name"] += tc.function.name or ""
                    slot["args"] += tc.function.arguments or ""
                    seen.deltas += 1
    for i in sorted(slots):
        seen.calls.append((slots[i]["name"], json.loads(slots[i]["args"])))
        seen.call_ids.append(slots[i]["id"])
    seen.finish = {"tool_calls": "tool"}.get(finish or "", "stop")
    return seen


async def responses(server: Server, lane: str, stream: bool, content: str) -> Seen:
    client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
    kw: dict[str, Any] = {"model": server.model(lane), "input": "Weather in Paris and Tokyo? 2+2?"}
    if content == "tools":
        kw["tools"] = [
            {"type": "function", "name": "get_weather", "parameters": SCHEMA, "strict": False}
        ]
    if content == "thinking":
        kw["reasoning"] = {"effort": "low", "summary": "auto"}
    seen = Seen()
    if stream:
        async with client.responses.stream(**kw) as events:
            async for event in events:
                if event.type in (
                    "response.output_text.delta",
                    "response.function_call_arguments.delta",
                ):
                    seen.deltas += 1
            final = await events.get_final_response()
    else:
        final = await client.responses.create(**kw)
    assert final.status == "completed"
    seen.text = final.output_text
    for item in final.output:
        if item.type == "function_call":
            seen.calls.append((item.name, json.loads(item.arguments)))
            seen.call_ids.append(item.call_id)
        elif item.type == "reasoning":
            seen.thinking += "".join(s.text for s in item.summary)
            seen.thinking += "".join(c.text for c in item.content or [])
    seen.finish = "tool" if seen.calls else "stop"
    return seen


async def messages(server: Server, lane: str, stream: bool, content: str) -> Seen:
    client = anthropic.AsyncAnthropic(base_url=server.url, api_key="unused", max_retries=0)
    kw: dict[str, Any] = {
        "model": server.model(lane),
        "max_tokens": 4000,
        "messages": [{"role": "user", "content": "Weather in Paris and Tokyo? 2+2?"}],
    }
    if content == "tools":
        kw["tools"] = [{"name": "get_weather", "description": "Weather", "input_schema": SCHEMA}]
    if content == "thinking":
        kw["thinking"] = {"type": "enabled", "budget_tokens": 2048}
    seen = Seen()
    if stream:
        async with client.messages.stream(**kw) as events:
            async for event in events:
                if event.type in ("text", "input_json"):
                    seen.deltas += 1
            message = await events.get_final_message()
    else:
        message = await client.messages.create(**kw)
    for block in message.content:
        if block.type == "text":
            seen.text += block.text
        elif block.type == "tool_use":
            seen.calls.append((block.name, dict(block.input)))  # type: ignore[arg-type]
            seen.call_ids.append(block.id)
        elif block.type == "thinking":
            seen.thinking += block.thinking
    seen.finish = {"tool_use": "tool"}.get(message.stop_reason or "", "stop")
    return seen


async def gemini(server: Server, lane: str, stream: bool, content: str) -> Seen:
    client = genai.Client(
        api_key="unused",
        http_options=gtypes.HttpOptions(base_url=server.url, api_version="v1beta"),
    )
    config = gtypes.GenerateContentConfig()
    if content == "tools":
        config.tools = [
            gtypes.Tool(
                function_declarations=[
                    gtypes.FunctionDeclaration(
                        name="get_weather", description="Weather", parameters_json_schema=SCHEMA
                    )
                ]
            )
        ]
    if content == "thinking":
        config.thinking_config = gtypes.ThinkingConfig(include_thoughts=True, thinking_budget=2048)
    kw: dict[str, Any] = {
        "model": server.model(lane),
        "contents": "Weather in Paris and Tokyo? 2+2?",
        "config": config,
    }
    seen = Seen()
    finish = None
    if stream:
        chunks = [c async for c in await client.aio.models.generate_content_stream(**kw)]
    else:
        chunks = [await client.aio.models.generate_content(**kw)]
    for chunk in chunks:
        cand = (chunk.candidates or [None])[0]
        if cand is None:
            continue
        finish = cand.finish_reason or finish
        for part in (cand.content.parts if cand.content else None) or []:
            if part.function_call is not None:
                seen.calls.append(
                    (part.function_call.name or "", dict(part.function_call.args or {}))
                )
                seen.call_ids.append(part.function_call.id or part.function_call.name or "")
            elif part.text and part.thought:
                seen.thinking += part.text
            elif part.text:
                seen.text += part.text
                seen.deltas += 1
    assert finish == gtypes.FinishReason.STOP, finish
    seen.finish = "tool" if seen.calls else "stop"
    return seen


CLIENTS = {"chat": chat, "responses": responses, "anthropic": messages, "gemini": gemini}


def upstream_asked_for_reasoning(lane: str, body: dict[str, Any]) -> bool:
    if lane == "oa":
        return bool(body.get("reasoning_effort"))
    if lane == "an":
        return (body.get("thinking") or {}).get("type") in ("enabled", "adaptive")
    # Protobuf JSON: either spelling is valid (google-genai itself sends snake_case here).
    gen = body.get("generationConfig") or body.get("generation_config") or {}
    config = gen.get("thinkingConfig") or gen.get("thinking_config") or {}
    keys = ("includeThoughts", "include_thoughts", "thinkingBudget", "thinking_budget")
    return any(config.get(k) for k in keys)


# --------------------------------------------------------------------------- the matrix


def _known(inbound: str, lane: str, stream: bool, content: str) -> list[str]:
    """The known failures of a case, each with its issue and owner (none left: the SSE
    trailer that broke google-genai streams is gone from the Gemini format)."""
    return []


def _matrix() -> list[Any]:
    cases = []
    for inbound in INBOUNDS:
        for lane in LANES:
            for stream, mode in ((False, "json"), (True, "stream")):
                for content in CONTENTS:
                    known = _known(inbound, lane, stream, content)
                    marks = (
                        [pytest.mark.xfail(strict=True, reason="; ".join(known))] if known else []
                    )
                    cases.append(
                        pytest.param(
                            inbound,
                            lane,
                            stream,
                            content,
                            id=f"{inbound}-{lane}-{mode}-{content}",
                            marks=marks,
                        )
                    )
    return cases


@pytest.mark.parametrize(("inbound", "lane", "stream", "content"), _matrix())
async def test_lane(
    shared_server: Server, inbound: str, lane: str, stream: bool, content: str
) -> None:
    upstream = shared_server.upstream
    if content == "text":
        upstream.script(Reply.text("one two three four", usage=(11, 4, 0, 0, 0)))
    elif content == "tools":
        upstream.script(Reply.tools(CALLS, usage=(30, 12, 0, 0, 0)))
    else:
        upstream.script(Reply.thinking(THOUGHT, "sig-golden-1", ANSWER, usage=(9, 20, 0, 0, 8)))

    seen = await CLIENTS[inbound](shared_server, lane, stream, content)

    assert len(upstream.requests) == 1, [r.path for r in upstream.requests]
    sent = upstream.requests[0].json
    assert "Paris and Tokyo" in json.dumps(sent)
    if content == "text":
        assert (seen.text, seen.calls, seen.finish) == ("one two three four", [], "stop")
        if stream:
            assert seen.deltas >= 2, "the reply must arrive in several deltas, not one lump"
    elif content == "tools":
        assert "get_weather" in json.dumps(sent), "the tool never reached the upstream"
        assert seen.calls == WANT_CALLS
        if inbound != "gemini":  # Gemini's functionCall.id is optional (Gemini pairs by name)
            assert len(set(seen.call_ids)) == 2 and all(seen.call_ids)
        assert seen.finish == "tool"
    else:
        assert upstream_asked_for_reasoning(lane, sent), sent
        assert seen.text == ANSWER and seen.finish == "stop"
        assert seen.thinking == THOUGHT, "the model's reasoning was lost on the way back"


# --------------------------------------------------------------------------- the tool loop


async def loop_chat(server: Server, lane: str) -> str:
    client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
    tools: Any = [{"type": "function", "function": {"name": "get_weather", "parameters": SCHEMA}}]
    history: list[Any] = [{"role": "user", "content": "Weather in Oslo?"}]
    first = await client.chat.completions.create(
        model=server.model(lane), messages=history, tools=tools
    )
    call = (first.choices[0].message.tool_calls or [])[0]
    history.append(first.choices[0].message.model_dump(exclude_none=True))
    history.append({"role": "tool", "tool_call_id": call.id, "content": "3C, cloudy"})
    second = await client.chat.completions.create(
        model=server.model(lane), messages=history, tools=tools
    )
    return second.choices[0].message.content or ""


async def loop_responses(server: Server, lane: str) -> str:
    client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
    tools: Any = [
        {"type": "function", "name": "get_weather", "parameters": SCHEMA, "strict": False}
    ]
    history: list[Any] = [{"role": "user", "content": "Weather in Oslo?"}]
    first = await client.responses.create(
        model=server.model(lane), input=history, tools=tools, store=False
    )
    call = next(item for item in first.output if item.type == "function_call")
    history += [item.model_dump(exclude_none=True) for item in first.output]
    history.append(
        {"type": "function_call_output", "call_id": call.call_id, "output": "3C, cloudy"}
    )
    second = await client.responses.create(
        model=server.model(lane), input=history, tools=tools, store=False
    )
    return second.output_text


async def anthropic_tool_loop(server: Server, lane: str) -> anthropic.types.Message:
    """The Anthropic SDK's two turns of the weather tool loop; the second answer."""
    client = anthropic.AsyncAnthropic(base_url=server.url, api_key="unused", max_retries=0)
    tools: Any = [{"name": "get_weather", "input_schema": SCHEMA}]
    history: list[Any] = [{"role": "user", "content": "Weather in Oslo?"}]
    first = await client.messages.create(
        model=server.model(lane), max_tokens=500, tools=tools, messages=history
    )
    use = next(b for b in first.content if b.type == "tool_use")
    history.append({"role": "assistant", "content": [b.model_dump() for b in first.content]})
    history.append(
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "3C, cloudy"}],
        }
    )
    return await client.messages.create(
        model=server.model(lane), max_tokens=500, tools=tools, messages=history
    )


async def loop_anthropic(server: Server, lane: str) -> str:
    second = await anthropic_tool_loop(server, lane)
    return "".join(b.text for b in second.content if b.type == "text")


async def loop_gemini(server: Server, lane: str) -> str:
    client = genai.Client(
        api_key="unused",
        http_options=gtypes.HttpOptions(base_url=server.url, api_version="v1beta"),
    )
    config = gtypes.GenerateContentConfig(
        tools=[
            gtypes.Tool(
                function_declarations=[
                    gtypes.FunctionDeclaration(name="get_weather", parameters_json_schema=SCHEMA)
                ]
            )
        ],
        automatic_function_calling=gtypes.AutomaticFunctionCallingConfig(disable=True),
    )
    history: list[Any] = [gtypes.Content(role="user", parts=[gtypes.Part(text="Weather in Oslo?")])]
    first = await client.aio.models.generate_content(
        model=server.model(lane), contents=history, config=config
    )
    assert first.candidates and first.candidates[0].content
    model_turn = first.candidates[0].content
    call = next(p.function_call for p in model_turn.parts or [] if p.function_call)
    history.append(model_turn)
    history.append(
        gtypes.Content(
            role="user",
            parts=[
                gtypes.Part.from_function_response(
                    name=call.name or "", response={"result": "3C, cloudy"}
                )
            ],
        )
    )
    second = await client.aio.models.generate_content(
        model=server.model(lane), contents=history, config=config
    )
    return second.text or ""


LOOPS = {"chat": loop_chat, "responses": loop_responses, "anthropic": loop_anthropic}
LOOPS["gemini"] = loop_gemini


@pytest.mark.parametrize("lane", LANES)
@pytest.mark.parametrize("inbound", INBOUNDS)
async def test_tool_loop(shared_server: Server, inbound: str, lane: str) -> None:
    """Two turns: the model calls a tool, the client answers it, the model uses the answer."""
    upstream = shared_server.upstream
    upstream.script(
        Reply.tools([ToolCall("call_x/1", "get_weather", '{"city":"Oslo"}')]),
        Reply.text("It is 3 degrees in Oslo."),
    )
    assert await LOOPS[inbound](shared_server, lane) == "It is 3 degrees in Oslo."
    second = json.dumps(upstream.requests[-1].json)
    assert "3C, cloudy" in second, "the tool result never reached the upstream"
    assert "Oslo" in second and "get_weather" in second
