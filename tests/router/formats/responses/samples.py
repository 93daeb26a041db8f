"""Shared responses wire samples and helpers for the codec tests."""

from __future__ import annotations

from typing import Any

from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter

from router import ir

PNG = "iVBORw0KGgo="
EVENTS: TypeAdapter[ResponseStreamEvent] = TypeAdapter(ResponseStreamEvent)


def full_body() -> dict[str, Any]:
    return {
        "model": "gpt-5",
        "instructions": "be brief",
        "input": [
            {
                "type": "message",
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "look"},
                    {
                        "type": "input_image",
                        "image_url": f"data:image/png;base64,{PNG}",
                        "detail": "auto",
                    },
                ],
            },
            {
                "type": "reasoning",
                "id": "rs_1",
                "summary": [{"type": "summary_text", "text": "plan"}],
                "encrypted_content": "enc",
            },
            {"type": "message", "role": "assistant", "content": "on it"},
            {
                "type": "function_call",
                "call_id": "call_1",
                "name": "read",
                "arguments": '{"p":"a"}',
            },
            {"type": "function_call", "call_id": "call_2", "name": "read", "arguments": "{bad"},
            {"type": "function_call_output", "call_id": "call_1", "output": "A"},
            {"type": "function_call_output", "call_id": "call_2", "output": "B"},
        ],
        "tools": [
            {
                "type": "function",
                "name": "read",
                "description": "read a file",
                "parameters": {"type": "object", "properties": {"p": {"type": "string"}}},
                "strict": False,
            },
            {"type": "web_search"},
        ],
        "tool_choice": {"type": "function", "name": "read"},
        "parallel_tool_calls": True,
        "max_output_tokens": 500,
        "reasoning": {"effort": "medium", "summary": "auto"},
        "text": {
            "format": {
                "type": "json_schema",
                "name": "out",
                "schema": {"type": "object"},
                "strict": True,
            },
            "verbosity": "low",
        },
        "stream": True,
        "user": "u1",
        "metadata": {"k": "v"},
        "store": False,
        "previous_response_id": "resp_prev",
        "include": ["reasoning.encrypted_content"],
    }


def response_body(status: str = "completed") -> dict[str, Any]:
    return {
        "id": "resp_1",
        "object": "response",
        "created_at": 1700000000,
        "status": status,
        "model": "gpt-5",
        "output": [
            {
                "id": "rs_1",
                "type": "reasoning",
                "summary": [
                    {"type": "summary_text", "text": "a"},
                    {"type": "summary_text", "text": "b"},
                ],
                "encrypted_content": "enc",
            },
            {
                "id": "msg_1",
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "héllo", "annotations": []}],
            },
            {
                "id": "fc_1",
                "type": "function_call",
                "status": "completed",
                "call_id": "call_1",
                "name": "ls",
                "arguments": '{"d":"."}',
            },
        ],
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "usage": {
            "input_tokens": 50,
            "input_tokens_details": {"cached_tokens": 20},
            "output_tokens": 30,
            "output_tokens_details": {"reasoning_tokens": 10},
            "total_tokens": 80,
        },
    }


def anthropic_response() -> ir.Response:
    return ir.Response(
        id="msg_1",
        model="claude-x",
        created=1700000002,
        content=[
            ir.ThinkingBlock("deep", signature="sig", origin="anthropic"),
            ir.TextBlock("I'll look."),
            ir.ToolUseBlock(id="toolu_a", name="read", input={"p": 1}),
            ir.ToolUseBlock(id="toolu_b", name="grep", raw_arguments="{raw"),
        ],
        stop_reason="tool_use",
        usage=ir.Usage(input_tokens=30, output_tokens=12, cache_read_tokens=10, reasoning_tokens=3),
    )
