"""Shared responses wire samples and helpers for the codec tests."""

from __future__ import annotations

from typing import Any

from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter

from router import ir
from tests.router.formats.shared import claude_turn

PNG = "iVBORw0KGgo="
EVENTS: TypeAdapter[ResponseStreamEvent] = TypeAdapter(ResponseStreamEvent)
# The events of a stream with a message and function calls, each of which the SDK needs to
# build its final response.
TEXT_AND_CALL_EVENTS = (
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.function_call_arguments.delta",
    "response.function_call_arguments.done",
    "response.output_item.done",
)


def check_event_types(kinds: list[str], *also: str) -> None:
    """``kinds`` (a stream's event types in order) open and close a response the way the API
    does and carry every one of TEXT_AND_CALL_EVENTS and ``also``."""
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert [k for k in (*TEXT_AND_CALL_EVENTS, *also) if k not in kinds] == [], kinds


def usage(input_tokens: int, output_tokens: int, cached: int, reasoning: int) -> dict[str, Any]:
    """A Responses API ``usage`` object."""
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": input_tokens + output_tokens,
    }


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
        "usage": usage(50, 30, cached=20, reasoning=10),
    }


def anthropic_response() -> ir.Response:
    return claude_turn(ir.ToolUseBlock(id="toolu_b", name="grep", raw_arguments="{raw"))
