"""The anthropic codec: responses (parse, render, usage, stop reasons)."""

from __future__ import annotations

import copy

import pytest

from router import ir
from router.formats.anthropic.codec import CODEC
from tests.router.formats.anthropic.samples import (
    SAFE_ID,
    message_body,
    parse_all,
    render_all,
    sse,
    sse_payloads,
    stream_for,
    validated,
)
from tests.router.formats.shared import accumulate


def test_response_round_trip_validates_with_sdk() -> None:
    body = message_body(container={"id": "c1", "expires_at": "2030-01-01T00:00:00Z"})
    resp = CODEC.parse_response(copy.deepcopy(body))
    assert resp.id == "msg_01abc" and resp.stop_reason == "tool_use"
    assert resp.tool_calls()[0].input == {"city": "Zürich"}
    rendered = CODEC.render_response(resp, ir.Request(model="x"))
    assert rendered == body
    assert validated(rendered)["content"][3]["input"] == {"city": "Zürich"}


def test_render_response_from_foreign_ir_validates_with_sdk() -> None:
    resp = ir.Response(
        id="chatcmpl-1",
        content=[
            ir.ThinkingBlock(thinking="reasoned elsewhere", origin="openai-chat"),
            ir.TextBlock("hello"),
            ir.ToolUseBlock(id="call.1", name="f", input={}, raw_arguments="{broken"),
        ],
        stop_reason="error",
    )
    body = validated(CODEC.render_response(resp, ir.Request(model="gpt-x")))
    assert body["model"] == "gpt-x" and body["stop_reason"] == "end_turn"
    assert body["content"][0] == {
        "type": "thinking",
        "thinking": "reasoned elsewhere",
        "signature": "",
    }
    assert body["content"][2]["input"] == {} and SAFE_ID.match(body["content"][2]["id"])
    assert body["usage"]["input_tokens"] == 0


def test_case5_usage_conversion_cache_tokens() -> None:
    resp = CODEC.parse_response(message_body())
    assert resp.usage == ir.Usage(
        input_tokens=2112, output_tokens=40, cache_read_tokens=2000, cache_write_tokens=100
    )
    assert CODEC.render_response(resp, ir.Request(model="m"))["usage"] == message_body()["usage"]

    # Stream: message_start carries input figures; a newer-API message_delta refines them.
    raw = b"".join(
        [
            sse("message_start", {"type": "message_start", "message": {"id": "m", "model": "c", "usage": {
                "input_tokens": 10, "cache_read_input_tokens": 500, "cache_creation_input_tokens": 0, "output_tokens": 1}}}),
            sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {
                "output_tokens": 7, "input_tokens": 12, "cache_creation_input_tokens": 30,
                "output_tokens_details": {"thinking_tokens": 3}}}),
            sse("message_stop", {"type": "message_stop"}),
        ]
    )  # fmt: skip
    events = parse_all(raw)
    assert isinstance(events[0], ir.MessageStart) and events[0].usage is not None
    assert events[0].usage.input_tokens == 510
    final = accumulate(events).usage
    assert final == ir.Usage(
        input_tokens=542,
        output_tokens=7,
        cache_read_tokens=500,
        cache_write_tokens=30,
        reasoning_tokens=3,
    )

    # Rendering: message_start gets what is known so far, message_delta the final figures.
    start_known = [
        ir.MessageStart(id="x", usage=ir.Usage(input_tokens=1500, cache_read_tokens=1000))
    ]
    rest: list[ir.StreamEvent] = [
        ir.MessageDelta(
            "end_turn", usage=ir.Usage(input_tokens=1500, output_tokens=9, cache_read_tokens=1000)
        ),
        ir.MessageStop(),
    ]
    payloads = dict(sse_payloads(render_all(start_known + rest)))
    assert payloads["message_start"]["message"]["usage"] == {
        "input_tokens": 500, "output_tokens": 1, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 1000,
    }  # fmt: skip
    assert payloads["message_delta"]["usage"] == {
        "input_tokens": 500, "output_tokens": 9, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 1000,
    }  # fmt: skip
    # An OpenAI upstream only knows usage at the end: message_start says 0 input.
    late = dict(sse_payloads(render_all([ir.MessageStart(id="x"), *rest])))
    assert late["message_start"]["message"]["usage"]["input_tokens"] == 0
    assert late["message_delta"]["usage"]["input_tokens"] == 500


@pytest.mark.parametrize(
    ("wire", "internal", "back"),
    [
        ("end_turn", "end_turn", "end_turn"),
        ("max_tokens", "max_tokens", "max_tokens"),
        ("tool_use", "tool_use", "tool_use"),
        ("stop_sequence", "stop_sequence", "stop_sequence"),
        ("refusal", "content_filter", "refusal"),
        ("pause_turn", "pause_turn", "pause_turn"),
        ("model_context_window_exceeded", "max_tokens", "max_tokens"),
    ],
)
def test_case6_stop_reasons(wire: str, internal: str, back: str) -> None:
    resp = CODEC.parse_response(message_body(stop_reason=wire))
    assert resp.stop_reason == internal
    assert validated(CODEC.render_response(resp, ir.Request(model="m")))["stop_reason"] == back
    events = parse_all(stream_for(message_body(stop_reason=wire)))
    assert accumulate(events).stop_reason == internal
    payloads = dict(sse_payloads(render_all(events)))
    assert payloads["message_delta"]["delta"]["stop_reason"] == back
