"""The responses codec: requests (parse, render, validation)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from router import ir
from router.errors import BadRequest
from router.formats.openai_chat.codec import CODEC as CHAT
from router.formats.responses.codec import CODEC
from tests.router.formats.responses.samples import PNG, full_body


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
