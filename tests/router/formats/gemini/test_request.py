"""The gemini codec: requests (parse, render, validation)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from router import ir
from router.errors import BadRequest
from router.formats import get_codec
from router.formats.gemini.codec import CLOUDCODE_CODEC, CODEC
from tests.router.formats.gemini.samples import (
    full_request,
    with_model,
)


def test_codecs_are_registered() -> None:
    assert get_codec("gemini") is CODEC
    assert get_codec("cloudcode") is CLOUDCODE_CODEC
    assert (CODEC.name, CLOUDCODE_CODEC.name) == ("gemini", "cloudcode")


def test_request_round_trip_keeps_unknown_fields_and_omits_model() -> None:
    body = full_request()
    req = CODEC.parse_request(with_model(body))
    assert req.model == "gemini-2.5-pro"
    assert req.source_format == "gemini"
    assert req.extra["safetySettings"] == body["safetySettings"]
    rendered = CODEC.render_request(req)
    assert "model" not in rendered
    assert rendered == body
    assert req.dropped == []


def test_request_maps_fields_into_ir() -> None:
    req = CODEC.parse_request(with_model(full_request()))
    assert req.system_text() == "Be brief.\nUse metric."
    assert (req.temperature, req.top_p, req.top_k, req.max_tokens, req.seed) == (
        0.3,
        0.9,
        40,
        1024,
        7,
    )
    assert req.stop == ["END"]
    assert req.thinking_budget == 2048
    assert req.tool_choice == ir.ToolChoice("required")
    assert req.response_format is not None and req.response_format["type"] == "json_schema"
    assert [t.name for t in req.tools] == ["get_weather"]
    assert req.tools[0].extra == {"behavior": "BLOCKING"}
    assert req.extra["tools"] == [{"googleSearch": {}}]
    model_turn = req.messages[1]
    assert model_turn.role == "assistant"
    thinking, signature_only, call = model_turn.content
    assert isinstance(thinking, ir.ThinkingBlock) and thinking.signature == "sigA"
    assert thinking.origin == "gemini"
    assert isinstance(signature_only, ir.ThinkingBlock) and signature_only.signature == "sigB"
    assert signature_only.thinking == ""
    assert isinstance(call, ir.ToolUseBlock) and call.input == {"city": "Paris"}
    result = req.messages[2].content[0]
    assert isinstance(result, ir.ToolResultBlock)
    assert (result.tool_use_id, result.name, result.text()) == (call.id, "get_weather", "18C")
    image, file = req.messages[3].content
    assert isinstance(image, ir.ImageBlock) and image.data == "iVBORw0KGgo="
    assert isinstance(file, ir.ImageBlock) and file.url == "gs://b/doc.pdf"


def test_request_snake_case_input_renders_camel_case() -> None:
    snake = {
        "contents": [
            {"role": "user", "parts": [{"text": "hi"}]},
            {
                "role": "model",
                "parts": [{"function_call": {"name": "f", "args": {}}, "thought_signature": "s"}],
            },
            {
                "role": "user",
                "parts": [{"function_response": {"name": "f", "response": {"ok": True}}}],
            },
            {
                "role": "user",
                "parts": [{"inline_data": {"mime_type": "image/jpeg", "data": "AAA="}}],
            },
        ],
        "system_instruction": {"parts": [{"text": "sys"}]},
        "tools": [{"function_declarations": [{"name": "f", "parameters": {"type": "object"}}]}],
        "tool_config": {
            "function_calling_config": {"mode": "ANY", "allowed_function_names": ["f"]}
        },
        "generation_config": {
            "max_output_tokens": 99,
            "stop_sequences": ["x"],
            "top_k": 3,
            "thinking_config": {"thinking_level": "low", "include_thoughts": True},
        },
        "safety_settings": [],
    }
    req = CODEC.parse_request(with_model(snake))
    assert req.max_tokens == 99 and req.top_k == 3 and req.stop == ["x"]
    assert req.tool_choice == ir.ToolChoice("tool", "f")
    assert req.reasoning_effort == "low"
    assert CODEC.render_request(req) == {
        "contents": [
            {"role": "user", "parts": [{"text": "hi"}]},
            {
                "role": "model",
                "parts": [{"functionCall": {"name": "f", "args": {}}, "thoughtSignature": "s"}],
            },
            {
                "role": "user",
                "parts": [{"functionResponse": {"name": "f", "response": {"ok": True}}}],
            },
            {"role": "user", "parts": [{"inlineData": {"mimeType": "image/jpeg", "data": "AAA="}}]},
        ],
        "systemInstruction": {"parts": [{"text": "sys"}]},
        "tools": [{"functionDeclarations": [{"name": "f", "parameters": {"type": "object"}}]}],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f"]}},
        "generationConfig": {
            "maxOutputTokens": 99,
            "stopSequences": ["x"],
            "topK": 3,
            "thinkingConfig": {"thinkingLevel": "low", "include_thoughts": True},
        },
        "safety_settings": [],
    }


def test_request_json_schema_tools_and_stream_flag_round_trip() -> None:
    body: dict[str, Any] = {
        "contents": [{"parts": [{"text": "hi"}]}],
        "tools": [
            {
                "functionDeclarations": [
                    {
                        "name": "a",
                        "parametersJsonSchema": {"type": "object", "additionalProperties": False},
                    },
                    {"name": "b", "description": "no params"},
                ]
            }
        ],
        "generationConfig": {
            "responseMimeType": "application/json",
            "responseJsonSchema": {"type": "object"},
        },
    }
    req = CODEC.parse_request({**copy.deepcopy(body), "model": "m", "stream": True})
    assert req.stream is True
    assert req.messages[0].role == "user"
    rendered = CODEC.render_request(req)
    assert "stream" not in rendered
    body["contents"][0]["role"] = "user"  # the role defaults to user and is written out
    assert rendered == body


def test_case1_generated_tool_ids_are_unique_and_stable_across_turns() -> None:
    turn = [
        {"role": "user", "parts": [{"text": "weather?"}]},
        {
            "role": "model",
            "parts": [
                {"functionCall": {"name": "get_weather", "args": {"city": "A"}}},
                {"functionCall": {"name": "get_weather", "args": {"city": "B"}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"result": "a"}}},
                {"functionResponse": {"name": "get_weather", "response": {"result": "b"}}},
            ],
        },
    ]
    first = CODEC.parse_request({"model": "m", "contents": copy.deepcopy(turn)})
    more = [
        *copy.deepcopy(turn),
        {
            "role": "model",
            "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "C"}}}],
        },
        {
            "role": "user",
            "parts": [{"functionResponse": {"name": "get_weather", "response": {"result": "c"}}}],
        },
    ]
    second = CODEC.parse_request({"model": "m", "contents": more})

    def ids(req: ir.Request) -> list[tuple[str, str]]:
        out = []
        for msg in req.messages:
            for b in msg.content:
                if isinstance(b, ir.ToolUseBlock):
                    out.append(("use", b.id))
                elif isinstance(b, ir.ToolResultBlock):
                    out.append(("result", b.tool_use_id))
        return out

    first_ids = ids(first)
    assert ids(second)[: len(first_ids)] == first_ids
    uses = [i for kind, i in ids(second) if kind == "use"]
    results = [i for kind, i in ids(second) if kind == "result"]
    assert len(set(uses)) == 3 and results == uses  # paired in order, by name
    # generated ids never leak back into a Gemini body
    assert CODEC.render_request(second)["contents"] == more


def test_case1_tool_result_without_name_gets_name_from_earlier_tool_use() -> None:
    req = ir.Request(
        model="gemini-2.5-flash",
        messages=[
            ir.Message("user", [ir.TextBlock("weather in Oslo?")]),
            ir.Message(
                "assistant",
                [ir.ToolUseBlock(id="toolu_01", name="get_weather", input={"city": "Oslo"})],
            ),
            ir.Message(
                "tool", [ir.ToolResultBlock(tool_use_id="toolu_01", content=[ir.TextBlock("-3C")])]
            ),
            ir.Message(
                "tool",
                [
                    ir.ToolResultBlock(
                        tool_use_id="toolu_01", content=[ir.TextBlock("x")], is_error=True
                    )
                ],
            ),
        ],
        source_format="anthropic",
    )
    body = CODEC.render_request(req)
    call = body["contents"][1]["parts"][0]["functionCall"]
    assert call == {"name": "get_weather", "args": {"city": "Oslo"}, "id": "toolu_01"}
    # consecutive results are merged into one user content, as Gemini wants
    assert len(body["contents"]) == 3
    responses = [p["functionResponse"] for p in body["contents"][2]["parts"]]
    assert responses == [
        {"name": "get_weather", "response": {"result": "-3C"}, "id": "toolu_01"},
        {"name": "get_weather", "response": {"error": "x"}, "id": "toolu_01"},
    ]
    back = CODEC.parse_request({**body, "model": "m"})
    result = back.messages[2].content[1]
    assert isinstance(result, ir.ToolResultBlock)
    assert (result.tool_use_id, result.name, result.is_error, result.text()) == (
        "toolu_01",
        "get_weather",
        True,
        "x",
    )


def test_tool_result_for_unknown_call_is_a_bad_request() -> None:
    req = ir.Request(
        model="m",
        messages=[
            ir.Message(
                "user", [ir.ToolResultBlock(tool_use_id="nope", content=[ir.TextBlock("x")])]
            )
        ],
        source_format="openai-chat",
    )
    with pytest.raises(BadRequest) as err:
        CODEC.render_request(req)
    assert err.value.details[0].field == "messages[0].content[0].tool_use_id"


def test_function_response_objects_pass_through_and_text_is_wrapped() -> None:
    body = {
        "contents": [
            {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]},
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"name": "f", "response": {"temp": 3, "unit": "C"}}}
                ],
            },
        ]
    }
    req = CODEC.parse_request({**copy.deepcopy(body), "model": "m"})
    result = req.messages[1].content[0]
    assert isinstance(result, ir.ToolResultBlock)
    assert json.loads(result.text()) == {"temp": 3, "unit": "C"}
    assert CODEC.render_request(req) == body


def test_foreign_request_render_drops_what_gemini_cannot_take() -> None:
    req = ir.Request(
        model="gemini-3-pro-preview",
        system=[ir.TextBlock("sys")],
        messages=[
            ir.Message("user", [ir.TextBlock("hi", cache_control={"type": "ephemeral"})]),
            ir.Message(
                "assistant",
                [
                    ir.ThinkingBlock(
                        thinking="claude thoughts", signature="anthropic-sig", origin="anthropic"
                    ),
                    ir.ToolUseBlock(id="call_abc", name="run", input={"cmd": "ls"}),
                ],
            ),
            ir.Message(
                "tool", [ir.ToolResultBlock(tool_use_id="call_abc", content=[ir.TextBlock("ok")])]
            ),
        ],
        tools=[ir.Tool("run", "runs", {"type": "object", "additionalProperties": False})],
        tool_choice=ir.ToolChoice("tool", "run"),
        parallel_tool_calls=False,
        reasoning_effort="xhigh",
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "x", "schema": {"type": "object"}},
        },
        user="u1",
        source_format="openai-chat",
        extra={"logprobs": True},
    )
    body = CODEC.render_request(req)
    assert body["systemInstruction"] == {"parts": [{"text": "sys"}]}
    model_parts = body["contents"][1]["parts"]
    assert model_parts == [
        {
            "functionCall": {"name": "run", "args": {"cmd": "ls"}, "id": "call_abc"},
            "thoughtSignature": "skip_thought_signature_validator",
        }
    ]
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "run",
                    "description": "runs",
                    "parametersJsonSchema": {"type": "object", "additionalProperties": False},
                }
            ]
        }
    ]
    assert body["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["run"]}
    }
    assert body["generationConfig"] == {
        "responseMimeType": "application/json",
        "responseJsonSchema": {"type": "object"},
        "thinkingConfig": {"thinkingLevel": "high"},
    }
    assert "logprobs" not in body and "user" not in body
    assert set(req.dropped) == {
        "cache_control",
        "thinking",
        "parallel_tool_calls",
        "user",
        "logprobs",
    }


def test_reasoning_effort_becomes_a_budget_for_pre_3_models() -> None:
    req = ir.Request(
        model="gemini-2.5-flash",
        messages=[ir.Message("user", [ir.TextBlock("x")])],
        reasoning_effort="low",
        source_format="responses",
    )
    assert CODEC.render_request(req)["generationConfig"] == {
        "thinkingConfig": {"thinkingBudget": ir.EFFORT_BUDGET["low"]}
    }
    req = ir.Request(
        model="gemini-2.5-flash",
        messages=[ir.Message("user", [ir.TextBlock("x")])],
        thinking_budget=4000,
        source_format="anthropic",
    )
    assert CODEC.render_request(req)["generationConfig"] == {
        "thinkingConfig": {"thinkingBudget": 4000, "includeThoughts": True}
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "contents"),
        ({"contents": "hi"}, "contents"),
        ({"contents": ["hi"]}, "contents[0]"),
        ({"contents": [{"role": "user", "parts": "hi"}]}, "contents[0].parts"),
        ({"contents": [{"role": "user", "parts": ["hi"]}]}, "contents[0].parts[0]"),
        ({"contents": [{"role": "user", "parts": [{"bogus": 1}]}]}, "contents[0].parts[0]"),
        ({"contents": [{"role": "user", "parts": [{"text": 5}]}]}, "contents[0].parts[0].text"),
        ({"contents": [{"role": "robot", "parts": []}]}, "contents[0].role"),
        (
            {"contents": [{"parts": [{"functionCall": {"args": {}}}]}]},
            "contents[0].parts[0].functionCall.name",
        ),
        (
            {"contents": [], "generationConfig": {"temperature": "hot"}},
            "generationConfig.temperature",
        ),
        (
            {"contents": [], "generationConfig": {"maxOutputTokens": True}},
            "generationConfig.maxOutputTokens",
        ),
        (
            {"contents": [], "tools": [{"functionDeclarations": [{"description": "x"}]}]},
            "tools[0].functionDeclarations[0].name",
        ),
        ({"contents": [], "model": 5}, "model"),
    ],
)
def test_bad_request_bodies_name_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(BadRequest) as err:
        CODEC.parse_request(body)
    assert [d.field for d in err.value.details] == [field]


def test_gemini_thinking_budget_asks_an_openai_upstream_to_reason() -> None:
    """Before: thinkingBudget reached no OpenAI upstream (dropped for non-reasoning models),
    while the same budget from an Anthropic client became reasoning_effort."""
    body = with_model({"contents": [{"role": "user", "parts": [{"text": "2+2?"}]}]})
    body["generationConfig"] = {"thinkingConfig": {"thinkingBudget": 2048, "includeThoughts": True}}
    req = CODEC.parse_request(body)
    assert req.thinking_budget == 2048 and req.reasoning_effort == ir.effort_for_budget(2048)
    chat = get_codec("openai-chat").render_request(req)
    assert chat["reasoning_effort"] == "low"
    anthropic = get_codec("anthropic").parse_request(
        {
            "model": "m",
            "max_tokens": 4096,
            "thinking": {"type": "enabled", "budget_tokens": 2048},
            "messages": [{"role": "user", "content": "2+2?"}],
        }
    )
    assert get_codec("openai-chat").render_request(anthropic)["reasoning_effort"] == "low"
    # Gemini -> Gemini still carries the budget itself, not a level.
    again = CODEC.render_request(CODEC.parse_request(body))
    assert again["generationConfig"]["thinkingConfig"] == {
        "thinkingBudget": 2048,
        "includeThoughts": True,
    }
    # Thinking turned off (0) or left to the model (-1) asks for no particular effort.
    for budget in (0, -1):
        body["generationConfig"] = {"thinkingConfig": {"thinkingBudget": budget}}
        assert CODEC.parse_request(body).reasoning_effort is None
