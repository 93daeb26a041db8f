"""Tests for the Gemini codec and its Cloud Code envelope (router.md wire formats and cases)."""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import pytest

from router import ir
from router.errors import BadRequest
from router.formats import get_codec
from router.formats import Codec
from router.formats.gemini.codec import CLOUDCODE_CODEC, CODEC

# --------------------------------------------------------------------------- fixtures


def full_request() -> dict[str, Any]:
    return {
        "contents": [
            {"role": "user", "parts": [{"text": "Weather in Paris?"}]},
            {
                "role": "model",
                "parts": [
                    {"text": "Need the tool.", "thought": True, "thoughtSignature": "sigA"},
                    {
                        "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                        "thoughtSignature": "sigB",
                    },
                ],
            },
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"name": "get_weather", "response": {"result": "18C"}}}
                ],
            },
            {
                "role": "user",
                "parts": [
                    {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
                    {"fileData": {"mimeType": "application/pdf", "fileUri": "gs://b/doc.pdf"}},
                ],
            },
        ],
        "systemInstruction": {"parts": [{"text": "Be brief."}, {"text": "Use metric."}]},
        "tools": [
            {
                "functionDeclarations": [
                    {
                        "name": "get_weather",
                        "description": "Weather for a city",
                        "parameters": {
                            "type": "OBJECT",
                            "properties": {"city": {"type": "STRING"}},
                            "required": ["city"],
                        },
                        "behavior": "BLOCKING",
                    }
                ]
            },
            {"googleSearch": {}},
        ],
        "toolConfig": {
            "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["a", "b"]}
        },
        "generationConfig": {
            "temperature": 0.3,
            "topP": 0.9,
            "topK": 40,
            "maxOutputTokens": 1024,
            "stopSequences": ["END"],
            "seed": 7,
            "responseMimeType": "application/json",
            "responseSchema": {"type": "OBJECT", "properties": {"x": {"type": "STRING"}}},
            "thinkingConfig": {"thinkingBudget": 2048, "includeThoughts": True},
            "candidateCount": 1,
        },
        "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
        "cachedContent": "cachedContents/abc",
    }


def full_response() -> dict[str, Any]:
    return {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"text": "Thinking about it", "thought": True},
                        {"text": "It is sunny.", "thoughtSignature": "sig1"},
                        {"functionCall": {"name": "get_time", "args": {"tz": "CET"}, "id": "fc_9"}},
                    ],
                },
                "finishReason": "STOP",
                "index": 0,
                "safetyRatings": [
                    {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"}
                ],
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 100,
            "candidatesTokenCount": 20,
            "cachedContentTokenCount": 60,
            "thoughtsTokenCount": 30,
            "totalTokenCount": 150,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 100}],
        },
        "modelVersion": "gemini-2.5-pro",
        "responseId": "resp-1",
    }


def sse(chunks: list[dict[str, Any]]) -> bytes:
    return b"".join(b"data: " + json.dumps(c).encode() + b"\r\n\r\n" for c in chunks)


def stream_chunks() -> list[dict[str, Any]]:
    usage_early = {"promptTokenCount": 50, "totalTokenCount": 50}
    return [
        {
            "candidates": [
                {
                    "content": {"role": "model", "parts": [{"text": "Let me ", "thought": True}]},
                    "index": 0,
                }
            ],
            "usageMetadata": usage_early,
            "modelVersion": "gemini-2.5-flash",
            "responseId": "r-42",
        },
        {
            "candidates": [
                {
                    "content": {
                        "role": "model",
                        "parts": [{"text": "think ☃", "thought": True, "thoughtSignature": "tsig"}],
                    },
                    "index": 0,
                }
            ],
            "usageMetadata": usage_early,
        },
        {
            "candidates": [
                {"content": {"role": "model", "parts": [{"text": "Hello, "}]}, "index": 0}
            ]
        },
        {
            "candidates": [
                {"content": {"role": "model", "parts": [{"text": "wörld ✓"}]}, "index": 0}
            ]
        },
        {
            "candidates": [
                {
                    "content": {
                        "role": "model",
                        "parts": [
                            {
                                "functionCall": {"name": "get_weather", "args": {"city": "Zürich"}},
                                "thoughtSignature": "csig",
                            },
                            {"functionCall": {"name": "get_weather", "args": {"city": "Bern"}}},
                        ],
                    },
                    "finishReason": "STOP",
                    "index": 0,
                }
            ],
            "usageMetadata": {
                "promptTokenCount": 50,
                "candidatesTokenCount": 12,
                "cachedContentTokenCount": 10,
                "thoughtsTokenCount": 8,
                "totalTokenCount": 70,
            },
        },
    ]


def merged_body() -> dict[str, Any]:
    """The non-streamed response equivalent to :func:`stream_chunks`."""
    return {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"text": "Let me think ☃", "thought": True, "thoughtSignature": "tsig"},
                        {"text": "Hello, wörld ✓"},
                        {
                            "functionCall": {"name": "get_weather", "args": {"city": "Zürich"}},
                            "thoughtSignature": "csig",
                        },
                        {"functionCall": {"name": "get_weather", "args": {"city": "Bern"}}},
                    ],
                },
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": stream_chunks()[-1]["usageMetadata"],
        "modelVersion": "gemini-2.5-flash",
        "responseId": "r-42",
    }


def parse_in_pieces(data: bytes, sizes: list[int], codec: Codec = CODEC) -> list[ir.StreamEvent]:
    parser = codec.stream_parser()
    events: list[ir.StreamEvent] = []
    pos = 0
    for size in sizes:
        events.extend(parser.feed(data[pos : pos + size]))
        pos += size
    events.extend(parser.feed(data[pos:]))
    events.extend(parser.close())
    return events


def accumulate(events: list[ir.StreamEvent]) -> ir.Response:
    acc = ir.StreamAccumulator()
    acc.feed_all(events)
    return acc.result()


def with_model(body: dict[str, Any], model: str = "gemini-2.5-pro") -> dict[str, Any]:
    return {**copy.deepcopy(body), "model": model}


# --------------------------------------------------------------------------- requests


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
        "thinkingConfig": {"thinkingBudget": 1024}
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


# --------------------------------------------------------------------------- responses


def test_response_round_trip_keeps_unknown_fields() -> None:
    body = full_response()
    resp = CODEC.parse_response(copy.deepcopy(body))
    assert (resp.id, resp.model) == ("resp-1", "gemini-2.5-pro")
    kinds = [b.type for b in resp.content]
    assert kinds == ["thinking", "thinking", "text", "tool_use"]
    assert resp.tool_calls()[0].id == "fc_9"
    assert resp.stop_reason == "tool_use"
    req = ir.Request(model="gemini-2.5-pro")
    assert CODEC.render_response(resp, req) == body


def test_case5_usage_counts_cached_and_thought_tokens_openai_style() -> None:
    resp = CODEC.parse_response(full_response())
    assert resp.usage == ir.Usage(
        input_tokens=100, output_tokens=50, cache_read_tokens=60, reasoning_tokens=30
    )
    rendered = CODEC.render_response(resp, ir.Request(model="x"))["usageMetadata"]
    assert rendered["candidatesTokenCount"] == 20
    assert rendered["totalTokenCount"] == 150


@pytest.mark.parametrize(
    ("finish", "with_call", "stop", "back"),
    [
        ("STOP", False, "end_turn", "STOP"),
        ("STOP", True, "tool_use", "STOP"),
        ("MAX_TOKENS", False, "max_tokens", "MAX_TOKENS"),
        ("SAFETY", False, "content_filter", "SAFETY"),
        ("RECITATION", False, "content_filter", "RECITATION"),
        ("BLOCKLIST", False, "content_filter", "BLOCKLIST"),
        ("PROHIBITED_CONTENT", False, "content_filter", "PROHIBITED_CONTENT"),
        ("MALFORMED_FUNCTION_CALL", False, "error", "MALFORMED_FUNCTION_CALL"),
    ],
)
def test_case6_finish_reasons_map_to_stop_reasons(
    finish: str, with_call: bool, stop: str, back: str
) -> None:
    parts: list[dict[str, Any]] = [{"text": "x"}]
    if with_call:
        parts.append({"functionCall": {"name": "f", "args": {}}})
    body = {
        "candidates": [
            {"content": {"role": "model", "parts": parts}, "finishReason": finish, "index": 0}
        ]
    }
    resp = CODEC.parse_response(body)
    assert resp.stop_reason == stop
    assert (
        CODEC.render_response(resp, ir.Request(model="m"))["candidates"][0]["finishReason"] == back
    )
    # a response from another format gets the canonical Gemini reason
    foreign = ir.Response(content=resp.content, stop_reason=resp.stop_reason)
    expected = {
        "end_turn": "STOP",
        "tool_use": "STOP",
        "max_tokens": "MAX_TOKENS",
        "content_filter": "SAFETY",
        "error": "OTHER",
    }
    assert (
        CODEC.render_response(foreign, ir.Request(model="m"))["candidates"][0]["finishReason"]
        == expected[stop]
    )


def test_blocked_prompt_is_a_content_filter_stop() -> None:
    resp = CODEC.parse_response(
        {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 5}}
    )
    assert resp.stop_reason == "content_filter"
    assert resp.content == []
    assert resp.extra["promptFeedback"] == {"blockReason": "SAFETY"}


def test_response_from_another_format_renders_generated_ids_away() -> None:
    resp = ir.Response(
        id="msg_1",
        model="claude-x",
        content=[
            ir.ThinkingBlock("hmm", signature="anthropic", origin="anthropic"),
            ir.TextBlock("Calling."),
            ir.ToolUseBlock(id="toolu_9", name="ls", input={"path": "/"}),
            ir.ToolUseBlock(id="call_ls_1", name="ls", raw_arguments='{"path": "/tmp"}'),
        ],
        stop_reason="tool_use",
        usage=ir.Usage(input_tokens=10, output_tokens=5),
    )
    body = CODEC.render_response(resp, ir.Request(model="m"))
    assert body["candidates"][0]["content"]["parts"] == [
        {"text": "Calling."},
        {"functionCall": {"name": "ls", "args": {"path": "/"}, "id": "toolu_9"}},
        {"functionCall": {"name": "ls", "args": {"path": "/tmp"}}},
    ]
    assert body["usageMetadata"] == {
        "promptTokenCount": 10,
        "candidatesTokenCount": 5,
        "totalTokenCount": 15,
    }


# --------------------------------------------------------------------------- streams


def test_case9_stream_parse_is_identical_for_any_chunking() -> None:
    data = sse(stream_chunks()).replace(b"data: ", b": keep-alive\r\n\r\ndata: ", 1)
    whole = parse_in_pieces(data, [])
    assert parse_in_pieces(data, [1] * len(data)) == whole
    rng = random.Random(1234)
    for _ in range(25):
        sizes = [rng.randint(1, 40) for _ in range(len(data) // 10)]
        assert parse_in_pieces(data, sizes) == whole
    assert isinstance(whole[0], ir.MessageStart) and whole[0].id == "r-42"
    assert whole[0].usage == ir.Usage(input_tokens=50)
    assert isinstance(whole[-1], ir.MessageStop)
    delta = whole[-2]
    assert isinstance(delta, ir.MessageDelta) and delta.stop_reason == "tool_use"
    assert delta.usage == ir.Usage(
        input_tokens=50, output_tokens=20, cache_read_tokens=10, reasoning_tokens=8
    )


def test_case3_each_function_call_is_one_whole_tool_block() -> None:
    events = parse_in_pieces(sse(stream_chunks()), [])
    tool_starts = [
        e for e in events if isinstance(e, ir.BlockStart) and isinstance(e.block, ir.ToolUseBlock)
    ]
    assert [
        (s.block.id, s.block.name) for s in tool_starts if isinstance(s.block, ir.ToolUseBlock)
    ] == [
        ("call_get_weather_0", "get_weather"),
        ("call_get_weather_1", "get_weather"),
    ]
    for start in tool_starts:
        deltas = [e for e in events if isinstance(e, ir.BlockDelta) and e.index == start.index]
        assert len(deltas) == 1 and deltas[0].kind == "input_json"
        assert ir.BlockStop(start.index) in events


def test_stream_accumulates_to_the_equivalent_response() -> None:
    streamed = accumulate(parse_in_pieces(sse(stream_chunks()), [7, 3, 100]))
    assert streamed == CODEC.parse_response(merged_body())
    assert streamed.text() == "Hello, wörld ✓"
    thinking = streamed.content[0]
    assert isinstance(thinking, ir.ThinkingBlock)
    assert (thinking.thinking, thinking.signature) == ("Let me think ☃", "tsig")


def test_stream_cut_without_finish_reason_is_an_error() -> None:
    chunks = stream_chunks()[:3]
    events = parse_in_pieces(sse(chunks), [5])
    assert isinstance(events[-1], ir.ErrorEvent)
    assert not any(isinstance(e, ir.MessageStop) for e in events)
    parser = CODEC.stream_parser()
    assert parser.feed(b"") == []
    assert [type(e) for e in parser.close()] == [ir.ErrorEvent]


def test_case7_content_and_finish_reason_in_one_chunk_lose_nothing() -> None:
    chunk = {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": "all at once"}]},
                "finishReason": "MAX_TOKENS",
            }
        ],
        "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 4},
    }
    resp = accumulate(parse_in_pieces(sse([chunk]), []))
    assert resp.text() == "all at once"
    assert resp.stop_reason == "max_tokens"
    assert resp.usage == ir.Usage(input_tokens=3, output_tokens=4)


def test_case8_upstream_error_chunk_becomes_error_event() -> None:
    data = sse(
        [
            stream_chunks()[2],
            {"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}},
        ]
    )
    events = parse_in_pieces(data, [])
    assert events[-1] == ir.ErrorEvent("quota", "rate_limit_error", 429)


def test_case8_error_event_rendering_in_gemini_framing() -> None:
    payload = CODEC.error_event("boom", "overloaded_error")
    assert payload.startswith(b"data: ") and payload.endswith(b"\n\n")
    assert json.loads(payload[6:]) == {
        "error": {"code": 503, "message": "boom", "status": "UNAVAILABLE"}
    }
    renderer = CODEC.stream_renderer(ir.Request(model="m"))
    out = renderer.render(ir.ErrorEvent("cut", "api_error"))
    assert json.loads(out[6:]) == {"error": {"code": 500, "message": "cut", "status": "INTERNAL"}}
    assert renderer.finish() == b""
    # our own parser reads it back as an error
    parsed = parse_in_pieces(out, [])
    assert isinstance(parsed[0], ir.ErrorEvent) and parsed[0].message == "cut"


def render_all(codec: Codec, events: list[ir.StreamEvent], req: ir.Request) -> bytes:
    renderer = codec.stream_renderer(req)
    return b"".join(renderer.render(e) for e in events) + renderer.finish()


def test_render_stream_reparses_to_the_same_response() -> None:
    original = CODEC.parse_response(merged_body())
    data = render_all(CODEC, ir.response_events(original), ir.Request(model="gemini-2.5-flash"))
    chunks = [json.loads(line[6:]) for line in data.split(b"\n\n") if line]
    # one chunk per text delta and per whole call, then the final chunk
    assert all("finishReason" not in c["candidates"][0] for c in chunks[:-1])
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert chunks[-1]["usageMetadata"] == merged_body()["usageMetadata"]
    assert accumulate(parse_in_pieces(data, [13])) == original


def test_case3_renderer_buffers_split_arguments_into_one_function_call() -> None:
    args = '{"path": "/tmp/ü", "n": [1, 2]}'
    events: list[ir.StreamEvent] = [
        ir.MessageStart(id="x", model="gpt"),
        ir.BlockStart(0, ir.TextBlock()),
        ir.BlockDelta(0, "text", "ok"),
        ir.BlockStart(1, ir.ToolUseBlock(id="call_A", name="ls")),
        ir.BlockStart(2, ir.ToolUseBlock(id="call_B", name="cat")),
        *(ir.BlockDelta(1, "input_json", args[i : i + 3]) for i in range(0, len(args), 3)),
        ir.BlockDelta(2, "input_json", "{}"),
        ir.BlockStop(0),
        ir.BlockStop(2),
        ir.BlockStop(1),
        ir.MessageDelta(stop_reason="tool_use", usage=ir.Usage(input_tokens=9, output_tokens=2)),
    ]
    data = render_all(CODEC, events, ir.Request(model="m"))  # no MessageStop: finish() ends it
    chunks = [json.loads(line[6:]) for line in data.split(b"\n\n") if line]
    calls = [
        p["functionCall"]
        for c in chunks
        for p in c["candidates"][0]["content"]["parts"]
        if "functionCall" in p
    ]
    assert calls == [
        {"name": "cat", "args": {}, "id": "call_B"},
        {"name": "ls", "args": json.loads(args), "id": "call_A"},
    ]
    assert chunks[-1]["usageMetadata"]["promptTokenCount"] == 9
    assert accumulate(parse_in_pieces(data, [])).stop_reason == "tool_use"


# --------------------------------------------------------------------------- cloud code


def cloudcode_request() -> dict[str, Any]:
    inner = full_request()
    inner["sessionId"] = "sess-1"
    return {
        "model": "gemini-2.5-pro",
        "project": "proj-123",
        "userAgent": "antigravity",
        "requestType": "agent",
        "requestId": "agent-abc",
        "request": inner,
    }


def test_cloudcode_request_envelope_round_trip() -> None:
    body = cloudcode_request()
    req = CLOUDCODE_CODEC.parse_request(copy.deepcopy(body))
    assert req.model == "gemini-2.5-pro" and req.source_format == "cloudcode"
    assert req.extra["envelope"] == {
        "project": "proj-123",
        "userAgent": "antigravity",
        "requestType": "agent",
        "requestId": "agent-abc",
    }
    assert req.extra["sessionId"] == "sess-1"
    assert CLOUDCODE_CODEC.render_request(req) == body
    # the same IR rendered as plain Gemini loses only the envelope
    plain = CODEC.render_request(req)
    assert plain == body["request"]
    assert req.dropped == ["envelope"]


def test_cloudcode_bad_request_paths_point_inside_the_envelope() -> None:
    with pytest.raises(BadRequest) as err:
        CLOUDCODE_CODEC.parse_request({"model": "m", "request": {"contents": {}}})
    assert err.value.details[0].field == "request.contents"
    with pytest.raises(BadRequest) as err:
        CLOUDCODE_CODEC.parse_request({"model": "m", "contents": []})
    assert err.value.details[0].field == "request"


def test_cloudcode_response_envelope_round_trip() -> None:
    body = {"response": full_response(), "traceId": "t-1"}
    resp = CLOUDCODE_CODEC.parse_response(copy.deepcopy(body))
    assert resp.id == "resp-1" and resp.extra["envelope"] == {"traceId": "t-1"}
    assert CLOUDCODE_CODEC.render_response(resp, ir.Request(model="x")) == body
    assert CLOUDCODE_CODEC.parse_response(full_response()) == CODEC.parse_response(full_response())


def test_cloudcode_stream_wraps_and_unwraps_gemini_chunks() -> None:
    wrapped = sse([{"response": c, "traceId": "t"} for c in stream_chunks()])
    events = parse_in_pieces(wrapped, [11], codec=CLOUDCODE_CODEC)
    assert events == parse_in_pieces(sse(stream_chunks()), [], codec=CODEC)
    data = render_all(CLOUDCODE_CODEC, events, ir.Request(model="m"))
    chunks = [json.loads(line[6:]) for line in data.split(b"\n\n") if line]
    assert all(set(c) == {"response"} for c in chunks)
    assert accumulate(parse_in_pieces(data, [2], codec=CLOUDCODE_CODEC)) == accumulate(events)
