"""Chat Completions responses: parse an upstream completion, render one for a client; usage
and stop reasons."""

from __future__ import annotations

import time
from typing import Any

from router import ir
from router.formats.common import as_int, new_id, obj
from router.formats.openai_chat import NAME

_FINISH_TO_STOP: dict[str, ir.StopReason] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "content_filter",
}


# --------------------------------------------------------------------------- usage and stop reasons


def parse_usage(raw: dict[str, Any]) -> ir.Usage:
    prompt = raw.get("prompt_tokens_details") or {}
    completion = raw.get("completion_tokens_details") or {}
    return ir.Usage(
        input_tokens=as_int(raw.get("prompt_tokens")),
        output_tokens=as_int(raw.get("completion_tokens")),
        cache_read_tokens=as_int(prompt.get("cached_tokens")) if isinstance(prompt, dict) else 0,
        cache_write_tokens=as_int(prompt.get("cache_write_tokens"))
        if isinstance(prompt, dict)
        else 0,
        reasoning_tokens=as_int(completion.get("reasoning_tokens"))
        if isinstance(completion, dict)
        else 0,
    )


def render_usage(usage: ir.Usage) -> dict[str, Any]:
    prompt_details: dict[str, Any] = {"cached_tokens": usage.cache_read_tokens}
    if usage.cache_write_tokens:
        prompt_details["cache_write_tokens"] = usage.cache_write_tokens
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": prompt_details,
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


def parse_stop_reason(finish: str) -> ir.StopReason:
    return _FINISH_TO_STOP.get(finish, "end_turn")


def render_stop_reason(stop: ir.StopReason | None, has_tool_calls: bool) -> str:
    if stop == "max_tokens":
        return "length"
    if stop == "tool_use":
        return "tool_calls"
    if stop == "content_filter":
        return "content_filter"
    # Some upstreams (Gemini) end a tool-calling turn with a plain "stop"; OpenAI clients
    # decide whether to run tools from finish_reason.
    if has_tool_calls and stop in (None, "end_turn"):
        return "tool_calls"
    return "stop"


def error_body(message: str, error_type: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "code": None, "param": None}}


# --------------------------------------------------------------------------- responses


def parse_response(body: dict[str, Any]) -> ir.Response:
    created = body.get("created")
    resp = ir.Response(
        id=str(body.get("id") or ""),
        model=str(body.get("model") or ""),
        created=created if isinstance(created, int) else None,
    )
    choices = body.get("choices") or []
    choice = obj(choices[0]) if choices else {}
    message = obj(choice.get("message"))
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        resp.content.append(ir.ThinkingBlock(reasoning, origin=NAME))
    for key in ("content", "refusal"):
        text = message.get(key)
        if isinstance(text, str) and text:
            resp.content.append(ir.TextBlock(text))
    for call in message.get("tool_calls") or []:
        if not isinstance(call, dict):
            continue
        function = obj(call.get("function"))
        block = ir.ToolUseBlock(id=str(call.get("id") or ""), name=str(function.get("name") or ""))
        arguments = function.get("arguments")
        ir.set_tool_arguments(block, arguments if isinstance(arguments, str) else "")
        resp.content.append(block)
    reason = choice.get("finish_reason")
    if isinstance(reason, str):
        resp.stop_reason = parse_stop_reason(reason)
    usage = body.get("usage")
    if isinstance(usage, dict):
        resp.usage = parse_usage(usage)
    return resp


def render_response(resp: ir.Response, req: ir.Request) -> dict[str, Any]:
    texts = [b.text for b in resp.content if isinstance(b, ir.TextBlock)]
    reasoning = [
        b.thinking
        for b in resp.content
        if isinstance(b, ir.ThinkingBlock) and not b.redacted and b.thinking
    ]
    calls = [
        {
            "id": b.id,
            "type": "function",
            "function": {"name": b.name, "arguments": b.arguments_json()},
        }
        for b in resp.tool_calls()
    ]
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts else None,
        "refusal": None,
    }
    if reasoning:  # the DeepSeek-style extension most OpenAI clients understand
        message["reasoning_content"] = "\n\n".join(reasoning)
    if calls:
        message["tool_calls"] = calls
    out: dict[str, Any] = {
        "id": resp.id or new_id("chatcmpl-"),
        "object": "chat.completion",
        "created": resp.created or int(time.time()),
        "model": resp.model or req.model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": render_stop_reason(resp.stop_reason, bool(calls)),
            }
        ],
    }
    if resp.usage is not None:
        out["usage"] = render_usage(resp.usage)
    return out


def mark_unfinished(rendered: dict[str, Any]) -> None:
    """A reply rendered from a stream that never ended: no choice claims a finish reason."""
    for choice in rendered.get("choices") or []:
        choice["finish_reason"] = None
