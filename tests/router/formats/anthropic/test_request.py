"""The anthropic codec: requests (parse, render, validation)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from router import ir
from router.errors import BadRequest
from router.formats import get_codec
from router.formats.anthropic.codec import CODEC
from tests.router.formats.anthropic.samples import (
    FULL_REQUEST,
    SAFE_ID,
    message_body,
    parse_all,
    render_all,
    sse_payloads,
    stream_for,
)
from tests.router.formats.shared import accumulate


def test_codec_is_registered() -> None:
    assert get_codec("anthropic") is CODEC
    assert CODEC.name == "anthropic"


def test_parse_request_maps_every_field() -> None:
    req = CODEC.parse_request(copy.deepcopy(FULL_REQUEST))
    assert req.source_format == "anthropic"
    assert req.model == "claude-sonnet-4-5" and req.max_tokens == 20000
    assert [b.text for b in req.system] == ["You are terse.", "Cache me."]
    assert req.system[1].cache_control == {"type": "ephemeral"}
    user, assistant, results = req.messages
    assert isinstance(user.content[1], ir.ImageBlock) and user.content[1].data == "iVBOR"
    assert (
        isinstance(user.content[2], ir.ImageBlock)
        and user.content[2].url == "https://example.com/a.png"
    )
    thinking, redacted, call_a, _ = assistant.content
    assert isinstance(thinking, ir.ThinkingBlock) and thinking.signature == "c2lnbmF0dXJl"
    assert thinking.origin == "anthropic" and not thinking.redacted
    assert (
        isinstance(redacted, ir.ThinkingBlock)
        and redacted.redacted
        and redacted.data == "EnCrYpTeD"
    )
    assert redacted.origin == "anthropic"
    assert isinstance(call_a, ir.ToolUseBlock) and call_a.input == {"q": "cat"}
    first, second, thanks = results.content
    assert isinstance(first, ir.ToolResultBlock) and first.text() == "a cat" and not first.is_error
    assert isinstance(second, ir.ToolResultBlock) and second.is_error and len(second.content) == 2
    assert isinstance(thanks, ir.TextBlock) and thanks.cache_control == {"type": "ephemeral"}
    lookup, search = req.tools
    assert lookup.parameters["properties"] == {"q": {"type": "string"}}
    assert lookup.extra == {"cache_control": {"type": "ephemeral"}}
    assert search.name == "web_search" and search.extra == {
        "type": "web_search_20250305",
        "max_uses": 3,
    }
    assert req.tool_choice == ir.ToolChoice("auto") and req.parallel_tool_calls is False
    assert req.stop == ["END"] and req.top_p == 0.99
    assert req.thinking_budget == 10000 and req.reasoning_effort == "medium"  # ir.EFFORT_BUDGET
    assert req.user == "user-42" and req.stream and req.include_usage
    assert req.extra == {"service_tier": "auto", "container": "container_123"}


def test_request_round_trip_keeps_unknown_fields() -> None:
    body = copy.deepcopy(FULL_REQUEST)
    again = CODEC.render_request(CODEC.parse_request(copy.deepcopy(body)))
    # A tool_result made of several text blocks is kept as blocks; everything else verbatim.
    assert again == body


def test_string_content_and_system_round_trip() -> None:
    body = {
        "model": "claude-3-5-haiku-latest",
        "max_tokens": 100,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "Hello"}],
        "temperature": 0.2,
        "top_k": 5,
        "thinking": {"type": "disabled"},
    }
    req = CODEC.parse_request(copy.deepcopy(body))
    assert req.thinking_budget is None and req.extra == {"thinking": {"type": "disabled"}}
    assert CODEC.render_request(req) == body


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"model": None}, "model"),
        ({"model": 3}, "model"),
        ({"messages": "hi"}, "messages"),
        ({"max_tokens": None}, "max_tokens"),
        ({"max_tokens": "10"}, "max_tokens"),
        ({"max_tokens": True}, "max_tokens"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages.0.role"),
        ({"messages": [{"role": "user"}]}, "messages.0.content"),
        ({"messages": [{"role": "user", "content": [{"text": "x"}]}]}, "messages.0.content.0.type"),
        (
            {"messages": [{"role": "user", "content": [{"type": "text", "text": 1}]}]},
            "messages.0.content.0.text",
        ),
        (
            {
                "messages": [
                    {
                        "role": "assistant",
                        "content": [{"type": "tool_use", "id": "a", "name": "b", "input": "x"}],
                    }
                ]
            },
            "messages.0.content.0.input",
        ),
        (
            {
                "messages": [
                    {"role": "assistant", "content": [{"type": "thinking", "thinking": "t"}]}
                ]
            },
            "messages.0.content.0.signature",
        ),
        ({"temperature": "hot"}, "temperature"),
        ({"top_k": 1.5}, "top_k"),
        ({"stream": "yes"}, "stream"),
        ({"stop_sequences": ["a", 1]}, "stop_sequences"),
        ({"system": [{"type": "image"}]}, "system.0"),
        ({"tools": [{"name": "x"}]}, "tools.0.input_schema"),
        ({"tool_choice": {"type": "tool"}}, "tool_choice.name"),
        ({"tool_choice": {"type": "sometimes"}}, "tool_choice.type"),
        ({"thinking": {"type": "enabled"}}, "thinking.budget_tokens"),
        ({"thinking": {"type": "enabled", "budget_tokens": 100}}, "thinking.budget_tokens"),
        ({"metadata": "x"}, "metadata"),
    ],
)
def test_parse_request_rejects_bad_fields(patch: dict[str, Any], field: str) -> None:
    body: dict[str, Any] = {
        "model": "m",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}],
    }
    body.update(patch)
    if body["model"] is None:
        del body["model"]
    with pytest.raises(BadRequest) as exc:
        CODEC.parse_request(body)
    assert [d.field for d in exc.value.details] == [field]


def test_unrepresentable_blocks_are_listed_not_rejected() -> None:
    body = {
        "model": "m",
        "max_tokens": 10,
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "document",
                        "source": {"type": "text", "media_type": "text/plain", "data": "x"},
                    },
                    {"type": "text", "text": "summarise"},
                ],
            }
        ],
    }
    req = CODEC.parse_request(body)
    assert req.messages[0].text() == "summarise" and len(req.messages[0].content) == 1
    assert req.dropped == ["messages.0.content.0 (document)"]


def foreign_request(**over: Any) -> ir.Request:
    """A request as another format (OpenAI chat) would have parsed it."""
    req = ir.Request(
        model="claude-sonnet-4-5",
        source_format="openai-chat",
        system=[ir.TextBlock("sys one")],
        messages=[
            ir.Message("system", [ir.TextBlock("sys two")]),
            ir.Message("user", [ir.TextBlock("weather in Paris and Rome?")]),
            ir.Message(
                "assistant",
                [
                    ir.ThinkingBlock(thinking="openai reasoning", origin="openai-chat"),
                    ir.ToolUseBlock(id="call_abc.123:x", name="weather", input={"city": "Paris"}),
                    ir.ToolUseBlock(id="call_def", name="weather", input={"city": "Rome"}),
                ],
            ),
            ir.Message(
                "tool",
                [ir.ToolResultBlock(tool_use_id="call_abc.123:x", content=[ir.TextBlock("sunny")])],
            ),
            ir.Message(
                "tool", [ir.ToolResultBlock(tool_use_id="call_def", content=[ir.TextBlock("rain")])]
            ),
            ir.Message("user", [ir.TextBlock("and tomorrow?")]),
        ],
        tools=[
            ir.Tool(
                "weather",
                "Get weather",
                {"properties": {"city": {"type": "string"}}},
                {"strict": True},
            )
        ],
    )
    for key, value in over.items():
        setattr(req, key, value)
    return req


def test_case1_tool_ids_sanitized_stably() -> None:
    first = CODEC.render_request(foreign_request())
    second = CODEC.render_request(foreign_request())
    assert first == second
    assistant, results = first["messages"][1], first["messages"][2]
    uses = [b["id"] for b in assistant["content"] if b["type"] == "tool_use"]
    answers = [b["tool_use_id"] for b in results["content"] if b["type"] == "tool_result"]
    assert uses == answers
    assert all(SAFE_ID.match(i) for i in uses)
    assert uses[1] == "call_def"  # already valid ids stay as they are
    assert uses[0] != "call_abc.123:x" and uses[0] == ir.safe_tool_id("call_abc.123:x")
    # The same mapping in responses and streams, so the client sends back what we expect.
    resp = ir.Response(content=[ir.ToolUseBlock(id="call_abc.123:x", name="weather")])
    assert CODEC.render_response(resp, foreign_request())["content"][0]["id"] == uses[0]
    streamed = sse_payloads(render_all(ir.response_events(resp)))
    starts = [p["content_block"] for e, p in streamed if e == "content_block_start"]
    assert starts[0]["id"] == uses[0]


def test_foreign_request_merges_roles_and_lists_dropped_fields() -> None:
    req = foreign_request(
        seed=7, response_format={"type": "json_object"}, extra={"n": 1, "logprobs": True}
    )
    body = CODEC.render_request(req)
    assert body["system"] == [
        {"type": "text", "text": "sys one"},
        {"type": "text", "text": "sys two"},
    ]
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    results = body["messages"][2]["content"]
    assert [b["type"] for b in results] == ["tool_result", "tool_result", "text"]
    assert body["tools"] == [
        {
            "name": "weather",
            "description": "Get weather",
            "input_schema": {"properties": {"city": {"type": "string"}}, "type": "object"},
        }
    ]
    assert body["max_tokens"] == ir.claude_output_limits("claude-sonnet-4-5")[0]
    assert set(req.dropped) == {"n", "logprobs", "seed", "response_format", "tools.weather.strict"}


def test_case4_thinking_signature_round_trip_and_foreign_thinking_dropped() -> None:
    resp = CODEC.parse_response(message_body())
    thinking = resp.content[0]
    assert (
        isinstance(thinking, ir.ThinkingBlock)
        and thinking.signature == "sig=="
        and thinking.origin == "anthropic"
    )
    # The assistant turn goes back to Anthropic with its signature and redacted data intact...
    req = foreign_request()
    req.messages.insert(2, ir.Message("assistant", resp.content))
    req.messages.insert(3, ir.Message("user", [ir.TextBlock("go on")]))
    body = CODEC.render_request(req)
    sent = body["messages"][1]["content"]
    assert sent[0] == {"type": "thinking", "thinking": "Let me think.", "signature": "sig=="}
    assert sent[1] == {"type": "redacted_thinking", "data": "opaque"}
    # ...while the OpenAI-produced reasoning never reaches Anthropic.
    everything = json.dumps(body)
    assert "openai reasoning" not in everything
    # An Anthropic thinking block that lost its signature would be rejected: dropped too.
    unsigned = ir.Request(
        model="claude-sonnet-4-5",
        messages=[
            ir.Message(
                "assistant", [ir.ThinkingBlock("half", origin="anthropic"), ir.TextBlock("ok")]
            )
        ],
    )
    assert CODEC.render_request(unsigned)["messages"] == [{"role": "assistant", "content": "ok"}]
    # Streams: the signature delta survives parse -> render and reaches the SDK.
    events = parse_all(stream_for(message_body()))
    again = parse_all(render_all(events))
    assert accumulate(again).content[0] == thinking


def test_case10_max_tokens_default_tool_choice_mapping() -> None:
    assert ir.claude_output_limits("claude-opus-4-20250514") == (32000, 32000)
    assert ir.claude_output_limits("claude-opus-4-1-20250805") == (32000, 32000)
    assert ir.claude_output_limits("claude-opus-4-5") == (32000, 64000)
    assert ir.claude_output_limits("anthropic/claude-sonnet-4.5") == (32000, 64000)
    assert ir.claude_output_limits("claude-3-7-sonnet-latest") == (32000, 64000)
    assert ir.claude_output_limits("claude-3-5-sonnet-20241022") == (8192, 8192)
    assert ir.claude_output_limits("claude-3-haiku-20240307") == (4096, 4096)
    assert ir.claude_output_limits("some-model") == (4096, None)

    cases = [
        (ir.ToolChoice("required"), None, {"type": "any"}),
        (ir.ToolChoice("tool", "weather"), None, {"type": "tool", "name": "weather"}),
        (ir.ToolChoice("none"), None, {"type": "none"}),
        (ir.ToolChoice("auto"), False, {"type": "auto", "disable_parallel_tool_use": True}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        (ir.ToolChoice("required"), False, {"type": "any", "disable_parallel_tool_use": True}),
    ]
    for choice, parallel, expected in cases:
        body = CODEC.render_request(
            foreign_request(tool_choice=choice, parallel_tool_calls=parallel)
        )
        assert body["tool_choice"] == expected
    # tool_choice without tools is rejected by Anthropic: omitted.
    bare = foreign_request(tools=[], tool_choice=ir.ToolChoice("required"))
    assert "tool_choice" not in CODEC.render_request(bare)
    explicit = CODEC.render_request(foreign_request(max_tokens=123, stop=["a", "b", "c", "d", "e"]))
    assert explicit["max_tokens"] == 123 and explicit["stop_sequences"] == ["a", "b", "c", "d", "e"]


@pytest.mark.parametrize(
    ("effort", "max_tokens", "budget", "expected_max"),
    [
        ("low", None, 2048, 32000),
        ("medium", 1000, 8192, 9192),  # the asked-for answer room comes on top of the thinking
        ("high", 50000, 16384, 50000),
        ("xhigh", None, 32000, 64000),
    ],
)
def test_reasoning_effort_becomes_thinking_budget(
    effort: ir.Effort, max_tokens: int | None, budget: int, expected_max: int
) -> None:
    req = ir.Request(
        model="claude-sonnet-4-5",
        messages=[ir.Message("user", [ir.TextBlock("hi")])],
        reasoning_effort=effort,
        max_tokens=max_tokens,
        temperature=0.5,
        source_format="openai-chat",
    )
    body = CODEC.render_request(req)
    assert body["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert body["max_tokens"] == expected_max and body["max_tokens"] > budget
    assert "temperature" not in body and req.dropped == ["temperature"]


def test_thinking_respects_model_output_cap_and_api_rules() -> None:
    capped = ir.Request(
        model="claude-opus-4-1", reasoning_effort="xhigh", source_format="openai-chat"
    )
    body = CODEC.render_request(capped)
    assert body["max_tokens"] == 32000 and body["thinking"]["budget_tokens"] < 32000
    none = CODEC.render_request(ir.Request(model="claude-opus-4-1", reasoning_effort="none"))
    assert "thinking" not in none
    # Forced tool use and an unsigned tool loop both make Anthropic reject thinking.
    forced = foreign_request(reasoning_effort="high", tool_choice=ir.ToolChoice("required"))
    assert "thinking" not in CODEC.render_request(forced) and "reasoning_effort" in forced.dropped
    loop = foreign_request(reasoning_effort="high")
    loop.messages.pop()  # ends on the tool results of an assistant turn without thinking
    assert "thinking" not in CODEC.render_request(loop) and "reasoning_effort" in loop.dropped


def test_foreign_user_becomes_metadata_and_data_url_image_becomes_base64() -> None:
    req = ir.Request(
        model="m",
        user="u-1",
        metadata={"store": "x"},
        messages=[
            ir.Message("user", [ir.ImageBlock(url="data:image/jpeg;base64,AAAA"), ir.TextBlock("")])
        ],
        source_format="openai-chat",
    )
    body = CODEC.render_request(req)
    assert body["metadata"] == {"user_id": "u-1"} and req.dropped == ["metadata"]
    assert body["messages"][0]["content"] == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "AAAA"}}
    ]


# --------------------------------------------------------------------------- system entries in messages

CLAUDE_CODE_BODY: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 1024,
    "system": "You are Claude Code.",
    "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "Hello."},
        {"role": "system", "content": "<system-reminder>The todo list is empty.</system-reminder>"},
        {"role": "user", "content": "list the files"},
    ],
}
REMINDER = "<system-reminder>The todo list is empty.</system-reminder>"


def test_claude_code_system_role_in_messages_is_not_a_400() -> None:
    """Claude Code 2.1.x: `400 messages.2.role: expected 'user' or 'assistant'` before."""
    req = CODEC.parse_request(copy.deepcopy(CLAUDE_CODE_BODY))
    assert [m.role for m in req.messages] == ["user", "assistant", "system", "user"]
    assert req.messages[2].text() == REMINDER
    assert req.system_text() == "You are Claude Code."
    assert req.dropped == []
    # Rendered back to Anthropic, the entry stays where the client put it.
    assert CODEC.render_request(req)["messages"] == CLAUDE_CODE_BODY["messages"]


def test_claude_code_system_entry_renders_in_place_for_openai_formats() -> None:
    chat = get_codec("openai-chat").render_request(
        CODEC.parse_request(copy.deepcopy(CLAUDE_CODE_BODY))
    )
    assert [(m["role"], m["content"]) for m in chat["messages"]] == [
        ("system", "You are Claude Code."),
        ("user", "hi"),
        ("assistant", "Hello."),
        ("system", REMINDER),
        ("user", "list the files"),
    ]
    responses = get_codec("responses").render_request(
        CODEC.parse_request(copy.deepcopy(CLAUDE_CODE_BODY))
    )
    assert responses["instructions"] == "You are Claude Code."
    assert [(i["role"], i["content"]) for i in responses["input"]] == [
        ("user", "hi"),
        ("assistant", "Hello."),
        ("system", REMINDER),
        ("user", "list the files"),
    ]


def test_claude_code_system_entry_folds_into_gemini_system_instruction() -> None:
    body = get_codec("gemini").render_request(CODEC.parse_request(copy.deepcopy(CLAUDE_CODE_BODY)))
    assert body["systemInstruction"] == {
        "parts": [{"text": "You are Claude Code."}, {"text": REMINDER}]
    }
    assert REMINDER not in json.dumps(body["contents"])
    assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]


def test_system_entry_with_a_non_text_block_names_the_field() -> None:
    body = copy.deepcopy(CLAUDE_CODE_BODY)
    body["messages"][2]["content"] = [{"type": "image", "source": {"type": "url", "url": "x"}}]
    with pytest.raises(BadRequest) as exc:
        CODEC.parse_request(body)
    assert exc.value.details[0].field == "messages.2.content.0"
