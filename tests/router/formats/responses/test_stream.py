"""The responses codec: streams (parse, render, errors)."""

from __future__ import annotations

import json
from typing import Any

from openai.types.responses import Response

from router import ir
from router.formats import get_codec
from router.formats.openai_chat.codec import CODEC as CHAT
from router.formats.responses.codec import CODEC
from tests.router.formats.responses.samples import (
    EVENTS,
    anthropic_response,
    check_event_types,
    response_body,
)
from tests.router.formats.shared import accumulate, parse_pieces, random_pieces, render_bytes


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
    return parse_pieces(CODEC, pieces if pieces is not None else [data])


def test_stream_accumulates_to_the_equivalent_non_streamed_response() -> None:
    final = response_body()
    assert accumulate(parse_all(upstream_stream(final))) == CODEC.parse_response(final)


def test_stream_byte_by_byte_and_random_chunkings_give_identical_events() -> None:
    data = upstream_stream(response_body()).replace(b"\n", b"\r\n")
    whole = parse_all(data)
    assert parse_all(data, [data[i : i + 1] for i in range(len(data))]) == whole
    for seed in range(20):
        assert parse_all(data, random_pieces(data, seed, largest=64)) == whole


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


def render_all(events: list[ir.StreamEvent], req: ir.Request) -> list[dict[str, Any]]:
    out = []
    for frame in render_bytes(CODEC, events, req).decode().split("\n\n"):
        if not frame:
            continue
        event_line, data_line = frame.split("\n")
        payload = json.loads(data_line[len("data: ") :])
        assert event_line == f"event: {payload['type']}"
        out.append(payload)
    return out


def test_rendered_stream_events_are_valid_sdk_events() -> None:
    req = ir.Request(model="claude-x", stream=True)
    events = render_all(ir.response_events(anthropic_response()), req)
    parsed = [EVENTS.validate_python(e) for e in events]
    assert [e.sequence_number for e in parsed] == list(range(len(parsed)))
    kinds = [e.type for e in parsed]
    check_event_types(kinds, "response.reasoning_summary_text.delta")
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
