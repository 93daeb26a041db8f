"""The openai_chat codec: requests (parse, render, validation)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from router import ir
from router.errors import BadRequest
from router.formats.openai_chat.codec import CODEC
from tests.router.formats.openai_chat.samples import PNG, full_body


def test_parse_request_maps_every_field() -> None:
    req = CODEC.parse_request(full_body())
    assert req.source_format == "openai-chat"
    assert req.system == [ir.TextBlock("be brief")]
    assert [m.role for m in req.messages] == ["user", "assistant", "user", "user"]
    assistant = req.messages[1]
    assert assistant.content[0] == ir.ThinkingBlock("let me think", origin="openai-chat")
    assert assistant.content[1] == ir.TextBlock("calling")
    good, bad = assistant.content[2], assistant.content[3]
    assert isinstance(good, ir.ToolUseBlock) and good.input == {"path": "a.py"}
    assert isinstance(bad, ir.ToolUseBlock) and bad.raw_arguments == "{not json"
    # consecutive tool messages become one user turn of tool results
    results = req.messages[2].content
    assert [b.tool_use_id for b in results if isinstance(b, ir.ToolResultBlock)] == [
        "call_a",
        "call_b",
    ]
    images = req.messages[3].content[1:]
    assert images == [
        ir.ImageBlock(media_type="image/png", data=PNG),
        ir.ImageBlock(url="https://x.test/a.jpg"),
    ]
    assert req.tools[0].name == "read" and req.tools[0].extra == {"strict": True}
    assert req.tool_choice == ir.ToolChoice("tool", "read")
    assert req.parallel_tool_calls is False
    assert (req.max_tokens, req.temperature, req.top_p, req.seed) == (100, 0.5, 0.9, 7)
    assert req.stop == ["END"] and req.reasoning_effort == "low"
    assert req.response_format == {"type": "json_object"}
    assert req.stream and req.include_usage
    assert (req.user, req.metadata) == ("u1", {"k": "v"})
    assert req.extra == {
        "frequency_penalty": 0.1,
        "logit_bias": {"50256": -100},
        "stream_options": {"include_obfuscation": False},
    }


def test_developer_role_string_stop_and_max_completion_tokens() -> None:
    req = CODEC.parse_request(
        {
            "model": "o3",
            "messages": [{"role": "developer", "content": [{"type": "text", "text": "rules"}]}],
            "stop": "X",
            "max_completion_tokens": 9,
            "max_tokens": 1,
        }
    )
    assert req.system == [ir.TextBlock("rules")]
    assert req.stop == ["X"]
    assert req.max_tokens == 9


def test_same_format_render_round_trips_the_body() -> None:
    body = full_body()
    assert CODEC.render_request(CODEC.parse_request(copy.deepcopy(body))) == body


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": 3, "messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": "m"}, "messages"),
        ({"model": "m", "messages": "hi"}, "messages"),
        ({"model": "m", "messages": []}, "messages"),
        ({"model": "m", "messages": ["hi"]}, "messages[0]"),
        ({"model": "m", "messages": [{"content": "x"}]}, "messages[0].role"),
        ({"model": "m", "messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
        ({"model": "m", "messages": [{"role": "user"}]}, "messages[0].content"),
        (
            {"model": "m", "messages": [{"role": "tool", "content": "x"}]},
            "messages[0].tool_call_id",
        ),
        (
            {"model": "m", "messages": [{"role": "user", "content": [{"type": "text"}]}]},
            "messages[0].content[0].text",
        ),
        (
            {
                "model": "m",
                "messages": [
                    {
                        "role": "assistant",
                        "tool_calls": [{"id": "c", "function": {"arguments": ""}}],
                    }
                ],
            },
            "messages[0].tool_calls[0].function.name",
        ),
        (
            {"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"},
            "temperature",
        ),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}, "stream"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "stop": 5}, "stop"),
        (
            {"model": "m", "messages": [{"role": "user", "content": "x"}], "tool_choice": "any"},
            "tool_choice",
        ),
        (
            {
                "model": "m",
                "messages": [{"role": "user", "content": "x"}],
                "reasoning_effort": "max",
            },
            "reasoning_effort",
        ),
        (
            {
                "model": "m",
                "messages": [{"role": "user", "content": "x"}],
                "tools": [{"type": "function"}],
            },
            "tools[0].function",
        ),
        (
            {
                "model": "m",
                "messages": [{"role": "user", "content": "x"}],
                "stream_options": {"include_usage": 1},
            },
            "stream_options.include_usage",
        ),
    ],
)
def test_bad_requests_name_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(BadRequest) as info:
        CODEC.parse_request(body)
    assert [d.field for d in info.value.details] == [field]


def foreign_request(**overrides: Any) -> ir.Request:
    """An IR as the Anthropic codec would produce it."""
    req = ir.Request(
        model="gpt-4o",
        source_format="anthropic",
        system=[ir.TextBlock("a", cache_control={"type": "ephemeral"}), ir.TextBlock("b")],
        messages=[
            ir.Message("user", [ir.TextBlock("go")]),
            ir.Message(
                "assistant",
                [
                    ir.ThinkingBlock("hmm", signature="sig", origin="anthropic"),
                    ir.TextBlock("ok"),
                    ir.ToolUseBlock(id="toolu_1", name="ls", input={"d": "."}),
                ],
            ),
            ir.Message(
                "user",
                [
                    ir.ToolResultBlock("toolu_1", [ir.TextBlock("a.py")], is_error=True),
                    ir.TextBlock("next"),
                ],
            ),
        ],
        tools=[ir.Tool("ls", "list", {"type": "object"}, extra={"cache_control": {}})],
        tool_choice=ir.ToolChoice("required"),
        parallel_tool_calls=False,
        max_tokens=50,
        top_k=5,
        stop=["1", "2", "3", "4", "5"],
        metadata={"user_id": "someone"},
        extra={"service_tier": "auto"},
    )
    for key, value in overrides.items():
        setattr(req, key, value)
    return req


def test_render_from_anthropic_ir_drops_what_chat_cannot_carry() -> None:
    req = foreign_request()
    body = CODEC.render_request(req)
    messages = body["messages"]
    assert messages[0] == {
        "role": "system",
        "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
    }
    assistant = messages[2]
    assert "reasoning_content" not in assistant  # another provider's thinking is dropped
    assert assistant["tool_calls"][0]["id"] == "toolu_1"  # ids kept as given
    assert json.loads(assistant["tool_calls"][0]["function"]["arguments"]) == {"d": "."}
    # tool results come right after the calls, then the rest of the user turn
    assert messages[3] == {"role": "tool", "tool_call_id": "toolu_1", "content": "a.py"}
    assert messages[4] == {"role": "user", "content": "next"}
    assert body["tool_choice"] == "required"
    assert body["parallel_tool_calls"] is False
    assert body["stop"] == ["1", "2", "3", "4"]
    assert body["user"] == "someone"
    assert "service_tier" not in body and "top_k" not in body
    for name in (
        "top_k",
        "stop[4:]",
        "thinking",
        "cache_control",
        "tool_result.is_error",
        "tools.cache_control",
        "service_tier",
    ):
        assert name in req.dropped


def test_case10_reasoning_models_use_max_completion_tokens() -> None:
    req = foreign_request(model="openai/o3-mini", temperature=1.0, thinking_budget=20000)
    body = CODEC.render_request(req)
    assert body["max_completion_tokens"] == 50 and "max_tokens" not in body
    assert "temperature" not in body and "temperature" in req.dropped
    assert body["reasoning_effort"] == "high"
    plain = foreign_request(model="gpt-4o", temperature=1.0, thinking_budget=20000)
    body = CODEC.render_request(plain)
    assert body["max_tokens"] == 50 and body["temperature"] == 1.0
    assert "thinking_budget" in plain.dropped


def test_case10_named_tool_choice_and_no_tools() -> None:
    body = CODEC.render_request(foreign_request(tool_choice=ir.ToolChoice("tool", "ls")))
    assert body["tool_choice"] == {"type": "function", "function": {"name": "ls"}}
    # the API rejects tool_choice without tools
    body = CODEC.render_request(foreign_request(tools=[]))
    assert "tool_choice" not in body and "parallel_tool_calls" not in body


def test_case5_streaming_request_always_asks_for_usage() -> None:
    req = CODEC.parse_request(
        {"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}], "stream": True}
    )
    assert req.include_usage is False
    assert CODEC.render_request(req)["stream_options"] == {"include_usage": True}
