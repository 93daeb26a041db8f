"""Responses typed SSE streams: parse upstream events into IR events, render IR events for a
client."""

from __future__ import annotations

import time
from typing import Any

from router import ir, jsonfast
from router.formats.common import OpenAIStreamRenderer, as_int, new_id, obj
from router.formats.responses import NAME
from router.formats.responses.request import CUSTOM_CALL, summary_text, tool_use_from_item
from router.formats.responses.response import (
    call_item,
    custom_call_item,
    error_object,
    message_item,
    parse_stop_reason,
    parse_usage,
    reasoning_item,
    render_stop_reason,
    response_object,
    text_part,
)
from router.formats.sse import SSEEvent, SSEParser, sse_bytes
from router.formats.tools import client_call, free_form_input


def error_event(message: str, error_type: str = "api_error") -> bytes:
    """A standalone ``response.failed`` for a stream whose renderer state is unknown."""
    resp = response_object(
        ir.Request(model=""),
        resp_id=new_id("resp_"),
        model="",
        created=int(time.time()),
        status="failed",
        output=[],
        error=error_object(message, error_type),
    )
    data = {"type": "response.failed", "sequence_number": 0, "response": resp}
    return sse_bytes(data, event="response.failed")


class StreamParser:
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
                data = jsonfast.loads(event.data)
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
                if item.get("type") in ("function_call", CUSTOM_CALL):
                    self._has_calls = True
                    block = tool_use_from_item({**item, "arguments": "", "input": ""})
                    block.input = {}
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
                self._delta(key, "text", text, out, ir.TextBlock(), catch_up=True)
            case "response.function_call_arguments.delta":
                self._delta(
                    (output_index, 0), "input_json", data.get("delta"), out, ir.ToolUseBlock()
                )
            case "response.function_call_arguments.done":
                self._delta(
                    (output_index, 0),
                    "input_json",
                    data.get("arguments"),
                    out,
                    ir.ToolUseBlock(),
                    catch_up=True,
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
                stop = parse_stop_reason(
                    resp.get("status"), resp.get("incomplete_details"), self._has_calls
                )
                out.append(
                    ir.MessageDelta(
                        stop_reason=stop,
                        usage=parse_usage(usage) if isinstance(usage, dict) else None,
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
        *,
        catch_up: bool = False,
    ) -> None:
        """With ``catch_up``: a ``.done`` event, which carries the whole value, counts only
        for a part that got no deltas."""
        index = self._blocks.get(key)
        if catch_up and index is not None and index in self._seen_delta:
            return
        if not isinstance(text, str) or not text:
            return
        index = self._start(key, block, out)
        self._seen_delta.add(index)
        out.append(ir.BlockDelta(index, kind, text))

    def _item_done(
        self, output_index: int, item: dict[str, Any], out: list[ir.StreamEvent]
    ) -> None:
        kind = item.get("type")
        if kind in ("function_call", CUSTOM_CALL):
            self._has_calls = True
            block = tool_use_from_item(item)
            # A custom call's text arrives whole here; IR deltas carry the argument object.
            args = block.arguments_json() if kind == CUSTOM_CALL else item.get("arguments")
            block.input = {}
            self._start((output_index, 0), block, out)
            self._delta((output_index, 0), "input_json", args, out, block, catch_up=True)
        elif kind == "reasoning":
            index = self._start((output_index, 0), ir.ThinkingBlock(origin=NAME), out)
            if index not in self._seen_delta:
                self._delta(
                    (output_index, 0), "thinking", summary_text(item), out, ir.ThinkingBlock()
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


class StreamRenderer(OpenAIStreamRenderer):
    """IR events -> the typed event sequence ``client.responses.create(stream=True)`` reads."""

    def __init__(self, req: ir.Request) -> None:
        super().__init__(req)
        self._seq = 0
        self._items: dict[int, _Item] = {}  # IR block index -> item
        self._output: list[tuple[int, dict[str, Any]]] = []  # finished items by output index
        self._next_output = 0

    def _event(self, event: ir.StreamEvent) -> bytes:
        out = b""
        match event:
            case ir.BlockStart():
                out += self._block_start(event.index, event.block)
            case ir.BlockDelta():
                out += self._block_delta(event)
            case ir.BlockStop():
                out += self._block_stop(event.index)
            case ir.MessageStop():
                for index in sorted(self._items):
                    out += self._block_stop(index)
                status, incomplete = render_stop_reason(self._stop)
                resp = self._response(
                    status, usage=self._usage or ir.Usage(), incomplete=incomplete
                )
                out += self._emit(f"response.{status}", {"response": resp})
                self._done = True
            case ir.ErrorEvent():
                out += self._failed(event.message, event.error_type)
        return out

    def _end(self) -> bytes:
        return self._failed("upstream stream ended before the response completed", "api_error")

    def _failed(self, message: str, error_type: str) -> bytes:
        self._done = True
        out = b"" if self._started else self._start(None)
        resp = self._response("failed", error=error_object(message, error_type))
        return out + self._emit("response.failed", {"response": resp})

    def _start(self, event: ir.MessageStart | None) -> bytes:
        given = event.id if event else ""
        self._begin(event, given if given.startswith("resp_") else new_id("resp_"))
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
        return response_object(
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
                added = message_item(item.item_id, None, "in_progress")
            case ir.ThinkingBlock():
                thinking = ir.ThinkingBlock(origin=block.origin)
                item = _Item(new_id("rs_"), output_index, thinking)
                added = reasoning_item(item.item_id, None, thinking)
            case ir.ToolUseBlock():
                name, namespace, free_form = client_call(self._req, block)
                call = ir.ToolUseBlock(
                    id=block.id, name=name, namespace=namespace, free_form=free_form
                )
                if free_form:
                    item = _Item(new_id("ctc_"), output_index, call)
                    added = custom_call_item(item.item_id, block.id, name, "", "in_progress")
                else:
                    item = _Item(new_id("fc_"), output_index, call)
                    added = call_item(item.item_id, block.id, name, "", "in_progress")
                if namespace is not None:
                    added["namespace"] = namespace
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
                {**self._refs(item), "content_index": 0, "part": text_part("")},
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
                if not item.block.free_form:  # free-form text is known once the object is
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
                part = text_part(item.text)
                out += self._emit(
                    "response.output_text.done",
                    {**refs, "content_index": 0, "text": item.text, "logprobs": []},
                )
                out += self._emit(
                    "response.content_part.done", {**refs, "content_index": 0, "part": part}
                )
                done = message_item(item.item_id, item.text, "completed")
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
                done = reasoning_item(item.item_id, item.text, item.block)
            case ir.ToolUseBlock() if item.block.free_form:
                ir.set_tool_arguments(item.block, item.text)
                text = free_form_input(item.block)
                out += self._emit("response.custom_tool_call_input.delta", {**refs, "delta": text})
                out += self._emit("response.custom_tool_call_input.done", {**refs, "input": text})
                done = custom_call_item(
                    item.item_id, item.block.id, item.block.name, text, "completed"
                )
            case ir.ToolUseBlock():
                out += self._emit(
                    "response.function_call_arguments.done",
                    {**refs, "name": item.block.name, "arguments": item.text},
                )
                done = call_item(
                    item.item_id, item.block.id, item.block.name, item.text, "completed"
                )
            case _:
                return out
        if isinstance(item.block, ir.ToolUseBlock) and item.block.namespace is not None:
            done["namespace"] = item.block.namespace
        self._output.append((item.output_index, done))
        return out + self._emit(
            "response.output_item.done", {"output_index": item.output_index, "item": done}
        )
