"""Tests for the responses codec: requests, response objects and typed streams, checked
against the openai SDK's own types and client."""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import openai
import pytest
from aiohttp import web
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from router import ir
from router.errors import BadRequest
from router.formats import get_codec
from router.formats.openai_chat.codec import CODEC as CHAT
from router.formats.responses.codec import CODEC

PNG = "iVBORw0KGgo="
EVENTS: TypeAdapter[ResponseStreamEvent] = TypeAdapter(ResponseStreamEvent)


def full_body() -> dict[str, Any]:
    return {
        "model": "gpt-5",
        "instructions": "be brief",
        "input": [
            {
                "type": "message",
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "look"},
                    {
                        "type": "input_image",
                        "image_url": f"data:image/png;base64,{PNG}",
                        "detail": "auto",
                    },
                ],
            },
            {
                "type": "reasoning",
                "id": "rs_1",
                "summary": [{"type": "summary_text", "text": "plan"}],
                "encrypted_content": "enc",
            },
            {"type": "message", "role": "assistant", "content": "on it"},
            {
                "type": "function_call",
                "call_id": "call_1",
                "name": "read",
                "arguments": '{"p":"a"}',
            },
            {"type": "function_call", "call_id": "call_2", "name": "read", "arguments": "{bad"},
            {"type": "function_call_output", "call_id": "call_1", "output": "A"},
            {"type": "function_call_output", "call_id": "call_2", "output": "B"},
        ],
        "tools": [
            {
                "type": "function",
                "name": "read",
                "description": "read a file",
                "parameters": {"type": "object", "properties": {"p": {"type": "string"}}},
                "strict": False,
            },
            {"type": "web_search"},
        ],
        "tool_choice": {"type": "function", "name": "read"},
        "parallel_tool_calls": True,
        "max_output_tokens": 500,
        "reasoning": {"effort": "medium", "summary": "auto"},
        "text": {
            "format": {
                "type": "json_schema",
                "name": "out",
                "schema": {"type": "object"},
                "strict": True,
            },
            "verbosity": "low",
        },
        "stream": True,
        "user": "u1",
        "metadata": {"k": "v"},
        "store": False,
        "previous_response_id": "resp_prev",
        "include": ["reasoning.encrypted_content"],
    }


# --------------------------------------------------------------------------- requests


def test_parse_request_maps_every_field() -> None:
    req = CODEC.parse_request(full_body())
    assert req.source_format == "responses"
    assert req.system == [ir.TextBlock("be brief")]
    assert [m.role for m in req.messages] == ["user", "assistant", "user"]
    assert req.messages[0].content == [
        ir.TextBlock("look"),
        ir.ImageBlock(media_type="image/png", data=PNG),
    ]
    thinking, text, call1, call2 = req.messages[1].content
    assert thinking == ir.ThinkingBlock("plan", signature="enc", origin="responses")
    assert text == ir.TextBlock("on it")
    assert isinstance(call1, ir.ToolUseBlock) and call1.input == {"p": "a"}
    assert isinstance(call2, ir.ToolUseBlock) and call2.raw_arguments == "{bad"
    results = req.messages[2].content
    assert [(r.tool_use_id, r.text()) for r in results if isinstance(r, ir.ToolResultBlock)] == [
        ("call_1", "A"),
        ("call_2", "B"),
    ]
    assert req.tools == [
        ir.Tool(
            "read",
            "read a file",
            {"type": "object", "properties": {"p": {"type": "string"}}},
            extra={"strict": False},
        )
    ]
    assert req.tool_choice == ir.ToolChoice("tool", "read")
    assert req.parallel_tool_calls is True and req.max_tokens == 500
    assert req.reasoning_effort == "medium"
    assert req.response_format == {
        "type": "json_schema",
        "json_schema": {"name": "out", "schema": {"type": "object"}, "strict": True},
    }
    assert req.stream and req.user == "u1" and req.metadata == {"k": "v"}
    assert req.extra == {
        "tools": [{"type": "web_search"}],
        "reasoning": {"summary": "auto"},
        "text": {"verbosity": "low"},
        "store": False,
        "previous_response_id": "resp_prev",
        "include": ["reasoning.encrypted_content"],
    }


def test_input_as_a_string() -> None:
    req = CODEC.parse_request({"model": "gpt-4.1", "input": "hello"})
    assert req.messages == [ir.Message("user", [ir.TextBlock("hello")])]


def test_case1_function_calls_pair_by_call_id_not_item_id() -> None:
    req = CODEC.parse_request(
        {
            "model": "m",
            "input": [
                {
                    "type": "function_call",
                    "id": "fc_XYZ",
                    "call_id": "call_7",
                    "name": "f",
                    "arguments": "{}",
                },
                {"type": "function_call_output", "call_id": "call_7", "output": "done"},
            ],
        }
    )
    call = req.messages[0].content[0]
    result = req.messages[1].content[0]
    assert isinstance(call, ir.ToolUseBlock) and call.id == "call_7"
    assert isinstance(result, ir.ToolResultBlock) and result.tool_use_id == "call_7"
    # and rendered for chat, the ids still pair up
    body = CHAT.render_request(req)
    assert body["messages"][0]["tool_calls"][0]["id"] == body["messages"][1]["tool_call_id"]


def test_same_format_render_round_trips_the_body() -> None:
    body = full_body()
    rendered = CODEC.render_request(CODEC.parse_request(copy.deepcopy(body)))
    # the reasoning item's id is not kept in the IR; everything else is
    reasoning = next(i for i in rendered["input"] if i.get("type") == "reasoning")
    assert reasoning["id"].startswith("rs_")
    reasoning["id"] = "rs_1"
    expected = copy.deepcopy(body)
    expected["input"][0]["content"][1]["detail"] = "auto"
    assert rendered == expected


def test_ir_round_trip_parse_render_parse() -> None:
    first = CODEC.parse_request(full_body())
    second = CODEC.parse_request(CODEC.render_request(first))
    first.dropped = second.dropped = []
    assert second == first


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"input": "x"}, "model"),
        ({"model": "m"}, "input"),
        ({"model": "m", "input": 5}, "input"),
        ({"model": "m", "input": ["x"]}, "input[0]"),
        ({"model": "m", "input": [{"role": "user"}]}, "input[0].content"),
        ({"model": "m", "input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
        ({"model": "m", "input": [{"type": "function_call", "name": "f"}]}, "input[0].call_id"),
        (
            {"model": "m", "input": [{"type": "function_call_output", "output": "x"}]},
            "input[0].call_id",
        ),
        (
            {"model": "m", "input": [{"role": "user", "content": [{"type": "input_text"}]}]},
            "input[0].content[0].text",
        ),
        ({"model": "m", "input": "x", "instructions": 3}, "instructions"),
        ({"model": "m", "input": "x", "max_output_tokens": "lots"}, "max_output_tokens"),
        ({"model": "m", "input": "x", "tools": [{"type": "function"}]}, "tools[0].name"),
        ({"model": "m", "input": "x", "tool_choice": "any"}, "tool_choice"),
        ({"model": "m", "input": "x", "reasoning": {"effort": "max"}}, "reasoning.effort"),
        ({"model": "m", "input": "x", "text": {"format": "json"}}, "text.format"),
    ],
)
def test_bad_requests_name_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(BadRequest) as info:
        CODEC.parse_request(body)
    assert [d.field for d in info.value.details] == [field]


def test_render_from_chat_ir_translates_and_drops() -> None:
    req = CHAT.parse_request(
        {
            "model": "gpt-4o",
            "messages": [
                {"role": "system", "content": "sys"},
                {"role": "user", "content": "hi"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "r"},
            ],
            "tools": [
                {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
            ],
            "tool_choice": "required",
            "stop": ["x"],
            "seed": 1,
            "max_tokens": 20,
            "response_format": {"type": "json_schema", "json_schema": {"name": "n", "schema": {}}},
            "logprobs": True,
        }
    )
    body = CODEC.render_request(req)
    assert body["instructions"] == "sys"
    assert body["input"] == [
        {"type": "message", "role": "user", "content": "hi"},
        {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "r"},
    ]
    # Responses defaults tools to strict; a foreign schema must not be forced into it
    assert body["tools"] == [
        {"type": "function", "name": "f", "parameters": {"type": "object"}, "strict": False}
    ]
    assert body["tool_choice"] == "required"
    assert body["max_output_tokens"] == 20
    assert body["text"] == {"format": {"type": "json_schema", "name": "n", "schema": {}}}
    assert {"stop", "seed", "logprobs"} <= set(req.dropped)


def test_render_from_anthropic_ir_drops_foreign_thinking() -> None:
    req = ir.Request(
        model="o4-mini",
        source_format="anthropic",
        messages=[
            ir.Message("user", [ir.TextBlock("q")]),
            ir.Message(
                "assistant",
                [ir.ThinkingBlock("t", signature="s", origin="anthropic"), ir.TextBlock("a")],
            ),
        ],
        temperature=0.2,
        top_k=3,
        thinking_budget=1000,
    )
    body = CODEC.render_request(req)
    assert [i.get("type") for i in body["input"]] == ["message", "message"]
    assert body["reasoning"] == {"effort": "low"}
    assert "temperature" not in body
    assert {"thinking", "top_k", "temperature"} <= set(req.dropped)


# --------------------------------------------------------------------------- response objects


def response_body(status: str = "completed") -> dict[str, Any]:
    return {
        "id": "resp_1",
        "object": "response",
        "created_at": 1700000000,
        "status": status,
        "model": "gpt-5",
        "output": [
            {
                "id": "rs_1",
                "type": "reasoning",
                "summary": [
                    {"type": "summary_text", "text": "a"},
                    {"type": "summary_text", "text": "b"},
                ],
                "encrypted_content": "enc",
            },
            {
                "id": "msg_1",
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "héllo", "annotations": []}],
            },
            {
                "id": "fc_1",
                "type": "function_call",
                "status": "completed",
                "call_id": "call_1",
                "name": "ls",
                "arguments": '{"d":"."}',
            },
        ],
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "usage": {
            "input_tokens": 50,
            "input_tokens_details": {"cached_tokens": 20},
            "output_tokens": 30,
            "output_tokens_details": {"reasoning_tokens": 10},
            "total_tokens": 80,
        },
    }


def test_parse_response_maps_output_and_usage() -> None:
    resp = CODEC.parse_response(response_body())
    assert (resp.id, resp.model, resp.created) == ("resp_1", "gpt-5", 1700000000)
    assert resp.content[0] == ir.ThinkingBlock("a\n\nb", signature="enc", origin="responses")
    assert resp.text() == "héllo"
    assert resp.tool_calls()[0].id == "call_1"  # call_id, not the item id
    assert resp.stop_reason == "tool_use"
    assert resp.usage == ir.Usage(
        input_tokens=50, output_tokens=30, cache_read_tokens=20, reasoning_tokens=10
    )


def test_render_response_is_a_valid_sdk_response_and_round_trips() -> None:
    resp = CODEC.parse_response(response_body())
    req = CODEC.parse_request(full_body())
    rendered = CODEC.render_response(resp, req)
    parsed = Response.model_validate(rendered)
    assert parsed.status == "completed" and parsed.output_text == "héllo"
    assert parsed.usage is not None and parsed.usage.input_tokens_details.cached_tokens == 20
    assert CODEC.parse_response(rendered) == resp


def test_case6_truncation_is_status_incomplete() -> None:
    resp = ir.Response(id="x", model="m", content=[ir.TextBlock("cut")], stop_reason="max_tokens")
    rendered = CODEC.render_response(resp, ir.Request(model="m"))
    parsed = Response.model_validate(rendered)
    assert parsed.status == "incomplete"
    assert parsed.incomplete_details is not None
    assert parsed.incomplete_details.reason == "max_output_tokens"
    assert CODEC.parse_response(rendered).stop_reason == "max_tokens"
    assert CODEC.parse_response(response_body("incomplete")).stop_reason == "max_tokens"


# --------------------------------------------------------------------------- stream parsing


def frames(*events: dict[str, Any]) -> bytes:
    out = b""
    for seq, event in enumerate(events):
        data = {**event, "sequence_number": seq}
        out += f"event: {event['type']}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()
    return out


def upstream_stream(final: dict[str, Any]) -> bytes:
    """A stream as the real API sends it for ``final`` (reasoning, message, function call)."""
    created = {**final, "status": "in_progress", "output": [], "usage": None}
    reasoning, message, call = final["output"]
    return frames(
        {"type": "response.created", "response": created},
        {"type": "response.in_progress", "response": created},
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {**reasoning, "summary": [], "encrypted_content": None},
        },
        {
            "type": "response.reasoning_summary_part.added",
            "item_id": "rs_1",
            "output_index": 0,
            "summary_index": 0,
            "part": {"type": "summary_text", "text": ""},
        },
        {
            "type": "response.reasoning_summary_text.delta",
            "item_id": "rs_1",
            "output_index": 0,
            "summary_index": 0,
            "delta": "a",
        },
        {
            "type": "response.reasoning_summary_part.added",
            "item_id": "rs_1",
            "output_index": 0,
            "summary_index": 1,
            "part": {"type": "summary_text", "text": ""},
        },
        {
            "type": "response.reasoning_summary_text.delta",
            "item_id": "rs_1",
            "output_index": 0,
            "summary_index": 1,
            "delta": "b",
        },
        {"type": "response.output_item.done", "output_index": 0, "item": reasoning},
        {
            "type": "response.output_item.added",
            "output_index": 1,
            "item": {**message, "status": "in_progress", "content": []},
        },
        {
            "type": "response.content_part.added",
            "item_id": "msg_1",
            "output_index": 1,
            "content_index": 0,
            "part": {"type": "output_text", "text": "", "annotations": []},
        },
        {
            "type": "response.output_text.delta",
            "item_id": "msg_1",
            "output_index": 1,
            "content_index": 0,
            "delta": "hé",
        },
        {
            "type": "response.output_text.delta",
            "item_id": "msg_1",
            "output_index": 1,
            "content_index": 0,
            "delta": "llo",
        },
        {
            "type": "response.output_text.done",
            "item_id": "msg_1",
            "output_index": 1,
            "content_index": 0,
            "text": "héllo",
        },
        {"type": "response.output_item.done", "output_index": 1, "item": message},
        {
            "type": "response.output_item.added",
            "output_index": 2,
            "item": {**call, "arguments": "", "status": "in_progress"},
        },
        {
            "type": "response.function_call_arguments.delta",
            "item_id": "fc_1",
            "output_index": 2,
            "delta": '{"d":',
        },
        {
            "type": "response.function_call_arguments.delta",
            "item_id": "fc_1",
            "output_index": 2,
            "delta": '"."}',
        },
        {
            "type": "response.function_call_arguments.done",
            "item_id": "fc_1",
            "output_index": 2,
            "arguments": '{"d":"."}',
        },
        {"type": "response.output_item.done", "output_index": 2, "item": call},
        {"type": f"response.{final['status']}", "response": final},
    )


def parse_all(data: bytes, pieces: list[bytes] | None = None) -> list[ir.StreamEvent]:
    parser = CODEC.stream_parser()
    events: list[ir.StreamEvent] = []
    for piece in pieces if pieces is not None else [data]:
        events.extend(parser.feed(piece))
    events.extend(parser.close())
    return events


def accumulate(events: list[ir.StreamEvent]) -> ir.Response:
    acc = ir.StreamAccumulator()
    acc.feed_all(events)
    assert acc.error is None and acc.stopped
    return acc.result()


def test_stream_accumulates_to_the_equivalent_non_streamed_response() -> None:
    final = response_body()
    assert accumulate(parse_all(upstream_stream(final))) == CODEC.parse_response(final)


def test_stream_byte_by_byte_and_random_chunkings_give_identical_events() -> None:
    data = upstream_stream(response_body()).replace(b"\n", b"\r\n")
    whole = parse_all(data)
    assert parse_all(data, [data[i : i + 1] for i in range(len(data))]) == whole
    for seed in range(20):
        rng = random.Random(seed)
        pieces, i = [], 0
        while i < len(data):
            step = rng.randint(1, 64)
            pieces.append(data[i : i + step])
            i += step
        assert parse_all(data, pieces) == whole


def test_case6_incomplete_stream_stops_with_max_tokens() -> None:
    resp = accumulate(parse_all(upstream_stream(response_body("incomplete"))))
    assert resp.stop_reason == "max_tokens"


def test_failed_and_cut_streams_are_errors() -> None:
    failed = {**response_body("failed"), "error": {"code": "server_error", "message": "boom"}}
    events = parse_all(
        frames(
            {"type": "response.created", "response": failed},
            {"type": "response.failed", "response": failed},
        )
    )
    assert events[-1] == ir.ErrorEvent("boom", "server_error")
    events = parse_all(
        frames({"type": "error", "code": "rate_limit_exceeded", "message": "slow down"})
    )
    assert events[-1] == ir.ErrorEvent("slow down", "rate_limit_exceeded")
    cut = upstream_stream(response_body())
    events = parse_all(cut[: cut.index(b"event: response.completed")])
    assert isinstance(events[-1], ir.ErrorEvent) and "ended early" in events[-1].message


# --------------------------------------------------------------------------- stream rendering


def render_all(events: list[ir.StreamEvent], req: ir.Request) -> list[dict[str, Any]]:
    renderer = CODEC.stream_renderer(req)
    data = b"".join(renderer.render(e) for e in events) + renderer.finish()
    out = []
    for frame in data.decode().split("\n\n"):
        if not frame:
            continue
        event_line, data_line = frame.split("\n")
        payload = json.loads(data_line[len("data: ") :])
        assert event_line == f"event: {payload['type']}"
        out.append(payload)
    return out


def anthropic_response() -> ir.Response:
    return ir.Response(
        id="msg_1",
        model="claude-x",
        created=1700000002,
        content=[
            ir.ThinkingBlock("deep", signature="sig", origin="anthropic"),
            ir.TextBlock("I'll look."),
            ir.ToolUseBlock(id="toolu_a", name="read", input={"p": 1}),
            ir.ToolUseBlock(id="toolu_b", name="grep", raw_arguments="{raw"),
        ],
        stop_reason="tool_use",
        usage=ir.Usage(input_tokens=30, output_tokens=12, cache_read_tokens=10, reasoning_tokens=3),
    )


def test_rendered_stream_events_are_valid_sdk_events() -> None:
    req = ir.Request(model="claude-x", stream=True)
    events = render_all(ir.response_events(anthropic_response()), req)
    parsed = [EVENTS.validate_python(e) for e in events]
    assert [e.sequence_number for e in parsed] == list(range(len(parsed)))
    kinds = [e.type for e in parsed]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    for needed in (
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.reasoning_summary_text.delta",
        "response.output_item.done",
    ):
        assert needed in kinds
    final = Response.model_validate(events[-1]["response"])
    assert final.usage is not None and final.usage.total_tokens == 42
    # case 2: output_index counts items (reasoning, message, two calls)
    added = [e for e in events if e["type"] == "response.output_item.added"]
    assert [(e["output_index"], e["item"]["type"]) for e in added] == [
        (0, "reasoning"),
        (1, "message"),
        (2, "function_call"),
        (3, "function_call"),
    ]
    assert [i.type for i in final.output] == [
        "reasoning",
        "message",
        "function_call",
        "function_call",
    ]


def test_rendered_stream_parses_back_to_the_same_response() -> None:
    resp = anthropic_response()
    renderer = CODEC.stream_renderer(ir.Request(model="m"))
    data = b"".join(renderer.render(e) for e in ir.response_events(resp))
    back = accumulate(parse_all(data))
    assert back.tool_calls() == resp.tool_calls()
    assert back.text() == resp.text() and back.stop_reason == "tool_use"
    assert back.usage == resp.usage


def test_chat_stream_translated_to_responses_keeps_everything() -> None:
    chat_stream = (
        b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}\n\n'
        b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":"{\\"a\\":1}"}}]},"finish_reason":"tool_calls"}]}\n\n'
        b"data: [DONE]\n\n"
    )
    parser = CHAT.stream_parser()
    events = parser.feed(chat_stream) + parser.close()
    renderer = CODEC.stream_renderer(ir.Request(model="m"))
    data = b"".join(renderer.render(e) for e in events)
    assert accumulate(parse_all(data)).content == accumulate(events).content


def test_case6_max_tokens_stream_ends_incomplete() -> None:
    resp = ir.Response(id="x", model="m", content=[ir.TextBlock("cut")], stop_reason="max_tokens")
    events = render_all(ir.response_events(resp), ir.Request(model="m"))
    final = EVENTS.validate_python(events[-1])
    assert final.type == "response.incomplete"
    assert final.response.incomplete_details is not None
    assert final.response.incomplete_details.reason == "max_output_tokens"


def test_case8_error_becomes_response_failed() -> None:
    events = render_all(
        [ir.MessageStart(id="x", model="m"), ir.ErrorEvent("upstream died", "rate_limit_error")],
        ir.Request(model="m"),
    )
    failed = EVENTS.validate_python(events[-1])
    assert failed.type == "response.failed"
    assert failed.response.error is not None
    assert (failed.response.error.code, failed.response.error.message) == (
        "rate_limit_exceeded",
        "upstream died",
    )
    standalone = CODEC.error_event("boom").decode()
    payload = json.loads(standalone.split("data: ", 1)[1])
    assert EVENTS.validate_python(payload).type == "response.failed"


def test_finish_fails_a_stream_that_never_completed() -> None:
    renderer = CODEC.stream_renderer(ir.Request(model="m"))
    renderer.render(ir.MessageStart(id="x", model="m"))
    owed = renderer.finish().decode()
    payload = json.loads(owed.split("data: ", 1)[1])
    assert EVENTS.validate_python(payload).type == "response.failed"
    assert renderer.finish() == b""


def test_get_codec_returns_this_codec() -> None:
    assert get_codec("responses") is CODEC and CODEC.name == "responses"


# --------------------------------------------------------------------------- the real SDK


async def test_openai_sdk_reads_rendered_response_and_stream(aiohttp_server: Any) -> None:
    resp = anthropic_response()

    async def handler(request: web.Request) -> web.StreamResponse:
        req = CODEC.parse_request(await request.json())
        if not req.stream:
            return web.json_response(CODEC.render_response(resp, req))
        stream = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await stream.prepare(request)
        renderer = CODEC.stream_renderer(req)
        for event in ir.response_events(resp):
            await stream.write(renderer.render(event))
        await stream.write(renderer.finish())
        return stream

    app = web.Application()
    app.router.add_post("/v1/responses", handler)
    server = await aiohttp_server(app)
    client = openai.AsyncOpenAI(api_key="test", base_url=str(server.make_url("/v1")))

    result = await client.responses.create(model="m", input="hi")
    assert result.output_text == "I'll look."
    calls = [i for i in result.output if i.type == "function_call"]
    assert [c.call_id for c in calls] == ["toolu_a", "toolu_b"]

    stream = await client.responses.create(model="m", input="hi", stream=True)
    text, final = "", None
    async for event in stream:
        if event.type == "response.output_text.delta":
            text += event.delta
        if event.type == "response.completed":
            final = event.response
    assert text == "I'll look."
    assert final is not None and final.usage is not None and final.usage.input_tokens == 30

    async with client.responses.stream(model="m", input="hi") as managed:
        done = await managed.get_final_response()
    assert done.output_text == "I'll look."
    await client.close()
