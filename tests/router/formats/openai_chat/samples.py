"""Shared openai_chat wire samples and helpers for the codec tests."""

from __future__ import annotations

from typing import Any

from router import ir
from tests.router.formats.shared import claude_turn

PNG = "iVBORw0KGgo="


def usage(prompt: int, completion: int, cached: int, reasoning: int) -> dict[str, Any]:
    """A Chat Completions ``usage`` object."""
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
        "completion_tokens_details": {"reasoning_tokens": reasoning},
    }


def tool_call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    """One entry of an assistant message's ``tool_calls``."""
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


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
                    tool_call("call_a", "read", '{"path":"a.py"}'),
                    tool_call("call_b", "read", "{not json"),
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
    return claude_turn(ir.ToolUseBlock(id="toolu_b", name="grep", input={"q": "x"}))
