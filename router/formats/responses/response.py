"""Responses response objects: parse an upstream response, render one for a client; output
items, usage and stop reasons."""

from __future__ import annotations

import time
from typing import Any

from router import ir
from router.formats.common import as_int, new_id, obj, render_tool_choice
from router.formats.responses import NAME
from router.formats.responses.request import (
    CUSTOM_CALL,
    format_from_ir,
    render_tools,
    thinking_from_item,
    tool_use_from_item,
)
from router.formats.tools import client_call, free_form_input

_ERROR_CODES = {
    "rate_limit_error": "rate_limit_exceeded",
    "invalid_request_error": "invalid_prompt",
}


# --------------------------------------------------------------------------- usage and stop reasons


def parse_usage(raw: dict[str, Any]) -> ir.Usage:
    details = raw.get("input_tokens_details")
    out_details = raw.get("output_tokens_details")
    details = obj(details)
    out_details = obj(out_details)
    return ir.Usage(
        input_tokens=as_int(raw.get("input_tokens")),
        output_tokens=as_int(raw.get("output_tokens")),
        cache_read_tokens=as_int(details.get("cached_tokens")),
        cache_write_tokens=as_int(details.get("cache_write_tokens")),
        reasoning_tokens=as_int(out_details.get("reasoning_tokens")),
    )


def render_usage(usage: ir.Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {
            "cached_tokens": usage.cache_read_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
        },
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.input_tokens + usage.output_tokens,
    }


def render_stop_reason(
    stop: ir.StopReason | None,
) -> tuple[str, dict[str, Any] | None]:
    if stop == "max_tokens":
        return "incomplete", {"reason": "max_output_tokens"}
    if stop == "content_filter":
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def parse_stop_reason(status: Any, incomplete: Any, has_calls: bool) -> ir.StopReason:
    if status == "incomplete":
        reason = incomplete.get("reason") if isinstance(incomplete, dict) else None
        return "content_filter" if reason == "content_filter" else "max_tokens"
    if status == "failed":
        return "error"
    return "tool_use" if has_calls else "end_turn"


# --------------------------------------------------------------------------- output items


def _output_items(resp: ir.Response, req: ir.Request) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for block in resp.content:
        match block:
            case ir.TextBlock():
                items.append(message_item(new_id("msg_"), block.text, "completed"))
            case ir.ThinkingBlock() if not block.redacted:
                items.append(reasoning_item(new_id("rs_"), block.thinking, block))
            case ir.ToolUseBlock():
                items.append(output_call_item(req, block))
            case _:
                pass
    return items


def output_call_item(req: ir.Request, block: ir.ToolUseBlock) -> dict[str, Any]:
    """A finished call as the client declared the tool: ``custom_tool_call`` with its text for
    a free-form tool, ``function_call`` otherwise, with the namespace it was declared in."""
    name, namespace, free_form = client_call(req, block)
    if free_form:
        item = custom_call_item(new_id("ctc_"), block.id, name, free_form_input(block), "completed")
    else:
        item = call_item(new_id("fc_"), block.id, name, block.arguments_json(), "completed")
    if namespace is not None:
        item["namespace"] = namespace
    return item


def custom_call_item(
    item_id: str, call_id: str, name: str, text: str, status: str
) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": CUSTOM_CALL,
        "status": status,
        "call_id": call_id,
        "name": name,
        "input": text,
    }


def message_item(item_id: str, text: str | None, status: str) -> dict[str, Any]:
    content = [] if text is None else [text_part(text)]
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": content,
    }


def text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def reasoning_item(item_id: str, text: str | None, block: ir.ThinkingBlock) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": item_id,
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": text}] if text else [],
    }
    if block.origin == NAME and block.signature:
        item["encrypted_content"] = block.signature
    return item


def call_item(item_id: str, call_id: str, name: str, arguments: str, status: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


def response_object(
    req: ir.Request,
    *,
    resp_id: str,
    model: str,
    created: int,
    status: str,
    output: list[dict[str, Any]],
    usage: ir.Usage | None = None,
    incomplete: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    reasoning = {"effort": req.reasoning_effort, "summary": None}
    text_format = format_from_ir(req.response_format) if req.response_format else {"type": "text"}
    return {
        "id": resp_id,
        "object": "response",
        "created_at": created,
        "status": status,
        "error": error,
        "incomplete_details": incomplete,
        "instructions": req.system_text() or None,
        "max_output_tokens": req.max_tokens,
        "model": model,
        "output": output,
        "parallel_tool_calls": req.parallel_tool_calls is not False,
        "previous_response_id": None,
        "reasoning": reasoning,
        "temperature": req.temperature,
        "text": {"format": text_format},
        "tool_choice": render_tool_choice(req.tool_choice, nested=False)
        if req.tool_choice
        else "auto",
        "tools": [
            {**t, "strict": t.get("strict")} if t.get("type") == "function" else t
            for t in _render_tools_quiet(req)
        ],
        "top_p": req.top_p,
        "truncation": "disabled",
        "usage": render_usage(usage) if usage is not None else None,
        "user": req.user,
        "metadata": req.metadata or {},
    }


def _render_tools_quiet(req: ir.Request) -> list[dict[str, Any]]:
    """The request's tools echoed in a response object, without touching ``req.dropped``."""
    saved = list(req.dropped)
    try:
        return render_tools(req)
    finally:
        req.dropped[:] = saved


def error_object(message: str, error_type: str) -> dict[str, Any]:
    return {"code": _ERROR_CODES.get(error_type, "server_error"), "message": message}


# --------------------------------------------------------------------------- responses


def parse_response(body: dict[str, Any]) -> ir.Response:
    created = body.get("created_at")
    resp = ir.Response(
        id=str(body.get("id") or ""),
        model=str(body.get("model") or ""),
        created=int(created) if isinstance(created, int | float) else None,
    )
    for item in body.get("output") or []:
        if not isinstance(item, dict):
            continue
        match item.get("type"):
            case "message":
                for part in item.get("content") or []:
                    if isinstance(part, dict):
                        text = part.get("text", part.get("refusal"))
                        if isinstance(text, str) and text:
                            resp.content.append(ir.TextBlock(text))
            case "reasoning":
                resp.content.append(thinking_from_item(item))
            case "function_call" | "custom_tool_call":
                resp.content.append(tool_use_from_item(item))
            case _:
                pass
    resp.stop_reason = parse_stop_reason(
        body.get("status"), body.get("incomplete_details"), bool(resp.tool_calls())
    )
    usage = body.get("usage")
    if isinstance(usage, dict):
        resp.usage = parse_usage(usage)
    return resp


def render_response(resp: ir.Response, req: ir.Request) -> dict[str, Any]:
    status, incomplete = render_stop_reason(resp.stop_reason)
    return response_object(
        req,
        resp_id=resp.id if resp.id.startswith("resp_") else new_id("resp_"),
        model=resp.model or req.model,
        created=resp.created or int(time.time()),
        status=status,
        output=_output_items(resp, req),
        usage=resp.usage,
        incomplete=incomplete,
    )


def mark_unfinished(rendered: dict[str, Any]) -> None:
    """A reply rendered from a stream that never ended is an incomplete response."""
    rendered["status"] = "incomplete"
