"""Anthropic SSE streams: parse upstream events into IR events, render IR events for a client."""

from __future__ import annotations

import json
from typing import Any

from router import ir, jsonfast
from router.formats.anthropic import NAME
from router.formats.anthropic.response import (
    client_tool_id,
    message_id,
    parse_stop_reason,
    parse_usage,
    render_stop_reason,
    render_usage,
)
from router.formats.common import as_int, obj
from router.formats.sse import SSEParser, sse_bytes

_ERROR_TYPES = frozenset(
    {
        "invalid_request_error", "authentication_error", "permission_error", "not_found_error",
        "request_too_large", "rate_limit_error", "api_error", "overloaded_error",
        "billing_error", "timeout_error",
    }
)  # fmt: skip
_ERROR_TYPE_MAP = {
    "server_error": "api_error",
    "upstream_error": "api_error",
    "rate_limit": "rate_limit_error",
    "rate_limit_exceeded": "rate_limit_error",
    "timeout": "timeout_error",
    "auth": "authentication_error",
    "bad_request": "invalid_request_error",
    "context_length": "invalid_request_error",
    "not_found": "not_found_error",
}


# --------------------------------------------------------------------------- stream parsing


class StreamParser:
    """Anthropic SSE -> IR events. Server-side tool blocks are skipped, so IR indices are
    renumbered to stay dense."""

    def __init__(self) -> None:
        self._sse = SSEParser()
        self._index: dict[int, int] = {}  # Anthropic block index -> IR index
        self._skipped: set[int] = set()
        self._next = 0
        # Raw Anthropic figures: message_delta may refine some of them; the IR input total
        # needs all three.
        self._raw: dict[str, int] = {}
        self._done = False

    def feed(self, chunk: bytes) -> list[ir.StreamEvent]:
        out: list[ir.StreamEvent] = []
        for sse in self._sse.feed(chunk):
            self._event(sse.event, sse.data, out)
        return out

    def close(self) -> list[ir.StreamEvent]:
        out: list[ir.StreamEvent] = []
        for sse in self._sse.close():
            self._event(sse.event, sse.data, out)
        if not self._done:
            self._done = True
            out.append(ir.ErrorEvent("stream ended before message_stop", "api_error"))
        return out

    def _usage(self, data: Any) -> ir.Usage:
        if isinstance(data, dict):
            for key in ("input_tokens", "output_tokens", "cache_read_input_tokens",
                        "cache_creation_input_tokens"):  # fmt: skip
                if isinstance(data.get(key), int):
                    self._raw[key] = data[key]
            details = data.get("output_tokens_details")
            if isinstance(details, dict) and isinstance(details.get("thinking_tokens"), int):
                self._raw["thinking_tokens"] = details["thinking_tokens"]
        raw: dict[str, Any] = dict(self._raw)
        raw["output_tokens_details"] = {"thinking_tokens": raw.pop("thinking_tokens", 0)}
        return parse_usage(raw)

    def _event(self, name: str | None, data: str, out: list[ir.StreamEvent]) -> None:
        if self._done or not data:
            return
        try:
            payload = jsonfast.loads(data)
        except ValueError:
            # Every Anthropic event (ping included) is JSON: this stream is broken, like the
            # other formats' parsers say (the pass-through must not forward it as is).
            self._done = True
            out.append(ir.ErrorEvent("upstream sent a stream event that is not JSON", "api_error"))
            return
        if not isinstance(payload, dict):
            return
        kind = payload.get("type") or name
        match kind:
            case "message_start":
                message = obj(payload.get("message"))
                out.append(
                    ir.MessageStart(
                        id=str(message.get("id") or ""),
                        model=str(message.get("model") or ""),
                        usage=self._usage(message.get("usage")) if message.get("usage") else None,
                    )
                )
            case "content_block_start":
                self._block_start(payload, out)
            case "content_block_delta":
                self._block_delta(payload, out)
            case "content_block_stop":
                index = self._index.get(as_int(payload.get("index")))
                if index is not None:
                    out.append(ir.BlockStop(index))
            case "message_delta":
                delta = obj(payload.get("delta"))
                stop = delta.get("stop_reason")
                out.append(
                    ir.MessageDelta(
                        stop_reason=parse_stop_reason(stop),
                        stop_sequence=delta.get("stop_sequence"),
                        usage=self._usage(payload.get("usage")),
                    )
                )
            case "message_stop":
                self._done = True
                out.append(ir.MessageStop())
            case "error":
                error = obj(payload.get("error"))
                self._done = True
                out.append(
                    ir.ErrorEvent(
                        message=str(error.get("message") or "upstream stream error"),
                        error_type=str(error.get("type") or "api_error"),
                    )
                )

    def _block_start(self, payload: dict[str, Any], out: list[ir.StreamEvent]) -> None:
        anthropic_index = as_int(payload.get("index"))
        block = obj(payload.get("content_block"))
        start: ir.Block
        deltas: list[tuple[Any, str]] = []
        match block.get("type"):
            case "text":
                start = ir.TextBlock()
                deltas.append(("text", block.get("text") or ""))
            case "thinking":
                start = ir.ThinkingBlock(origin=NAME)
                deltas.append(("thinking", block.get("thinking") or ""))
                deltas.append(("signature", block.get("signature") or ""))
            case "redacted_thinking":
                start = ir.ThinkingBlock(redacted=True, data=block.get("data"), origin=NAME)
            case "tool_use":
                start = ir.ToolUseBlock(
                    id=str(block.get("id", "")), name=str(block.get("name", ""))
                )
                if block.get("input"):
                    deltas.append(("input_json", json.dumps(block["input"], ensure_ascii=False)))
            case _:
                self._skipped.add(anthropic_index)
                return
        index = self._next
        self._next += 1
        self._index[anthropic_index] = index
        out.append(ir.BlockStart(index, start))
        out.extend(ir.BlockDelta(index, kind, text) for kind, text in deltas if text)

    def _block_delta(self, payload: dict[str, Any], out: list[ir.StreamEvent]) -> None:
        index = self._index.get(as_int(payload.get("index")))
        delta = obj(payload.get("delta"))
        if index is None:
            return
        match delta.get("type"):
            case "text_delta":
                out.append(ir.BlockDelta(index, "text", str(delta.get("text", ""))))
            case "thinking_delta":
                out.append(ir.BlockDelta(index, "thinking", str(delta.get("thinking", ""))))
            case "signature_delta":
                out.append(ir.BlockDelta(index, "signature", str(delta.get("signature", ""))))
            case "input_json_delta":
                out.append(ir.BlockDelta(index, "input_json", str(delta.get("partial_json", ""))))


# --------------------------------------------------------------------------- stream rendering


def _error_type(error_type: str) -> str:
    if error_type in _ERROR_TYPES:
        return error_type
    return _ERROR_TYPE_MAP.get(error_type, "api_error")


def error_event(message: str, error_type: str = "api_error") -> bytes:
    payload = {"type": "error", "error": {"type": _error_type(error_type), "message": message}}
    return sse_bytes(payload, event="error")


def _start_json(block: ir.Block) -> dict[str, Any]:
    match block:
        case ir.ThinkingBlock() if block.redacted:
            return {"type": "redacted_thinking", "data": block.data or ""}
        case ir.ThinkingBlock():
            return {"type": "thinking", "thinking": "", "signature": ""}
        case ir.ToolUseBlock():
            return {
                "type": "tool_use",
                "id": client_tool_id(block.id),
                "name": block.name,
                "input": {},
            }
    return {"type": "text", "text": ""}


_DELTA_JSON = {
    "text": ("text_delta", "text"),
    "thinking": ("thinking_delta", "thinking"),
    "signature": ("signature_delta", "signature"),
    "input_json": ("input_json_delta", "partial_json"),
}


class StreamRenderer:
    """IR events -> Anthropic SSE. Anthropic blocks are strictly sequential, while the IR may
    interleave several open blocks (parallel OpenAI tool calls): one block is open at a time,
    the others are buffered and replayed in start order, renumbered 0..n."""

    def __init__(self, req: ir.Request) -> None:
        self._req = req
        self._usage = ir.Usage()
        self._started = False
        self._delta_sent = False
        self._ended = False
        self._current: int | None = None  # the IR index of the open Anthropic block
        self._next = 0
        self._queue: list[int] = []  # buffered IR blocks, in start order
        self._buffers: dict[int, list[ir.BlockStart | ir.BlockDelta]] = {}
        self._stopped: set[int] = set()  # buffered blocks whose stop already arrived
        self._finished: set[int] = set()  # blocks already rendered and closed
        self._signature: list[str] = []  # signature pieces of the open block
        self._id = ""
        self._model = ""
        self._stop: ir.StopReason | None = None
        self._stop_sequence: str | None = None

    def render(self, event: ir.StreamEvent) -> bytes:
        if self._ended:
            return b""
        out: list[bytes] = []
        match event:
            case ir.MessageStart():
                if event.usage is not None:
                    self._usage.merge(event.usage)
                self._id = self._id or event.id
                self._model = self._model or event.model
                self._ensure_started(out)
            case ir.BlockStart():
                self._ensure_started(out)
                self._block_start(event, out)
            case ir.BlockDelta():
                self._ensure_started(out)
                self._block_delta(event, out)
            case ir.BlockStop():
                self._block_stop(event.index, out)
            case ir.MessageDelta():
                # Upstreams split stop reason and usage over several deltas (OpenAI sends
                # usage in a chunk of its own); Anthropic clients keep only the last
                # message_delta, so the figures are held and sent once, at message stop.
                self._ensure_started(out)
                if event.usage is not None:
                    self._usage.merge(event.usage)
                self._stop = event.stop_reason or self._stop
                self._stop_sequence = event.stop_sequence or self._stop_sequence
                self._close_all(out)
            case ir.MessageStop():
                self._end(out)
            case ir.ErrorEvent():
                self._ended = True
                out.append(error_event(event.message, event.error_type))
        return b"".join(out)

    def finish(self) -> bytes:
        if self._ended:
            return b""
        out: list[bytes] = []
        self._end(out)
        return b"".join(out)

    # -- message level

    def _ensure_started(self, out: list[bytes]) -> None:
        if self._started:
            return
        self._started = True
        usage = render_usage(self._usage)
        usage["output_tokens"] = 1  # what Anthropic itself reports before any output
        usage.pop("output_tokens_details", None)
        message: dict[str, Any] = {
            "id": message_id(self._id),
            "type": "message",
            "role": "assistant",
            "model": self._model or self._req.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage,
        }
        out.append(sse_bytes({"type": "message_start", "message": message}, "message_start"))

    def _message_delta(self, stop: ir.StopReason | None, sequence: str | None, out: list[bytes]) -> None:  # fmt: skip
        self._delta_sent = True
        payload = {
            "type": "message_delta",
            "delta": {
                "stop_reason": render_stop_reason(stop),
                "stop_sequence": sequence,
            },
            "usage": render_usage(self._usage),
        }
        out.append(sse_bytes(payload, "message_delta"))

    def _end(self, out: list[bytes]) -> None:
        self._ensure_started(out)
        self._close_all(out)
        if not self._delta_sent:
            self._message_delta(self._stop, self._stop_sequence, out)
        out.append(sse_bytes({"type": "message_stop"}, "message_stop"))
        self._ended = True

    # -- blocks

    def _block_start(self, event: ir.BlockStart, out: list[bytes]) -> None:
        i = event.index
        if i == self._current or i in self._buffers or i in self._finished:
            return
        if self._current is None:
            self._open(event, out)
        else:
            self._queue.append(i)
            self._buffers[i] = [event]

    def _block_delta(self, event: ir.BlockDelta, out: list[bytes]) -> None:
        i = event.index
        if i in self._finished:
            return
        if i != self._current and i not in self._buffers:
            # A delta without a start implies one.
            kind = event.kind
            block: ir.Block = (
                ir.ThinkingBlock() if kind in ("thinking", "signature")
                else ir.ToolUseBlock() if kind == "input_json"
                else ir.TextBlock()
            )  # fmt: skip
            self._block_start(ir.BlockStart(i, block), out)
        if i == self._current:
            self._delta(event, out)
        else:
            self._buffers[i].append(event)

    def _block_stop(self, index: int, out: list[bytes]) -> None:
        if index == self._current:
            self._close_current(out)
            self._drain(out, everything=False)
        elif index in self._buffers:
            self._stopped.add(index)

    def _open(self, start: ir.BlockStart, out: list[bytes]) -> None:
        self._current = start.index
        payload = {
            "type": "content_block_start",
            "index": self._next,
            "content_block": _start_json(start.block),
        }
        out.append(sse_bytes(payload, "content_block_start"))
        # A start carrying text (the IR allows it) still reaches the client.
        block, i = start.block, start.index
        match block:
            case ir.TextBlock() if block.text:
                self._delta(ir.BlockDelta(i, "text", block.text), out)
            case ir.ThinkingBlock() if not block.redacted:
                if block.thinking:
                    self._delta(ir.BlockDelta(i, "thinking", block.thinking), out)
                if block.signature:
                    self._delta(ir.BlockDelta(i, "signature", block.signature), out)
            case ir.ToolUseBlock() if block.input or block.raw_arguments:
                self._delta(ir.BlockDelta(i, "input_json", block.arguments_json()), out)

    def _delta(self, event: ir.BlockDelta, out: list[bytes]) -> None:
        if event.kind == "signature":
            # The SDK keeps only the last signature_delta, and Anthropic sends one just
            # before the block stops: join the pieces and send them then.
            self._signature.append(event.text)
            return
        out.append(self._delta_bytes(event.kind, event.text))

    def _delta_bytes(self, kind: str, text: str) -> bytes:
        delta_type, key = _DELTA_JSON[kind]
        payload = {
            "type": "content_block_delta",
            "index": self._next,
            "delta": {"type": delta_type, key: text},
        }
        return sse_bytes(payload, "content_block_delta")

    def _close_current(self, out: list[bytes]) -> None:
        if self._current is None:
            return
        if self._signature:
            out.append(self._delta_bytes("signature", "".join(self._signature)))
            self._signature = []
        out.append(
            sse_bytes({"type": "content_block_stop", "index": self._next}, "content_block_stop")
        )
        self._finished.add(self._current)
        self._current = None
        self._next += 1

    def _drain(self, out: list[bytes], *, everything: bool) -> None:
        """Replay buffered blocks in start order; stop at the first one still open unless
        ``everything`` (the message is ending, so open blocks are closed as they stand)."""
        while self._current is None and self._queue:
            index = self._queue.pop(0)
            events = self._buffers.pop(index)
            first = events[0]
            assert isinstance(first, ir.BlockStart)
            self._open(first, out)
            for event in events[1:]:
                if isinstance(event, ir.BlockDelta):
                    self._delta(event, out)
            if index in self._stopped or everything:
                self._stopped.discard(index)
                self._close_current(out)

    def _close_all(self, out: list[bytes]) -> None:
        self._close_current(out)
        self._drain(out, everything=True)
