"""Anthropic Messages responses: parse an upstream message, render one for a client; usage and
stop reasons."""

from __future__ import annotations

import uuid
from typing import Any

from router import ir
from router.formats.anthropic import NAME
from router.formats.common import as_int

_MESSAGE_FIELDS = frozenset(
    {"id", "type", "role", "model", "content", "stop_reason", "stop_sequence", "usage"}
)

# Anthropic stop reasons are the IR's vocabulary except for these.
_STOP_IN: dict[str, ir.StopReason] = {
    "end_turn": "end_turn",
    "max_tokens": "max_tokens",
    "tool_use": "tool_use",
    "stop_sequence": "stop_sequence",
    "pause_turn": "pause_turn",
    "refusal": "content_filter",
    "model_context_window_exceeded": "max_tokens",
}
_STOP_OUT: dict[str, str] = {
    "end_turn": "end_turn",
    "max_tokens": "max_tokens",
    "tool_use": "tool_use",
    "stop_sequence": "stop_sequence",
    "pause_turn": "pause_turn",
    "content_filter": "refusal",
    "error": "end_turn",
}


# --------------------------------------------------------------------------- usage and stop reasons


def parse_usage(data: dict[str, Any]) -> ir.Usage:
    """Anthropic ``input_tokens`` excludes cache reads and writes; the IR's includes them."""
    cache_read = as_int(data.get("cache_read_input_tokens"))
    cache_write = as_int(data.get("cache_creation_input_tokens"))
    details = data.get("output_tokens_details")
    reasoning = as_int(details.get("thinking_tokens")) if isinstance(details, dict) else 0
    return ir.Usage(
        input_tokens=as_int(data.get("input_tokens")) + cache_read + cache_write,
        output_tokens=as_int(data.get("output_tokens")),
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        reasoning_tokens=reasoning,
    )


def render_usage(usage: ir.Usage | None) -> dict[str, Any]:
    usage = usage or ir.Usage()
    out: dict[str, Any] = {
        "input_tokens": max(
            0, usage.input_tokens - usage.cache_read_tokens - usage.cache_write_tokens
        ),
        "output_tokens": usage.output_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cache_read_tokens,
    }
    if usage.reasoning_tokens:
        out["output_tokens_details"] = {"thinking_tokens": usage.reasoning_tokens}
    return out


def parse_stop_reason(value: Any) -> ir.StopReason | None:
    return _STOP_IN.get(value, "end_turn") if isinstance(value, str) else None


def render_stop_reason(stop: ir.StopReason | None) -> str:
    return _STOP_OUT.get(stop or "end_turn", "end_turn")


# --------------------------------------------------------------------------- responses


def _parse_content_block(item: Any) -> ir.Block | None:
    if not isinstance(item, dict):
        return None
    match item.get("type"):
        case "text":
            return ir.TextBlock(text=str(item.get("text", "")))
        case "thinking":
            return ir.ThinkingBlock(
                thinking=str(item.get("thinking", "")),
                signature=item.get("signature") or None,
                origin=NAME,
            )
        case "redacted_thinking":
            return ir.ThinkingBlock(redacted=True, data=item.get("data"), origin=NAME)
        case "tool_use":
            block = ir.ToolUseBlock(id=str(item.get("id", "")), name=str(item.get("name", "")))
            args = item.get("input")
            if isinstance(args, dict):
                block.input = args
            elif isinstance(args, str):
                ir.set_tool_arguments(block, args)
            return block
    # server_tool_use / *_tool_result / mcp blocks run on Anthropic's side: a client of
    # another format must not see them as calls it has to execute.
    return None


def parse_response(body: dict[str, Any]) -> ir.Response:
    content = body.get("content")
    blocks = [b for item in content or [] if (b := _parse_content_block(item)) is not None]
    stop = body.get("stop_reason")
    usage = body.get("usage")
    resp = ir.Response(
        id=str(body.get("id") or ""),
        model=str(body.get("model") or ""),
        content=blocks,
        stop_reason=parse_stop_reason(stop),
        stop_sequence=body.get("stop_sequence"),
        usage=parse_usage(usage) if isinstance(usage, dict) else None,
    )
    extra = {k: v for k, v in body.items() if k not in _MESSAGE_FIELDS}
    if extra:
        resp.extra[NAME] = extra
    return resp


def _out_block_json(block: ir.Block) -> dict[str, Any] | None:
    """A content block as sent to a client (any thinking is shown, signed or not)."""
    match block:
        case ir.TextBlock():
            return {"type": "text", "text": block.text}
        case ir.ThinkingBlock() if block.redacted:
            return {"type": "redacted_thinking", "data": block.data or ""}
        case ir.ThinkingBlock():
            return {
                "type": "thinking",
                "thinking": block.thinking,
                "signature": block.signature or "",
            }
        case ir.ToolUseBlock():
            args = block.input if isinstance(block.input, dict) else {}
            return {
                "type": "tool_use",
                "id": client_tool_id(block.id),
                "name": block.name,
                "input": args,
            }
    return None


def client_tool_id(tool_id: str) -> str:
    """The id a client sees. Some providers (Gemini) give none; a fresh one per call keeps
    parallel calls apart, and the client echoes it back so later turns still pair up."""
    return ir.safe_tool_id(tool_id) if tool_id else f"toolu_{uuid.uuid4().hex[:24]}"


def message_id(value: str) -> str:
    return value or f"msg_{uuid.uuid4().hex[:24]}"


def render_response(resp: ir.Response, req: ir.Request) -> dict[str, Any]:
    extra = resp.extra.get(NAME)
    body: dict[str, Any] = dict(extra) if isinstance(extra, dict) else {}
    body.update(
        {
            "id": message_id(resp.id),
            "type": "message",
            "role": "assistant",
            "model": resp.model or req.model,
            "content": [j for b in resp.content if (j := _out_block_json(b)) is not None],
            "stop_reason": render_stop_reason(resp.stop_reason),
            "stop_sequence": resp.stop_sequence,
            "usage": render_usage(resp.usage),
        }
    )
    return body


def mark_unfinished(rendered: dict[str, Any]) -> None:
    """A reply rendered from a stream that never ended: no stop reason."""
    rendered["stop_reason"] = None
