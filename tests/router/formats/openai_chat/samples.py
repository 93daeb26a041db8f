"""Shared openai_chat wire samples and helpers for the codec tests."""

from __future__ import annotations

from typing import Any

from router import ir

PNG = "iVBORw0KGgo="


def full_body() -> dict[str, Any]:
    return {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "content": "calling",
                "reasoning_content": "let me think",
                "tool_calls": [
                    {
                        "id": "call_a",
                        "type": "function",
                        "function": {"name": "read", "arguments": '{"path":"a.py"}'},
                    },
                    {
                        "id": "call_b",
                        "type": "function",
                        "function": {"name": "read", "arguments": "{not json"},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "call_a", "content": "print(1)"},
            {"role": "tool", "tool_call_id": "call_b", "content": "oops"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "look"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                    {"type": "image_url", "image_url": {"url": "https://x.test/a.jpg"}},
                ],
            },
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "read",
                    "description": "read a file",
                    "parameters": {"type": "object", "properties": {"path": {"type": "string"}}},
                    "strict": True,
                },
            }
        ],
        "tool_choice": {"type": "function", "function": {"name": "read"}},
        "parallel_tool_calls": False,
        "max_tokens": 100,
        "temperature": 0.5,
        "top_p": 0.9,
        "stop": ["END"],
        "seed": 7,
        "reasoning_effort": "low",
        "response_format": {"type": "json_object"},
        "stream": True,
        "stream_options": {"include_usage": True, "include_obfuscation": False},
        "user": "u1",
        "metadata": {"k": "v"},
        "frequency_penalty": 0.1,
        "logit_bias": {"50256": -100},
    }


def sample_response() -> ir.Response:
    return ir.Response(
        id="msg_1",
        model="claude-x",
        created=1700000002,
        content=[
            ir.ThinkingBlock("deep", signature="sig", origin="anthropic"),
            ir.TextBlock("I'll look."),
            ir.ToolUseBlock(id="toolu_a", name="read", input={"p": 1}),
            ir.ToolUseBlock(id="toolu_b", name="grep", input={"q": "x"}),
        ],
        stop_reason="tool_use",
        usage=ir.Usage(input_tokens=30, output_tokens=12, cache_read_tokens=10, reasoning_tokens=3),
    )
