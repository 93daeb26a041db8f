"""SSE merge for all five formats through the real codecs, conversation turns, llm summary."""

from __future__ import annotations

import json
from typing import Any

import pytest

from router import ir
from router.traffic.detect import context_key
from router.traffic.merge import (
    llm_summary,
    merge_stream,
    model_from_path,
    parse_response,
)
from tests.router.traffic.samples import (
    ANTHROPIC_STREAM,
    CLOUDCODE_STREAM,
    GEMINI_STREAM,
    OPENAI_STREAM,
    RESPONSES_STREAM,
)

# --------------------------------------------------------------------------- merge


def test_merge_openai_chat() -> None:
    resp = merge_stream("openai-chat", OPENAI_STREAM)
    assert resp is not None
    assert resp.model == "gpt-4o-mini-2024-07-18"
    assert resp.text() == "Let me check."
    [call] = resp.tool_calls()
    assert (call.id, call.name, call.input) == ("call_abc", "get_weather", {"city": "Paris"})
    assert resp.stop_reason == "tool_use"
    assert resp.usage is not None
    assert (resp.usage.input_tokens, resp.usage.output_tokens, resp.usage.cache_read_tokens) == (
        42,
        17,
        8,
    )


def test_merge_anthropic_with_thinking_and_joined_tool_input() -> None:
    resp = merge_stream("anthropic", ANTHROPIC_STREAM)
    assert resp is not None
    assert resp.id == "msg_01XYZ"
    thinking, text, tool = resp.content
    assert isinstance(thinking, ir.ThinkingBlock)
    assert thinking.thinking == "The user wants the weather."
    assert thinking.signature == "EqQBCgIYAhIM"
    assert isinstance(text, ir.TextBlock) and text.text == "Checking now."
    assert isinstance(tool, ir.ToolUseBlock)
    assert (tool.id, tool.name, tool.input) == (
        "toolu_01A",
        "get_weather",
        {"city": "Paris", "days": 3},
    )
    assert resp.stop_reason == "tool_use"
    assert resp.usage is not None
    # OpenAI semantics: the prompt includes cache reads and writes.
    assert resp.usage.input_tokens == 25 + 10 + 100
    assert (resp.usage.cache_read_tokens, resp.usage.cache_write_tokens) == (100, 10)
    assert resp.usage.output_tokens == 64


def test_merge_responses() -> None:
    resp = merge_stream("responses", RESPONSES_STREAM)
    assert resp is not None
    assert resp.model == "gpt-5-codex"
    assert resp.text() == "Reading the file."
    [call] = resp.tool_calls()
    assert (call.id, call.name, call.input) == ("call_r1", "shell", {"cmd": ["cat", "a.py"]})
    assert resp.usage is not None
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (300, 40)
    assert (resp.usage.cache_read_tokens, resp.usage.reasoning_tokens) == (200, 12)


@pytest.mark.parametrize(
    ("kind", "raw"), [("gemini", GEMINI_STREAM), ("cloudcode", CLOUDCODE_STREAM)]
)
def test_merge_gemini_and_cloudcode(kind: str, raw: bytes) -> None:
    resp = merge_stream(kind, raw)
    assert resp is not None
    assert resp.model == "gemini-2.5-pro"
    assert resp.text() == "Weather lookup."
    [call] = resp.tool_calls()
    assert (call.name, call.input) == ("get_weather", {"city": "Paris"})
    assert resp.usage is not None
    assert resp.usage.input_tokens == 31
    assert resp.usage.output_tokens == 9 + 5  # reasoning included, as in ir.Usage
    assert resp.usage.cache_read_tokens == 11


def test_merge_of_a_cut_stream_keeps_what_arrived() -> None:
    whole = merge_stream("anthropic", ANTHROPIC_STREAM)
    # The recorder hands the whole body at once; a stream cut mid-way still merges what came.
    cut = merge_stream("anthropic", ANTHROPIC_STREAM[: len(ANTHROPIC_STREAM) // 2])
    assert whole is not None and cut is not None
    assert isinstance(cut.content[0], ir.ThinkingBlock)
    assert len(cut.content) < len(whole.content) or cut.stop_reason is None


def _finish_reason(kind: str, rendered: dict[str, Any]) -> Any:
    match kind:
        case "openai-chat":
            return rendered["choices"][0]["finish_reason"]
        case "anthropic":
            return rendered["stop_reason"]
        case "responses":
            return rendered["status"]
        case "cloudcode":
            return rendered["response"]["candidates"][0].get("finishReason")
        case _:
            return rendered["candidates"][0].get("finishReason")


CUT_CASES = [
    ("openai-chat", OPENAI_STREAM, "stop"),
    ("anthropic", ANTHROPIC_STREAM, "end_turn"),
    ("responses", RESPONSES_STREAM, "completed"),
    ("gemini", GEMINI_STREAM, "STOP"),
    ("cloudcode", CLOUDCODE_STREAM, "STOP"),
]


@pytest.mark.parametrize(("kind", "raw", "finish"), CUT_CASES, ids=[c[0] for c in CUT_CASES])
def test_a_cut_stream_is_incomplete_with_no_invented_finish_reason(
    kind: str, raw: bytes, finish: str
) -> None:
    """A stream cut mid-way was shown as a normal reply with ``stop_reason: end_turn``."""
    whole = merge_stream(kind, raw)
    assert whole is not None and not whole.incomplete
    whole_info = llm_summary(kind, {}, whole, streamed=True)
    assert whole_info.response is not None and not whole_info.incomplete
    assert _finish_reason(kind, whole_info.response) in (finish, "tool_calls", "tool_use")

    cut = merge_stream(kind, raw[: len(raw) // 2])
    assert cut is not None and cut.incomplete and cut.stop_reason is None
    info = llm_summary(kind, {}, cut, streamed=True)
    assert info.incomplete and info.response is not None
    assert _finish_reason(kind, info.response) in (None, "incomplete")


def test_merge_without_a_codec_or_content() -> None:
    assert merge_stream(None, OPENAI_STREAM) is None
    assert merge_stream("zed", OPENAI_STREAM) is None
    assert merge_stream("openai-chat", b"") is None
    assert merge_stream("openai-chat", b"<html>not a stream</html>") is None


# --------------------------------------------------------------------------- conversation

ANTHROPIC_REQUEST = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 1024,
    "system": [{"type": "text", "text": "You are Claude Code."}],
    "messages": [
        {"role": "user", "content": "What is the weather in Paris?"},
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "toolu_0",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                }
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_0", "content": "sunny"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
                },
            ],
        },
    ],
    "stream": True,
}


def test_conversation_turns_from_the_codec() -> None:
    merged = merge_stream("anthropic", ANTHROPIC_STREAM)
    convo = llm_summary("anthropic", ANTHROPIC_REQUEST, merged).conversation
    assert convo is not None
    assert convo["contextKey"] == context_key("anthropic", ANTHROPIC_REQUEST)
    roles = [t["role"] for t in convo["request"]]
    assert roles == ["system", "user", "assistant", "user"]
    assert convo["request"][0]["blocks"] == [{"type": "text", "text": "You are Claude Code."}]
    assert convo["request"][2]["blocks"][0] == {
        "type": "tool_use",
        "id": "toolu_0",
        "name": "get_weather",
        "input": {"city": "Paris"},
    }
    result, image = convo["request"][3]["blocks"]
    assert result["type"] == "tool_result" and result["toolUseId"] == "toolu_0"
    assert result["content"] == [{"type": "text", "text": "sunny"}]
    assert image["type"] == "image" and image["mediaType"] == "image/png"
    assert "data" not in image  # the conversation never carries base64 payloads
    [answer] = convo["response"]
    assert answer["role"] == "assistant"
    assert [b["type"] for b in answer["blocks"]] == ["thinking", "text", "tool_use"]
    assert answer["blocks"][2]["input"] == {"city": "Paris", "days": 3}


def test_conversation_of_an_unparseable_body_is_empty() -> None:
    convo = llm_summary("anthropic", {"messages": "nope"}, None).conversation
    assert convo == {"request": [], "response": [], "contextKey": None}
    none = llm_summary(None, ANTHROPIC_REQUEST, None).conversation
    assert none is not None and none["request"] == []


# --------------------------------------------------------------------------- llm summary


def test_llm_summary_streamed_with_cost_and_masking() -> None:
    secret = "sk-ant-api03-" + "Q" * 40
    request = {
        **ANTHROPIC_REQUEST,
        "messages": [{"role": "user", "content": f"my key is {secret}"}],
    }
    # The secret arrives split across two deltas, so only the merged text holds it whole.
    half = len(secret) // 2
    stream = ANTHROPIC_STREAM.replace(
        b'"Checking "', json.dumps(f"key {secret[:half]}").encode()
    ).replace(b'"now."', json.dumps(secret[half:]).encode())
    priced: list[tuple[str, ir.Usage]] = []

    def cost_fn(model: str, usage: ir.Usage) -> float:
        priced.append((model, usage))
        return usage.input_tokens * 1e-6 + usage.output_tokens * 5e-6

    merged = merge_stream("anthropic", stream)
    info = llm_summary(
        "anthropic", request, merged, provider="anthropic", streamed=True, cost_fn=cost_fn
    )
    assert info.model == "claude-sonnet-4-5-20250929"
    assert info.streamed and info.provider == "anthropic" and info.format == "anthropic"
    assert (info.tokens_in, info.tokens_out, info.cache_read_tokens, info.cache_write_tokens) == (
        135,
        64,
        100,
        10,
    )
    assert info.cost_usd == pytest.approx(135e-6 + 64 * 5e-6)
    assert priced[0][0] == "claude-sonnet-4-5-20250929"
    assert not info.usage_estimated
    assert info.response is not None and info.response["type"] == "message"
    assert info.response["content"][2]["input"] == {"city": "Paris", "days": 3}
    wire = info.model_dump_json(by_alias=True)
    assert secret not in wire and secret[6:-2] not in wire
    assert '"tokensIn":135' in wire and '"apiKind":"anthropic"' in wire


def test_llm_summary_non_streamed_gemini_model_from_path_and_estimate() -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "Hello there, how are you?"}]}]}
    response = parse_response(
        "gemini",
        {
            "candidates": [
                {"content": {"role": "model", "parts": [{"text": "Fine."}]}, "finishReason": "STOP"}
            ]
        },
    )
    assert response is not None
    path = "/v1beta/models/gemini-2.5-flash:generateContent?key=xyz"
    assert model_from_path(path) == "gemini-2.5-flash"
    info = llm_summary("gemini", body, response, provider="gemini", path=path)
    assert info.model == "gemini-2.5-flash"
    assert info.usage_estimated and info.tokens_in > 0 and info.tokens_out > 0
    assert info.cost_usd is None  # no pricing function given
    assert info.conversation is not None
    assert [t["role"] for t in info.conversation["request"]] == ["user"]


def test_llm_summary_without_a_response() -> None:
    info = llm_summary(
        "openai-chat", {"model": "gpt-4o", "messages": []}, None, cost_fn=lambda m, u: 1.0
    )
    assert info.model == "gpt-4o"
    assert (info.tokens_in, info.tokens_out, info.cost_usd, info.response) == (0, 0, None, None)
