"""The openai_chat codec: responses (parse, render, usage, stop reasons)."""

from __future__ import annotations

from typing import Any

import pytest
from openai.types.chat import ChatCompletion

from router import ir
from router.formats.openai_chat.codec import CODEC
from tests.router.formats.openai_chat.samples import tool_call, usage


def completion_body() -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-4o",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "héllo",
                    "reasoning_content": "thought",
                    "tool_calls": [tool_call("call_1", "ls", '{"d":"."}')],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": usage(100, 20, cached=60, reasoning=5),
    }


def test_parse_response_maps_content_stop_and_usage() -> None:
    resp = CODEC.parse_response(completion_body())
    assert (resp.id, resp.model, resp.created) == ("chatcmpl-1", "gpt-4o", 1700000000)
    assert resp.content[0] == ir.ThinkingBlock("thought", origin="openai-chat")
    assert resp.text() == "héllo"
    assert resp.tool_calls()[0].input == {"d": "."}
    assert resp.stop_reason == "tool_use"
    assert resp.usage == ir.Usage(
        input_tokens=100, output_tokens=20, cache_read_tokens=60, reasoning_tokens=5
    )


def test_render_response_is_a_valid_sdk_chat_completion_and_round_trips() -> None:
    resp = CODEC.parse_response(completion_body())
    rendered = CODEC.render_response(resp, ir.Request(model="gpt-4o"))
    parsed = ChatCompletion.model_validate(rendered)
    assert parsed.choices[0].message.tool_calls is not None
    assert parsed.usage is not None and parsed.usage.prompt_tokens_details is not None
    assert parsed.usage.prompt_tokens_details.cached_tokens == 60
    assert CODEC.parse_response(rendered) == resp


@pytest.mark.parametrize(
    ("stop", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("content_filter", "content_filter"),
    ],
)
def test_case6_stop_reasons(stop: ir.StopReason, finish: str) -> None:
    resp = ir.Response(id="x", model="m", content=[ir.TextBlock("t")], stop_reason=stop)
    rendered = CODEC.render_response(resp, ir.Request(model="m"))
    assert ChatCompletion.model_validate(rendered).choices[0].finish_reason == finish
    back = CODEC.parse_response(rendered).stop_reason
    assert back == ("end_turn" if stop == "stop_sequence" else stop)
