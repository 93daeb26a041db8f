"""The gemini codec: responses (parse, render, usage, stop reasons)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from router import ir
from router.formats.gemini.codec import CODEC
from tests.router.formats.gemini.samples import (
    full_response,
)


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
        {"text": "hmm", "thought": True},  # shown, without Anthropic's signature
        {"text": "Calling."},
        {"functionCall": {"name": "ls", "args": {"path": "/"}, "id": "toolu_9"}},
        {"functionCall": {"name": "ls", "args": {"path": "/tmp"}}},
    ]
    assert body["usageMetadata"] == {
        "promptTokenCount": 10,
        "candidatesTokenCount": 5,
        "totalTokenCount": 15,
    }


def test_gemini_response_keeps_the_reasoning_of_a_non_gemini_upstream() -> None:
    """Before: a Gemini client got no thought parts when the upstream was Anthropic or OpenAI
    (the part writer dropped thinking of another origin, right for history sent to Gemini,
    wrong for a response shown to a client)."""
    resp = ir.Response(
        model="claude-sonnet-4-5",
        content=[
            ir.ThinkingBlock("Let me think.", signature="sig-anthropic", origin="anthropic"),
            ir.ThinkingBlock(signature="only-a-signature", origin="anthropic"),
            ir.ThinkingBlock(redacted=True, data="opaque", origin="anthropic"),
            ir.TextBlock("4"),
        ],
        stop_reason="end_turn",
    )
    parts = CODEC.render_response(resp, ir.Request(model="m"))["candidates"][0]["content"]["parts"]
    # Shown as a thought, without another provider's signature (it means nothing to Gemini).
    assert parts == [{"text": "Let me think.", "thought": True}, {"text": "4"}]
