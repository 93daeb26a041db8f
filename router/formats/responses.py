"""The OpenAI Responses wire format (``responses``): requests, response objects and typed SSE."""

from __future__ import annotations

import json
import time
from typing import Any

from router import ir
from router.formats.base import Codec, StreamParser, StreamRenderer, require
from router.formats.openai_chat import (
    add_dropped,
    as_int,
    as_object,
    bad,
    field,
    function_tool,
    image_from_url,
    image_url,
    merge_extra,
    new_id,
    obj,
    parse_effort,
    parse_tool_choice,
    render_effort,
    render_metadata,
    render_sampling,
    tool_extra,
)
from router.formats.sse import SSEEvent, SSEParser, sse_bytes

NAME = "responses"

_FIELDS = frozenset(
    {
        "model",
        "input",
        "instructions",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "max_output_tokens",
        "temperature",
        "top_p",
        "reasoning",
        "text",
        "stream",
        "user",
        "metadata",
    }
)

# ResponseError.code is a closed set in the SDK; everything else is a server_error.
_ERROR_CODES = {
    "rate_limit_error": "rate_limit_exceeded",
    "invalid_request_error": "invalid_prompt",
}


# --------------------------------------------------------------------------- shared pieces


def format_to_ir(fmt: dict[str, Any]) -> dict[str, Any]:
    """``text.format`` -> the chat-shaped ``response_format`` the IR carries."""
    if fmt.get("type") != "json_schema":
        return dict(fmt)
    return {"type": "json_schema", "json_schema": {k: v for k, v in fmt.items() if k != "type"}}


def format_from_ir(fmt: dict[str, Any]) -> dict[str, Any]:
    schema = fmt.get("json_schema")
    if fmt.get("type") == "json_schema" and isinstance(schema, dict):
        return {"type": "json_schema", **schema}
    return dict(fmt)


def usage_from_responses(raw: dict[str, Any]) -> ir.Usage:
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


def usage_to_responses(usage: ir.Usage) -> dict[str, Any]:
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


def _status(
    stop: ir.StopReason | None,
) -> tuple[str, dict[str, Any] | None]:
    if stop == "max_tokens":
        return "incomplete", {"reason": "max_output_tokens"}
    if stop == "content_filter":
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def _stop_reason(status: Any, incomplete: Any, has_calls: bool) -> ir.StopReason:
    if status == "incomplete":
        reason = incomplete.get("reason") if isinstance(incomplete, dict) else None
        return "content_filter" if reason == "content_filter" else "max_tokens"
    if status == "failed":
        return "error"
    return "tool_use" if has_calls else "end_turn"


def _render_tools(req: ir.Request) -> list[dict[str, Any]]:
    tools: list[dict[str, Any]] = []
    for tool in req.tools:
        out: dict[str, Any] = {"type": "function", "name": tool.name}
        if tool.description:
            out["description"] = tool.description
        out["parameters"] = tool.parameters
        extra = tool_extra(tool, req)
        if req.source_format != NAME:
            # Responses defaults function tools to strict, which rejects ordinary schemas.
            extra.setdefault("strict", False)
        out.update(extra)
        tools.append(out)
    return tools


def _render_tool_choice(choice: ir.ToolChoice) -> str | dict[str, Any]:
    if choice.mode == "tool":
        return {"type": "function", "name": choice.name or ""}
    return choice.mode


def _summary_text(item: dict[str, Any]) -> str:
    parts = [
        p.get("text", "")
        for p in item.get("summary") or []
        if isinstance(p, dict) and isinstance(p.get("text"), str)
    ]
    return "\n\n".join(parts)


def _thinking_from_item(item: dict[str, Any]) -> ir.ThinkingBlock:
    encrypted = item.get("encrypted_content")
    return ir.ThinkingBlock(
        _summary_text(item),
        signature=encrypted if isinstance(encrypted, str) else None,
        origin=NAME,
    )


def _tool_use_from_item(item: dict[str, Any]) -> ir.ToolUseBlock:
    # Pair by call_id (router.md case 1): the item id is Responses-internal.
    block = ir.ToolUseBlock(id=str(item.get("call_id") or ""), name=str(item.get("name") or ""))
    arguments = item.get("arguments")
    ir.set_tool_arguments(block, arguments if isinstance(arguments, str) else "")
    return block


# --------------------------------------------------------------------------- request parsing


def _parts(content: Any, path: str, req: ir.Request) -> list[ir.TextBlock | ir.ImageBlock]:
    if isinstance(content, str):
        return [ir.TextBlock(content)]
    if not isinstance(content, list):
        raise bad(f"{path}.content", "expected a string or an array of content parts")
    out: list[ir.TextBlock | ir.ImageBlock] = []
    for j, raw in enumerate(content):
        ppath = f"{path}.content[{j}]"
        part = as_object(raw, ppath)
        ptype = field(part, "type", str, "a string", ppath, required=True)
        if ptype in ("input_text", "output_text", "text"):
            out.append(ir.TextBlock(field(part, "text", str, "a string", ppath, required=True)))
        elif ptype == "refusal":
            out.append(ir.TextBlock(field(part, "refusal", str, "a string", ppath) or ""))
        elif ptype == "input_image" and isinstance(part.get("image_url"), str):
            out.append(image_from_url(part["image_url"]))
        else:
            add_dropped(req, f"{ppath}.{ptype}")  # files and file_id images have no IR slot
    return out


def _append(req: ir.Request, role: ir.Role, block: ir.Block, *, only_results: bool) -> None:
    """Add a block to the last message when it has the role (and, for tool results, holds only
    results), so a turn's calls and results stay one IR message as Anthropic wants them."""
    last = req.messages[-1] if req.messages else None
    if (
        last is not None
        and last.role == role
        and (
            not only_results
            or (last.content and all(isinstance(b, ir.ToolResultBlock) for b in last.content))
        )
    ):
        last.content.append(block)
    else:
        req.messages.append(ir.Message(role, [block]))


def _parse_item(req: ir.Request, raw: Any, path: str) -> None:
    item = as_object(raw, path)
    kind = item.get("type", "message" if "role" in item else None)
    match kind:
        case "message":
            role = field(item, "role", str, "a string", path, required=True)
            if item.get("content") is None:
                raise bad(f"{path}.content", "field required")
            blocks = _parts(item["content"], path, req)
            if role in ("system", "developer"):
                req.system.extend(b for b in blocks if isinstance(b, ir.TextBlock))
            elif role in ("user", "assistant"):
                content: list[ir.Block] = list(blocks)
                if role == "assistant":
                    content = [
                        b for b in content if not (isinstance(b, ir.TextBlock) and not b.text)
                    ]
                    for block in content:
                        _append(req, "assistant", block, only_results=False)
                else:
                    req.messages.append(ir.Message("user", content))
            else:
                raise bad(f"{path}.role", f"unknown role {role!r}")
        case "function_call":
            field(item, "call_id", str, "a string", path, required=True)
            field(item, "name", str, "a string", path, required=True)
            _append(req, "assistant", _tool_use_from_item(item), only_results=False)
        case "function_call_output":
            call_id = field(item, "call_id", str, "a string", path, required=True)
            output = item.get("output")
            parts = [] if output is None else _parts(output, path, req)
            result = ir.ToolResultBlock(tool_use_id=call_id, content=parts)
            _append(req, "user", result, only_results=True)
        case "reasoning":
            _append(req, "assistant", _thinking_from_item(item), only_results=False)
        case _:
            # built-in tool calls, item references and the like have no IR slot
            add_dropped(req, f"{path}.{kind}")


def _parse_tools(body: dict[str, Any], req: ir.Request) -> None:
    other: list[Any] = []
    for k, raw in enumerate(field(body, "tools", list, "an array") or []):
        tpath = f"tools[{k}]"
        tool = as_object(raw, tpath)
        if tool.get("type") != "function":
            other.append(tool)  # built-in and custom tools ride along for same-format renders
            continue
        req.tools.append(function_tool(tool, tpath, skip=("type",)))
    if other:
        req.extra["tools"] = other


def _named_function(choice: dict[str, Any]) -> str | None:
    if choice.get("type") != "function":
        return None
    name: str = field(choice, "name", str, "a string", "tool_choice", required=True)
    return name


def _parse_tool_choice(body: dict[str, Any], req: ir.Request) -> None:
    parse_tool_choice(body, req, _named_function)


# --------------------------------------------------------------------------- request rendering


def _input_parts(blocks: list[ir.TextBlock | ir.ImageBlock]) -> str | list[dict[str, Any]]:
    if len(blocks) == 1 and isinstance(blocks[0], ir.TextBlock):
        return blocks[0].text
    return [
        {"type": "input_text", "text": b.text}
        if isinstance(b, ir.TextBlock)
        else {"type": "input_image", "image_url": image_url(b), "detail": "auto"}
        for b in blocks
    ]


def _render_input(req: ir.Request) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for msg in req.messages:
        _render_message(msg, req, items)
    return items


def _render_message(msg: ir.Message, req: ir.Request, items: list[dict[str, Any]]) -> None:
    pending: list[ir.TextBlock | ir.ImageBlock] = []
    texts: list[str] = []

    def flush_user() -> None:
        if pending:
            items.append({"type": "message", "role": "user", "content": _input_parts(pending)})
            pending.clear()

    def flush_assistant() -> None:
        if texts:
            items.append({"type": "message", "role": "assistant", "content": "\n\n".join(texts)})
            texts.clear()

    for block in msg.content:
        match block:
            case ir.TextBlock() if msg.role == "assistant":
                texts.append(block.text)
            case ir.TextBlock() | ir.ImageBlock():
                pending.append(block)
            case ir.ToolResultBlock():
                flush_user()
                parts: list[ir.TextBlock | ir.ImageBlock] = list(block.content)
                if block.is_error:
                    add_dropped(req, "tool_result.is_error")
                output = _input_parts(parts) if parts else ""
                items.append(
                    {
                        "type": "function_call_output",
                        "call_id": block.tool_use_id,
                        "output": output,
                    }
                )
            case ir.ToolUseBlock():
                flush_assistant()
                items.append(
                    {
                        "type": "function_call",
                        "call_id": block.id,
                        "name": block.name,
                        "arguments": block.arguments_json(),
                    }
                )
            case ir.ThinkingBlock() if block.origin == NAME and block.signature:
                # Only encrypted reasoning can be sent back without a stored response.
                flush_assistant()
                items.append(
                    {
                        "type": "reasoning",
                        "id": new_id("rs_"),
                        "summary": [{"type": "summary_text", "text": block.thinking}]
                        if block.thinking
                        else [],
                        "encrypted_content": block.signature,
                    }
                )
            case ir.ThinkingBlock():
                add_dropped(req, "thinking")
    if msg.role == "assistant":
        flush_assistant()
    elif msg.role == "system":
        if pending:
            items.append({"type": "message", "role": "system", "content": _input_parts(pending)})
    else:
        flush_user()


def _render_request(req: ir.Request) -> dict[str, Any]:
    same = req.source_format == NAME
    body: dict[str, Any] = {"model": req.model}
    if req.system:
        if any(b.cache_control is not None for b in req.system):
            add_dropped(req, "cache_control")
        body["instructions"] = req.system_text()
    body["input"] = _render_input(req)
    if req.tools:
        body["tools"] = _render_tools(req)
        if req.tool_choice is not None:
            body["tool_choice"] = _render_tool_choice(req.tool_choice)
    if req.parallel_tool_calls is not None:
        body["parallel_tool_calls"] = req.parallel_tool_calls
    if req.max_tokens is not None:
        body["max_output_tokens"] = req.max_tokens
    render_sampling(req, body)
    for name in ("stop", "seed"):
        if getattr(req, name):
            add_dropped(req, name)
    effort = render_effort(req)
    if effort is not None:
        body["reasoning"] = {"effort": effort}
    if req.response_format is not None:
        body["text"] = {"format": format_from_ir(req.response_format)}
    body["stream"] = req.stream
    render_metadata(req, body)
    merge_extra(req, body, same)
    return body


# --------------------------------------------------------------------------- response objects


def _output_items(resp: ir.Response) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for block in resp.content:
        match block:
            case ir.TextBlock():
                items.append(_message_item(new_id("msg_"), block.text, "completed"))
            case ir.ThinkingBlock() if not block.redacted:
                items.append(_reasoning_item(new_id("rs_"), block.thinking, block))
            case ir.ToolUseBlock():
                items.append(
                    _call_item(
                        new_id("fc_"), block.id, block.name, block.arguments_json(), "completed"
                    )
                )
            case _:
                pass
    return items


def _message_item(item_id: str, text: str | None, status: str) -> dict[str, Any]:
    content = [] if text is None else [_text_part(text)]
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": content,
    }


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _reasoning_item(item_id: str, text: str | None, block: ir.ThinkingBlock) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": item_id,
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": text}] if text else [],
    }
    if block.origin == NAME and block.signature:
        item["encrypted_content"] = block.signature
    return item


def _call_item(
    item_id: str, call_id: str, name: str, arguments: str, status: str
) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


def _response_object(
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
        "tool_choice": _render_tool_choice(req.tool_choice) if req.tool_choice else "auto",
        "tools": [{**t, "strict": t.get("strict")} for t in _render_tools_quiet(req)],
        "top_p": req.top_p,
        "truncation": "disabled",
        "usage": usage_to_responses(usage) if usage is not None else None,
        "user": req.user,
        "metadata": req.metadata or {},
    }


def _render_tools_quiet(req: ir.Request) -> list[dict[str, Any]]:
    """The request's tools echoed in a response object, without touching ``req.dropped``."""
    saved = list(req.dropped)
    try:
        return _render_tools(req)
    finally:
        req.dropped[:] = saved


def _error_object(message: str, error_type: str) -> dict[str, Any]:
    return {"code": _ERROR_CODES.get(error_type, "server_error"), "message": message}


# --------------------------------------------------------------------------- streams


class ResponsesStreamParser:
    """Responses typed SSE -> IR events. Each output item (and each output_text part of a
    message) becomes one IR block, numbered in start order."""

    def __init__(self) -> None:
        self._sse = SSEParser()
        self._next = 0
        self._blocks: dict[tuple[int, int], int] = {}  # (output_index, content_index) -> block
        self._seen_delta: set[int] = set()
        self._open: list[int] = []
        self._has_calls = False
        self._ended = False

    def feed(self, chunk: bytes) -> list[ir.StreamEvent]:
        return self._handle(self._sse.feed(chunk))

    def close(self) -> list[ir.StreamEvent]:
        out = self._handle(self._sse.close())
        if not self._ended:
            self._ended = True
            out.append(ir.ErrorEvent("upstream stream ended early", "api_error"))
        return out

    def _handle(self, events: list[SSEEvent]) -> list[ir.StreamEvent]:
        out: list[ir.StreamEvent] = []
        for event in events:
            if self._ended or not event.data.strip():
                continue
            try:
                data = json.loads(event.data)
            except ValueError:
                out.append(
                    ir.ErrorEvent("upstream sent a stream event that is not JSON", "api_error")
                )
                self._ended = True
                continue
            if isinstance(data, dict):
                self._event(str(data.get("type") or event.event or ""), data, out)
        return out

    def _event(self, kind: str, data: dict[str, Any], out: list[ir.StreamEvent]) -> None:
        output_index = as_int(data.get("output_index"))
        item = obj(data.get("item"))
        match kind:
            case "response.created":
                resp = obj(data.get("response"))
                created = resp.get("created_at")
                out.append(
                    ir.MessageStart(
                        id=str(resp.get("id") or ""),
                        model=str(resp.get("model") or ""),
                        created=int(created) if isinstance(created, int | float) else None,
                    )
                )
            case "response.output_item.added":
                if item.get("type") == "function_call":
                    self._has_calls = True
                    block = ir.ToolUseBlock(
                        id=str(item.get("call_id") or ""), name=str(item.get("name") or "")
                    )
                    self._start((output_index, 0), block, out)
                elif item.get("type") == "reasoning":
                    self._start((output_index, 0), ir.ThinkingBlock(origin=NAME), out)
            case "response.content_part.added":
                part = obj(data.get("part"))
                if part.get("type") in ("output_text", "refusal"):
                    self._start(
                        (output_index, as_int(data.get("content_index"))), ir.TextBlock(), out
                    )
            case "response.output_text.delta" | "response.refusal.delta":
                key = (output_index, as_int(data.get("content_index")))
                self._delta(key, "text", data.get("delta"), out, ir.TextBlock())
            case "response.output_text.done" | "response.refusal.done":
                key = (output_index, as_int(data.get("content_index")))
                text = data.get("text", data.get("refusal"))
                self._catch_up(key, "text", text, out, ir.TextBlock())
            case "response.function_call_arguments.delta":
                self._delta(
                    (output_index, 0), "input_json", data.get("delta"), out, ir.ToolUseBlock()
                )
            case "response.function_call_arguments.done":
                self._catch_up(
                    (output_index, 0), "input_json", data.get("arguments"), out, ir.ToolUseBlock()
                )
            case "response.reasoning_summary_part.added":
                index = self._blocks.get((output_index, 0))
                if index is not None and as_int(data.get("summary_index")) > 0:
                    # summaries are joined like a non-streamed item's summary parts
                    out.append(ir.BlockDelta(index, "thinking", "\n\n"))
            case "response.reasoning_summary_text.delta" | "response.reasoning_text.delta":
                thinking = ir.ThinkingBlock(origin=NAME)
                self._delta((output_index, 0), "thinking", data.get("delta"), out, thinking)
            case "response.output_item.done":
                self._item_done(output_index, item, out)
            case "response.completed" | "response.incomplete":
                resp = obj(data.get("response"))
                out.extend(self._close(None))
                usage = resp.get("usage")
                stop = _stop_reason(
                    resp.get("status"), resp.get("incomplete_details"), self._has_calls
                )
                out.append(
                    ir.MessageDelta(
                        stop_reason=stop,
                        usage=usage_from_responses(usage) if isinstance(usage, dict) else None,
                    )
                )
                out.append(ir.MessageStop())
                self._ended = True
            case "response.failed" | "error":
                resp = obj(data.get("response"))
                error = resp.get("error") if kind == "response.failed" else data
                error = obj(error)
                out.append(
                    ir.ErrorEvent(
                        str(error.get("message") or "upstream response failed"),
                        str(error.get("code") or error.get("type") or "api_error"),
                    )
                )
                self._ended = True
            case _:
                pass

    def _start(self, key: tuple[int, int], block: ir.Block, out: list[ir.StreamEvent]) -> int:
        index = self._blocks.get(key)
        if index is None:
            index = self._next
            self._next += 1
            self._blocks[key] = index
            self._open.append(index)
            out.append(ir.BlockStart(index, block))
        return index

    def _delta(
        self,
        key: tuple[int, int],
        kind: Any,
        text: Any,
        out: list[ir.StreamEvent],
        block: ir.Block,
    ) -> None:
        if not isinstance(text, str) or not text:
            return
        index = self._start(key, block, out)
        self._seen_delta.add(index)
        out.append(ir.BlockDelta(index, kind, text))

    def _catch_up(
        self,
        key: tuple[int, int],
        kind: Any,
        text: Any,
        out: list[ir.StreamEvent],
        block: ir.Block,
    ) -> None:
        """A ``.done`` event for a part that got no deltas carries the whole value."""
        index = self._blocks.get(key)
        if index is None or index not in self._seen_delta:
            self._delta(key, kind, text, out, block)

    def _item_done(
        self, output_index: int, item: dict[str, Any], out: list[ir.StreamEvent]
    ) -> None:
        kind = item.get("type")
        if kind == "function_call":
            self._has_calls = True
            block = ir.ToolUseBlock(
                id=str(item.get("call_id") or ""), name=str(item.get("name") or "")
            )
            self._start((output_index, 0), block, out)
            self._catch_up((output_index, 0), "input_json", item.get("arguments"), out, block)
        elif kind == "reasoning":
            index = self._start((output_index, 0), ir.ThinkingBlock(origin=NAME), out)
            if index not in self._seen_delta:
                self._delta(
                    (output_index, 0), "thinking", _summary_text(item), out, ir.ThinkingBlock()
                )
            encrypted = item.get("encrypted_content")
            if isinstance(encrypted, str) and encrypted:
                out.append(ir.BlockDelta(index, "signature", encrypted))
        elif kind == "message" and not any(k[0] == output_index for k in self._blocks):
            for content_index, part in enumerate(item.get("content") or []):
                if isinstance(part, dict):
                    text = part.get("text", part.get("refusal"))
                    self._delta((output_index, content_index), "text", text, out, ir.TextBlock())
        out.extend(self._close(output_index))

    def _close(self, output_index: int | None) -> list[ir.StreamEvent]:
        closing = [
            index
            for key, index in self._blocks.items()
            if index in self._open and (output_index is None or key[0] == output_index)
        ]
        self._open = [i for i in self._open if i not in closing]
        return [ir.BlockStop(i) for i in sorted(closing)]


class _Item:
    """One output item being streamed: its id, output index and what has arrived so far."""

    __slots__ = ("block", "item_id", "output_index", "started_summary", "text")

    def __init__(self, item_id: str, output_index: int, block: ir.Block) -> None:
        self.item_id = item_id
        self.output_index = output_index
        self.block = block
        self.text = ""
        self.started_summary = False


class ResponsesStreamRenderer:
    """IR events -> the typed event sequence ``client.responses.create(stream=True)`` reads."""

    def __init__(self, req: ir.Request) -> None:
        self._req = req
        self._seq = 0
        self._id = ""
        self._model = req.model
        self._created = 0
        self._started = False
        self._done = False
        self._items: dict[int, _Item] = {}  # IR block index -> item
        self._output: list[tuple[int, dict[str, Any]]] = []  # finished items by output index
        self._next_output = 0
        self._stop: ir.StopReason | None = None
        self._usage: ir.Usage | None = None

    def render(self, event: ir.StreamEvent) -> bytes:
        if self._done:
            return b""
        out = b""
        if not self._started and not isinstance(event, ir.ErrorEvent):
            out += self._start(event if isinstance(event, ir.MessageStart) else None)
        match event:
            case ir.BlockStart():
                out += self._block_start(event.index, event.block)
            case ir.BlockDelta():
                out += self._block_delta(event)
            case ir.BlockStop():
                out += self._block_stop(event.index)
            case ir.MessageDelta():
                if event.stop_reason is not None:
                    self._stop = event.stop_reason
                if event.usage is not None:
                    if self._usage is None:
                        self._usage = ir.Usage(estimated=event.usage.estimated)
                    self._usage.merge(event.usage)
            case ir.MessageStop():
                for index in sorted(self._items):
                    out += self._block_stop(index)
                status, incomplete = _status(self._stop)
                resp = self._response(
                    status, usage=self._usage or ir.Usage(), incomplete=incomplete
                )
                out += self._emit(f"response.{status}", {"response": resp})
                self._done = True
            case ir.ErrorEvent():
                out += self._failed(event.message, event.error_type)
            case _:
                pass
        return out

    def finish(self) -> bytes:
        if self._done:
            return b""
        return self._failed("upstream stream ended before the response completed", "api_error")

    def _failed(self, message: str, error_type: str) -> bytes:
        self._done = True
        out = b"" if self._started else self._start(None)
        resp = self._response("failed", error=_error_object(message, error_type))
        return out + self._emit("response.failed", {"response": resp})

    def _start(self, event: ir.MessageStart | None) -> bytes:
        self._started = True
        given = event.id if event else ""
        self._id = given if given.startswith("resp_") else new_id("resp_")
        self._model = (event.model if event else "") or self._req.model
        self._created = (event.created if event else None) or int(time.time())
        resp = self._response("in_progress")
        return self._emit("response.created", {"response": resp}) + self._emit(
            "response.in_progress", {"response": resp}
        )

    def _response(
        self,
        status: str,
        *,
        usage: ir.Usage | None = None,
        incomplete: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return _response_object(
            self._req,
            resp_id=self._id,
            model=self._model,
            created=self._created,
            status=status,
            output=[item for _, item in sorted(self._output, key=lambda pair: pair[0])],
            usage=usage,
            incomplete=incomplete,
            error=error,
        )

    def _emit(self, kind: str, payload: dict[str, Any]) -> bytes:
        data = {"type": kind, "sequence_number": self._seq, **payload}
        self._seq += 1
        return sse_bytes(data, event=kind)

    def _refs(self, item: _Item) -> dict[str, Any]:
        return {"item_id": item.item_id, "output_index": item.output_index}

    def _block_start(self, index: int, block: ir.Block) -> bytes:
        if isinstance(block, ir.ThinkingBlock) and block.redacted:
            return b""  # opaque Anthropic data means nothing to a Responses client
        output_index = self._next_output
        match block:
            case ir.TextBlock():
                item = _Item(new_id("msg_"), output_index, ir.TextBlock())
                added = _message_item(item.item_id, None, "in_progress")
            case ir.ThinkingBlock():
                thinking = ir.ThinkingBlock(origin=block.origin)
                item = _Item(new_id("rs_"), output_index, thinking)
                added = _reasoning_item(item.item_id, None, thinking)
            case ir.ToolUseBlock():
                call = ir.ToolUseBlock(id=block.id, name=block.name)
                item = _Item(new_id("fc_"), output_index, call)
                added = _call_item(item.item_id, block.id, block.name, "", "in_progress")
            case _:
                return b""
        self._next_output += 1
        self._items[index] = item
        out = self._emit(
            "response.output_item.added", {"output_index": output_index, "item": added}
        )
        if isinstance(block, ir.TextBlock):
            out += self._emit(
                "response.content_part.added",
                {**self._refs(item), "content_index": 0, "part": _text_part("")},
            )
        return out

    def _block_delta(self, event: ir.BlockDelta) -> bytes:
        item = self._items.get(event.index)
        if item is None:
            block: ir.Block = ir.TextBlock()
            if event.kind in ("thinking", "signature"):
                block = ir.ThinkingBlock()
            elif event.kind == "input_json":
                block = ir.ToolUseBlock()
            out = self._block_start(event.index, block)
            item = self._items.get(event.index)
            if item is None:
                return out
        else:
            out = b""
        refs = self._refs(item)
        match event.kind:
            case "text" if isinstance(item.block, ir.TextBlock):
                item.text += event.text
                out += self._emit(
                    "response.output_text.delta",
                    {**refs, "content_index": 0, "delta": event.text, "logprobs": []},
                )
            case "thinking" if isinstance(item.block, ir.ThinkingBlock):
                if not item.started_summary:
                    item.started_summary = True
                    out += self._emit(
                        "response.reasoning_summary_part.added",
                        {**refs, "summary_index": 0, "part": {"type": "summary_text", "text": ""}},
                    )
                item.text += event.text
                out += self._emit(
                    "response.reasoning_summary_text.delta",
                    {**refs, "summary_index": 0, "delta": event.text},
                )
            case "signature" if isinstance(item.block, ir.ThinkingBlock):
                item.block.signature = (item.block.signature or "") + event.text
            case "input_json" if isinstance(item.block, ir.ToolUseBlock):
                item.text += event.text
                out += self._emit(
                    "response.function_call_arguments.delta", {**refs, "delta": event.text}
                )
            case _:
                pass
        return out

    def _block_stop(self, index: int) -> bytes:
        item = self._items.pop(index, None)
        if item is None:
            return b""
        refs = self._refs(item)
        out = b""
        match item.block:
            case ir.TextBlock():
                part = _text_part(item.text)
                out += self._emit(
                    "response.output_text.done",
                    {**refs, "content_index": 0, "text": item.text, "logprobs": []},
                )
                out += self._emit(
                    "response.content_part.done", {**refs, "content_index": 0, "part": part}
                )
                done = _message_item(item.item_id, item.text, "completed")
            case ir.ThinkingBlock():
                if item.started_summary:
                    summary = {"type": "summary_text", "text": item.text}
                    out += self._emit(
                        "response.reasoning_summary_text.done",
                        {**refs, "summary_index": 0, "text": item.text},
                    )
                    out += self._emit(
                        "response.reasoning_summary_part.done",
                        {**refs, "summary_index": 0, "part": summary},
                    )
                done = _reasoning_item(item.item_id, item.text, item.block)
            case ir.ToolUseBlock():
                out += self._emit(
                    "response.function_call_arguments.done",
                    {**refs, "name": item.block.name, "arguments": item.text},
                )
                done = _call_item(
                    item.item_id, item.block.id, item.block.name, item.text, "completed"
                )
            case _:
                return out
        self._output.append((item.output_index, done))
        return out + self._emit(
            "response.output_item.done", {"output_index": item.output_index, "item": done}
        )


# --------------------------------------------------------------------------- the codec


class ResponsesCodec:
    name = NAME

    def parse_request(self, body: dict[str, Any]) -> ir.Request:
        body = as_object(body, "body")
        req = ir.Request(model=require(body, "model", str, "a string"), source_format=NAME)
        instructions = field(body, "instructions", str, "a string")
        if instructions:
            req.system.append(ir.TextBlock(instructions))
        raw_input = require(body, "input", (str, list), "a string or an array")
        if isinstance(raw_input, str):
            req.messages.append(ir.Message("user", [ir.TextBlock(raw_input)]))
        else:
            for i, raw in enumerate(raw_input):
                _parse_item(req, raw, f"input[{i}]")
        _parse_tools(body, req)
        _parse_tool_choice(body, req)
        req.parallel_tool_calls = field(body, "parallel_tool_calls", bool, "a boolean")
        req.max_tokens = field(body, "max_output_tokens", int, "an integer")
        req.temperature = field(body, "temperature", (int, float), "a number")
        req.top_p = field(body, "top_p", (int, float), "a number")
        reasoning = field(body, "reasoning", dict, "an object") or {}
        req.reasoning_effort = parse_effort(reasoning.get("effort"), "reasoning.effort")
        rest = {k: v for k, v in reasoning.items() if k != "effort"}
        if rest:  # summary settings have no IR slot
            req.extra["reasoning"] = rest
        text = field(body, "text", dict, "an object") or {}
        fmt = field(text, "format", dict, "an object", "text")
        if fmt is not None:
            req.response_format = format_to_ir(fmt)
        rest = {k: v for k, v in text.items() if k != "format"}
        if rest:
            req.extra["text"] = rest
        req.stream = bool(field(body, "stream", bool, "a boolean"))
        req.include_usage = req.stream  # response.completed always carries usage
        req.user = field(body, "user", str, "a string")
        req.metadata = field(body, "metadata", dict, "an object")
        for key, value in body.items():
            if key not in _FIELDS:
                req.extra[key] = value
        return req

    def render_request(self, req: ir.Request) -> dict[str, Any]:
        return _render_request(req)

    def parse_response(self, body: dict[str, Any]) -> ir.Response:
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
                    resp.content.append(_thinking_from_item(item))
                case "function_call":
                    resp.content.append(_tool_use_from_item(item))
                case _:
                    pass
        resp.stop_reason = _stop_reason(
            body.get("status"), body.get("incomplete_details"), bool(resp.tool_calls())
        )
        usage = body.get("usage")
        if isinstance(usage, dict):
            resp.usage = usage_from_responses(usage)
        return resp

    def render_response(self, resp: ir.Response, req: ir.Request) -> dict[str, Any]:
        status, incomplete = _status(resp.stop_reason)
        return _response_object(
            req,
            resp_id=resp.id if resp.id.startswith("resp_") else new_id("resp_"),
            model=resp.model or req.model,
            created=resp.created or int(time.time()),
            status=status,
            output=_output_items(resp),
            usage=resp.usage,
            incomplete=incomplete,
        )

    def stream_parser(self) -> StreamParser:
        return ResponsesStreamParser()

    def stream_renderer(self, req: ir.Request) -> StreamRenderer:
        return ResponsesStreamRenderer(req)

    def error_event(self, message: str, error_type: str = "api_error") -> bytes:
        """A standalone ``response.failed`` for a stream whose renderer state is unknown."""
        resp = _response_object(
            ir.Request(model=""),
            resp_id=new_id("resp_"),
            model="",
            created=int(time.time()),
            status="failed",
            output=[],
            error=_error_object(message, error_type),
        )
        data = {"type": "response.failed", "sequence_number": 0, "response": resp}
        return sse_bytes(data, event="response.failed")


CODEC: Codec = ResponsesCodec()
