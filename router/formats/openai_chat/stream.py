"""Chat Completions SSE streams: parse upstream chunks into IR events, render IR events for a
client."""

from __future__ import annotations

from typing import Any

from router import ir, jsonfast
from router.formats.common import OpenAIStreamRenderer, as_str, new_id, obj
from router.formats.openai_chat import NAME
from router.formats.openai_chat.response import (
    error_body,
    parse_stop_reason,
    parse_usage,
    render_stop_reason,
    render_usage,
)
from router.formats.sse import SSEEvent, SSEParser, sse_bytes

DONE = b"data: [DONE]\n\n"


def error_event(message: str, error_type: str = "api_error") -> bytes:
    """The error chunk and the closing ``[DONE]``: the error ends the stream."""
    return sse_bytes(error_body(message, error_type)) + DONE


class StreamParser:
    """chat.completion.chunk SSE -> IR events. Block indices are allocated in start order;
    each ``tool_calls[].index`` keeps its own block so interleaved parallel deltas work."""

    def __init__(self) -> None:
        self._sse = SSEParser()
        self._started = False
        self._finished = False
        self._ended = False
        self._next = 0
        self._open: list[int] = []
        self._current: tuple[str, int] | None = None  # the open text or thinking block
        self._tools: dict[int, int] = {}
        self._tool_ids: dict[int, str] = {}

    def feed(self, chunk: bytes) -> list[ir.StreamEvent]:
        return self._handle(self._sse.feed(chunk))

    def close(self) -> list[ir.StreamEvent]:
        out = self._handle(self._sse.close())
        if self._ended:
            return out
        self._ended = True
        if self._finished:  # some compatible servers never send [DONE]
            out.extend(self._close_blocks())
            out.append(ir.MessageStop())
        else:
            out.append(ir.ErrorEvent("upstream stream ended early", "api_error"))
        return out

    def _handle(self, events: list[SSEEvent]) -> list[ir.StreamEvent]:
        out: list[ir.StreamEvent] = []
        for event in events:
            if not self._ended:
                self._event(event.data.strip(), out)
        return out

    def _event(self, data: str, out: list[ir.StreamEvent]) -> None:
        if not data:
            return
        if data == "[DONE]":
            out.extend(self._close_blocks())
            out.append(ir.MessageStop())
            self._ended = True
            return
        try:
            chunk = jsonfast.loads(data)
        except ValueError:
            out.append(ir.ErrorEvent("upstream sent a stream chunk that is not JSON", "api_error"))
            self._ended = True
            return
        if not isinstance(chunk, dict):
            return
        error = chunk.get("error")
        if error:
            info = error if isinstance(error, dict) else {"message": str(error)}
            out.append(
                ir.ErrorEvent(
                    str(info.get("message") or "upstream error"),
                    str(info.get("type") or "api_error"),
                )
            )
            self._ended = True
            return
        if not self._started:
            self._started = True
            created = chunk.get("created")
            out.append(
                ir.MessageStart(
                    id=str(chunk.get("id") or ""),
                    model=str(chunk.get("model") or ""),
                    created=created if isinstance(created, int) else None,
                )
            )
        final: ir.MessageDelta | None = None
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue  # n > 1 is not routed; only the first choice is kept
            delta = choice.get("delta")
            if isinstance(delta, dict):
                self._delta(delta, out)
            reason = choice.get("finish_reason")
            if isinstance(reason, str) and reason:
                out.extend(self._close_blocks())
                final = ir.MessageDelta(stop_reason=parse_stop_reason(reason))
                self._finished = True
        if "usage" in chunk and isinstance(chunk["usage"], dict):
            if final is None:
                final = ir.MessageDelta()
            final.usage = parse_usage(chunk["usage"])
        if final is not None:
            out.append(final)

    def _delta(self, delta: dict[str, Any], out: list[ir.StreamEvent]) -> None:
        # Keys looked for with "in" first: most deltas carry content and nothing else.
        if "reasoning_content" in delta or "reasoning" in delta:
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(reasoning, str) and reasoning:
                self._text("thinking", reasoning, out)
        for key in ("content", "refusal"):
            if key in delta and isinstance(delta[key], str) and delta[key]:
                self._text("text", delta[key], out)
        if "tool_calls" not in delta or not isinstance(delta["tool_calls"], list):
            return
        calls = delta["tool_calls"]
        for position, call in enumerate(calls):
            if not isinstance(call, dict):
                continue
            tool_index = call.get("index", position)
            function = obj(call.get("function"))
            call_id = as_str(call.get("id"))
            name = as_str(function.get("name"))
            known = self._tool_ids.get(tool_index)
            # A new id on a known index: servers that number every call 0 start another tool.
            if tool_index not in self._tools or (call_id and known and call_id != known):
                out.extend(self._stop_current())
                index = self._allocate()
                self._tools[tool_index] = index
                self._tool_ids[tool_index] = call_id
                out.append(ir.BlockStart(index, ir.ToolUseBlock(id=call_id, name=name)))
            arguments = function.get("arguments")
            if isinstance(arguments, str) and arguments:
                out.append(ir.BlockDelta(self._tools[tool_index], "input_json", arguments))

    def _text(self, kind: str, text: str, out: list[ir.StreamEvent]) -> None:
        if self._current is None or self._current[0] != kind:
            out.extend(self._stop_current())
            index = self._allocate()
            self._current = (kind, index)
            block: ir.Block = ir.TextBlock() if kind == "text" else ir.ThinkingBlock(origin=NAME)
            out.append(ir.BlockStart(index, block))
        out.append(ir.BlockDelta(self._current[1], "text" if kind == "text" else "thinking", text))

    def _allocate(self) -> int:
        index = self._next
        self._next += 1
        self._open.append(index)
        return index

    def _stop_current(self) -> list[ir.StreamEvent]:
        if self._current is None:
            return []
        index = self._current[1]
        self._current = None
        self._open.remove(index)
        return [ir.BlockStop(index)]

    def _close_blocks(self) -> list[ir.StreamEvent]:
        out: list[ir.StreamEvent] = [ir.BlockStop(i) for i in self._open]
        self._open = []
        self._current = None
        self._tools = {}
        self._tool_ids = {}
        return out


class StreamRenderer(OpenAIStreamRenderer):
    """IR events -> chat.completion.chunk SSE. Tool calls get their own 0-based index that
    counts only tools; the usage chunk is sent only when the client asked for it."""

    def __init__(self, req: ir.Request) -> None:
        super().__init__(req)
        self._tools: dict[int, int] = {}

    def _event(self, event: ir.StreamEvent) -> bytes:
        out = b""
        match event:
            case ir.BlockStart(block=ir.ToolUseBlock() as block):
                tool_index = len(self._tools)
                self._tools[event.index] = tool_index
                call = {
                    "index": tool_index,
                    "id": block.id,
                    "type": "function",
                    "function": {"name": block.name, "arguments": ""},
                }
                out += self._chunk({"tool_calls": [call]})
            case ir.BlockDelta(kind="text"):
                out += self._chunk({"content": event.text})
            case ir.BlockDelta(kind="thinking"):
                out += self._chunk({"reasoning_content": event.text})
            case ir.BlockDelta(kind="input_json"):
                if event.index not in self._tools:
                    self._tools[event.index] = len(self._tools)
                call = {"index": self._tools[event.index], "function": {"arguments": event.text}}
                out += self._chunk({"tool_calls": [call]})
            case ir.MessageStop():
                out += self._chunk({}, render_stop_reason(self._stop, bool(self._tools)))
                if self._req.include_usage:
                    out += self._usage_chunk()
                out += DONE
                self._done = True
            case ir.ErrorEvent():
                out += error_event(event.message, event.error_type)
                self._done = True
        return out

    def _end(self) -> bytes:
        self._done = True
        return DONE

    def _start(self, event: ir.MessageStart | None) -> bytes:
        self._begin(event, (event.id if event else "") or new_id("chatcmpl-"))
        return self._chunk({"role": "assistant", "content": ""})

    def _base(self) -> dict[str, Any]:
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
        }

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return sse_bytes({**self._base(), "choices": [choice]})

    def _usage_chunk(self) -> bytes:
        usage = render_usage(self._usage or ir.Usage())
        return sse_bytes({**self._base(), "choices": [], "usage": usage})
